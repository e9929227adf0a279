"""Tabular family (``tabular``): a gymnasium Env over a ``FiniteMDP`` with one-hot observations.

Registers the family record: ``tabular/<spec>`` ids (anything :func:`suite.envs.mdp.parse_mdp_spec` accepts),
an MLP on the one-hot state, short budgets.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.family_facts import FamilyFacts
from agents.fields import bad_value
from suite.envs.family import CostFigures, EnvFamily, EnvOption, EnvSpec, MemoryFigures, register_family
from suite.envs.rng_state import generator_from_state, generator_state

if TYPE_CHECKING:
    from suite.envs.mdp import FiniteMDP

__all__ = ["TabularEnv", "load_mdp", "make_tabular"]

_PREFIX = "tabular/"
_PATTERNS: dict[str, str] = {
    "tabular/random:S,A,SEED": "Random finite MDP with S states and A actions generated from SEED.",
    "tabular/chain:N": "Chain MDP with N states.",
    "tabular/<file.npz>": "Finite MDP loaded from an .npz file (P, R, gamma).",
}
_MAX_STEPS = 100


@functools.lru_cache(maxsize=64)
def _parse_cached(spec: str) -> Any:
    from suite.envs.mdp import parse_mdp_spec  # noqa: PLC0415 - tabular only

    return parse_mdp_spec(spec)


def load_mdp(env_id: str) -> FiniteMDP:
    """Return the ``FiniteMDP`` of a ``tabular/<spec>`` id (ValueError, one line, if it does not parse).

    Generated MDPs are cached (they are pure functions of the spec); files are
    re-read each time so edits to them are seen.
    """
    if not env_id.startswith(_PREFIX):
        raise ValueError(f"{env_id!r} is not a tabular/<spec> id")
    spec = env_id[len(_PREFIX) :]
    try:
        if spec.strip().lower().endswith(".npz"):
            from suite.envs.mdp import parse_mdp_spec  # noqa: PLC0415

            return parse_mdp_spec(spec)
        return _parse_cached(spec)
    except ValueError as exc:
        raise ValueError(str(exc).splitlines()[0] if str(exc) else "bad spec") from None


class TabularEnv(gym.Env):
    """Finite MDP as a gymnasium Env.

    Observation: float32 one-hot of the state (length S). ``step`` samples
    ``s' ~ P[s, a]`` with ``self.np_random`` and returns reward ``R[s, a]``; it never
    terminates and truncates after ``max_episode_steps`` steps. ``info["state"]`` is
    the (new) state index. ``start_state=-1`` draws the start state uniformly.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, mdp: FiniteMDP, *, max_episode_steps: int = 100, start_state: int = -1) -> None:
        P = np.asarray(mdp.P, dtype=np.float64)
        R = np.asarray(mdp.R, dtype=np.float64)
        if P.ndim != 3 or P.shape[0] != P.shape[2] or R.shape != P.shape[:2]:
            raise ValueError(f"bad MDP shapes: P {P.shape}, R {R.shape}; expected (S,A,S) and (S,A)")
        self.mdp = mdp
        self.num_states, self.num_actions = int(P.shape[0]), int(P.shape[1])
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        if not -1 <= start_state < self.num_states:
            raise ValueError(f"start_state must be -1 or in [0, {self.num_states - 1}], got {start_state}")
        self.max_episode_steps = int(max_episode_steps)
        self.start_state = int(start_state)
        # Inverse-CDF sampling: one uniform draw per step, much faster than rng.choice(p=...).
        self._cdf = np.cumsum(P, axis=2)
        self._R = R
        self.action_space = spaces.Discrete(self.num_actions)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.num_states,), dtype=np.float32)
        self.state = 0
        self.elapsed_steps = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.num_states, dtype=np.float32)
        obs[self.state] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Start an episode at ``start_state`` (or a uniform random state)."""
        super().reset(seed=seed)
        if self.start_state >= 0:
            self.state = self.start_state
        else:
            self.state = int(self.np_random.integers(self.num_states))
        self.elapsed_steps = 0
        return self._obs(), {"state": self.state}

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Sample the next state; reward is ``R[s, a]``; truncated at the step limit."""
        s, a = self.state, int(action)
        reward = float(self._R[s, a])
        u = self.np_random.random()
        # side="right" skips zero-probability successors; min() guards rows summing to 1-eps.
        self.state = min(int(np.searchsorted(self._cdf[s, a], u, side="right")), self.num_states - 1)
        self.elapsed_steps += 1
        truncated = self.elapsed_steps >= self.max_episode_steps
        return self._obs(), reward, False, truncated, {"state": self.state}

    def get_state(self) -> dict[str, Any]:
        """Data-only snapshot (state, step counter, RNG)."""
        return {
            "state": int(self.state),
            "elapsed_steps": int(self.elapsed_steps),
            "np_random": generator_state(self._np_random),
        }

    def set_state(self, data: dict[str, Any]) -> None:
        """Inverse of :meth:`get_state`."""
        if not 0 <= int(data["state"]) < self.num_states:
            raise ValueError(f"tabular state {data['state']} out of range for {self.num_states} states")
        self.state = int(data["state"])
        self.elapsed_steps = int(data["elapsed_steps"])
        self._np_random = generator_from_state(data["np_random"])


def make_tabular(env_id: str, options: dict[str, Any]) -> gym.Env:
    """``tabular/<spec>`` -> :class:`TabularEnv` (the step limit is internal, not a TimeLimit)."""
    return TabularEnv(
        load_mdp(env_id),
        max_episode_steps=int(options["max_episode_steps"]),
        start_state=int(options["start_state"]),
    )


def _resolve(env_id: str) -> EnvSpec | None:
    if not env_id.startswith(_PREFIX):
        return None
    mdp = load_mdp(env_id)  # ValueError(reason) for a spec that does not parse
    desc = f"Finite MDP {mdp.name!r}: {mdp.num_states} states, {mdp.num_actions} actions, gamma={mdp.gamma}."
    return EnvSpec(env_id, "tabular", desc, _MAX_STEPS)


def _check_options(env_id: str, resolved: dict[str, Any]) -> None:
    if resolved["start_state"] >= 0:
        n = load_mdp(env_id).num_states
        if resolved["start_state"] >= n:
            raise bad_value("env.start_state", resolved["start_state"], f"is out of range for {env_id}",
                            f"-1 (uniform) or [0, {n - 1}]")


FAMILY = register_family(EnvFamily(
    name="tabular",
    description="finite MDPs",
    resolve=_resolve,
    listed=tuple(EnvSpec(k, "tabular", d, _MAX_STEPS) for k, d in _PATTERNS.items()),
    known=tuple(_PATTERNS),
    candidates=lambda env_id: (),  # the listed entries are patterns, not ids
    options={
        "max_episode_steps": EnvOption("int", _MAX_STEPS, lo=1,
                                       help="truncate episodes after this many steps"),
        "start_state": EnvOption("int", -1, lo=-1,
                                 help="start state index; -1 = uniform random"),
    },
    check_options=_check_options,
    make=make_tabular,
    # TabularEnv has get_state/set_state: no layer hook needed.
    facts=FamilyFacts("tabular", network="mlp"),
    agent_defaults={"hidden_sizes": (64, 64), "learning_starts": 1000, "buffer_size": 10_000,
                    "train_frequency": 1, "batch_size": 64},
    train_defaults={"steps": 20_000, "eval_every": 2_000},
    costs=CostFigures(5.0e-5, 1.0e-5, 5.0e-4, 5.0e-5, eval_episode_steps=100),
    memory=MemoryFigures(env_bytes=16 * 1024, side_pool_fraction=0.1),
))
