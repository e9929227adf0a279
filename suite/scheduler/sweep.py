"""``targetbench sweep SUITE``: run a suite file (built-in name or path) on the local or Ray backend.

Wired into :mod:`suite.cli` like ``convergence``: ``add_arguments(parser)`` and ``main(args) -> int``.
Exit status: 0 when every trial finished (completed, diverged or skipped), 1 when some trials failed after
their retries (they are recorded as failed runs), 2 for bad input, 3 when the tracking store is unreachable
(before anything ran, or for longer than ``--store-wait`` while trials ended or were to start: they are reported
unpushed or unstarted).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from analysis import record_names as names
from suite.errors import UsageError

__all__ = ["add_arguments", "main"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from suite.scheduler.spec import typed_keys_help
    from suite.trial import add_set_argument

    p.epilog = typed_keys_help() + " (the full schema is at the top of suite/scheduler/spec.py)"
    p.add_argument("suite", nargs="?", default=None,
                   help="built-in suite name (see --list) or a path to a suite .yaml file")
    p.add_argument("--list", action="store_true", help="list the built-in suites and exit")
    p.add_argument("--backend", default="local", choices=["local", "ray"],
                   help="local: a process pool on this machine (default); ray: Ray tasks")
    p.add_argument("--workers", type=int, default=None,
                   help="groups running at a time (default: one per core; ray: CPUs of a local instance)")
    p.add_argument("--ray-address", default=None,
                   help="join this Ray cluster (default: $RAY_ADDRESS, else start a local instance)")
    p.add_argument("--num-cpus", type=float, default=None, help="ray: CPUs per group (default: the suite's, 1)")
    p.add_argument("--num-gpus", type=float, default=None,
                   help="ray: GPUs per group, fractional to share a GPU (default: the suite's, 0)")
    p.add_argument("--group-size", type=int, default=None,
                   help="max seeds batched per process (default: the suite's; 0 = auto from cores and GPUs)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///RESULTS/mlflow.db)")
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: the suite's, sweep-<name>)")
    p.add_argument("--checkpoint-uri", default=None,
                   help="where checkpoints live: a path, an fsspec URL, mlflow-artifacts:/... or 'tracking' (the "
                        "tracking server's artifact store; the default for --backend ray with an http(s) tracking "
                        "URI, so the MLflow server is all the nodes share); default: RESULTS/checkpoints")
    p.add_argument("--results", default=None, help="results folder (default: $TARGETBENCH_RESULTS or results)")
    p.add_argument("--store-wait", type=_seconds, default=None, metavar="SECONDS",
                   help="how long the sweep, and each group as it starts, waits for a tracking store that stopped "
                        "answering before reporting its trials unpushed or unstarted (exit 3; default: 120)")
    add_set_argument(p, "override for every trial: agent field, env.OPTION or train.FIELD")
    p.add_argument("--steps", type=int, default=None, help="env steps per seed (replaces the suite's budget)")
    p.add_argument("--dry-run", action="store_true", help="print the trials and the estimated cost; run nothing")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def main(args: argparse.Namespace) -> int:
    from suite.scheduler import builtin_suites, load_suite, run_sweep
    from suite.trial import parse_overrides

    if args.list:
        for name in builtin_suites():
            s = load_suite(name)
            print(f"{name:<28} {s.description}")
        return 0
    if not args.suite:
        raise UsageError("sweep needs a SUITE; allowed: a built-in suite (" + ", ".join(builtin_suites())
                         + ") or a path to a .yaml file")
    results = Path(args.results or os.environ.get("TARGETBENCH_RESULTS", "results"))
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
    suite = load_suite(args.suite)
    res = suite.resources
    given = _resource_flags(args)
    if not args.dry_run:  # a dry run writes nothing
        from suite.preflight import check_writable

        check_writable(results)
    suite = dataclasses.replace(suite, resources=dataclasses.replace(res, **given))
    from suite.errors import TrackingError

    try:
        summary = run_sweep(suite, backend=args.backend, workers=args.workers, tracking_uri=uri,
                            experiment=args.experiment, results_dir=results,
                            overrides=parse_overrides(args.set or []), steps=args.steps, dry_run=args.dry_run,
                            progress=not (args.quiet or args.dry_run), ray_address=args.ray_address,
                            checkpoint_uri=args.checkpoint_uri,
                            **({} if args.store_wait is None else {"store_wait_s": args.store_wait}))
    except TrackingError as exc:
        # Trials trained but unpushed: the summary (with its `unpushed` count) is still printed for --json
        # readers; the exit status stays that of the error (3).
        if args.json and getattr(exc, "summary", None) is not None:
            print(json.dumps(exc.summary.to_json()), flush=True)
        raise
    if args.json:
        print(json.dumps(summary.to_json()))
    elif args.dry_run:
        print(dry_run_text(summary, suite))
    else:
        print(f"{summary.suite}: done {summary.done}, diverged {summary.diverged}, skipped {summary.skipped}, "
              f"failed {summary.failed} in {summary.wall_s / 60:.1f} min -> {summary.tracking_uri} "
              f"(experiment {summary.experiment})")
    if summary.failed:
        failed = [t for t in summary.trials if t.status == "failed"]
        print(f"targetbench: {len(failed)} trials failed after retries; first: {failed[0].agent} {failed[0].env} "
              f"seed {failed[0].seed}: {failed[0].error}", file=sys.stderr)
        return 1
    return 0


def _seconds(text: str) -> float:
    """``--store-wait``: a finite number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not valid; allowed: seconds >= 0")
    return value


def _resource_flags(args: argparse.Namespace) -> dict[str, float]:
    """``--num-cpus``, ``--num-gpus``, ``--group-size`` as given, checked by the suite's ``resources`` fields."""
    from agents.fields import ConfigError, fields_of
    from suite.scheduler.spec import Resources

    given = {}
    for name, fld in fields_of(Resources).items():
        value = getattr(args, name)
        if value is None:
            continue
        try:
            given[name] = fld.check(value)
        except ConfigError:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} {value:g} is not valid; allowed: {fld.bound_text()}") from None
    return given


def dry_run_text(summary, suite) -> str:
    """Human-readable plan: one line per (variant, agent, env) and the cost estimate."""
    from suite.scheduler.progress import format_table

    est = summary.estimate
    lines = [f"suite {summary.suite} ({suite.path}): {len(summary.trials)} trials "
             f"({summary.planned} to run, {summary.skipped} already finished) "
             f"-> {summary.tracking_uri}, experiment {summary.experiment}",
             format_table(summary.trials),
             f"plan: {est['groups']} groups of <= {summary.group_size} seeds, {est['env_steps']:,} env steps; "
             f"estimated {est['worker_hours']:.2f} worker-hours, about {_human(est['wall_s'])} wall with "
             f"{est['workers']} workers (local CPU model; Atari assumes one GPU per worker; +-50 %)"]
    if summary.packing:
        lines.append("packing (memory by suite/memory.py's estimate):")
        for r in summary.packing:
            gpu = (f"{r['num_gpus']:g} GPU each, {r['groups_per_gpu']} groups per GPU, {r['gpu_gib']:.2f} GiB GPU "
                   "memory each" if r["num_gpus"] > 0 else "CPU only")
            v = "" if r["variant"] == names.DEFAULT_VARIANT else f"[{r['variant']}] "
            lines.append(f"  {v}{r['agent']} {r['env']}: {r['groups']} groups of {r['seeds_per_group']} seeds; "
                         f"{gpu}; {r['host_gib']:.2f} GiB RAM each")
    if summary.nodes:
        lines.append("on one node of each type (node-hours: multiply by its hourly price):")
        for n in summary.nodes:
            shape = f"{n['cores']} cores, {n['ram_gib']:g} GiB" + (f", {n['gpus']}x{n['gpu_gib']:g} GiB GPU"
                                                                    if n["gpus"] else "")
            what = (f"{n['groups_at_once']} groups at once, about {_human(n['wall_h'] * 3600)} = "
                    f"{n['node_hours']:.2f} node-hours" if n["groups_at_once"] else f"cannot run it ({n['why']})")
            lines.append(f"  {n['node']:<12} ({shape}): {what}")
    return "\n".join(lines)


def _human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
