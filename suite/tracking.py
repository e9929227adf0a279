"""MLflow run records: one run per seed, params and tags at start, metrics buffered and written in bulk,
artifacts at the end.

Writes are batched because single calls are slow (one ``log_metric`` costs ~20 ms on the SQLite store, and
MLflow's ``log_batch`` ~0.2 ms per point through its ORM): on the embedded SQLite store metric points go in
with one ``executemany`` transaction per flush (:class:`suite.sqlite_metrics.SqliteMetricWriter`, the same rows
MLflow writes);
on a server, with ``log_batch`` in chunks of 1000. The trainer flushes in a background thread, so neither a
slow server nor one that is down (with its retries) holds up training.

Exactly-once metrics: the trainer flushes only right after a checkpoint is written, and the pending points
(with their timestamps) are part of that checkpoint; points leave the buffer only once their write has
succeeded. A resumed trial, or ``targetbench push``, re-sends them unchanged; the store ignores a point whose
(key, step, timestamp, value) is already stored (MLflow's SQL store checks its primary key; the SQLite
writer uses ``INSERT OR IGNORE`` on the same key), so nothing is duplicated and nothing is lost.
"""
from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from analysis import record_names as names
from suite.errors import TrackingError
from suite.sqlite_metrics import SqliteMetricWriter, sqlite_path
from suite.store_retry import one_line as _one_line
from suite.store_retry import retry_store

__all__ = ["default_tracking_uri", "import_in_background", "check_store", "ensure_store", "open_experiment", "RunGroup", "flatten", "public_uri",
           "missing_runs"]

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

    # urllib3 warns on stderr at every retry of a dead server; our own lines say what happens
    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


def import_in_background() -> threading.Thread:
    """Start importing MLflow (over a second) in a thread, so that it overlaps what the caller does next (torch's
    import, building the trial); a later import of MLflow waits for it (Python's import lock). Not a daemon: a
    command that ends early (bad input) waits for the import instead of tearing it down half-done."""
    thread = threading.Thread(target=_import_mlflow, name="targetbench-import-mlflow")
    thread.start()
    return thread


def default_tracking_uri(results_dir: Path) -> str:
    """The embedded store: ``sqlite:///<results>/mlflow.db`` (relative paths stay relative to the cwd)."""
    return f"sqlite:///{results_dir.as_posix()}/mlflow.db"


def public_uri(uri: str) -> str:
    """``uri`` as it may be written to disk: without ``user:password@`` (credentials come from the
    environment, e.g. ``MLFLOW_TRACKING_USERNAME``), and a relative SQLite path made absolute so that
    ``targetbench push`` finds the store from any folder."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + Path(uri[len("sqlite:///"):]).resolve().as_posix()
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _dispose_engines() -> None:
    """Close MLflow's cached SQLAlchemy engines (pooled connections to the side file being renamed)."""
    try:
        from mlflow.store.db import utils as db_utils  # noqa: PLC0415

        for engine in getattr(db_utils, "_engine_cache", {}).values():  # absent in some MLflow versions
            engine.dispose()
    except Exception:  # only an optimisation: the rename works with open connections on POSIX
        pass


def ensure_store(uri: str) -> None:
    """Make sure the store exists and answers, before any worker opens it.

    SQLite: create the folder and run MLflow's schema migrations once under a file lock (concurrent first
    opens race on migrations). HTTP: one request to the server's health endpoint.
    """
    mlflow = _import_mlflow()
    db = sqlite_path(uri)
    if db is not None:
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
            if db.exists() and not os.access(db, os.W_OK):
                raise PermissionError(f"{db} is read-only")
            with _file_lock(db.with_name(db.name + ".lock")):
                if not db.exists():
                    # MLflow's schema migrations are not transactional on SQLite: a kill during them would leave
                    # a store every later run refuses. Build the schema in a side file, then rename it in place.
                    init = db.with_name(db.name + ".init")
                    for stale in (init, init.with_name(init.name + "-journal")):
                        stale.unlink(missing_ok=True)
                    if not _copy_schema_template(mlflow, init):
                        mlflow.MlflowClient(f"sqlite:///{init.as_posix()}").search_experiments(max_results=1)
                        _dispose_engines()
                    os.replace(init, db)
                mlflow.MlflowClient(uri).search_experiments(max_results=1)
        except TrackingError:
            raise
        except Exception as exc:
            raise TrackingError(f"tracking store {uri} cannot be opened or written: {_one_line(exc)}") from None
        return
    check_store(uri)


def check_store(uri: str) -> None:
    """The checks of :func:`ensure_store` that need no MLflow (milliseconds): a server answers its health
    endpoint, the URI has a supported scheme. Raises :class:`TrackingError`."""
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as resp:
                resp.read()
        except (urllib.error.URLError, OSError) as exc:
            raise TrackingError(f"tracking server {uri} is unreachable: {_one_line(exc)}") from None
        return
    db = sqlite_path(uri)
    if db is not None:
        if db.exists() and not os.access(db, os.W_OK):
            raise TrackingError(f"tracking store {uri} cannot be opened or written: PermissionError: {db} is "
                                "read-only")
        return
    if uri.startswith("file:") or "://" not in uri:
        return
    raise TrackingError(f"tracking URI {uri!r} is not supported; allowed: sqlite:///PATH, http(s)://HOST:PORT, "
                        "file:PATH")


def schema_template_dir() -> Path:
    """Where migrated empty stores are kept: ``$TARGETBENCH_CACHE``, else ``$XDG_CACHE_HOME/targetbench``, else
    ``~/.cache/targetbench``."""
    if os.environ.get("TARGETBENCH_CACHE"):
        return Path(os.environ["TARGETBENCH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "targetbench"


def _copy_schema_template(mlflow: Any, dest: Path) -> bool:
    """Write an empty, fully migrated SQLite store to ``dest`` by copying a template built once per machine and
    MLflow version (MLflow's migrations take ~1.5 s per new store; a copy takes milliseconds). False when no
    template can be made (unwritable cache): the caller then migrates ``dest`` itself.

    The only thing MLflow writes at creation that depends on where it runs is the Default experiment's artifact
    location (``./mlruns/0`` resolved against the working directory); it is set here as MLflow would set it."""
    folder = schema_template_dir()
    template = folder / f"mlflow-{mlflow.__version__}-sqlite.db"
    try:
        if not template.exists():
            folder.mkdir(parents=True, exist_ok=True)
            side = folder / f"{template.name}.{os.getpid()}.{threading.get_ident()}.init"
            side.unlink(missing_ok=True)
            mlflow.MlflowClient(f"sqlite:///{side.as_posix()}").search_experiments(max_results=1)
            _dispose_engines()
            os.replace(side, template)  # atomic: concurrent builders each publish a complete file
        dest.write_bytes(template.read_bytes())
    except OSError:
        dest.unlink(missing_ok=True)
        return False
    with closing(sqlite3.connect(dest)) as con, con:
        con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                    (str(Path.cwd() / "mlruns" / "0"),))
    return True


def open_experiment(uri: str, name: str, artifact_root: Path | None) -> tuple[Any, str]:
    """(client, experiment_id) for experiment ``name``, created if missing with artifacts under
    ``artifact_root`` (for the embedded store) or the server's default (an http(s) server: ``artifact_root`` is
    ignored)."""
    mlflow = _import_mlflow()
    client = mlflow.MlflowClient(uri)
    try:
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return client, exp.experiment_id
        # A server keeps the artifacts itself (its artifact store): a path of this machine would be unreachable
        # from the other nodes of a cluster, which write the runs' artifacts and checkpoints there too.
        remote = uri.startswith(("http://", "https://", "databricks"))
        location = artifact_root.resolve().as_uri() if artifact_root is not None and not remote else None
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


def missing_runs(client: Any, run_ids: Sequence[str]) -> list[str]:
    """The runs of ``run_ids`` that the store does not have as active runs (absent or deleted). Raises
    :class:`TrackingError` when the store cannot be read."""
    mlflow = _import_mlflow()
    gone = []
    for rid in run_ids:
        try:
            if client.get_run(rid).info.lifecycle_stage != "active":
                gone.append(rid)
        except mlflow.exceptions.MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise TrackingError(f"tracking store cannot be read: {_one_line(exc)}") from None
            gone.append(rid)
        except Exception as exc:
            raise TrackingError(f"tracking store cannot be read: {_one_line(exc)}") from None
    return gone


class RunGroup:
    """The R MLflow runs of one batched trial group (one per seed), with buffered metrics and tags.

    ``pending`` holds every metric point not yet known to be stored, per replica, in logging order;
    ``pending_tags`` the tags logged with :meth:`tag` and not yet stored. Both go into checkpoints. With
    ``background = True``, :meth:`flush` writes in a thread and returns at once (the training loop does not
    wait for the store, nor for its retries while it is down); points leave ``pending`` only when the next
    :meth:`flush` sees that their write succeeded.
    """

    def __init__(self, client: Any, experiment_id: str, run_names: Sequence[str], tags: Sequence[Mapping[str, str]],
                 params: Sequence[Mapping[str, str]], run_ids: Sequence[str] | None = None,
                 start_time: int | None = None) -> None:
        self._buffers(len(run_names))
        self.create(client, experiment_id, run_names, tags, params, run_ids, start_time)

    @classmethod
    def deferred(cls, replicas: int) -> "RunGroup":
        """A group that buffers points and tags before its runs exist (:meth:`create` makes them; nothing is
        flushed before): training starts while the store is still being opened."""
        group = cls.__new__(cls)
        group._buffers(replicas)
        return group

    def _buffers(self, replicas: int) -> None:
        self.client: Any = None
        self.run_ids: list[str] = []
        self.pending: list[list[tuple[str, float, int, int]]] = [[] for _ in range(replicas)]
        self.pending_tags: list[dict[str, str]] = [{} for _ in range(replicas)]
        self.background = False
        self._writer: SqliteMetricWriter | None = None
        self._thread: threading.Thread | None = None
        self._sent: tuple[list[int], list[dict[str, str]]] | None = None  # what the running write covers
        self._error: TrackingError | None = None

    def create(self, client: Any, experiment_id: str, run_names: Sequence[str], tags: Sequence[Mapping[str, str]],
               params: Sequence[Mapping[str, str]], run_ids: Sequence[str] | None = None,
               start_time: int | None = None) -> None:
        """Create the runs (or continue ``run_ids``) with their tags and params; ``start_time`` (ms since the
        epoch) is the runs' start (default: now)."""
        from mlflow.entities import Param

        self.client = client
        self._writer = SqliteMetricWriter.for_uri(getattr(client, "tracking_uri", None))
        try:
            if run_ids is not None:  # resume: continue the same runs
                self.run_ids = list(run_ids)
                for rid in self.run_ids:
                    client.update_run(rid, status="RUNNING")
                return
            self.run_ids = []
            for name, run_tags, run_params in zip(run_names, tags, params):
                run = client.create_run(experiment_id, run_name=name, start_time=start_time,
                                        tags={**run_tags, names.MLFLOW_RUN_NAME: name})
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
        now, step, append = int(time.time() * 1000), int(step), self.pending[replica].append
        for k, v in metrics.items():  # a plain loop: this runs for every episode of every replica
            append((k, float(v), now, step))

    def log_all(self, step: int, metrics: Mapping[str, Sequence[float]]) -> None:
        """Buffer per-replica metrics ``{name: [v_0, ..., v_{R-1}]}`` at env step ``step``."""
        now = int(time.time() * 1000)
        for key, values in metrics.items():
            for replica, v in enumerate(values):
                self.pending[replica].append((key, float(v), now, int(step)))

    def tag(self, replica: int, tags: Mapping[str, str]) -> None:
        """Buffer tags of one replica (written with the next ``flush``): a store that is down mid-run must not
        fail the trial for a tag."""
        self.pending_tags[replica].update({k: str(v) for k, v in tags.items()})

    @property
    def pending_points(self) -> int:
        return sum(len(p) for p in self.pending)

    @staticmethod
    def pack(pending: Sequence[Sequence[tuple[str, float, int, int]]]) -> list[dict[str, Any]]:
        """``pending`` as checkpoints store it: per replica, columns (the distinct keys, and tensors of each
        point's key index, value (float64: exact, NaN and ±inf included), timestamp and step). One tuple, or one
        list, per point in the checkpoint cost ~0.2 s of checkpoint writing and extra garbage-collector passes
        in a 16-seed run."""
        import torch

        out = []
        for points in pending:
            index: dict[str, int] = {}
            codes = [index.setdefault(p[0], len(index)) for p in points]
            out.append({"keys": list(index), "key": torch.tensor(codes, dtype=torch.int32),
                        "value": torch.tensor([p[1] for p in points], dtype=torch.float64),
                        "timestamp": torch.tensor([p[2] for p in points], dtype=torch.int64),
                        "step": torch.tensor([p[3] for p in points], dtype=torch.int64)})
        return out

    @staticmethod
    def unpack(stored: Sequence[Mapping[str, Any]]) -> list[list[tuple[str, float, int, int]]]:
        """The inverse of :meth:`pack`."""
        out = []
        for points in stored:
            names = points["keys"]
            out.append(list(zip([names[i] for i in points["key"].tolist()], points["value"].tolist(),
                                points["timestamp"].tolist(), points["step"].tolist())))
        return out

    @staticmethod
    def count(stored: Sequence[Mapping[str, Any]]) -> list[int]:
        """Points per replica of a checkpoint's ``pending``."""
        return [int(p["step"].numel()) for p in stored]

    def flush(self) -> None:
        """Write every buffered point and tag; the buffers lose them only after the write succeeded.

        Foreground (``background`` false): wait for a running background write, then write the rest; raises
        :class:`TrackingError` when the store cannot be written. Background: if the previous write is still
        running, return (its points and the newer ones stay buffered); otherwise start a write of everything
        buffered and return, and raise the previous write's error, if it failed, after starting the new one.
        """
        if self._thread is not None:
            if self.background and self._thread.is_alive():
                return
            self._collect()
        error, self._error = self._error, None
        snapshot = [list(p) for p in self.pending], [dict(t) for t in self.pending_tags]
        if not any(snapshot[0]) and not any(snapshot[1]):
            if error is not None and self.background:
                raise error
            return
        self._sent = [len(p) for p in snapshot[0]], snapshot[1]
        if not self.background:
            self._write(*snapshot)
            self._drop_sent()
            return
        self._thread = threading.Thread(target=self._write_in_thread, args=snapshot, daemon=True,
                                        name="targetbench-flush")
        self._thread.start()
        if error is not None:
            raise error

    def _collect(self) -> None:
        assert self._thread is not None
        self._thread.join()
        self._thread = None
        if self._error is None:
            self._drop_sent()
        self._sent = None

    def _drop_sent(self) -> None:
        """Forget what the last successful write covered: a prefix of each replica's points (only appends
        happen while a write runs) and the tags it sent, unless they changed since."""
        assert self._sent is not None
        counts, tags = self._sent
        for points, n in zip(self.pending, counts):
            del points[:n]
        for pending, sent in zip(self.pending_tags, tags):
            for k, v in sent.items():
                if pending.get(k) == v:
                    del pending[k]
        self._sent = None

    def _write_in_thread(self, points: list[list[tuple[str, float, int, int]]], tags: list[dict[str, str]]) -> None:
        try:
            self._write(points, tags)
        except TrackingError as exc:
            self._error = exc
        except Exception as exc:  # a bug must not vanish with the thread
            self._error = TrackingError(f"tracking store write failed: {_one_line(exc)}")

    def _write(self, points: list[list[tuple[str, float, int, int]]], tags: list[dict[str, str]]) -> None:
        from mlflow.entities import Metric, RunTag

        writer = self._writer
        if writer is not None:
            batches = {rid: p for rid, p in zip(self.run_ids, points) if p}
            fast_tags = {rid: {k: v for k, v in t.items() if writer.handles_tag(k)}
                         for rid, t in zip(self.run_ids, tags) if t}
            if batches or fast_tags:
                self._retry(lambda: writer.write(batches, fast_tags))
        for rid, run_points, run_tags in zip(self.run_ids, points, tags):
            if writer is None:
                for i in range(0, len(run_points), _METRICS_PER_BATCH):
                    chunk = [Metric(k, v, ts, st) for k, v, ts, st in run_points[i:i + _METRICS_PER_BATCH]]
                    self._retry(lambda: self.client.log_batch(rid, metrics=chunk))
            items = [RunTag(k, v) for k, v in run_tags.items() if writer is None or not writer.handles_tag(k)]
            if items:
                self._retry(lambda: self.client.log_batch(rid, tags=items))

    def set_tags(self, replica: int, tags: Mapping[str, str]) -> None:
        """Write tags now (one request for all of them)."""
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items()]
        self._retry(lambda: self.client.log_batch(self.run_ids[replica], tags=items))

    def log_artifacts(self, replica: int, folder: Path, artifact_path: str | None = None) -> None:
        """Every file of ``folder`` as artifacts of one run (one call)."""
        self._retry(lambda: self.client.log_artifacts(self.run_ids[replica], str(folder), artifact_path))

    def finish(self, replica: int, status: str = "FINISHED") -> None:
        self._retry(lambda: self.client.set_terminated(self.run_ids[replica], status=status))

    #: first back-off between write attempts, doubled each time (tests set it to 0)
    RETRY_BACKOFF_S = 0.2

    @classmethod
    def _retry(cls, call: Any, attempts: int = 5) -> Any:
        # SQLite under many writers can answer "database is locked", and a server can blink; back off instead
        # of failing the run. Any failure counts (a write that the store refuses fails the same way, later).
        return retry_store(call, what="write", attempts=attempts, backoff_s=cls.RETRY_BACKOFF_S,
                           max_backoff_s=float("inf"), retry_if=lambda exc: True)
