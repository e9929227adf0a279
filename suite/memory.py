"""Memory a trial group will need, estimated before anything large is allocated, and the check that refuses a
group that cannot fit.

A group of R replicas holds, per replica: its replay buffer (the dominant term; see ``agents/replay.py`` for
the layout: one observation per slot, plus action/reward/terminated/side index, and for Atari one *frame* per
step with key frames at stack breaks), its networks' tensors (online parameters, their gradients, optimizer
state, target copies: measured on a one-replica probe agent, so every agent's own networks are counted
exactly), the activations of one update, a copy of the networks' state while a checkpoint is serialized, and
its environments; plus a fixed per-process cost (Python, torch,
numpy, MLflow imported). Buffers are allocated lazily and filled one slot per step, so the replay counts
``min(buffer_size, steps)`` slots: what the run will have touched by its end.

The probe is one replica with a replay of ``batch_size`` slots and one environment instance: milliseconds for
the MLP, well under a second for the Nature CNN, and independent of R and of the buffer size, so
``--seed 0-100000`` is refused before any of it is spent. Figures: ``tests/suite/test_memory.py`` compares the
estimate with the measured peak RSS of a CartPole group.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from suite.errors import UsageError

if TYPE_CHECKING:
    from suite.envs.family import EnvFamily

__all__ = ["MemoryEstimate", "MemoryBudgetError", "estimate_memory", "available_memory", "check_memory",
           "max_replicas", "max_replicas_gpu", "gpu_memory", "PROCESS_BYTES"]

MiB = 2**20
#: resident memory of a fresh training process before its group allocates anything (Python with torch, numpy,
#: gymnasium and MLflow imported: 349 MiB measured on Linux x86-64, torch 2.13 CPU), rounded up
PROCESS_BYTES = 400 * MiB
#: a CUDA context on the group's GPU (not counted on the host)
CUDA_CONTEXT_BYTES = 512 * MiB
#: per-slot bookkeeping of the replay: action int64, reward and terminated float32, side index int32
_SLOT_BYTES = 8 + 4 + 4 + 4
#: per-frame bookkeeping in frame-stack mode: depth uint8, key index int32 (plus the slot's int64 time)
_FRAME_BYTES = 1 + 4


class MemoryBudgetError(UsageError):
    """The group cannot fit in the memory available (bad input: fewer seeds or a smaller buffer fit)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a group of ``replicas`` needs, by part; ``device`` parts live on the GPU when it trains on one."""

    replicas: int
    replay: int  # host: replay buffers, all replicas
    model: int  # device: parameters, gradients, optimizer state, target copies
    checkpoint: int  # host: a copy of the networks' and optimizer's state while a checkpoint is written
    activations: int  # device: one update's forward and backward tensors
    envs: int  # host: environment instances
    process: int  # host: the fixed cost of one training process
    on_gpu: bool = False

    @property
    def host(self) -> int:
        """Host RAM of the whole process."""
        return (self.process + self.replay + self.envs + self.checkpoint
                + (0 if self.on_gpu else self.model + self.activations))

    @property
    def gpu(self) -> int:
        """GPU memory (0 on the CPU), CUDA context included."""
        return self.model + self.activations + CUDA_CONTEXT_BYTES if self.on_gpu else 0

    @property
    def group_bytes(self) -> int:
        """What the group allocates beyond the fixed process cost, wherever it lives."""
        return self.replay + self.model + self.activations + self.envs + self.checkpoint

    def describe(self) -> str:
        """One line: the total and its main parts, in GiB."""
        g = lambda b: f"{b / 2**30:.2f} GiB"  # noqa: E731
        return (f"{g(self.host)} of RAM for {self.replicas} replicas (replay {g(self.replay)}, networks and "
                f"optimizer {g(self.model + self.activations + self.checkpoint)}, envs {g(self.envs)}, process {g(self.process)})"
                + (f" and {g(self.gpu)} on the GPU" if self.on_gpu else ""))


@dataclass(frozen=True)
class _PerReplica:
    model: int
    checkpoint: int
    activations: int
    replay: int
    envs: int


_PROBES: dict[str, _PerReplica] = {}


def _replay_bytes(obs_shape: tuple[int, ...], obs_dtype: np.dtype, slots: int, family: EnvFamily) -> int:
    """Replay bytes of one replica, laid out as ``agents/agent.py`` builds the buffer (one frame per step when
    the family's observations are frame stacks)."""
    itemsize = np.dtype(obs_dtype).itemsize
    obs = int(math.prod(obs_shape)) * itemsize
    # true next observations of ended episodes (and key frames)
    side = family.memory.side_pool_fraction * slots * obs
    if family.facts.frame_stack:
        stack = obs_shape[0]
        frame = obs // stack
        frames = (slots + stack - 1) * (frame + _FRAME_BYTES)
        return int(slots * (_SLOT_BYTES + 8) + frames + side)
    return int(slots * (_SLOT_BYTES + obs) + side)


def _per_replica(trial: Any) -> _PerReplica:
    """Bytes of one replica, measured on a one-replica probe agent with a tiny replay (cached per config)."""
    key = json.dumps([trial.agent, trial.env, trial.agent_config.to_dict(), trial.env_options,
                      min(trial.agent_config.buffer_size, trial.train.steps)], sort_keys=True, default=str)
    if key in _PROBES:
        return _PROBES[key]
    import torch

    from agents import get_agent
    from suite.envs import get_family, make_env

    env = make_env(trial.env, 0, options=trial.env_options)
    try:
        obs_shape = tuple(int(s) for s in env.observation_space.shape)
        obs_dtype = np.dtype(env.observation_space.dtype)
        num_actions = int(env.action_space.n)
    finally:
        env.close()
    family = get_family(trial.family)
    cfg = trial.agent_config
    probe_cfg = dataclasses.replace(cfg, buffer_size=max(1, cfg.batch_size))
    spec = get_agent(trial.agent)
    with torch.device("cpu"):
        agent = spec.cls(probe_cfg, obs_shape=obs_shape, obs_dtype=obs_dtype, num_actions=num_actions, seeds=[0],
                         family=family.facts, total_steps=trial.train.steps, device="cpu", kernels="torch",
                         threads=1)
    state = agent.state_dict()
    state.pop("replay")
    tensors = _tensor_bytes(state)
    grads = sum(p.numel() * p.element_size() for p in agent.trainable_parameters())
    # Activations of one update: the tensors one sample's online forward saves for the backward pass (counted
    # by autograd's pack hook, parameters excluded), times the batch; the gradients of the backward pass and
    # the target forward reuse memory freed on the way (1000 CartPole replicas: 0.16 MiB each measured, this
    # gives 0.2). A run that ends before learning starts never updates. The probe's one replica may hold several
    # networks in consecutive rows (i-DQN, EauDeQN: K), so the forward feeds every row of the online network.
    params = {p.data_ptr() for p in agent.trainable_parameters()}
    saved = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.data_ptr() not in params:
            saved[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        # one sample per network row: i-DQN and EauDeQN stack K networks per replica
        agent.online(torch.zeros((agent.online.num_replicas, 1, *obs_shape), dtype=torch.float32)).sum()
    updates = trial.train.steps > getattr(cfg, "learning_starts", 0)
    activations = saved[0] * cfg.batch_size if updates else 0
    slots = min(cfg.buffer_size, trial.train.steps)
    out = _PerReplica(model=tensors + (grads if updates else 0), checkpoint=tensors, activations=activations,
                      replay=_replay_bytes(obs_shape, obs_dtype, slots, family), envs=family.memory.env_bytes)
    _PROBES[key] = out
    return out


def _tensor_bytes(obj: Any) -> int:
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def _on_gpu(trial: Any) -> bool:
    device = trial.train.device
    if device == "auto":
        try:
            import torch

            return bool(torch.cuda.is_available())
        except Exception:
            return False
    return device.startswith("cuda")


def estimate_memory(trial: Any, replicas: int | None = None) -> MemoryEstimate:
    """Estimate the memory of ``trial`` (a :class:`suite.trial.TrialSpec`) trained as one group of
    ``replicas`` seeds (default: its own seeds), without building its agent or environments."""
    r = len(trial.seeds) if replicas is None else int(replicas)
    per = _per_replica(trial)
    return MemoryEstimate(replicas=r, replay=r * per.replay, model=r * per.model, checkpoint=r * per.checkpoint,
                          activations=r * per.activations, envs=r * per.envs, process=PROCESS_BYTES,
                          on_gpu=_on_gpu(trial))


def available_memory() -> int:
    """Bytes this process may still allocate: the system's available memory, or less where a cgroup (a
    container's memory limit) leaves less."""
    import psutil

    avail = int(psutil.virtual_memory().available)
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            limit = Path("/sys/fs/cgroup", limit_file).read_text().strip()
            usage = Path("/sys/fs/cgroup", usage_file).read_text().strip()
        except OSError:
            continue
        if limit.isdigit() and usage.isdigit() and int(limit) < 2**60:
            avail = min(avail, max(0, int(limit) - int(usage)))
        break
    return avail


def check_memory(trial: Any, *, in_process: bool = True, available: int | None = None) -> MemoryEstimate:
    """Refuse ``trial`` with a one-line :class:`MemoryBudgetError` when its estimate exceeds the memory available.

    ``in_process``: the check runs inside the process that will train (``targetbench run``), whose fixed cost
    is already spent, so only the group's own bytes must fit. ``TARGETBENCH_SKIP_MEMORY_CHECK=1`` skips it (for
    a machine whose swap or overcommit the user trusts).
    """
    est = estimate_memory(trial)
    if os.environ.get("TARGETBENCH_SKIP_MEMORY_CHECK") == "1":
        return est
    avail = available_memory() if available is None else int(available)
    need = (est.host - est.process) if in_process else est.host
    if need > avail:
        per = max(1, est.host - est.process) / max(1, est.replicas)
        fit = int(max(0, avail) // per)
        raise MemoryBudgetError(f"{len(trial.seeds)} seeds of {trial.agent} on {trial.env} need about "
                           f"{est.describe()}, but {avail / 2**30:.2f} GiB is available; allowed: at most about "
                           f"{fit} seeds per run here (or a smaller buffer_size)")
    return est


def max_replicas(trial: Any, budget: int) -> int:
    """The most replicas of ``trial``'s config whose whole process (fixed cost included) fits ``budget`` bytes
    of host RAM (0 if not even one does)."""
    one = estimate_memory(trial, 1)
    per = one.host - one.process
    return max(0, int((budget - one.process) // max(1, per)))


def max_replicas_gpu(trial: Any, budget: int) -> int:
    """The most replicas of ``trial``'s config whose GPU share (CUDA context included) fits ``budget`` bytes."""
    one = estimate_memory(trial, 1)
    per = one.model + one.activations
    return max(0, int((budget - CUDA_CONTEXT_BYTES) // max(1, per)))


def gpu_memory() -> int:
    """Total memory of the first visible GPU in bytes (0 without one)."""
    try:
        import torch

        return int(torch.cuda.get_device_properties(0).total_memory) if torch.cuda.is_available() else 0
    except Exception:
        return 0
