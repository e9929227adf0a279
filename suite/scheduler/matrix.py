"""Matrix expansion: a suite → trials (variant, agent, env, seed) → batched groups.

A *config* is one (variant, agent, env) with its merged overrides, resolved and validated through
:func:`suite.trial.build_trial`; every seed of it is a *trial* identified by ``TrialSpec.trial_hash(seed)``.
Seeds of one config are packed into groups of at most ``group_size`` seeds that train together in one process
(batched replicas). Trial hashes do not depend on the packing; group hashes do.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from analysis import record_names as names
from suite.errors import UsageError
from suite.scheduler.spec import SuiteSpec
from suite.trial import TrialSpec, build_trial

__all__ = ["Config", "Trial", "Group", "expand", "make_groups", "auto_group_size", "memory_group_size",
           "MAX_GROUP_CPU", "MAX_GROUP_GPU"]

#: cap on seeds per group: batched replicas scale sub-linearly on one CPU core, but a very wide batch leaves
#: the other cores idle and makes one failure cost more
MAX_GROUP_CPU = 10
MAX_GROUP_GPU = 32


@dataclass(frozen=True)
class Config:
    """One (variant, agent, env) of a suite: merged overrides and the resolved trial over all suite seeds."""

    variant: str
    agent: str
    env: str
    overrides: dict[str, str]
    steps: int | None
    spec: TrialSpec

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.variant, self.agent, self.env)


@dataclass(frozen=True)
class Trial:
    variant: str
    agent: str
    env: str
    seed: int
    trial_hash: str
    config: Config = field(repr=False, compare=False)


@dataclass(frozen=True)
class Group:
    """Seeds of one config trained together; ``spec`` is the resolved trial for exactly these seeds."""

    config: Config
    seeds: tuple[int, ...]
    spec: TrialSpec
    trial_hashes: tuple[str, ...]

    @property
    def group_hash(self) -> str:
        return self.spec.group_hash()

    @property
    def steps(self) -> int:
        return self.spec.train.steps

    @property
    def label(self) -> str:
        v = "" if self.config.variant == names.DEFAULT_VARIANT else f"[{self.config.variant}] "
        return f"{v}{self.config.agent} {self.config.env} seeds {','.join(map(str, self.seeds))}"


def merged_overrides(suite: SuiteSpec, variant_overrides: Mapping[str, str], agent: str, env: str,
                     extra: Mapping[str, str] | None) -> dict[str, str]:
    """Precedence, lowest first: suite overrides, env overrides, agent overrides, variant, call-time."""
    return {**suite.overrides, **suite.env_overrides.get(env, {}), **suite.agents[agent], **variant_overrides,
            **(extra or {})}


def expand(suite: SuiteSpec, *, overrides: Mapping[str, str] | None = None,
           steps: int | None = None) -> tuple[list[Config], list[Trial]]:
    """Every config and trial of ``suite`` in a stable order (variant, agent, env, seed), validated."""
    where = f"suite file {suite.path}" if suite.path is not None else f"suite {suite.name}"
    steps = steps if steps is not None else suite.steps
    configs: list[Config] = []
    trials: list[Trial] = []
    seen: dict[str, tuple[str, str, str, int]] = {}
    for variant in suite.variants:
        for agent in suite.agents:
            if variant.agents is not None and agent not in variant.agents:
                continue
            for env in suite.envs:
                if variant.envs is not None and env not in variant.envs:
                    continue
                over = merged_overrides(suite, variant.overrides, agent, env, overrides)
                try:
                    spec = build_trial(agent, env, suite.seeds, steps=steps, overrides=over)
                except UsageError as exc:
                    raise UsageError(f"{where}: variant {variant.name!r}, agent {agent}, env {env}: {exc}") from None
                cfg = Config(variant.name, agent, env, over, steps, spec)
                configs.append(cfg)
                for seed in suite.seeds:
                    h = spec.trial_hash(seed)
                    if h in seen:
                        other = seen[h]
                        raise UsageError(
                            f"{where}: variants {other[0]!r} and {variant.name!r} of agent {agent} on {env} resolve "
                            "to the same config; allowed: variants whose overrides change the config of each agent "
                            "they apply to (restrict them with `agents:`)")
                    seen[h] = (variant.name, agent, env, seed)
                    trials.append(Trial(variant.name, agent, env, seed, h, cfg))
    return configs, trials


def auto_group_size(n_configs: int, n_seeds: int, workers: int, *, gpus: int = 0) -> int:
    """Seeds per group when the suite says 0: all seeds of a config in one group when there are enough configs
    to keep every worker busy, otherwise split so that there are about ``workers`` groups; capped."""
    cap = MAX_GROUP_GPU if gpus > 0 else MAX_GROUP_CPU
    if n_configs <= 0 or n_seeds <= 0:
        return 1
    if n_configs >= workers:
        return max(1, min(cap, n_seeds))
    per_config = math.ceil(workers / n_configs)
    return max(1, min(cap, math.ceil(n_seeds / per_config)))


def memory_group_size(configs: Sequence[Config], size: int, workers: int, *, host_bytes: int | None,
                      num_gpus: float = 0.0, gpu_bytes: int = 0) -> int:
    """``size`` capped so that every group fits its share of memory by :mod:`suite.memory`'s estimate:
    ``host_bytes / workers`` of RAM (``workers`` groups run at once; None: the nodes are not this machine, each
    worker checks its own), and ``num_gpus * gpu_bytes`` of GPU memory when groups train on a GPU (fractional
    ``num_gpus``: several groups share one device, each gets its fraction). A config of which not even one seed
    fits is refused here, before anything runs (one-line :class:`suite.memory.MemoryBudgetError`)."""
    from suite.memory import MemoryBudgetError, estimate_memory, max_replicas, max_replicas_gpu

    for cfg in configs:
        if host_bytes is not None:
            fit = max_replicas(cfg.spec, host_bytes // max(1, workers))
            if fit < 1:
                one = estimate_memory(cfg.spec, 1)
                most = max(0, host_bytes // max(1, one.host))
                raise MemoryBudgetError(
                    f"one seed of {cfg.agent} on {cfg.env} needs about {one.describe()}, but {workers} workers "
                    f"share {host_bytes / 2**30:.2f} GiB; allowed: --workers {most} or fewer"
                    + ("" if most else " (a smaller buffer_size)"))
            size = min(size, fit)
        if num_gpus > 0 and gpu_bytes > 0 and estimate_memory(cfg.spec, 1).on_gpu:
            budget = int(min(1.0, num_gpus) * gpu_bytes)  # a group trains on one device
            fit = max_replicas_gpu(cfg.spec, budget)
            if fit < 1:
                raise MemoryBudgetError(f"one seed of {cfg.agent} on {cfg.env} needs more than its GPU share "
                                        f"({num_gpus:g} GPU = {budget / 2**30:.2f} GiB); allowed: a larger "
                                        "--num-gpus")
            size = min(size, fit)
    return max(1, size)


def make_groups(trials: Sequence[Trial], group_size: int) -> list[Group]:
    """Pack trials of the same config (in their order) into groups of at most ``group_size`` seeds, spread
    evenly (5 seeds with size 4 give 3+2, not 4+1)."""
    by_config: dict[tuple[str, str, str], list[Trial]] = {}
    for t in trials:
        by_config.setdefault(t.config.key, []).append(t)
    groups: list[Group] = []
    for members in by_config.values():
        n = len(members)
        k = math.ceil(n / max(1, group_size))
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        start = 0
        for size in sizes:
            part = members[start:start + size]
            start += size
            cfg = part[0].config
            seeds = tuple(t.seed for t in part)
            spec = build_trial(cfg.agent, cfg.env, seeds, steps=cfg.steps, overrides=cfg.overrides)
            groups.append(Group(cfg, seeds, spec, tuple(t.trial_hash for t in part)))
    return groups


def available_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        return 0


def default_workers() -> int:
    """One worker per usable core (each group runs one torch thread)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
