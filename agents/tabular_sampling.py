"""The transitions of each tabular step and their step sizes: every pair at once (sync) or one per run along an
epsilon-greedy trajectory, next states drawn by Walker's alias method, step sizes from a pair's update count.

Step sizes come from the number ``n`` of earlier updates of the pair (``n = 0`` at its first update), so in sync
mode ``n`` is the iteration count ``t``: rescaled linear ``1 / (1 + (1 - gamma) n)``, polynomial
``1 / (1 + n) ** omega`` or a constant. In ``"sync"`` sampling every (s, a) pair of every run is updated once per
step with its own sampled ``s'``; in ``"trajectory"`` sampling each run makes one transition along its own
behaviour trajectory. Run ``i`` draws from its own stream only, so its samples do not depend on how many runs share
the arrays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.tabular_rules import TabularBatch

__all__ = ["NextStateSampler", "StepSize", "SyncSampler", "TrajectorySampler"]

# Uniform draws per run per trajectory step: explore?, random action, next state, restart?, restart state.
_TRAJ_DRAWS = 5


class NextStateSampler:
    """Draws ``s' ~ P[s, a]`` for many (s, a) rows at once with Walker's alias method.

    Each draw costs a handful of vectorised operations on one uniform, whatever S is. The tables are
    built with the square-histogram (Robin Hood) construction vectorised over all S * A rows:
    O(S^3 A) work, well under a second for S in the low hundreds.
    """

    def __init__(self, P: np.ndarray) -> None:
        num_states, num_actions, _ = P.shape
        num_rows = num_states * num_actions
        mass = P.reshape(num_rows, num_states) * num_states  # mean 1 per row
        threshold = np.ones((num_rows, num_states))
        alias = np.tile(np.arange(num_states), (num_rows, 1))
        active = np.ones((num_rows, num_states), dtype=bool)
        rows = np.arange(num_rows)
        # Each pass settles one bucket per row: the smallest remaining mass (<= 1) is topped up from
        # the largest (>= 1, chosen among the other buckets), so zero-probability states are never drawn.
        for _ in range(num_states - 1):
            small = np.where(active, mass, np.inf).argmin(axis=1)
            active[rows, small] = False
            large = np.where(active, mass, -np.inf).argmax(axis=1)
            threshold[rows, small] = mass[rows, small]
            alias[rows, small] = large
            mass[rows, large] -= 1.0 - mass[rows, small]
        self._num_states = num_states
        # Stored as bucket + threshold so one comparison with u * S decides "keep the bucket".
        self._cutoff = (threshold + np.arange(num_states)).reshape(-1)
        self._alias = alias.reshape(-1)

    def sample(self, row: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Next states for rows ``row = s * A + a`` from uniforms ``u`` in [0, 1) (broadcast together).

        ``u`` must be below 1 (numpy's ``random()`` is); then ``floor(u * S) <= S - 1`` in float64.
        """
        x = u * self._num_states
        bucket = x.astype(np.int64)
        flat = bucket + row * self._num_states
        next_state = self._alias.take(flat)
        np.copyto(next_state, bucket, where=x < self._cutoff.take(flat))
        return next_state


@dataclass(frozen=True)
class StepSize:
    """Step-size schedule as a function of ``n``, the number of earlier updates of a pair.

    ``rescaled-linear``: 1 / (1 + (1 - gamma) n); ``polynomial``: 1 / (1 + n) ** omega with
    omega in (0.5, 1] (Robbins-Monro); ``constant``: alpha (does not converge, kept for ablations).
    """

    kind: str
    gamma: float
    omega: float = 0.8
    alpha: float = 0.1

    def __call__(self, n: np.ndarray | int) -> np.ndarray | float:
        """Step size for pairs updated ``n`` times before."""
        if self.kind == "rescaled-linear":
            return 1.0 / (1.0 + (1.0 - self.gamma) * n)
        if self.kind == "polynomial":
            return 1.0 / (1.0 + n) ** self.omega
        return self.alpha if np.isscalar(n) else np.full(np.shape(n), self.alpha)


def _chunk_len(draws_per_step: int) -> int:
    """Steps of random draws to make at once: enough to amortise the per-call cost, few enough that the
    chunk's arrays (~16k entries, 128 kB each) stay in cache, which makes sampling ~3x faster."""
    return int(max(1, min(4096, 16_384 // max(1, draws_per_step))))


class SyncSampler:
    """Every (s, a) of every run, each with its own ``s' ~ P[s, a]``, per step."""

    def __init__(self, P: np.ndarray, R: np.ndarray, rngs: list[np.random.Generator], schedule: StepSize) -> None:
        num_states, num_actions, _ = P.shape
        self._shape = (len(rngs), num_states, num_actions)
        self._next_state = NextStateSampler(P)
        self._rows = np.arange(num_states * num_actions)
        self._run_offset = (np.arange(len(rngs)) * num_states)[:, None]
        self._reward = np.broadcast_to(R, self._shape)
        self._index = (slice(None),) * 3
        self._rngs = rngs
        self._schedule = schedule
        self._chunk = np.empty((0,) + self._shape, dtype=np.int64)
        self._pos = 0
        self._t = 0

    def _refill(self) -> None:
        runs, num_states, num_actions = self._shape
        k = _chunk_len(runs * num_states * num_actions)
        # One stream per run: run i sees the same draws whatever the number of runs or the chunking.
        u = np.stack([rng.random((k, num_states * num_actions)) for rng in self._rngs], axis=1)
        flat_next = self._next_state.sample(self._rows, u) + self._run_offset
        self._chunk = flat_next.reshape((k,) + self._shape)
        self._pos = 0

    def batch(self, q: np.ndarray) -> TabularBatch:
        """The next step's transitions (``q`` is unused: sync sampling ignores the policy)."""
        if self._pos == len(self._chunk):
            self._refill()
        flat_next = self._chunk[self._pos]
        self._pos += 1
        alpha = self._schedule(self._t)
        self._t += 1
        return TabularBatch(self._index, self._reward, flat_next, alpha)


class TrajectorySampler:
    """One transition per run along an epsilon-greedy (w.r.t. the online table) behaviour trajectory.

    After each transition the run restarts from a uniformly drawn state with probability
    ``restart_prob`` (so every state keeps being visited even in MDPs with traps); the start state is
    uniform too. Greedy ties go to the lowest action index.
    """

    def __init__(
        self,
        P: np.ndarray,
        R: np.ndarray,
        rngs: list[np.random.Generator],
        schedule: StepSize,
        epsilon: float,
        restart_prob: float,
    ) -> None:
        num_states, num_actions, _ = P.shape
        self._num_states, self._num_actions = num_states, num_actions
        self._next_state = NextStateSampler(P)
        self._R = R
        self._rngs = rngs
        self._schedule = schedule
        self._epsilon = epsilon
        self._restart_prob = restart_prob
        self._runs = np.arange(len(rngs))
        self._visits = np.zeros((len(rngs), num_states, num_actions), dtype=np.int64)
        self._state = np.array([min(int(rng.random() * num_states), num_states - 1) for rng in rngs])
        self._chunk = np.empty((0, len(rngs), _TRAJ_DRAWS))
        self._pos = 0

    def batch(self, q: np.ndarray) -> TabularBatch:
        """The next transition of every run, acting epsilon-greedily on ``q``; advances the runs."""
        if self._pos == len(self._chunk):
            k = _chunk_len(len(self._rngs) * _TRAJ_DRAWS)
            self._chunk = np.stack([rng.random((k, _TRAJ_DRAWS)) for rng in self._rngs], axis=1)
            self._pos = 0
        u = self._chunk[self._pos]
        self._pos += 1
        runs, s, num_s, num_a = self._runs, self._state, self._num_states, self._num_actions
        random_action = np.minimum((u[:, 1] * num_a).astype(np.int64), num_a - 1)
        a = np.where(u[:, 0] < self._epsilon, random_action, q[runs, s].argmax(axis=1))
        s_next = self._next_state.sample(s * num_a + a, u[:, 2])
        n = self._visits[runs, s, a]
        self._visits[runs, s, a] = n + 1
        batch = TabularBatch.pairs(s, a, s_next, self._R, self._schedule(n))
        restart_state = np.minimum((u[:, 4] * num_s).astype(np.int64), num_s - 1)
        self._state = np.where(u[:, 3] < self._restart_prob, restart_state, s_next)
        return batch
