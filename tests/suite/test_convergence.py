"""The ``convergence`` command body: output formats, errors, and the default budget's claim."""

from __future__ import annotations

import argparse
import json

import pytest

from agents.target_registry import RULES
from suite.convergence import DEFAULT_STEPS, add_arguments, main

KEYS = {
    "rule", "final_error_online", "final_error_target", "q_star_norm", "relative_error", "converged",
    "errors", "steps", "runs", "sampling", "wall_s",
}


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="targetbench convergence")
    add_arguments(parser)
    return parser.parse_args(list(argv))


def _json_lines(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    assert main(_args(*argv, "--json")) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_json_lines_have_the_keys(capsys) -> None:
    records = _json_lines(capsys, "--mdp", "random:4,2,3", "--steps", "2000", "--runs", "2")
    assert [r["rule"] for r in records] == list(RULES)
    for record in records:
        assert KEYS <= record.keys()
        assert record["steps"] == 2000 and record["runs"] == 2 and record["sampling"] == "sync"
        assert record["errors"][-1][0] == 2000 and all(len(row) == 3 for row in record["errors"])
        assert record["final_error_online"] == record["errors"][-1][1]
        worst = max(record["final_error_online"], record["final_error_target"])
        assert record["relative_error"] == pytest.approx(worst / record["q_star_norm"])
        assert record["converged"] == (record["relative_error"] < 0.01)


def test_rule_subset_and_trajectory_sampling(capsys) -> None:
    records = _json_lines(
        capsys, "--mdp", "chain:4", "--rules", "agt2, hard", "--steps", "500", "--runs", "1",
        "--sampling", "trajectory", "--epsilon", "1",
    )
    assert [r["rule"] for r in records] == ["agt2", "hard"]
    assert records[0]["sampling"] == "trajectory"


def test_sgt2_forms_and_their_switches(capsys) -> None:
    records = _json_lines(capsys, "--mdp", "random:5,2,1", "--rules", "sgt2,sgt2-mutual,agt2", "--steps", "300",
                          "--runs", "1", "--eta", "0.25", "--beta", "0.2")
    assert [r["rule"] for r in records] == ["sgt2", "sgt2-mutual", "agt2"]
    assert records[0]["knobs"] == {"eta": 0.25, "target_init": "independent"}
    assert records[1]["knobs"] == {"eta": 0.25, "beta": 0.2, "track": "state", "target_init": "independent"}
    assert records[2]["knobs"] == {"beta": 0.2, "track": "state"}
    # --target-init copy makes sgt2 target-free Q-learning (same samples): the switch reaches the rule
    copy = _json_lines(capsys, "--mdp", "random:5,2,1", "--rules", "sgt2,target-free", "--steps", "300",
                       "--runs", "1", "--target-init", "copy")
    assert copy[0]["knobs"]["target_init"] == "copy" and copy[0]["errors"] == copy[1]["errors"]
    assert records[0]["errors"] != copy[1]["errors"]
    # --track pair moves fewer target entries on trajectories
    kwargs = ("--mdp", "random:5,2,1", "--rules", "agt2", "--steps", "300", "--runs", "1", "--sampling", "trajectory")
    (pair,) = _json_lines(capsys, *kwargs, "--track", "pair")
    (state,) = _json_lines(capsys, *kwargs)
    assert pair["knobs"]["track"] == "pair" and pair["errors"] != state["errors"]


def test_files_written_without_json(tmp_path, capsys) -> None:
    out = tmp_path / "nested" / "conv"
    assert main(_args("--mdp", "random:3,2,1", "--steps", "300", "--runs", "2", "--out", str(out))) == 0
    for name in ("convergence.png", "convergence.pdf", "convergence.md"):
        assert (out / name).stat().st_size > 0
    table = (out / "convergence.md").read_text()
    assert "| rule | final online error | final target error | relative error | converged |" in table
    assert all(f"| {rule} |" in table for rule in RULES)
    printed = capsys.readouterr().out
    assert "| target-free |" in printed and str(out / "convergence.png") in printed


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--mdp", "random:3,2,1", "--rules", "hard,polyak"], "unknown rule(s) 'polyak'"),
        (["--mdp", "random:3,2,1", "--rules", ","], "no rule given"),
        (["--mdp", "random:3,2"], "allowed forms: random:S,A,SEED | chain:N | FILE.npz"),
        (["--mdp", "missing.npz"], "missing.npz: no such file"),
        (["--mdp", "random:3,2,1", "--steps", "0"], "steps=0 is out of range; allowed: [1, inf)"),
        (["--mdp", "random:3,2,1", "--tau", "2"], "tau"),
        (["--mdp", "random:3,2,1", "--rules", "sgt2-mutual", "--beta", "0"], "beta=0.0 is out of range; allowed: (0, 1]"),
    ],
)
def test_bad_arguments_raise_one_line_value_errors(tmp_path, argv: list[str], needle: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        main(_args(*argv, "--out", str(tmp_path / "out")))
    message = str(excinfo.value)
    assert needle in message and "\n" not in message


def test_unknown_rule_message_lists_allowed_rules() -> None:
    with pytest.raises(ValueError, match="allowed: all or a comma-separated subset of " + ", ".join(RULES)):
        main(_args("--mdp", "random:3,2,1", "--rules", "nope", "--json"))


def test_out_must_not_overwrite_a_file(tmp_path) -> None:
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        main(_args("--mdp", "random:3,2,1", "--steps", "10", "--out", str(target)))
    assert target.read_text() == "keep me"


# ------------------------------------------------------------------ the default budget's claim
# Seeds 7 and 8 were not used while the defaults were chosen (tuning and timing used seeds 0, 100-105, 123).


@pytest.mark.parametrize("spec", ["random:6,2,7", pytest.param("random:12,3,8", marks=pytest.mark.slow),
                                  pytest.param("random:30,4,7", marks=pytest.mark.slow)])
def test_default_budget_converges_for_every_rule(capsys, spec: str) -> None:
    records = _json_lines(capsys, "--mdp", spec, "--runs", "2", "--seed", "3")
    assert all(r["steps"] == DEFAULT_STEPS for r in records)
    assert {r["rule"]: r["converged"] for r in records} == dict.fromkeys(RULES, True), [
        (r["rule"], r["relative_error"]) for r in records
    ]


def test_a_bad_step_size_misses_the_tolerance(capsys) -> None:
    # A constant step size of 0.5 never averages the sampling noise out: the check must fail.
    (record,) = _json_lines(
        capsys, "--mdp", "random:6,2,7", "--runs", "2", "--seed", "3", "--rules", "target-free",
        "--step-size", "constant", "--alpha", "0.5",
    )
    assert not record["converged"] and record["relative_error"] > 0.01
