"""Registry: ids, specs, error messages and option validation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from suite.envs import (
    EnvSpec,
    UnknownEnvError,
    default_env_options,
    get_spec,
    list_envs,
    validate_env_options,
)


def test_list_envs_has_every_family():
    specs = list_envs()
    assert all(isinstance(s, EnvSpec) for s in specs)
    by_family: dict[str, list[str]] = {}
    for s in specs:
        by_family.setdefault(s.family, []).append(s.id)
        assert s.description
    assert by_family["classic"] == ["CartPole-v1", "Acrobot-v1", "MountainCar-v0"]
    assert sorted(by_family["minatar"]) == [
        "MinAtar/asterix", "MinAtar/breakout", "MinAtar/freeway", "MinAtar/seaquest", "MinAtar/space_invaders",
    ]
    assert {"ALE/Pong-v5", "ALE/Breakout-v5", "ALE/SpaceInvaders-v5"} <= set(by_family["atari"])
    assert "tabular/random:S,A,SEED" in by_family["tabular"]
    assert len({s.id for s in specs}) == len(specs)


def test_get_spec_matches_list_for_concrete_ids():
    for s in list_envs():
        if s.family != "tabular":  # tabular entries are patterns, not ids
            assert get_spec(s.id) == s


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "MountainCar-v0"])
def test_classic_default_limits_are_gymnasiums(env_id):
    assert get_spec(env_id).default_max_episode_steps == gym.spec(env_id).max_episode_steps
    assert default_env_options(env_id) == {"max_episode_steps": gym.spec(env_id).max_episode_steps}


def test_any_shipped_ale_game_is_accepted():
    spec = get_spec("ALE/Tetris-v5")
    assert spec.family == "atari" and spec.default_max_episode_steps == 27_000
    assert get_spec("ALE/MontezumaRevenge-v5").family == "atari"


@pytest.mark.parametrize(
    "bad", ["CartPol-v1", "cartpole", "MinAtar/pong", "ALE/NoSuchGame-v5", "ALE/Pong-v4", "ALE/Joust-v5", ""]
)
def test_unknown_id_error_is_one_line_and_lists_known(bad):
    with pytest.raises(UnknownEnvError) as info:
        get_spec(bad)
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in msg
    assert repr(bad) in msg
    for known in ("CartPole-v1", "MinAtar/breakout", "ALE/<Game>-v5", "tabular/chain:N"):
        assert known in msg


def test_unknown_id_suggests_close_match():
    with pytest.raises(UnknownEnvError, match="did you mean 'CartPole-v1'"):
        get_spec("CartPol-v1")


def test_default_options_per_family():
    assert default_env_options("MinAtar/breakout") == {
        "sticky_action_prob": 0.1,
        "difficulty_ramping": True,
        "minimal_action_set": False,
        "max_episode_steps": None,
    }
    atari = default_env_options("ALE/Pong-v5")
    assert atari == {
        "frame_skip": 4,
        "noop_max": 30,
        "screen_size": 84,
        "frame_stack": 4,
        "grayscale": True,
        "repeat_action_probability": 0.25,
        "full_action_space": False,
        "terminal_on_life_loss": False,
        "clip_rewards": True,
        "max_episode_steps": 27_000,
        "protocol": "default",
    }
    # fresh dicts: callers may mutate them
    atari["frame_skip"] = 1
    assert default_env_options("ALE/Pong-v5")["frame_skip"] == 4


def test_validate_merges_and_normalises():
    opts = validate_env_options("MinAtar/seaquest", {"sticky_action_prob": 0, "max_episode_steps": np.int64(7)})
    assert opts["sticky_action_prob"] == 0.0 and type(opts["sticky_action_prob"]) is float
    assert opts["max_episode_steps"] == 7 and type(opts["max_episode_steps"]) is int
    assert opts["difficulty_ramping"] is True
    assert validate_env_options("CartPole-v1", None) == {"max_episode_steps": 500}
    assert validate_env_options("ALE/Pong-v5", {"max_episode_steps": None})["max_episode_steps"] is None


@pytest.mark.parametrize(
    ("env_id", "options", "needles"),
    [
        # one format with every config value (agents/fields.py): the key as env.KEY, the value, what is allowed
        ("CartPole-v1", {"max_steps": 5}, ["unknown config key 'env.max_steps' for CartPole-v1",
                                           "allowed: env.max_episode_steps"]),
        ("CartPole-v1", {"max_episode_steps": 0}, ["env.max_episode_steps=0 is out of range; allowed: [1, inf)"]),
        ("CartPole-v1", {"max_episode_steps": "5"}, ["env.max_episode_steps='5' is not valid; allowed: int"]),
        ("CartPole-v1", {"max_episode_steps": True}, ["env.max_episode_steps=True is not valid; allowed: int"]),
        ("CartPole-v1", {"max_episode_steps": None}, ["env.max_episode_steps=None is not valid"]),
        ("MinAtar/breakout", {"sticky_action_prob": 1.5}, ["env.sticky_action_prob=1.5 is out of range; allowed: [0, 1]"]),
        ("MinAtar/breakout", {"sticky_action_prob": float("nan")}, ["env.sticky_action_prob=nan is out of range"]),
        ("MinAtar/breakout", {"difficulty_ramping": 1}, ["env.difficulty_ramping=1 is not valid; allowed: bool"]),
        ("ALE/Pong-v5", {"frame_skip": 2.5}, ["env.frame_skip=2.5 is not valid; allowed: int"]),
        ("ALE/Pong-v5", {"noop_max": -1}, ["env.noop_max=-1 is out of range; allowed: [0, inf)"]),
        ("ALE/Pong-v5", {"sticky_action_prob": 0.1}, ["'env.sticky_action_prob'", "env.repeat_action_probability"]),
        ("tabular/chain:5", {"start_state": 7}, ["env.start_state=7 is out of range", "allowed: -1 (uniform) or [0, 4]"]),
    ],
)
def test_validate_rejects_with_one_line_message(env_id, options, needles):
    with pytest.raises(ValueError) as info:
        validate_env_options(env_id, options)
    msg = str(info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg


def test_validate_unknown_env_raises_unknown_env_error():
    with pytest.raises(UnknownEnvError):
        validate_env_options("Pong", {})
