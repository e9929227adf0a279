"""Tables: builders (DataFrames) and writers (Markdown, LaTeX, CSV) with titles and footnotes.

Every table written by :func:`write_table` goes to ``<dir>/<name>.md``, ``.tex`` and ``.csv`` (the CSV has the
numbers unformatted; Markdown and LaTeX show ``estimate [low, high]`` cells and the footnote).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from analysis.stats import AGGREGATES

__all__ = ["fmt", "fmt_ci", "aggregate_display", "per_env_table", "write_table", "to_markdown", "to_latex"]


def fmt(x, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{digits}f}"


def fmt_ci(est, lo, hi, digits: int = 2) -> str:
    if est is None or not np.isfinite(est):
        return "–"
    return f"{est:.{digits}f} [{fmt(lo, digits)}, {fmt(hi, digits)}]"


def aggregate_display(agg: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """Display version of :func:`analysis.stats.aggregate_table` joined with run outcome counts."""
    rows = []
    for r in agg.itertuples(index=False):
        row = {"agent": r.agent, "runs": int(r.runs) if np.isfinite(r.runs) else 0,
               "envs": int(r.tasks) if np.isfinite(r.tasks) else 0}
        for name in AGGREGATES:
            k = name.lower().replace(" ", "_")
            row[name] = fmt_ci(getattr(r, k), getattr(r, f"{k}_ci_low"), getattr(r, f"{k}_ci_high"))
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.merge(counts, on="agent", how="left") if len(out) else out


def outcome_counts(scored: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Counts of runs per outcome: completed, diverged, failed, running (per group)."""
    g = scored.groupby(list(by))["scored_as"]
    return pd.DataFrame({
        "completed": g.apply(lambda s: int((s == "evaluated").sum())),
        "diverged": g.apply(lambda s: int((s == "diverged-last-eval").sum())),
        "failed": g.apply(lambda s: int((s == "failed-as-random").sum())),
        "running": g.apply(lambda s: int((s == "running-not-scored").sum())),
    }).reset_index()


def per_env_table(scored: pd.DataFrame, reps: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(numbers, display) per (env, agent): seeds scored, mean raw return with a bootstrap 95 % interval over
    seeds, IQM raw, IQM normalised, and outcome counts."""
    from analysis.stats import agent_rng, iqm

    rows = []
    for (env, label), g in scored.groupby(["env", "label"], sort=True):
        raw = g["raw_score"].dropna().to_numpy(float)
        norm = g["score"].dropna().to_numpy(float) if bool(g["normalised"].all()) else np.array([])
        if len(raw):
            boot = raw[agent_rng(seed, f"{env}/{label}").integers(0, len(raw), (reps, len(raw)))].mean(axis=1)
            lo, hi = np.percentile(boot, [2.5, 97.5])
        else:
            lo = hi = np.nan
        rows.append({"env": env, "agent": label, "seeds_scored": len(raw),
                     "mean": raw.mean() if len(raw) else np.nan, "mean_ci_low": lo, "mean_ci_high": hi,
                     "iqm": float(iqm(raw)) if len(raw) else np.nan,
                     "iqm_normalised": float(iqm(norm)) if len(norm) else np.nan,
                     "completed": int((g["scored_as"] == "evaluated").sum()),
                     "diverged": int((g["scored_as"] == "diverged-last-eval").sum()),
                     "failed": int((g["scored_as"] == "failed-as-random").sum()),
                     "running": int((g["scored_as"] == "running-not-scored").sum())})
    num = pd.DataFrame(rows)
    disp = pd.DataFrame([{"env": r["env"], "agent": r["agent"], "seeds": r["seeds_scored"],
                          "mean return [95% CI]": fmt_ci(r["mean"], r["mean_ci_low"], r["mean_ci_high"], 1),
                          "IQM return": fmt(r["iqm"], 1), "IQM normalised": fmt(r["iqm_normalised"]),
                          "completed": r["completed"], "diverged": r["diverged"], "failed": r["failed"],
                          "running": r["running"]} for r in rows])
    return num, disp


def to_markdown(table: pd.DataFrame, title: str | None = None, footnote: str | None = None) -> str:
    cols = list(table.columns)
    num = [c for c in cols if pd.api.types.is_numeric_dtype(table[c])]
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(str(c) for c in cols) + " |")
    lines.append("|" + "|".join("---:" if c in num else "---" for c in cols) + "|")
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    if footnote:
        lines += ["", footnote]
    return "\n".join(lines) + "\n"


def _cell(v) -> str:
    if isinstance(v, float):
        return fmt(v, 3)
    return str(v).replace("|", "\\|")


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        s = s.replace(a, b)
    return s.replace("≥", r"$\geq$").replace("≤", r"$\leq$").replace("–", "--").replace("×", r"$\times$") \
        .replace("ε", r"$\varepsilon$").replace("τ", r"$\tau$").replace("γ", r"$\gamma$")


def to_latex(table: pd.DataFrame, title: str | None = None, footnote: str | None = None, label: str = "") -> str:
    """A booktabs ``table`` environment (no jinja2 needed)."""
    cols = list(table.columns)
    align = "".join("r" if pd.api.types.is_numeric_dtype(table[c]) else "l" for c in cols)
    lines = [r"\begin{table}[t]", r"\centering", r"\small"]
    if title:
        lines.append(rf"\caption{{{_tex_escape(title)}}}")
    if label:
        lines.append(rf"\label{{tab:{label}}}")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(_tex_escape(str(c)) for c in cols) + r" \\",
              r"\midrule"]
    for row in table.itertuples(index=False):
        lines.append(" & ".join(_tex_escape(_cell(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if footnote:
        lines.append(rf"\par\smallskip\footnotesize {_tex_escape(footnote)}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def write_table(display: pd.DataFrame, out_dir: Path, name: str, *, title: str, footnote: str,
                numbers: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write ``name.md`` / ``name.tex`` (display cells) and ``name.csv`` (``numbers`` if given, else display)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"{name}.{ext}" for ext in ("md", "tex", "csv")}
    paths["md"].write_text(to_markdown(display, title, footnote))
    paths["tex"].write_text(to_latex(display, title, footnote, label=name))
    (numbers if numbers is not None else display).to_csv(paths["csv"], index=False)
    return paths
