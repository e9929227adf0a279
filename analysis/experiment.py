"""Analyse one experiment: read it back from the tracking store and write figures, tables and report.md.

The library behind ``targetbench analyze`` (its command line, flags and exit codes live in :mod:`suite.analyze`;
the analysis package never imports ``suite``). :func:`run_analysis` takes plain arguments and raises the
exceptions below, :class:`analysis.protocol_check.MixedProtocolsError` when runs of different evaluation protocols
would share a comparison, or :class:`analysis.stats.RaggedScoresError` when ``engine="rliable"`` gets runs rliable
cannot take; each carries a one-line message.

With reference folders (``--reference docs/results``: their ``runs/*.csv.gz``, :mod:`analysis.run_table`), the
stored reference runs of the experiment's protocol stand next to its runs in one report, labelled
``agent/ref`` (``agent/ref-<variant>`` for a variant other than the default), and the probability of improvement
compares with the reference's baseline runs (``dqn/ref``).
"""
from __future__ import annotations

import errno
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    import pandas as pd

    from analysis.report import ReportResult
    from analysis.section import FigureOptions

__all__ = ["run_analysis", "load_checked", "AnalysisError", "NothingToAnalyse", "StoreUnreadable", "OutputNotWritten",
           "load_reference", "REFERENCE_VARIANT"]

#: the variant reference runs are labelled with (``agent/ref``)
REFERENCE_VARIANT = "ref"

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


def load_reference(folders: Sequence[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(runs, metrics)`` of every per-run file under ``<folder>/runs/`` of each folder, reference-labelled:
    ``variant`` becomes ``ref`` (``ref-<variant>`` for other variants) and ``reference`` is true.

    Raises:
        NothingToAnalyse: a folder holds no per-run file (or one that is not per-run data).
    """
    import pandas as pd

    from analysis import record_names as names
    from analysis.run_table import read_reference, to_frames

    runs, metrics = [], []
    for folder in folders:
        try:
            tables = read_reference(folder)
        except ValueError as exc:
            raise NothingToAnalyse(str(exc)) from None
        for table in tables.values():
            r, m = to_frames(table)
            runs.append(r)
            metrics.append(m)
    runs_all = pd.concat(runs, ignore_index=True).drop_duplicates("run_id")
    variant = runs_all["variant"].fillna(names.DEFAULT_VARIANT).astype(str)
    runs_all["variant"] = variant.where(variant == names.DEFAULT_VARIANT, REFERENCE_VARIANT + "-" + variant)
    runs_all.loc[variant == names.DEFAULT_VARIANT, "variant"] = REFERENCE_VARIANT
    runs_all["reference"] = True
    metrics_all = pd.concat(metrics, ignore_index=True)
    metrics_all["variant"] = metrics_all["run_id"].map(runs_all.set_index("run_id")["variant"])
    return runs_all, metrics_all


def _with_reference(runs: pd.DataFrame, metrics: pd.DataFrame, experiment: str, folders: Sequence[Path],
                    allow_mixed: bool, baseline: str) -> tuple[pd.DataFrame, pd.DataFrame, list[str], str]:
    """The experiment's runs with the reference runs of its protocol, the report's notes and the baseline."""
    import pandas as pd

    from analysis.protocol_check import check_protocols, select_reference

    if not folders:
        return runs, metrics, check_protocols(runs, allow_mixed=allow_mixed), baseline
    ref_runs, ref_metrics = load_reference(folders)
    own = runs.assign(experiment=experiment, reference=False)
    chosen, notes = select_reference(own, ref_runs, allow_mixed=allow_mixed, own_name=f"experiment {experiment}",
                                     ref_name="reference")
    ref_label = f"{baseline}/{REFERENCE_VARIANT}"
    has_base = bool(((chosen["agent"] == baseline) & (chosen["variant"] == REFERENCE_VARIANT)).any())
    where = ", ".join(str(f) for f in folders)
    notes = [f"Reference runs from {where}: {len(chosen)} runs of the same evaluation protocol "
             f"({chosen['agent'].nunique()} agents, {chosen['env'].nunique()} environments), labelled "
             f"`agent/{REFERENCE_VARIANT}`; they were not rerun."
             + (f" The probability of improvement compares with the reference's `{ref_label}`." if has_base else
                f" The reference has no `{baseline}` runs of this protocol.")] + notes
    merged = pd.concat([own, chosen], ignore_index=True)
    merged_metrics = pd.concat([metrics, ref_metrics[ref_metrics["run_id"].isin(chosen["run_id"])]],
                               ignore_index=True)
    return merged, merged_metrics, notes, ref_label if has_base else baseline


def load_checked(uri: str, experiment: str, results: Path, *, cache: bool = True,
                 refresh: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
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
                 engine: str = "fast", reference_files: Sequence[Path] = (), reference: Sequence[Path] = (),
                 allow_mixed_protocols: bool = False, figure_options: FigureOptions | None = None) -> ReportResult:
    """Load ``experiment`` from the store at ``uri`` (through the cache under ``results/cache`` unless ``cache`` is
    false) and build the report under ``out``; returns the :class:`analysis.report.ReportResult`.

    Raises:
        NothingToAnalyse: the experiment is not in the store or has no runs.
        StoreUnreadable: the store cannot be read.
        OutputNotWritten: the cache or the report could not be written (disk full or the like).
        analysis.stats.RaggedScoresError: ``engine="rliable"`` on runs without a runs × tasks matrix.

    ``reference_files``: more reference-score tables (environment families that ship their own).
    ``reference``: results folders whose per-run data of the same protocol joins the report (module docstring).
    ``allow_mixed_protocols``: put runs of different protocols in one comparison (the report says so) instead of
    raising :class:`analysis.protocol_check.MixedProtocolsError`.
    ``figure_options``: style, agent facts, curve layout and smoothing (:class:`analysis.section.FigureOptions`).
    """
    from analysis.normalization import reference_scores
    from analysis.report import build_report

    runs, metrics = load_checked(uri, experiment, results, cache=cache, refresh=refresh)
    runs, metrics, notes, baseline = _with_reference(runs, metrics, experiment, reference, allow_mixed_protocols,
                                                     baseline)
    try:
        refs = reference_scores(extra=reference_files) if reference_files else None
        return build_report(runs, metrics, out, reps=reps, seed=seed, pairs=pairs, baseline=baseline,
                            title=title or f"TargetBench report: experiment {experiment}", make_figures=make_figures,
                            engine=engine, refs=refs, notes=notes, figure_options=figure_options)
    except OSError as exc:  # disk full or the like: the user's to fix, named in one line
        raise OutputNotWritten("report", out, exc) from exc
