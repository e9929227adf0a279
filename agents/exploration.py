"""ε-greedy exploration: ε schedules over env steps and per-replica random streams."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

__all__ = ["EpsilonSchedule", "LinearSchedule", "ExponentialSchedule", "ExponentialGapSchedule", "EpsilonGreedy"]


class EpsilonSchedule:
    """ε as a function of the env step t (t counts env steps per replica, from 0)."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError


class LinearSchedule(EpsilonSchedule):
    """ε falls linearly from ``start`` to ``end`` over ``duration`` steps, then stays at ``end`` (CleanRL)."""

    def __init__(self, start: float, end: float, duration: int) -> None:
        self.start, self.end, self.duration = start, end, max(1, duration)

    def __call__(self, step: int) -> float:
        frac = min(1.0, step / self.duration)
        return self.start + frac * (self.end - self.start)


class ExponentialSchedule(EpsilonSchedule):
    """ε = start·ρ^t with ρ chosen so that ε reaches ``end`` at ``duration`` steps; ``end`` afterwards."""

    def __init__(self, start: float, end: float, duration: int) -> None:
        self.start, self.end, self.duration = start, end, max(1, duration)
        # ε_end = 0 would need ρ = 0: decay to a small floor instead, then clamp.
        self.log_rate = (math.log(max(end, 1e-6)) - math.log(max(start, 1e-6))) / self.duration

    def __call__(self, step: int) -> float:
        if step >= self.duration:
            return self.end
        return max(self.end, self.start * math.exp(self.log_rate * step))


class ExponentialGapSchedule(EpsilonSchedule):
    """ε = end + (start − end)·exp(−t / time_constant): the gap to ``end`` shrinks by e every ``time_constant``
    steps and never closes. The PyTorch "Reinforcement Learning (DQN) Tutorial" schedule (``EPS_DECAY`` is the
    time constant; t is its ``steps_done``, the number of actions taken before this one)."""

    def __init__(self, start: float, end: float, time_constant: int) -> None:
        self.start, self.end, self.time_constant = start, end, max(1, time_constant)

    def __call__(self, step: int) -> float:
        # the tutorial's expression as written: EPS_END + (EPS_START - EPS_END) * math.exp(-1. * steps_done / EPS_DECAY)
        return self.end + (self.start - self.end) * math.exp(-1. * step / self.time_constant)


class EpsilonGreedy:
    """Per-replica ε-greedy choice. Each replica draws from its own generator, in blocks to keep the
    per-step cost low; a replica's stream of draws is the same whatever other replicas share the batch."""

    BLOCK = 1024

    def __init__(self, rngs: Sequence[np.random.Generator], num_actions: int) -> None:
        self.rngs = list(rngs)
        self.num_actions = num_actions
        self._block = np.empty((len(self.rngs), self.BLOCK, 2))
        self._pos = self.BLOCK

    def _draws(self) -> np.ndarray:
        if self._pos == self.BLOCK:
            for r, rng in enumerate(self.rngs):
                self._block[r] = rng.random((self.BLOCK, 2))
            self._pos = 0
        u = self._block[:, self._pos]
        self._pos += 1
        return u

    def select(self, greedy_actions: np.ndarray, epsilon: float) -> np.ndarray:
        """Replace each replica's greedy action by a uniform one with probability ε (one coin per replica)."""
        u = self._draws()
        random_actions = (u[:, 1] * self.num_actions).astype(np.int64)
        return np.where(u[:, 0] < epsilon, random_actions, greedy_actions)

    def choose(self, greedy: Callable[[], np.ndarray], epsilon: float) -> np.ndarray:
        """Like :meth:`select`, but calls ``greedy()`` only if some replica acts greedily at this step.
        Draws exactly what :meth:`select` draws, so the two give the same actions and leave the same state."""
        u = self._draws()
        if u.shape[0] == 1:  # one replica: the same decision on python floats (int() truncates like astype)
            coin, pick = u[0].tolist()
            if coin < epsilon:
                return np.array([int(pick * self.num_actions)], dtype=np.int64)
            return np.asarray(greedy(), dtype=np.int64).reshape(1)
        explore = u[:, 0] < epsilon
        random_actions = (u[:, 1] * self.num_actions).astype(np.int64)
        if explore.all():
            return random_actions
        return np.where(explore, random_actions, greedy())

    def state_dict(self) -> dict:
        return {"rngs": [rng.bit_generator.state for rng in self.rngs],
                "block": torch.from_numpy(self._block.copy()), "pos": self._pos}

    def load_state_dict(self, state: dict) -> None:
        for rng, s in zip(self.rngs, state["rngs"]):
            rng.bit_generator.state = s
        self._block[...] = state["block"].numpy()
        self._pos = int(state["pos"])
