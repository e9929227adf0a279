"""Published-vs-ours tables for ``targetbench reproduce`` and docs/results, from per-run data.

Per-run measures of training returns (episodes to solve CartPole, final 100-episode moving average), computed once
per run when the runs are exported (:mod:`analysis.run_table`: ``train_episodes``, ``solve_episode``,
``train_return_last100``), Dopamine's per-iteration training returns (:mod:`analysis.protocol_scores`), and the
comparison tables with a verdict per row: **inside** (the published value lies in our 95 % bootstrap interval over
seeds), **outside**, or **not comparable** (with the reason).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from analysis import record_names as names
from analysis.tables import fmt_ci

__all__ = ["PUBLISHED_DIR", "read_published", "episodes_to_solve", "final_moving_average", "cartpole_table",
           "minatar_table", "episodes_seen", "solve_within", "CARTPOLE_ROWS", "MINATAR_COLUMNS", "SOLVE_THRESHOLD",
           "SOLVE_WINDOW", "read_published_runs", "dopamine_table", "DOPAMINE_ITERATION_STEPS"]

PUBLISHED_DIR = Path(__file__).resolve().parent / "published"
SOLVE_THRESHOLD, SOLVE_WINDOW = 475.0, 100


def read_published(csv_name: str) -> tuple[pd.DataFrame, list[str]]:
    """The published table and its source notes (the ``#`` lines)."""
    text = (PUBLISHED_DIR / csv_name).read_text()
    notes = [line.lstrip("# ").rstrip() for line in text.splitlines() if line.startswith("#")]
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return pd.read_csv(io.StringIO(body), dtype=str, keep_default_na=False), notes


# -- per-run measures from metric histories --------------------------------------------------------------------
def episodes_to_solve(returns: np.ndarray, threshold: float = SOLVE_THRESHOLD, window: int = SOLVE_WINDOW
                      ) -> tuple[float, bool]:
    """Episodes until the ``window``-episode moving average of training returns first reaches ``threshold``
    (the episode count at which it does). Unsolved: (episodes seen, False) — a lower bound."""
    r = np.asarray(returns, dtype=float)
    if len(r) >= window:
        ma = np.convolve(r, np.ones(window) / window, mode="valid")
        hit = np.flatnonzero(ma >= threshold)
        if len(hit):
            return float(hit[0] + window), True
    return float(len(r)), False


def final_moving_average(returns: np.ndarray, window: int = SOLVE_WINDOW) -> float:
    """Mean of the last ``window`` training episode returns (all of them when fewer)."""
    r = np.asarray(returns, dtype=float)
    return float(r[-window:].mean()) if len(r) else float("nan")


def _episodes(runs: pd.DataFrame) -> np.ndarray:
    """Training episodes recorded per run (0 where none)."""
    return pd.to_numeric(runs.get("train_episodes", pd.Series(np.nan, index=runs.index)),
                         errors="coerce").fillna(0).to_numpy(int)


def episodes_seen(runs: pd.DataFrame, max_episodes: int | None = None) -> tuple[float, int, int] | None:
    """Training episodes per run of ``runs`` (capped at ``max_episodes``, the source's episode budget): (median,
    min, max), or None without runs. States a step budget in the source's unit (episodes)."""
    counts = _episodes(runs)
    if not len(counts):
        return None
    if max_episodes is not None:
        counts = np.minimum(counts, max_episodes)
    return float(np.median(counts)), int(counts.min()), int(counts.max())


def solve_within(runs: pd.DataFrame, max_episodes: int | None = None) -> list[tuple[float, bool]]:
    """:func:`episodes_to_solve` per run from its ``solve_episode`` and ``train_episodes``, reading only its first
    ``max_episodes`` training episodes: the same as :func:`episodes_to_solve` on those episodes (a moving average
    that first reaches the threshold within them reaches it at the same episode in the whole run)."""
    solve = pd.to_numeric(runs.get("solve_episode", pd.Series(np.nan, index=runs.index)), errors="coerce")
    out = []
    for at, seen in zip(solve.to_numpy(float), _episodes(runs)):
        cap = seen if max_episodes is None else min(seen, max_episodes)
        out.append((float(at), True) if np.isfinite(at) and at <= cap else (float(cap), False))
    return out


def _boot(values: np.ndarray, stat: Callable[[np.ndarray], float], reps: int, seed: int, name: str):
    from analysis.stats import agent_rng

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return np.nan, np.nan, np.nan
    idx = agent_rng(seed, name).integers(0, len(v), (reps, len(v)))
    dist = np.apply_along_axis(stat, 1, v[idx]) if stat is not np.mean else v[idx].mean(axis=1)
    lo, hi = np.percentile(dist, [2.5, 97.5])
    return float(stat(v)), float(lo), float(hi)


def _counts(g: pd.DataFrame) -> str:
    n = len(g)
    div = int((g["outcome"] == names.OUTCOME_DIVERGED).sum())
    fail = int(g["status"].isin(["FAILED", "KILLED"]).sum())
    run = int((g["status"] == "RUNNING").sum())
    parts = [f"{n} runs"] + [f"{k} {w}" for k, w in ((div, "diverged"), (fail, "failed"), (run, "running")) if k]
    return ", ".join(parts)


def _verdict(published: float, lo: float, hi: float, tol: float = 0.0) -> str:
    if not np.isfinite(lo):
        return "not comparable"
    return "inside" if (published + tol >= lo and published - tol <= hi) else "outside"


# -- CartPole ablation -------------------------------------------------------------------------------------------
CARTPOLE_ROWS = {"Full DQN": "full-dqn", "No target network": "no-target", "No replay buffer": "no-replay",
                 "Small buffer (1000)": "small-buffer", "No exploration decay": "no-exploration-decay",
                 "MSE loss (not Huber)": "mse", "Double DQN": "double-dqn"}


def cartpole_table(runs: pd.DataFrame, published: pd.DataFrame, *, reps: int, seed: int,
                   comparable_budget: bool = True, max_episodes: int | None = None) -> pd.DataFrame:
    """Two rows per configuration: final_reward (mean final eval return) and episodes_to_solve (median over
    runs of the episodes until the 100-episode moving average of training returns reaches 475).

    ``max_episodes``: the source's budget in episodes; episodes_to_solve reads only each run's first
    ``max_episodes`` training episodes (a run not solved by then counts them, a lower bound)."""
    rows = []
    for _, pub in published.iterrows():
        config = pub["configuration"]
        variant = CARTPOLE_ROWS.get(config)
        g = runs[runs["variant"] == variant] if variant else runs.iloc[:0]
        base = {"configuration": config, "variant": variant or "–", "runs": _counts(g) if len(g) else "0 runs"}
        # final reward
        text = pub.get("final_reward", "").strip()
        finals = g.loc[~g["status"].isin(["RUNNING"]), "final_eval_return"].astype(float).to_numpy()
        est, lo, hi = _boot(finals, np.mean, reps, seed, f"final/{config}")
        row = {**base, "metric": "final_reward (mean final eval return)", "published": text or "–",
               "ours [95% CI]": fmt_ci(est, lo, hi, 1)}
        if not text:
            row.update(verdict="not comparable", reason="no published value")
        elif not len(g):
            row.update(verdict="not comparable", reason="no runs of this variant")
        else:
            v = _verdict(float(text), lo, hi)
            row.update(verdict=v, reason=f"published {text} {'in' if v == 'inside' else 'not in'} our 95 % interval")
        rows.append(row)
        # episodes to solve
        text = pub.get("episodes_to_solve", "").strip()
        per_run = solve_within(g, max_episodes)
        values = np.array([v for v, _ in per_run])
        solved = np.array([s for _, s in per_run], dtype=bool)
        n, k = len(per_run), int(solved.sum())
        med, lo, hi = _boot(values, np.median, reps, seed, f"solve/{config}")
        ours = fmt_ci(med, lo, hi, 0) + (f" ({k}/{n} solved; unsolved runs count their episodes, a lower bound)"
                                      if n and k < n else f" ({k}/{n} solved)" if n else "")
        window = f"; first {max_episodes:,} episodes" if max_episodes is not None else ""
        row = {**base, "metric": f"episodes_to_solve (median; 100-ep MA >= 475{window})", "published": text or "–",
               "ours [95% CI]": ours}
        div = int((g["outcome"] == names.OUTCOME_DIVERGED).sum())
        if not len(g):
            row.update(verdict="not comparable", reason="no runs of this variant")
        elif text.lower().startswith("diverge"):
            bad = int(((g["outcome"] == names.OUTCOME_DIVERGED).to_numpy() | ~solved).sum())
            v = "inside" if bad > n / 2 else "outside"
            row.update(verdict=v, reason=f"qualitative claim; rule: holds when most runs diverge (NaN/inf) or never "
                                         f"solve: {div} diverged, {n - k} never solved of {n}")
        elif text.endswith("+"):
            bound = float(text[:-1])
            if k > n / 2:
                v = "inside" if (np.isfinite(hi) and hi >= bound) else "outside"
                row.update(verdict=v, reason=f"published lower bound {bound:.0f}: inside when our interval "
                                             f"reaches it (upper {hi:.0f})")
            elif np.isfinite(lo) and lo >= bound:
                row.update(verdict="inside", reason=f"most runs never solved in >= {bound:.0f} episodes ({n - k}/{n})")
            else:
                row.update(verdict="not comparable", reason=f"most runs never solved ({n - k}/{n}) but ran fewer than "
                                                            f"{bound:.0f} episodes: consistent, not confirmed")
        else:
            if k <= n / 2:  # the median is censored: ours is only a lower bound
                if np.isfinite(lo) and lo > float(text):
                    row.update(verdict="outside", reason=f"most runs never solved ({n - k}/{n}); even the lower "
                                                         f"bound exceeds {text}")
                else:
                    row.update(verdict="not comparable", reason=f"most runs never solved ({n - k}/{n}) within the "
                                                                "budget: ours is only a lower bound")
            else:
                v = _verdict(float(text), lo, hi)
                row.update(verdict=v, reason=f"published {text} {'in' if v == 'inside' else 'not in'} our 95 % "
                                             "interval of the median")
        rows.append(row)
    return pd.DataFrame(rows)


# -- MinAtar v1 ablation -----------------------------------------------------------------------------------------
MINATAR_COLUMNS = {"dqn": "dqn", "dqn_no_target": "no-target", "dqn_no_replay": "no-replay"}


def minatar_table(runs: pd.DataFrame, published: pd.DataFrame, *, reps: int, seed: int,
                  comparable_budget: bool = True, budget_note: str = "") -> pd.DataFrame:
    """One row per (game, method): the mean over runs of the final 100-episode moving average of training
    returns (what the paper plots), published ± tolerance (2 % of the game's largest published value, the
    figure-reading error) against our 95 % interval."""
    rows = []
    for _, pub in published.iterrows():
        game = pub["game"]
        env = f"MinAtar/{game}"
        scale = max(float(pub[c]) for c in MINATAR_COLUMNS)
        for col, variant in MINATAR_COLUMNS.items():
            g = runs[(runs["env"] == env) & (runs["variant"] == variant)]
            values = pd.to_numeric(g.get("train_return_last100", pd.Series(np.nan, index=g.index)),
                                   errors="coerce").to_numpy(float)
            est, lo, hi = _boot(values, np.mean, reps, seed, f"{env}/{variant}")
            value = float(pub[col])
            tol = 0.02 * scale
            row = {"game": game, "method": col.replace("_", " "), "variant": variant,
                   "runs": _counts(g) if len(g) else "0 runs", "published": f"{value:.1f} ± {tol:.1f}",
                   "ours [95% CI]": fmt_ci(est, lo, hi, 2)}
            if not len(g):
                row.update(verdict="not comparable", reason="no runs of this variant")
            else:
                v = _verdict(value, lo, hi, tol)
                if comparable_budget:
                    row.update(verdict=v, reason="published ± reading error " + ("overlaps" if v == "inside" else
                                                                                 "misses") + " our interval")
                else:
                    row.update(verdict="not comparable", reason=f"{budget_note}; would be {v}")
            rows.append(row)
    return pd.DataFrame(rows)


# -- Dopamine's DQN baselines, per game and iteration ------------------------------------------------------------
DOPAMINE_ITERATION_STEPS = 250_000


def read_published_runs(name: str) -> pd.DataFrame:
    """Published per-run data shipped under ``analysis/published/`` (``dopamine/runs/dopamine-dqn.csv.gz``):
    one row per (run, evaluation point), columns as ``benchmarks/convert_dopamine.py`` writes them."""
    return pd.read_csv(PUBLISHED_DIR / name, dtype={"trial_hash": str, "protocol": str, "params_sha256": str,
                                                    "commit": str}, keep_default_na=False)


def _dopamine_iterations(last: int, complete: int, partial: bool) -> list[int]:
    """The iterations a table shows: the first five, every tenth, Dopamine's last (198), and our last complete
    and partial ones (0-based, as Dopamine numbers them)."""
    keep = {k for k in range(complete) if k < 5 or (k + 1) % 10 == 0 or k == last or k == complete - 1}
    if partial:
        keep.add(complete)
    return sorted(keep)


def dopamine_table(runs: pd.DataFrame, metrics: pd.DataFrame, published: pd.DataFrame, *, reps: int,
                   seed: int) -> pd.DataFrame:
    """One row per (game, iteration): Dopamine's mean over its 5 runs of that iteration's mean training return
    against ours (mean over our runs, 95 % bootstrap interval). Our iteration scores come from the recorded
    training episodes (:func:`analysis.protocol_scores.run_iterations`); runs not recorded under the ``dopamine``
    protocol and iterations our runs only partly covered are not comparable (the latter with the would-be
    verdict)."""
    from analysis.protocol_scores import run_iterations

    rows = []
    for env, g in runs.groupby("env", sort=True):
        pub = published[published["env"] == env]
        protocols = sorted(set(g.get("param.env.protocol", pd.Series(["default"] * len(g))).fillna("default")))
        base = {"game": env.removeprefix("ALE/").removesuffix("-v5"), "runs": _counts(g)}
        if pub.empty:
            rows.append({**base, "iteration": "–", "env steps": "–", "published": "–", "ours [95% CI]": "–",
                         "verdict": "not comparable", "reason": "Dopamine publishes no runs of this game"})
            continue
        if protocols != ["dopamine"]:
            rows.append({**base, "iteration": "–", "env steps": "–", "published": "–", "ours [95% CI]": "–",
                         "verdict": "not comparable",
                         "reason": f"runs recorded under env.protocol={', '.join(protocols)}, not dopamine"})
            continue
        its = run_iterations(g, metrics, DOPAMINE_ITERATION_STEPS)
        complete = its[its["coverage"] >= 1.0].groupby("run_id")["iteration"].max()
        n_complete = int(complete.min()) + 1 if len(complete) == g["run_id"].nunique() and len(complete) else 0
        partial = bool(len(its)) and int(its["iteration"].max()) >= n_complete
        last = int(pub["step"].max()) // DOPAMINE_ITERATION_STEPS - 1
        for k in _dopamine_iterations(last, min(n_complete, last + 1), partial and n_complete <= last):
            step = (k + 1) * DOPAMINE_ITERATION_STEPS
            theirs = pub.loc[pub["step"] == step, "eval_return"].astype(float).to_numpy()
            ours = its[its["iteration"] == k]
            est, lo, hi = _boot(ours["mean_return"].to_numpy(), np.mean, reps, seed, f"dopamine/{env}/{k}")
            row = {**base, "iteration": k, "env steps": f"{step:,}",
                   "published": f"{theirs.mean():.1f} ({len(theirs)} runs)", "ours [95% CI]": fmt_ci(est, lo, hi, 1)}
            v = _verdict(float(theirs.mean()), lo, hi)
            if k >= n_complete:
                cover = float(ours["coverage"].min()) if len(ours) else 0.0
                row.update(verdict="not comparable",
                           reason=f"iteration only {cover:.1%} run ({cover * DOPAMINE_ITERATION_STEPS:,.0f} of "
                                  f"{DOPAMINE_ITERATION_STEPS:,} steps); would be {v}")
            elif v == "not comparable":
                row.update(verdict=v, reason="no training episode ended in this iteration")
            else:
                row.update(verdict=v, reason=f"Dopamine's mean {'in' if v == 'inside' else 'not in'} our 95 % "
                                             "interval")
            rows.append(row)
    return pd.DataFrame(rows)
