"""Classic-control family: CartPole-v1, Acrobot-v1, MountainCar-v0."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control import AcrobotEnv, CartPoleEnv, MountainCarEnv
from gymnasium.wrappers import TimeLimit

from suite.envs.registry import generator_from_state, generator_state

__all__ = ["get_classic_state", "make_classic", "set_classic_state"]

# Built directly (not via gymnasium.make) to skip the env-checker / order-enforcing
# wrappers: they cost time in the hot loop and the latter would refuse a step
# after a set_state() on a never-reset env.
_CTORS: dict[str, type[gym.Env]] = {
    "CartPole-v1": CartPoleEnv,
    "Acrobot-v1": AcrobotEnv,
    "MountainCar-v0": MountainCarEnv,
}


def make_classic(env_id: str, options: dict[str, Any]) -> gym.Env:
    """Base env + TimeLimit(max_episode_steps); observations are float32 vectors."""
    return TimeLimit(_CTORS[env_id](), max_episode_steps=int(options["max_episode_steps"]))


def get_classic_state(env: gym.Env) -> dict[str, Any]:
    """Data-only state of a classic-control base env (physics state, RNG, CartPole's done counter)."""
    state = env.state
    return {
        "state": None if state is None else np.array(state, copy=True),
        "steps_beyond_terminated": getattr(env, "steps_beyond_terminated", None),
        "np_random": generator_state(env._np_random),
    }


def set_classic_state(env: gym.Env, data: dict[str, Any]) -> None:
    """Inverse of :func:`get_classic_state`."""
    env.state = None if data["state"] is None else np.array(data["state"], copy=True)
    if hasattr(env, "steps_beyond_terminated"):
        env.steps_beyond_terminated = data["steps_beyond_terminated"]
    env._np_random = generator_from_state(data["np_random"])
