"""Numpy-vectorised CartPole-v1, Acrobot-v1 and MountainCar-v0: R independent replicas per array op.

Each class reproduces gymnasium's per-env implementation (``CartPoleEnv``, ``AcrobotEnv``,
``MountainCarEnv`` under ``TimeLimit``) *bit for bit*: for the same seed and actions, replica ``r``
yields the same float32 observations, rewards, terminated/truncated flags as the gymnasium env.
That rests on four rules, each mirroring what the per-env code does:

* Same operations in the same order. IEEE add/sub/mul/div are correctly rounded, so a numpy array
  op gives exactly the value the per-env code gets from the same op on numpy or python scalars;
  the formulas below are copied from gymnasium with arrays in place of scalars, constants still
  combined as python floats first (python evaluates ``m2 * l1 * lc2 * x`` left to right).
* Transcendental functions by the same implementation. CartPole/Acrobot call ``np.cos``/``np.sin``
  on numpy scalars, which run the very ufunc loop an array call runs (element by element, no
  cross-lane effects), so array calls match. MountainCar calls ``math.cos``, i.e. libm; numpy's
  loop need not equal libm on every CPU/numpy build, so it is called per element here too.
* ``np.float64 ** 2`` is libm ``pow(x, 2.0)`` (numpy scalar power), which is *not* always the
  correctly rounded ``x * x`` that an array ``** 2`` computes (it differs in ~0.1% of cases), so
  Acrobot's squares are computed with ``math.pow`` per element (:func:`_pow2`).
* Resets draw from one ``np.random.Generator`` per replica, seeded exactly as gymnasium seeds an env
  (``gymnasium.utils.seeding.np_random(seed)``) and consumed by the same calls, so a replica's
  trajectory depends only on its own seed and actions.

Physics state is kept component-major (``[D, R]``: each state variable is one contiguous row).
"""

from __future__ import annotations

import math
from itertools import repeat
from typing import Any, ClassVar, Sequence

import numpy as np
from gymnasium.envs.classic_control import AcrobotEnv, CartPoleEnv, MountainCarEnv
from gymnasium.utils import seeding

from suite.envs.rng_state import generator_from_state, generator_state

__all__ = ["AcrobotVec", "CartPoleVec", "ClassicVecEnv", "MountainCarVec", "make_classic_vec"]

_F32 = np.float32


def _pow2(x: np.ndarray) -> np.ndarray:
    """libm ``pow(v, 2.0)`` of each element of a 1-D float64 array (what ``np.float64(v) ** 2`` returns)."""
    return np.fromiter(map(math.pow, x.tolist(), repeat(2.0)), np.float64, x.shape[0])


class ClassicVecEnv:
    """R replicas of one classic-control env with gymnasium's TimeLimit, stepped with array ops.

    No autoreset here: :meth:`step` returns the transition and the caller resets the replicas whose
    episode ended with :meth:`reset_indices` (as it would call ``env.reset()`` on a per-env
    gymnasium env). Subclasses define the physics (``_step_physics``) and one replica's reset
    (``_reset_one``).
    """

    env_id: ClassVar[str]
    state_dim: ClassVar[int]
    obs_dim: ClassVar[int]
    num_actions: ClassVar[int]
    _proto_cls: ClassVar[type]

    def __init__(self, seeds: Sequence[int], max_episode_steps: int) -> None:
        self.seeds: list[int] = [int(s) for s in seeds]
        for s in self.seeds:
            if s < 0:
                raise ValueError(f"seed must be a non-negative int, got {s!r}")
        self.num_replicas = len(self.seeds)
        self.max_episode_steps = int(max_episode_steps)
        if self.max_episode_steps <= 0:
            raise ValueError(f"max_episode_steps must be positive, got {max_episode_steps!r}")
        # A gymnasium instance supplies the constants, so they are the installed version's own.
        self._proto = self._proto_cls()
        self.observation_space = self._proto.observation_space
        assert int(self._proto.action_space.n) == self.num_actions
        self._rngs: list[np.random.Generator | None] = [None] * self.num_replicas
        self._state = np.zeros((self.state_dim, self.num_replicas), dtype=np.float64)
        self._elapsed = np.zeros(self.num_replicas, dtype=np.int64)

    # ------------------------------------------------------------------ API

    def reset(self, *, seeded: bool) -> np.ndarray:
        """Reset every replica; with ``seeded`` first reseed each from its seed (gymnasium's ``reset(seed=s)``).

        Returns float32 observations ``[R, obs_dim]``.
        """
        if seeded:
            self._rngs = [seeding.np_random(s)[0] for s in self.seeds]
        return self.reset_indices(range(self.num_replicas))

    def reset_indices(self, indices: Any) -> np.ndarray:
        """Reset the given replicas (``reset()`` without seed: each continues its own RNG); returns ``[k, obs_dim]``."""
        idx = [int(i) for i in indices]
        obs = np.empty((len(idx), self.obs_dim), dtype=_F32)
        for j, i in enumerate(idx):
            obs[j] = self._reset_one(i)
            self._elapsed[i] = 0
        return obs

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step replica ``i`` with ``actions[i]`` (valid integer actions, already range-checked).

        Returns ``(next_obs float32 [R, obs_dim], reward float32 [R], terminated [R], truncated [R])``
        (classic rewards are -1, 0 or +1, exact in float32, so no separate raw reward is needed);
        ``truncated`` is TimeLimit's ``elapsed >= max_episode_steps`` (also set when terminated).
        """
        obs, reward, terminated = self._step_physics(actions)
        self._elapsed += 1
        truncated = self._elapsed >= self.max_episode_steps
        return obs, reward, terminated, truncated

    def get_state(self) -> dict[str, Any]:
        """Data-only snapshot: physics state ``[R, D]`` (float64), TimeLimit counters, per-replica RNG states."""
        return {
            "state": self._state.T.copy(),
            "elapsed_steps": self._elapsed.copy(),
            "np_random": [generator_state(g) for g in self._rngs],
        }

    def set_state(self, data: dict[str, Any]) -> None:
        """Inverse of :meth:`get_state`."""
        state = np.asarray(data["state"], dtype=np.float64)
        if state.shape != (self.num_replicas, self.state_dim):
            raise ValueError(f"state has shape {state.shape}, expected {(self.num_replicas, self.state_dim)}")
        rngs = list(data["np_random"])
        if len(rngs) != self.num_replicas:
            raise ValueError(f"state has {len(rngs)} RNG states, expected {self.num_replicas}")
        self._state = np.ascontiguousarray(state.T)
        self._elapsed = np.array(data["elapsed_steps"], dtype=np.int64).reshape(self.num_replicas)
        self._rngs = [generator_from_state(g) for g in rngs]

    def replica_gym_state(self, i: int) -> dict[str, Any]:
        """Replica ``i`` in the per-env layout of :func:`suite.envs.classic.get_classic_state`, plus ``elapsed_steps``."""
        return {
            "state": self._state[:, i].copy(),
            "steps_beyond_terminated": None,  # always None between ReplicaEnvs steps (ended episodes are reset)
            "np_random": generator_state(self._rngs[i]),
            "elapsed_steps": int(self._elapsed[i]),
        }

    # ------------------------------------------------------------ subclass

    def _reset_one(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def _step_physics(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError


class CartPoleVec(ClassicVecEnv):
    """Vectorised ``CartPoleEnv`` (euler integrator, reward +1 on every step including the last)."""

    env_id = "CartPole-v1"
    state_dim = 4
    obs_dim = 4
    num_actions = 2
    _proto_cls = CartPoleEnv

    def __init__(self, seeds: Sequence[int], max_episode_steps: int) -> None:
        super().__init__(seeds, max_episode_steps)
        p = self._proto
        if p.kinematics_integrator != "euler" or p._sutton_barto_reward:
            raise NotImplementedError("CartPoleVec implements the default euler / +1 reward CartPole only")
        # gymnasium: force = force_mag if action == 1 else -force_mag
        self._force = np.array([-p.force_mag, p.force_mag], dtype=np.float64)
        self._thresholds = np.array([[p.x_threshold], [p.theta_threshold_radians]], dtype=np.float64)
        self._ones = np.ones(self.num_replicas, dtype=_F32)

    def _reset_one(self, i: int) -> np.ndarray:
        # CartPoleEnv.reset with default bounds (-0.05, 0.05)
        state = self._rngs[i].uniform(low=-0.05, high=0.05, size=(4,))
        self._state[:, i] = state
        return np.array(state, dtype=_F32)

    def _step_physics(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.num_replicas == 1:
            return self._step_one(int(actions[0]))
        p = self._proto
        s = self._state
        theta, theta_dot = s[2], s[3]
        force = self._force[actions]
        # --- copied from CartPoleEnv.step (arrays for scalars) ---
        costheta = np.cos(theta)
        sintheta = np.sin(theta)
        temp = (force + p.polemass_length * np.square(theta_dot) * sintheta) / p.total_mass
        thetaacc = (p.gravity * sintheta - costheta * temp) / (
            p.length * (4.0 / 3.0 - p.masspole * np.square(costheta) / p.total_mass)
        )
        xacc = temp - p.polemass_length * thetaacc * costheta / p.total_mass
        # euler: x = x + tau * x_dot, x_dot = x_dot + tau * xacc, theta = theta + tau * theta_dot,
        # theta_dot = theta_dot + tau * thetaacc; positions first, while the rows hold the old velocities.
        s[0::2] += p.tau * s[1::2]
        s[1] += p.tau * xacc
        s[3] += p.tau * thetaacc
        # x < -x_threshold or x > x_threshold or theta < -theta_thr or theta > theta_thr (|v| > t is the same test)
        beyond = np.abs(s[0::2]) > self._thresholds
        terminated = beyond[0] | beyond[1]
        obs = s.T.astype(_F32, order="C")
        return obs, self._ones.copy(), terminated

    def _step_one(self, action: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The same step for one replica on python floats: ~20 numpy calls on 1-element arrays cost ~15 µs, the
        scalar arithmetic ~2. Bitwise the same: python floats are the float64 ops numpy scalars do, ``x * x`` is
        ``np.square``, and cos/sin go through numpy's ufunc as in gymnasium."""
        p = self._proto
        x, x_dot, theta, theta_dot = self._state[:, 0].tolist()
        force = p.force_mag if action == 1 else -p.force_mag
        costheta = float(np.cos(theta))
        sintheta = float(np.sin(theta))
        temp = (force + p.polemass_length * (theta_dot * theta_dot) * sintheta) / p.total_mass
        thetaacc = (p.gravity * sintheta - costheta * temp) / (
            p.length * (4.0 / 3.0 - p.masspole * (costheta * costheta) / p.total_mass)
        )
        xacc = temp - p.polemass_length * thetaacc * costheta / p.total_mass
        x = x + p.tau * x_dot
        x_dot = x_dot + p.tau * xacc
        theta = theta + p.tau * theta_dot
        theta_dot = theta_dot + p.tau * thetaacc
        self._state[:, 0] = (x, x_dot, theta, theta_dot)
        terminated = abs(x) > p.x_threshold or abs(theta) > p.theta_threshold_radians
        obs = np.array(((x, x_dot, theta, theta_dot),), dtype=_F32)
        return obs, self._ones.copy(), np.array((terminated,))


class AcrobotVec(ClassicVecEnv):
    """Vectorised ``AcrobotEnv`` ("book" dynamics, RK4 over one ``dt``, no torque noise)."""

    env_id = "Acrobot-v1"
    state_dim = 4
    obs_dim = 6
    num_actions = 3
    _proto_cls = AcrobotEnv

    def __init__(self, seeds: Sequence[int], max_episode_steps: int) -> None:
        super().__init__(seeds, max_episode_steps)
        p = self._proto
        if p.book_or_nips != "book" or p.torque_noise_max > 0:
            raise NotImplementedError("AcrobotVec implements the default book dynamics without torque noise only")
        self._torque = np.array(p.AVAIL_TORQUE, dtype=np.float64)
        self._bound_lo = np.array([[-p.MAX_VEL_1], [-p.MAX_VEL_2]], dtype=np.float64)
        self._bound_hi = np.array([[p.MAX_VEL_1], [p.MAX_VEL_2]], dtype=np.float64)

    def _reset_one(self, i: int) -> np.ndarray:
        # AcrobotEnv.reset: the state is float32 until the first step, and so is the trig of the reset obs.
        s = self._rngs[i].uniform(low=-0.1, high=0.1, size=(4,)).astype(np.float32)
        self._state[:, i] = s  # exact upcast; step() appends the torque, which promotes to float64 anyway
        return np.array([np.cos(s[0]), np.sin(s[0]), np.cos(s[1]), np.sin(s[1]), s[2], s[3]], dtype=_F32)

    def _dsdt(self, s: np.ndarray, a: np.ndarray) -> np.ndarray:
        """AcrobotEnv._dsdt for all replicas: ``s`` is ``[4, R]``, ``a`` the torque ``[R]``; returns ``[4, R]``."""
        p = self._proto
        m1 = p.LINK_MASS_1
        m2 = p.LINK_MASS_2
        l1 = p.LINK_LENGTH_1
        lc1 = p.LINK_COM_POS_1
        lc2 = p.LINK_COM_POS_2
        I1 = p.LINK_MOI  # noqa: N806 - gymnasium's names
        I2 = p.LINK_MOI  # noqa: N806
        g = 9.8
        pi = np.pi
        theta1 = s[0]
        theta2 = s[1]
        dtheta1 = s[2]
        dtheta2 = s[3]
        cos_theta2 = np.cos(theta2)
        sin_theta2 = np.sin(theta2)
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * cos_theta2) + I1 + I2
        d2 = m2 * (lc2**2 + l1 * lc2 * cos_theta2) + I2
        # dtheta1**2, dtheta2**2, d2**2 as numpy scalar power (libm pow), in one per-element pass
        r = s.shape[1]
        sq = _pow2(np.concatenate((dtheta1, dtheta2, d2)))
        dtheta1_sq, dtheta2_sq, d2_sq = sq[:r], sq[r : 2 * r], sq[2 * r :]
        phi2 = m2 * lc2 * g * np.cos(theta1 + theta2 - pi / 2.0)
        phi1 = (
            -m2 * l1 * lc2 * dtheta2_sq * sin_theta2
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin_theta2
            + (m1 * lc1 + m2 * l1) * g * np.cos(theta1 - pi / 2)
            + phi2
        )
        out = np.empty_like(s)
        out[0] = dtheta1
        out[1] = dtheta2
        ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1_sq * sin_theta2 - phi2) / (
            m2 * lc2**2 + I2 - d2_sq / d1
        )
        out[3] = ddtheta2
        out[2] = -(d2 * ddtheta2 + phi1) / d1
        return out

    def _step_physics(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self._proto
        torque = self._torque[actions]
        # --- rk4(self._dsdt, s_augmented, [0, self.dt]) for one interval; the torque component of the
        # augmented state has derivative 0.0 and stays exactly the torque, so it is passed alongside.
        y0 = self._state
        t = [0, p.dt]
        dt = t[1] - t[0]
        dt2 = dt / 2.0
        k1 = self._dsdt(y0, torque)
        k2 = self._dsdt(y0 + dt2 * k1, torque)
        k3 = self._dsdt(y0 + dt2 * k2, torque)
        k4 = self._dsdt(y0 + dt * k3, torque)
        ns = y0 + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        # wrap(ns[0], -pi, pi), wrap(ns[1], -pi, pi): |v| > pi is rare, so test that once first
        pi = np.pi
        if (np.abs(ns[:2]) > pi).any():
            for j in (0, 1):
                ns[j] = _wrap(ns[j], -pi, pi)
        # bound(v, -MAX, MAX) = min(max(v, -MAX), MAX), NaN-propagating like np.clip
        np.clip(ns[2:], self._bound_lo, self._bound_hi, out=ns[2:])
        self._state = ns
        # _terminal: -cos(s[0]) - cos(s[1] + s[0]) > 1.0 ; _get_ob: cos/sin of both angles, both velocities
        trig = np.empty((6, self.num_replicas), dtype=np.float64)
        np.cos(ns[:2], out=trig[0:4:2])
        np.sin(ns[:2], out=trig[1:4:2])
        trig[4:] = ns[2:]
        terminated = -trig[0] - np.cos(ns[1] + ns[0]) > 1.0
        reward = (terminated - 1.0).astype(_F32)  # -1.0 if not terminated else 0.0
        return trig.T.astype(_F32, order="C"), reward, terminated


def _wrap(x: np.ndarray, m: float, M: float) -> np.ndarray:  # noqa: N803 - gymnasium's names
    """gymnasium's ``acrobot.wrap`` element-wise: the same repeated subtractions/additions per element."""
    diff = M - m
    while True:
        over = x > M
        if not over.any():
            break
        x = np.where(over, x - diff, x)
    while True:
        under = x < m
        if not under.any():
            break
        x = np.where(under, x + diff, x)
    return x


class MountainCarVec(ClassicVecEnv):
    """Vectorised ``MountainCarEnv`` (goal_velocity 0, reward -1 per step)."""

    env_id = "MountainCar-v0"
    state_dim = 2
    obs_dim = 2
    num_actions = 3
    _proto_cls = MountainCarEnv

    def __init__(self, seeds: Sequence[int], max_episode_steps: int) -> None:
        super().__init__(seeds, max_episode_steps)
        self._minus_ones = np.full(self.num_replicas, -1.0, dtype=_F32)

    def _reset_one(self, i: int) -> np.ndarray:
        # MountainCarEnv.reset with default bounds (-0.6, -0.4)
        state = np.array([self._rngs[i].uniform(low=-0.6, high=-0.4), 0])
        self._state[:, i] = state
        return np.array(state, dtype=_F32)

    def _step_physics(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self._proto
        actions = np.asarray(actions, dtype=np.int64)  # action - 1 must not wrap for unsigned dtypes
        position, velocity = self._state
        # math.cos (libm) per element, exactly as MountainCarEnv.step calls it
        cos3 = np.fromiter(map(math.cos, (3 * position).tolist()), np.float64, self.num_replicas)
        # --- copied from MountainCarEnv.step ---
        velocity = velocity + ((actions - 1) * p.force + cos3 * (-p.gravity))
        velocity = np.clip(velocity, -p.max_speed, p.max_speed)
        position = position + velocity
        position = np.clip(position, p.min_position, p.max_position)
        velocity[(position == p.min_position) & (velocity < 0)] = 0.0
        terminated = (position >= p.goal_position) & (velocity >= p.goal_velocity)
        state = np.empty_like(self._state)
        state[0] = position
        state[1] = velocity
        self._state = state
        return state.T.astype(_F32, order="C"), self._minus_ones.copy(), terminated


_VEC: dict[str, type[ClassicVecEnv]] = {c.env_id: c for c in (CartPoleVec, AcrobotVec, MountainCarVec)}


def make_classic_vec(env_id: str, seeds: Sequence[int], options: dict[str, Any]) -> ClassicVecEnv:
    """The vectorised env for a classic-control id with resolved ``options`` (``max_episode_steps``)."""
    return _VEC[env_id](seeds, int(options["max_episode_steps"]))
