"""``targetbench analyze``: read an experiment back from MLflow and write figures, tables and report.md.

The command line of :mod:`analysis.experiment` (which stays a library and never imports ``suite``): flags, the checks
made before any work (tracking store present and answering, output folder writable), and the mapping of the
library's exceptions to one-line :mod:`suite.errors` with their exit codes. Exposes ``add_arguments(parser)`` and
``main(args) -> int`` like the other subcommands, and :func:`analyze` for callers that already have the arguments
(``make benchmark``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from suite.errors import TrackingError, UsageError, WriteError
from suite.preflight import check_writable

if TYPE_CHECKING:
    from analysis.report import ReportResult

__all__ = ["add_arguments", "main", "analyze"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``analyze`` command's flags to ``p``."""
    p.add_argument("--experiment", default=None,
                   help="MLflow experiment (default: the only experiment holding runs in the store)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///results/mlflow.db)")
    p.add_argument("--results", default=None, help="results folder (default: $TARGETBENCH_RESULTS or results)")
    p.add_argument("--out", default=None, help="output folder for figures/, tables/ and report.md "
                                               "(default: the results folder)")
    p.add_argument("--reps", type=int, default=None,
                   help="bootstrap repetitions (default 2,000; 50,000 with --publication)")
    p.add_argument("--publication", action="store_true", help="publication quality: 50,000 bootstrap repetitions")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed: the same seed gives the same intervals")
    p.add_argument("--engine", choices=("fast", "rliable"), default="fast",
                   help="who computes the bootstrap intervals: fast (vectorised numpy, default) or rliable (the "
                        "rliable library itself; slow, needs equal run counts per environment)")
    p.add_argument("--baseline", default="dqn", help="agent the probability of improvement compares to (default dqn)")
    p.add_argument("--pair", action="append", default=[], metavar="X:Y",
                   help="also report P(X > Y) for this pair of agent labels (repeatable)")
    p.add_argument("--refresh", action="store_true", help="ignore the cached run tables and read the store again")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache under results/cache")
    p.add_argument("--no-figures", action="store_true", help="tables and report text only (faster)")
    p.add_argument("--reference", action="append", default=[], metavar="DIR",
                   help="a results folder (e.g. docs/results) whose stored runs of the same evaluation protocol join "
                        "the report, labelled agent/ref; P(X > baseline) then compares with the reference's baseline "
                        "(repeatable)")
    p.add_argument("--allow-mixed-protocols", action="store_true",
                   help="compare runs of different evaluation protocols anyway (the report says so)")
    from suite.figure import add_style_arguments

    add_style_arguments(p)


def analyze(**kwargs: Any) -> ReportResult:
    """:func:`analysis.experiment.run_analysis` (same keyword arguments) with its failures as one-line errors.

    Raises:
        UsageError: no such experiment, no runs, runs of different evaluation protocols in one comparison, or
            ``engine="rliable"`` on runs it cannot take (exit 2).
        TrackingError: the store cannot be read (exit 3).
        WriteError: the cache or the report could not be written (exit 5).
    """
    from analysis.experiment import NothingToAnalyse, OutputNotWritten, StoreUnreadable, run_analysis
    from analysis.protocol_check import MixedProtocolsError
    from analysis.stats import RaggedScoresError

    try:
        return run_analysis(**kwargs)
    except (NothingToAnalyse, MixedProtocolsError) as exc:
        raise UsageError(str(exc)) from None
    except StoreUnreadable as exc:
        raise TrackingError(str(exc)) from None
    except OutputNotWritten as exc:
        hint = " (free space, or pass --no-cache)" if exc.what == "cache" else ""
        raise WriteError(f"{exc}{hint}") from exc.__cause__
    except RaggedScoresError as exc:  # --engine rliable on runs rliable cannot take
        raise UsageError(f"--engine rliable: {exc}; use --engine fast") from None


def main(args: argparse.Namespace) -> int:
    """Run ``targetbench analyze``; returns the exit status (0). Bad input raises a one-line :mod:`suite.errors`."""
    from analysis.stats import DEFAULT_REPS, PUBLICATION_REPS
    from suite.envs.families import reference_files  # analysis/ knows no family: the suite hands it their scores

    results = Path(args.results or os.environ.get("TARGETBENCH_RESULTS", "results"))
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{results.as_posix()}/mlflow.db"
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        raise UsageError(f"tracking store {uri} does not exist; run some trials first or pass --tracking-uri")
    if uri.startswith(("http://", "https://")):
        from suite.tracking import ensure_store  # one health request, 5 s timeout: a one-line TrackingError

        ensure_store(uri)
    reps = args.reps if args.reps is not None else (PUBLICATION_REPS if args.publication else DEFAULT_REPS)
    if reps < 100:
        raise UsageError(f"--reps {reps} is not valid; allowed: an integer >= 100")
    pairs = []
    for item in args.pair:
        x, sep, y = item.partition(":")
        if not sep or not x or not y:
            raise UsageError(f"--pair {item!r} is not valid; allowed: X:Y with two agent labels")
        pairs.append((x, y))
    from suite.figure import figure_options

    options = figure_options(args)  # the agents' declared colours, markers and groups; the style flags
    out = Path(args.out) if args.out else results
    check_writable(out, "output folder")  # before reading the store: fail fast, in one line
    t0 = time.perf_counter()
    from suite.experiments import choose_experiment

    chosen: list[str] = []  # said after the report is written: an error stays the only line on stderr
    experiment = choose_experiment(uri, args.experiment, "analyze", say=chosen.append)
    res = analyze(uri=uri, experiment=experiment, out=out, results=results, reps=reps,
                  seed=args.seed, baseline=args.baseline, pairs=pairs, refresh=args.refresh,
                  cache=not args.no_cache, make_figures=not args.no_figures, engine=args.engine,
                  reference_files=reference_files(), reference=[Path(d) for d in args.reference],
                  allow_mixed_protocols=args.allow_mixed_protocols, figure_options=options)
    for line in chosen:
        print(line, file=sys.stderr)
    print(f"wrote {res.report} ({len(res.figures)} figure files, {len(res.tables)} table files) in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0
