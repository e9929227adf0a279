"""A first summary table: final evaluation return per agent and environment, read back from MLflow.

Mean and interquartile mean over seeds, with a percentile-bootstrap 95 % interval of the mean (resampling
seeds). Diverged and failed runs are counted in their own columns and scored by the rule the footnote states,
never dropped. The full analysis (rliable statistics, figures, report) is ``targetbench analyze``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import record_names as names
from analysis.runs import load_runs

__all__ = ["summarise", "iqm", "bootstrap_ci", "main"]


def iqm(x: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50 % (scipy.stats.trim_mean(x, 0.25))."""
    x = np.sort(np.asarray(x, dtype=float))
    n = len(x)
    lo = int(np.floor(0.25 * n))
    return float(x[lo:n - lo].mean()) if n - 2 * lo > 0 else float(x.mean())


def bootstrap_ci(x: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap 95 % interval of the mean of ``x`` (reproducible for a given seed)."""
    x = np.asarray(x, dtype=float)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(reps, len(x)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (env, agent, variant): seeds scored, mean, 95 % CI, IQM, and counts of diverged / failed runs.

    Scoring follows :data:`analysis.normalization.SCORING_RULE`: diverged runs keep their last evaluation,
    failed runs are scored as the uniform-random policy (when the env has a reference score; otherwise they are
    counted only), running runs are counted and not scored.
    """
    from analysis.normalization import score_runs

    runs = runs.copy()
    if "variant" not in runs.columns:
        runs["variant"] = names.DEFAULT_VARIANT
    scored = score_runs(runs)
    rows = []
    for (env, agent, variant), g in scored.groupby(["env", "agent", "variant"], sort=True):
        scores = g["raw_score"].dropna().astype(float).to_numpy()
        lo, hi = bootstrap_ci(scores) if len(scores) else (np.nan, np.nan)
        rows.append({"env": env, "agent": agent, "variant": variant, "seeds": len(scores),
                     "mean": scores.mean() if len(scores) else np.nan, "ci95_low": lo, "ci95_high": hi,
                     "iqm": iqm(scores) if len(scores) else np.nan,
                     "diverged": int((g["scored_as"] == "diverged-last-eval").sum()),
                     "failed_or_running": int(g["scored_as"].isin(["failed-as-random", "running-not-scored"]).sum())})
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame, title: str) -> str:
    """A Markdown table with a footnote on how diverged and failed runs are scored."""
    from analysis.normalization import SCORING_RULE

    show_variant = "variant" in table.columns and (table["variant"] != names.DEFAULT_VARIANT).any()
    head = "| env | agent |" + (" variant |" if show_variant else "")
    lines = [f"## {title}", "", head + " seeds scored | mean final eval return | 95% CI | IQM | diverged | failed/running |",
             "|---|---|" + ("---|" if show_variant else "") + "---:|---:|---|---:|---:|---:|"]
    for r in table.itertuples():
        v = f" {r.variant} |" if show_variant else ""
        lines.append(f"| {r.env} | {r.agent} |{v} {r.seeds} | {r.mean:.1f} | [{r.ci95_low:.1f}, {r.ci95_high:.1f}] | "
                     f"{r.iqm:.1f} | {r.diverged} | {r.failed_or_running} |")
    lines += ["", "Final eval return: mean greedy (ε_eval) return of the last evaluation of each seed. "
              + SCORING_RULE + " CI: percentile bootstrap over seeds, 2,000 resamples, seed 0.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m analysis.summary --tracking-uri URI --experiment NAME [--out FILE]``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tracking-uri", required=True)
    p.add_argument("--experiment", required=True)
    p.add_argument("--out", default=None, help="write the Markdown table here too")
    args = p.parse_args(argv)
    table = summarise(load_runs(args.tracking_uri, args.experiment))
    text = to_markdown(table, f"Experiment {args.experiment}")
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
