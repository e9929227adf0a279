"""R independent environments stepped in lockstep, one per training replica."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TimeLimit

from suite.envs.family import EnvFamily, EnvSpec
from suite.envs.families import get_family, get_spec, make_env, validate_env_options
from suite.envs.wrappers import BenchEnvWrapper, env_layers

__all__ = ["ReplicaEnvs", "StepResult"]

_FORMAT = "targetbench.ReplicaEnvs/1"


@dataclass
class StepResult:
    """Outcome of one lockstep step of all replicas (arrays are fresh, owned by the caller)."""

    next_obs: np.ndarray  # [R, ...] true next observation of each transition (before autoreset)
    obs: np.ndarray  # [R, ...] observation to act on next (the reset observation where an episode ended)
    reward: np.ndarray  # float32 [R] training reward (sign-clipped for Atari training envs)
    terminated: np.ndarray  # bool [R]
    truncated: np.ndarray  # bool [R]
    episodes: list[tuple[int, float, int]]  # (replica, raw undiscounted return, length) ended at this step


class ReplicaEnvs:
    """R independent envs, one per replica, stepped in lockstep with same-step autoreset.

    Replica ``i`` is ``make_env(env_id, seeds[i], eval=eval, options=options)``; its
    first reset uses ``seeds[i]`` and every later reset continues its own RNG, so a
    replica's trajectory depends only on its seed and its own actions (no RNG is
    shared between replicas). When an episode ends at ``step``, the env is reset in
    the same call: ``next_obs`` has the final observation, ``obs`` the new one.

    A family with a vectorised backend (``EnvFamily.vector``; built in: classic control,
    :mod:`suite.envs.classic_vec`) runs all replicas at once with numpy array ops,
    bit-identical to the per-env envs, from the backend's ``min_replicas(env_id)``
    replicas on (below that, one gymnasium step is cheaper than numpy's per-call
    overhead); ``_vectorized`` (private, for tests and benchmarks) forces either
    backend. Every other family steps per-env envs.

    ``get_state``/``set_state`` snapshot everything needed to continue bit-exactly,
    as data only (numpy arrays, python scalars/str/None, lists and dicts of those):

    * classic: physics ``state`` ``[R, D]``, TimeLimit step counters and each
      replica's np_random, as one dict (per-env layout when ``_vectorized=False``:
      physics ``state``, CartPole's ``steps_beyond_terminated``, np_random, TimeLimit
      counter); either layout is accepted by either backend -- exact.
    * tabular: current state, step counter, np_random -- exact.
    * minatar: every attribute of the minatar game object (type-preserving, numpy
      int64 scalars included), the shared RandomState (sticky actions + dynamics),
      the sticky ``last_action``, TimeLimit counter -- exact.
    * atari: ALE ``cloneState(include_rng=True)`` serialized bytes, AtariEnv np_random
      (no-op starts and sticky actions), the python sticky-action ``last_action`` (see
      ``suite.envs.atari`` for why sticky actions are not ALE's), AtariPreprocessing
      max-pool buffers/lives/game_over, frame stack contents, TimeLimit counter --
      exact. Not restored: ALE's own sticky-action memory (``m_actions``, which
      ``cloneState`` omits; unused because ALE runs with p=0 and sticky actions are
      drawn in python) and render/audio settings (unused).
    * a family registered elsewhere: its ``save_layer``/``load_layer`` hooks, or the
      ``get_state``/``set_state`` methods of its base env.

    Common to all: the current observation to act on and each replica's running
    episode return/length. Seeds are not checked by ``set_state`` (the state
    supersedes them once started); env id, replica count, ``eval`` and the resolved
    options must match.
    """

    def __init__(
        self,
        env_id: str,
        seeds: Sequence[int],
        *,
        eval: bool = False,  # noqa: A002 - mirrors make_env
        options: dict | None = None,
        _vectorized: bool | None = None,
    ) -> None:
        self.spec: EnvSpec = get_spec(env_id)
        self._family: EnvFamily = get_family(self.spec.family)
        self.env_id = env_id
        self.options: dict[str, Any] = validate_env_options(env_id, options)
        self.seeds: list[int] = [int(s) for s in seeds]
        if not self.seeds:
            raise ValueError("ReplicaEnvs needs at least one seed")
        self.eval = bool(eval)
        self.num_replicas = len(self.seeds)
        self._envs: list[gym.Env] = []
        self._vec: Any = None  # the family's vectorised backend object, when used
        backend = self._family.vector
        if _vectorized is None:
            _vectorized = backend is not None and self.num_replicas >= backend.min_replicas(env_id)
        if backend is not None and _vectorized:
            self._vec = backend.make(env_id, self.seeds, self.options)
            self.num_actions: int = self._vec.num_actions
            obs_space = self._vec.observation_space
        else:
            try:
                for seed in self.seeds:
                    self._envs.append(make_env(env_id, seed, eval=self.eval, options=self.options))
            except BaseException:
                self.close()
                raise
            first = self._envs[0]
            if not isinstance(first.action_space, gym.spaces.Discrete):
                raise TypeError(f"{env_id}: only Discrete action spaces are supported")
            self.num_actions = int(first.action_space.n)
            obs_space = first.observation_space
        self.observation_shape: tuple[int, ...] = tuple(obs_space.shape)
        self.observation_dtype: np.dtype = np.dtype(obs_space.dtype)
        self._batch_shape = (self.num_replicas, *self.observation_shape)
        self._started = False
        self._obs: np.ndarray | None = None
        self._zero_episode_stats()

    def _zero_episode_stats(self) -> None:
        # Running return/length of each replica's episode: arrays for the vectorised path (updated
        # with one op per step), python lists for the per-env loop (cheapest element access).
        if self._vec is not None:
            self._ep_return: Any = np.zeros(self.num_replicas, dtype=np.float64)
            self._ep_length: Any = np.zeros(self.num_replicas, dtype=np.int64)
        else:
            self._ep_return = [0.0] * self.num_replicas
            self._ep_length = [0] * self.num_replicas

    @property
    def envs(self) -> list[gym.Env]:
        """The underlying per-replica envs (read-only use, e.g. ``env.unwrapped``).

        For a vectorised family these are fresh gymnasium envs holding a copy of each
        replica's current state (a snapshot: stepping them does not affect this object).
        """
        if self._vec is None:
            return list(self._envs)
        envs = [make_env(self.env_id, s, eval=self.eval, options=self.options) for s in self.seeds]
        if self._started:
            self._family.vector.load_into_envs(envs, self._vec.get_state())
        return envs

    def reset(self) -> np.ndarray:
        """Reset every replica (with its seed on the very first reset); returns ``[R, *obs_shape]``."""
        if self._vec is not None:
            obs = self._vec.reset(seeded=not self._started)
        else:
            obs = np.empty(self._batch_shape, dtype=self.observation_dtype)
            for i, env in enumerate(self._envs):
                o, _ = env.reset(seed=None if self._started else self.seeds[i])
                obs[i] = o
        self._started = True
        self._zero_episode_stats()
        self._obs = obs
        return obs.copy()

    def step(self, actions: np.ndarray) -> StepResult:
        """Step replica ``i`` with ``actions[i]``; auto-reset replicas whose episode ended."""
        if not self._started:
            raise RuntimeError("call reset() (or set_state()) before step()")
        arr = np.asarray(actions).reshape(-1)
        n = self.num_replicas
        if arr.shape[0] != n:
            raise ValueError(f"expected {n} actions, got {arr.shape[0]}")
        # Some envs would silently wrap a negative index, so range-check up front.
        # (as uint64, a negative action becomes huge: one comparison checks both ends)
        if arr.dtype.kind not in "iu" or np.count_nonzero(arr.astype(np.uint64) >= self.num_actions):
            raise ValueError(f"actions must be integers in [0, {self.num_actions - 1}], got {arr.tolist()}")
        if self._vec is not None:
            return self._step_vec(arr.astype(np.int64, copy=False))
        acts = arr.tolist()  # python ints: the cheapest per-env action type
        next_obs = np.empty(self._batch_shape, dtype=self.observation_dtype)
        reward = np.empty(n, dtype=np.float32)
        terminated = np.empty(n, dtype=bool)
        truncated = np.empty(n, dtype=bool)
        episodes: list[tuple[int, float, int]] = []
        resets: list[tuple[int, Any]] = []
        ep_return, ep_length = self._ep_return, self._ep_length
        for i, env in enumerate(self._envs):
            o, r, term, trunc, info = env.step(acts[i])
            next_obs[i] = o
            reward[i] = r
            terminated[i] = term
            truncated[i] = trunc
            ep_return[i] += float(info["raw_reward"])
            ep_length[i] += 1
            if term or trunc:
                episodes.append((i, ep_return[i], ep_length[i]))
                ep_return[i] = 0.0
                ep_length[i] = 0
                resets.append((i, env.reset()[0]))
        obs = next_obs.copy()
        for i, o in resets:
            obs[i] = o
        # Private copy: a caller editing result.obs in place must not corrupt get_state().
        self._obs = obs.copy()
        return StepResult(next_obs, obs, reward, terminated, truncated, episodes)

    def _step_vec(self, actions: np.ndarray) -> StepResult:
        """:meth:`step` for a vectorised family: one array step, then a loop over ended episodes only."""
        next_obs, reward, terminated, truncated = self._vec.step(actions)
        ep_return, ep_length = self._ep_return, self._ep_length
        ep_return += reward  # float64 sums of exact -1/0/+1 values, as the per-env loop's python floats
        ep_length += 1
        obs = next_obs.copy()
        episodes: list[tuple[int, float, int]] = []
        done = terminated | truncated
        if np.count_nonzero(done):  # cheaper than done.any() on small arrays
            ended = np.flatnonzero(done).tolist()
            episodes = [(i, float(ep_return[i]), int(ep_length[i])) for i in ended]
            ep_return[ended] = 0.0
            ep_length[ended] = 0
            obs[ended] = self._vec.reset_indices(ended)
        self._obs = obs.copy()
        return StepResult(next_obs, obs, reward, terminated, truncated, episodes)

    # ------------------------------------------------------------------- state

    def get_state(self) -> dict[str, Any]:
        """Data-only snapshot from which :meth:`set_state` continues exactly (see class doc)."""
        return {
            "format": _FORMAT,
            "env_id": self.env_id,
            "family": self.spec.family,
            "num_replicas": self.num_replicas,
            "seeds": list(self.seeds),
            "eval": self.eval,
            "options": dict(self.options),
            "started": self._started,
            "obs": None if self._obs is None else self._obs.copy(),
            "episode_return": np.array(self._ep_return, dtype=np.float64),
            "episode_length": np.array(self._ep_length, dtype=np.int64),
            "envs": self._envs_state() if self._started else None,
        }

    def _envs_state(self) -> Any:
        if self._vec is not None:
            return {"kind": self._family.vector.kind, **self._vec.get_state()}
        return [self._env_state(env) for env in self._envs]

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`get_state` snapshot taken from a ReplicaEnvs with the same arguments."""
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(f"not a ReplicaEnvs state (expected format {_FORMAT!r})")
        if state["env_id"] != self.env_id:
            raise ValueError(f"state is for environment {state['env_id']!r}, this ReplicaEnvs runs {self.env_id!r}")
        if int(state["num_replicas"]) != self.num_replicas:
            raise ValueError(f"state has {state['num_replicas']} replicas, this ReplicaEnvs has {self.num_replicas}")
        if bool(state["eval"]) != self.eval:
            raise ValueError(f"state has eval={state['eval']}, this ReplicaEnvs has eval={self.eval}")
        if dict(state["options"]) != self.options:
            diff = sorted(k for k in set(state["options"]) | set(self.options)
                          if state["options"].get(k) != self.options.get(k))
            raise ValueError(f"state was taken with different env options ({', '.join(diff)})")
        if not state["started"]:
            self._started = False
            self._obs = None
            self._zero_episode_stats()
            return
        envs_state = state["envs"]
        backend = self._family.vector
        if isinstance(envs_state, dict):
            if backend is None or envs_state.get("kind") != backend.kind:
                raise ValueError(f"state holds envs of kind {envs_state.get('kind')!r}, not {self.env_id!r} envs")
            if self._vec is not None:
                self._vec.set_state(envs_state)
            else:
                backend.load_into_envs(self._envs, envs_state)
        elif self._vec is not None:  # per-env layout (e.g. a checkpoint from before vectorisation)
            self._vec.set_state(backend.from_env_states(envs_state, self._vec))
        else:
            for env, env_state in zip(self._envs, envs_state, strict=True):
                self._set_env_state(env, env_state)
        self._obs = np.array(state["obs"], dtype=self.observation_dtype, copy=True)
        self._zero_episode_stats()
        for i in range(self.num_replicas):
            self._ep_return[i] = float(state["episode_return"][i])
            self._ep_length[i] = int(state["episode_length"][i])
        self._started = True

    # ------------------------------------------------------------ per-env state

    def _env_state(self, env: gym.Env) -> list[dict[str, Any]]:
        """One data-only dict per layer (outermost first), tagged with the layer's class name."""
        return [{"type": type(layer).__name__, **self._layer_state(layer)} for layer in env_layers(env)]

    def _layer_state(self, layer: gym.Env) -> dict[str, Any]:
        if isinstance(layer, BenchEnvWrapper):
            return {"seeded": layer.seeded}
        if isinstance(layer, TimeLimit):
            return {"elapsed_steps": layer._elapsed_steps}
        data = self._family.save_layer(layer)
        if data is not None:
            return data
        if not isinstance(layer, gym.Wrapper) and hasattr(layer, "get_state"):  # MinAtarEnv, TabularEnv
            return {"env": layer.get_state()}
        kind = "wrapper" if isinstance(layer, gym.Wrapper) else "env"
        raise TypeError(f"no state handler for {kind} {type(layer).__name__}")

    def _set_env_state(self, env: gym.Env, layers_state: list[dict[str, Any]]) -> None:
        layers = env_layers(env)
        if [type(x).__name__ for x in layers] != [d["type"] for d in layers_state]:
            raise ValueError("state does not match the environment's wrapper stack")
        for layer, data in zip(layers, layers_state, strict=True):
            if isinstance(layer, BenchEnvWrapper):
                layer.seeded = bool(data["seeded"])
            elif isinstance(layer, TimeLimit):
                layer._elapsed_steps = None if data["elapsed_steps"] is None else int(data["elapsed_steps"])
            elif self._family.load_layer(layer, data):
                pass
            elif not isinstance(layer, gym.Wrapper) and hasattr(layer, "set_state"):
                layer.set_state(data["env"])
            else:
                raise TypeError(f"no state handler for {type(layer).__name__}")

    def close(self) -> None:
        """Close every env (nothing to release for a vectorised backend)."""
        for env in self._envs:
            env.close()

    def __enter__(self) -> ReplicaEnvs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReplicaEnvs({self.env_id!r}, seeds={self.seeds}, eval={self.eval})"
