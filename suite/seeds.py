"""``targetbench seeds``: how many seeds does a comparison need? Estimated from the stored reference runs.

Reads the per-run data of ``--reference`` (``runs/*.csv.gz``), takes agent A's and the baseline's runs (``agent``
or ``agent/variant``; the default variant otherwise) of one evaluation protocol per environment, and prints, per
seed count, the mean 95 % interval widths of A's IQM and of P(A > baseline) over random subsets of that many
seeds, and the smallest count at which the P interval excludes 0.5 (:mod:`analysis.seed_count`), or that the stored
seeds cannot tell.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from suite.errors import UsageError

__all__ = ["add_arguments", "main"]

DEFAULT_REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "results"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``seeds`` command's flags to ``p``."""
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE,
                   help="results folder with per-run data in runs/ (default: docs/results)")
    p.add_argument("--agent", required=True, help="agent A, or agent/variant (e.g. agt2-dqn/tuned)")
    p.add_argument("--baseline", default="dqn", help="agent B of P(A > B), or agent/variant (default dqn)")
    p.add_argument("--subsets", type=int, default=50, help="random seed subsets per count (default 50)")
    p.add_argument("--reps", type=int, default=500, help="bootstrap repetitions per interval (default 500)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subsets and the bootstrap")
    p.add_argument("--json", action="store_true", help="one JSON object per seed count, then the answer")


def _runs(label: str, runs, flag: str):
    from analysis import record_names as names

    agent, _, variant = label.partition("/")
    pick = runs[(runs["agent"] == agent) & (runs["variant"] == (variant or names.DEFAULT_VARIANT))]
    if pick.empty:
        known = sorted({a if v == names.DEFAULT_VARIANT else f"{a}/{v}"
                        for a, v in zip(runs["agent"], runs["variant"])})
        raise UsageError(f"--{flag} {label!r} has no runs in the reference; allowed: {', '.join(known)}")
    return pick


def main(args: argparse.Namespace) -> int:
    """Run ``targetbench seeds``; returns 0 or raises a one-line :mod:`suite.errors` error."""
    import pandas as pd

    from analysis.normalization import score_runs
    from analysis.protocol_check import MixedProtocolsError, check_protocols
    from analysis.run_table import read_reference, to_frames
    from analysis.seed_count import POWER, seed_curve, smallest_count

    if args.subsets < 1 or args.reps < 100:
        raise UsageError(f"--subsets {args.subsets} / --reps {args.reps} is not valid; allowed: --subsets >= 1, "
                         "--reps >= 100")
    try:
        tables = read_reference(args.reference)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    runs = pd.concat([to_frames(t)[0] for t in tables.values()], ignore_index=True)
    a, b = _runs(args.agent, runs, "agent"), _runs(args.baseline, runs, "baseline")
    try:
        notes = check_protocols(pd.concat([a, b], ignore_index=True))
    except MixedProtocolsError as exc:
        raise UsageError(str(exc)) from None
    scored = score_runs(pd.concat([a.assign(_side="a"), b.assign(_side="b")], ignore_index=True))
    scored = scored[scored["scored_as"] != "running-not-scored"]
    side = {s: {env: g["score"].to_numpy(float) for env, g in scored[scored["_side"] == s].groupby("env")}
            for s in ("a", "b")}
    curve = seed_curve(side["a"], side["b"], subsets=args.subsets, reps=args.reps, seed=args.seed)
    if curve.empty:
        raise UsageError(f"{args.agent} and {args.baseline} share no environment with two or more seeds each")
    n = smallest_count(curve)
    most = int(curve["seeds"].max())
    if n is not None:
        answer = (f"P({args.agent} > {args.baseline}) excludes 0.5 in at least {POWER:.0%} of subsets from {n} seeds "
                  f"per environment on (of {most} stored)")
    else:
        answer = (f"the {most} stored seeds cannot tell: P({args.agent} > {args.baseline}) excludes 0.5 in at most "
                  f"{curve['excludes_half'].max():.0%} of subsets")
    envs = sorted(set(side["a"]) & set(side["b"]))
    if args.json:
        for row in curve.to_dict(orient="records"):
            print(json.dumps(row))
        print(json.dumps({"agent": args.agent, "baseline": args.baseline, "envs": envs, "smallest_seeds": n,
                          "stored_seeds": most, "answer": answer, "notes": notes}))
        return 0
    for note in notes:
        print(note)
    print(f"{args.agent} vs {args.baseline} on {', '.join(envs)} (normalised final score; 95 % intervals, "
          f"{args.reps} bootstrap repetitions, {args.subsets} seed subsets per count)")
    print(f"{'seeds':>5}  {'IQM width':>9}  {'P width':>7}  {'mean P':>6}  {'P excludes 0.5':>14}")
    for r in curve.itertuples(index=False):
        print(f"{r.seeds:>5}  {r.iqm_width:>9.3f}  {r.poi_width:>7.3f}  {r.poi_mean:>6.2f}  {r.excludes_half:>14.0%}")
    print(answer)
    return 0
