"""The suite's reference results (``docs/results/``): tables, figures and the folder's README, from runs in MLflow.

Reads runs only through :mod:`analysis.runs` (the tracking store), never the suite. What it writes, per part:

* classic control (experiment of ``suite/specs/results-classic.yaml``):
  ``classic_control.csv`` with exactly the columns :data:`CLASSIC_COLUMNS` (final evaluation return over seeds:
  mean, sample standard deviation (ddof 1), IQM with its 95 % stratified-bootstrap interval over seeds),
  ``curves_<env>.png`` (IQM of the evaluation return against env steps with a 95 % band, one per environment),
  ``aggregate.png`` + ``aggregate.csv`` (normalised IQM, median, mean, optimality gap with intervals),
  ``improvement.csv`` (P(agent > dqn) with intervals) and ``cost.csv`` (parameters, target bytes, throughput,
  EauDeQN's final sparsity);
* the sensitivity study (``suite/specs/sensitivity-classic.yaml``, variants named ``KNOB=VALUE``):
  ``sensitivity.csv`` (normalised final IQM per method, environment and knob value, with intervals),
  ``sensitivity_share.csv`` (per method and environment: the share of the knob range within 10 % of the best
  IQM, with an interval; definition in :func:`share_within`) and ``sensitivity.png``;
* ``README.md``: the tables, the figures, commits, the command, wall time, CPU-seconds and the machine.

Unfinished work never crashes a table: an expected (agent, env) without finished seeds gets a row with
``seeds = 0`` and empty numbers, and the README marks rows with fewer seeds than planned as partial.

The top-level README quotes headline numbers in a generated block between :data:`README_BEGIN` and
:data:`README_END`; :func:`readme_block` renders it from the CSVs (the generator rewrites it, and
``tests/analysis/test_results.py`` checks that the README's block equals a fresh rendering).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import seaborn as sns

from analysis import figures, stats
from analysis import record_names as names
from analysis.normalization import SCORING_RULE, score_runs

__all__ = ["CLASSIC_COLUMNS", "SENSITIVITY_COLUMNS", "SHARE_COLUMNS", "SHARE_TOLERANCE", "README_BEGIN",
           "README_END", "classic_table", "learning_curves", "aggregate_estimates", "parse_knob",
           "sensitivity_table", "share_within", "improvement_over", "cost_table", "sensitivity_share",
           "write_classic", "write_sensitivity", "run_costs", "provenance", "write_readme", "readme_block",
           "replace_readme_block", "extract_readme_block", "quoted_numbers", "Expected", "IMPROVEMENT_COLUMNS", "COST_COLUMNS", "BASELINE"]

CLASSIC_COLUMNS = ["agent", "env", "steps", "seeds", "mean", "std", "iqm", "iqm_ci_low", "iqm_ci_high"]
SENSITIVITY_COLUMNS = ["method", "agent", "knob", "value", "env", "seeds", "iqm", "iqm_ci_low", "iqm_ci_high"]
SHARE_COLUMNS = ["method", "env", "values", "best_value", "best_iqm", "share", "share_ci_low", "share_ci_high"]
IMPROVEMENT_COLUMNS = ["x", "y", "probability", "ci_low", "ci_high", "tasks"]
COST_COLUMNS = ["agent", "envs", "parameters_min", "parameters_max", "target_bytes_min", "target_bytes_max",
                "seed_steps_per_s", "target_sparsity_final"]
#: the baseline every classic agent is compared with: the hard update of DQN, the question the suite exists for
BASELINE = "dqn"
#: "within 10 % of the best IQM": IQM ≥ best − 0.1·|best| (normalised scores)
SHARE_TOLERANCE = 0.10
ALL_ENVS = "all"
README_BEGIN = "<!-- results:begin (generated from docs/results/*.csv by `make results`; do not edit by hand) -->"
README_END = "<!-- results:end -->"
_KNOB_RE = re.compile(r"^(?P<knob>[^=]+)=(?P<value>[-+0-9.eE]+)$")


@dataclass(frozen=True)
class Expected:
    """What a part planned: (agent, env) pairs, seeds per pair and the step budget (rows are marked against it)."""

    pairs: tuple[tuple[str, str], ...] = ()
    seeds: int = 0
    steps: int | None = None
    variants: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # agent -> planned variant names


# -- classic control ------------------------------------------------------------------------------------------
def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that count in a table: scored by :data:`SCORING_RULE` (running runs drop out, failed score random)."""
    scored = score_runs(runs)
    return scored[scored["scored_as"] != "running-not-scored"]


def _iqm_interval(values: np.ndarray, reps: int, seed: int, name: str) -> tuple[float, float, float]:
    est = stats.interval_estimates({name: [values]}, {"IQM": stats.iqm}, reps=reps, seed=seed).iloc[0]
    return float(est["estimate"]), float(est["ci_low"]), float(est["ci_high"])


def classic_table(runs: pd.DataFrame, *, reps: int = stats.DEFAULT_REPS, seed: int = 0,
                  expected: Expected | None = None) -> pd.DataFrame:
    """One row per (agent, env): final evaluation return over seeds (columns :data:`CLASSIC_COLUMNS`).

    ``steps`` is the run's budget (``param.train.steps``); ``seeds`` the runs scored. Pairs in ``expected``
    without any finished run get a row with ``seeds = 0`` and empty numbers."""
    scored = _finished(runs) if len(runs) else runs.assign(raw_score=[])
    rows = []
    keys = set()
    if len(scored):
        for (agent, env), g in scored.groupby(["agent", "env"], sort=True):
            raw = g["raw_score"].dropna().to_numpy(float)
            steps = pd.to_numeric(g.get("param.train.steps"), errors="coerce").max() if "param.train.steps" in g \
                else np.nan
            iqm, lo, hi = _iqm_interval(raw, reps, seed, f"{agent}/{env}") if len(raw) else (np.nan,) * 3
            rows.append({"agent": agent, "env": env, "steps": steps, "seeds": len(raw),
                         "mean": raw.mean() if len(raw) else np.nan,
                         "std": raw.std(ddof=1) if len(raw) > 1 else np.nan,
                         "iqm": iqm, "iqm_ci_low": lo, "iqm_ci_high": hi})
            keys.add((agent, env))
    for agent, env in (expected.pairs if expected else ()):
        if (agent, env) not in keys:
            rows.append({"agent": agent, "env": env, "steps": expected.steps, "seeds": 0, "mean": np.nan,
                         "std": np.nan, "iqm": np.nan, "iqm_ci_low": np.nan, "iqm_ci_high": np.nan})
    table = pd.DataFrame(rows, columns=CLASSIC_COLUMNS)
    order = {a: i for i, a in enumerate(figures.agent_order(table["agent"].unique()))}
    table = table.assign(_o=table["agent"].map(order)).sort_values(["env", "_o"], kind="stable").drop(columns="_o")
    table["steps"] = table["steps"].astype("Int64")
    table["seeds"] = table["seeds"].astype(int)
    return table.reset_index(drop=True)


def learning_curves(runs: pd.DataFrame, metrics: pd.DataFrame, *, reps: int = stats.DEFAULT_REPS,
                    seed: int = 0) -> pd.DataFrame:
    """IQM over seeds of the raw evaluation return at each evaluation step, per (agent, env), with a 95 %
    bootstrap band over seeds: columns agent, env, x, estimate, ci_low, ci_high, runs."""
    ev = metrics[metrics["metric"] == "eval/return_mean"]
    done = _finished(runs)["run_id"] if len(runs) else pd.Series([], dtype=str)
    ev = ev[ev["run_id"].isin(done)]
    out = []
    for env, g in ev.groupby("env", sort=True):
        curves = pd.DataFrame({"agent": g["agent"], "x": g["step"], "env": env, "seed": g["seed"], "score": g["value"]})
        eff = stats.sample_efficiency(curves, reps=reps, seed=seed)
        out.append(eff.assign(env=env))
    cols = ["agent", "env", "x", "estimate", "ci_low", "ci_high", "runs"]
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)


def aggregate_estimates(runs: pd.DataFrame, *, reps: int = stats.DEFAULT_REPS, seed: int = 0) -> pd.DataFrame:
    """rliable's four aggregates of the normalised final score per agent (environments = tasks), with 95 %
    stratified-bootstrap intervals: the long table of :func:`analysis.stats.interval_estimates`."""
    scored = _finished(runs)
    scored = scored[scored["normalised"]]
    order = figures.agent_order(scored["agent"].unique())
    sd = {a: [g["score"].to_numpy(float) for _, g in scored[scored["agent"] == a].groupby("env", sort=True)]
          for a in order}
    return stats.interval_estimates(sd, reps=reps, seed=seed)


def improvement_over(runs: pd.DataFrame, baseline: str = BASELINE, *, reps: int = stats.DEFAULT_REPS,
                     seed: int = 0) -> pd.DataFrame:
    """P(agent > ``baseline``) for every other agent (rliable's probability of improvement: the Mann–Whitney
    probability that a run of the agent beats a run of the baseline on the same environment, averaged over the
    environments both ran), with a 95 % stratified-bootstrap interval. Columns :data:`IMPROVEMENT_COLUMNS`."""
    scored = _finished(runs) if len(runs) else pd.DataFrame()
    if not len(scored) or baseline not in set(scored["agent"]):
        return pd.DataFrame(columns=IMPROVEMENT_COLUMNS)
    scored = scored[scored["normalised"]]
    task_scores = {a: {env: ge["score"].to_numpy(float) for env, ge in g.groupby("env", sort=True)}
                   for a, g in scored.groupby("agent", sort=True)}
    others = [a for a in figures.agent_order(task_scores) if a != baseline]
    return stats.poi_table(task_scores, [(a, baseline) for a in others], reps=reps, seed=seed)[IMPROVEMENT_COLUMNS]


def cost_table(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """What each agent costs (columns :data:`COST_COLUMNS`): trainable parameters and target-copy bytes per seed
    (params ``parameter_count`` / ``target_bytes``, min and max over environments), training throughput
    (seed-steps per second of a batched group, summed over groups: :func:`run_costs`) and, for agents that record
    ``train/target_sparsity`` (EauDeQN), the mean over runs of its last value (the share of the target's weights
    at zero when training ended)."""
    if runs.empty:
        return pd.DataFrame(columns=COST_COLUMNS)
    spars = metrics[metrics["metric"] == names.TARGET_SPARSITY] if len(metrics) else metrics
    last = spars.sort_values("step").groupby("run_id")["value"].last() if len(spars) else pd.Series(dtype=float)
    rows = []
    for agent in figures.agent_order(runs["agent"].unique()):
        g = runs[runs["agent"] == agent]
        params = pd.to_numeric(g.get("param.parameter_count"), errors="coerce")
        target = pd.to_numeric(g.get("param.target_bytes"), errors="coerce")
        cost = run_costs(g)
        sparsity = last.reindex(g["run_id"]).dropna()
        rows.append({"agent": agent, "envs": int(g["env"].nunique()), "parameters_min": params.min(),
                     "parameters_max": params.max(), "target_bytes_min": target.min(),
                     "target_bytes_max": target.max(),
                     "seed_steps_per_s": cost["seed_steps"] / cost["wall_s"] if cost["wall_s"] else np.nan,
                     "target_sparsity_final": sparsity.mean() if len(sparsity) else np.nan})
    return pd.DataFrame(rows, columns=COST_COLUMNS)


def _slug(env: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", env.lower()).strip("_")


def write_classic(runs: pd.DataFrame, metrics: pd.DataFrame, out: Path, *, reps: int = stats.DEFAULT_REPS,
                  seed: int = 0, expected: Expected | None = None) -> dict[str, Path]:
    """``classic_control.csv``, ``curves_<env>.png`` per environment, ``aggregate.png`` / ``aggregate.csv``,
    ``improvement.csv`` (:func:`improvement_over`) and ``cost.csv`` (:func:`cost_table`)."""
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    table = classic_table(runs, reps=reps, seed=seed, expected=expected)
    paths["classic_control.csv"] = out / "classic_control.csv"
    table.to_csv(paths["classic_control.csv"], index=False)
    colours = figures.agent_style(figures.agent_order(table["agent"].unique()))
    curves = learning_curves(runs, metrics, reps=min(reps, stats.DEFAULT_REPS), seed=seed) if len(runs) else None
    if curves is not None and len(curves):
        curves.to_csv(out / "curves.csv", index=False)
        paths["curves.csv"] = out / "curves.csv"
        for env, g in curves.groupby("env", sort=True):
            fig = figures.plot_sample_efficiency(g, colours, "Environment steps (per seed)",
                                                 y_label="IQM evaluation return (95 % band)")
            fig.suptitle(env, fontsize=8)
            name = f"curves_{_slug(env)}.png"
            fig.savefig(out / name)
            paths[name] = out / name
    if len(runs):
        for name, frame in (("improvement.csv", improvement_over(runs, reps=reps, seed=seed)),
                            ("cost.csv", cost_table(runs, metrics))):
            frame.to_csv(out / name, index=False)
            paths[name] = out / name
        long = aggregate_estimates(runs, reps=reps, seed=seed)
        long.to_csv(out / "aggregate.csv", index=False)
        paths["aggregate.csv"] = out / "aggregate.csv"
        if long["estimate"].notna().any():
            fig = figures.plot_aggregates(long.dropna(subset=["estimate"]), colours)
            fig.savefig(out / "aggregate.png")
            paths["aggregate.png"] = out / "aggregate.png"
    return paths


# -- sensitivity ----------------------------------------------------------------------------------------------
def parse_knob(variant: str) -> tuple[str, float] | None:
    """``"C=500"`` → ``("C", 500.0)``; None for a variant that is not ``KNOB=VALUE`` with a numeric value."""
    m = _KNOB_RE.match(str(variant))
    if not m:
        return None
    try:
        return m["knob"], float(m["value"])
    except ValueError:
        return None


def _sensitivity_cells(runs: pd.DataFrame) -> pd.DataFrame:
    scored = _finished(runs)
    scored = scored[scored["normalised"]].copy()
    parsed = scored["variant"].map(parse_knob)
    scored = scored[parsed.notna()].copy()
    scored["knob"] = [p[0] for p in parsed.dropna()]
    scored["value"] = [p[1] for p in parsed.dropna()]
    scored["method"] = scored["agent"] + " " + scored["knob"]
    return scored


def sensitivity_table(runs: pd.DataFrame, *, reps: int = stats.DEFAULT_REPS, seed: int = 0) -> pd.DataFrame:
    """Normalised final IQM per (method, env, knob value) with a 95 % bootstrap interval over seeds, plus an
    ``env = "all"`` row per value pooling both environments (stratified bootstrap). Columns
    :data:`SENSITIVITY_COLUMNS`; ``method`` is ``"<agent> <knob>"`` from variant names ``KNOB=VALUE``."""
    cells = _sensitivity_cells(runs) if len(runs) else pd.DataFrame()
    rows = []
    if len(cells):
        for (method, value), g in cells.groupby(["method", "value"], sort=True):
            agent, knob = g["agent"].iloc[0], g["knob"].iloc[0]
            tasks = {env: ge["score"].to_numpy(float) for env, ge in g.groupby("env", sort=True)}
            for env, scores in list(tasks.items()) + ([(ALL_ENVS, None)] if len(tasks) > 1 else []):
                t = list(tasks.values()) if scores is None else [scores]
                est = stats.interval_estimates({f"sens/{method}/{env}/{value:g}": t}, {"IQM": stats.iqm},
                                               reps=reps, seed=seed).iloc[0]
                rows.append({"method": method, "agent": agent, "knob": knob, "value": value, "env": env,
                             "seeds": int(est["runs"]), "iqm": est["estimate"], "iqm_ci_low": est["ci_low"],
                             "iqm_ci_high": est["ci_high"]})
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)


def share_within(x: np.ndarray, y: np.ndarray, tolerance: float = SHARE_TOLERANCE) -> np.ndarray:
    """Share of the knob range (in log10 of the knob) where the IQM is within ``tolerance`` of its best.

    ``x``: knob values (V,), positive, sorted; ``y``: IQMs (V,) or a batch (B, V). The IQM between two swept
    values is read by linear interpolation in log10(knob); the threshold is ``best − tolerance·|best|`` with
    ``best`` the largest swept IQM. Returns the length of the log-range above the threshold over the whole
    log-range (one value per row of ``y``)."""
    lx = np.log10(np.asarray(x, dtype=float))
    y = np.atleast_2d(np.asarray(y, dtype=float))
    if len(lx) < 2:
        return np.ones(len(y))
    best = y.max(axis=1, keepdims=True)
    thr = best - tolerance * np.abs(best)
    a, b = y[:, :-1] - thr, y[:, 1:] - thr  # signed distance above the threshold at each segment's ends
    with np.errstate(divide="ignore", invalid="ignore"):
        # fraction of a segment above: 1 both above, 0 both below, else the part on the upper side of the root
        frac = np.where((a >= 0) & (b >= 0), 1.0, np.where((a < 0) & (b < 0), 0.0,
                        np.where(a >= 0, a / (a - b), b / (b - a))))
    width = np.diff(lx)
    return (frac * width).sum(axis=1) / width.sum()


def sensitivity_share(runs: pd.DataFrame, *, reps: int = stats.DEFAULT_REPS, seed: int = 0,
                      tolerance: float = SHARE_TOLERANCE) -> pd.DataFrame:
    """Per method and environment (and ``all``): :func:`share_within` of the IQM curve, with a 95 % percentile
    bootstrap interval: each repetition resamples the seeds of every (knob value, env) cell independently
    (stratified by environment for ``all``), recomputes every value's IQM, the best and the share. Columns
    :data:`SHARE_COLUMNS`."""
    cells = _sensitivity_cells(runs) if len(runs) else pd.DataFrame()
    rows = []
    if not len(cells):
        return pd.DataFrame(columns=SHARE_COLUMNS)
    for method, gm in cells.groupby("method", sort=True):
        envs = sorted(gm["env"].unique())
        for env in envs + ([ALL_ENVS] if len(envs) > 1 else []):
            ge = gm if env == ALL_ENVS else gm[gm["env"] == env]
            values = np.array(sorted(ge["value"].unique()), dtype=float)
            if len(values) < 2 or np.any(values <= 0):
                continue
            point = np.empty(len(values))
            boot = np.empty((reps, len(values)))
            for j, v in enumerate(values):
                gv = ge[ge["value"] == v]
                tasks = stats.as_task_list([g["score"].to_numpy(float) for _, g in gv.groupby("env", sort=True)])
                point[j] = stats.iqm(np.concatenate(tasks)) if tasks else np.nan
                boot[:, j] = stats.bootstrap_distribution(tasks, stats.iqm, reps, stats.agent_rng(
                    seed, f"share/{method}/{env}/{v:g}")) if tasks else np.nan
            keep = np.isfinite(point)
            values, point, boot = values[keep], point[keep], boot[:, keep]
            if len(values) < 2:
                continue
            share = float(share_within(values, point, tolerance)[0])
            lo, hi = np.percentile(share_within(values, boot, tolerance), [2.5, 97.5])
            rows.append({"method": method, "env": env, "values": len(values),
                         "best_value": float(values[int(np.argmax(point))]), "best_iqm": float(point.max()),
                         "share": share, "share_ci_low": float(lo), "share_ci_high": float(hi)})
    return pd.DataFrame(rows, columns=SHARE_COLUMNS)


def plot_sensitivity(table: pd.DataFrame):
    """One panel per environment: normalised final IQM with 95 % intervals against each method's knob divided by
    the geometric centre of its swept range (log axis), so methods with different knobs share an axis."""
    envs = [e for e in sorted(table["env"].unique()) if e != ALL_ENVS]
    methods = sorted(table["method"].unique())
    colours = dict(zip(methods, sns.color_palette("colorblind", max(len(methods), 1))))
    fig = figures.new_figure(figures.TEXT_WIDTH, 2.9)
    axes = np.atleast_1d(fig.subplots(1, max(len(envs), 1), sharey=True, squeeze=False)).ravel()
    for ax, env in zip(axes, envs):
        for i, m in enumerate(methods):
            g = table[(table["method"] == m) & (table["env"] == env)].sort_values("value")
            if g.empty:
                continue
            allv = table.loc[table["method"] == m, "value"].astype(float)
            centre = float(np.sqrt(allv.min() * allv.max()))
            x = g["value"].astype(float).to_numpy() / centre
            ax.errorbar(x, g["iqm"], yerr=[g["iqm"] - g["iqm_ci_low"], g["iqm_ci_high"] - g["iqm"]],
                        color=colours[m], marker=figures.MARKERS[i % len(figures.MARKERS)], ms=3, lw=1.1, capsize=2,
                        label=f"{m} ({allv.min():g}–{allv.max():g})")
        ax.set_xscale("log")
        ax.set_title(env)
        ax.set_xlabel("knob ÷ geometric centre of its swept range")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("IQM final normalised score")
    if envs:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3, frameon=False)
    return fig


def write_sensitivity(runs: pd.DataFrame, out: Path, *, reps: int = stats.DEFAULT_REPS,
                      seed: int = 0) -> dict[str, Path]:
    """``sensitivity.csv``, ``sensitivity_share.csv`` and ``sensitivity.png``."""
    out.mkdir(parents=True, exist_ok=True)
    table = sensitivity_table(runs, reps=reps, seed=seed)
    share = sensitivity_share(runs, reps=reps, seed=seed)
    paths = {"sensitivity.csv": out / "sensitivity.csv", "sensitivity_share.csv": out / "sensitivity_share.csv"}
    table.to_csv(paths["sensitivity.csv"], index=False)
    share.to_csv(paths["sensitivity_share.csv"], index=False)
    if len(table):
        plot_sensitivity(table).savefig(out / "sensitivity.png")
        paths["sensitivity.png"] = out / "sensitivity.png"
    return paths


# -- provenance and cost --------------------------------------------------------------------------------------
def run_costs(runs: pd.DataFrame) -> dict[str, float]:
    """Wall time and CPU-seconds of the groups behind ``runs`` (seeds batched in one process are one group).

    Per group (tag ``group_hash``): wall = the ``group_wall_s`` tag (training wall time over every resumed
    attempt, set by the scheduler), else the span of its runs' MLflow start/end times; CPU-seconds = the
    ``group_cpu_s`` tag (user+system time of the worker process of the group's last attempt, startup included),
    counted only where recorded. Returns groups, wall_s, cpu_s, groups_with_cpu, seed_steps."""
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
    return {"groups": int(key.nunique()), "wall_s": wall, "cpu_s": cpu, "groups_with_cpu": n_cpu,
            "seed_steps": int(steps)}


def provenance(runs: pd.DataFrame) -> dict[str, str]:
    """Commits (with dirty flags), machines and package versions recorded by the runs, as display strings."""
    def values(col: str) -> list[str]:
        return sorted(runs[col].dropna().astype(str).unique()) if col in runs else []

    commits = []
    if "tag.git_commit" in runs:
        for c, g in runs.groupby(runs["tag.git_commit"].fillna("unknown")):
            dirty = (g.get("tag.git_dirty", pd.Series(dtype=str)) == "true").any()
            commits.append(f"{c[:12]}{' (dirty)' if dirty else ''} ({len(g)} runs)")
    machines = []
    cols = ["tag.platform", "tag.cpu_count", "tag.torch_device", "tag.gpu"]
    present = [c for c in cols if c in runs]
    if present:
        for key, g in runs.groupby([runs[c].fillna("–") for c in present]):
            key = key if isinstance(key, tuple) else (key,)
            d = dict(zip(present, key))
            gpu = d.get("tag.gpu", "–")
            device = d.get("tag.torch_device", "?") + ("" if gpu == "–" else f" ({gpu})")
            machines.append(f"{d.get('tag.platform', '?')}, {d.get('tag.cpu_count', '?')} cores, device {device} "
                            f"({len(g)} runs)")
    versions = [f"{c.split('.', 2)[-1]} {', '.join(values(c))}" for c in sorted(runs.columns)
                if c.startswith("tag.version.") and values(c)]
    return {"commits": "; ".join(commits) or "not recorded", "machines": "; ".join(machines) or "not recorded",
            "versions": ", ".join(versions) or "not recorded"}


# -- README --------------------------------------------------------------------------------------------------
def _f(x, digits: int = 1) -> str:
    return "–" if x is None or pd.isna(x) else f"{float(x):.{digits}f}"


def _with_ci(estimate, low, high, digits: int = 1) -> str:
    """``estimate [low, high]``, each as :func:`_f` writes it."""
    return f"{_f(estimate, digits)} [{_f(low, digits)}, {_f(high, digits)}]"


def _classic_markdown(table: pd.DataFrame, expected_seeds: int) -> str:
    lines = ["| agent | env | steps | seeds | mean ± std | IQM [95 % CI] | status |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in table.itertuples(index=False):
        status = ("pending" if r.seeds == 0 else
                  f"partial ({r.seeds}/{expected_seeds} seeds)" if expected_seeds and r.seeds < expected_seeds
                  else "complete")
        steps = "–" if pd.isna(r.steps) else f"{int(r.steps):,}"
        lines.append(f"| {r.agent} | {r.env} | {steps} | {r.seeds} | {_f(r.mean)} ± {_f(r.std)} | "
                     f"{_with_ci(r.iqm, r.iqm_ci_low, r.iqm_ci_high)} | {status} |")
    return "\n".join(lines)


def _share_markdown(share: pd.DataFrame) -> str:
    lines = ["| method | env | values | best value | best IQM | share within 10 % [95 % CI] |",
             "|---|---|---:|---:|---:|---:|"]
    for r in share.itertuples(index=False):
        lines.append(f"| {r.method} | {r.env} | {r.values} | {r.best_value:g} | {_f(r.best_iqm, 2)} | "
                     f"{_with_ci(r.share, r.share_ci_low, r.share_ci_high, 2)} |")
    return "\n".join(lines)


def _improvement_markdown(table: pd.DataFrame) -> str:
    lines = ["| X | P(X > " + BASELINE + ") [95 % CI] | environments |", "|---|---:|---:|"]
    for r in table.itertuples(index=False):
        lines.append(f"| {r.x} | {_with_ci(r.probability, r.ci_low, r.ci_high, 2)} | {r.tasks} |")
    return "\n".join(lines)


def _span(lo, hi) -> str:
    if pd.isna(lo):
        return "–"
    return f"{int(lo):,}" if lo == hi else f"{int(lo):,}–{int(hi):,}"


def _cost_markdown(table: pd.DataFrame) -> str:
    lines = ["| agent | parameters | target bytes | seed-steps/s | final target sparsity |",
             "|---|---:|---:|---:|---:|"]
    for r in table.itertuples(index=False):
        lines.append(f"| {r.agent} | {_span(r.parameters_min, r.parameters_max)} | "
                     f"{_span(r.target_bytes_min, r.target_bytes_max)} | "
                     f"{'–' if pd.isna(r.seed_steps_per_s) else f'{r.seed_steps_per_s:,.0f}'} | "
                     f"{_f(r.target_sparsity_final, 3)} |")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 60 else \
        f"{seconds:.0f} s"


def _cost_line(name: str, cost: Mapping[str, float] | None) -> str:
    if not cost or not cost.get("groups"):
        return f"- {name}: no runs yet"
    cpu = (f"{cost['cpu_s']:,.0f} CPU-s" + (f" (recorded for {cost['groups_with_cpu']} of {cost['groups']} groups)"
                                           if cost["groups_with_cpu"] < cost["groups"] else "")
           if cost["groups_with_cpu"] else "CPU-s not recorded")
    rate = cost["seed_steps"] / cost["wall_s"] if cost["wall_s"] else float("nan")
    return (f"- {name}: {cost['groups']} groups, {cost['seed_steps']:,} seed-steps, {_duration(cost['wall_s'])} "
            f"summed group training time ({rate:,.0f} seed-steps/s per group), {cpu}")


def write_readme(out: Path, *, command: str, parts: Mapping[str, Mapping[str, object]],
                 expected: Mapping[str, Expected] | None = None, invocation: str = "") -> Path:
    """``out/README.md`` from what is in ``out`` (CSVs, PNGs, reproduced tables) and ``parts``:
    part name → {"experiment", "runs" (the run table), "command"}; missing parts are marked as not run."""
    expected = expected or {}
    lines = ["# TargetBench reference results", "",
             "Generated by `analysis/results.py` from the runs in the tracking store; do not edit by hand. "
             f"Regenerate everything with `{command}` (resumable: finished trials are skipped); one part alone "
             "with `make results PART=classic|sensitivity|cartpole|minatar`.", ""]
    all_runs = [p["runs"] for p in parts.values() if isinstance(p.get("runs"), pd.DataFrame) and len(p["runs"])]
    prov = provenance(pd.concat(all_runs, ignore_index=True)) if all_runs else None
    lines += ["## Provenance", ""]
    if prov:
        lines += [f"- commits: {prov['commits']}", f"- machines: {prov['machines']}", f"- packages: {prov['versions']}"]
    else:
        lines += ["- no runs yet"]
    lines += [""] + [_cost_line(f"{name} (experiment `{p.get('experiment', '?')}`)",
                                run_costs(p["runs"]) if isinstance(p.get("runs"), pd.DataFrame) else None)
                     for name, p in parts.items()]
    lines += ["", "Training time: per batched group, the training loop's wall time over every resumed attempt (tag "
              "`group_wall_s`, process start-up not included; the span of the runs' MLflow start and end times "
              "where that tag is missing), summed over groups: groups that ran side by side are counted each. "
              "CPU-seconds: user + system time of each group's worker process, start-up included (tag "
              "`group_cpu_s`, the last attempt's process only)."
              + (f" Last invocation of the generator: {invocation}." if invocation else ""), ""]
    classic = out / "classic_control.csv"
    lines += ["## Classic control", ""]
    if classic.exists():
        table = pd.read_csv(classic)
        exp = expected.get("classic")
        lines += [f"Final evaluation return (mean greedy return of the last evaluation, 10 episodes, ε_eval = "
                  f"0.001) over seeds; IQM with its 95 % stratified-bootstrap interval over seeds. {SCORING_RULE} "
                  "Data: [classic_control.csv](classic_control.csv).", "",
                  _classic_markdown(table, exp.seeds if exp else 0), ""]
        for png in sorted(out.glob("curves_*.png")):
            lines += [f"![{png.stem}]({png.name})", ""]
        if (out / "aggregate.png").exists():
            lines += ["Aggregate over the environments (normalised: 0 = uniform-random policy, 1 = the "
                      "environment's gymnasium reward threshold; IQM, median, mean, optimality gap with 95 % "
                      "stratified-bootstrap intervals; [aggregate.csv](aggregate.csv)):", "",
                      "![aggregate](aggregate.png)", ""]
        if (out / "improvement.csv").exists():
            lines += [f"Probability of improvement over `{BASELINE}` (hard target update): P(X > {BASELINE}), the "
                      f"chance that a run of X beats a run of {BASELINE} on the same environment, averaged over the "
                      "environments, with its 95 % stratified-bootstrap interval; 0.5 = no difference "
                      "([improvement.csv](improvement.csv)).", "",
                      _improvement_markdown(pd.read_csv(out / "improvement.csv")), ""]
        if (out / "cost.csv").exists():
            lines += ["Cost per agent: trainable parameters and target-copy bytes per seed (min–max over the "
                      "environments), training throughput (seed-steps per second of one batched group: the seeds "
                      "of one (agent, environment) trained together in one process, on the machine under Provenance, "
                      "groups side by side as the scheduler ran them), and for EauDeQN the share of its target's "
                      "weights at zero when training ended ([cost.csv](cost.csv)).", "",
                      _cost_markdown(pd.read_csv(out / "cost.csv")), ""]
    else:
        lines += ["Not run yet.", ""]
    lines += ["## Target-knob sensitivity", ""]
    share = out / "sensitivity_share.csv"
    if share.exists():
        lines += ["Normalised final IQM against each method's own target knob (variants `KNOB=VALUE`), with 95 % "
                  "bootstrap intervals over seeds ([sensitivity.csv](sensitivity.csv)); `all` pools both "
                  "environments (stratified bootstrap). Share within 10 %: the part of the swept knob range, "
                  "measured in log10 of the knob with the IQM interpolated linearly between swept values, where "
                  "the IQM is at least best − 0.1·|best|; its interval is the 2.5–97.5 % percentile of the share "
                  "over bootstrap repetitions that resample the seeds of every (value, environment) cell "
                  "([sensitivity_share.csv](sensitivity_share.csv)).", "",
                  _share_markdown(pd.read_csv(share)), ""]
        if (out / "sensitivity.png").exists():
            lines += ["![sensitivity](sensitivity.png)", ""]
    else:
        lines += ["Not run yet.", ""]
    lines += ["## Published tables reproduced", ""]
    repro = sorted(out.glob("reproduce-*.md"))
    for md in repro:
        lines += [md.read_text().rstrip(), ""]
    if not repro:
        lines += ["Not run yet.", ""]
    path = out / "README.md"
    path.write_text("\n".join(lines))
    return path


def readme_block(out: Path) -> str:
    """The top-level README's generated block (between the markers), from the CSVs in ``out`` only."""
    classic, share = out / "classic_control.csv", out / "sensitivity_share.csv"
    lines = [README_BEGIN]
    if classic.exists():
        t = pd.read_csv(classic)
        envs = list(dict.fromkeys(t["env"]))
        steps = sorted({int(s) for s in t["steps"].dropna()})
        lines += [f"Final evaluation return, IQM over seeds [95 % CI], {'/'.join(f'{s:,}' for s in steps)} env steps "
                  "([docs/results/classic_control.csv](docs/results/classic_control.csv)):", "",
                  "| agent | " + " | ".join(envs) + " |", "|---|" + "---:|" * len(envs)]
        for agent in figures.agent_order(t["agent"].unique()):
            cells = []
            for env in envs:
                r = t[(t["agent"] == agent) & (t["env"] == env)]
                cells.append("–" if r.empty or pd.isna(r["iqm"].iloc[0]) else
                             _with_ci(*r[["iqm", "iqm_ci_low", "iqm_ci_high"]].iloc[0]))
            lines.append(f"| {agent} | " + " | ".join(cells) + " |")
        lines.append("")
    improvement = out / "improvement.csv"
    if improvement.exists():
        lines += [f"Does it beat the hard update? P(X > {BASELINE}) over the classic environments [95 % CI], 0.5 = no "
                  "difference ([docs/results/improvement.csv](docs/results/improvement.csv)):", ""]
        lines += [f"- {r.x}: {_with_ci(r.probability, r.ci_low, r.ci_high, 2)}"
                  for r in pd.read_csv(improvement).itertuples(index=False)]
        lines.append("")
    if share.exists():
        s = pd.read_csv(share)
        s = s[s["env"] == ALL_ENVS] if (s["env"] == ALL_ENVS).any() else s
        lines += ["Share of each target knob's swept range within 10 % of its best IQM [95 % CI] "
                  "([docs/results/sensitivity_share.csv](docs/results/sensitivity_share.csv)):", ""]
        lines += [f"- {r.method} ({r.env}): {_with_ci(r.share, r.share_ci_low, r.share_ci_high, 2)}"
                  for r in s.itertuples(index=False)]
        lines.append("")
    repro = [p for p in sorted(out.glob("reproduce-*.csv")) if not p.stem.endswith("-quick")]
    if repro:
        lines += ["Published tables reproduced, verdicts per row (inside: the published value lies in our 95 % "
                  "interval):", ""]
        for csv in repro:
            verdicts = pd.read_csv(csv)["verdict"].value_counts()
            md = csv.with_suffix(".md")
            head = md.read_text().splitlines()[0].removeprefix("### ") if md.exists() else csv.stem
            counts = ", ".join(f"{int(verdicts.get(v, 0))} {v}" for v in ("inside", "outside", "not comparable"))
            lines.append(f"- {head}: {counts} of {int(verdicts.sum())} rows "
                         f"([docs/results/{md.name}](docs/results/{md.name}))")
        lines.append("")
    if not classic.exists() and not share.exists() and not repro:
        lines += ["Reference results (`docs/results/`) have not been generated yet: `make results` writes them."]
    lines.append(README_END)
    return "\n".join(lines)


def replace_readme_block(text: str, block: str) -> str:
    """``text`` with its generated block replaced by ``block``; a one-line ``ValueError`` without markers."""
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"README has no generated results block ({README_BEGIN!r} ... {README_END!r})")
    return text[:start] + block + text[end + len(README_END):]


def extract_readme_block(text: str) -> str:
    """The generated block of ``text``, markers included."""
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError("README has no generated results block")
    return text[start:end + len(README_END)]


def quoted_numbers(block: str) -> list[str]:
    """Every decimal number quoted in a generated block (for the check against the CSVs)."""
    body = block.replace(README_BEGIN, "").replace(README_END, "")
    body = re.sub(r"\([^)]*\.csv\)", "", body)  # links
    return re.findall(r"-?\d+\.\d+", body)
