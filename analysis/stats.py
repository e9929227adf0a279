"""Aggregate statistics with stratified-bootstrap intervals (Agarwal et al. 2021, "rliable"), vectorised numpy.

Scores of one agent are a list of per-task arrays (task = environment; one entry per run/seed), so tasks may
have different run counts (a failed run is scored, a missing one is not). A **stratified bootstrap** resamples
runs with replacement *within each task*, independently, then recomputes the statistic on the pooled
resample; the 95 % interval is the 2.5 / 97.5 percentiles of the bootstrap distribution (rliable's default
"percentile" method). With equal run counts this is exactly rliable's ``StratifiedBootstrap`` on an
``(runs × tasks)`` matrix; ``tests/analysis/test_stats.py`` checks the intervals agree within Monte-Carlo error.

Why not rliable's own ``get_interval_estimates``: it resamples one repetition at a time through ``arch``
(slow: see ``benchmarks/bench_bootstrap.py``) and draws from numpy's *global* generator (its
``random_state`` argument does not reach the draws), so intervals are not reproducible without global state.
Here every call takes a seed; each agent's draws come from ``default_rng([seed, crc32(agent)])``, so an
agent's interval does not depend on which other agents are in the report.

Aggregates (rliable's definitions, on normalised scores): IQM = mean of the middle 50 % of the pooled scores
(``scipy.stats.trim_mean(x, 0.25)``), median, mean, optimality gap = mean of ``max(γ − x, 0)`` with γ = 1.
"""
from __future__ import annotations

import zlib
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["iqm", "median", "mean", "optimality_gap", "AGGREGATES", "agent_rng", "bootstrap_distribution",
           "interval_estimates", "aggregate_table", "performance_profile", "probability_of_improvement",
           "poi_table", "sample_efficiency", "as_task_list", "DEFAULT_REPS", "PUBLICATION_REPS"]

DEFAULT_REPS = 2_000
PUBLICATION_REPS = 50_000
_CHUNK_ELEMENTS = 4_000_000  # resampled values held at once (32 MB of float64)

TaskScores = Sequence[np.ndarray]  # one array of run scores per task


# -- aggregates on the last axis (work on a single array or a (reps, N) batch) ----------------------------
def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean along ``axis``: trims ``int(0.25 n)`` from each end, like scipy's trim_mean."""
    x = np.moveaxis(np.asarray(x, dtype=float), axis, -1)
    n = x.shape[-1]
    lo = int(0.25 * n)
    hi = n - lo
    if lo == 0:
        return x.mean(axis=-1)
    part = np.partition(x, (lo, hi - 1), axis=-1)  # elements lo..hi-1 are the middle ones, as a set
    return part[..., lo:hi].mean(axis=-1)


def median(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(x, axis=axis)


def mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def optimality_gap(x: np.ndarray, axis: int = -1, gamma: float = 1.0) -> np.ndarray:
    """Mean shortfall below γ (= 1, the reference score): ``mean(max(γ − x, 0))``; lower is better."""
    return np.mean(np.maximum(gamma - np.asarray(x, dtype=float), 0.0), axis=axis)


def _iqm_sorted(x: np.ndarray, axis: int = -1) -> np.ndarray:
    n = x.shape[-1]
    lo = int(0.25 * n)
    return x[..., lo:n - lo].mean(axis=-1)


def _median_sorted(x: np.ndarray, axis: int = -1) -> np.ndarray:
    n = x.shape[-1]
    return x[..., n // 2] if n % 2 else 0.5 * (x[..., n // 2 - 1] + x[..., n // 2])


_ON_SORTED = {iqm: _iqm_sorted, median: _median_sorted}

#: the four rliable aggregates, in report order
AGGREGATES: dict[str, Callable[..., np.ndarray]] = {"IQM": iqm, "Median": median, "Mean": mean,
                                                    "Optimality gap": optimality_gap}


# -- helpers -------------------------------------------------------------------------------------------------
def agent_rng(seed: int, name: str = "") -> np.random.Generator:
    """The generator for one agent (or pair): depends on the seed and the name only."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def as_task_list(scores) -> list[np.ndarray]:
    """Accept a ``(runs × tasks)`` matrix (rliable's layout) or a list of per-task arrays; drop NaNs per task."""
    if isinstance(scores, np.ndarray) and scores.ndim == 2:
        cols = [scores[:, j] for j in range(scores.shape[1])]
    else:
        cols = [np.asarray(c, dtype=float).ravel() for c in scores]
    cols = [c[np.isfinite(c)].astype(float) for c in cols]
    return [c for c in cols if len(c)]


def _resample_chunks(tasks: list[np.ndarray], reps: int, rng: np.random.Generator):
    """Yield ``(chunk, N)`` stratified resamples (runs resampled within each task), chunk by chunk."""
    sizes = np.array([len(t) for t in tasks])
    total = int(sizes.sum())
    flat = np.concatenate(tasks)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    # column c of a resample draws from task t(c): index offset[t] + floor(u * n_t)
    col_size = np.repeat(sizes, sizes).astype(float)
    col_off = np.repeat(offsets, sizes)
    chunk = max(1, _CHUNK_ELEMENTS // max(total, 1))
    done = 0
    while done < reps:
        k = min(chunk, reps - done)
        u = rng.random((k, total))
        idx = (u * col_size).astype(np.int64)
        np.minimum(idx, (col_size - 1).astype(np.int64), out=idx)
        idx += col_off
        yield flat[idx]
        done += k


def bootstrap_distribution(scores, statistic: Callable[..., np.ndarray] | Sequence[Callable[..., np.ndarray]],
                           reps: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of ``statistic`` (one or several): array ``(reps,)`` or ``(reps, n_statistics)``."""
    tasks = as_task_list(scores)
    funcs = list(statistic) if isinstance(statistic, (list, tuple)) else [statistic]
    out = np.empty((reps, len(funcs)))
    presort = sum(f in _ON_SORTED for f in funcs) >= 1
    row = 0
    for sample in _resample_chunks(tasks, reps, rng):
        if presort:  # one row sort serves every order statistic (IQM, median)
            sample.sort(axis=1)
        for j, f in enumerate(funcs):
            g = _ON_SORTED.get(f, f) if presort else f
            out[row:row + len(sample), j] = g(sample, axis=-1)
        row += len(sample)
    return out if isinstance(statistic, (list, tuple)) else out[:, 0]


def _interval(dist: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    a = (1 - size) / 2 * 100
    lo, hi = np.percentile(dist, [a, 100 - a], axis=0)
    return lo, hi


def interval_estimates(score_dict: Mapping[str, object], aggregates: Mapping[str, Callable] | None = None,
                       reps: int = DEFAULT_REPS, seed: int = 0, size: float = 0.95) -> pd.DataFrame:
    """Point estimate and stratified-bootstrap interval of each aggregate for each agent.

    ``score_dict``: agent → ``(runs × tasks)`` matrix or list of per-task arrays (normalised scores).
    Returns a long table: agent, metric, estimate, ci_low, ci_high, runs, tasks, reps.
    """
    aggregates = dict(aggregates or AGGREGATES)
    rows = []
    for agent, scores in score_dict.items():
        tasks = as_task_list(scores)
        if not tasks:
            for name in aggregates:
                rows.append({"agent": agent, "metric": name, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                             "runs": 0, "tasks": 0, "reps": reps})
            continue
        pooled = np.concatenate(tasks)
        dist = bootstrap_distribution(tasks, list(aggregates.values()), reps, agent_rng(seed, agent))
        lo, hi = _interval(dist, size)
        for j, (name, f) in enumerate(aggregates.items()):
            rows.append({"agent": agent, "metric": name, "estimate": float(f(pooled)), "ci_low": float(lo[j]),
                         "ci_high": float(hi[j]), "runs": len(pooled), "tasks": len(tasks), "reps": reps})
    return pd.DataFrame(rows)


def aggregate_table(score_dict: Mapping[str, object], reps: int = DEFAULT_REPS, seed: int = 0) -> pd.DataFrame:
    """Wide table, one row per agent: for each aggregate its estimate and interval columns."""
    long = interval_estimates(score_dict, reps=reps, seed=seed)
    if long.empty:
        return pd.DataFrame()
    wide = long.pivot(index="agent", columns="metric", values=["estimate", "ci_low", "ci_high"])
    out = pd.DataFrame(index=wide.index)
    for name in AGGREGATES:
        key = name.lower().replace(" ", "_")
        out[key] = wide[("estimate", name)]
        out[f"{key}_ci_low"] = wide[("ci_low", name)]
        out[f"{key}_ci_high"] = wide[("ci_high", name)]
    counts = long.drop_duplicates("agent").set_index("agent")[["runs", "tasks"]]
    return out.join(counts).reindex(list(score_dict)).reset_index()


# -- performance profiles ------------------------------------------------------------------------------------
def _profile_weights(tasks: list[np.ndarray]) -> np.ndarray:
    """Each task weighs 1/m, split evenly over its runs (rliable's score distribution for equal run counts)."""
    m = len(tasks)
    return np.concatenate([np.full(len(t), 1.0 / (m * len(t))) for t in tasks])


def _fraction_above(sample: np.ndarray, w: np.ndarray, taus: np.ndarray, binned: bool = False) -> np.ndarray:
    """Weighted fraction of each row's values above each τ (sorted grid): (k, N) → (k, len(taus)).

    Each value falls in bin b = #{τ < value} and counts for every τ_j with j < b. One bincount over (row, bin)
    and a reverse cumulative sum give all τ at once: O(k·N + k·T). ``binned``: ``sample`` already holds bins."""
    k, n = sample.shape
    t = len(taus)
    bins = sample.astype(np.int64) if binned else np.searchsorted(taus, sample, side="left")  # (k, N) in 0..T
    flat = (np.arange(k)[:, None] * (t + 1) + bins).ravel()
    if np.all(w == w[0]):
        hist = np.bincount(flat, minlength=k * (t + 1)).reshape(k, t + 1) * w[0]
    else:
        hist = np.bincount(flat, weights=np.broadcast_to(w, (k, n)).ravel(), minlength=k * (t + 1)).reshape(k, t + 1)
    above = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # above[:, j] = weight in bins >= j
    return above[:, 1:]  # value > τ_j  <=>  bin >= j + 1


def performance_profile(score_dict: Mapping[str, object], taus: np.ndarray, reps: int = DEFAULT_REPS,
                        seed: int = 0, size: float = 0.95) -> pd.DataFrame:
    """Score distribution: fraction of runs with normalised score > τ, per agent and τ, with bootstrap bands.

    Returns a long table: agent, tau, fraction, ci_low, ci_high.
    """
    taus = np.sort(np.asarray(taus, dtype=float))
    rows = []
    for agent, scores in score_dict.items():
        tasks = as_task_list(scores)
        if not tasks:
            continue
        w = _profile_weights(tasks)
        point = _fraction_above(np.concatenate(tasks)[None, :], w, taus)[0]
        dist = np.empty((reps, len(taus)))
        row = 0
        # resampling a value resamples its bin: bin once, then resample bins (exactly the same result)
        binned = [np.searchsorted(taus, t_, side="left").astype(float) for t_ in tasks]
        for sample in _resample_chunks(binned, reps, agent_rng(seed, "profile/" + agent)):
            dist[row:row + len(sample)] = _fraction_above(sample, w, taus, binned=True)
            row += len(sample)
        lo, hi = _interval(dist, size)
        rows.extend({"agent": agent, "tau": float(t), "fraction": float(p), "ci_low": float(a), "ci_high": float(b)}
                    for t, p, a, b in zip(taus, point, lo, hi))
    return pd.DataFrame(rows, columns=["agent", "tau", "fraction", "ci_low", "ci_high"])


# -- probability of improvement ------------------------------------------------------------------------------
def _mann_whitney(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + ½ P(X = Y) along the last two axes' pairs: x (..., n), y (..., k) → (...)."""
    gt = (x[..., :, None] > y[..., None, :]).mean(axis=(-1, -2))
    eq = (x[..., :, None] == y[..., None, :]).mean(axis=(-1, -2))
    return gt + 0.5 * eq


def probability_of_improvement(x_tasks: TaskScores, y_tasks: TaskScores, reps: int = DEFAULT_REPS, seed: int = 0,
                               size: float = 0.95, name: str = "") -> tuple[float, float, float]:
    """P(X > Y): the Mann–Whitney probability that a run of X beats a run of Y on the same task, averaged over
    tasks (rliable's definition), with a stratified-bootstrap interval (X and Y resampled independently within
    each task). ``x_tasks[j]`` and ``y_tasks[j]`` are the runs of the two agents on task j; tasks where either
    has no run are skipped. Returns (estimate, ci_low, ci_high)."""
    pairs = [(np.asarray(a, float)[np.isfinite(a)], np.asarray(b, float)[np.isfinite(b)])
             for a, b in zip(x_tasks, y_tasks)]
    pairs = [(a, b) for a, b in pairs if len(a) and len(b)]
    if not pairs:
        return np.nan, np.nan, np.nan
    point = float(np.mean([_mann_whitney(a, b) for a, b in pairs]))
    rng = agent_rng(seed, "poi/" + name)
    dist = np.zeros(reps)
    for a, b in pairs:
        chunk = max(1, _CHUNK_ELEMENTS // (len(a) * len(b)))
        for start in range(0, reps, chunk):
            k = min(chunk, reps - start)
            xa = a[rng.integers(0, len(a), (k, len(a)))]
            yb = b[rng.integers(0, len(b), (k, len(b)))]
            dist[start:start + k] += _mann_whitney(xa, yb)
    dist /= len(pairs)
    lo, hi = _interval(dist, size)
    return point, float(lo), float(hi)


def poi_table(task_scores: Mapping[str, Mapping[str, np.ndarray]], pairs: Sequence[tuple[str, str]],
              reps: int = DEFAULT_REPS, seed: int = 0) -> pd.DataFrame:
    """P(X > Y) for each (X, Y) pair; ``task_scores[agent][task]`` = that agent's run scores on the task."""
    rows = []
    for x, y in pairs:
        tasks = sorted(set(task_scores.get(x, {})) & set(task_scores.get(y, {})))
        est, lo, hi = probability_of_improvement([task_scores[x][t] for t in tasks], [task_scores[y][t] for t in tasks],
                                                 reps=reps, seed=seed, name=f"{x}>{y}")
        rows.append({"x": x, "y": y, "probability": est, "ci_low": lo, "ci_high": hi, "tasks": len(tasks)})
    return pd.DataFrame(rows, columns=["x", "y", "probability", "ci_low", "ci_high", "tasks"])


# -- sample efficiency ---------------------------------------------------------------------------------------
def sample_efficiency(curves: pd.DataFrame, reps: int = DEFAULT_REPS, seed: int = 0, size: float = 0.95,
                      statistic: Callable[..., np.ndarray] = iqm) -> pd.DataFrame:
    """IQM (or ``statistic``) of normalised score against training progress, with stratified-bootstrap bands.

    ``curves``: columns agent, x (env steps or fraction of the budget), env, seed, score — one row per run and
    evaluation point. Returns agent, x, estimate, ci_low, ci_high, runs.
    """
    rows = []
    for (agent, x), g in curves.groupby(["agent", "x"], sort=True):
        tasks = [grp["score"].to_numpy(float) for _, grp in g.groupby("env", sort=True)]
        tasks = as_task_list(tasks)
        if not tasks:
            continue
        dist = bootstrap_distribution(tasks, statistic, reps, agent_rng(seed, f"curve/{agent}/{x}"))
        lo, hi = _interval(dist, size)
        rows.append({"agent": agent, "x": float(x), "estimate": float(statistic(np.concatenate(tasks))),
                     "ci_low": float(lo), "ci_high": float(hi), "runs": int(sum(len(t) for t in tasks))})
    return pd.DataFrame(rows, columns=["agent", "x", "estimate", "ci_low", "ci_high", "runs"])
