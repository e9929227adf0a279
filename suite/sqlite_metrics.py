"""Bulk metric and tag writes straight into MLflow's SQLite tables: the embedded store's fast path.

:class:`suite.tracking.RunGroup` writes through it when the store is ``sqlite:///PATH`` with the schema it
knows; everything else (a server, another schema) goes through MLflow's ``log_batch``. Measured against
``log_batch`` by ``benchmarks/bench_tracking.py --modes real,logbatch`` (docs/performance.md); a test checks that
it writes exactly the rows ``log_batch`` writes on the installed MLflow.
"""
from __future__ import annotations

import math
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from suite.errors import TrackingError

__all__ = ["SqliteMetricWriter", "sqlite_path"]


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URI; None for any other URI."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


class SqliteMetricWriter:
    """Bulk metric (and plain tag) writes straight into an MLflow SQLite store.

    MLflow's own ``log_batch`` goes through the SQLAlchemy ORM at ~0.2 ms per point (one object per point
    plus a unit-of-work flush), which made the end-of-checkpoint flush of every episode's points ~10 % of a
    16-seed CartPole run, and every call commits (an fsync, ~20 ms here). This writes the same rows MLflow
    writes (``metrics``: NaN stored as value 0 with ``is_nan``, ±inf as ±max float; ``latest_metrics``: the
    point with the largest (step, timestamp, value) per key; ``tags``: key and value, the value cut at 8000
    characters as MLflow cuts it) with ``executemany``, in one transaction for all runs of a flush, ~100x
    cheaper. ``INSERT OR IGNORE`` on the metrics primary key skips a re-sent point exactly as MLflow's
    duplicate check does. Tags named ``mlflow.*`` (some have side effects in MLflow) are never written here.

    Used only when the tables have exactly the columns and primary keys below (checked once per store); any
    other schema (a future MLflow migration) makes :class:`suite.tracking.RunGroup` use ``log_batch``
    instead.
    """

    _COLUMNS = {"metrics": ({"key", "value", "timestamp", "run_uuid", "step", "is_nan"},
                            {"key", "timestamp", "step", "run_uuid", "value", "is_nan"}),
                "latest_metrics": ({"key", "value", "timestamp", "step", "is_nan", "run_uuid"}, {"key", "run_uuid"}),
                "tags": ({"key", "value", "run_uuid"}, {"key", "run_uuid"})}
    _TAG = ("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?) "
            "ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value")
    _MAX_TAG_VALUE = 8000
    _INSERT = "INSERT OR IGNORE INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)"
    _LATEST = ("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp, "
               "step = excluded.step, is_nan = excluded.is_nan "
               "WHERE (excluded.step, excluded.timestamp, excluded.value) "
               "> (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)")

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_uri(cls, uri: str | None) -> "SqliteMetricWriter | None":
        """A writer for ``sqlite:///PATH`` stores whose schema matches; ``None`` otherwise."""
        db = sqlite_path(uri) if uri else None
        if db is None or "?" in str(db) or not db.exists():
            return None
        try:
            with closing(sqlite3.connect(db, timeout=30)) as conn:
                for table, (columns, pk) in cls._COLUMNS.items():
                    info = conn.execute(f"PRAGMA table_info({table})").fetchall()
                    if {row[1] for row in info} != columns or {row[1] for row in info if row[5]} != pk:
                        return None
        except sqlite3.Error:
            return None
        return cls(db)

    @staticmethod
    def handles_tag(key: str) -> bool:
        return not key.startswith("mlflow.")

    def write(self, batches: Mapping[str, Sequence[tuple[str, float, int, int]]],
              tags: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """Write ``{run_id: [(key, value, timestamp_ms, step), ...]}`` and ``{run_id: {tag: value}}`` (tags
        for which :meth:`handles_tag` is true) in one transaction."""
        tags = tags or {}
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")  # take the write lock up front: no upgrade deadlock with readers
            try:
                for run_id in {**batches, **tags}:
                    row = conn.execute("SELECT lifecycle_stage FROM runs WHERE run_uuid = ?", (run_id,)).fetchone()
                    if row is None or row[0] != "active":
                        raise TrackingError(f"run {run_id} is {'deleted' if row else 'missing'} in {self.path}")
                    conn.executemany(self._TAG, [(k, str(v)[:self._MAX_TAG_VALUE], run_id)
                                                 for k, v in (tags.get(run_id) or {}).items()])
                    latest: dict[str, tuple[str, float, int, int, int]] = {}
                    conn.executemany(self._INSERT, self._rows(run_id, batches.get(run_id) or [], latest))
                    conn.executemany(self._LATEST, [(*item, run_id) for item in latest.values()])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise


    @staticmethod
    def _rows(run_id: str, points: Sequence[tuple[str, float, int, int]],
              latest: dict[str, tuple[str, float, int, int, int]]) -> Iterator[tuple[str, float, int, str, int, int]]:
        """``metrics`` rows, one at a time (no list of them: fewer live objects, fewer garbage-collector
        passes), noting in ``latest`` each key's largest (step, timestamp, value)."""
        isfinite = math.isfinite
        for k, value, ts, st in points:
            v, nan = (value, 0) if isfinite(value) else _sanitize(value)
            best = latest.get(k)
            # (st, ts, v) > (best step, timestamp, value), without building tuples (this runs once per point)
            if best is None or st > best[3] or (st == best[3] and (ts > best[2] or (ts == best[2] and v > best[1]))):
                latest[k] = (k, v, ts, st, nan)
            yield k, v, ts, run_id, st, nan


def _sanitize(value: float) -> tuple[float, int]:
    """(stored value, is_nan) as MLflow's SQL store stores a metric value."""
    if math.isnan(value):
        return 0.0, 1
    if math.isinf(value):
        return (1.7976931348623157e308 if value > 0 else -1.7976931348623157e308), 0
    return value, 0
