"""ReplicaEnvs: seeded determinism, per-replica independence, same-step autoreset."""

from __future__ import annotations

import numpy as np
import pytest

from suite.envs import ReplicaEnvs, StepResult, make_env

# Short limits so that episode ends (and therefore autoresets) occur within a few steps.
CASES = [
    ("CartPole-v1", {"max_episode_steps": 20}),
    ("MinAtar/breakout", None),
    ("MinAtar/seaquest", {"max_episode_steps": 30}),
    ("ALE/Breakout-v5", {"max_episode_steps": 15, "noop_max": 5}),
    ("tabular/random:6,3,0", {"max_episode_steps": 7}),
]


def _actions(num_actions, steps, replicas, seed=0):
    return np.random.default_rng(seed).integers(num_actions, size=(steps, replicas))


def _rollout(envs: ReplicaEnvs, actions: np.ndarray) -> list:
    out = [envs.reset()]
    for a in actions:
        r = envs.step(a)
        out.append((r.next_obs, r.obs, r.reward, r.terminated, r.truncated, r.episodes))
    return out


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray):
            assert np.array_equal(x, y)
        else:
            for u, v in zip(x, y, strict=True):
                if isinstance(u, np.ndarray):
                    assert u.dtype == v.dtype and np.array_equal(u, v)
                else:
                    assert u == v


@pytest.mark.parametrize(("env_id", "options"), CASES)
def test_attributes_and_shapes(env_id, options):
    envs = ReplicaEnvs(env_id, [0, 1, 2], options=options)
    ref = make_env(env_id, 0, options=options)
    assert envs.num_replicas == 3
    assert envs.observation_shape == ref.observation_space.shape
    assert envs.observation_dtype == ref.observation_space.dtype
    assert envs.num_actions == ref.action_space.n
    assert envs.spec.id == env_id and envs.options == ref.bench_options
    obs = envs.reset()
    assert obs.shape == (3, *envs.observation_shape) and obs.dtype == envs.observation_dtype
    r = envs.step(np.zeros(3, dtype=np.int64))
    assert isinstance(r, StepResult)
    assert r.next_obs.shape == r.obs.shape == obs.shape
    assert r.reward.dtype == np.float32 and r.reward.shape == (3,)
    assert r.terminated.dtype == bool and r.truncated.dtype == bool
    envs.close()


@pytest.mark.parametrize(("env_id", "options"), CASES)
def test_same_seeds_same_trajectories(env_id, options):
    a = ReplicaEnvs(env_id, [4, 5], options=options)
    b = ReplicaEnvs(env_id, [4, 5], options=options)
    acts = _actions(a.num_actions, 30 if env_id.startswith("ALE/") else 60, 2)
    ra = _rollout(a, acts)
    _assert_same(ra, _rollout(b, acts))
    # different seeds do give different trajectories
    rc = _rollout(ReplicaEnvs(env_id, [6, 7], options=options), acts)
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(ra[1:], rc[1:]))


@pytest.mark.parametrize(("env_id", "options"), CASES)
def test_replica_is_independent_of_the_others(env_id, options):
    many = ReplicaEnvs(env_id, [0, 1, 2, 3], options=options)
    alone = ReplicaEnvs(env_id, [3], options=options)
    acts = _actions(many.num_actions, 40 if env_id.startswith("ALE/") else 80, 4)
    rm, ra = _rollout(many, acts), _rollout(alone, acts[:, 3:4])
    assert np.array_equal(rm[0][3], ra[0][0])
    ended = 0
    for x, y in zip(rm[1:], ra[1:]):
        for k in range(5):
            assert np.array_equal(x[k][3], y[k][0])
        mine = [(length, ret) for i, ret, length in x[5] if i == 3]
        assert mine == [(length, ret) for _, ret, length in y[5]]
        ended += len(mine)
    assert ended >= 1  # the comparison covered an autoreset


def test_replicas_with_equal_seeds_match_exactly():
    envs = ReplicaEnvs("MinAtar/asterix", [9, 9])
    envs.reset()
    for _ in range(100):
        r = envs.step(np.array([2, 2]))
        assert np.array_equal(r.next_obs[0], r.next_obs[1])
        assert r.reward[0] == r.reward[1]


def test_autoreset_next_obs_vs_obs_and_single_report():
    # tabular-free deterministic check: CartPole truncated at 5 with alternating pushes
    envs = ReplicaEnvs("CartPole-v1", [0, 1], options={"max_episode_steps": 5})
    first = envs.reset()
    ref = make_env("CartPole-v1", 1, options={"max_episode_steps": 5})
    ref_obs = [ref.reset()[0]]
    reports = []
    for t in range(12):
        a = np.array([t % 2, t % 2])
        r = envs.step(a)
        o, _, term, trunc, _ = ref.step(t % 2)
        assert np.array_equal(r.next_obs[1], o)
        reports += r.episodes
        if t % 5 == 4:
            assert r.truncated.all() and not r.terminated.any()
            assert sorted(r.episodes) == [(0, 5.0, 5), (1, 5.0, 5)]
            # obs is the fresh reset observation, next_obs the final one of the old episode
            assert not np.array_equal(r.next_obs, r.obs)
            assert np.all(np.abs(r.obs) <= 0.05)
            ref_obs.append(ref.reset()[0])
            assert np.array_equal(r.obs[1], ref_obs[-1])
        else:
            assert not r.truncated.any() and r.episodes == []
            assert np.array_equal(r.next_obs, r.obs)
            assert np.array_equal(r.obs[1], o)
    assert len(reports) == 4  # two episodes per replica, each reported once
    assert not np.array_equal(first[0], first[1])


def test_episode_return_uses_raw_reward_on_atari():
    envs = ReplicaEnvs("ALE/SpaceInvaders-v5", [1], options={"max_episode_steps": 300})
    envs.reset()
    rng = np.random.default_rng(0)
    clipped = 0.0
    for _ in range(300):
        r = envs.step(rng.integers(envs.num_actions, size=1))
        clipped += float(r.reward[0])
        if r.episodes:
            break
    (_, ret, length), = r.episodes
    assert ret > clipped > 0  # SpaceInvaders points are 5..30 each; clipped sums count hits


def test_step_checks():
    envs = ReplicaEnvs("CartPole-v1", [0, 1])
    with pytest.raises(RuntimeError, match="reset"):
        envs.step(np.array([0, 0]))
    envs.reset()
    with pytest.raises(ValueError, match="expected 2 actions"):
        envs.step(np.array([0, 0, 0]))
    for bad in (np.array([0, 2]), np.array([-1, 0]), np.array([0.0, 1.0])):
        with pytest.raises(ValueError, match=r"integers in \[0, 1\]"):
            envs.step(bad)
    envs.step([1, 0])  # plain lists are fine
    with pytest.raises(ValueError):
        ReplicaEnvs("CartPole-v1", [])
