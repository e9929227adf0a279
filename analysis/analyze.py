"""``targetbench analyze``: read an experiment back from MLflow and write figures, tables and report.md.

Exposes ``add_arguments(parser)`` and ``main(args) -> int`` like the other subcommands; bad input raises
:class:`suite.errors.UsageError` with a one-line message.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from suite.errors import WRITE_ERRNOS, TrackingError, UsageError, WriteError

__all__ = ["add_arguments", "main", "run_analysis"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: targetbench)")
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


def run_analysis(*, uri: str, experiment: str, out: Path, results: Path, reps: int, seed: int = 0,
                 baseline: str = "dqn", pairs=(), refresh: bool = False, cache: bool = True, title: str | None = None,
                 make_figures: bool = True, engine: str = "fast", reference_files: Sequence[Path] = ()):
    """Load (through the cache) and build the report; returns the :class:`analysis.report.ReportResult`.

    ``reference_files``: more reference-score tables (environment families that ship their own)."""
    from analysis.normalization import reference_scores
    from analysis.report import build_report
    from analysis.runs import load_experiment
    from analysis.stats import RaggedScoresError

    try:
        runs, metrics = load_experiment(uri, experiment, cache_dir=(results / "cache") if cache else None,
                                        refresh=refresh)
    except ValueError as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise _unreadable(uri, exc) from None
        # Writing the cache failed (disk full): not the store's fault.
        raise WriteError(f"cannot write the cache under {results / 'cache'}: {exc.strerror} (free space, or pass "
                         "--no-cache)") from exc
    except Exception as exc:  # unreachable server, unreadable store
        raise _unreadable(uri, exc) from None
    if runs.empty:
        raise UsageError(f"experiment {experiment!r} in {uri} has no runs")
    try:
        refs = reference_scores(extra=reference_files) if reference_files else None
        return build_report(runs, metrics, out, reps=reps, seed=seed, pairs=pairs, baseline=baseline,
                            title=title or f"TargetBench report: experiment {experiment}", make_figures=make_figures,
                            engine=engine, refs=refs)
    except RaggedScoresError as exc:  # --engine rliable on runs rliable cannot take
        raise UsageError(f"--engine rliable: {exc}; use --engine fast") from None
    except OSError as exc:  # disk full or the like: the user's to fix, named in one line
        raise WriteError(f"cannot write the report under {out}: {exc.strerror or exc}") from exc


def _unreadable(uri: str, exc: BaseException) -> TrackingError:
    msg = (str(exc).strip().splitlines() or [""])[0][:200]
    return TrackingError(f"tracking store {uri} cannot be read: {type(exc).__name__}: {msg}")


def main(args: argparse.Namespace) -> int:
    from analysis.stats import DEFAULT_REPS, PUBLICATION_REPS

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
    out = Path(args.out) if args.out else results
    from suite.cli import check_writable

    check_writable(out, "output folder")  # before reading the store: fail fast, in one line
    t0 = time.perf_counter()
    res = run_analysis(uri=uri, experiment=args.experiment or "targetbench", out=out, results=results, reps=reps,
                       seed=args.seed, baseline=args.baseline, pairs=pairs, refresh=args.refresh,
                       cache=not args.no_cache, make_figures=not args.no_figures, engine=args.engine,
                       reference_files=getattr(args, "reference_files", ()))
    print(f"wrote {res.report} ({len(res.figures)} figure files, {len(res.tables)} table files) in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0
