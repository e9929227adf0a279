"""Tabular Q-learning with the TargetBench target rules, vectorised over independent runs.

This is the tabular form of the rules in ``docs/algorithms.md`` ("Tabular forms"), used to check each rule
against value iteration on a known finite MDP (:mod:`agents.mdp`). Each tabular rule is the same algorithm as its
deep agent: same initialisation of the target, same choice of which target entries the tracking step moves.
Everything is plain numpy: the MDP comes in as arrays ``P`` (S, A, S), ``R`` (S, A) and ``gamma``; the tables are
(runs, S, A) arrays and every run is updated at once.

The rules' names, knobs and deep counterparts are declared once in :mod:`agents.target_registry`, shared with the
deep rules. The classes here are named after the deep ones with a ``Tabular`` prefix (:class:`TabularNoTarget`,
:class:`TabularHardUpdate`, :class:`TabularSoftUpdate`, :class:`TabularAGT2`, :class:`TabularSGT2`,
:class:`TabularSGT2Mutual`; base :class:`TabularRule`, one step's transitions :class:`TabularBatch`) and are not
subclasses of the deep :class:`agents.targets.TargetRule`: a tabular rule also makes the online step, which a
deep agent's loss and optimizer make, and it moves numpy tables, not networks.

Conventions shared by all rules:

* Rewards are the expected rewards ``R[s, a]`` (deterministic); the only sampling noise is the next
  state ``s' ~ P[s, a]``.
* The online table starts at zero. The target table starts as a copy of it, except for the SGT2 rules with
  ``target_init="independent"`` (their default, as the deep ``sgt2-dqn``): there it is an independent draw,
  uniform in [-v, v] with v = max|R| / (1 - gamma) (the scale of the values, so the two tables start apart
  whatever the reward unit), from a stream of its own per run, so the sampled transitions stay those of every
  other rule with the same seed.
* A *step* is one update of every run: in ``"sync"`` sampling every (s, a) pair of every run is updated
  once per step with its own sampled ``s'`` (the generative-model setting of the convergence proofs);
  in ``"trajectory"`` sampling each run makes one transition along its own behaviour trajectory.
* Step sizes come from the number ``n`` of earlier updates of the pair (``n = 0`` at its first update),
  so in sync mode ``n`` is the iteration count ``t``: rescaled linear ``1 / (1 + (1 - gamma) n)``,
  polynomial ``1 / (1 + n) ** omega`` or a constant.
* Hard, soft, AGT2 and SGT2's mutual-tracking form move the target *after* the online step, from the updated
  online table (the order of a DQN training step: optimise, then update the target). SGT2's joint-td form
  updates both tables from the old values.
* The tracking step of AGT2 and SGT2 mutual-tracking moves, by default, every action of each visited state,
  ``Q-(s,.) += beta (Q(s,.) - Q-(s,.))``, because the deep tracking loss sums over all actions at the sampled
  state; ``track="pair"`` moves only the visited pair (the deep agents' ``track`` field offers the same
  choice). A state visited several times in one step (sync sampling visits each state once per action) moves
  once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from agents.mdp import q_value_iteration, validate_mdp_arrays
from agents.target_registry import TARGET_INITS, TRACKING, target_rule_spec

__all__ = [
    "SAMPLING_MODES",
    "STEP_SIZES",
    "TabularBatch",
    "TabularRule",
    "TabularNoTarget",
    "TabularHardUpdate",
    "TabularSoftUpdate",
    "TabularAGT2",
    "TabularSGT2",
    "TabularSGT2Mutual",
    "make_rule",
    "StepSize",
    "TabularResult",
    "check_settings",
    "run_tabular",
]

SAMPLING_MODES: tuple[str, ...] = ("sync", "trajectory")
STEP_SIZES: tuple[str, ...] = ("rescaled-linear", "polynomial", "constant")

# Above this many actions one numpy reduction beats a chain of elementwise maxima.
_CHAIN_MAX_ACTIONS = 8
# Uniform draws per run per trajectory step: explore?, random action, next state, restart?, restart state.
_TRAJ_DRAWS = 5


class _NextStateSampler:
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


# --------------------------------------------------------------------------------------------------
# One step's transitions


@dataclass(slots=True)
class TabularBatch:
    """The transitions of one step, for all runs.

    Attributes:
        index: indexes the updated entries of a (runs, S, A) table: three slices in sync mode (every
            entry), ``(run, state, action)`` integer arrays in trajectory mode (one entry per run).
        reward: ``R[s, a]`` of each updated entry, shaped like ``table[index]``.
        flat_next: ``run * S + s'`` of each updated entry, shaped like ``table[index]``.
        alpha: step size of each updated entry (scalar in sync mode).
    """

    index: tuple
    reward: np.ndarray
    flat_next: np.ndarray
    alpha: np.ndarray | float

    @classmethod
    def sync(cls, reward: np.ndarray, next_state: np.ndarray, alpha: float) -> TabularBatch:
        """Every pair of every run: ``next_state`` (runs, S, A) holds each pair's sampled ``s'``."""
        runs, num_states, _ = next_state.shape
        flat_next = np.asarray(next_state, dtype=np.int64) + (np.arange(runs) * num_states)[:, None, None]
        return cls((slice(None),) * 3, np.broadcast_to(reward, next_state.shape), flat_next, alpha)

    @classmethod
    def pairs(
        cls, state: np.ndarray, action: np.ndarray, next_state: np.ndarray, reward: np.ndarray, alpha: np.ndarray
    ) -> TabularBatch:
        """One pair per run: run ``i`` updates ``(state[i], action[i])`` with ``s' = next_state[i]``;
        ``reward`` is the (S, A) table, ``alpha`` the (runs,) step sizes."""
        runs = np.arange(len(state))
        return cls((runs, state, action), reward[state, action], runs * reward.shape[0] + next_state, alpha)

    @property
    def state_index(self) -> tuple:
        """Indexes the rows ``table[run, s, :]`` of the updated entries' states (every row in sync mode)."""
        return self.index[:2]

    def next_max(self, table: np.ndarray) -> np.ndarray:
        """``max_a' table[run, s', a']`` for each updated entry."""
        return _max_over_actions(table).reshape(-1).take(self.flat_next)


def _max_over_actions(table: np.ndarray) -> np.ndarray:
    """``table.max(axis=2)``; for few actions a chain of ``np.maximum`` is ~3x faster (this runs every step)."""
    num_actions = table.shape[2]
    if num_actions == 1 or num_actions > _CHAIN_MAX_ACTIONS:
        return table.max(axis=2)
    best = np.maximum(table[..., 0], table[..., 1])
    for a in range(2, num_actions):
        np.maximum(best, table[..., a], out=best)
    return best


# --------------------------------------------------------------------------------------------------
# Target rules: how the target table is formed and updated


class TabularRule(ABC):
    """A target rule in tabular form: one online step plus the target update, in place."""

    name: ClassVar[str]

    def init_target(self, q: np.ndarray, draw: Callable[[], np.ndarray]) -> np.ndarray:
        """The initial target table: a copy of the online table; ``draw()`` gives an independent random table
        for the rules that start apart."""
        return q.copy()

    @abstractmethod
    def update(self, q: np.ndarray, q_target: np.ndarray, batch: TabularBatch, gamma: float, step: int) -> None:
        """Apply one step to ``q`` and ``q_target`` in place; ``step`` is this step's 1-based number."""


def _td_error(batch: TabularBatch, current: np.ndarray, bootstrap: np.ndarray, gamma: float) -> np.ndarray:
    """``r + gamma max_a' bootstrap(s', a') - current`` at the batch's entries, as a new array.

    In-place arithmetic on the fresh array because this runs every step; the caller writes a table only
    after all its errors are computed, so the errors always see the old values.
    """
    error = batch.next_max(bootstrap)
    error *= gamma
    error += batch.reward
    error -= current
    return error


def _td_step(q: np.ndarray, bootstrap: np.ndarray, batch: TabularBatch, gamma: float) -> None:
    """Q(s,a) += alpha (r + gamma max_a' bootstrap(s', a') - Q(s,a)) at the batch's entries."""
    error = _td_error(batch, q[batch.index], bootstrap, gamma)
    error *= batch.alpha
    q[batch.index] += error


def _check_beta(beta: float, rule: str) -> float:
    if not 0.0 < beta <= 1.0:
        raise ValueError(f"beta = {beta!r}, the {rule} target step size must be in (0, 1]")
    return float(beta)


def _check_eta(eta: float) -> float:
    if not eta >= 0.0:
        raise ValueError(f"eta = {eta!r}, the SGT2 coupling must be >= 0")
    return float(eta)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}, allowed: {', '.join(allowed)}")
    return value


def _track_step(q: np.ndarray, q_target: np.ndarray, batch: TabularBatch, beta: float, track: str) -> None:
    """The tracking step: one SGD step of size beta on 1/2 (Q - Q-)^2 summed over every action of each visited
    state (``track="state"``, as the deep tracking loss) or at the visited pair only (``track="pair"``)."""
    index = batch.state_index if track == "state" else batch.index
    q_target[index] += beta * (q[index] - q_target[index])


class TabularNoTarget(TabularRule):
    """No target: Q(s,a) += alpha (r + gamma max Q(s',.) - Q(s,a)), classic Q-learning (Watkins 1989).

    The target table *is* the online table (the tabular form of bootstrapping from sg(theta)).
    Deep form: :class:`agents.targets.NoTarget` (agent ``dqn-no-target``).
    """

    name = "target-free"

    def init_target(self, q: np.ndarray, draw: Callable[[], np.ndarray]) -> np.ndarray:
        """The online table itself, so the target error equals the online error."""
        return q

    def update(self, q: np.ndarray, q_target: np.ndarray, batch: TabularBatch, gamma: float, step: int) -> None:
        """One Q-learning step bootstrapping from the online table."""
        _td_step(q, q, batch, gamma)


class TabularHardUpdate(TabularRule):
    """Hard target (Mnih et al. 2015), tabular form: bootstrap from Q-; Q- <- Q every ``period`` steps.

    The copy happens after the online step of every step whose number is a multiple of ``period``.
    Deep form: :class:`agents.targets.HardUpdate` (agent ``dqn``, whose ``target_period`` is this ``period``).
    """

    name = "hard"

    def __init__(self, period: int) -> None:
        if isinstance(period, bool) or int(period) != period or period < 1:
            raise ValueError(f"period = {period!r}, the hard-target period C must be an integer >= 1")
        self.period = int(period)

    def update(self, q: np.ndarray, q_target: np.ndarray, batch: TabularBatch, gamma: float, step: int) -> None:
        """Online step from the target table, then copy at multiples of the period."""
        _td_step(q, q_target, batch, gamma)
        if step % self.period == 0:
            q_target[...] = q


class TabularSoftUpdate(TabularRule):
    """Soft (Polyak) target (Lillicrap et al. 2016), tabular form: Q- <- Q- + tau (Q - Q-) over the whole
    table every step, after the online step (which bootstraps from Q-).

    Deep form: :class:`agents.targets.SoftUpdate` (agent ``dqn-soft`` with ``soft_every=1``).
    """

    name = "soft"

    def __init__(self, tau: float) -> None:
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"tau = {tau!r}, the soft-target rate must be in (0, 1]")
        self.tau = float(tau)

    def update(self, q: np.ndarray, q_target: np.ndarray, batch: TabularBatch, gamma: float, step: int) -> None:
        """Online step from the target table, then Polyak averaging of the whole target table."""
        _td_step(q, q_target, batch, gamma)
        q_target += self.tau * (q - q_target)


class TabularAGT2(TabularRule):
    """Asymmetric gradient target tracking, tabular form; our **reading** of Park, Lee, Lee 2025
    (arXiv 2503.16700), see docs/algorithms.md.

    Online: Q(s,a) += alpha (r + gamma max Q-(s',.) - Q(s,a)). Target, after the online step: one SGD step of
    size beta on the tracking loss. By default (``track="state"``) that loss is the deep agent's,
    1/2 sum_a (Q(s,a) - Q-(s,a))^2 over every action of the visited state, so Q-(s,.) += beta (Q(s,.) - Q-(s,.));
    ``track="pair"`` moves only Q-(s,a). The target starts as a copy of the online table, as the deep target.
    In sync mode every state is visited, so both choices equal soft with tau = beta; they differ on
    trajectories.

    Deep form: :class:`agents.gradient_targets.GradientTrackingTarget` (agent ``agt2-dqn``).
    """

    name = "agt2"

    def __init__(self, beta: float, track: str = "state") -> None:
        self.beta = _check_beta(beta, "AGT2")
        self.track = _check_choice("track", track, TRACKING)

    def update(self, q: np.ndarray, q_target: np.ndarray, batch: TabularBatch, gamma: float, step: int) -> None:
        """Online step from the target table, then pull the target toward Q at the visited states (or pairs)."""
        _td_step(q, q_target, batch, gamma)
        _track_step(q, q_target, batch, self.beta, self.track)


class TabularSGT2(TabularRule):
    """Symmetric gradient target tracking, joint-td form (the deep ``sgt2-dqn`` default), tabular form; our
    **reading** of Park, Lee, Lee 2025 (arXiv 2503.16700), see docs/algorithms.md.

    Both tables learn, each bootstrapping from the other and coupled with strength ``eta``; both updates
    use the old values:
    Q(s,a)  += alpha [(r + gamma max Q-(s',.) - Q(s,a))  - eta (Q(s,a) - Q-(s,a))]
    Q-(s,a) += alpha [(r + gamma max Q(s',.)  - Q-(s,a)) - eta (Q-(s,a) - Q(s,a))].
    The difference Q - Q- is multiplied by about (1 - alpha (1 + 2 eta)) per update, so it stays
    bounded when alpha (1 + 2 eta) <= 2; with alpha_0 = 1 this needs eta <= 0.5.

    Started from equal tables this is exactly target-free Q-learning (the updates are symmetric), so by
    default (``target_init="independent"``, as the deep agent) the target table starts as an independent
    random draw; ``"copy"`` starts it equal to the online table.

    Deep form: :class:`agents.gradient_targets.JointTarget` (agent ``sgt2-dqn``, ``form=joint-td``).
    """

    name = "sgt2"

    def __init__(self, eta: float, target_init: str = "independent") -> None:
        self.eta = _check_eta(eta)
        self.target_init = _check_choice("target_init", target_init, TARGET_INITS)

    def init_target(self, q: np.ndarray, draw: Callable[[], np.ndarray]) -> np.ndarray:
        """An independent random table (``target_init="independent"``) or a copy of the online table."""
        return draw() if self.target_init == "independent" else q.copy()

    def update(self, q: np.ndarray, q_target: np.ndarray, batch: TabularBatch, gamma: float, step: int) -> None:
        """Both tables step toward their bootstrap from the other table and toward each other."""
        old, old_target = q[batch.index], q_target[batch.index]
        error = _td_error(batch, old, q_target, gamma)
        error_target = _td_error(batch, old_target, q, gamma)
        coupling = self.eta * (old - old_target)
        error -= coupling
        error_target += coupling
        error *= batch.alpha
        error_target *= batch.alpha
        # Neither table is written until both increments exist: both updates use the old values.
        q[batch.index] += error
        q_target[batch.index] += error_target


class TabularSGT2Mutual(TabularSGT2):
    """Symmetric gradient target tracking, mutual-tracking form (deep ``sgt2-dqn`` with
    ``form=mutual-tracking``), tabular form; our **reading** of Park, Lee, Lee 2025 (arXiv 2503.16700), see
    docs/algorithms.md.

    Online: Q(s,a) += alpha [(r + gamma max Q-(s',.) - Q(s,a)) - eta (Q(s,a) - Q-(s,a))]. Target, after the
    online step: AGT2's tracking step of size beta (every action of the visited state by default,
    ``track="pair"`` for the visited pair only). The target starts as an independent draw by default
    (``target_init``), as the deep agent's. With eta = 0 and ``target_init="copy"`` this is AGT2.

    Deep form: agent ``sgt2-dqn`` with ``form=mutual-tracking`` (its target rule is
    :class:`agents.gradient_targets.GradientTrackingTarget`, as AGT2's).
    """

    name = "sgt2-mutual"

    def __init__(self, eta: float, beta: float, track: str = "state", target_init: str = "independent") -> None:
        super().__init__(eta, target_init)
        self.beta = _check_beta(beta, "SGT2 mutual-tracking")
        self.track = _check_choice("track", track, TRACKING)

    def update(self, q: np.ndarray, q_target: np.ndarray, batch: TabularBatch, gamma: float, step: int) -> None:
        """Online step from the target table with the pull toward it, then the tracking step of the target."""
        old = q[batch.index]
        error = _td_error(batch, old, q_target, gamma)
        error -= self.eta * (old - q_target[batch.index])
        error *= batch.alpha
        q[batch.index] += error
        _track_step(q, q_target, batch, self.beta, self.track)


#: the tabular form of each registered rule
_TABULAR_FORMS: dict[str, type[TabularRule]] = {cls.name: cls for cls in (
    TabularNoTarget, TabularHardUpdate, TabularSoftUpdate, TabularAGT2, TabularSGT2, TabularSGT2Mutual)}


def make_rule(
    name: str, *, period: int = 100, tau: float = 0.01, beta: float = 0.1, eta: float = 0.5,
    track: str = "state", target_init: str = "independent",
) -> TabularRule:
    """The tabular form of rule ``name`` (one of :data:`agents.target_registry.RULES`) with its knobs; the knobs
    the rule does not have (its registry entry's ``knobs``) are ignored.

    ``track`` applies to agt2 and sgt2-mutual, ``target_init`` to sgt2 and sgt2-mutual (see
    :data:`~agents.target_registry.TRACKING`, :data:`~agents.target_registry.TARGET_INITS`).

    Raises:
        ValueError: unknown name or knob out of range.
    """
    spec = target_rule_spec(name)
    given = {"period": period, "tau": tau, "beta": beta, "eta": eta, "track": track, "target_init": target_init}
    return _TABULAR_FORMS[spec.name](**{knob: given[knob] for knob in spec.knobs})


# --------------------------------------------------------------------------------------------------
# Step sizes and samplers


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

    def __post_init__(self) -> None:
        if self.kind not in STEP_SIZES:
            raise ValueError(f"unknown step size {self.kind!r}, allowed: {', '.join(STEP_SIZES)}")
        if self.kind == "polynomial" and not 0.5 < self.omega <= 1.0:
            raise ValueError(f"omega = {self.omega!r}, the polynomial step-size exponent must be in (0.5, 1]")
        if self.kind == "constant" and not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha = {self.alpha!r}, the constant step size must be in (0, 1]")

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


class _SyncSampler:
    """Every (s, a) of every run, each with its own ``s' ~ P[s, a]``, per step."""

    def __init__(self, P: np.ndarray, R: np.ndarray, rngs: list[np.random.Generator], schedule: StepSize) -> None:
        num_states, num_actions, _ = P.shape
        self._shape = (len(rngs), num_states, num_actions)
        self._next_state = _NextStateSampler(P)
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


class _TrajectorySampler:
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
        self._next_state = _NextStateSampler(P)
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


# --------------------------------------------------------------------------------------------------
# Driver


@dataclass(frozen=True)
class TabularResult:
    """Errors and final tables of :func:`run_tabular`.

    Attributes:
        rule: the target rule's name.
        sampling: ``"sync"`` or ``"trajectory"``.
        steps: (points,) step numbers at which the errors were logged (log-spaced, ends at the budget).
        err_online: (runs, points) ``||Q_t - Q*||_inf`` per run.
        err_target: (runs, points) the same for the target table.
        Q: (runs, S, A) final online tables.
        Q_target: (runs, S, A) final target tables.
        q_star: (S, A) the reference ``Q*``.
    """

    rule: str
    sampling: str
    steps: np.ndarray
    err_online: np.ndarray
    err_target: np.ndarray
    Q: np.ndarray
    Q_target: np.ndarray
    q_star: np.ndarray


def _log_steps(steps: int, points: int) -> np.ndarray:
    """About ``points`` log-spaced step numbers in [1, steps], always including ``steps``."""
    return np.unique(np.round(np.geomspace(1, steps, num=max(points, 1))).astype(np.int64)).clip(1, steps)


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} = {value!r}, {name} must be an integer >= 1")
    return int(value)


def check_settings(
    rule: str,
    *,
    gamma: float,
    steps: int = 1,
    runs: int = 1,
    sampling: str = "sync",
    step_size: str = "rescaled-linear",
    omega: float = 0.8,
    alpha: float = 0.1,
    period: int = 100,
    tau: float = 0.01,
    beta: float = 0.1,
    eta: float = 0.5,
    track: str = "state",
    target_init: str = "independent",
    epsilon: float = 0.1,
    restart_prob: float = 0.01,
    log_points: int = 50,
) -> tuple[TabularRule, StepSize]:
    """Validate the settings of :func:`run_tabular` (same meaning) without running anything.

    Lets a caller that runs several rules reject a bad knob before spending time on the first rule.

    Returns:
        The target rule and the step-size schedule the settings describe.

    Raises:
        ValueError: one line naming the bad setting and what is allowed.
    """
    _positive_int("steps", steps)
    _positive_int("runs", runs)
    _positive_int("log_points", log_points)
    if sampling not in SAMPLING_MODES:
        raise ValueError(f"unknown sampling {sampling!r}, allowed: {', '.join(SAMPLING_MODES)}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon = {epsilon!r}, the exploration rate must be in [0, 1]")
    if not 0.0 <= restart_prob <= 1.0:
        raise ValueError(f"restart_prob = {restart_prob!r}, the restart probability must be in [0, 1]")
    # Checked whatever the rule, so a bad value is rejected even where the rule ignores it.
    _check_choice("track", track, TRACKING)
    _check_choice("target_init", target_init, TARGET_INITS)
    target_rule = make_rule(rule, period=period, tau=tau, beta=beta, eta=eta, track=track, target_init=target_init)
    return target_rule, StepSize(step_size, gamma, omega=omega, alpha=alpha)


def run_tabular(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    rule: str,
    *,
    steps: int,
    runs: int,
    seed: int,
    sampling: str = "sync",
    step_size: str = "rescaled-linear",
    omega: float = 0.8,
    alpha: float = 0.1,
    period: int = 100,
    tau: float = 0.01,
    beta: float = 0.1,
    eta: float = 0.5,
    track: str = "state",
    target_init: str = "independent",
    epsilon: float = 0.1,
    restart_prob: float = 0.01,
    q_star: np.ndarray | None = None,
    log_points: int = 50,
) -> TabularResult:
    """Run tabular Q-learning with target rule ``rule`` for ``runs`` independent runs at once.

    Args:
        P, R, gamma: the finite MDP, (S, A, S) transition probabilities, (S, A) expected rewards,
            discount in [0, 1).
        rule: one of :data:`agents.target_registry.RULES`.
        steps: number of steps (sync: sweeps over every pair; trajectory: transitions per run).
        runs: number of independent runs; run ``i`` draws from its own stream, spawned from ``seed``,
            so its samples do not depend on ``runs``.
        seed: seed of the random streams.
        sampling: ``"sync"`` (every pair each step) or ``"trajectory"`` (epsilon-greedy behaviour with
            restarts).
        step_size, omega, alpha: step-size schedule, see :class:`StepSize`.
        period, tau, beta, eta: knobs of hard (C), soft, AGT2 / SGT2 mutual-tracking (beta) and the SGT2 forms
            (eta); defaults converge within the ``targetbench convergence`` default budget (200k sync steps) on
            small random MDPs.
        track: which target entries the tracking step of agt2 and sgt2-mutual moves, see
            :data:`agents.target_registry.TRACKING`.
        target_init: how sgt2 and sgt2-mutual start the target table, see
            :data:`agents.target_registry.TARGET_INITS`.
        epsilon: exploration rate of the trajectory behaviour (1 = uniform random actions).
        restart_prob: per-step probability of restarting a trajectory at a uniform random state.
        q_star: reference ``Q*``; computed by value iteration to 1e-10 when omitted.
        log_points: about how many log-spaced steps to record errors at.

    Returns:
        A :class:`TabularResult`.

    Raises:
        ValueError: one line, for any invalid argument.
    """
    P, R, gamma = validate_mdp_arrays(P, R, gamma)
    target_rule, schedule = check_settings(
        rule, gamma=gamma, steps=steps, runs=runs, sampling=sampling, step_size=step_size, omega=omega,
        alpha=alpha, period=period, tau=tau, beta=beta, eta=eta, track=track, target_init=target_init,
        epsilon=epsilon, restart_prob=restart_prob, log_points=log_points,
    )
    steps, runs = int(steps), int(runs)
    if q_star is None:
        q_star = q_value_iteration(P, R, gamma)
    q_star = np.asarray(q_star, dtype=np.float64)
    if q_star.shape != R.shape:
        raise ValueError(f"q_star has shape {q_star.shape}, must be (S, A) = {R.shape}")

    seqs = np.random.SeedSequence(seed).spawn(runs)
    rngs = [np.random.default_rng(s) for s in seqs]
    if sampling == "sync":
        sampler: _SyncSampler | _TrajectorySampler = _SyncSampler(P, R, rngs, schedule)
    else:
        sampler = _TrajectorySampler(P, R, rngs, schedule, epsilon, restart_prob)

    q = np.zeros((runs,) + R.shape)

    def draw() -> np.ndarray:
        # Each run's own init stream (a child of its sampling seed): the sampling draws are untouched, and
        # run i's table does not depend on the number of runs.
        v = float(np.max(np.abs(R))) / (1.0 - gamma)
        children = [np.random.SeedSequence(s.entropy, spawn_key=s.spawn_key + (0,)) for s in seqs]
        return np.stack([np.random.default_rng(c).uniform(-v, v, R.shape) for c in children])

    q_target = target_rule.init_target(q, draw)
    log_at = _log_steps(steps, log_points)
    err_online = np.empty((runs, len(log_at)))
    err_target = np.empty((runs, len(log_at)))
    k = 0
    for step in range(1, steps + 1):
        target_rule.update(q, q_target, sampler.batch(q), gamma, step)
        if step == log_at[k]:
            err_online[:, k] = np.abs(q - q_star).max(axis=(1, 2))
            err_target[:, k] = np.abs(q_target - q_star).max(axis=(1, 2))
            k += 1
    return TabularResult(
        rule=rule,
        sampling=sampling,
        steps=log_at,
        err_online=err_online,
        err_target=err_target,
        Q=q.copy(),
        Q_target=q_target.copy(),
        q_star=q_star.copy(),
    )
