"""Planning a sweep: the trials still to run (neither finished in the store nor leased by another live sweep),
batched into groups sized by cores, GPUs and the memory estimate."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from suite.scheduler.matrix import (Group, Trial, auto_group_size, available_gpus, expand, make_groups,
                                    memory_group_size)
from suite.scheduler.spec import SuiteSpec

__all__ = ["Plan", "plan_sweep"]


@dataclass
class Plan:
    """What a sweep will run: every trial of the suite, those finished, those to run, and their groups."""

    suite: SuiteSpec
    trials: list[Trial]
    finished: dict[str, Any]
    pending: list[Trial]
    groups: list[Group]
    group_size: int
    workers: int
    held: dict[str, str] = field(default_factory=dict)  # trial hash -> the live sweep that holds its lease


def plan_sweep(suite: SuiteSpec, *, workers: int, overrides: Mapping[str, str] | None, steps: int | None,
               finished: dict[str, Any], memory_budget: int | None = None,
               claim: Callable[[list[str]], Mapping[str, str]] | None = None) -> Plan:
    """Trials still to run, grouped; ``memory_budget`` (bytes of RAM the ``workers`` share) caps the group size
    by the memory estimate (see :func:`suite.scheduler.matrix.memory_group_size`). ``claim`` leases the
    unfinished trials and returns those another live sweep holds (trial hash -> owner): they are left out."""
    _, trials = expand(suite, overrides=overrides, steps=steps)
    pending = [t for t in trials if t.trial_hash not in finished]
    held = claim([t.trial_hash for t in pending]) if claim is not None else {}
    pending = [t for t in pending if t.trial_hash not in held]
    if suite.resources.group_size:
        size = suite.resources.group_size
    else:
        n_configs = len({t.config.key for t in pending})
        most = max((sum(1 for t in pending if t.config.key == k) for k in {t.config.key for t in pending}), default=1)
        size = auto_group_size(n_configs, most, workers, gpus=available_gpus())
    if memory_budget is not None or suite.resources.num_gpus > 0:
        from suite.memory import gpu_memory

        configs = list({t.config.key: t.config for t in pending}.values())
        size = memory_group_size(configs, size, workers, host_bytes=memory_budget,
                                 num_gpus=suite.resources.num_gpus, gpu_bytes=gpu_memory())
    return Plan(suite, trials, finished, pending, make_groups(pending, size), size, workers, dict(held))
