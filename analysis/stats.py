"""Aggregate statistics with stratified-bootstrap intervals (Agarwal et al. 2021, "rliable"); definitions in
``docs/algorithms.md`` ("Aggregate statistics").

Scores of one agent are a list of per-task arrays (task = environment; one entry per run/seed), or rliable's
``(runs × tasks)`` matrix. On a matrix every aggregate here is rliable 1.2.0's own definition
(``rliable.metrics``), and ``tests/analysis/test_stats.py`` checks each against the library:

* **IQM**: ``scipy.stats.trim_mean(scores, 0.25, axis=None)``, the mean of the middle 50 % of all run scores
  pooled over tasks.
* **Median**: the median over tasks of each task's *mean* score (not the median of the pooled run scores).
* **Mean**: the mean over tasks of each task's mean score.
* **Optimality gap**: ``γ − mean(min(scores, γ))``, γ = 1; lower is better.
* **Intervals**: stratified bootstrap (runs resampled with replacement *within each task*), percentile method
  (``np.percentile`` of the replicates at ``100·(1−size)/2`` and ``100·(1+size)/2``), 95 %.
* **Performance profile**: for each τ the fraction of runs with score > τ (strictly), averaged over tasks
  (rliable's default ``use_score_distribution=True``); with ``use_score_distribution=False`` the fraction of
  tasks whose mean score is > τ.
* **Probability of improvement** P(X > Y): per task, the Mann–Whitney statistic over run pairs (ties count ½),
  averaged over tasks; interval from a stratified bootstrap that resamples X's and Y's runs independently.
* **Sample-efficiency curves**: the IQM at each evaluation point, each point with its own bootstrap.

**Unequal run counts** (rliable has no definition: it takes a rectangular matrix). Here: median, mean and
optimality gap weigh every *task* equally (per-task means first, whatever each task's run count); the IQM pools
all runs, so a task with more runs weighs more; a performance profile averages per-task fractions (each task
weighs 1/tasks, split evenly over its runs); P(X > Y) compares the runs each agent has on each task. The
bootstrap resamples each task's own runs. With equal counts all of these reduce to rliable's definitions.

Two engines compute the intervals (the point estimates are the same definitions either way):

* ``fast`` (default): vectorised numpy, many repetitions per array operation. Each agent's draws come from
  ``default_rng([seed, crc32(key)])``, so an agent's interval does not depend on which other agents are in the
  report, and the same seed gives the same intervals.
* ``rliable``: the library's ``get_interval_estimates`` / ``create_performance_profile`` (resampling one
  repetition at a time through ``arch``; slow, see ``benchmarks/bench_bootstrap.py``). rliable draws from
  numpy's *global* generator (its ``random_state`` argument does not reach the draws), so before each call
  the global generator is seeded with ``np.random.seed([seed, crc32(key)])`` and its previous state is restored
  afterwards. It needs equal run counts per task (:class:`RaggedScoresError` otherwise; on a sample-efficiency
  curve the points where runs stopped early are computed by ``fast`` and marked). Intervals agree with ``fast``
  within Monte-Carlo error; point estimates agree to float rounding. With few runs and an outlier the bootstrap
  distribution is a handful of atoms, and a 2.5 / 97.5 % percentile can sit on a jump between two of them: the
  engines then differ by that whole step although the probability levels they hit agree within Monte-Carlo
  error (seen on a real 4-seed store: an IQM curve point's upper end 0.0166 vs 0.0339, P(replicate ≤ 0.0166) =
  0.971).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["iqm", "task_means", "Aggregate", "IQM", "MEDIAN", "MEAN", "OPTIMALITY_GAP", "AGGREGATES",
           "ENGINES", "RaggedScoresError", "agent_rng", "as_task_list", "task_sizes", "stratified_resamples",
           "bootstrap_distribution", "percentile_interval", "interval_estimates", "aggregate_table",
           "profile_batched", "performance_profile", "mann_whitney", "probability_of_improvement", "poi_table",
           "sample_efficiency", "DEFAULT_REPS", "PUBLICATION_REPS"]

DEFAULT_REPS = 2_000
PUBLICATION_REPS = 50_000
ENGINES = ("fast", "rliable")
_CHUNK_ELEMENTS = 4_000_000  # resampled values held at once (32 MB of float64)

TaskScores = Sequence[np.ndarray]  # one array of run scores per task


class RaggedScoresError(ValueError):
    """The rliable engine got tasks with different run counts (rliable takes a runs × tasks matrix)."""


# -- building blocks on batches: ``sample`` is (k, N), the runs of task 0 first, then task 1, ... ----------
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


def task_means(sample: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Each task's mean score: ``(k, N)`` grouped by task with run counts ``sizes`` → ``(k, tasks)``."""
    sizes = np.asarray(sizes)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.add.reduceat(np.asarray(sample, dtype=float), offsets, axis=-1) / sizes


@dataclass(frozen=True)
class Aggregate:
    """One aggregate of a score set. ``batched(sample, sizes)`` evaluates it on each row of a ``(k, N)`` batch
    of (re)samples grouped by task; ``rliable_name`` is the ``rliable.metrics`` function with this definition
    (the ``rliable`` engine calls it), or ``None``. Calling it on scores gives the point estimate."""

    name: str
    batched: Callable[[np.ndarray, np.ndarray], np.ndarray]
    rliable_name: str | None = None

    def __call__(self, scores) -> float:
        tasks = as_task_list(scores)
        if not tasks:
            return float("nan")
        return float(self.batched(np.concatenate(tasks)[None, :], task_sizes(tasks))[0])


def _iqm_batched(sample: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """IQM of each row; sorting the rows beats np.partition on bootstrap batches (short rows, many of them)."""
    n = sample.shape[-1]
    lo = int(0.25 * n)
    return np.sort(sample, axis=-1)[..., lo:n - lo].mean(axis=-1)


IQM = Aggregate("IQM", _iqm_batched, "aggregate_iqm")
MEDIAN = Aggregate("Median", lambda s, sizes: np.median(task_means(s, sizes), axis=-1), "aggregate_median")
MEAN = Aggregate("Mean", lambda s, sizes: task_means(s, sizes).mean(axis=-1), "aggregate_mean")
OPTIMALITY_GAP = Aggregate("Optimality gap",
                           lambda s, sizes: 1.0 - task_means(np.minimum(s, 1.0), sizes).mean(axis=-1),
                           "aggregate_optimality_gap")  # γ = 1, the reference score

#: the four rliable aggregates, in report order
AGGREGATES: dict[str, Aggregate] = {a.name: a for a in (IQM, MEDIAN, MEAN, OPTIMALITY_GAP)}


def _as_aggregate(name: str, f) -> Aggregate:
    """An :class:`Aggregate` as is; a plain ``f(x, axis=-1)`` is applied to the pooled runs (tasks ignored)."""
    if isinstance(f, Aggregate):
        return f
    if f is iqm:
        return IQM
    return Aggregate(name, lambda s, sizes: f(s, axis=-1))


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


def task_sizes(tasks: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([len(t) for t in tasks], dtype=np.int64)


def stratified_resamples(tasks: Sequence[np.ndarray], reps: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield ``(chunk, N)`` stratified resamples (runs resampled with replacement within each task, the task
    grouping kept), chunk by chunk, ``reps`` rows in all."""
    sizes = task_sizes(tasks)
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


def bootstrap_distribution(scores, statistic, reps: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of ``statistic`` (an :class:`Aggregate`, or a list of them): array ``(reps,)`` or
    ``(reps, n_statistics)``. A plain function ``f(x, axis=-1)`` is applied to the pooled resampled runs."""
    tasks = as_task_list(scores)
    many = isinstance(statistic, (list, tuple))
    aggs = [_as_aggregate(getattr(f, "name", str(j)), f) for j, f in enumerate(statistic if many else [statistic])]
    sizes = task_sizes(tasks)
    out = np.empty((reps, len(aggs)))
    row = 0
    for sample in stratified_resamples(tasks, reps, rng):
        for j, a in enumerate(aggs):
            out[row:row + len(sample), j] = a.batched(sample, sizes)
        row += len(sample)
    return out if many else out[:, 0]


def percentile_interval(dist: np.ndarray, size: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-method interval of bootstrap replicates along axis 0, computed as ``arch`` does for rliable."""
    alpha = (1.0 - size) / 2
    lo, hi = np.percentile(dist, [100 * alpha, 100 * (1.0 - alpha)], axis=0)
    return lo, hi


# -- the rliable engine --------------------------------------------------------------------------------------
def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is not valid; allowed: {', '.join(ENGINES)}")


def _matrix(tasks: Sequence[np.ndarray], key: str) -> np.ndarray:
    """rliable's ``(runs × tasks)`` matrix; one-line :class:`RaggedScoresError` when run counts differ."""
    sizes = task_sizes(tasks)
    if len(set(sizes.tolist())) > 1:
        raise RaggedScoresError(f"rliable needs the same number of scored runs on every environment (a runs x "
                                f"tasks matrix); {key!r} has {sizes.tolist()} runs on its {len(sizes)} environments")
    return np.column_stack(tasks)


def _with_global_seed(seed: int, key: str, fn):
    """Run ``fn`` with numpy's global generator seeded from (seed, key): rliable draws from it. Restores it."""
    state = np.random.get_state()
    np.random.seed([int(seed), zlib.crc32(key.encode())])
    try:
        return fn()
    finally:
        np.random.set_state(state)


def _rliable_func(aggs: Sequence[Aggregate]) -> Callable[[np.ndarray], np.ndarray]:
    from rliable import metrics

    fns = [getattr(metrics, a.rliable_name) if a.rliable_name else a for a in aggs]
    return lambda x: np.array([float(f(x)) for f in fns])


def _rliable_intervals(matrix: np.ndarray, aggs: Sequence[Aggregate], reps: int, seed: int, key: str,
                       size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from rliable import library as rly

    point, ci = _with_global_seed(seed, key, lambda: rly.get_interval_estimates(
        {key: matrix}, _rliable_func(aggs), reps=reps, confidence_interval_size=size))
    return np.asarray(point[key], float), np.asarray(ci[key][0], float), np.asarray(ci[key][1], float)


# -- aggregates with intervals -------------------------------------------------------------------------------
def interval_estimates(score_dict: Mapping[str, object], aggregates: Mapping[str, object] | None = None,
                       reps: int = DEFAULT_REPS, seed: int = 0, size: float = 0.95,
                       engine: str = "fast") -> pd.DataFrame:
    """Point estimate and stratified-bootstrap interval of each aggregate for each agent.

    ``score_dict``: agent → ``(runs × tasks)`` matrix or list of per-task arrays (normalised scores).
    ``aggregates``: name → :class:`Aggregate` (default :data:`AGGREGATES`); a plain ``f(x, axis=-1)`` is a
    statistic of the pooled runs. Returns a long table: agent, metric, estimate, ci_low, ci_high, runs, tasks,
    reps, engine.
    """
    _check_engine(engine)
    aggs = [_as_aggregate(name, f) for name, f in (aggregates or AGGREGATES).items()]
    names = list((aggregates or AGGREGATES).keys())
    rows = []
    for agent, scores in score_dict.items():
        tasks = as_task_list(scores)
        base = {"agent": agent, "runs": int(sum(len(t) for t in tasks)), "tasks": len(tasks), "reps": reps,
                "engine": engine}
        if not tasks:
            rows += [{**base, "metric": n, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan} for n in names]
            continue
        if engine == "rliable":
            est, lo, hi = _rliable_intervals(_matrix(tasks, agent), aggs, reps, seed, agent, size)
        else:
            est = np.array([a(tasks) for a in aggs])
            lo, hi = percentile_interval(bootstrap_distribution(tasks, aggs, reps, agent_rng(seed, agent)), size)
        rows += [{**base, "metric": n, "estimate": float(e), "ci_low": float(a), "ci_high": float(b)}
                 for n, e, a, b in zip(names, est, lo, hi)]
    cols = ["agent", "metric", "estimate", "ci_low", "ci_high", "runs", "tasks", "reps", "engine"]
    return pd.DataFrame(rows, columns=cols)


def aggregate_table(score_dict: Mapping[str, object], reps: int = DEFAULT_REPS, seed: int = 0,
                    engine: str = "fast") -> pd.DataFrame:
    """Wide table, one row per agent: for each aggregate its estimate and interval columns."""
    long = interval_estimates(score_dict, reps=reps, seed=seed, engine=engine)
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


def _run_weights(sizes: np.ndarray) -> np.ndarray:
    """Each task weighs 1/tasks, split evenly over its runs (rliable's score distribution for equal counts)."""
    return np.repeat(1.0 / (len(sizes) * sizes), sizes)


def profile_batched(sample: np.ndarray, sizes: np.ndarray, taus: np.ndarray,
                    use_score_distribution: bool = True) -> np.ndarray:
    """Performance profile of each row of a ``(k, N)`` batch grouped by task, at sorted ``taus`` → ``(k, T)``:
    the fraction of runs > τ averaged over tasks, or (``use_score_distribution=False``) the fraction of tasks
    whose mean score is > τ."""
    sample = np.atleast_2d(np.asarray(sample, float))
    sizes = np.asarray(sizes)
    if use_score_distribution:
        return _fraction_above(sample, _run_weights(sizes), taus)
    return _fraction_above(task_means(sample, sizes), np.full(len(sizes), 1.0 / len(sizes)), taus)


def performance_profile(score_dict: Mapping[str, object], taus: np.ndarray, reps: int = DEFAULT_REPS,
                        seed: int = 0, size: float = 0.95, use_score_distribution: bool = True,
                        engine: str = "fast") -> pd.DataFrame:
    """Performance profile per agent and τ with stratified-bootstrap bands (see :func:`profile_batched`;
    rliable's ``create_performance_profile``). Returns a long table: agent, tau, fraction, ci_low, ci_high.
    """
    _check_engine(engine)
    taus = np.sort(np.asarray(taus, dtype=float))
    rows = []
    for agent, scores in score_dict.items():
        tasks = as_task_list(scores)
        if not tasks:
            continue
        key = "profile/" + agent
        if engine == "rliable":
            from rliable import library as rly

            mat = _matrix(tasks, agent)
            prof, ci = _with_global_seed(seed, key, lambda: rly.create_performance_profile(
                {key: mat}, taus, use_score_distribution=use_score_distribution, reps=reps,
                confidence_interval_size=size))
            point, lo, hi = prof[key], ci[key][0], ci[key][1]
        else:
            sizes = task_sizes(tasks)
            point = profile_batched(np.concatenate(tasks), sizes, taus, use_score_distribution)[0]
            dist = np.empty((reps, len(taus)))
            row = 0
            if use_score_distribution:
                # resampling a value resamples its bin: bin once, then resample bins (the same result)
                w = _run_weights(sizes)
                binned = [np.searchsorted(taus, t_, side="left").astype(float) for t_ in tasks]
                for sample in stratified_resamples(binned, reps, agent_rng(seed, key)):
                    dist[row:row + len(sample)] = _fraction_above(sample, w, taus, binned=True)
                    row += len(sample)
            else:
                for sample in stratified_resamples(tasks, reps, agent_rng(seed, key)):
                    dist[row:row + len(sample)] = profile_batched(sample, sizes, taus, False)
                    row += len(sample)
            lo, hi = percentile_interval(dist, size)
        rows.extend({"agent": agent, "tau": float(t), "fraction": float(p), "ci_low": float(a), "ci_high": float(b)}
                    for t, p, a, b in zip(taus, point, lo, hi))
    return pd.DataFrame(rows, columns=["agent", "tau", "fraction", "ci_low", "ci_high"])


# -- probability of improvement ------------------------------------------------------------------------------
def mann_whitney(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + ½ P(X = Y) over all run pairs of one task: x (..., n), y (..., k) → (...); equals rliable's
    ``mannwhitneyu(x, y).statistic / (n k)``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    gt = (x[..., :, None] > y[..., None, :]).mean(axis=(-1, -2))
    eq = (x[..., :, None] == y[..., None, :]).mean(axis=(-1, -2))
    return gt + 0.5 * eq


def probability_of_improvement(x_tasks: TaskScores, y_tasks: TaskScores, reps: int = DEFAULT_REPS, seed: int = 0,
                               size: float = 0.95, name: str = "", engine: str = "fast") -> tuple[float, float, float]:
    """P(X > Y): the Mann–Whitney probability that a run of X beats a run of Y on the same task, averaged over
    tasks (rliable's definition), with a stratified-bootstrap interval (X and Y resampled independently within
    each task). ``x_tasks[j]`` and ``y_tasks[j]`` are the runs of the two agents on task j; tasks where either
    has no run are skipped. Returns (estimate, ci_low, ci_high)."""
    _check_engine(engine)
    pairs = [(np.asarray(a, float)[np.isfinite(a)], np.asarray(b, float)[np.isfinite(b)])
             for a, b in zip(x_tasks, y_tasks)]
    pairs = [(a, b) for a, b in pairs if len(a) and len(b)]
    if not pairs:
        return np.nan, np.nan, np.nan
    key = "poi/" + name
    if engine == "rliable":
        from rliable import library as rly
        from rliable import metrics

        mx, my = _matrix([a for a, _ in pairs], f"{name} (X)"), _matrix([b for _, b in pairs], f"{name} (Y)")
        point, ci = _with_global_seed(seed, key, lambda: rly.get_interval_estimates(
            {key: [mx, my]}, metrics.probability_of_improvement, reps=reps, confidence_interval_size=size))
        return float(point[key]), float(ci[key][0, 0]), float(ci[key][1, 0])
    point = float(np.mean([mann_whitney(a, b) for a, b in pairs]))
    rng = agent_rng(seed, key)
    dist = np.zeros(reps)
    for a, b in pairs:
        chunk = max(1, _CHUNK_ELEMENTS // (len(a) * len(b)))
        for start in range(0, reps, chunk):
            k = min(chunk, reps - start)
            xa = a[rng.integers(0, len(a), (k, len(a)))]
            yb = b[rng.integers(0, len(b), (k, len(b)))]
            dist[start:start + k] += mann_whitney(xa, yb)
    dist /= len(pairs)
    lo, hi = percentile_interval(dist, size)
    return point, float(lo), float(hi)


def poi_table(task_scores: Mapping[str, Mapping[str, np.ndarray]], pairs: Sequence[tuple[str, str]],
              reps: int = DEFAULT_REPS, seed: int = 0, engine: str = "fast") -> pd.DataFrame:
    """P(X > Y) for each (X, Y) pair over the tasks both have; ``task_scores[agent][task]`` = that agent's run
    scores on the task."""
    rows = []
    for x, y in pairs:
        tasks = sorted(set(task_scores.get(x, {})) & set(task_scores.get(y, {})))
        est, lo, hi = probability_of_improvement([task_scores[x][t] for t in tasks], [task_scores[y][t] for t in tasks],
                                                 reps=reps, seed=seed, name=f"{x}>{y}", engine=engine)
        rows.append({"x": x, "y": y, "probability": est, "ci_low": lo, "ci_high": hi, "tasks": len(tasks)})
    return pd.DataFrame(rows, columns=["x", "y", "probability", "ci_low", "ci_high", "tasks"])


# -- sample efficiency ---------------------------------------------------------------------------------------
def sample_efficiency(curves: pd.DataFrame, reps: int = DEFAULT_REPS, seed: int = 0, size: float = 0.95,
                      statistic=IQM, engine: str = "fast") -> pd.DataFrame:
    """IQM (or ``statistic``) of normalised score at each training point, each point with its own
    stratified-bootstrap interval (as rliable's per-frame IQM curves: its resampling draws every point
    independently too).

    ``curves``: columns agent, x (env steps or fraction of the budget), env, seed, score — one row per run and
    evaluation point. Returns agent, x, estimate, ci_low, ci_high, runs, engine. Runs that stopped early
    (diverged, failed) leave later points with unequal run counts per task; under ``engine="rliable"`` those
    points, which rliable cannot take, are computed by the fast engine and say so in the ``engine`` column.
    """
    _check_engine(engine)
    agg = _as_aggregate("statistic", statistic)
    rows = []
    for (agent, x), g in curves.groupby(["agent", "x"], sort=True):
        tasks = as_task_list([grp["score"].to_numpy(float) for _, grp in g.groupby("env", sort=True)])
        if not tasks:
            continue
        key = f"curve/{agent}/{x}"
        used = engine if len(set(task_sizes(tasks).tolist())) == 1 else "fast"
        if used == "rliable":
            est, lo, hi = (float(v[0]) for v in _rliable_intervals(_matrix(tasks, f"{agent} at {x}"), [agg], reps,
                                                                   seed, key, size))
        else:
            est = agg(tasks)
            lo, hi = percentile_interval(bootstrap_distribution(tasks, agg, reps, agent_rng(seed, key)), size)
        rows.append({"agent": agent, "x": float(x), "estimate": float(est), "ci_low": float(lo),
                     "ci_high": float(hi), "runs": int(sum(len(t) for t in tasks)), "engine": used})
    return pd.DataFrame(rows, columns=["agent", "x", "estimate", "ci_low", "ci_high", "runs", "engine"])
