"""Where finite MDPs come from, for checking tabular target rules against value iteration.

An MDP is a :class:`agents.finite_mdp.FiniteMDP` (transition tensor ``P``, expected rewards ``R``, discount ``gamma``;
defined with its validation and :func:`~agents.finite_mdp.value_iteration` in ``agents/finite_mdp.py``, the lower layer, so the
tabular runner in ``agents/`` can use it too; both names are re-exported here). It can be generated
(:func:`random_mdp`, :func:`chain_mdp`), loaded from an ``.npz`` file (:func:`load_npz`) or built from a
command-line spec (:func:`parse_mdp_spec`). Every invalid input raises ``ValueError`` with a one-line message.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
import zlib

import numpy as np

from agents.finite_mdp import FiniteMDP, value_iteration

__all__ = ["FiniteMDP", "random_mdp", "chain_mdp", "load_npz", "parse_mdp_spec", "value_iteration", "SPEC_FORMS"]

SPEC_FORMS = "random:S,A,SEED | chain:N | FILE.npz"
NPZ_KEYS = ("P", "R", "gamma")


def random_mdp(
    num_states: int, num_actions: int, seed: int, gamma: float = 0.9, branching: int | None = None
) -> FiniteMDP:
    """A random MDP: each row ``P[s, a]`` is drawn from a flat Dirichlet, rewards ``R ~ U[0, 1)``.

    With ``branching=None`` the rows are dense (Dirichlet(1, ..., 1) over all S states, i.e. uniform on
    the simplex). With ``branching=k`` each row puts Dirichlet(1, ..., 1) weights on k distinct next
    states drawn uniformly without replacement (the sparse "Garnet" construction). The same arguments
    always give the same MDP.

    Raises:
        ValueError: sizes < 1, branching outside [1, S], or gamma outside [0, 1).
    """
    num_states = _positive_int("num_states", num_states)
    num_actions = _positive_int("num_actions", num_actions)
    rng = np.random.default_rng(seed)
    rows = num_states * num_actions
    if branching is None:
        P = rng.dirichlet(np.ones(num_states), size=rows)
        name = f"random:{num_states},{num_actions},{seed}"
    else:
        if isinstance(branching, bool) or int(branching) != branching or not 1 <= branching <= num_states:
            raise ValueError(f"branching = {branching!r}, must be an integer in [1, S] = [1, {num_states}]")
        branching = int(branching)
        # The k smallest of S uniform keys per row: k distinct states, uniformly, for all rows at once.
        support = np.argsort(rng.random((rows, num_states)), axis=1)[:, :branching]
        P = np.zeros((rows, num_states))
        np.put_along_axis(P, support, rng.dirichlet(np.ones(branching), size=rows), axis=1)
        name = f"random:{num_states},{num_actions},{seed} branching={branching}"
    R = rng.random((num_states, num_actions))
    if gamma != 0.9:
        name += f" gamma={gamma}"
    return FiniteMDP(P.reshape(num_states, num_actions, num_states), R, gamma, name)


def chain_mdp(n: int, gamma: float = 0.9, slip: float = 0.1) -> FiniteMDP:
    """A chain of ``n`` states: action 0 moves left, action 1 moves right, reward at the right end.

    From state ``s`` the intended move (to ``s - 1`` for action 0, ``s + 1`` for action 1, clipped to
    ``[0, n - 1]``) happens with probability ``1 - slip``; with probability ``slip`` the agent moves the
    other way instead. A transition that ends in state ``n - 1`` (arriving or staying) pays 1, every
    other transition 0, so ``R[s, a] = P[s, a, n - 1]``. The optimal policy goes right everywhere.

    Raises:
        ValueError: ``n < 2``, ``slip`` outside [0, 1], or ``gamma`` outside [0, 1).
    """
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise ValueError(f"chain length n = {n!r}, must be an integer >= 2")
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip = {slip!r}, the slip probability must be in [0, 1]")
    n = int(n)
    P = np.zeros((n, 2, n))
    states = np.arange(n)
    left, right = np.maximum(states - 1, 0), np.minimum(states + 1, n - 1)
    # left != right for every state when n >= 2, so each row gets two distinct entries.
    P[states, 0, left] = 1.0 - slip
    P[states, 0, right] = slip
    P[states, 1, right] = 1.0 - slip
    P[states, 1, left] = slip
    R = P[:, :, n - 1].copy()
    name = f"chain:{n}" + ("" if gamma == 0.9 and slip == 0.1 else f" gamma={gamma} slip={slip}")
    return FiniteMDP(P, R, gamma, name)


# Errors np.load and reading archive members raise on unreadable or corrupt files.
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, pickle.UnpicklingError)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def load_npz(path: str | os.PathLike[str]) -> FiniteMDP:
    """Load a :class:`FiniteMDP` from an ``.npz`` archive with arrays ``P`` (S, A, S), ``R`` (S, A)
    and a scalar ``gamma``; the MDP is named after the file.

    Raises:
        ValueError: one line naming the file and the problem: missing/unreadable/corrupt file, missing
            key, bad shape, rows of P not summing to 1, gamma outside [0, 1).
    """
    label = os.fspath(path)
    if not os.path.isfile(label):
        raise ValueError(f"{label}: no such file (expected an .npz archive with keys P, R, gamma)")
    arrays = _read_npz(label)
    gamma = arrays["gamma"]
    if gamma.size != 1:
        raise ValueError(f"{label}: gamma has shape {gamma.shape}, must be a scalar in [0, 1)")
    try:
        return FiniteMDP(arrays["P"], arrays["R"], gamma.reshape(()).item(), name=os.path.basename(label))
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None


def _read_npz(label: str) -> dict[str, np.ndarray]:
    """The arrays P, R, gamma of an existing file; one-line ValueError when it cannot provide them."""
    try:
        data = np.load(label, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise ValueError(f"{label}: cannot read as an .npz archive ({_one_line(exc)})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{label}: not an .npz archive (it holds a single array); save P, R, gamma with np.savez")
    with data:
        missing = [key for key in NPZ_KEYS if key not in data.files]
        if missing:
            raise ValueError(
                f"{label}: missing key(s) {', '.join(missing)}; the archive must hold P, R and gamma "
                f"(found: {', '.join(sorted(data.files)) or 'none'})"
            )
        try:
            return {key: np.asarray(data[key]) for key in NPZ_KEYS}
        except _READ_ERRORS as exc:
            raise ValueError(f"{label}: cannot read as an .npz archive ({_one_line(exc)})") from None


_RANDOM_SPEC = re.compile(r"random:(\d+),(\d+),(\d+)")
_CHAIN_SPEC = re.compile(r"chain:(\d+)")


def parse_mdp_spec(spec: str) -> FiniteMDP:
    """Build an MDP from a spec: ``random:S,A,SEED`` (:func:`random_mdp`, dense, gamma 0.9),
    ``chain:N`` (:func:`chain_mdp`, gamma 0.9, slip 0.1) or a path ending in ``.npz`` (:func:`load_npz`).

    Raises:
        ValueError: one line; an unrecognised spec lists the allowed forms.
    """
    text = str(spec).strip()
    if match := _RANDOM_SPEC.fullmatch(text):
        num_states, num_actions, seed = (int(g) for g in match.groups())
        if num_states < 1 or num_actions < 1:
            raise ValueError(f"bad MDP spec {spec!r}: S and A must be >= 1 (allowed forms: {SPEC_FORMS})")
        return random_mdp(num_states, num_actions, seed)
    if match := _CHAIN_SPEC.fullmatch(text):
        n = int(match.group(1))
        if n < 2:
            raise ValueError(f"bad MDP spec {spec!r}: chain length N must be >= 2 (allowed forms: {SPEC_FORMS})")
        return chain_mdp(n)
    if text.lower().endswith(".npz"):
        return load_npz(text)
    raise ValueError(f"bad MDP spec {spec!r}, allowed forms: {SPEC_FORMS}")


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} = {value!r}, must be an integer >= 1")
    return int(value)
