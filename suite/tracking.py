"""MLflow run records: one run per seed, params and tags at start, metrics buffered and written with
``log_batch`` (a single ``log_metric`` call costs ~20 ms on the SQLite store), artifacts at the end.

Exactly-once metrics: the trainer flushes only right after a checkpoint is written, and the pending points
(with their timestamps) are part of that checkpoint. A resumed trial re-sends them unchanged; MLflow's SQL
store ignores a point whose (key, step, timestamp, value) is already stored, so nothing is duplicated and
nothing is lost.
"""
from __future__ import annotations

import fcntl
import logging
import os
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from suite.errors import TrackingError

__all__ = ["default_tracking_uri", "ensure_store", "open_experiment", "RunGroup", "flatten"]

DEFAULT_EXPERIMENT = "targetbench"
_MAX_PARAM_LEN = 6000
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000



def _import_mlflow() -> Any:
    """Import MLflow and quieten it: it logs schema migrations at INFO, and users should see only our lines.
    (MLflow configures its logger when imported, so the level is set afterwards.)"""
    # MLflow's REST client retries a dead server with exponential backoff for minutes by default; the trainer
    # has its own retry and keeps unsent points on disk, so fail faster (a user's own setting wins).
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    import mlflow

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


def default_tracking_uri(results_dir: Path) -> str:
    """The embedded store: ``sqlite:///<results>/mlflow.db`` (relative paths stay relative to the cwd)."""
    return f"sqlite:///{results_dir.as_posix()}/mlflow.db"


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_store(uri: str) -> None:
    """Make sure the store exists and answers, before any worker opens it.

    SQLite: create the folder and run MLflow's schema migrations once under a file lock (concurrent first
    opens race on migrations). HTTP: one request to the server's health endpoint.
    """
    mlflow = _import_mlflow()
    db = _sqlite_path(uri)
    if db is not None:
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
            if db.exists() and not os.access(db, os.W_OK):
                raise PermissionError(f"{db} is read-only")
            with _file_lock(db.with_name(db.name + ".lock")):
                mlflow.MlflowClient(uri).search_experiments(max_results=1)
        except TrackingError:
            raise
        except Exception as exc:
            raise TrackingError(f"tracking store {uri} cannot be opened or written: {_one_line(exc)}") from None
        return
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as resp:
                resp.read()
        except (urllib.error.URLError, OSError) as exc:
            raise TrackingError(f"tracking server {uri} is unreachable: {_one_line(exc)}") from None
        return
    if uri.startswith("file:") or "://" not in uri:
        return
    raise TrackingError(f"tracking URI {uri!r} is not supported; allowed: sqlite:///PATH, http(s)://HOST:PORT, "
                        "file:PATH")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def open_experiment(uri: str, name: str, artifact_root: Path | None) -> tuple[Any, str]:
    """(client, experiment_id) for experiment ``name``, created if missing with artifacts under
    ``artifact_root`` (for the embedded store) or the server's default."""
    mlflow = _import_mlflow()
    client = mlflow.MlflowClient(uri)
    try:
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return client, exp.experiment_id
        location = artifact_root.resolve().as_uri() if artifact_root is not None else None
        try:
            return client, client.create_experiment(name, artifact_location=location)
        except mlflow.exceptions.MlflowException:
            exp = client.get_experiment_by_name(name)  # another worker created it first
            if exp is None:
                raise
            return client, exp.experiment_id
    except Exception as exc:
        raise TrackingError(f"tracking store {uri} failed to open experiment {name!r}: {_one_line(exc)}") from None


def flatten(prefix: str, values: Mapping[str, Any]) -> dict[str, str]:
    """``{"a": {"b": 1}}`` → ``{"prefix.a.b": "1"}``; sequences are joined with commas."""
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            out.update(flatten(name, value))
        elif isinstance(value, (list, tuple)):
            out[name] = ",".join(str(v) for v in value)
        else:
            out[name] = str(value)
    return out


class RunGroup:
    """The R MLflow runs of one batched trial group (one per seed), with buffered metrics."""

    def __init__(self, client: Any, experiment_id: str, run_names: Sequence[str], tags: Sequence[Mapping[str, str]],
                 params: Sequence[Mapping[str, str]], run_ids: Sequence[str] | None = None) -> None:
        from mlflow.entities import Param

        self.client = client
        self.pending: list[list[tuple[str, float, int, int]]] = [[] for _ in run_names]
        try:
            if run_ids is not None:  # resume: continue the same runs
                self.run_ids = list(run_ids)
                for rid in self.run_ids:
                    client.update_run(rid, status="RUNNING")
                return
            self.run_ids = []
            for name, run_tags, run_params in zip(run_names, tags, params):
                run = client.create_run(experiment_id, run_name=name,
                                        tags={**run_tags, "mlflow.runName": name})
                rid = run.info.run_id
                items = [Param(k, str(v)[:_MAX_PARAM_LEN]) for k, v in run_params.items()]
                for i in range(0, len(items), _PARAMS_PER_BATCH):
                    client.log_batch(rid, params=items[i:i + _PARAMS_PER_BATCH])
                self.run_ids.append(rid)
        except TrackingError:
            raise
        except Exception as exc:
            raise TrackingError(f"could not create runs in the tracking store: {_one_line(exc)}") from None

    def log(self, replica: int, step: int, metrics: Mapping[str, float]) -> None:
        """Buffer metrics of one replica at env step ``step`` (written at the next ``flush``)."""
        now = int(time.time() * 1000)
        self.pending[replica].extend((k, float(v), now, int(step)) for k, v in metrics.items())

    def log_all(self, step: int, metrics: Mapping[str, Sequence[float]]) -> None:
        """Buffer per-replica metrics ``{name: [v_0, ..., v_{R-1}]}`` at env step ``step``."""
        now = int(time.time() * 1000)
        for key, values in metrics.items():
            for replica, v in enumerate(values):
                self.pending[replica].append((key, float(v), now, int(step)))

    def flush(self) -> None:
        """Write every buffered point with ``log_batch``; the buffer is cleared only after success."""
        from mlflow.entities import Metric

        for rid, points in zip(self.run_ids, self.pending):
            for i in range(0, len(points), _METRICS_PER_BATCH):
                chunk = [Metric(k, v, ts, st) for k, v, ts, st in points[i:i + _METRICS_PER_BATCH]]
                self._retry(lambda: self.client.log_batch(rid, metrics=chunk))
        for points in self.pending:
            points.clear()

    def set_tags(self, replica: int, tags: Mapping[str, str]) -> None:
        for k, v in tags.items():
            self._retry(lambda: self.client.set_tag(self.run_ids[replica], k, str(v)))

    def log_artifact(self, replica: int, path: Path, artifact_path: str | None = None) -> None:
        self._retry(lambda: self.client.log_artifact(self.run_ids[replica], str(path), artifact_path))

    def finish(self, replica: int, status: str = "FINISHED") -> None:
        self._retry(lambda: self.client.set_terminated(self.run_ids[replica], status=status))

    @staticmethod
    def _retry(call: Any, attempts: int = 5) -> Any:
        # SQLite under many writers can answer "database is locked"; back off instead of failing the run.
        for i in range(attempts):
            try:
                return call()
            except Exception as exc:
                if i == attempts - 1:
                    raise TrackingError(f"tracking store write failed after {attempts} tries: {_one_line(exc)}") from None
                time.sleep(0.2 * 2 ** i)
