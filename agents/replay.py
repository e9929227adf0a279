"""Uniform experience replay with one ring buffer per replica, stored as stacked tensors ``[R, capacity, ...]``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

__all__ = ["Batch", "ReplayBuffer"]


@dataclass
class Batch:
    """A minibatch per replica: every tensor is ``[R, B, ...]``."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor


class ReplayBuffer:
    """R ring buffers filled in lockstep (one transition per replica per env step).

    Observations keep the environment's dtype (uint8 frames stay uint8). Sampling draws each replica's
    indices from that replica's own generator, so replicas never share randomness.
    """

    def __init__(self, num_replicas: int, capacity: int, obs_shape: Sequence[int], obs_dtype: torch.dtype,
                 rngs: Sequence[np.random.Generator], device: torch.device | str = "cpu") -> None:
        self.num_replicas, self.capacity = num_replicas, capacity
        self.device = torch.device(device)
        self.rngs = list(rngs)
        shape = (num_replicas, capacity, *obs_shape)
        self.obs = torch.zeros(shape, dtype=obs_dtype, device=self.device)
        self.next_obs = torch.zeros(shape, dtype=obs_dtype, device=self.device)
        self.action = torch.zeros((num_replicas, capacity), dtype=torch.int64, device=self.device)
        self.reward = torch.zeros((num_replicas, capacity), dtype=torch.float32, device=self.device)
        self.terminated = torch.zeros((num_replicas, capacity), dtype=torch.float32, device=self.device)
        self.pos = 0
        self.size = 0
        self._rows = torch.arange(num_replicas, device=self.device).unsqueeze(1)

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray) -> None:
        """Store one transition for every replica (arrays with leading dimension R)."""
        i = self.pos
        self.obs[:, i] = torch.as_tensor(obs, device=self.device)
        self.next_obs[:, i] = torch.as_tensor(next_obs, device=self.device)
        self.action[:, i] = torch.as_tensor(action, device=self.device)
        self.reward[:, i] = torch.as_tensor(reward, device=self.device)
        self.terminated[:, i] = torch.as_tensor(terminated, device=self.device)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        """Uniform minibatch of ``batch_size`` per replica (with replacement, as in CleanRL / SB3)."""
        idx = np.stack([rng.integers(0, self.size, size=batch_size) for rng in self.rngs])
        idx_t = torch.from_numpy(idx).to(self.device)
        rows = self._rows
        return Batch(self.obs[rows, idx_t], self.action[rows, idx_t], self.reward[rows, idx_t],
                     self.next_obs[rows, idx_t], self.terminated[rows, idx_t])

    def nbytes(self) -> int:
        """Bytes held by the stored transitions of all replicas."""
        return sum(t.numel() * t.element_size() for t in (self.obs, self.next_obs, self.action, self.reward,
                                                            self.terminated))

    def state_dict(self) -> dict:
        n = self.size
        # Only the filled part is saved; before wrap-around that is a prefix.
        return {"obs": self.obs[:, :n].cpu(), "next_obs": self.next_obs[:, :n].cpu(),
                "action": self.action[:, :n].cpu(), "reward": self.reward[:, :n].cpu(),
                "terminated": self.terminated[:, :n].cpu(), "pos": self.pos, "size": self.size,
                "capacity": self.capacity, "rngs": [rng.bit_generator.state for rng in self.rngs]}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity or state["obs"].shape[0] != self.num_replicas:
            raise ValueError(f"replay state has capacity {state['capacity']} x {state['obs'].shape[0]} replicas; "
                             f"expected {self.capacity} x {self.num_replicas}")
        n = state["size"]
        for name in ("obs", "next_obs", "action", "reward", "terminated"):
            getattr(self, name)[:, :n] = state[name].to(self.device)
        self.pos, self.size = int(state["pos"]), int(n)
        for rng, s in zip(self.rngs, state["rngs"]):
            rng.bit_generator.state = s
