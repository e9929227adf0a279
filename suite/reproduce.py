"""``targetbench reproduce TABLE [--quick]``: run the suite behind a published table, then compare.

Published tables are the CSVs in ``analysis/published/`` (each carries its source and how exact
its values are as ``#`` comment lines). For each one that can be reproduced, a suite in ``suite/specs/`` holds one variant per published
row. The command runs that suite with :func:`suite.scheduler.run_sweep` (trials already in the store are
skipped), reads the runs back from the tracking store as per-run data (:mod:`analysis.run_table`, the same data
docs/results ships; the table is computed from it alone) and writes
``<results>/tables/reproduce-<TABLE>[-quick].md/.tex/.csv`` (``--out`` picks another folder): per row the
published value, ours (the statistic the source reports, with a 95 % bootstrap interval over seeds) and a
verdict: **inside** (the published value lies in our interval), **outside**, or **not comparable** (with the
reason).

``--quick`` runs a much smaller budget (fewer steps and seeds, into a separate experiment ``<name>-quick``); the
table title says so, and where the source states its budget (MinAtar: 5M frames) the verdicts become
"not comparable" with the would-be verdict in the reason.

``dopamine_dqn`` compares per game and iteration with Dopamine's own runs (``analysis/published/dopamine/``),
scoring ours as the ``dopamine`` protocol does: each iteration's mean training-episode return, read from the
recorded episodes; an iteration our runs only partly covered is "not comparable" with the would-be verdict.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from suite.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from suite.scheduler.spec import SuiteSpec

__all__ = ["add_arguments", "main", "TABLES", "TableSpec", "resolve_table", "build_table", "budget_text",
           "write_reproduction", "plan"]


@dataclass(frozen=True)
class TableSpec:
    name: str
    suite: str
    csv: str
    quick_steps: int
    quick_seeds: tuple[int, ...]
    quick_overrides: dict
    published_steps: int | None  # the source's budget in env steps, None when it gives none
    builder: str
    # the source's budget in training episodes, None when it gives none: training-return measures (episodes to
    # solve) only look at each run's first this many episodes (the trainer's budget is in env steps)
    published_episodes: int | None = None
    # --quick runs these envs only (None: the suite's)
    quick_envs: tuple[str, ...] | None = None
    # the published per-run data (under analysis/published/) a per-run builder compares with
    published_runs: str | None = None


TABLES: dict[str, TableSpec] = {
    "cartpole_dqn_ablation": TableSpec(
        "cartpole_dqn_ablation", "cartpole-dqn-ablation", "cartpole_dqn_ablation.csv", quick_steps=20_000,
        quick_seeds=(0, 1, 2), quick_overrides={"train.eval_every": "5000", "train.eval_episodes": "5"},
        published_steps=None, builder="cartpole", published_episodes=1000),
    "minatar_v1_dqn_ablation": TableSpec(
        "minatar_v1_dqn_ablation", "minatar-v1-dqn-ablation", "minatar_v1_dqn_ablation.csv", quick_steps=25_000,
        quick_seeds=(0, 1), quick_overrides={"train.eval_every": "12500", "train.eval_episodes": "3"},
        published_steps=5_000_000, builder="minatar"),
    "dopamine_dqn": TableSpec(
        "dopamine_dqn", "dopamine-dqn", "", quick_steps=1_000, quick_seeds=(0, 1),
        quick_overrides={"train.eval_episodes": "1", "train.eval_max_steps": "500", "train.log_every": "500"},
        published_steps=None, builder="dopamine", quick_envs=("ALE/Pong-v5",),
        published_runs="dopamine/runs/dopamine-dqn.csv.gz"),
}
_NOT_YET = {"cleanrl_dqn": "CleanRL's table needs 500k-step CartPole and 10M-step Atari runs; run `targetbench "
                           "run --agent dqn --env CartPole-v1 --seed 0,1,2` and `targetbench analyze` instead",
            "isql_headline": "the iS-QL headline needs 15 Atari games at 100M frames (normalised AUC)"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from suite.trial import add_set_argument

    p.add_argument("table", help=f"published table: {', '.join(TABLES)} (dashes or underscores)")
    p.add_argument("--quick", action="store_true", help="a much smaller budget (the table title says so)")
    p.add_argument("--no-run", action="store_true", help="do not train: build the table from runs already stored")
    p.add_argument("--steps", type=int, default=None, help="env steps per seed (overrides the suite / --quick)")
    p.add_argument("--seeds", default=None, help="seeds, e.g. 0-4 (overrides the suite / --quick)")
    p.add_argument("--workers", type=int, default=None, help="trial groups at a time (default: one per core)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///results/mlflow.db)")
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: the suite's, + '-quick')")
    p.add_argument("--results", default=None, help="results folder (default: $TARGETBENCH_RESULTS or results)")
    p.add_argument("--out", default=None, help="folder for the table files (default: RESULTS/tables)")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap repetitions (default 2,000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    add_set_argument(p, "extra override for every trial")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def resolve_table(name: str) -> TableSpec:
    key = name.strip().lower().replace("-", "_").removesuffix(".csv")
    if key in TABLES:
        return TABLES[key]
    if key in _NOT_YET:
        raise UsageError(f"table {name!r} cannot be reproduced yet ({_NOT_YET[key]}); allowed: {', '.join(TABLES)}")
    raise UsageError(f"unknown table {name!r}; allowed: {', '.join(TABLES)}")


def build_table(spec: TableSpec, runs: pd.DataFrame, *, reps: int, seed: int, steps: int | None,
                quick: bool, metrics: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The table of ``spec`` from per-run data (:func:`analysis.run_table.to_frames`) and the source's notes.
    ``metrics``: the runs' recorded training episodes, which Dopamine's per-iteration scores are read from (the
    per-run data holds evaluation points only)."""
    from analysis.reproduction import cartpole_table, minatar_table, read_published

    if spec.builder == "dopamine":
        return _dopamine(spec, runs, metrics, reps=reps, seed=seed)

    published, notes = read_published(spec.csv)
    comparable = spec.published_steps is None or (steps is not None and steps >= spec.published_steps)
    if spec.builder == "cartpole":
        table = cartpole_table(runs, published, reps=reps, seed=seed, comparable_budget=comparable,
                               max_episodes=spec.published_episodes)
    else:
        note = f"budget {steps:,} env steps per run vs the paper's {spec.published_steps:,}" if steps else "budget"
        table = minatar_table(runs, published, reps=reps, seed=seed, comparable_budget=comparable,
                              budget_note=note)
    return table, notes


def _dopamine(spec: TableSpec, runs: "pd.DataFrame", metrics: "pd.DataFrame", *, reps: int, seed: int
              ) -> tuple["pd.DataFrame", list[str]]:
    """Dopamine's runs against ours per game and iteration; the notes check that the shipped runs carry the
    fingerprint the ``dopamine`` protocol has today (else they were converted under another definition)."""
    from analysis.reproduction import DOPAMINE_ITERATION_STEPS, dopamine_table, read_published_runs
    from suite.protocol import fingerprint, protocol_of
    from suite.trial import build_trial

    published = read_published_runs(spec.published_runs)
    notes = [f"Dopamine's DQN baseline runs (google/dopamine baselines/atari/data, Apache-2.0, commit "
             f"{published['commit'].iloc[0][:12]}): 5 runs per game, each iteration's mean training-episode return "
             "(analysis/published/dopamine/README.md)."]
    for env in sorted(set(runs["env"]) & set(published["env"])):
        pub = published[published["env"] == env]
        budget = 200 * DOPAMINE_ITERATION_STEPS  # Dopamine ran 200 iterations (and published 199)
        now = fingerprint(protocol_of(build_trial("dqn", env, (0,), steps=budget,
                                                  overrides={"env.protocol": "dopamine"})))
        if set(pub["protocol"]) != {now}:
            notes.append(f"{env}: the shipped runs carry protocol {sorted(set(pub['protocol']))[0]}, the dopamine "
                         f"protocol is now {now}: rerun benchmarks/convert_dopamine.py.")
    return dopamine_table(runs, metrics, published, reps=reps, seed=seed), notes


def budget_text(spec: TableSpec, runs: "pd.DataFrame", steps: int, seeds: int, quick: bool) -> str:
    """The table title's budget, stated against the source's own: its env steps / frames where it gives them,
    the training episodes each run read where it counts episodes."""
    text = (f"QUICK budget: {steps:,} env steps per run, {seeds} seeds — far below the source's; a smoke check, "
            "not a reproduction" if quick else f"{steps:,} env steps per run, {seeds} seeds")
    if not quick and spec.published_steps is not None and steps < spec.published_steps:
        text += f"; the source's {spec.published_steps:,} frames are {spec.published_steps / steps:,.0f}x ours"
    if spec.published_episodes is not None:
        from analysis.reproduction import episodes_seen

        seen = episodes_seen(runs, spec.published_episodes)
        if seen is not None:
            text += (f"; training episodes read per run: median {seen[0]:,.0f} (range {seen[1]:,}–{seen[2]:,}) of "
                     f"the source's {spec.published_episodes:,}")
    return text


def write_reproduction(spec: TableSpec, runs: "pd.DataFrame", out: Path, *, reps: int, seed: int, quick: bool,
                       metrics: "pd.DataFrame | None" = None) -> dict[str, Path]:
    """Write ``reproduce-<name>[-quick].md/.tex/.csv`` into ``out`` from per-run data alone (the runs of one budget:
    the title states the budget and seed count the runs record)."""
    import pandas as pd

    from analysis.tables import write_table

    steps = int(pd.to_numeric(runs["param.train.steps"], errors="coerce").max()) if "param.train.steps" in runs \
        else None
    table, notes = build_table(spec, runs, reps=reps, seed=seed, steps=steps, quick=quick, metrics=metrics)
    experiments = ", ".join(sorted(runs["experiment"].dropna().astype(str).unique())) if "experiment" in runs else ""
    title = f"Reproduce {spec.name} ({budget_text(spec, runs, steps or 0, runs['seed'].nunique(), quick)})"
    footnote = ("Source notes: " + " ".join(notes) + " Ours: 95 % percentile-bootstrap interval over seeds "
                f"({reps:,} resamples, seed {seed}), from the per-run data (experiment {experiments}). Diverged runs "
                "are kept and scored by their last evaluation / their recorded episodes; failed runs are counted in "
                "the runs column. Verdict: inside = the published value lies in our interval; outside = it does "
                "not; not comparable = see the reason.")
    name = f"reproduce-{spec.name}" + ("-quick" if quick else "")
    return write_table(table, out, name, title=title, footnote=footnote)


def _filter_runs(runs: "pd.DataFrame", steps: int | None, seeds: tuple[int, ...]) -> "pd.DataFrame":
    import pandas as pd

    if steps is not None and "param.train.steps" in runs:
        runs = runs[pd.to_numeric(runs["param.train.steps"], errors="coerce") == steps]
    return runs[runs["seed"].isin(seeds)]


def plan(args: argparse.Namespace) -> tuple[TableSpec, "SuiteSpec", int, tuple[int, ...], dict, str]:
    """``(spec, suite, steps, seeds, overrides, experiment)`` of a ``reproduce`` invocation, checked."""
    from suite.scheduler import load_suite
    from suite.trial import parse_overrides, parse_seeds

    spec = resolve_table(args.table)
    suite = load_suite(spec.suite)
    if args.reps < 100:
        raise UsageError(f"--reps {args.reps} is not valid; allowed: an integer >= 100")
    # Checked here because `args.steps or ...` below would take 0 as "not given" and run the full budget.
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps {args.steps} is not valid; allowed: a positive integer")
    overrides = dict(spec.quick_overrides) if args.quick else {}
    overrides.update(parse_overrides(args.set or []))
    steps = args.steps or (spec.quick_steps if args.quick else suite.steps)
    seeds = parse_seeds(args.seeds, key="--seeds") if args.seeds else (spec.quick_seeds if args.quick else suite.seeds)
    suite = dataclasses.replace(suite, seeds=tuple(seeds))
    if args.quick and spec.quick_envs is not None:
        suite = dataclasses.replace(suite, envs=spec.quick_envs)
    experiment = args.experiment or (suite.default_experiment + ("-quick" if args.quick else ""))
    return spec, suite, steps, tuple(seeds), overrides, experiment


def main(args: argparse.Namespace) -> int:
    from analysis.run_table import to_frames
    from suite.preflight import check_writable
    from suite.run_export import load_run_table
    from suite.scheduler import run_sweep

    spec, suite, steps, seeds, overrides, experiment = plan(args)
    results = Path(args.results or os.environ.get("TARGETBENCH_RESULTS", "results"))
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{results.as_posix()}/mlflow.db"
    check_writable(results)  # the table is written there, with or without --no-run
    if getattr(args, "out", None):
        check_writable(Path(args.out), "output folder")
    if args.no_run and uri.startswith(("http://", "https://")):
        from suite.tracking import ensure_store  # one health request, 5 s timeout: a one-line TrackingError

        ensure_store(uri)
    if not args.no_run:
        summary = run_sweep(suite, workers=args.workers, tracking_uri=uri, experiment=experiment, results_dir=results,
                            overrides=overrides or None, steps=steps, progress=not args.quiet)
        if summary.failed and not args.quiet:
            print(f"reproduce: {summary.failed} trials failed; they are counted and scored as the table says",
                  file=sys.stderr)
    runs, _ = to_frames(load_run_table(uri, experiment, results))
    runs = _filter_runs(runs, steps, seeds)
    if runs.empty:
        raise UsageError(f"experiment {experiment!r} has no runs with {steps} steps and seeds {list(seeds)}")
    metrics = None
    if spec.builder == "dopamine":  # per-iteration scores read the recorded training episodes
        from analysis.runs import load_experiment

        metrics = load_experiment(uri, experiment, cache_dir=results / "cache")[1]
    paths = write_reproduction(spec, runs, Path(args.out) if getattr(args, "out", None) else results / "tables",
                               reps=args.reps, seed=args.seed, quick=args.quick, metrics=metrics)
    print(paths["md"].read_text())
    print(f"wrote {paths['md']}, {paths['tex']}, {paths['csv']}", file=sys.stderr)
    return 0
