"""Measure the uniform-random policy's mean episode return on classic control and MinAtar (the ``random``
column of ``analysis/reference/scores.csv``): ``python -m suite.measure_random [EPISODES] [--minatar-only]``.

Uses gymnasium and minatar directly with their default settings (MinAtar sticky actions 0.1), seed 0. It steps
environments, so it lives in ``suite/``; the analysis package only reads the numbers it produced.
"""
from __future__ import annotations

import sys

import numpy as np


def classic(env_id: str, episodes: int, seed: int = 0) -> float:
    """Mean return of uniform-random actions on gymnasium ``env_id`` over ``episodes`` episodes (episode i reset
    with seed ``seed + i``)."""
    import gymnasium as gym

    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    out = []
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        total, done = 0.0, False
        while not done:
            _, r, term, trunc, _ = env.step(int(rng.integers(env.action_space.n)))
            total += r
            done = term or trunc
        out.append(total)
    return float(np.mean(out))


def minatar(game: str, episodes: int, seed: int = 0) -> float:
    """Mean return of uniform-random actions on MinAtar ``game`` (library defaults) over ``episodes`` episodes."""
    from minatar import Environment

    env = Environment(game)
    env.seed(seed)
    rng = np.random.default_rng(seed)
    n = env.num_actions()
    out = []
    for _ in range(episodes):
        env.reset()
        total, done = 0.0, False
        while not done:
            r, done = env.act(int(rng.integers(n)))
            total += r
        out.append(total)
    return float(np.mean(out))


if __name__ == "__main__":
    episodes = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    if "--minatar-only" not in sys.argv:
        for env_id in ("CartPole-v1", "Acrobot-v1", "MountainCar-v0"):
            print(f"{env_id},{classic(env_id, episodes):.2f}", flush=True)
    for game in ("asterix", "breakout", "freeway", "seaquest", "space_invaders"):
        print(f"MinAtar/{game},{minatar(game, episodes):.3f}", flush=True)
