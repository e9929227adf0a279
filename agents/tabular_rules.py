"""Target rules in tabular form: one online step plus the target update, on numpy Q-tables of many runs at once.

This is the tabular form of the rules in ``docs/algorithms.md`` ("Tabular forms"), run by :mod:`agents.tabular` and
checked against value iteration. Each tabular rule is the same algorithm as its deep agent: same initialisation of
the target, same choice of which target entries the tracking step moves. The rules' names, knobs and deep
counterparts are declared once in :mod:`agents.target_registry`. The classes are named after the deep ones with a
``Tabular`` prefix and are not subclasses of the deep :class:`agents.targets.TargetRule`: a tabular rule also makes
the online step, which a deep agent's loss and optimizer make, and it moves numpy tables, not networks.

Conventions shared by all rules:

* Rewards are the expected rewards ``R[s, a]`` (deterministic); the only sampling noise is the next state
  ``s' ~ P[s, a]``.
* The online table starts at zero. The target table starts as a copy of it, except for the SGT2 rules with
  ``target_init="independent"`` (their default, as the deep ``sgt2-dqn``): there it is an independent draw,
  uniform in [-v, v] with v = max|R| / (1 - gamma) (the scale of the values, so the two tables start apart
  whatever the reward unit), from a stream of its own per run, so the sampled transitions stay those of every
  other rule with the same seed.
* Hard, soft, AGT2 and SGT2's mutual-tracking form move the target *after* the online step, from the updated
  online table (the order of a DQN training step: optimise, then update the target). SGT2's joint-td form
  updates both tables from the old values.
* The tracking step of AGT2 and SGT2 mutual-tracking moves, by default, every action of each visited state,
  ``Q-(s,.) += beta (Q(s,.) - Q-(s,.))``, because the deep tracking loss sums over all actions at the sampled
  state; ``track="pair"`` moves only the visited pair (the deep agents' ``track`` field offers the same
  choice). A state visited several times in one step (sync sampling visits each state once per action) moves
  once.

Knobs arrive validated (:class:`agents.tabular_settings.TabularSettings`); :func:`make_rule` builds a rule from them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from agents.tabular_settings import TabularSettings
from agents.target_registry import target_rule_spec

__all__ = ["TabularBatch", "TabularRule", "TabularNoTarget", "TabularHardUpdate", "TabularSoftUpdate", "TabularAGT2",
           "TabularSGT2", "TabularSGT2Mutual", "make_rule"]

# Above this many actions one numpy reduction beats a chain of elementwise maxima.
_CHAIN_MAX_ACTIONS = 8


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
        self.beta, self.track = float(beta), track

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
        self.eta, self.target_init = float(eta), target_init

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
        self.beta, self.track = float(beta), track

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


def make_rule(name: str, settings: TabularSettings | None = None) -> TabularRule:
    """The tabular form of rule ``name`` (one of :data:`agents.target_registry.RULES`) with the knobs of
    ``settings`` that its registry entry names (default settings when ``None``).

    Raises:
        ValueError: unknown name (one line listing the allowed rules).
    """
    spec = target_rule_spec(name)
    settings = settings if settings is not None else TabularSettings()
    return _TABULAR_FORMS[spec.name](**{knob: getattr(settings, knob) for knob in spec.knobs})
