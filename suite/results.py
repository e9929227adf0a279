"""``make results``: run the suites behind the reference results, then write ``docs/results/`` from the store.

Four parts, each runnable alone (``--part``), all by default, in this order:

* ``classic``: ``suite/specs/results-classic.yaml`` (every agent, three classic-control tasks, 500k steps, seeds
  0-4) → ``classic_control.csv``, learning curves, the aggregate figure;
* ``sensitivity``: ``suite/specs/sensitivity-classic.yaml`` → ``sensitivity.csv``, ``sensitivity_share.csv``,
  ``sensitivity.png``;
* ``cartpole``: ``targetbench reproduce cartpole_dqn_ablation`` at :data:`CARTPOLE_STEPS` env steps (the suite's
  10 seeds) → ``reproduce-cartpole_dqn_ablation.*``;
* ``minatar``: ``targetbench reproduce minatar_v1_dqn_ablation`` at :data:`MINATAR_STEPS` env steps and
  :data:`MINATAR_SEEDS` (about one CPU-hour; the table title states the budget against the paper's 5M frames).

Then ``docs/results/README.md`` (and the generated block of the top-level ``README.md`` when writing to
``docs/results``) from everything in the store, whichever parts ran. Resumable: the scheduler skips trials
already finished in the store and resumes interrupted groups from their checkpoints, so rerunning continues
where a run stopped. ``--steps``/``--seeds``/``--agents``/``--envs`` cut a part down for a smoke run (a changed
``--steps`` records into its own experiment, ``<experiment>-stepsN``, so budgets never mix).
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from pathlib import Path

from suite.errors import UsageError, run_resumable_command

__all__ = ["PARTS", "CARTPOLE_STEPS", "MINATAR_STEPS", "MINATAR_SEEDS", "TABLE_BUDGETS", "main"]

PARTS = ("classic", "sensitivity", "cartpole", "minatar")
SUITES = {"classic": "results-classic", "sensitivity": "sensitivity-classic"}
TABLES = {"cartpole": "cartpole_dqn_ablation", "minatar": "minatar_v1_dqn_ablation"}
#: MinAtar budget for about one CPU-hour: 5 games x 3 variants x 3 seeds x 50k env steps = 2.25M seed-steps of
#: MinAtar DQN (an update every step). Measured on a 2-core machine (2026-12-03, 3 seeds batched, per core):
#: ~700 seed-steps/s on breakout, ~440 on seaquest, so ~1.1 CPU-hours for the two variants with replay and less
#: for no-replay (batch 1); docs/results/README.md states the measured cost once it has run.
MINATAR_STEPS = 50_000
MINATAR_SEEDS = "0-2"
#: CartPole ablation budget: 7 variants x 10 seeds x 100k env steps = 7M seed-steps with an update every step
#: (13 min of summed group time, 7.6 min wall on 2 cores, 2026-12-03; the suite's own 500k reading, 1,000 episodes
#: at CartPole's 500-step cap, is 5x that: `--cartpole-steps 500000`). 100k steps hold 200+ episodes even at the
#: cap, past the lecture's solve points (130-400 episodes); measured, the runs read a median of 986 of the
#: lecture's 1,000 episodes (episodes stay short: no run solves). The table title states that count per run.
CARTPOLE_STEPS = 100_000
#: the reproduced tables' default budgets here: part -> (env steps, seeds; None = the suite's seeds)
TABLE_BUDGETS = {"cartpole": (CARTPOLE_STEPS, None), "minatar": (MINATAR_STEPS, MINATAR_SEEDS)}
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "results"
TOP_README = Path(__file__).resolve().parent.parent / "README.md"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", default="all", help=f"all or a comma list of: {', '.join(PARTS)}")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: docs/results)")
    p.add_argument("--results", type=Path, default=Path("results"), help="store, checkpoints and cache folder")
    p.add_argument("--tracking-uri", default=None, help="default: sqlite:///RESULTS/mlflow.db")
    p.add_argument("--steps", type=int, default=None, help="env steps per seed for every part (smoke runs)")
    p.add_argument("--seeds", default=None, help="seeds for every part, e.g. 0,1 (smoke runs)")
    p.add_argument("--agents", default=None, help="classic/sensitivity: only these agents (comma list)")
    p.add_argument("--envs", default=None, help="classic/sensitivity: only these environments (comma list)")
    p.add_argument("--cartpole-steps", type=int, default=None,
                   help=f"CartPole ablation budget (default {CARTPOLE_STEPS:,})")
    p.add_argument("--minatar-steps", type=int, default=None, help=f"MinAtar budget (default {MINATAR_STEPS:,})")
    p.add_argument("--quick", action="store_true", help="cartpole/minatar: reproduce --quick")
    p.add_argument("--workers", type=int, default=None, help="groups at a time (default: one per core)")
    p.add_argument("--no-run", action="store_true", help="train nothing: regenerate the files from the store")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap repetitions (default 2,000)")
    p.add_argument("--readme", type=Path, default=None,
                   help="top-level README whose generated block is rewritten (default: README.md when --out is "
                        "docs/results, else none)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p.parse_args(argv)


def _parts(text: str) -> list[str]:
    if text.strip() in ("", "all"):
        return list(PARTS)
    parts = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise UsageError(f"--part {text!r} is not valid; allowed: all or a comma list of {', '.join(PARTS)}")
    return parts


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _suite(part: str, args: argparse.Namespace, filtered: bool = True):
    """The part's suite with the smoke filters applied (``filtered``: only to the parts being run; a part that is
    only read back for the README keeps its whole plan), and its experiment."""
    from suite.scheduler import load_suite
    from suite.trial import parse_seeds

    suite = load_suite(SUITES[part])
    agents, envs = (_names(args.agents), _names(args.envs)) if filtered else (None, None)
    changes: dict = {}
    if args.seeds:
        changes["seeds"] = parse_seeds(args.seeds)
    if agents is not None:
        unknown = [a for a in agents if a not in suite.agents]
        if unknown:
            raise UsageError(f"--agents names {unknown[0]!r}, not an agent of suite {suite.name}; allowed: "
                             + ", ".join(suite.agents))
        changes["agents"] = {a: suite.agents[a] for a in agents}
    if envs is not None:
        unknown = [e for e in envs if e not in suite.envs]
        if unknown:
            raise UsageError(f"--envs names {unknown[0]!r}, not an env of suite {suite.name}; allowed: "
                             + ", ".join(suite.envs))
        changes["envs"] = tuple(envs)
    if changes:
        suite = dataclasses.replace(suite, **changes)
        # variants restricted to agents/envs that were cut away would expand to nothing: drop them
        keep = [v for v in suite.variants if (v.agents is None or set(v.agents) & set(suite.agents))
                and (v.envs is None or set(v.envs) & set(suite.envs))]
        suite = dataclasses.replace(suite, variants=tuple(
            dataclasses.replace(v, agents=None if v.agents is None else tuple(a for a in v.agents if a in suite.agents),
                                envs=None if v.envs is None else tuple(e for e in v.envs if e in suite.envs))
            for v in keep))
    experiment = suite.default_experiment + (f"-steps{args.steps}" if args.steps else "")
    return suite, experiment


def _load(uri: str, experiment: str, results: Path):
    """``(runs, metrics)`` of ``experiment``; empty tables when it does not exist yet."""
    import pandas as pd

    from analysis import record_names as names
    from analysis.runs import DEFAULT_METRICS, RUN_COLUMNS, load_experiment

    try:  # + EauDeQN's sparsity, for the cost table
        return load_experiment(uri, experiment, cache_dir=results / "cache",
                               metrics=DEFAULT_METRICS + (names.TARGET_SPARSITY,))
    except ValueError:  # no such experiment yet: the part has not run
        return pd.DataFrame(columns=RUN_COLUMNS), pd.DataFrame(columns=["run_id", "metric", "step", "value"])


def _reproduce_args(part: str, args: argparse.Namespace, uri: str, no_run: bool) -> argparse.Namespace:
    from suite import reproduce

    p = argparse.ArgumentParser()
    reproduce.add_arguments(p)
    argv = [TABLES[part], "--tracking-uri", uri, "--results", str(args.results), "--out", str(args.out),
            "--reps", str(args.reps)]
    default_steps, default_seeds = TABLE_BUDGETS[part]
    steps = args.steps or getattr(args, f"{part}_steps") or default_steps
    if args.quick:
        argv.append("--quick")
        steps = args.steps  # --quick picks its own budget unless --steps says otherwise
    if steps:
        argv += ["--steps", str(steps)]
    seeds = args.seeds or (default_seeds if not args.quick else None)
    if seeds:
        argv += ["--seeds", seeds]
    if args.workers:
        argv += ["--workers", str(args.workers)]
    if no_run:
        argv.append("--no-run")
    if args.quiet:
        argv.append("--quiet")
    return p.parse_args(argv)


def _reproduce_experiment(part: str, args: argparse.Namespace) -> str:
    from suite import reproduce
    from suite.scheduler import load_suite

    spec = reproduce.resolve_table(TABLES[part])
    return load_suite(spec.suite).default_experiment + ("-quick" if args.quick else "")


def _run(args: argparse.Namespace) -> int:
    from analysis import results as res
    from suite.preflight import check_writable
    from suite.scheduler import run_sweep
    from suite.scheduler.matrix import expand
    from suite.tracking import default_tracking_uri

    parts = _parts(args.part)
    if args.reps < 100:
        raise UsageError(f"--reps {args.reps} is not valid; allowed: an integer >= 100")
    for flag in ("steps", "cartpole_steps", "minatar_steps"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} {value} is not valid; allowed: a positive integer")
    check_writable(args.out, "output folder")
    uri = args.tracking_uri or default_tracking_uri(args.results)
    t0 = time.perf_counter()
    failed = 0
    info: dict[str, dict] = {}
    expected: dict[str, res.Expected] = {}
    for part in PARTS:  # every part is read back for the README; only the chosen ones train and rewrite files
        chosen = part in parts
        if part in SUITES:
            suite, experiment = _suite(part, args, filtered=chosen)
            if chosen and not args.no_run:
                summary = run_sweep(suite, workers=args.workers, tracking_uri=uri, experiment=experiment,
                                    results_dir=args.results, steps=args.steps, progress=not args.quiet)
                failed += summary.failed
                print(f"results: {part}: {summary.done + summary.diverged} trials run, {summary.skipped} already "
                      f"finished (skipped), {summary.failed} failed", file=sys.stderr)
            configs, _ = expand(suite, steps=args.steps)
            pairs = tuple(dict.fromkeys((c.agent, c.env) for c in configs))
            expected[part] = res.Expected(pairs=pairs, seeds=len(suite.seeds),
                                          steps=configs[0].spec.train.steps if configs else None)
            runs, metrics = _load(uri, experiment, args.results)
            if chosen and runs.empty:  # nothing stored yet (e.g. --no-run with another budget): keep the files
                print(f"results: {part}: experiment {experiment} has no runs; its files are left as they are",
                      file=sys.stderr)
            elif chosen:
                if part == "classic":
                    paths = res.write_classic(runs, metrics, args.out, reps=args.reps, expected=expected[part])
                else:
                    paths = res.write_sensitivity(runs, args.out, reps=args.reps)
                print(f"results: {part}: wrote {', '.join(sorted(paths))} into {args.out}", file=sys.stderr)
        else:
            experiment = _reproduce_experiment(part, args)
            if chosen:
                from suite import reproduce

                try:
                    reproduce.main(_reproduce_args(part, args, uri, args.no_run))
                except UsageError as exc:
                    if not args.no_run:
                        raise
                    print(f"results: {part}: nothing to tabulate yet ({exc})", file=sys.stderr)
            runs, _ = _load(uri, experiment, args.results)
        info[part] = {"experiment": experiment, "runs": runs}
    # The canonical command (what a reader runs); the actual invocation, folders included, goes with the timings.
    command = "make results"
    argv = " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv and sys.argv[0].endswith("results.py") else ""
    readme = res.write_readme(args.out, command=command, parts=info, expected=expected,
                              invocation=f"{', '.join(parts)} in {(time.perf_counter() - t0) / 60:.1f} min wall"
                              + (f" (`python -m suite.results {argv}`)" if argv else "")
                              + (" (no training)" if args.no_run else ""))
    top = args.readme if args.readme is not None else (TOP_README if args.out.resolve() == DEFAULT_OUT else None)
    if top is not None:
        text = top.read_text()
        top.write_text(res.replace_readme_block(text, res.readme_block(args.out)))
        print(f"results: rewrote the generated block of {top}", file=sys.stderr)
    print(f"results: wrote {readme} in {(time.perf_counter() - t0) / 60:.1f} min", file=sys.stderr)
    if failed:
        print(f"results: {failed} trials failed after retries (recorded as failed runs)", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    return run_resumable_command("results", lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
