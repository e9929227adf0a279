"""Read an experiment from the tracking store as per-run data (:mod:`analysis.run_table`), with one-line errors.

``make results`` exports each reference part with it (``docs/results/runs/<part>.csv.gz``) and ``targetbench
reproduce`` builds its table from it, so a table computed from the store and one computed from the shipped files
are the same computation.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from suite.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_run_table", "export_run_table"]


def load_run_table(uri: str, experiment: str, results: Path,
                   sweeps: Mapping[tuple[str, str], tuple[str, str]] | None = None) -> "pd.DataFrame":
    """The per-run table of ``experiment`` in the store at ``uri`` (through the cache under ``results/cache``),
    with the training-return summaries and EauDeQN's sparsity the derived files need; ``sweeps`` as in
    :func:`analysis.run_table.from_frames`.

    Raises:
        UsageError: the experiment is not in the store.
        TrackingError: the store cannot be read.
        WriteError: the cache cannot be written (disk full or the like).
    """
    from analysis import record_names as names
    from analysis.run_table import from_frames
    from analysis.runs import DEFAULT_METRICS, load_experiment
    from suite.errors import WRITE_ERRNOS, TrackingError, WriteError

    try:
        runs, metrics = load_experiment(uri, experiment, cache_dir=results / "cache",
                                        metrics=DEFAULT_METRICS + (names.TARGET_SPARSITY,))
    except ValueError as exc:
        raise UsageError(f"{str(exc).splitlines()[0]}; run without --no-run first") from None
    except Exception as exc:  # unreadable store, or the cache under results/ could not be written
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
            raise WriteError(f"cannot write the cache under {results / 'cache'}: {exc.strerror}") from exc
        msg = (str(exc).strip().splitlines() or [""])[0][:200]
        raise TrackingError(f"tracking store {uri} cannot be read: {type(exc).__name__}: {msg}") from None
    return from_frames(runs, metrics, experiment, sweeps=sweeps)


def export_run_table(uri: str, experiment: str, results: Path, path: Path,
                     sweeps: Mapping[tuple[str, str], tuple[str, str]] | None = None) -> "pd.DataFrame":
    """:func:`load_run_table` written to ``path`` (gzip CSV, the same bytes for the same runs); returns it."""
    from analysis.run_table import write_run_table

    table = load_run_table(uri, experiment, results, sweeps)
    write_run_table(table, path)
    return table
