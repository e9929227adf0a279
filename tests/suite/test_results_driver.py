"""`make results` end to end on a tiny budget: one group trains, its runs are exported as per-run data, the files
appear with their schemas, the runs carry the cost tags the README reads, a rerun skips the finished trials, and
`--no-run` regenerates the same bytes from the per-run data without the store."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis import classic_tables as ct
from analysis.run_table import REQUIRED_COLUMNS, read_run_table
from analysis.runs import load_runs
from suite import results as driver
from suite.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]


def test_results_classic_tiny_end_to_end_and_resumable(tmp_path, capsys):
    out, store = tmp_path / "out", tmp_path / "results"
    argv = ["--part", "classic", "--results", str(store), "--out", str(out), "--steps", "200", "--seeds", "0",
            "--agents", "dqn", "--envs", "CartPole-v1", "--workers", "1", "--reps", "200", "--quiet"]
    assert driver.main(argv) == 0
    err = capsys.readouterr().err
    assert "classic: 1 trials run, 0 already finished" in err
    table = pd.read_csv(out / "classic_control.csv")
    assert list(table.columns) == ct.CLASSIC_COLUMNS
    assert table[["agent", "env", "steps", "seeds"]].values.tolist() == [["dqn", "CartPole-v1", 200, 1]]
    runs = load_runs(f"sqlite:///{store}/mlflow.db", "results-classic-steps200")
    assert float(runs["tag.group_wall_s"].iloc[0]) > 0 and float(runs["tag.group_cpu_s"].iloc[0]) > 0
    per_run = read_run_table(out / "runs" / "classic.csv.gz")
    assert list(per_run.columns[:12]) == REQUIRED_COLUMNS and per_run["params_sha256"].str.len().eq(64).all()
    assert set(per_run["experiment"]) == {"results-classic-steps200"} and per_run["protocol"].notna().all()
    readme = (out / "README.md").read_text()
    assert "results-classic-steps200`): 1 groups, 200 seed-steps" in readme and "CPU-s" in readme
    assert "| dqn | CartPole-v1 | 200 | 1 |" in readme and "[runs/classic.csv.gz](runs/classic.csv.gz): 1 runs" in readme
    # rerun: nothing trains, the files are written again from the store's export
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix in (".csv", ".md")}
    assert driver.main(argv) == 0
    assert "classic: 0 trials run, 1 already finished (skipped)" in capsys.readouterr().err
    # no store at all: --no-run derives the same bytes from the per-run data alone
    shutil.rmtree(store)
    again = tmp_path / "again"
    assert driver.main(["--part", "classic", "--no-run", "--runs", str(out / "runs"), "--out", str(again),
                        "--results", str(tmp_path / "none"), "--steps", "200", "--seeds", "0", "--agents", "dqn",
                        "--envs", "CartPole-v1", "--reps", "200", "--quiet"]) == 0
    assert not (tmp_path / "none" / "mlflow.db").exists()
    for name, data in before.items():
        assert (again / name).read_bytes() == data, name


def test_agent_filter_applies_only_to_the_parts_being_run(tmp_path, capsys):
    """`--part classic --agents double-dqn`: double-dqn is in the classic suite but not in the sensitivity suite,
    which is only read back for the README; the filter must not be checked against it."""
    argv = ["--part", "classic", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "out"),
            "--runs", str(tmp_path / "no-runs"), "--agents", "double-dqn", "--no-run", "--quiet"]
    assert driver.main(argv) == 0, capsys.readouterr().err
    # a part that is run still rejects an agent it does not have
    assert driver.main(["--part", "sensitivity", *argv[2:]]) == 2
    assert "not an agent of suite sensitivity-classic" in capsys.readouterr().err


def test_driver_bad_part_and_filters(tmp_path, capsys):
    assert driver.main(["--part", "nope", "--out", str(tmp_path), "--results", str(tmp_path)]) == 2
    assert "--part 'nope' is not valid" in capsys.readouterr().err
    args = driver._parse_args(["--agents", "dqn", "--envs", "CartPole-v1", "--seeds", "0,1", "--steps", "3000"])
    suite, experiment = driver._suite("sensitivity", args)
    assert experiment == "sweep-sensitivity-classic-steps3000" and list(suite.agents) == ["dqn"]
    assert [v.name for v in suite.variants] == ["C=50", "C=160", "C=500", "C=1600", "C=5000"]
    assert {(v.knob, v.sweep) for v in suite.variants} == {("target_period", "C")}
    assert suite.envs == ("CartPole-v1",) and suite.seeds == (0, 1)
    bad = driver._parse_args(["--agents", "nope"])
    with pytest.raises(UsageError, match="--agents names 'nope'"):
        driver._suite("classic", bad)


def test_driver_table_budgets(tmp_path, capsys):
    """The reproduced tables run at the driver's budgets unless a flag says otherwise; --steps beats both."""
    def budget(part, *argv):
        a = driver._reproduce_args(part, driver._parse_args(list(argv)), "sqlite:///x.db", no_run=True)
        return a.steps, a.seeds

    assert budget("cartpole") == (driver.CARTPOLE_STEPS, None) == (100_000, None)  # the suite's 10 seeds
    assert budget("minatar") == (50_000, "0-2")
    assert budget("cartpole", "--cartpole-steps", "500000") == (500_000, None)
    assert budget("minatar", "--cartpole-steps", "500000") == (50_000, "0-2")
    assert budget("cartpole", "--steps", "300", "--seeds", "0") == (300, "0")
    assert budget("cartpole", "--quick") == (None, None)  # reproduce --quick picks its own
    assert driver.main(["--part", "cartpole", "--cartpole-steps", "0", "--out", str(tmp_path), "--results",
                        str(tmp_path)]) == 2
    assert "--cartpole-steps 0 is not valid; allowed: a positive integer" in capsys.readouterr().err


def test_classic_suite_has_ten_seeds():
    suite, _ = driver._suite("classic", driver._parse_args([]))
    assert suite.seeds == tuple(range(10))


def test_tuned_part_needs_the_sensitivity_data(tmp_path, capsys):
    argv = ["--part", "tuned", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "out"), "--quiet"]
    assert driver.main(argv) == 2
    assert "the tuned part needs the sensitivity study's per-run data" in capsys.readouterr().err
