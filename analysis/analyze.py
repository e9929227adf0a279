"""Analyse one experiment: read it back from the tracking store and write figures, tables and report.md.

The library behind ``targetbench analyze`` (its command line, flags and exit codes live in :mod:`suite.analyze`;
the analysis package never imports ``suite``). :func:`run_analysis` takes plain arguments and raises the
exceptions below, or :class:`analysis.stats.RaggedScoresError` when ``engine="rliable"`` gets runs rliable cannot
take; each carries a one-line message.
"""
from __future__ import annotations

import errno
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    from analysis.report import ReportResult
    from analysis.section import FigureOptions

__all__ = ["run_analysis", "load_checked", "AnalysisError", "NothingToAnalyse", "StoreUnreadable", "OutputNotWritten"]

# errno values of a failed write the user can fix (disk full, quota, file too large, read-only mount): an OSError
# with one of them while loading is the cache's, not the store's (the same list as suite.errors.WRITE_ERRNOS)
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


class AnalysisError(Exception):
    """The analysis could not be done; the message is one line."""


class NothingToAnalyse(AnalysisError):
    """The experiment is not in the store, or has no runs."""


class StoreUnreadable(AnalysisError):
    """The tracking store cannot be read (unreachable server, unreadable file)."""

    def __init__(self, uri: str, exc: BaseException) -> None:
        msg = (str(exc).strip().splitlines() or [""])[0][:200]
        super().__init__(f"tracking store {uri} cannot be read: {type(exc).__name__}: {msg}")
        self.uri = uri


class OutputNotWritten(AnalysisError):
    """Writing the cache (``what="cache"``) or the report (``what="report"``) failed; ``__cause__`` is the OSError."""

    def __init__(self, what: str, folder: Path, exc: OSError) -> None:
        place = "the cache" if what == "cache" else "the report"
        super().__init__(f"cannot write {place} under {folder}: {exc.strerror or exc}")
        self.what, self.folder = what, folder


def load_checked(uri: str, experiment: str, results: Path, *, cache: bool = True, refresh: bool = False):
    """``(runs, metrics)`` of ``experiment`` (:func:`analysis.runs.load_experiment`, through the cache under
    ``results/cache`` unless ``cache`` is false), its failures as the one-line errors below.

    Raises:
        NothingToAnalyse: the experiment is not in the store or has no runs.
        StoreUnreadable: the store cannot be read.
        OutputNotWritten: the cache could not be written.
    """
    from analysis.runs import load_experiment

    try:
        runs, metrics = load_experiment(uri, experiment, cache_dir=(results / "cache") if cache else None,
                                        refresh=refresh)
    except ValueError as exc:  # the experiment is not there
        raise NothingToAnalyse(str(exc).splitlines()[0]) from None
    except OSError as exc:
        if exc.errno not in _WRITE_ERRNOS:
            raise StoreUnreadable(uri, exc) from None
        # Writing the cache failed (disk full): not the store's fault.
        raise OutputNotWritten("cache", results / "cache", exc) from exc
    except Exception as exc:  # unreachable server, unreadable store
        raise StoreUnreadable(uri, exc) from None
    if runs.empty:
        raise NothingToAnalyse(f"experiment {experiment!r} in {uri} has no runs")
    return runs, metrics


def run_analysis(*, uri: str, experiment: str, out: Path, results: Path, reps: int, seed: int = 0,
                 baseline: str = "dqn", pairs: Iterable[tuple[str, str]] = (), refresh: bool = False,
                 cache: bool = True, title: str | None = None, make_figures: bool = True,
                 engine: str = "fast", reference_files: Sequence[Path] = (),
                 figure_options: FigureOptions | None = None) -> ReportResult:
    """Load ``experiment`` from the store at ``uri`` (through the cache under ``results/cache`` unless ``cache`` is
    false) and build the report under ``out``; returns the :class:`analysis.report.ReportResult`.

    Raises:
        NothingToAnalyse: the experiment is not in the store or has no runs.
        StoreUnreadable: the store cannot be read.
        OutputNotWritten: the cache or the report could not be written (disk full or the like).
        analysis.stats.RaggedScoresError: ``engine="rliable"`` on runs without a runs × tasks matrix.

    ``reference_files``: more reference-score tables (environment families that ship their own).
    ``figure_options``: style, agent facts, curve layout and smoothing (:class:`analysis.section.FigureOptions`).
    """
    from analysis.normalization import reference_scores
    from analysis.report import build_report

    runs, metrics = load_checked(uri, experiment, results, cache=cache, refresh=refresh)
    try:
        refs = reference_scores(extra=reference_files) if reference_files else None
        return build_report(runs, metrics, out, reps=reps, seed=seed, pairs=pairs, baseline=baseline,
                            title=title or f"TargetBench report: experiment {experiment}", make_figures=make_figures,
                            engine=engine, refs=refs, figure_options=figure_options)
    except OSError as exc:  # disk full or the like: the user's to fix, named in one line
        raise OutputNotWritten("report", out, exc) from exc
