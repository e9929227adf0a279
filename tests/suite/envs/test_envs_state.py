"""ReplicaEnvs.get_state/set_state: data-only snapshots that resume runs exactly."""

from __future__ import annotations

import numpy as np
import pytest

from suite.envs import ReplicaEnvs

CASES = [
    ("tabular/random:7,3,1", {"max_episode_steps": 10}),
    ("tabular/chain:5", {"max_episode_steps": 10, "start_state": 2}),
    ("CartPole-v1", {"max_episode_steps": 25}),
    ("Acrobot-v1", {"max_episode_steps": 25}),
    ("MountainCar-v0", {"max_episode_steps": 25}),
    ("MinAtar/asterix", None),
    ("MinAtar/breakout", None),
    ("MinAtar/freeway", {"max_episode_steps": 40}),  # freeway keeps numpy int64 scalars
    ("MinAtar/seaquest", None),
    ("MinAtar/space_invaders", {"minimal_action_set": True}),
    ("ALE/Breakout-v5", {"max_episode_steps": 25, "noop_max": 8}),
    # high sticky probability: a lost "previous action" would show in the trajectory
    ("ALE/Pong-v5", {"max_episode_steps": 25, "noop_max": 8, "frame_stack": 3, "grayscale": False,
                     "repeat_action_probability": 0.75}),
]

_SCALARS = (bool, int, float, str, type(None))


def _assert_data_only(x, path="state"):
    if isinstance(x, np.ndarray):
        assert x.dtype != object, path
    elif isinstance(x, dict):
        for k, v in x.items():
            assert isinstance(k, str), path
            _assert_data_only(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            _assert_data_only(v, f"{path}[{i}]")
    else:
        assert type(x) in _SCALARS, f"{path}: {type(x).__name__}"


def _run(envs, actions):
    out = []
    for a in actions:
        r = envs.step(a)
        out.append((r.next_obs, r.obs, r.reward, r.terminated, r.truncated, r.episodes))
    return out


def _assert_same(a, b):
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            if isinstance(u, np.ndarray):
                assert np.array_equal(u, v)
            else:
                assert u == v


@pytest.mark.parametrize(("env_id", "options"), CASES)
def test_resume_is_exact(env_id, options):
    seeds = [11, 12]
    envs = ReplicaEnvs(env_id, seeds, options=options)
    rng = np.random.default_rng(1)
    acts = rng.integers(envs.num_actions, size=(120, 2))
    envs.reset()
    _run(envs, acts[:37])
    state = envs.get_state()
    _assert_data_only(state)
    continued = _run(envs, acts[37:])  # also proves the snapshot does not alias live objects

    resumed_envs = ReplicaEnvs(env_id, seeds, options=options)
    resumed_envs.set_state(state)
    assert _flatten(resumed_envs.get_state()) == _flatten(state)  # everything captured is restored
    resumed = _run(resumed_envs, acts[37:])
    _assert_same(continued, resumed)
    # the window must cover an episode boundary so reset-time RNG use is checked too
    assert any(step[5] for step in continued)
    # and a snapshot of the resumed env equals a snapshot of the original
    _run(envs, acts[:5])
    _run(resumed_envs, acts[:5])
    _assert_same([_flatten(envs.get_state())], [_flatten(resumed_envs.get_state())])


def _flatten(x, prefix=""):
    if isinstance(x, dict):
        return tuple(item for k in sorted(x) for item in _flatten(x[k], f"{prefix}.{k}"))
    if isinstance(x, list):
        return tuple(item for i, v in enumerate(x) for item in _flatten(v, f"{prefix}[{i}]"))
    return ((prefix, x.tobytes() if isinstance(x, np.ndarray) else x),)


def test_state_before_reset_roundtrips():
    a = ReplicaEnvs("CartPole-v1", [3])
    b = ReplicaEnvs("CartPole-v1", [3])
    b.set_state(a.get_state())
    assert np.array_equal(a.reset(), b.reset())


def test_restored_env_matches_one_run_from_scratch():
    """Run A: 60 steps straight. Run B: 30 steps, snapshot, new process-like object, 30 more."""
    acts = np.random.default_rng(2).integers(6, size=(60, 3))
    straight = ReplicaEnvs("MinAtar/seaquest", [0, 1, 2])
    straight.reset()
    full = _run(straight, acts)
    first = ReplicaEnvs("MinAtar/seaquest", [0, 1, 2])
    first.reset()
    _run(first, acts[:30])
    second = ReplicaEnvs("MinAtar/seaquest", [0, 1, 2])
    second.set_state(first.get_state())
    first.close()
    _assert_same(full[30:], _run(second, acts[30:]))


@pytest.mark.parametrize(
    ("other", "match"),
    [
        (lambda: ReplicaEnvs("Acrobot-v1", [0, 1]), "CartPole-v1"),
        (lambda: ReplicaEnvs("CartPole-v1", [0, 1, 2]), "2 replicas"),
        (lambda: ReplicaEnvs("CartPole-v1", [0, 1], eval=True), "eval"),
        (lambda: ReplicaEnvs("CartPole-v1", [0, 1], options={"max_episode_steps": 9}), "max_episode_steps"),
    ],
)
def test_set_state_rejects_mismatch(other, match):
    envs = ReplicaEnvs("CartPole-v1", [0, 1])
    envs.reset()
    with pytest.raises(ValueError, match=match) as info:
        other().set_state(envs.get_state())
    assert "\n" not in str(info.value)


def test_set_state_rejects_non_state():
    with pytest.raises(ValueError, match="not a ReplicaEnvs state"):
        ReplicaEnvs("CartPole-v1", [0]).set_state({"env_id": "CartPole-v1"})
