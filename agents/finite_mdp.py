"""Finite MDPs with known dynamics: the data type, its validation and value iteration.

An MDP is a :class:`FiniteMDP` (transition tensor ``P``, expected rewards ``R``, discount ``gamma``), checked by
:func:`validate_mdp_arrays`; :func:`value_iteration` (or :func:`q_value_iteration` on plain arrays) gives its
``Q*``. Every invalid input raises ``ValueError`` with a one-line message.

Why here: both the tabular Q-learning runner (:mod:`agents.tabular`, which checks its rules against ``Q*``) and
the environments (:mod:`suite.envs.mdp`: random and chain MDPs, ``.npz`` files, command-line specs;
:mod:`suite.envs.tabular_env`: an MDP as an environment for the deep agents) need the MDP itself, and
``agents/`` may not import ``suite/``; so the MDP lives in the lower layer and the generators, which are about
where MDPs come from, stay in ``suite/envs/mdp.py``. Plain numpy, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["FiniteMDP", "validate_mdp_arrays", "q_value_iteration", "value_iteration", "ROW_SUM_TOL"]

#: how far a row ``P[s, a]`` may sum from 1
ROW_SUM_TOL = 1e-8


@dataclass(frozen=True, eq=False)
class FiniteMDP:
    """A finite discounted MDP with known dynamics.

    Attributes:
        P: (S, A, S) float64 transition probabilities; each row ``P[s, a]`` sums to 1.
        R: (S, A) float64 expected reward of taking ``a`` in ``s``.
        gamma: discount factor in [0, 1).
        name: label used in reports.

    The arrays are validated, copied to float64 and made read-only on construction.

    Raises:
        ValueError: one line naming what is wrong and what is allowed.
    """

    P: np.ndarray
    R: np.ndarray
    gamma: float
    name: str = field(default="mdp")

    def __post_init__(self) -> None:
        P, R, gamma = validate_mdp_arrays(self.P, self.R, self.gamma)
        P.setflags(write=False)
        R.setflags(write=False)
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "name", str(self.name))

    @property
    def num_states(self) -> int:
        """Number of states S."""
        return int(self.P.shape[0])

    @property
    def num_actions(self) -> int:
        """Number of actions A."""
        return int(self.P.shape[1])


def validate_mdp_arrays(P: np.ndarray, R: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Check a finite MDP given as arrays and return float64 copies of ``(P, R, gamma)``.

    ``P`` must be (S, A, S) with finite nonnegative entries whose rows ``P[s, a]`` sum to 1 within
    1e-8, ``R`` must be (S, A) and finite, and ``gamma`` a real number in [0, 1).

    Raises:
        ValueError: one line naming what is wrong and what is allowed.
    """
    try:
        P = np.array(P, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("P must be a numeric (S, A, S) array of transition probabilities") from None
    try:
        R = np.array(R, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("R must be a numeric (S, A) array of expected rewards") from None
    if P.ndim != 3 or P.shape[0] < 1 or P.shape[1] < 1 or P.shape[2] != P.shape[0]:
        raise ValueError(f"P has shape {P.shape}, must be (S, A, S) with S >= 1 states and A >= 1 actions")
    num_states, num_actions = P.shape[:2]
    if R.shape != (num_states, num_actions):
        raise ValueError(f"R has shape {R.shape}, must be (S, A) = {(num_states, num_actions)} to match P")
    if not np.all(np.isfinite(P)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(P))[0])
        raise ValueError(f"P{list(bad)} is {P[bad]}, entries of P must be finite probabilities in [0, 1]")
    if np.any(P < 0):
        bad = tuple(int(i) for i in np.argwhere(P < 0)[0])
        raise ValueError(f"P{list(bad)} = {P[bad]:.6g} is negative, entries of P must be in [0, 1]")
    sums = P.sum(axis=2)
    off = np.abs(sums - 1.0) > ROW_SUM_TOL
    if np.any(off):
        s, a = (int(i) for i in np.argwhere(off)[0])
        raise ValueError(f"P[{s}, {a}] sums to {sums[s, a]:.10g}, rows of P must sum to 1 (within {ROW_SUM_TOL:g})")
    if not np.all(np.isfinite(R)):
        s, a = (int(i) for i in np.argwhere(~np.isfinite(R))[0])
        raise ValueError(f"R[{s}, {a}] is {R[s, a]}, rewards must be finite")
    try:
        gamma_arr = np.asarray(gamma, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"gamma = {gamma!r} is not a number, gamma must be a real number in [0, 1)") from None
    if gamma_arr.ndim != 0 or not (0.0 <= float(gamma_arr) < 1.0):
        raise ValueError(f"gamma = {gamma!r} is out of range, gamma must be a real number in [0, 1)")
    return P, R, float(gamma_arr)


def q_value_iteration(
    P: np.ndarray, R: np.ndarray, gamma: float, tol: float = 1e-10, max_iters: int = 1_000_000
) -> np.ndarray:
    """Optimal action values ``Q*`` (S, A) of a finite MDP by value iteration on Q.

    Iterates ``Q <- R + gamma * P max_a Q`` and stops when the sup-norm Bellman residual ``d`` of the
    last sweep satisfies ``d * gamma / (1 - gamma) <= tol``, which bounds ``||Q - Q*||_inf <= tol``.
    If rounding makes ``tol`` unreachable (huge rewards or gamma near 1) it stops once the residual is
    at the float64 resolution of ``Q`` instead of spinning to ``max_iters``.

    Raises:
        ValueError: invalid MDP arrays, ``tol <= 0``, or no convergence within ``max_iters`` sweeps.
    """
    P, R, gamma = validate_mdp_arrays(P, R, gamma)
    if not tol > 0:
        raise ValueError(f"tol = {tol!r}, the value-iteration tolerance must be > 0")
    if gamma == 0.0:
        return R.copy()
    bound = gamma / (1.0 - gamma)
    q = R.copy()
    for _ in range(int(max_iters)):
        q_new = R + gamma * (P @ q.max(axis=1))
        residual = float(np.max(np.abs(q_new - q)))
        q = q_new
        rounding_floor = 8.0 * np.finfo(np.float64).eps * max(1.0, float(np.max(np.abs(q))))
        if residual * bound <= tol or residual <= rounding_floor:
            return q
    raise ValueError(
        f"value iteration did not reach tol = {tol:g} within {max_iters} sweeps (gamma = {gamma}), "
        "raise max_iters or tol"
    )


def value_iteration(mdp: FiniteMDP, tol: float = 1e-10, max_iters: int = 1_000_000) -> np.ndarray:
    """``Q*`` (S, A) of ``mdp`` with ``||Q - Q*||_inf <= tol``.

    Stops when the sup-norm Bellman residual ``d`` of a sweep satisfies ``d * gamma / (1 - gamma) <= tol``
    (see :func:`q_value_iteration`, which does the work on plain arrays).

    Raises:
        ValueError: no convergence within ``max_iters`` sweeps, or ``tol <= 0``.
    """
    return q_value_iteration(mdp.P, mdp.R, mdp.gamma, tol=tol, max_iters=max_iters)
