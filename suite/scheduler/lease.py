"""Per-trial leases in the tracking store, so that two sweeps on one store (two users, or a driver restarted while
the old one still runs) record each trial once and never delete each other's live runs.

The store's one atomic primitive that works the same on SQLite and on an MLflow server is a unique name: a
registered model (MLflow's model registry, in the same database). So:

* a sweep registers itself as ``targetbench-sweep.<sweep id>`` (tags ``process`` = host:pid:start time,
  ``heartbeat``) and refreshes ``heartbeat`` every :data:`HEARTBEAT_S` from a background thread while it runs;
* before planning, it leases each trial it would run by *creating* ``targetbench-lease.<experiment id>.<trial
  hash>`` (tags ``owner`` = sweep id, ``heartbeat``). Creation either succeeds (the trial is ours) or fails with
  "already exists" (another sweep holds it);
* the worker that trains a group beats its trials' leases too (tags ``worker`` = host:pid:start time,
  ``worker_heartbeat``), so a group outlives a driver killed without its workers;
* a lease is live while its owner sweep or its worker is: on this host, whether that process still exists
  (exact and immediate, so a sweep restarted after a kill takes its trials over at once); on another host,
  whether its heartbeat is less than :data:`LEASE_TTL_S` old. A second sweep skips the trials another live
  sweep holds (reported ``leased``) and takes over dead leases (renamed aside first, then created anew: the
  create decides who wins);
* leases are released (deleted) when their group has been settled, and all of a sweep's at its end.

Pruning (``StoreView.prune_superseded``) leaves alone the runs of trials whose lease is live. Heartbeats are
wall-clock seconds (``time.time()``): nodes of one cluster are assumed to agree on the time to well within the
TTL.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from typing import Any, Iterable, Sequence

__all__ = ["LeaseBook", "HEARTBEAT_S", "LEASE_TTL_S", "lease_name", "heartbeat_leases"]

#: seconds between heartbeats of a sweep and of a training worker
HEARTBEAT_S = 15.0
#: a lease whose holder has not beaten for this long is expired (four missed heartbeats)
LEASE_TTL_S = 60.0
_LEASE = "targetbench-lease"
_SWEEP = "targetbench-sweep"


def lease_name(experiment_id: str, trial_hash: str) -> str:
    """The registered-model name that is the lease of one trial in one experiment."""
    return f"{_LEASE}.{experiment_id}.{trial_hash}"


def _exists(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_ALREADY_EXISTS"


def _missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def _call(fn: Any, *args: Any, attempts: int = 6, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, retried with backoff on transient store errors ("database is locked" under many
    writers, a server hiccup); the answers a lease is decided by (exists / missing / invalid) are not retried."""
    for i in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            code = getattr(exc, "error_code", "")
            if code in ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") \
                    or i == attempts - 1:
                raise
            time.sleep(0.2 * 2 ** i)


class LeaseBook:
    """One sweep's leases on one experiment: acquire, keep alive, release.

    Use as a context manager: entering registers the sweep and starts its heartbeat thread; leaving releases
    every lease still held and the sweep's record."""

    def __init__(self, client: Any, experiment_id: str, *, ttl_s: float = LEASE_TTL_S,
                 heartbeat_s: float = HEARTBEAT_S, clock: Any = time.time) -> None:
        self.client, self.experiment_id = client, str(experiment_id)
        self.ttl_s, self.heartbeat_s, self.clock = ttl_s, heartbeat_s, clock
        self.sweep_id = uuid.uuid4().hex[:16]
        self.held: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- the sweep's own record ---------------------------------------------------------------------------
    @property
    def sweep_name(self) -> str:
        return f"{_SWEEP}.{self.sweep_id}"

    def __enter__(self) -> "LeaseBook":
        _call(self.client.create_registered_model, self.sweep_name,
              tags={"process": process_id(), "heartbeat": repr(self.clock())})
        self._thread = threading.Thread(target=self._beat_forever, name="sweep-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.release(list(self.held))
        try:
            self.client.delete_registered_model(self.sweep_name)
        except Exception:  # an expired record is harmless: nothing refers to a dead sweep once its leases go
            pass

    def _beat_forever(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.client.set_registered_model_tag(self.sweep_name, "heartbeat", repr(self.clock()))
            except Exception:  # the store is down: the leases may expire; the trainer's own checks still hold
                pass

    # -- reading ------------------------------------------------------------------------------------------
    def _live_sweeps(self) -> set[str]:
        now = self.clock()
        return {m.name[len(_SWEEP) + 1:] for m in self._search(f"name LIKE '{_SWEEP}.%'")
                if _holder_alive(m.tags.get("process", ""), m.tags.get("heartbeat"), now, self.ttl_s)}

    def _search(self, filter_string: str) -> list[Any]:
        found, token = [], None
        while True:
            page = _call(self.client.search_registered_models, filter_string=filter_string, max_results=1000,
                         page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return found

    def live(self) -> dict[str, str]:
        """trial_hash -> owner sweep id, for every live lease of this experiment (ours included)."""
        now, sweeps = self.clock(), self._live_sweeps()
        prefix = lease_name(self.experiment_id, "")
        out = {}
        for m in self._search(f"name LIKE '{prefix}%'"):
            owner = m.tags.get("owner", "")
            if ".expired." in m.name:
                continue
            if owner in sweeps or ("worker" in m.tags and _holder_alive(m.tags["worker"],
                                                                         m.tags.get("worker_heartbeat"), now,
                                                                         self.ttl_s)):
                out[m.name[len(prefix):]] = owner
        return out

    # -- acquiring and releasing --------------------------------------------------------------------------
    def acquire(self, trial_hashes: Iterable[str]) -> tuple[list[str], dict[str, str]]:
        """Lease what can be leased: (trials now ours, trial -> owner of those another live sweep holds)."""
        ours: list[str] = []
        others: dict[str, str] = {}
        live: dict[str, str] | None = None
        for h in trial_hashes:
            name = lease_name(self.experiment_id, h)
            if self._create(name):
                ours.append(h)
                continue
            if live is None:
                live = self.live()
            if h in live:
                others[h] = live[h]
                continue
            # Expired: move it aside (kept for inspection until released), then race for a fresh one.
            try:
                _call(self.client.rename_registered_model, name, f"{name}.expired.{uuid.uuid4().hex[:8]}")
            except Exception as exc:
                if not _missing(exc):
                    raise
            if self._create(name):
                ours.append(h)
            else:
                others[h] = "another sweep"
        with self._lock:
            self.held.update(ours)
        return ours, others

    def _create(self, name: str) -> bool:
        try:
            _call(self.client.create_registered_model, name,
                  tags={"owner": self.sweep_id, "heartbeat": repr(self.clock())})
            return True
        except Exception as exc:
            if _exists(exc):
                return False
            raise

    def release(self, trial_hashes: Sequence[str]) -> None:
        """Give up these trials' leases (their group is settled); a lease already gone, or taken over by
        another sweep after ours expired, is left as it is."""
        for h in trial_hashes:
            name = lease_name(self.experiment_id, h)
            try:
                # One try: a store that is down must not hold up the sweep; our dead lease is taken over anyway.
                if self.client.get_registered_model(name).tags.get("owner") == self.sweep_id:
                    self.client.delete_registered_model(name)
            except Exception:  # gone already, or the store is down: it expires by itself
                pass
            with self._lock:
                self.held.discard(h)
        if not self.held:
            for m in self._search(f"name LIKE '{lease_name(self.experiment_id, '')}%.expired.%'"):
                try:
                    self.client.delete_registered_model(m.name)
                except Exception:
                    pass


def process_id() -> str:
    """``host:pid:start time`` of this process (the start time tells a reused pid apart)."""
    import psutil

    return f"{socket.gethostname()}:{os.getpid()}:{psutil.Process().create_time():.3f}"


def _holder_alive(process: str, heartbeat: str | None, now: float, ttl_s: float) -> bool:
    """Whether the process behind a lease still runs: checked directly on this host, else by its heartbeat."""
    host, _, rest = process.partition(":")
    pid, _, started = rest.partition(":")
    if host == socket.gethostname() and pid.isdigit():
        import psutil

        try:
            return abs(psutil.Process(int(pid)).create_time() - float(started or 0)) < 1.0
        except (psutil.Error, ValueError):
            return False
    try:
        return now - float(heartbeat or 0) < ttl_s
    except ValueError:
        return False


def heartbeat_leases(uri: str, names: Sequence[str], stop: threading.Event,
                     interval_s: float = HEARTBEAT_S) -> threading.Thread:
    """Refresh the ``heartbeat`` of the leases ``names`` every ``interval_s`` until ``stop`` is set (the worker
    that trains their group runs this, so the leases stay live as long as the training does)."""
    from suite.scheduler.store import _client

    me = process_id()

    def beat() -> None:
        client = _client(uri)
        first = True
        while first or not stop.wait(interval_s):
            for name in names:
                try:
                    if first:
                        client.set_registered_model_tag(name, "worker", me)
                    client.set_registered_model_tag(name, "worker_heartbeat", repr(time.time()))
                except Exception:  # released (the group was settled) or the store is down
                    pass
            first = False

    thread = threading.Thread(target=beat, name="lease-heartbeat", daemon=True)
    thread.start()
    return thread
