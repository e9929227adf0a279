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
* leases are released (deleted) when their group has been settled, and all of a sweep's at its end;
* what a crashed sweep leaves (its record, its leases, leases moved aside) is deleted by :func:`clear_expired`
  as soon as it is dead: at the start of every later sweep on the store, and by ``targetbench push`` (which
  clears the stores it pushes to, and ``--tracking-uri`` alone clears that store).

Outages: every call goes through the caller's outage policy (``call``, :mod:`suite.store_retry`): a store that
stops answering is retried with backoff, then a :class:`~suite.errors.TrackingError`. Heartbeats try once per
beat (the next beat is the retry); releases try once (a lease not released expires with its holder).

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
from typing import Any, Callable, Iterable, Sequence

from suite.store_retry import retry_store

__all__ = ["LeaseBook", "HEARTBEAT_S", "LEASE_TTL_S", "lease_name", "heartbeat_leases", "clear_expired"]

#: seconds between heartbeats of a sweep and of a training worker
HEARTBEAT_S = 15.0
#: a lease whose holder has not beaten for this long is expired (four missed heartbeats)
LEASE_TTL_S = 60.0
_LEASE = "targetbench-lease"
_SWEEP = "targetbench-sweep"
_ASIDE = ".expired."

Call = Callable[[Callable[[], Any], str], Any]


def lease_name(experiment_id: str, trial_hash: str) -> str:
    """The registered-model name that is the lease of one trial in one experiment."""
    return f"{_LEASE}.{experiment_id}.{trial_hash}"


def _code(exc: Exception) -> str:
    return str(getattr(exc, "error_code", ""))


def _exists(exc: Exception) -> bool:
    return _code(exc) == "RESOURCE_ALREADY_EXISTS"


def _missing(exc: Exception) -> bool:
    return _code(exc) == "RESOURCE_DOES_NOT_EXIST"


def _default_call(fn: Callable[[], Any], what: str) -> Any:
    return retry_store(fn, what=what, attempts=6)


def _search(client: Any, call: Call, filter_string: str) -> list[Any]:
    found, token = [], None
    while True:
        page = call(lambda: client.search_registered_models(filter_string=filter_string, max_results=1000,
                                                             page_token=token), "reading trial leases")
        found.extend(page)
        token = page.token
        if not token:
            return found


def _sweeps(client: Any, call: Call, now: float, ttl_s: float) -> dict[str, bool]:
    """sweep id -> whether that sweep is alive, for every sweep record in the store."""
    return {m.name[len(_SWEEP) + 1:]: _holder_alive(m.tags.get("process", ""), m.tags.get("heartbeat"), now, ttl_s)
            for m in _search(client, call, f"name LIKE '{_SWEEP}.%'")}


def _lease_live(model: Any, sweeps: set[str], now: float, ttl_s: float) -> bool:
    """A lease is live while its owner sweep is, or while the worker training its group is."""
    if _ASIDE in model.name:
        return False
    tags = model.tags
    return tags.get("owner", "") in sweeps or ("worker" in tags and _holder_alive(
        tags["worker"], tags.get("worker_heartbeat"), now, ttl_s))


def clear_expired(client: Any, *, call: Call = _default_call, keep_sweep: str | None = None,
                  ttl_s: float = LEASE_TTL_S, clock: Callable[[], float] = time.time) -> int:
    """Delete from the model registry what dead sweeps left behind: their records, the leases no live sweep
    or worker holds (of every experiment), and leases moved aside. Returns how many were deleted.

    Leases are read before the sweep records: a lease seen here was created after its owner's record, so a
    live owner is among the records read next (the other order would judge a brand-new lease dead). Each
    lease is read again just before it is deleted, and kept if another sweep took it over meanwhile."""
    now = clock()
    leases = _search(client, call, f"name LIKE '{_LEASE}.%'")
    records = _sweeps(client, call, now, ttl_s)
    if keep_sweep is not None:
        records[keep_sweep] = True
    sweeps = {sweep for sweep, alive in records.items() if alive}
    deleted = 0
    for m in leases:
        if _lease_live(m, sweeps, now, ttl_s):
            continue
        try:
            if _ASIDE not in m.name:
                again = call(lambda: client.get_registered_model(m.name), "reading a trial lease")
                if again.tags.get("owner") != m.tags.get("owner") or _lease_live(again, sweeps, now, ttl_s):
                    continue  # taken over by a live sweep since it was read
            call(lambda: client.delete_registered_model(m.name), "deleting an expired trial lease")
            deleted += 1
        except Exception as exc:
            if not _missing(exc):  # gone already: another sweep cleared it
                raise
    for sweep in sorted(set(records) - sweeps):
        try:
            call(lambda: client.delete_registered_model(f"{_SWEEP}.{sweep}"), "deleting the record of a dead sweep")
            deleted += 1
        except Exception as exc:
            if not _missing(exc):
                raise
    return deleted


class LeaseBook:
    """One sweep's leases on one experiment: acquire, keep alive, release.

    A context manager: entering registers the sweep and starts its heartbeat thread; leaving releases every
    lease still held and the sweep's record, and never raises (what a store that is down keeps expires).
    ``call`` is the outage policy every read and write goes through (default: six tries with backoff)."""

    def __init__(self, client: Any, experiment_id: str, *, ttl_s: float = LEASE_TTL_S,
                 heartbeat_s: float = HEARTBEAT_S, clock: Any = time.time, call: Call | None = None) -> None:
        self.client, self.experiment_id = client, str(experiment_id)
        self.ttl_s, self.heartbeat_s, self.clock = ttl_s, heartbeat_s, clock
        self.call: Call = call or _default_call
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
        try:
            self.call(lambda: self.client.create_registered_model(
                self.sweep_name, tags={"process": process_id(), "heartbeat": repr(self.clock())}),
                "registering the sweep")
        except Exception as exc:
            if not _exists(exc):  # exists: an earlier try of ours was stored, its answer lost
                raise
        self._thread = threading.Thread(target=self._beat_forever, name="sweep-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.release(list(self.held))
            self.client.delete_registered_model(self.sweep_name)
        except Exception:  # the store is down: the record and the leases expire with this process
            pass

    def _beat_forever(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:  # one try per beat: the next beat is the retry
                self.client.set_registered_model_tag(self.sweep_name, "heartbeat", repr(self.clock()))
            except Exception:  # the store is down: the leases may expire; the trainer's own checks still hold
                pass

    # -- reading ------------------------------------------------------------------------------------------
    def live(self) -> dict[str, str]:
        """trial_hash -> owner sweep id, for every live lease of this experiment (ours included)."""
        now = self.clock()
        prefix = lease_name(self.experiment_id, "")
        leases = _search(self.client, self.call, f"name LIKE '{prefix}%'")  # before the sweeps: see clear_expired
        sweeps = {s for s, alive in _sweeps(self.client, self.call, now, self.ttl_s).items() if alive}
        sweeps.add(self.sweep_id)
        return {m.name[len(prefix):]: m.tags.get("owner", "") for m in leases
                if _lease_live(m, sweeps, now, self.ttl_s)}

    def clear_expired(self) -> int:
        """:func:`clear_expired` on this store (this sweep counts as live)."""
        return clear_expired(self.client, call=self.call, keep_sweep=self.sweep_id, ttl_s=self.ttl_s,
                             clock=self.clock)

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
            if live.get(h) == self.sweep_id:  # ours: an earlier try was stored and its answer lost
                ours.append(h)
                continue
            if h in live:
                others[h] = live[h]
                continue
            # Expired: move it aside (the rename lets one sweep win), delete it, then race for a fresh one.
            aside = f"{name}{_ASIDE}{uuid.uuid4().hex[:8]}"
            try:
                self.call(lambda: self.client.rename_registered_model(name, aside), "taking over an expired lease")
            except Exception as exc:
                if not _missing(exc):
                    raise
            else:
                try:
                    self.client.delete_registered_model(aside)
                except Exception:  # one try: clear_expired deletes what stays
                    pass
            if self._create(name):
                ours.append(h)
            else:
                others[h] = "another sweep"
        with self._lock:
            self.held.update(ours)
        return ours, others

    def _create(self, name: str) -> bool:
        try:
            self.call(lambda: self.client.create_registered_model(
                name, tags={"owner": self.sweep_id, "heartbeat": repr(self.clock())}), "taking trial leases")
            return True
        except Exception as exc:
            if _exists(exc):
                return False
            raise

    def release(self, trial_hashes: Sequence[str]) -> None:
        """Give up these trials' leases (their group is settled); a lease already gone, or taken over by
        another sweep after ours expired, is left as it is. One try each: a store that is down must not hold
        up the sweep, and a lease it keeps expires with this sweep."""
        for h in trial_hashes:
            name = lease_name(self.experiment_id, h)
            try:
                if self.client.get_registered_model(name).tags.get("owner") == self.sweep_id:
                    self.client.delete_registered_model(name)
            except Exception:  # gone already, or the store is down
                pass
            with self._lock:
                self.held.discard(h)


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
        marked: set[str] = set()
        first = True
        while first or not stop.wait(interval_s):
            for name in names:
                try:  # one try per beat: the next beat is the retry (the mark too, if the store was down)
                    if name not in marked:
                        client.set_registered_model_tag(name, "worker", me)
                        marked.add(name)
                    client.set_registered_model_tag(name, "worker_heartbeat", repr(time.time()))
                except Exception:  # released (the group was settled) or the store is down
                    pass
            first = False

    thread = threading.Thread(target=beat, name="lease-heartbeat", daemon=True)
    thread.start()
    return thread
