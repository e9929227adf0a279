"""Tabular target rules: one hand-computed update per rule, the driver's bookkeeping, sampling, and that no rule is
target-free Q-learning in disguise."""

from __future__ import annotations

import numpy as np
import pytest

from agents.finite_mdp import q_value_iteration
from agents.tabular import run_tabular
from agents.tabular_rules import TabularBatch, make_rule
from agents.tabular_sampling import NextStateSampler, StepSize
from agents.tabular_settings import TabularSettings
from agents.target_registry import RULES, TARGET_INITS, TRACKING

# A 2-state, 2-action MDP with deterministic transitions: action a always leads to state a, so the
# sampled s' of (s, a) is a. gamma = 1/2 and alpha = 1/2 keep every hand-computed value exact.
GAMMA = 0.5
ALPHA = 0.5
P_DET = np.zeros((2, 2, 2))
P_DET[:, 0, 0] = 1.0
P_DET[:, 1, 1] = 1.0
R = np.array([[1.0, 2.0], [3.0, 4.0]])
NEXT = np.array([[[0, 1], [0, 1]]])  # (runs=1, S, A): s' = a
# Tables before the update; max over actions per state: Q -> [2, 4], Q- -> [1, 5].
Q0 = np.array([[[1.0, 2.0], [3.0, 4.0]]])
QT0 = np.array([[[0.0, 1.0], [5.0, 2.0]]])


def run(P, R_, gamma, rule, *, seed, q_star=None, **settings):
    """``run_tabular`` with the settings given as keywords (checked when the settings are made)."""
    return run_tabular(P, R_, gamma, rule, TabularSettings(**settings), seed=seed, q_star=q_star)


def rule_of(name, **knobs):
    """The tabular rule ``name`` with the given knobs."""
    return make_rule(name, TabularSettings(**knobs))


def _tables() -> tuple[np.ndarray, np.ndarray]:
    return Q0.copy(), QT0.copy()


def _sync_batch() -> TabularBatch:
    return TabularBatch.sync(R, NEXT, ALPHA)


# Online step bootstrapping from Q- (hard, soft, AGT2), Q(s,a) + 1/2 (r + 1/2 max Q-(a) - Q(s,a)):
# (0,0): 1 + (1 + 0.5*1 - 1)/2 = 1.25     (0,1): 2 + (2 + 0.5*5 - 2)/2 = 3.25
# (1,0): 3 + (3 + 0.5*1 - 3)/2 = 3.25     (1,1): 4 + (4 + 0.5*5 - 4)/2 = 5.25
Q_FROM_TARGET = np.array([[[1.25, 3.25], [3.25, 5.25]]])


def test_target_free_update_by_hand() -> None:
    rule = rule_of("target-free")
    q = Q0.copy()
    q_target = rule.init_target(q, lambda: q + 1.0)
    assert q_target is q  # the target is the online table itself
    rule.update(q, q_target, _sync_batch(), GAMMA, step=1)
    # Q(s,a) + 1/2 (r + 1/2 max Q(a) - Q(s,a)) with the OLD Q in the bootstrap:
    # (0,0): 1 + (1 + 1 - 1)/2 = 1.5   (0,1): 2 + (2 + 2 - 2)/2 = 3
    # (1,0): 3 + (3 + 1 - 3)/2 = 3.5   (1,1): 4 + (4 + 2 - 4)/2 = 5
    assert np.array_equal(q, [[[1.5, 3.0], [3.5, 5.0]]])


def test_hard_update_copies_only_at_multiples_of_period() -> None:
    rule = rule_of("hard", period=3)
    q, q_target = _tables()
    rule.update(q, q_target, _sync_batch(), GAMMA, step=2)
    assert np.array_equal(q, Q_FROM_TARGET)
    assert np.array_equal(q_target, QT0)  # step 2: no copy
    q, q_target = _tables()
    rule.update(q, q_target, _sync_batch(), GAMMA, step=3)
    assert np.array_equal(q, Q_FROM_TARGET)
    assert np.array_equal(q_target, Q_FROM_TARGET)  # step 3: copy after the online step


def test_soft_update_moves_the_whole_table() -> None:
    rule = rule_of("soft", tau=0.25)
    q, q_target = _tables()
    rule.update(q, q_target, _sync_batch(), GAMMA, step=1)
    assert np.array_equal(q, Q_FROM_TARGET)
    # Q- + 1/4 (Q_new - Q-): 0 + 1.25/4, 1 + 2.25/4, 5 - 1.75/4, 2 + 3.25/4
    assert np.array_equal(q_target, [[[0.3125, 1.5625], [4.5625, 2.8125]]])


def _visit_1_0() -> TabularBatch:
    """One run visits (s=1, a=0) and lands in s'=0."""
    return TabularBatch.pairs(np.array([1]), np.array([0]), np.array([0]), R, np.array([ALPHA]))


def test_agt2_tracks_every_action_of_the_visited_state_by_default() -> None:
    # The deep tracking loss sums over all actions at s, so the tabular default moves the row Q-(s,.).
    q, q_target = _tables()
    rule_of("agt2", beta=0.25).update(q, q_target, _visit_1_0(), GAMMA, step=1)
    # Q(1,0) = 3 + (3 + 0.5*max Q-(0) - 3)/2 = 3.25; Q-(1,0) = 5 + (3.25 - 5)/4 = 4.5625,
    # Q-(1,1) = 2 + (4 - 2)/4 = 2.5; state 0 unchanged.
    assert np.array_equal(q, [[[1.0, 2.0], [3.25, 4.0]]])
    assert np.array_equal(q_target, [[[0.0, 1.0], [4.5625, 2.5]]])
    # Soft on the same transition moves every entry of the target: the difference between the rules.
    q, q_target = _tables()
    rule_of("soft", tau=0.25).update(q, q_target, _visit_1_0(), GAMMA, step=1)
    assert np.array_equal(q_target, [[[0.25, 1.25], [4.5625, 2.5]]])


def test_agt2_pair_tracking_moves_only_the_visited_pair() -> None:
    q, q_target = _tables()
    rule_of("agt2", beta=0.25, track="pair").update(q, q_target, _visit_1_0(), GAMMA, step=1)
    assert np.array_equal(q, [[[1.0, 2.0], [3.25, 4.0]]])
    assert np.array_equal(q_target, [[[0.0, 1.0], [4.5625, 2.0]]])


def test_agt2_in_sync_mode_updates_every_pair() -> None:
    q, q_target = _tables()
    rule_of("agt2", beta=0.25).update(q, q_target, _sync_batch(), GAMMA, step=1)
    assert np.array_equal(q, Q_FROM_TARGET)
    assert np.array_equal(q_target, [[[0.3125, 1.5625], [4.5625, 2.8125]]])


def test_sgt2_updates_both_tables_from_old_values() -> None:
    rule = rule_of("sgt2", eta=0.5)
    q, q_target = _tables()
    rule.update(q, q_target, _sync_batch(), GAMMA, step=1)
    # Q  += 1/2 [(r + 1/2 max Q-(a) - Q) - 1/2 (Q - Q-)]   with old max Q- = [1, 5]
    # Q- += 1/2 [(r + 1/2 max Q(a)  - Q-) - 1/2 (Q- - Q)]  with old max Q  = [2, 4]
    # (0,0): Q = 1 + ((1.5 - 1) - 0.5)/2 = 1       Q- = 0 + ((2 - 0) + 0.5)/2 = 1.25
    # (0,1): Q = 2 + ((4.5 - 2) - 0.5)/2 = 3       Q- = 1 + ((4 - 1) + 0.5)/2 = 2.75
    # (1,0): Q = 3 + ((3.5 - 3) + 1)/2 = 3.75      Q- = 5 + ((4 - 5) - 1)/2 = 4
    # (1,1): Q = 4 + ((6.5 - 4) - 1)/2 = 4.75      Q- = 2 + ((6 - 2) + 1)/2 = 4.5
    assert np.array_equal(q, [[[1.0, 3.0], [3.75, 4.75]]])
    assert np.array_equal(q_target, [[[1.25, 2.75], [4.0, 4.5]]])


def test_sgt2_mutual_online_step_with_pull_then_tracking_step() -> None:
    rule = rule_of("sgt2-mutual", eta=0.5, beta=0.25)
    q, q_target = _tables()
    rule.update(q, q_target, _sync_batch(), GAMMA, step=1)
    # Online as SGT2's: Q += 1/2 [(r + 1/2 max Q-(a) - Q) - 1/2 (Q - Q-)], old max Q- = [1, 5]
    # (0,0): 1 + (0.5 - 0.5)/2 = 1   (0,1): 2 + (2.5 - 0.5)/2 = 3   (1,0): 3 + (0.5 + 1)/2 = 3.75
    # (1,1): 4 + (2.5 - 1)/2 = 4.75. Then Q- += 1/4 (Q_new - Q-) everywhere (sync: every state visited):
    # 0 + 1/4, 1 + 2/4, 5 - 1.25/4, 2 + 2.75/4.
    assert np.array_equal(q, [[[1.0, 3.0], [3.75, 4.75]]])
    assert np.array_equal(q_target, [[[0.25, 1.5], [4.6875, 2.6875]]])


@pytest.mark.parametrize(("track", "target_row_1"), [("state", [4.6875, 2.5]), ("pair", [4.6875, 2.0])])
def test_sgt2_mutual_tracking_choice_on_a_trajectory_step(track: str, target_row_1: list[float]) -> None:
    q, q_target = _tables()
    rule_of("sgt2-mutual", eta=0.5, beta=0.25, track=track).update(q, q_target, _visit_1_0(), GAMMA, step=1)
    # Q(1,0) = 3 + 1/2 [(3 + 0.5*1 - 3) - 0.5*(3 - 5)] = 3.75; Q-(1,0) = 5 + (3.75 - 5)/4 = 4.6875;
    # state tracking also moves Q-(1,1) = 2 + (4 - 2)/4 = 2.5.
    assert np.array_equal(q, [[[1.0, 2.0], [3.75, 4.0]]])
    assert np.array_equal(q_target, [[[0.0, 1.0], target_row_1]])


def test_sgt2_target_init_independent_or_copy() -> None:
    q = np.zeros((2, 3, 2))
    drawn = np.arange(12.0).reshape(2, 3, 2)
    for name in ("sgt2", "sgt2-mutual"):
        assert np.array_equal(rule_of(name).init_target(q, lambda: drawn), drawn)  # independent by default
        copied = rule_of(name, target_init="copy").init_target(q, lambda: drawn)
        assert np.array_equal(copied, q) and copied is not q
    for name in ("hard", "soft", "agt2"):  # AGT2's target starts as a copy, as the deep one
        assert np.array_equal(rule_of(name).init_target(q, lambda: drawn), q)


def test_driver_draws_the_independent_target_per_run_on_the_value_scale() -> None:
    rng = np.random.default_rng(2)
    P, Rr = rng.dirichlet(np.ones(4), size=(4, 2)), rng.random((4, 2))
    one = run(P, Rr, 0.9, "sgt2", steps=1, runs=1, seed=9, log_points=1)
    three = run(P, Rr, 0.9, "sgt2", steps=1, runs=3, seed=9, log_points=1)
    assert np.array_equal(one.Q_target[0], three.Q_target[0])  # run 0 alike whatever the number of runs
    assert not np.array_equal(three.Q_target[0], three.Q_target[1])
    # After one sync step from Q = 0, Q- = Q-_0 + (r + gamma max Q(s') - Q-_0) - eta Q-_0 (alpha_0 = 1, eta = 0.5):
    # Q-_0 = -2 (Q-_1 - r) since max Q(s') = 0; it must be a nonzero draw within max|R| / (1 - gamma).
    start = -2.0 * (three.Q_target - Rr)
    assert np.all(np.abs(start) <= Rr.max() / 0.1) and np.abs(start).max() > 0.1 * Rr.max() / 0.1


# ------------------------------------------------------------------ no rule is target-free Q-learning

# A small random MDP at gamma = 0.8 and knobs that converge within a fast test's budget; every rule sees the
# same sampled transitions (sync sampling does not depend on the tables).
_FAST = dict(steps=20_000, runs=2, seed=4, log_points=30, period=20, tau=0.05)


def _small_mdp() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(21)
    return rng.dirichlet(np.ones(6), size=(6, 2)), rng.random((6, 2))


def _max_relative_gap(a, b) -> float:
    """Largest gap between two error trajectories (online table), relative to ||Q*||_inf."""
    return float(np.abs(a.err_online - b.err_online).max() / np.abs(a.q_star).max())


def test_every_rule_differs_from_target_free_and_converges() -> None:
    P, Rr = _small_mdp()
    free = run(P, Rr, 0.8, "target-free", **_FAST)
    for rule in RULES:
        res = run(P, Rr, 0.8, rule, **_FAST)
        scale = np.abs(res.q_star).max()
        assert res.err_online[:, -1].max() < 0.01 * scale and res.err_target[:, -1].max() < 0.01 * scale, rule
        if rule != "target-free":
            assert _max_relative_gap(res, free) > 0.05, rule
    # The check can fail: the degenerate settings reproduce another rule bit for bit.
    sgt2_copy = run(P, Rr, 0.8, "sgt2", target_init="copy", **_FAST)
    assert np.array_equal(sgt2_copy.err_online, free.err_online) and np.array_equal(sgt2_copy.Q, free.Q)
    assert np.array_equal(sgt2_copy.Q_target, sgt2_copy.Q)
    agt2 = run(P, Rr, 0.8, "agt2", **_FAST)
    mutual_as_agt2 = run(P, Rr, 0.8, "sgt2-mutual", eta=0.0, target_init="copy", **_FAST)
    assert np.array_equal(mutual_as_agt2.Q, agt2.Q) and np.array_equal(mutual_as_agt2.Q_target, agt2.Q_target)


@pytest.mark.slow
@pytest.mark.parametrize("sampling", ["sync", "trajectory"])
def test_every_rule_differs_from_target_free_with_default_knobs(sampling: str) -> None:
    # Default knobs on a held-out MDP and seed; sync runs the convergence command's default budget and must
    # converge, trajectories (uniform behaviour) run a quarter of it and only have to differ.
    rng = np.random.default_rng(33)
    P, Rr = rng.dirichlet(np.ones(10), size=(10, 3)), rng.random((10, 3))
    steps = 200_000 if sampling == "sync" else 50_000
    kwargs = dict(steps=steps, runs=2, seed=11, sampling=sampling, epsilon=1.0)
    free = run(P, Rr, 0.9, "target-free", **kwargs)
    for rule in RULES[1:]:
        res = run(P, Rr, 0.9, rule, **kwargs)
        assert _max_relative_gap(res, free) > 0.05, rule
        if sampling == "sync":
            scale = np.abs(res.q_star).max()
            assert max(res.err_online[:, -1].max(), res.err_target[:, -1].max()) < 0.01 * scale, rule


# ------------------------------------------------------------------ driver


def test_run_tabular_hard_copy_schedule_and_step_sizes() -> None:
    # Deterministic MDP, constant step size: step k of a longer run equals the run of k steps.
    common = dict(runs=1, seed=0, step_size="constant", alpha=ALPHA, period=3)
    r1 = run(P_DET, R, GAMMA, "hard", steps=1, **common)
    # Q- = 0, so Q = 0 + (r + 0 - 0)/2 = R/2; no copy yet.
    assert np.array_equal(r1.Q[0], R / 2) and np.array_equal(r1.Q_target[0], np.zeros((2, 2)))
    r2 = run(P_DET, R, GAMMA, "hard", steps=2, **common)
    assert np.array_equal(r2.Q[0], R * 0.75) and np.array_equal(r2.Q_target[0], np.zeros((2, 2)))
    r3 = run(P_DET, R, GAMMA, "hard", steps=3, **common)
    assert np.array_equal(r3.Q_target, r3.Q)  # copied after the third online step
    r4 = run(P_DET, R, GAMMA, "hard", steps=4, **common)
    assert np.array_equal(r4.Q_target, r3.Q) and not np.array_equal(r4.Q, r3.Q)


def test_step_size_schedules() -> None:
    n = np.array([0, 1, 10])
    assert np.allclose(StepSize("rescaled-linear", 0.9)(n), 1 / (1 + 0.1 * n))
    assert np.allclose(StepSize("polynomial", 0.9, omega=0.8)(n), 1 / (1 + n) ** 0.8)
    assert np.allclose(StepSize("constant", 0.9, alpha=0.3)(n), 0.3)
    assert StepSize("rescaled-linear", 0.9)(0) == 1.0


def test_result_shapes_logging_and_reproducibility() -> None:
    rng = np.random.default_rng(3)
    P = rng.dirichlet(np.ones(5), size=(5, 3))
    Rr = rng.random((5, 3))
    res = run(P, Rr, 0.9, "soft", steps=1000, runs=3, seed=7, log_points=20)
    assert res.Q.shape == res.Q_target.shape == (3, 5, 3)
    assert res.err_online.shape == res.err_target.shape == (3, len(res.steps))
    assert res.steps[0] == 1 and res.steps[-1] == 1000 and np.all(np.diff(res.steps) > 0)
    assert np.allclose(res.err_online[:, -1], np.abs(res.Q - res.q_star).max(axis=(1, 2)))
    again = run(P, Rr, 0.9, "soft", steps=1000, runs=3, seed=7, log_points=20)
    assert np.array_equal(again.Q, res.Q)
    # Each run has its own stream: run 0 does not depend on how many runs there are.
    alone = run(P, Rr, 0.9, "soft", steps=1000, runs=1, seed=7, log_points=20)
    assert np.array_equal(alone.Q[0], res.Q[0])
    assert not np.array_equal(res.Q[0], res.Q[1])


def test_agt2_equals_soft_in_sync_mode_but_not_on_trajectories() -> None:
    rng = np.random.default_rng(4)
    P = rng.dirichlet(np.ones(4), size=(4, 2))
    Rr = rng.random((4, 2))
    for sampling, same in (("sync", True), ("trajectory", False)):
        kwargs = dict(steps=500, runs=2, seed=1, sampling=sampling, tau=0.2, beta=0.2)
        agt2 = run(P, Rr, 0.9, "agt2", **kwargs)
        soft = run(P, Rr, 0.9, "soft", **kwargs)
        assert np.allclose(agt2.Q_target, soft.Q_target, rtol=0, atol=1e-12) == same


def test_trajectory_sampling_reduces_error() -> None:
    rng = np.random.default_rng(12)
    P = rng.dirichlet(np.ones(5), size=(5, 2))
    Rr = rng.random((5, 2))
    for rule in ("target-free", "agt2"):
        res = run(P, Rr, 0.9, rule, steps=30_000, runs=3, seed=2, sampling="trajectory", epsilon=0.3)
        start = np.abs(res.q_star).max()  # both tables start at 0
        assert res.err_online[:, -1].max() < 0.05 * start
        assert res.err_target[:, -1].max() < 0.05 * start


def test_next_state_sampler_matches_p_and_never_draws_zero_probability_states() -> None:
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.full(6, 0.4), size=(6, 2))
    P[P < 0.08] = 0.0
    P /= P.sum(axis=-1, keepdims=True)
    rows = np.arange(12)
    draws = NextStateSampler(P).sample(rows, rng.random((100_000, 12)))
    freq = np.stack([np.bincount(draws[:, r], minlength=6) for r in rows]).reshape(6, 2, 6) / 100_000
    assert np.all(freq[P == 0] == 0)
    assert np.max(np.abs(freq - P)) < 0.01  # > 6 standard errors
    assert np.all(NextStateSampler(P).sample(rows, np.full(12, np.nextafter(1.0, 0.0))) < 6)


def test_value_iteration_on_arrays() -> None:
    q = q_value_iteration(P_DET, R, GAMMA)
    # Deterministic, s' = a: V*(s) = max_a (R[s,a] + 1/2 V*(a)); the best is action 1 forever: V*(1) = 8,
    # V*(0) = 2 + 4 = 6, Q* = R + 1/2 V*(a).
    assert np.allclose(q, [[1 + 3, 2 + 4], [3 + 3, 4 + 4]], rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"rule": "polyak"}, "allowed rules: " + ", ".join(RULES)),
        ({"sampling": "random"}, "sampling='random' is not valid; allowed: sync | trajectory"),
        ({"step_size": "harmonic"}, "allowed: rescaled-linear | polynomial | constant"),
        ({"steps": 0}, "steps=0 is out of range; allowed: [1, inf)"),
        ({"runs": 0}, "runs=0 is out of range; allowed: [1, inf)"),
        ({"period": 0}, "period=0 is out of range; allowed: [1, inf)"),
        ({"rule": "soft", "tau": 0.0}, "tau"),
        ({"rule": "agt2", "beta": 1.5}, "beta"),
        ({"rule": "sgt2", "eta": -1.0}, "eta"),
        ({"rule": "sgt2-mutual", "beta": 0.0}, "beta"),
        ({"rule": "sgt2-mutual", "eta": -0.5}, "eta"),
        ({"track": "all"}, "allowed: " + " | ".join(TRACKING)),
        ({"target_init": "zero"}, "allowed: " + " | ".join(TARGET_INITS)),
        ({"epsilon": 2.0}, "epsilon"),
        ({"restart_prob": -0.1}, "restart_prob"),
        ({"step_size": "polynomial", "omega": 0.4}, "omega"),
        ({"step_size": "constant", "alpha": 0.0}, "alpha"),
        ({"q_star": np.zeros(3)}, "q_star has shape"),
    ],
)
def test_run_tabular_rejects_bad_arguments(kwargs: dict, needle: str) -> None:
    args = dict(rule="hard", steps=10, runs=1, seed=0) | kwargs
    rule = args.pop("rule")
    with pytest.raises(ValueError) as excinfo:
        run(P_DET, R, GAMMA, rule, **args)
    message = str(excinfo.value)
    assert needle in message and "\n" not in message


def test_run_tabular_rejects_bad_mdp_arrays() -> None:
    bad = P_DET.copy()
    bad[0, 0] = [0.5, 0.4]
    with pytest.raises(ValueError, match=r"P\[0, 0\] sums to 0.9"):
        run(bad, R, GAMMA, "hard", steps=1, runs=1, seed=0)
    with pytest.raises(ValueError, match="gamma"):
        run(P_DET, R, 1.0, "hard", steps=1, runs=1, seed=0)
