"""`targetbench verify`: reruns exported runs from their recorded configs on this machine and finds them identical;
a shipped point or hash that differs is reported with the largest difference and exit 6; a config that no longer
rebuilds the recorded trial is not rerun."""
from __future__ import annotations

import pytest

from analysis.run_table import read_run_table, write_run_table
from suite import results
from suite.cli import main


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A tiny results folder: dqn on CartPole, seeds 0 and 1 batched, exported by `make results` itself."""
    tmp = tmp_path_factory.mktemp("verify")
    out = tmp / "out"
    assert results.main(["--part", "classic", "--steps", "300", "--seeds", "0,1", "--agents", "dqn", "--envs",
                         "CartPole-v1", "--out", str(out), "--results", str(tmp / "store"), "--workers", "1",
                         "--reps", "100", "--quiet"]) == 0
    return out


def test_rerun_on_this_machine_is_identical(shipped, capsys):
    assert main(["verify", "--reference", str(shipped), "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["dqn CartPole-v1 seed 0: identical (params_sha256 and 1/1 evaluation points)",
                       "dqn CartPole-v1 seed 1: identical (params_sha256 and 1/1 evaluation points)"]
    assert out[-1].startswith("verify: 2 of 2 reruns identical")


def test_a_difference_is_reported_with_its_size(shipped, tmp_path, capsys):
    table = read_run_table(shipped / "runs" / "classic.csv.gz")
    one = table["seed"] == 1
    table.loc[one, "eval_return"] += 1.5
    table.loc[one, "params_sha256"] = "0" * 64
    write_run_table(table, tmp_path / "runs" / "classic.csv.gz")
    assert main(["verify", "--reference", str(tmp_path), "--quiet"]) == 6
    out = capsys.readouterr().out
    assert "dqn CartPole-v1 seed 0: identical" in out
    line = next(x for x in out.splitlines() if x.startswith("dqn CartPole-v1 seed 1"))
    assert "DIFFERS: params_sha256 differs; 0/1 evaluation points equal; largest difference 1.5 at step 300" in line
    assert "likely cause:" in line and "equivalence dqn CartPole-v1: P(rerun > shipped)" in out
    assert out.splitlines()[-1].startswith("verify: 1 of 2 reruns identical")


def test_a_config_that_no_longer_rebuilds_is_not_rerun(shipped, tmp_path, capsys):
    table = read_run_table(shipped / "runs" / "classic.csv.gz")
    table["param.agent.learning_rate"] = "0.5"
    write_run_table(table, tmp_path / "runs" / "classic.csv.gz")
    assert main(["verify", "--reference", str(tmp_path), "--quiet"]) == 6
    out = capsys.readouterr().out
    assert "dqn CartPole-v1 seeds 0,1: NOT RERUN: the rebuilt trial hash" in out and "runs not rerun" in out


def test_bad_filters_are_one_line_errors(shipped, capsys):
    assert main(["verify", "--reference", str(shipped), "--agent", "nope"]) == 2
    assert "--agent 'nope' has no runs in" in capsys.readouterr().err
    assert main(["verify", "--reference", str(shipped / "nothing-here")]) == 2
    assert "has no per-run data" in capsys.readouterr().err
