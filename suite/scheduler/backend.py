"""What the backends share: a job (what one group attempt trains, and where it records), a task (one group
with its job and retry budget), how an attempt failed, and its outcome."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping

from suite.errors import TrackingError, UnpushedError, UsageError
from suite.store_retry import STORE_WAIT_S

__all__ = ["Job", "Task", "Outcome", "Failure", "failure_of", "BACKENDS"]

BACKENDS = ("local", "ray")


@dataclass
class Job:
    """One group attempt, as the worker receives it (JSON on a local worker's stdin, a Ray task's argument)."""

    agent: str
    env: str
    seeds: list[int]
    tracking_uri: str
    experiment: str
    results_dir: str
    steps: int | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    variant: str | None = None
    suite: str | None = None
    #: the local checkpoint folder (default: RESULTS/checkpoints)
    checkpoint_dir: str | None = None
    #: how long the group waits for a tracking store that does not answer as it starts (0: try once)
    store_wait_s: float = STORE_WAIT_S
    #: a remote checkpoint store (suite.checkpoint_store), mirrored at every checkpoint
    checkpoint_uri: str | None = None
    #: Ray with a remote checkpoint store: the worker keeps its files in a folder of its own node
    node_local: bool = False
    #: the registered-model names of the group's trial leases, which the worker keeps alive while it trains
    leases: list[str] = field(default_factory=list)
    #: no progress lines on the worker's stderr
    quiet: bool = True

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: "Job | Mapping[str, Any]") -> "Job":
        """A job from its JSON form (or the job itself); an unknown key is a :class:`UsageError`."""
        if isinstance(data, Job):
            return data
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown job key {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
        return cls(**dict(data))


@dataclass
class Task:
    group: Any  # suite.scheduler.matrix.Group
    job: Job
    retries: int
    num_cpus: float = 1.0
    num_gpus: float = 0.0


class Failure(str, Enum):
    """How an attempt failed, decided from the exception's type where it was raised (the worker)."""

    #: trained and checkpointed, but the records could not be written: the end-of-sweep push or `targetbench push`
    UNPUSHED = "unpushed"
    #: the tracking store did not answer as the group started (it waited ``store_wait_s``): nothing trained
    TRACKING = "tracking"
    #: stopped by a signal or by the scheduler going away: resumable, not the group's fault
    INTERRUPTED = "interrupted"
    #: anything else (a crash, a killed worker, a bug, a full disk): retried, then recorded as failed
    ERROR = "error"

    @property
    def retried(self) -> bool:
        """Whether another attempt can help: not when the store is away (the group already waited for it)."""
        return self in (Failure.ERROR, Failure.INTERRUPTED)


def failure_of(exc: BaseException) -> Failure:
    """The :class:`Failure` an exception raised by an attempt stands for."""
    if isinstance(exc, UnpushedError):
        return Failure.UNPUSHED
    if isinstance(exc, TrackingError):
        return Failure.TRACKING
    if isinstance(exc, KeyboardInterrupt):
        return Failure.INTERRUPTED
    return Failure.ERROR


@dataclass
class Outcome:
    ok: bool
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    attempts: int = 1
    failure: Failure | None = None  # why the last attempt failed (None when ok)
