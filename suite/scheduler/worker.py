"""Run one batched group: ``python -m suite.scheduler.worker`` (a :class:`~suite.scheduler.backend.Job` as JSON
on stdin) or :func:`run_group` in-process (Ray tasks).

The subprocess speaks one JSON object per stdout line: ``{"event": "progress", "step": S, "resumed": bool}``
at every evaluation (and once when it resumes from a checkpoint), then ``{"event": "result", "results": [...]}``
or ``{"event": "error", "error": "...", "failure": F}`` (``F``: the
:class:`~suite.scheduler.backend.Failure` the exception's type stands for). Training always runs with
``resume=True``: a group whose checkpoint exists continues from it (same MLflow runs), one without starts fresh.

Tracking outages: a store that goes away mid-run does not stop training (the trainer keeps unwritten points in
its checkpoints). A store that does not answer when the group *starts* is waited for, with backoff, up to
``job.store_wait_s`` seconds (default :data:`STORE_WAIT_S`; the scheduler sets 0 while it knows the store is
down). A group whose training completed but whose records could not be written ends with an
``UnpushedError``: its final checkpoint holds them, for the scheduler's end-of-sweep push or ``targetbench push``.

Checkpoints: ``job.checkpoint_uri`` names a remote checkpoint store (:mod:`suite.checkpoint_store`), fetched
from before training and uploaded to at every checkpoint; with ``job.node_local`` (Ray with a remote store)
the worker's files live in ``$TARGETBENCH_NODE_DIR`` (default ``<tmp>/targetbench-node``), not in the driver's
results folder, so a group resumes on any node.
"""
from __future__ import annotations

import json
import os
import re
import resource
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Mapping

from analysis import record_names as names
from suite.scheduler.backend import Job, failure_of
from suite.store_retry import STORE_WAIT_S

__all__ = ["run_group", "job_tags", "main", "STORE_WAIT_S"]

#: a node's own folder for working checkpoints and staged artifacts when checkpoints live in a remote store
NODE_DIR_ENV = "TARGETBENCH_NODE_DIR"

_STEP_RE = re.compile(r"\] step (\d+)/(\d+)")
_RESUMED_RE = re.compile(r"\] resumed at step (\d+)")


def job_tags(job: Job) -> dict[str, str]:
    """The tags the scheduler adds to every run of the job (besides the trainer's own)."""
    tags = {names.VARIANT: job.variant or names.DEFAULT_VARIANT}
    if job.suite:
        tags[names.SUITE] = job.suite
    return tags


def run_group(job: Job | Mapping[str, Any], on_step: Callable[[int, bool], None] | None = None,
              say: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Train the group described by ``job`` (a :class:`~suite.scheduler.backend.Job` or its JSON form) and
    return the per-seed results as JSON-able dicts."""
    from suite.trial import build_trial

    job = Job.from_json(job)
    trial = build_trial(job.agent, job.env, job.seeds, steps=job.steps, overrides=job.overrides)
    tags = job_tags(job)
    from suite.memory import check_memory

    check_memory(trial)  # this node's memory (on a cluster the driver cannot see it): refuse rather than OOM

    def progress(msg: str) -> None:
        if on_step is not None:
            m = _STEP_RE.search(msg)
            if m:
                on_step(int(m.group(1)), False)
            elif (m := _RESUMED_RE.search(msg)):
                on_step(int(m.group(1)), True)
        if say is not None:
            say(msg)

    # Keep this group's trial leases live while it trains (the driver beats too; this covers a driver killed
    # without its workers, whose trials a restarted driver must not run a second time).
    from suite.scheduler.lease import heartbeat_leases

    stop = threading.Event()
    if job.leases:
        heartbeat_leases(job.tracking_uri, job.leases, stop)
    try:
        return _train_with_store_wait(job, trial, tags, progress)
    finally:
        stop.set()


def _train_with_store_wait(job: Job, trial: Any, tags: dict[str, str],
                           progress: Callable[[str], None]) -> list[dict[str, Any]]:
    import suite.trainer as trainer
    from suite.checkpoint_store import open_checkpoint_store
    from suite.errors import TrackingError, UnpushedError
    from suite.store_retry import retry_store

    results_dir = Path(job.results_dir)
    checkpoint_dir = Path(job.checkpoint_dir) if job.checkpoint_dir else results_dir / "checkpoints"
    if job.node_local:
        # Nothing shared but the servers: this node's own folder for the working checkpoint and staged files
        results_dir = Path(os.environ.get(NODE_DIR_ENV) or Path(tempfile.gettempdir()) / "targetbench-node")
        checkpoint_dir = results_dir / "checkpoints"
        results_dir.mkdir(parents=True, exist_ok=True)
    store = open_checkpoint_store(job.checkpoint_uri, tracking_uri=job.tracking_uri, experiment=job.experiment,
                                  checkpoint_dir=checkpoint_dir)

    def attempt() -> list[dict[str, Any]]:
        results = trainer.train(trial, tracking_uri=job.tracking_uri, experiment=job.experiment,
                                results_dir=results_dir, checkpoint_dir=checkpoint_dir, checkpoint_store=store,
                                resume=True, progress=progress, extra_tags=tags)
        return [r.to_json() for r in results]

    def waiting(exc: BaseException, delay: float) -> None:
        progress(f"[{job.agent} {job.env}] tracking store unavailable ({exc}); retrying in {delay:.0f} s")

    # The store did not answer as the group started (nothing trained yet, or it resumes from its last
    # checkpoint): wait for it rather than burn the group's retries in a few seconds. An UnpushedError is not
    # waited for: trained and checkpointed, the worker is freed and the records are pushed later.
    try:
        return retry_store(attempt, what="opening the group's runs", wait_s=job.store_wait_s, backoff_s=2.0,
                           max_backoff_s=30.0, on_retry=waiting,
                           retry_if=lambda e: isinstance(e, TrackingError) and not isinstance(e, UnpushedError))
    except TrackingError as exc:
        if isinstance(exc, UnpushedError):
            raise
        raise TrackingError(f"{exc} (waited {job.store_wait_s:.0f} s)") from None


class _SchedulerGone(KeyboardInterrupt):
    """Our stdout pipe closed: the scheduler that reads it is gone. Raised from the progress callback, it stops
    the attempt the way SIGTERM does (runs marked KILLED, the last checkpoint valid for the next sweep)."""


def _emit(obj: dict[str, Any]) -> None:
    try:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # Later writes (the error event, the exit-time flush) go to /dev/null: no second traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise _SchedulerGone("the scheduler closed the worker's stdout") from None


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # SIGTERM (the scheduler stopping) and SIGINT (even when inherited as ignored) end the attempt the way
    # Ctrl-C ends `targetbench run`: the trainer marks its runs KILLED and the last checkpoint stays valid.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    import suite.tracking  # noqa: F401  (quietens MLflow's loggers on import via _import_mlflow)

    try:
        job = Job.from_json(json.loads(sys.stdin.read()))
        results = run_group(job, on_step=lambda s, resumed: _emit({"event": "progress", "step": s, "resumed": resumed}),
                            say=None if job.quiet else (lambda m: print(m, file=sys.stderr, flush=True)))
    except BaseException as exc:  # the parent decides on retries; it needs the reason in one line, and its kind
        text = str(exc).strip().splitlines()
        try:
            _emit({"event": "error", "error": f"{type(exc).__name__}: {text[0] if text else ''}"[:500],
                   "failure": failure_of(exc).value})
        except _SchedulerGone:
            pass  # nobody is left to read it
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    try:
        _emit({"event": "result", "results": results, "cpu_s": round(usage.ru_utime + usage.ru_stime, 1)})
    except _SchedulerGone:
        return 130  # trained and recorded; only the report is lost (the next sweep finds the finished runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
