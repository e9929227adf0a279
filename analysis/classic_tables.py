"""The classic-control tables of docs/results: final returns, learning curves, aggregates, P(X > dqn), cost.

Every function takes runs in the shape of :func:`analysis.run_table.to_frames` (which is also the tracking
store's shape, :func:`analysis.runs.load_experiment`) and returns a DataFrame with fixed columns. A run of a
variant other than ``default`` (the ``tuned`` readings) is its own row, labelled ``agent/variant``
(:func:`labelled`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import figures, stats
from analysis import record_names as names
from analysis.normalization import score_runs

__all__ = ["CLASSIC_COLUMNS", "IMPROVEMENT_COLUMNS", "COST_COLUMNS", "BASELINE", "Expected", "labelled",
           "finished", "classic_table", "learning_curves", "aggregate_estimates", "improvement_over", "cost_table",
           "run_costs"]

CLASSIC_COLUMNS = ["agent", "variant", "env", "steps", "seeds", "mean", "std", "iqm", "iqm_ci_low", "iqm_ci_high"]
IMPROVEMENT_COLUMNS = ["x", "y", "probability", "ci_low", "ci_high", "tasks"]
COST_COLUMNS = ["agent", "envs", "parameters_min", "parameters_max", "target_bytes_min", "target_bytes_max",
                "wall_s", "seed_steps_per_s", "device", "target_sparsity_final"]
#: the baseline every classic agent is compared with: the hard update of DQN, the question the suite exists for
BASELINE = "dqn"


@dataclass(frozen=True)
class Expected:
    """What a part planned: (agent, variant, env) cells, seeds per cell and the step budget (rows are marked
    against it)."""

    cells: tuple[tuple[str, str, str], ...] = ()
    seeds: int = 0
    steps: int | None = None


def labelled(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``label``: the agent, or ``agent/variant`` for a variant other than ``default``."""
    out = runs.copy()
    variant = out["variant"].fillna(names.DEFAULT_VARIANT).astype(str) if "variant" in out else names.DEFAULT_VARIANT
    out["label"] = np.where(variant == names.DEFAULT_VARIANT, out["agent"], out["agent"] + "/" + variant)
    return out


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that count in a table, labelled and scored by :data:`analysis.normalization.SCORING_RULE` (running
    runs drop out, failed ones score as the random policy)."""
    scored = labelled(score_runs(runs))
    return scored[scored["scored_as"] != "running-not-scored"]


def classic_table(runs: pd.DataFrame, *, reps: int = stats.DEFAULT_REPS, seed: int = 0,
                  expected: Expected | None = None) -> pd.DataFrame:
    """One row per (agent, variant, env): final evaluation return over seeds (columns :data:`CLASSIC_COLUMNS`):
    mean, sample standard deviation (ddof 1), IQM with its 95 % stratified-bootstrap interval.

    ``steps`` is the run's budget (``param.train.steps``); ``seeds`` the runs scored. Cells of ``expected``
    without any finished run get a row with ``seeds = 0`` and empty numbers."""
    scored = finished(runs) if len(runs) else runs.assign(raw_score=[])
    rows, keys = [], set()
    if len(scored):
        for (agent, variant, env), g in scored.groupby(["agent", "variant", "env"], sort=True):
            raw = g["raw_score"].dropna().to_numpy(float)
            steps = pd.to_numeric(g["param.train.steps"], errors="coerce").max() if "param.train.steps" in g \
                else np.nan
            if len(raw):
                est = stats.interval_estimates({f"{g['label'].iloc[0]}/{env}": [raw]}, {"IQM": stats.iqm},
                                               reps=reps, seed=seed).iloc[0]
                iqm, lo, hi = float(est["estimate"]), float(est["ci_low"]), float(est["ci_high"])
            else:
                iqm = lo = hi = np.nan
            rows.append({"agent": agent, "variant": variant, "env": env, "steps": steps, "seeds": len(raw),
                         "mean": raw.mean() if len(raw) else np.nan,
                         "std": raw.std(ddof=1) if len(raw) > 1 else np.nan,
                         "iqm": iqm, "iqm_ci_low": lo, "iqm_ci_high": hi})
            keys.add((agent, variant, env))
    for agent, variant, env in (expected.cells if expected else ()):
        if (agent, variant, env) not in keys:
            rows.append({"agent": agent, "variant": variant, "env": env, "steps": expected.steps, "seeds": 0,
                         "mean": np.nan, "std": np.nan, "iqm": np.nan, "iqm_ci_low": np.nan, "iqm_ci_high": np.nan})
    table = pd.DataFrame(rows, columns=CLASSIC_COLUMNS)
    labels = labelled(table)["label"] if len(table) else pd.Series(dtype=str)
    order = {a: i for i, a in enumerate(figures.agent_order(labels.unique()))}
    table = table.assign(_o=labels.map(order)).sort_values(["env", "_o"], kind="stable").drop(columns="_o")
    table["steps"] = table["steps"].astype("Int64")
    table["seeds"] = table["seeds"].astype(int)
    return table.reset_index(drop=True)


def learning_curves(runs: pd.DataFrame, metrics: pd.DataFrame, *, reps: int = stats.DEFAULT_REPS,
                    seed: int = 0) -> pd.DataFrame:
    """IQM over seeds of the raw evaluation return at each evaluation step, per (label, env), with a 95 %
    bootstrap band over seeds: columns agent (the label), env, x, estimate, ci_low, ci_high, runs."""
    cols = ["agent", "env", "x", "estimate", "ci_low", "ci_high", "runs"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    done = finished(runs).set_index("run_id")["label"]
    ev = metrics[(metrics["metric"] == names.EVAL_RETURN) & metrics["run_id"].isin(done.index)]
    out = []
    for env, g in ev.groupby("env", sort=True):
        curves = pd.DataFrame({"agent": g["run_id"].map(done), "x": g["step"], "env": env, "seed": g["seed"],
                               "score": g["value"]})
        out.append(stats.sample_efficiency(curves, reps=reps, seed=seed).assign(env=env))
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)


def aggregate_estimates(runs: pd.DataFrame, *, reps: int = stats.DEFAULT_REPS, seed: int = 0) -> pd.DataFrame:
    """rliable's four aggregates of the normalised final score per label (environments = tasks), with 95 %
    stratified-bootstrap intervals: the long table of :func:`analysis.stats.interval_estimates`."""
    scored = finished(runs)
    scored = scored[scored["normalised"]]
    order = figures.agent_order(scored["label"].unique())
    sd = {a: [g["score"].to_numpy(float) for _, g in scored[scored["label"] == a].groupby("env", sort=True)]
          for a in order}
    return stats.interval_estimates(sd, reps=reps, seed=seed)


def improvement_over(runs: pd.DataFrame, baseline: str = BASELINE, *, reps: int = stats.DEFAULT_REPS,
                     seed: int = 0) -> pd.DataFrame:
    """P(label > ``baseline``) for every other label (rliable's probability of improvement: the Mann–Whitney
    probability that a run of X beats a run of the baseline on the same environment, averaged over the
    environments both ran), with a 95 % stratified-bootstrap interval. Columns :data:`IMPROVEMENT_COLUMNS`."""
    scored = finished(runs) if len(runs) else pd.DataFrame()
    if not len(scored) or baseline not in set(scored["label"]):
        return pd.DataFrame(columns=IMPROVEMENT_COLUMNS)
    scored = scored[scored["normalised"]]
    task_scores = {a: {env: ge["score"].to_numpy(float) for env, ge in g.groupby("env", sort=True)}
                   for a, g in scored.groupby("label", sort=True)}
    others = [a for a in figures.agent_order(task_scores) if a != baseline]
    return stats.poi_table(task_scores, [(a, baseline) for a in others], reps=reps, seed=seed)[IMPROVEMENT_COLUMNS]


def run_costs(runs: pd.DataFrame) -> dict[str, float]:
    """Wall time and CPU-seconds of the groups behind ``runs`` (seeds batched in one process are one group).

    Per group (tag ``group_hash``): wall = the ``group_wall_s`` tag (training wall time over every resumed
    attempt, set by the scheduler), else the span of its runs' start/end times; CPU-seconds = the ``group_cpu_s``
    tag (user+system time of the worker process of the group's last attempt, startup included), counted only
    where recorded. Returns groups, wall_s, cpu_s, groups_with_cpu, seed_steps."""
    if runs.empty:
        return {"groups": 0, "wall_s": 0.0, "cpu_s": 0.0, "groups_with_cpu": 0, "seed_steps": 0}
    key = runs[f"tag.{names.GROUP_HASH}"] if f"tag.{names.GROUP_HASH}" in runs else runs["run_id"]
    wall = cpu = 0.0
    n_cpu = 0
    for _, g in runs.groupby(key.fillna(runs["run_id"])):
        w = pd.to_numeric(g.get(f"tag.{names.GROUP_WALL_S}", pd.Series(dtype=float)), errors="coerce").max()
        if not np.isfinite(w):
            span = (pd.to_numeric(g["end_time"], errors="coerce").max() -
                    pd.to_numeric(g["start_time"], errors="coerce").min()) / 1000.0
            w = span if np.isfinite(span) else 0.0
        wall += float(w)
        c = pd.to_numeric(g.get(f"tag.{names.GROUP_CPU_S}", pd.Series(dtype=float)), errors="coerce").max()
        if np.isfinite(c):
            cpu += float(c)
            n_cpu += 1
    steps = pd.to_numeric(runs.get("final_step", pd.Series(dtype=float)), errors="coerce").fillna(0).sum()
    return {"groups": int(key.fillna(runs["run_id"]).nunique()), "wall_s": wall, "cpu_s": cpu,
            "groups_with_cpu": n_cpu, "seed_steps": int(steps)}


def cost_table(runs: pd.DataFrame) -> pd.DataFrame:
    """What each label costs (columns :data:`COST_COLUMNS`): trainable parameters and target-copy bytes per seed
    (params ``parameter_count`` / ``target_bytes``, min and max over environments), the summed group wall time
    and training throughput (seed-steps per second of a batched group: :func:`run_costs`), the device it trained
    on (tag ``torch_device``, with the GPU's name where one was used) and, for agents that record
    ``train/target_sparsity`` (EauDeQN), the mean over runs of its last value (the share of the target's weights
    at zero when training ended)."""
    if runs.empty:
        return pd.DataFrame(columns=COST_COLUMNS)
    runs = labelled(runs)
    rows = []
    for label in figures.agent_order(runs["label"].unique()):
        g = runs[runs["label"] == label]
        params = pd.to_numeric(g.get("param.parameter_count"), errors="coerce")
        target = pd.to_numeric(g.get("param.target_bytes"), errors="coerce")
        cost = run_costs(g)
        sparsity = pd.to_numeric(g.get("target_sparsity", pd.Series(dtype=float)), errors="coerce").dropna()
        device = g.get("tag.torch_device", pd.Series("", index=g.index)).fillna("").astype(str)
        gpu = g.get("tag.gpu", pd.Series("", index=g.index)).fillna("").astype(str)
        devices = sorted({d + (f" ({x})" if x else "") for d, x in zip(device, gpu) if d})
        rows.append({"agent": label, "envs": int(g["env"].nunique()), "parameters_min": params.min(),
                     "parameters_max": params.max(), "target_bytes_min": target.min(),
                     "target_bytes_max": target.max(), "wall_s": cost["wall_s"],
                     "seed_steps_per_s": cost["seed_steps"] / cost["wall_s"] if cost["wall_s"] else np.nan,
                     "device": ", ".join(devices) or "not recorded",
                     "target_sparsity_final": sparsity.mean() if len(sparsity) else np.nan})
    return pd.DataFrame(rows, columns=COST_COLUMNS)
