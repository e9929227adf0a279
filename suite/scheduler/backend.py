"""What the backends share: a task (one group with its job and retry budget) and its outcome."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Task", "Outcome", "BACKENDS"]

BACKENDS = ("local", "ray")


@dataclass
class Task:
    group: Any  # suite.scheduler.matrix.Group
    job: dict[str, Any]
    retries: int
    num_cpus: float = 1.0
    num_gpus: float = 0.0


@dataclass
class Outcome:
    ok: bool
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    attempts: int = 1
