"""Speed of the stratified bootstrap: analysis.stats against rliable's own ``get_interval_estimates``.

``python benchmarks/bench_bootstrap.py [--agents 9] [--tasks 10] [--runs 10] [--reps 50000] [--rliable-reps 2000]``

Workload: the full report's aggregates for 9 agents × 10 environments × 10 seeds (IQM, median, mean,
optimality gap with 95 % intervals). Ours runs at the full repetition count; rliable runs at ``--rliable-reps``
(it resamples one repetition at a time, so its time is linear in reps) and its time is extrapolated to the full
count, unless ``--rliable-reps`` equals ``--reps``. Also times the whole report (profiles, probability of
improvement, curves, figures, tables) on a synthetic experiment of that size, straight from DataFrames.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis import stats  # noqa: E402


def synthetic(agents: int, tasks: int, runs: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"agent{a}": rng.normal(0.5 + 0.05 * a, 0.3, size=(runs, tasks)) for a in range(agents)}


def time_ours(scores, reps):
    t = time.perf_counter()
    out = stats.interval_estimates(scores, reps=reps, seed=0)
    return time.perf_counter() - t, out


def time_rliable(scores, reps):
    from rliable import library as rly
    from rliable import metrics

    def agg(x):
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_median(x), metrics.aggregate_mean(x),
                         metrics.aggregate_optimality_gap(x)])

    np.random.seed(0)  # rliable draws from numpy's global generator
    t = time.perf_counter()
    est, ci = rly.get_interval_estimates(scores, agg, reps=reps)
    return time.perf_counter() - t, (est, ci)


def time_report(agents, tasks, runs, reps):
    from analysis.report import build_report

    rng = np.random.default_rng(1)
    envs = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MinAtar/asterix", "MinAtar/breakout", "MinAtar/freeway",
            "MinAtar/seaquest", "MinAtar/space_invaders", "ALE/Pong-v5", "ALE/Breakout-v5"][:tasks]
    from analysis.normalization import reference_scores

    refs = reference_scores().set_index("env")
    names = ["dqn", "double-dqn", "dqn-soft", "dqn-no-target", "agt2-dqn", "sgt2-dqn", "fr-dqn", "isql", "idqn"][:agents]
    rows, hist = [], []
    for a, name in enumerate(names):
        for env in envs:
            lo, hi = refs.loc[env, "random"], refs.loc[env, "reference"]
            for s in range(runs):
                final = lo + (hi - lo) * rng.normal(0.5 + 0.05 * a, 0.3)
                rid = f"{name}-{env}-{s}"
                rows.append({"run_id": rid, "status": "FINISHED", "agent": name, "variant": "default", "env": env,
                             "seed": s, "outcome": "completed", "final_eval_return": final, "param.train.steps": "100000"})
                for k in range(1, 21):
                    hist.append((rid, name, "default", env, s, "FINISHED", "completed", k * 5000, "eval/return_mean",
                                 lo + (final - lo) * k / 20))
    runs_df = pd.DataFrame(rows)
    metrics = pd.DataFrame(hist, columns=["run_id", "agent", "variant", "env", "seed", "status", "outcome", "step",
                                          "metric", "value"])
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res = build_report(runs_df, metrics, Path(tmp), reps=reps, seed=0)
        return time.perf_counter() - t, res.timings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=9)
    p.add_argument("--tasks", type=int, default=10)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--reps", type=int, default=50_000)
    p.add_argument("--rliable-reps", type=int, default=2_000)
    p.add_argument("--no-report", action="store_true")
    args = p.parse_args()
    scores = synthetic(args.agents, args.tasks, args.runs)
    t_ours, ours = time_ours(scores, args.reps)
    t_rl, (est, ci) = time_rliable(scores, args.rliable_reps)
    scale = args.reps / args.rliable_reps
    print(f"workload: {args.agents} agents x {args.tasks} tasks x {args.runs} runs, 4 aggregates")
    print(f"analysis.stats.interval_estimates, {args.reps:,} reps: {t_ours:.2f} s")
    print(f"rliable get_interval_estimates, {args.rliable_reps:,} reps: {t_rl:.2f} s"
          + (f" -> {t_rl * scale:.1f} s extrapolated to {args.reps:,} reps" if scale != 1 else ""))
    print(f"speed-up at {args.reps:,} reps: {t_rl * scale / t_ours:.0f}x")
    a0 = ours[ours["agent"] == "agent0"].set_index("metric")
    print("agent0 IQM interval: ours [%.4f, %.4f], rliable [%.4f, %.4f]" % (
        a0.loc["IQM", "ci_low"], a0.loc["IQM", "ci_high"], ci["agent0"][0, 0], ci["agent0"][1, 0]))
    if not args.no_report:
        t_rep, timings = time_report(args.agents, args.tasks, args.runs, args.reps)
        print(f"full report (aggregates, profiles, PoI, curves at {min(args.reps, stats.DEFAULT_REPS):,} reps, "
              f"per-env, figures, tables) at {args.reps:,} reps: {t_rep:.1f} s")
        print("  " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))


if __name__ == "__main__":
    main()
