"""Tabular Q-learning with the TargetBench target rules, vectorised over independent runs.

:func:`run_tabular` runs one rule (:mod:`agents.tabular_rules`) on a finite MDP given as arrays ``P`` (S, A, S),
``R`` (S, A) and ``gamma`` (:mod:`agents.finite_mdp`), with the transitions and step sizes of
:mod:`agents.tabular_sampling` and the settings of :class:`agents.tabular_settings.TabularSettings`, and records
``||Q_t - Q*||_inf`` of the online and the target table against ``Q*`` from value iteration. The tables are
(runs, S, A) arrays and every run is updated at once; a *step* is one update of every run. Plain numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.finite_mdp import q_value_iteration, validate_mdp_arrays
from agents.tabular_rules import TabularRule, make_rule
from agents.tabular_sampling import StepSize, SyncSampler, TrajectorySampler
from agents.tabular_settings import TabularSettings

__all__ = ["TabularResult", "check_settings", "run_tabular"]


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


def check_settings(rule: str, settings: TabularSettings, gamma: float) -> tuple[TabularRule, StepSize]:
    """The target rule and the step-size schedule ``settings`` describe for ``rule``, without running anything
    (``settings`` were checked when made), so a caller that runs several rules rejects a bad rule name first.

    Raises:
        ValueError: unknown rule (one line listing the allowed rules).
    """
    return make_rule(rule, settings), StepSize(settings.step_size, gamma, omega=settings.omega, alpha=settings.alpha)


def run_tabular(P: np.ndarray, R: np.ndarray, gamma: float, rule: str, settings: TabularSettings, *, seed: int,
                q_star: np.ndarray | None = None) -> TabularResult:
    """Run tabular Q-learning with target rule ``rule`` for ``settings.runs`` independent runs at once.

    Args:
        P, R, gamma: the finite MDP, (S, A, S) transition probabilities, (S, A) expected rewards,
            discount in [0, 1).
        rule: one of :data:`agents.target_registry.RULES`.
        settings: steps, runs, sampling, step sizes, the rule's knobs (:class:`TabularSettings`).
        seed: seed of the random streams; run ``i`` draws from its own stream, spawned from ``seed``, so its
            samples do not depend on the number of runs.
        q_star: reference ``Q*``; computed by value iteration to 1e-10 when omitted.

    Returns:
        A :class:`TabularResult`.

    Raises:
        ValueError: one line, for an invalid MDP, rule or ``q_star``.
    """
    P, R, gamma = validate_mdp_arrays(P, R, gamma)
    target_rule, schedule = check_settings(rule, settings, gamma)
    steps, runs = settings.steps, settings.runs
    if q_star is None:
        q_star = q_value_iteration(P, R, gamma)
    q_star = np.asarray(q_star, dtype=np.float64)
    if q_star.shape != R.shape:
        raise ValueError(f"q_star has shape {q_star.shape}, must be (S, A) = {R.shape}")

    seqs = np.random.SeedSequence(seed).spawn(runs)
    rngs = [np.random.default_rng(s) for s in seqs]
    if settings.sampling == "sync":
        sampler: SyncSampler | TrajectorySampler = SyncSampler(P, R, rngs, schedule)
    else:
        sampler = TrajectorySampler(P, R, rngs, schedule, settings.epsilon, settings.restart_prob)

    q = np.zeros((runs,) + R.shape)

    def draw() -> np.ndarray:
        # Each run's own init stream (a child of its sampling seed): the sampling draws are untouched, and
        # run i's table does not depend on the number of runs.
        v = float(np.max(np.abs(R))) / (1.0 - gamma)
        children = [np.random.SeedSequence(s.entropy, spawn_key=s.spawn_key + (0,)) for s in seqs]
        return np.stack([np.random.default_rng(c).uniform(-v, v, R.shape) for c in children])

    q_target = target_rule.init_target(q, draw)
    log_at = _log_steps(steps, settings.log_points)
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
        sampling=settings.sampling,
        steps=log_at,
        err_online=err_online,
        err_target=err_target,
        Q=q.copy(),
        Q_target=q_target.copy(),
        q_star=q_star.copy(),
    )
