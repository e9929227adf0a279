"""Classic-control family (``classic``): CartPole-v1, Acrobot-v1, MountainCar-v0.

Registers the family record: per-env gymnasium envs, the numpy-vectorised backend of
:mod:`suite.envs.classic_vec` for many replicas, CleanRL's budgets (500k env steps, evaluation every 10k).
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control import AcrobotEnv, CartPoleEnv, MountainCarEnv
from gymnasium.wrappers import TimeLimit

from agents.family_facts import FamilyFacts
from suite.envs.classic_vec import ClassicVecEnv, make_classic_vec
from suite.envs.family import CostFigures, EnvFamily, EnvOption, EnvSpec, MemoryFigures, VectorBackend, register_family
from suite.envs.rng_state import generator_from_state, generator_state
from suite.envs.wrappers import BenchEnvWrapper, env_layers

__all__ = ["get_classic_state", "make_classic", "set_classic_state"]

# Limits are gymnasium's registered max_episode_steps for these ids.
_IDS: dict[str, tuple[int, str]] = {
    "CartPole-v1": (500, "Balance a pole on a cart; +1 per step, 2 actions, 4-dim state."),
    "Acrobot-v1": (500, "Swing a two-link arm above a line; -1 per step, 3 actions, 6-dim state."),
    "MountainCar-v0": (200, "Drive an underpowered car up a hill; -1 per step, 3 actions, 2-dim state."),
}

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


def _resolve(env_id: str) -> EnvSpec | None:
    if env_id not in _IDS:
        return None
    n, d = _IDS[env_id]
    return EnvSpec(env_id, "classic", d, n)


def _is_classic_base(layer: gym.Env) -> bool:
    return isinstance(layer, (CartPoleEnv, AcrobotEnv, MountainCarEnv))


def _save_layer(layer: gym.Env) -> dict[str, Any] | None:
    return {"env": get_classic_state(layer)} if _is_classic_base(layer) else None


def _load_layer(layer: gym.Env, data: dict[str, Any]) -> bool:
    if not _is_classic_base(layer):
        return False
    set_classic_state(layer, data["env"])
    return True


# ------------------------------------------------------------------ vectorised backend

#: the family is stepped with numpy array ops from this many replicas on (per-env gymnasium below);
#: CartPole from one (its vectorised class steps a lone replica on python floats)
VECTORIZE_FROM = 3
VECTORIZE_FROM_ENV = {"CartPole-v1": 1}


def _min_replicas(env_id: str) -> int:
    # Both backends give bit-identical trajectories; numpy's fixed per-call cost makes the vectorised
    # step slower than one gymnasium step below ~3 replicas (CartPole 22 vs 11 µs at R=1, 27 vs 112 at 16;
    # CartPole's scalar path for R=1 is faster than gymnasium's step through its wrappers).
    return VECTORIZE_FROM_ENV.get(env_id, VECTORIZE_FROM)


def load_vec_state_into_envs(envs: list[gym.Env], data: dict[str, Any]) -> None:
    """Put a vectorised classic state (``{"kind": "classic_vec", ...}``) into per-env gymnasium envs."""
    states = np.asarray(data["state"], dtype=np.float64)
    if len(states) != len(envs) or len(data["np_random"]) != len(envs):
        raise ValueError(f"state has {len(states)} replicas, expected {len(envs)}")
    for i, env in enumerate(envs):
        for layer in env_layers(env):
            if isinstance(layer, BenchEnvWrapper):
                layer.seeded = True
            elif isinstance(layer, TimeLimit):
                layer._elapsed_steps = int(data["elapsed_steps"][i])
            elif not isinstance(layer, gym.Wrapper):
                set_classic_state(
                    layer,
                    {"state": states[i], "steps_beyond_terminated": None, "np_random": data["np_random"][i]},
                )


def vec_state_from_env_states(envs_state: list[list[dict[str, Any]]], vec: ClassicVecEnv) -> dict[str, Any]:
    """Per-env classic state (one layer list per replica, see ``ReplicaEnvs``) -> vectorised state.

    CartPole's ``steps_beyond_terminated`` is dropped: it is None between steps, as ended episodes
    are reset within the step that ends them.
    """
    expected = ["BenchEnvWrapper", "TimeLimit", vec._proto_cls.__name__]
    if len(envs_state) != vec.num_replicas:
        raise ValueError(f"state has {len(envs_state)} envs, this ReplicaEnvs has {vec.num_replicas}")
    states, elapsed, rngs = [], [], []
    for layers in envs_state:
        if [d["type"] for d in layers] != expected:
            raise ValueError("state does not match the environment's wrapper stack")
        base = layers[2]["env"]
        states.append(np.asarray(base["state"], dtype=np.float64))
        elapsed.append(int(layers[1]["elapsed_steps"]))
        rngs.append(base["np_random"])
    return {"state": np.stack(states), "elapsed_steps": np.array(elapsed, dtype=np.int64), "np_random": rngs}


def _make_vec(env_id: str, seeds: Sequence[int], options: dict[str, Any]) -> ClassicVecEnv:
    return make_classic_vec(env_id, seeds, options)


# ------------------------------------------------------------------------- record

FAMILY = register_family(EnvFamily(
    name="classic",
    description="gymnasium classic control",
    resolve=_resolve,
    listed=tuple(EnvSpec(k, "classic", d, n) for k, (n, d) in _IDS.items()),
    known=tuple(_IDS),
    options={"max_episode_steps": EnvOption(  # default filled per id
        "int", None, lo=1, help="truncate episodes after this many steps (default: gymnasium's for the id)")},
    option_defaults=lambda spec: {"max_episode_steps": spec.default_max_episode_steps},
    make=make_classic,
    vector=VectorBackend(kind="classic_vec", make=_make_vec, min_replicas=_min_replicas,
                         load_into_envs=load_vec_state_into_envs, from_env_states=vec_state_from_env_states),
    save_layer=_save_layer,
    load_layer=_load_layer,
    facts=FamilyFacts("classic", network="mlp"),
    # CleanRL dqn.py's values are AgentConfig's own defaults.
    agent_defaults={},
    # CleanRL's classic-control budget.
    train_defaults={"steps": 500_000, "eval_every": 10_000},
    costs=CostFigures(1.35e-4, 2.7e-5, 1.2e-3, 2.4e-4, eval_episode_steps=200),  # calibrated on the default suite
    memory=MemoryFigures(env_bytes=16 * 1024, side_pool_fraction=0.1),  # CartPole 5 KiB; random episodes ~22 steps
))
