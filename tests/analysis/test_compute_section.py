"""The report's compute section: wall time, seed-steps/s and device per agent; return against wall-clock time."""
import numpy as np
import pandas as pd

from analysis import record_names as names
from analysis.compute import Compute, compute_table, wall_curves
from analysis.sections import registered_sections


def scored():
    return pd.DataFrame({
        "run_id": ["a0", "a1", "b0", "old"], "label": ["dqn", "dqn", "isql", "isql"],
        "tag.wall_s": ["10.0", "30.0", "100.0", np.nan], "tag.seed_steps_per_s": ["1000", "500", "50", np.nan],
        "tag.torch_device": ["cpu", "cpu", "cuda:0", "cpu"]})


def metrics():
    rows = []
    for run, walls, rets in (("a0", (4.0, 10.0), (10.0, 20.0)), ("a1", (12.0, 30.0), (30.0, 40.0)),
                             ("b0", (50.0, 100.0), (5.0, 6.0))):
        for step, wall, ret in zip((100, 200), walls, rets):
            rows.append({"run_id": run, "env": "CartPole-v1", "step": step, "metric": names.EVAL_RETURN, "value": ret})
            rows.append({"run_id": run, "env": "CartPole-v1", "step": step, "metric": names.WALL_S, "value": wall})
    rows.append({"run_id": "old", "env": "CartPole-v1", "step": 100, "metric": names.EVAL_RETURN, "value": 1.0})
    return pd.DataFrame(rows)


def test_compute_table_per_agent_leaves_out_runs_without_records():
    table = compute_table(scored()).set_index("agent")
    assert table.loc["dqn", "runs"] == 2 and table.loc["dqn", "wall_s"] == 20.0
    assert table.loc["dqn", "seed_steps_per_s"] == 750.0 and table.loc["dqn", "seed_hours"] == 40.0 / 3600
    assert table.loc["isql", "runs"] == 1 and table.loc["isql", "device"] == "cuda:0"


def test_wall_curves_mean_return_at_median_wall_time():
    curves = wall_curves(scored(), metrics()).set_index(["agent", "step"])
    assert curves.loc[("dqn", 100), "return_mean"] == 20.0 and curves.loc[("dqn", 100), "wall_s"] == 8.0
    assert curves.loc[("dqn", 200), "wall_s"] == 20.0 and curves.loc[("isql", 200), "runs"] == 1


def test_section_is_registered_after_sample_efficiency():
    order = [s.name for s in registered_sections()]
    assert order.index("compute") == order.index("sample_efficiency") + 1
    assert isinstance(registered_sections()[order.index("compute")], Compute)
