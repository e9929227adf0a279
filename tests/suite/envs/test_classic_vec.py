"""Vectorised classic-control ReplicaEnvs (suite.envs.classic_vec) == per-env gymnasium envs, bit for bit."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from suite.envs import ReplicaEnvs, StepResult
from suite.envs.classic_vec import _pow2

ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0"]
FIELDS = ("next_obs", "obs", "reward", "terminated", "truncated")
# Arbitrary seeds, one of them beyond 2**62 (the trainer derives large seeds).
SEEDS = [3, 17, 2**62 + 5, 1000, 42, 7, 99, 123456, 8, 9, 10, 11, 12, 13, 14, 15]


def _policy(env_id: str, obs: np.ndarray, rng: np.random.Generator, eps: float) -> np.ndarray:
    """Per-replica eps-random actions around a heuristic that ends episodes by termination too."""
    if env_id == "CartPole-v1":
        heuristic = (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)  # keep the pole up
        n = 2
    elif env_id == "Acrobot-v1":
        heuristic = np.where(obs[:, 5] > 0, 2, 0)  # pump energy into the second joint
        n = 3
    else:
        heuristic = np.where(obs[:, 1] > 0, 2, 0)  # push along the velocity
        n = 3
    random = rng.integers(n, size=len(obs))
    return np.where(rng.random(len(obs)) < eps, random, heuristic)


def _assert_step_equal(a: StepResult, b: StepResult, where: str) -> None:
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and x.shape == y.shape, (where, f)
        assert x.tobytes() == y.tobytes(), (where, f, x, y)
    assert a.episodes == b.episodes, where
    for i, ret, length in a.episodes:
        assert type(i) is int and type(ret) is float and type(length) is int


def _assert_physics_equal(vec: ReplicaEnvs, ref: ReplicaEnvs, where: str) -> None:
    """The float64 physics states (not only the float32 observations) are bitwise equal."""
    mine = vec.get_state()["envs"]["state"]
    theirs = np.array([np.asarray(env.unwrapped.state, dtype=np.float64) for env in ref._envs])
    assert mine.tobytes() == theirs.tobytes(), (where, mine, theirs)


def _column(res: StepResult, k: int) -> tuple:
    return tuple(getattr(res, f)[k].tobytes() for f in FIELDS) + (
        [(ret, length) for i, ret, length in res.episodes if i == k],
    )


def _run(envs: ReplicaEnvs, actions: np.ndarray) -> list[StepResult]:
    return [envs.step(a) for a in actions]


@pytest.mark.parametrize("env_id", ENVS)
@pytest.mark.parametrize(
    ("replicas", "options"),
    [(1, None), (3, {"max_episode_steps": 25}), (16, {"max_episode_steps": 120})],
)
def test_matches_per_env_gymnasium(env_id, replicas, options):
    """3000 lockstep steps: every StepResult field and episode report equal the per-env gymnasium path."""
    seeds = SEEDS[:replicas]
    vec = ReplicaEnvs(env_id, seeds, options=options, _vectorized=True)
    ref = ReplicaEnvs(env_id, seeds, options=options, _vectorized=False)
    assert vec._vec is not None and ref._vec is None
    assert (vec.num_actions, vec.observation_shape, vec.observation_dtype) == (
        ref.num_actions, ref.observation_shape, ref.observation_dtype)
    obs, ref_obs = vec.reset(), ref.reset()
    assert obs.dtype == ref_obs.dtype and obs.tobytes() == ref_obs.tobytes()
    rng = np.random.default_rng(replicas)
    terminated = truncated = 0
    for t in range(3000):
        actions = _policy(env_id, obs, rng, eps=0.2)
        res = vec.step(actions)
        _assert_step_equal(res, ref.step(actions), f"step {t}")
        _assert_physics_equal(vec, ref, f"step {t}")
        obs = res.obs
        terminated += int(res.terminated.sum())
        truncated += int(res.truncated.sum())
    assert terminated + truncated >= 5 * replicas  # many episodes, so many resets, were compared
    if options is not None:
        assert truncated >= replicas
    if replicas != 3:  # 25 steps are too few to reach MountainCar's goal
        assert terminated >= 1
    # a later reset() (not the first) continues every replica's RNG, as gymnasium's reset() does
    obs, ref_obs = vec.reset(), ref.reset()
    assert obs.tobytes() == ref_obs.tobytes()
    _assert_step_equal(vec.step(np.zeros(replicas, dtype=np.int64)),
                       ref.step(np.zeros(replicas, dtype=np.int64)), "after reset()")


@pytest.mark.parametrize("env_id", ENVS)
def test_replica_is_unchanged_when_others_are_added(env_id):
    options = {"max_episode_steps": 40}
    many = ReplicaEnvs(env_id, SEEDS, options=options, _vectorized=True)
    obs = start_many = many.reset()
    rng = np.random.default_rng(5)
    actions, results = [], []
    for _ in range(1500):
        a = _policy(env_id, obs, rng, eps=0.3)
        res = many.step(a)
        actions.append(a)
        results.append(res)
        obs = res.obs
    actions = np.array(actions)
    for subset in ([15], [2], [9, 0, 4]):  # alone, and among others in a different order
        few = ReplicaEnvs(env_id, [SEEDS[k] for k in subset], options=options, _vectorized=True)
        start = few.reset()
        for j, k in enumerate(subset):
            assert start[j].tobytes() == start_many[k].tobytes()
        for t, res in enumerate(_run(few, actions[:, subset])):
            for j, k in enumerate(subset):
                assert _column(res, j) == _column(results[t], k), (subset, t)


@pytest.mark.parametrize("env_id", ENVS)
def test_resume_from_a_random_step_is_exact(env_id):
    options = {"max_episode_steps": 30}
    seeds = SEEDS[:4]
    rng = np.random.default_rng(11)
    actions = rng.integers(ReplicaEnvs(env_id, [0]).num_actions, size=(400, 4))
    straight = ReplicaEnvs(env_id, seeds, options=options, _vectorized=True)
    straight.reset()
    full = _run(straight, actions)
    boundary = next(t for t, r in enumerate(full) if r.episodes) + 1  # just after an autoreset
    for cut in [boundary, *rng.integers(1, 399, size=3).tolist()]:
        first = ReplicaEnvs(env_id, seeds, options=options, _vectorized=True)
        first.reset()
        _run(first, actions[:cut])
        state = copy.deepcopy(first.get_state())  # as if through a checkpoint file
        assert isinstance(state["envs"], dict) and state["envs"]["state"].shape == (4, first._vec.state_dim)
        second = ReplicaEnvs(env_id, seeds, options=options, _vectorized=True)
        second.set_state(state)
        for t, (a, b) in enumerate(zip(_run(second, actions[cut:]), full[cut:], strict=True)):
            _assert_step_equal(a, b, f"cut {cut} step {cut + t}")


@pytest.mark.parametrize("env_id", ENVS)
def test_state_moves_between_backends(env_id):
    """Per-env snapshots (old checkpoints) load into the vectorised envs and vice versa, continuing exactly."""
    options = {"max_episode_steps": 20}
    seeds = SEEDS[:3]
    actions = np.random.default_rng(3).integers(ReplicaEnvs(env_id, [0]).num_actions, size=(200, 3))
    straight = ReplicaEnvs(env_id, seeds, options=options, _vectorized=False)
    straight.reset()
    full = _run(straight, actions)
    for src_vec in (False, True):
        src = ReplicaEnvs(env_id, seeds, options=options, _vectorized=src_vec)
        src.reset()
        _run(src, actions[:77])
        dst = ReplicaEnvs(env_id, seeds, options=options, _vectorized=not src_vec)
        dst.set_state(src.get_state())
        for t, (a, b) in enumerate(zip(_run(dst, actions[77:]), full[77:], strict=True)):
            _assert_step_equal(a, b, f"from vec={src_vec} step {77 + t}")


# States gymnasium reaches rarely or never from its resets, to cover every branch of the physics:
# Acrobot angles several turns out (wrap loops) and velocities beyond the bounds; MountainCar at the
# left wall moving left and at the right edge; CartPole right at its thresholds.
EDGE_STATES = {
    "CartPole-v1": [[2.4, 0.0, 0.0, 0.0], [0.0, 0.0, 12 * 2 * math.pi / 360, 0.0], [-2.39, -1.0, -0.2, -2.0]],
    "Acrobot-v1": [[20.0, -15.0, 30.0, -40.0], [math.pi, -math.pi, 4 * math.pi, 9 * math.pi], [3.1, -3.1, -13.0, 29.0]],
    "MountainCar-v0": [[-1.2, -0.05], [-1.19, -0.07], [0.59, 0.07]],
}


@pytest.mark.parametrize("env_id", ENVS)
def test_edge_states_match(env_id):
    states = np.array(EDGE_STATES[env_id], dtype=np.float64)
    r = len(states)
    vec = ReplicaEnvs(env_id, SEEDS[:r], _vectorized=True)
    ref = ReplicaEnvs(env_id, SEEDS[:r], _vectorized=False)
    vec.reset()
    state = vec.get_state()
    state["envs"]["state"] = states
    vec.set_state(state)
    ref.set_state(state)
    rng = np.random.default_rng(0)
    for t in range(60):
        a = rng.integers(vec.num_actions, size=r)
        _assert_step_equal(vec.step(a), ref.step(a), f"step {t}")
        _assert_physics_equal(vec, ref, f"step {t}")


def test_cartpole_single_replica_scalar_path_matches_at_edge_states():
    """CartPole steps a lone replica on python floats (``CartPoleVec._step_one``): each edge state alone."""
    for row in EDGE_STATES["CartPole-v1"]:
        vec = ReplicaEnvs("CartPole-v1", SEEDS[:1], _vectorized=True)
        ref = ReplicaEnvs("CartPole-v1", SEEDS[:1], _vectorized=False)
        vec.reset()
        state = vec.get_state()
        state["envs"]["state"] = np.array([row], dtype=np.float64)
        vec.set_state(state)
        ref.set_state(state)
        rng = np.random.default_rng(1)
        for t in range(60):
            a = rng.integers(2, size=1)
            _assert_step_equal(vec.step(a), ref.step(a), f"{row} step {t}")
            _assert_physics_equal(vec, ref, f"{row} step {t}")


@pytest.mark.parametrize("env_id", ENVS)
def test_eval_envs_behave_as_before(env_id):
    options = {"max_episode_steps": 50}
    seeds = SEEDS[4:7]
    vec = ReplicaEnvs(env_id, seeds, eval=True, options=options, _vectorized=True)
    ref = ReplicaEnvs(env_id, seeds, eval=True, options=options, _vectorized=False)
    train = ReplicaEnvs(env_id, seeds, options=options, _vectorized=True)
    assert vec.eval and vec._vec is not None
    obs = vec.reset()
    assert obs.tobytes() == ref.reset().tobytes() == train.reset().tobytes()
    rng = np.random.default_rng(2)
    for t in range(600):
        a = _policy(env_id, obs, rng, eps=0.3)
        res = vec.step(a)
        _assert_step_equal(res, ref.step(a), f"step {t}")
        _assert_step_equal(res, train.step(a), f"step {t} (train)")  # no reward clipping for classic
        obs = res.obs


def test_envs_property_is_a_gymnasium_snapshot():
    vec = ReplicaEnvs("Acrobot-v1", SEEDS[:2], options={"max_episode_steps": 1000}, _vectorized=True)
    vec.reset()
    acts = np.random.default_rng(4).integers(3, size=(38, 2))
    _run(vec, acts[:37])
    envs = vec.envs
    assert [type(e.unwrapped).__name__ for e in envs] == ["AcrobotEnv", "AcrobotEnv"]
    gym_next = [env.step(int(a))[0] for env, a in zip(envs, acts[37])]
    res = vec.step(acts[37])  # stepping the snapshots did not move the replicas
    for i in range(2):
        assert gym_next[i].tobytes() == res.next_obs[i].tobytes()


def test_action_dtypes():
    a = ReplicaEnvs("MountainCar-v0", SEEDS[:3], _vectorized=True)
    b = ReplicaEnvs("MountainCar-v0", SEEDS[:3], _vectorized=True)
    a.reset()
    b.reset()
    acts = np.random.default_rng(0).integers(3, size=(50, 3))
    for x in acts:  # unsigned actions: action - 1 must not wrap around
        _assert_step_equal(a.step(x.astype(np.uint8)), b.step(x.astype(np.int32)), "uint8 vs int32")
    with pytest.raises(ValueError, match="integers"):
        a.step(np.array([True, False, True]))


def test_scalar_semantics_the_vectorisation_relies_on():
    """On this machine: array trig equals the per-scalar numpy trig gymnasium calls; _pow2 equals scalar `**`."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-4, 4, 3000), rng.uniform(-40, 40, 3000)])
    for fn in (np.cos, np.sin):
        for arr in (x, x.astype(np.float32)):
            per_scalar = np.array([fn(v) for v in arr], dtype=arr.dtype)
            assert fn(arr).tobytes() == per_scalar.tobytes()
            assert fn(arr[::3]).tobytes() == per_scalar[::3].tobytes()  # strided inputs too
    assert _pow2(x).tobytes() == np.array([np.float64(v) ** 2 for v in x]).tobytes()
    # MountainCar's math.cos is called per element, so no assumption about np.cos vs libm is needed.


def test_auto_backend_vectorises_from_three_replicas():
    """Both backends are bit-identical (above), so the choice is speed only: per-env below 3 replicas (numpy's
    per-call overhead exceeds one gymnasium step), vectorised from 3; CartPole always (a lone replica steps on
    python floats)."""
    assert ReplicaEnvs("Acrobot-v1", [0, 1])._vec is None
    assert ReplicaEnvs("Acrobot-v1", [0, 1, 2])._vec is not None
    assert ReplicaEnvs("CartPole-v1", [0])._vec is not None
    assert ReplicaEnvs("CartPole-v1", [0, 1])._vec is not None
    assert ReplicaEnvs("tabular/chain:5", [0, 1, 2, 3])._vec is None
