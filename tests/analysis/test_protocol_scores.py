"""Scores read from training episodes (the dopamine and machado-2018 protocols) and the per-iteration comparison
with Dopamine's runs, on hand-made records with known answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import record_names as names
from analysis.protocol_scores import iteration_returns, last_episodes_mean, run_iterations, score_points
from analysis.reproduction import dopamine_table


def test_iteration_returns_groups_episodes_by_the_iteration_they_end_in():
    # iterations of 10 steps; episodes end at steps 4, 10 (the last step of iteration 0), 11, 25 and 27
    table = iteration_returns([4, 10, 11, 25, 27], [1.0, 3.0, 5.0, 7.0, 9.0], 10, last_step=28)
    assert table["iteration"].tolist() == [0, 1, 2] and table["step"].tolist() == [10, 20, 30]
    assert table["mean_return"].tolist()[0] == 2.0 and table["mean_return"].tolist()[1] == 5.0
    assert table["mean_return"].tolist()[2] == 8.0 and table["episodes"].tolist() == [2, 1, 2]
    assert table["coverage"].tolist() == [1.0, 1.0, pytest.approx(0.8)]
    empty = iteration_returns([15], [2.0], 10, last_step=30)
    assert np.isnan(empty["mean_return"].iloc[0]) and empty["mean_return"].iloc[1] == 2.0
    assert iteration_returns([], [], 10, last_step=0).empty


def test_last_episodes_mean():
    assert last_episodes_mean(np.arange(150.0), 100) == pytest.approx(np.arange(50, 150).mean())
    assert last_episodes_mean([1.0, 3.0], 100) == 2.0 and np.isnan(last_episodes_mean([], 100))


def _records(returns_by_run: dict[str, list[tuple[int, float]]], last_step: int, protocol="dopamine"):
    runs = pd.DataFrame({"run_id": list(returns_by_run), "env": "ALE/Pong-v5", "seed": range(len(returns_by_run)),
                         "status": "FINISHED", "outcome": "completed", "param.env.protocol": protocol})
    rows = [(rid, names.EPISODE_RETURN, s, v) for rid, pts in returns_by_run.items() for s, v in pts]
    rows += [(rid, names.EVAL_RETURN, last_step, 0.0) for rid in returns_by_run]
    metrics = pd.DataFrame(rows, columns=["run_id", "metric", "step", "value"])
    return runs, metrics


def _published(means: list[float]) -> pd.DataFrame:
    """5 Dopamine runs of Pong whose iteration k returns are means[k] + (seed - 2) (mean: means[k])."""
    rows = [{"env": "ALE/Pong-v5", "seed": s, "step": (k + 1) * 250_000, "eval_return": m + (s - 2)}
            for k, m in enumerate(means) for s in range(5)]
    return pd.DataFrame(rows)


def test_dopamine_table_verdicts_per_iteration():
    L = 250_000
    # two runs: iteration 0 returns -20 (both), iteration 1 returns 0 and 2, iteration 2 only 40 % run
    runs, metrics = _records({"a": [(L - 5, -20.0), (L + 7, 0.0), (2 * L + 3, 5.0)],
                              "b": [(L, -20.0), (2 * L, 2.0), (2 * L + 9, 6.0)]}, last_step=2 * L + L * 2 // 5)
    its = run_iterations(runs, metrics, L)
    assert its.groupby("run_id")["iteration"].max().tolist() == [2, 2]
    table = dopamine_table(runs, metrics, _published([-20.0, 10.0, 5.5, 9.0]), reps=200, seed=0)
    assert table["iteration"].tolist() == [0, 1, 2]
    assert table["verdict"].tolist() == ["inside", "outside", "not comparable"]
    assert "40.0% run" in table["reason"].iloc[2] and "would be inside" in table["reason"].iloc[2]
    assert table["ours [95% CI]"].iloc[0] == "-20.0 [-20.0, -20.0]"


def test_dopamine_table_refuses_runs_of_another_protocol():
    runs, metrics = _records({"a": [(10, 1.0)]}, last_step=20, protocol="default")
    table = dopamine_table(runs, metrics, _published([0.0]), reps=100, seed=0)
    assert table["verdict"].tolist() == ["not comparable"] and "env.protocol=default" in table["reason"].iloc[0]


def test_score_points_follow_each_runs_protocol():
    L = 250_000
    runs, metrics = _records({"it": [(10, 1.0), (L, 3.0), (L + 1, 5.0)], "last": [(5, 1.0), (8, 2.0), (20, 4.0)],
                              "eval": [(3, 9.0)]}, last_step=L + 10)
    runs["param.protocol.score_kind"] = ["training returns per iteration", "training returns, last episodes", None]
    runs["param.protocol.score_iteration_steps"] = [str(L), None, None]
    runs["param.protocol.score_last_episodes"] = [None, "2", None]
    metrics = pd.concat([metrics, pd.DataFrame([("last", names.EVAL_RETURN, 10, 0.0),
                                                ("eval", names.EVAL_RETURN, 10, 7.0)],
                                               columns=metrics.columns)], ignore_index=True)
    run_points = score_points(runs, metrics)
    by = {rid: g.sort_values("step")[["step", "score"]].values.tolist() for rid, g in run_points.groupby("run_id")}
    assert by["it"] == [[L, 2.0]]  # the complete iteration only; the partial one is not a score yet
    assert by["last"] == [[10, 1.5], [L + 10, 3.0]]  # the last 2 episodes up to each evaluation step
    assert by["eval"] == [[10, 7.0], [L + 10, 0.0]]  # the evaluations themselves
    assert len(run_points) == 5
