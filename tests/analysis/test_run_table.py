"""Per-run data (analysis/run_table.py): the column contract, a lossless round trip through the gzip CSV, the
same bytes for the same runs, and converted sources with only the required columns."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import record_names as names
from analysis import run_table as rt
from analysis.runs import DEFAULT_METRICS, load_experiment
from analysis.synthetic import make_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rt")
    uri = f"sqlite:///{tmp}/mlflow.db"
    eps = [20.0] * 30 + [500.0] * 120  # the 100-episode average reaches 475 at episode 30 + 95
    runs = [{"agent": "dqn", "env": "CartPole-v1", "seed": s, "final": 100.0 / 3 + s, "episode_returns": eps,
             "params": {"target_period": 500}, "variant": "C=500"} for s in range(2)]
    runs.append({"agent": "dqn", "env": "CartPole-v1", "seed": 2, "final": 50.0, "outcome": "failed"})
    make_store(uri, "e", runs, steps=3000, evals=3)
    return uri


def table_of(uri, sweeps=None):
    runs, metrics = load_experiment(uri, "e", cache_dir=None, metrics=DEFAULT_METRICS + (names.TARGET_SPARSITY,))
    return rt.from_frames(runs, metrics, "e", sweeps=sweeps), runs


def test_columns_start_with_the_required_twelve(store):
    table, _ = table_of(store, {("dqn", "C=500"): ("dqn C", "agent.target_period")})
    assert list(table.columns[:12]) == rt.REQUIRED_COLUMNS == [
        "experiment", "agent", "variant", "env", "seed", "step", "eval_return", "status", "trial_hash", "protocol",
        "params_sha256", "commit"]
    assert list(table.columns[12:12 + len(rt.RUN_COLUMNS)]) == rt.RUN_COLUMNS
    assert all(c.startswith(("tag.", "param.")) for c in table.columns[12 + len(rt.RUN_COLUMNS):])
    assert set(rt.REQUIRED_COLUMNS + rt.RUN_COLUMNS) <= set(rt.COLUMN_DOCS)
    first = table[table["seed"] == 0]
    assert list(first["step"]) == [1000, 2000, 3000] and first["eval_return"].iloc[-1] == pytest.approx(100.0 / 3)
    assert first["solve_episode"].iloc[0] == 125 and first["train_episodes"].iloc[0] == 150
    assert first["train_return_last100"].iloc[0] == pytest.approx(500.0)
    assert (first["method"].iloc[0], first["knob"].iloc[0], first["knob_value"].iloc[0]) == (
        "dqn C", "agent.target_period", 500.0)
    failed = table[table["seed"] == 2]
    assert set(failed["status"]) == {"FAILED"} and np.isnan(failed["solve_episode"].iloc[0])


def test_round_trip_is_lossless_and_the_bytes_are_stable(store, tmp_path):
    table, runs = table_of(store)
    a, b = rt.write_run_table(table, tmp_path / "a.csv.gz"), rt.write_run_table(table, tmp_path / "b.csv.gz")
    assert a.read_bytes() == b.read_bytes()  # no time stamp or file name in the gzip header
    back = rt.read_run_table(a)
    assert list(back.columns) == list(table.columns)
    assert back["eval_return"].tolist() == table["eval_return"].tolist()  # every bit of the floats
    # back to the store's shape: one row per run, the last evaluation as the final return
    runs2, metrics2 = rt.to_frames(back)
    assert sorted(runs2["run_id"]) == sorted(runs["run_id"])
    by_id = runs.set_index("run_id")
    for r in runs2.itertuples(index=False):
        assert r.final_eval_return == by_id.loc[r.run_id, "final_eval_return"]
        assert r.outcome == by_id.loc[r.run_id, "outcome"]
    assert set(metrics2["metric"]) == {names.EVAL_RETURN} and len(metrics2) == 3 * 2 + 1
    # writing what was read gives the same bytes again
    assert rt.write_run_table(back, tmp_path / "c.csv.gz").read_bytes() == a.read_bytes()


def test_a_converted_source_needs_only_the_required_columns(tmp_path):
    table = pd.DataFrame({"experiment": "dopamine", "agent": "dqn", "variant": "default", "env": "ALE/Pong-v5",
                          "seed": [0, 0, 1, 1], "step": [1e6, 2e6, 1e6, 2e6], "eval_return": [-20.0, -5.0, -19, 3.0],
                          "status": "FINISHED", "trial_hash": ["s0", "s0", "s1", "s1"], "protocol": "p1",
                          "params_sha256": "", "commit": "published"})
    rt.write_run_table(table, tmp_path / "runs" / "dqn.csv.gz")
    runs, metrics = rt.to_frames(rt.read_run_folder(tmp_path / "runs")["dqn"])
    assert sorted(runs["final_eval_return"]) == [-5.0, 3.0] and set(runs["outcome"]) == {"completed"}
    assert runs["run_id"].nunique() == 2 and set(runs["tag.protocol"]) == {"p1"}
    with pytest.raises(ValueError, match="column 'commit' is missing"):
        rt.write_run_table(table.drop(columns="commit"), tmp_path / "bad.csv.gz")
        rt.read_run_table(tmp_path / "bad.csv.gz")
