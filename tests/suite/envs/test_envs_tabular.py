"""Tabular family: registry ids, TabularEnv dynamics, truncation, options."""

from __future__ import annotations

import numpy as np
import pytest

from suite.envs import ReplicaEnvs, UnknownEnvError, get_spec, make_env, validate_env_options
from suite.envs.mdp import FiniteMDP
from suite.envs.tabular_env import TabularEnv


def _cycle_mdp(n: int = 4) -> FiniteMDP:
    """Deterministic: action 0 stays, action 1 moves to s+1 mod n; reward = s + 10 a."""
    P = np.zeros((n, 2, n))
    for s in range(n):
        P[s, 0, s] = 1.0
        P[s, 1, (s + 1) % n] = 1.0
    R = np.array([[s, s + 10] for s in range(n)], dtype=np.float64)
    return FiniteMDP(P=P, R=R, gamma=0.9, name="t")


def test_spec_and_defaults():
    spec = get_spec("tabular/chain:5")
    assert spec.family == "tabular" and spec.default_max_episode_steps == 100
    assert "5 states" in spec.description
    assert validate_env_options("tabular/chain:5", None) == {"max_episode_steps": 100, "start_state": -1}


def test_npz_spec(tmp_path):
    mdp = _cycle_mdp(3)
    path = tmp_path / "m.npz"
    np.savez(path, P=mdp.P, R=mdp.R, gamma=0.5)
    env_id = f"tabular/{path}"
    assert get_spec(env_id).family == "tabular"
    env = make_env(env_id, 0, options={"start_state": 0})
    obs, info = env.reset()
    assert obs.shape == (3,) and info["state"] == 0
    assert env.unwrapped.mdp.gamma == 0.5


@pytest.mark.parametrize("bad", ["tabular/random:3", "tabular/chain:1", "tabular/nope.npz", "tabular/"])
def test_bad_tabular_spec_is_one_line_unknown_env(bad):
    with pytest.raises(UnknownEnvError) as info:
        get_spec(bad)
    msg = str(info.value)
    assert "\n" not in msg and repr(bad) in msg and "tabular/random:S,A,SEED" in msg


def test_start_state_out_of_range():
    with pytest.raises(ValueError, match=r"start_state=5 .*\[0, 4\]"):
        validate_env_options("tabular/chain:5", {"start_state": 5})
    with pytest.raises(ValueError, match="start_state=-2"):
        validate_env_options("tabular/chain:5", {"start_state": -2})


def test_tabular_env_dynamics_obs_and_truncation():
    env = TabularEnv(_cycle_mdp(4), max_episode_steps=6, start_state=1)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (4,) == env.observation_space.shape
    assert info["state"] == 1 and obs.tolist() == [0, 1, 0, 0]
    seen = []
    for a in [1, 1, 0, 1, 1, 1]:
        obs, r, term, trunc, info = env.step(a)
        seen.append((info["state"], r, term, trunc))
        assert obs.argmax() == info["state"] and obs.sum() == 1.0
    assert seen == [
        (2, 11.0, False, False), (3, 12.0, False, False), (3, 3.0, False, False),
        (0, 13.0, False, False), (1, 10.0, False, False), (2, 11.0, False, True),
    ]


def test_uniform_start_and_sampling_follow_the_mdp():
    mdp = FiniteMDP(P=np.array([[[0.0, 0.25, 0.75]]] * 3), R=np.zeros((3, 1)), gamma=0.9, name="t")
    env = TabularEnv(mdp, max_episode_steps=10_000)
    env.reset(seed=3)
    starts = {TabularEnv(mdp).reset(seed=s)[1]["state"] for s in range(30)}
    assert starts == {0, 1, 2}
    counts = np.bincount([env.step(0)[4]["state"] for _ in range(4000)], minlength=3)
    assert counts[0] == 0  # zero-probability successor never sampled
    assert abs(counts[2] / 4000 - 0.75) < 0.03


def test_make_env_tabular_truncates_via_option():
    env = make_env("tabular/chain:5", 0, options={"max_episode_steps": 3, "start_state": 0})
    env.reset()
    flags = [env.step(1)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]


def test_replicas_tabular_autoreset_to_start_state():
    envs = ReplicaEnvs("tabular/chain:5", [0, 1, 2], options={"max_episode_steps": 4, "start_state": 2})
    obs = envs.reset()
    assert (obs.argmax(axis=1) == 2).all()
    for t in range(8):
        r = envs.step(np.ones(3, dtype=np.int64))
        if t % 4 == 3:
            assert r.truncated.all() and len(r.episodes) == 3
            assert (r.obs.argmax(axis=1) == 2).all()
            assert all(length == 4 for _, _, length in r.episodes)
        else:
            assert not r.truncated.any() and not r.episodes
        assert not r.terminated.any()
