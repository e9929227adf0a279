"""Finite MDPs: construction, validation, loading, specs and value iteration."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from suite.envs.mdp import FiniteMDP, chain_mdp, load_npz, parse_mdp_spec, random_mdp, value_iteration


def _one_line_error(excinfo: pytest.ExceptionInfo[ValueError]) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


def _bellman_residual(mdp: FiniteMDP, q: np.ndarray) -> float:
    return float(np.max(np.abs(mdp.R + mdp.gamma * mdp.P @ q.max(axis=1) - q)))


# ------------------------------------------------------------------ value iteration


def test_value_iteration_matches_closed_form_two_state_mdp() -> None:
    # Action 0 stays, action 1 switches; staying in state 1 pays 1, everything else 0. So
    # V*(1) = 1/(1-g), V*(0) = g/(1-g) and Q*(s, a) = R(s, a) + g V*(s').
    g = 0.9
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, 0, 1] = P[1, 1, 0] = 1.0
    R = np.array([[0.0, 0.0], [1.0, 0.0]])
    mdp = FiniteMDP(P, R, g, "two-state")
    v0, v1 = g / (1 - g), 1 / (1 - g)
    expected = np.array([[g * v0, g * v1], [1 + g * v1, g * v0]])
    q = value_iteration(mdp)
    assert np.max(np.abs(q - expected)) <= 1e-9
    assert _bellman_residual(mdp, q) <= 1e-9


def test_value_iteration_matches_linear_solve_with_one_action() -> None:
    # With one action Q* is the policy value (I - g P)^-1 R.
    mdp = random_mdp(6, 1, seed=11, gamma=0.95)
    expected = np.linalg.solve(np.eye(6) - mdp.gamma * mdp.P[:, 0, :], mdp.R[:, 0])
    q = value_iteration(mdp)
    assert np.max(np.abs(q[:, 0] - expected)) <= 1e-9
    assert _bellman_residual(mdp, q) <= 1e-9


def test_value_iteration_residual_on_random_mdp_and_gamma_zero() -> None:
    mdp = random_mdp(20, 3, seed=5, branching=4)
    assert _bellman_residual(mdp, value_iteration(mdp)) <= 1e-9
    myopic = random_mdp(4, 2, seed=5, gamma=0.0)
    assert np.array_equal(value_iteration(myopic), myopic.R)


def test_value_iteration_reports_non_convergence() -> None:
    with pytest.raises(ValueError) as excinfo:
        value_iteration(random_mdp(4, 2, seed=0), max_iters=3)
    assert "did not reach" in _one_line_error(excinfo)


# ------------------------------------------------------------------ FiniteMDP validation


def _valid() -> tuple[np.ndarray, np.ndarray]:
    P = np.full((3, 2, 3), 1 / 3)
    R = np.zeros((3, 2))
    return P, R


def test_finite_mdp_properties_and_read_only_arrays() -> None:
    P, R = _valid()
    mdp = FiniteMDP(P, R, 0.5, "m")
    assert (mdp.num_states, mdp.num_actions, mdp.gamma) == (3, 2, 0.5)
    assert mdp.P.dtype == np.float64 and not mdp.P.flags.writeable and not mdp.R.flags.writeable
    P[0, 0, 0] = 7.0  # the MDP holds a copy
    assert mdp.P[0, 0, 0] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda P, R: (P[0], R, 0.9), "must be (S, A, S)"),
        (lambda P, R: (np.full((3, 2, 4), 0.25), R, 0.9), "must be (S, A, S)"),
        (lambda P, R: (P, R[:, :1], 0.9), "R has shape (3, 1)"),
        (lambda P, R: (_scaled_row(P), R, 0.9), "P[1, 0] sums to"),
        (lambda P, R: (_negative(P), R, 0.9), "is negative"),
        (lambda P, R: (_nan(P), R, 0.9), "must be finite"),
        (lambda P, R: (P, np.where(R == 0, np.inf, R), 0.9), "rewards must be finite"),
        (lambda P, R: (P, R, 1.0), "gamma must be a real number in [0, 1)"),
        (lambda P, R: (P, R, -0.1), "gamma must be a real number in [0, 1)"),
        (lambda P, R: (P, R, float("nan")), "gamma must be a real number in [0, 1)"),
        (lambda P, R: (P, R, "high"), "gamma must be a real number in [0, 1)"),
        (lambda P, R: (P, R, [0.5, 0.5]), "gamma must be a real number in [0, 1)"),
    ],
)
def test_finite_mdp_rejects_bad_inputs(change, needle: str) -> None:
    P, R, gamma = change(*_valid())
    with pytest.raises(ValueError) as excinfo:
        FiniteMDP(P, R, gamma, "bad")
    assert needle in _one_line_error(excinfo)


def _scaled_row(P: np.ndarray) -> np.ndarray:
    P = P.copy()
    P[1, 0] *= 0.9
    return P


def _negative(P: np.ndarray) -> np.ndarray:
    P = P.copy()
    P[2, 1] = [-0.5, 1.0, 0.5]
    return P


def _nan(P: np.ndarray) -> np.ndarray:
    P = P.copy()
    P[0, 1, 2] = np.nan
    return P


def test_row_sum_message_names_row_and_rule() -> None:
    P, R = _valid()
    P[1, 0] = [0.3, 0.3, 0.3]
    with pytest.raises(ValueError) as excinfo:
        FiniteMDP(P, R, 0.9, "bad")
    assert _one_line_error(excinfo).startswith("P[1, 0] sums to 0.9, rows of P must sum to 1")


# ------------------------------------------------------------------ generators


def test_random_mdp_dense_and_sparse() -> None:
    dense = random_mdp(7, 3, seed=2)
    assert dense.P.shape == (7, 3, 7) and dense.R.shape == (7, 3) and dense.gamma == 0.9
    assert np.allclose(dense.P.sum(axis=2), 1.0) and np.all(dense.P > 0)
    assert np.all((dense.R >= 0) & (dense.R < 1))
    assert np.array_equal(random_mdp(7, 3, seed=2).P, dense.P)
    assert not np.array_equal(random_mdp(7, 3, seed=3).P, dense.P)
    sparse = random_mdp(7, 3, seed=2, branching=2)
    assert np.all((sparse.P > 0).sum(axis=2) == 2)
    assert np.allclose(sparse.P.sum(axis=2), 1.0)
    for bad in (0, 8, 1.5):
        with pytest.raises(ValueError) as excinfo:
            random_mdp(7, 3, seed=2, branching=bad)
        assert "branching" in _one_line_error(excinfo)


def test_chain_mdp_structure_and_optimal_policy() -> None:
    mdp = chain_mdp(5, slip=0.2)
    assert mdp.P[2, 1, 3] == pytest.approx(0.8) and mdp.P[2, 1, 1] == pytest.approx(0.2)
    assert mdp.P[0, 0, 0] == pytest.approx(0.8) and mdp.P[4, 1, 4] == pytest.approx(0.8)
    assert np.array_equal(mdp.R, mdp.P[:, :, 4])
    assert np.all(value_iteration(mdp).argmax(axis=1) == 1)  # go right everywhere
    for kwargs in ({"n": 1}, {"n": 4, "slip": 1.5}, {"n": 4, "gamma": 1.0}):
        with pytest.raises(ValueError) as excinfo:
            chain_mdp(**kwargs)
        _one_line_error(excinfo)


# ------------------------------------------------------------------ load_npz


def test_load_npz_round_trip(tmp_path) -> None:
    src = random_mdp(4, 2, seed=1)
    path = tmp_path / "mdp.npz"
    np.savez(path, P=src.P, R=src.R, gamma=np.float64(0.8))
    mdp = load_npz(path)
    assert np.array_equal(mdp.P, src.P) and np.array_equal(mdp.R, src.R)
    assert mdp.gamma == 0.8 and mdp.name == "mdp.npz"


def _write_npz(path, **arrays) -> None:
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    ("arrays", "needle"),
    [
        ({"P": np.full((2, 1, 2), 0.5), "R": np.zeros((2, 1))}, "missing key(s) gamma"),
        ({"P": np.full((2, 1, 2), 0.5), "R": np.zeros((2, 2)), "gamma": 0.9}, "R has shape (2, 2)"),
        ({"P": np.full((2, 1, 2), 0.4), "R": np.zeros((2, 1)), "gamma": 0.9}, "rows of P must sum to 1"),
        ({"P": np.full((2, 1, 2), 0.5), "R": np.zeros((2, 1)), "gamma": 1.0}, "gamma must be a real number in [0, 1)"),
        ({"P": np.full((2, 1, 2), 0.5), "R": np.zeros((2, 1)), "gamma": [0.9, 0.8]}, "gamma has shape (2,)"),
    ],
)
def test_load_npz_rejects_bad_contents(tmp_path, arrays, needle: str) -> None:
    path = tmp_path / "bad.npz"
    _write_npz(path, **arrays)
    with pytest.raises(ValueError) as excinfo:
        load_npz(path)
    message = _one_line_error(excinfo)
    assert str(path) in message and needle in message


def test_load_npz_rejects_unreadable_files(tmp_path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive\n" * 10)
    valid = tmp_path / "valid.npz"
    mdp = random_mdp(3, 2, seed=0)
    np.savez_compressed(valid, P=mdp.P, R=mdp.R, gamma=0.9)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(valid.read_bytes()[: len(valid.read_bytes()) // 2])
    corrupt_member = tmp_path / "member.npz"
    with zipfile.ZipFile(corrupt_member, "w") as archive:
        archive.writestr("P.npy", b"\x93NUMPY garbage")
        archive.writestr("R.npy", b"junk")
        archive.writestr("gamma.npy", b"junk")
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as handle:
        np.save(handle, np.zeros(3))
    for path, needle in [
        (garbage, "cannot read"),
        (truncated, "cannot read"),
        (corrupt_member, "cannot read"),
        (npy, "not an .npz archive"),
        (tmp_path / "absent.npz", "no such file"),
        (tmp_path, "no such file"),
    ]:
        with pytest.raises(ValueError) as excinfo:
            load_npz(path)
        message = _one_line_error(excinfo)
        assert str(path) in message and needle in message, message


# ------------------------------------------------------------------ specs


def test_parse_mdp_spec_forms(tmp_path) -> None:
    mdp = parse_mdp_spec("random:5,3,9")
    assert (mdp.num_states, mdp.num_actions) == (5, 3)
    assert np.array_equal(mdp.P, random_mdp(5, 3, 9).P)
    assert parse_mdp_spec("chain:6").num_states == 6
    path = tmp_path / "m.npz"
    np.savez(path, P=mdp.P, R=mdp.R, gamma=0.5)
    assert parse_mdp_spec(str(path)).gamma == 0.5


@pytest.mark.parametrize(
    "spec",
    ["", "random", "random:3,2", "random:3,2,1,4", "random:a,b,c", "random:-3,2,1", "chain:", "chain:x",
     "chain:3,4", "grid:3", "mdp.txt"],
)
def test_parse_mdp_spec_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_mdp_spec(spec)
    assert "random:S,A,SEED | chain:N | FILE.npz" in _one_line_error(excinfo)


@pytest.mark.parametrize(("spec", "needle"), [("random:0,2,1", "S and A must be >= 1"), ("chain:1", "N must be >= 2")])
def test_parse_mdp_spec_rejects_bad_sizes(spec: str, needle: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_mdp_spec(spec)
    assert needle in _one_line_error(excinfo)


def test_parse_mdp_spec_missing_file_names_it(tmp_path) -> None:
    path = tmp_path / "nothing.npz"
    with pytest.raises(ValueError) as excinfo:
        parse_mdp_spec(str(path))
    assert str(path) in _one_line_error(excinfo)
