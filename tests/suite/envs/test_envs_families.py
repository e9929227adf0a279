"""make_env per family: observation conventions, truncation, Atari reward clipping."""

from __future__ import annotations

import numpy as np
import pytest

from suite.envs import make_env


def _alternate(env, n):
    out = []
    for t in range(n):
        out.append(env.step(t % env.action_space.n))
    return out


@pytest.mark.parametrize(("env_id", "dim"), [("CartPole-v1", 4), ("Acrobot-v1", 6), ("MountainCar-v0", 2)])
def test_classic_obs_is_float32_vector(env_id, dim):
    env = make_env(env_id, 0)
    obs, _ = env.reset()
    assert obs.dtype == np.float32 and obs.shape == (dim,) == env.observation_space.shape
    assert env.observation_space.dtype == np.float32
    nxt = env.step(0)[0]
    assert nxt.dtype == np.float32 and nxt.shape == (dim,)


def test_classic_truncation_surfaces_as_truncated():
    env = make_env("CartPole-v1", 0, options={"max_episode_steps": 5})
    env.reset()
    steps = _alternate(env, 5)  # alternating pushes cannot drop the pole within 5 steps
    assert [s[2] for s in steps] == [False] * 5
    assert [s[3] for s in steps] == [False] * 4 + [True]
    assert all(s[4]["raw_reward"] == s[1] == 1.0 for s in steps)


def test_first_reset_uses_make_env_seed_and_touches_no_global_rng():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = make_env("CartPole-v1", 7)
    b = make_env("CartPole-v1", 7)
    assert np.array_equal(np.random.get_state()[1], before)
    assert np.array_equal(a.reset()[0], b.reset(seed=7)[0])
    # later resets continue the env's own RNG instead of reseeding
    assert not np.array_equal(a.reset()[0], b.reset(seed=7)[0])


@pytest.mark.parametrize(
    ("game", "channels"),
    [("asterix", 4), ("breakout", 4), ("freeway", 7), ("seaquest", 10), ("space_invaders", 6)],
)
def test_minatar_obs_is_uint8_channels_first(game, channels):
    env = make_env(f"MinAtar/{game}", 0)
    obs, _ = env.reset()
    assert obs.shape == (channels, 10, 10) == env.observation_space.shape
    assert obs.dtype == np.uint8 and obs.flags["C_CONTIGUOUS"]
    assert set(np.unique(obs)) <= {0, 1} and obs.sum() > 0
    assert env.action_space.n == 6
    assert env.step(1)[0].shape == (channels, 10, 10)


def test_minatar_minimal_action_set():
    env = make_env("MinAtar/breakout", 0, options={"minimal_action_set": True})
    assert env.action_space.n == 3  # n, l, r


def test_minatar_matches_reference_gym_wrapper():
    """Same seed and actions -> identical trajectory to minatar's own gymnasium env."""
    from minatar.gym import BaseEnv

    ref = BaseEnv("seaquest", sticky_action_prob=0.1, difficulty_ramping=True)
    env = make_env("MinAtar/seaquest", 5)
    ro, _ = ref.reset(seed=5)
    o, _ = env.reset()
    actions = np.random.default_rng(0).integers(6, size=300)
    for a in actions:
        assert np.array_equal(o, ro.transpose(2, 0, 1))
        ro, rr, rt, _, _ = ref.step(int(a))
        o, r, t, tr, _ = env.step(int(a))
        assert (r, t, tr) == (rr, rt, False)
        if t:
            ro, _ = ref.reset()
            o, _ = env.reset()


def test_minatar_truncation_option():
    env = make_env("MinAtar/freeway", 0, options={"max_episode_steps": 3})
    env.reset()
    steps = _alternate(env, 3)
    assert [s[3] for s in steps] == [False, False, True]
    assert not any(s[2] for s in steps)  # freeway's own clock is far longer than 3 steps


def test_atari_obs_and_truncation():
    env = make_env("ALE/Pong-v5", 0, options={"max_episode_steps": 5})
    obs, _ = env.reset()
    assert obs.shape == (4, 84, 84) == env.observation_space.shape and obs.dtype == np.uint8
    steps = _alternate(env, 5)
    assert steps[-1][0].shape == (4, 84, 84)
    assert [s[3] for s in steps] == [False] * 4 + [True]
    assert not any(s[2] for s in steps)
    rgb = make_env("ALE/Pong-v5", 0, options={"grayscale": False, "frame_stack": 2, "screen_size": 42})
    assert rgb.reset()[0].shape == (2, 42, 42, 3)


def test_atari_reward_clipping_train_only():
    # SpaceInvaders pays 5..30 points per alien, so clipping is visible quickly.
    rewards = {}
    for is_eval in (False, True):
        env = make_env("ALE/SpaceInvaders-v5", 1, eval=is_eval)
        env.reset()
        rng = np.random.default_rng(0)
        pairs = []
        for _ in range(400):
            _, r, term, trunc, info = env.step(int(rng.integers(env.action_space.n)))
            pairs.append((r, info["raw_reward"]))
            if term or trunc:
                env.reset()
        rewards[is_eval] = pairs
    train, evl = rewards[False], rewards[True]
    assert train == [(float(np.sign(raw)), raw) for _, raw in train]
    assert any(raw > 1 for _, raw in train)  # clipping actually happened
    assert evl == [(raw, raw) for _, raw in evl]
    assert any(r > 1 for r, _ in evl)
    # eval flag only changes the reward, not the dynamics
    assert [raw for _, raw in train] == [raw for _, raw in evl]


def test_atari_clip_rewards_option_off():
    env = make_env("ALE/SpaceInvaders-v5", 1, options={"clip_rewards": False, "max_episode_steps": 150})
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(150):
        _, r, _, _, info = env.step(int(rng.integers(env.action_space.n)))
        assert r == info["raw_reward"]
