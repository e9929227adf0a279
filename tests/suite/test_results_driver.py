"""`make results` end to end on a tiny budget: one group trains, the files appear with their schemas, the runs carry
the cost tags the README reads, and a rerun skips the finished trials."""
from __future__ import annotations

import pandas as pd

from analysis import results as res
from analysis.runs import load_runs
from suite import results as driver


def test_results_classic_tiny_end_to_end_and_resumable(tmp_path, capsys):
    out, store = tmp_path / "out", tmp_path / "results"
    argv = ["--part", "classic", "--results", str(store), "--out", str(out), "--steps", "200", "--seeds", "0",
            "--agents", "dqn", "--envs", "CartPole-v1", "--workers", "1", "--reps", "200", "--quiet"]
    assert driver.main(argv) == 0
    err = capsys.readouterr().err
    assert "classic: 1 trials run, 0 already finished" in err
    table = pd.read_csv(out / "classic_control.csv")
    assert list(table.columns) == res.CLASSIC_COLUMNS
    assert table[["agent", "env", "steps", "seeds"]].values.tolist() == [["dqn", "CartPole-v1", 200, 1]]
    runs = load_runs(f"sqlite:///{store}/mlflow.db", "results-classic-steps200")
    assert float(runs["tag.group_wall_s"].iloc[0]) > 0 and float(runs["tag.group_cpu_s"].iloc[0]) > 0
    readme = (out / "README.md").read_text()
    assert "results-classic-steps200`): 1 groups, 200 seed-steps" in readme and "CPU-s" in readme
    assert "| dqn | CartPole-v1 | 200 | 1 |" in readme
    # rerun: nothing trains, the files are written again from the store
    assert driver.main(argv) == 0
    assert "classic: 0 trials run, 1 already finished (skipped)" in capsys.readouterr().err


def test_agent_filter_applies_only_to_the_parts_being_run(tmp_path, capsys):
    """`--part classic --agents double-dqn`: double-dqn is in the classic suite but not in the sensitivity suite,
    which is only read back for the README; the filter must not be checked against it."""
    argv = ["--part", "classic", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "out"),
            "--agents", "double-dqn", "--no-run", "--quiet"]
    assert driver.main(argv) == 0, capsys.readouterr().err
    # a part that is run still rejects an agent it does not have
    assert driver.main(["--part", "sensitivity", *argv[2:]]) == 2
    assert "not an agent of suite sensitivity-classic" in capsys.readouterr().err
