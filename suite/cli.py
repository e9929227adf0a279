"""The ``targetbench`` command line: ``agents``, ``envs``, ``run``, ``convergence``, ``sweep``, ``analyze``,
``figure``, ``reproduce``, ``push``, ``verify``, ``seeds``.

Every user error is one line on stderr (``targetbench: error: ...``) with a documented exit code
(see :data:`suite.errors.EXIT_CODES`); ``--debug`` shows the traceback. A reader that closes our stdout early
(``targetbench agents --json | head -1``) ends any subcommand quietly with exit 141, the status a Unix tool
killed by SIGPIPE reports (``128 + SIGPIPE``; ignored by shells unless ``set -o pipefail``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Sequence

from suite.errors import BROKEN_PIPE_EXIT, EXIT_CODES, WRITE_ERRNOS, TargetBenchError, UsageError, WriteError
from suite.preflight import check_writable

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and our exit code for bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _results_dir(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "results", None) or os.environ.get("TARGETBENCH_RESULTS", "results"))


def _cmd_agents(args: argparse.Namespace) -> int:
    from agents import list_agents
    from agents.config import describe_fields

    rows = [{"name": s.name, "description": s.description, "config": s.config_cls.__name__,
             "fields": describe_fields(s.config_cls)} for s in list_agents()]
    if args.json:
        for row in rows:
            print(json.dumps(row, default=list))
        return 0
    width = max(len(r["name"]) for r in rows)
    for row in rows:
        print(f"{row['name']:<{width}}  {row['description']}")
        print(f"{'':<{width}}  fields: {', '.join(f['name'] for f in row['fields'])}")
    return 0


def _cmd_envs(args: argparse.Namespace) -> int:
    from suite.envs import default_env_options, get_family, list_envs

    specs = list_envs()
    if args.json:
        for s in specs:
            try:
                options = default_env_options(s.id)
            except ValueError:
                options = {}  # pattern entries (tabular/random:S,A,SEED) have no single default set
            fields = [opt.field(k).describe() for k, opt in get_family(s.family).options.items()]
            print(json.dumps({"id": s.id, "family": s.family, "description": s.description,
                              "max_episode_steps": s.default_max_episode_steps, "options": options,
                              "option_fields": fields}))
        return 0
    width = max(len(s.id) for s in specs)
    for s in specs:
        print(f"{s.id:<{width}}  {s.family:<8} {s.description}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from suite.tracking import DEFAULT_EXPERIMENT, default_tracking_uri, import_in_background

    # MLflow's import (over a second) runs beside torch's and the trial's set-up instead of after them.
    import_in_background()
    from suite.memory import check_memory
    from suite.trainer import train
    from suite.trial import build_trial, parse_overrides, parse_seeds

    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps {args.steps} is not valid; allowed: a positive integer")
    trial = build_trial(args.agent, args.env, parse_seeds(args.seed), steps=args.steps,
                        overrides=parse_overrides(args.set or []))
    check_memory(trial)  # refuse, before anything is allocated, a group that cannot fit (one-line error)
    results_dir = _results_dir(args)
    check_writable(results_dir)
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(results_dir)
    from suite.checkpoint_store import is_remote_uri, open_checkpoint_store

    experiment = args.experiment or DEFAULT_EXPERIMENT
    checkpoint_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else None
    store = None
    if args.checkpoint_uri and not is_remote_uri(args.checkpoint_uri):
        if checkpoint_dir is not None and checkpoint_dir.resolve() != Path(args.checkpoint_uri).resolve():
            raise UsageError(f"--checkpoint-uri {args.checkpoint_uri} is a folder other than --checkpoint-dir "
                             f"{checkpoint_dir}; allowed: one of them, or a remote --checkpoint-uri")
        checkpoint_dir = Path(args.checkpoint_uri)
    elif args.checkpoint_uri:
        store = open_checkpoint_store(args.checkpoint_uri, tracking_uri=uri, experiment=experiment,
                                      checkpoint_dir=checkpoint_dir or results_dir / "checkpoints")
    try:
        results = train(trial, tracking_uri=uri, experiment=experiment, results_dir=results_dir,
                        checkpoint_dir=checkpoint_dir, checkpoint_store=store,
                        resume=args.resume, progress=(lambda m: None) if args.quiet else None)
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        # The run's own files (artifacts) live under the results folder; checkpoints say so themselves.
        raise WriteError(f"cannot write the run's files under {results_dir}: {exc.strerror}; the last checkpoint "
                         "is kept: free space and rerun with --resume") from exc
    for res in results:
        if args.json:
            print(json.dumps(res.to_json()), flush=True)
        else:
            print(f"{res.agent} {res.env} seed {res.seed}: final eval return {res.final_eval_return:.2f} "
                  f"after {res.steps} steps ({res.status}); {res.sps:.0f} steps/s; run {res.run_id}")
    return 0


def _cmd_convergence(args: argparse.Namespace) -> int:
    from suite import convergence

    try:
        return convergence.main(args)
    except ValueError as exc:
        raise UsageError(str(exc).splitlines()[0]) from None


def _cmd_sweep(args: argparse.Namespace) -> int:
    from suite.scheduler import sweep

    return sweep.main(args)


def _cmd_analyze(args: argparse.Namespace) -> int:
    from suite import analyze

    return analyze.main(args)


def _cmd_figure(args: argparse.Namespace) -> int:
    from suite import figure

    return figure.main(args)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from suite import reproduce

    return reproduce.main(args)


def _cmd_push(args: argparse.Namespace) -> int:
    from suite import push

    return push.main(args)


def _cmd_verify(args: argparse.Namespace) -> int:
    from suite import verify

    return verify.main(args)


def _cmd_seeds(args: argparse.Namespace) -> int:
    from suite import seeds

    return seeds.main(args)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for docs and tests)."""
    codes = "; ".join(f"{k}: {v}" for k, v in EXIT_CODES.items())
    parser = _Parser(prog="targetbench", description="Benchmark target-update methods in deep Q-learning.",
                     epilog=f"exit codes: {codes}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("agents", help="list registered agents and their config fields")
    p.add_argument("--json", action="store_true", help="one JSON object per agent")
    p.set_defaults(func=_cmd_agents)

    p = sub.add_parser("envs", help="list environments")
    p.add_argument("--json", action="store_true", help="one JSON object per environment")
    p.set_defaults(func=_cmd_envs)

    from suite.trial import add_set_argument

    p = sub.add_parser("run", help="train one agent on one env, several seeds batched in one process",
                       description="Train the given seeds together in one process; one MLflow run per seed.")
    p.add_argument("--agent", required=True, help="registered agent name (see `targetbench agents`)")
    p.add_argument("--env", required=True, help="environment id (see `targetbench envs`)")
    p.add_argument("--seed", default="0", help="seeds, e.g. 0 or 0,1,2 or 0-9 (default 0)")
    p.add_argument("--steps", type=int, default=None, help="env steps per seed (default: the family's budget)")
    add_set_argument(p, "override a config value: agent field, env.OPTION or train.FIELD")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///results/mlflow.db)")
    p.add_argument("--experiment", default=None, help="MLflow experiment name (default: targetbench)")
    p.add_argument("--checkpoint-dir", default=None, help="checkpoint folder (default: results/checkpoints)")
    p.add_argument("--checkpoint-uri", default=None,
                   help="where checkpoints live: a path (like --checkpoint-dir), an fsspec URL (file://, s3://, "
                        "...), mlflow-artifacts:/... or 'tracking' (the tracking server's artifact store); remote "
                        "ones are mirrored from the local checkpoint folder (see docs/cluster.md)")
    p.add_argument("--resume", action="store_true", help="continue from this trial's checkpoint and MLflow runs")
    p.add_argument("--results", default=None, help="results folder (default: $TARGETBENCH_RESULTS or results)")
    p.add_argument("--json", action="store_true", help="print one JSON object per seed")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("convergence", help="tabular Q-learning with each target rule against exact Q*")
    from suite import convergence
    convergence.add_arguments(p)
    p.set_defaults(func=_cmd_convergence)

    p = sub.add_parser("sweep", help="run a suite (built-in name or .yaml) on the local or Ray backend",
                       description="Run every trial of a suite that the tracking store does not have yet.")
    from suite.scheduler import sweep
    sweep.add_arguments(p)
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("analyze", help="read an experiment back from MLflow: figures, tables and report.md")
    from suite import analyze
    analyze.add_arguments(p)
    p.set_defaults(func=_cmd_analyze)

    p = sub.add_parser("figure", help="one figure (aggregates, curves, profiles, improvement, sensitivity, per-env) "
                                      "of an experiment: PDF, PNG, the CSV of the numbers drawn, a caption",
                       description="Draw one figure of an experiment for the chosen agents and environments, in the "
                                   "report's, a paper's or a slide's style.")
    from suite import figure
    figure.add_arguments(p)
    p.set_defaults(func=_cmd_figure)

    p = sub.add_parser("reproduce", help="run the suite behind a published table and compare with it")
    from suite import reproduce
    reproduce.add_arguments(p)
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("push", help="write records kept in checkpoints while the tracking store was down",
                       description="Finish the MLflow runs of complete checkpoints whose records never reached "
                                   "the tracking store (metric points, final tags, artifacts). Never trains.")
    from suite import push
    push.add_arguments(p)
    p.set_defaults(func=_cmd_push)

    p = sub.add_parser("verify", help="rerun reference runs from their recorded configs and compare with the "
                                      "shipped per-run data",
                       description="Rerun reference runs (docs/results/runs) and report per run whether "
                                   "params_sha256 and every evaluation point match.")
    from suite import verify
    verify.add_arguments(p)
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("seeds", help="how interval widths shrink with the number of seeds, from stored runs",
                       description="Estimate from the stored reference runs how the intervals of IQM and of "
                                   "P(A > baseline) shrink with the number of seeds.")
    from suite import seeds
    seeds.add_arguments(p)
    p.set_defaults(func=_cmd_seeds)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``targetbench`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "func", None):
            build_parser().print_help()
            return 2
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe must surface here, not in the interpreter's exit-time flush
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except TargetBenchError as exc:
        if debug:
            traceback.print_exc()
        print(f"targetbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("targetbench: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            return _internal_error(exc, debug)
        # A full disk (or quota, read-only mount) wherever it happens: the user's to fix, not a bug.
        if debug:
            traceback.print_exc()
        err = WriteError(f"write failed: {exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
                         + " (free space and rerun)")
        print(f"targetbench: error: {err}", file=sys.stderr)
        return err.exit_code
    except Exception as exc:  # a bug: say so in one line unless --debug
        return _internal_error(exc, debug)


def _stdout_closed() -> int:
    """The reader of our stdout went away (``| head``): stop quietly, as Unix tools do on SIGPIPE. Later writes
    (buffered output flushed at exit) go to /dev/null, so Python prints no "Exception ignored" either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (tests capture it): nothing left to flush
        pass
    return BROKEN_PIPE_EXIT


def _internal_error(exc: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    msg = str(exc).splitlines()[0] if str(exc) else ""
    print(f"targetbench: internal error: {type(exc).__name__}: {msg} (rerun with --debug)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
