"""The outermost wrapper of every environment :func:`suite.envs.make_env` returns, and the wrapper-stack walk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym

if TYPE_CHECKING:
    from suite.envs.family import EnvSpec

__all__ = ["BenchEnvWrapper", "env_layers"]


class BenchEnvWrapper(gym.Wrapper):
    """Outermost wrapper of every env returned by :func:`suite.envs.make_env`.

    * the first ``reset()`` without a seed uses the seed given to ``make_env``;
    * ``info["raw_reward"]`` always holds the unclipped reward;
    * with ``clip_rewards`` the returned reward is ``sign(r)`` (Atari training envs).
    """

    def __init__(self, env: gym.Env, *, seed: int, clip_rewards: bool, bench_spec: EnvSpec, options: dict):
        super().__init__(env)
        self.seed = int(seed)
        self.clip_rewards = bool(clip_rewards)
        self.bench_spec = bench_spec
        self.bench_options = dict(options)
        self.seeded = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset; the first reset defaults to the construction seed."""
        if seed is None and not self.seeded:
            seed = self.seed
        self.seeded = True
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step and record the raw reward in ``info["raw_reward"]``."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["raw_reward"] = reward
        if self.clip_rewards:
            reward = float((reward > 0) - (reward < 0))
        return obs, reward, terminated, truncated, info


def env_layers(env: gym.Env) -> list[gym.Env]:
    """``env`` and every env it wraps, outermost first (the base env last)."""
    out = [env]
    while isinstance(out[-1], gym.Wrapper):
        out.append(out[-1].env)
    return out
