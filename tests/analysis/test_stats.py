"""Statistics against synthetic score matrices with known answers, and against rliable."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import trim_mean

from analysis import stats


def test_iqm_known_arrays():
    assert stats.iqm(np.arange(8.0)) == pytest.approx(3.5)  # middle four: 2, 3, 4, 5
    assert stats.iqm(np.array([0.0, 1, 2, 100])) == pytest.approx(1.5)
    rng = np.random.default_rng(0)
    for n in (1, 3, 7, 10, 33, 100):
        x = rng.normal(size=n)
        assert stats.iqm(x) == pytest.approx(trim_mean(x, 0.25))
    batch = rng.normal(size=(5, 21))
    np.testing.assert_allclose(stats.iqm(batch), trim_mean(batch, 0.25, axis=1))


def test_other_aggregates_known():
    x = np.array([0.2, 0.5, 1.0, 1.5])
    assert stats.median(x) == pytest.approx(0.75)
    assert stats.mean(x) == pytest.approx(0.8)
    assert stats.optimality_gap(x) == pytest.approx((0.8 + 0.5) / 4)


def test_stratified_resampling_stays_within_tasks():
    tasks = [np.zeros(3), np.full(5, 10.0)]  # a resample must keep 3 zeros and 5 tens
    dist = stats.bootstrap_distribution(tasks, stats.mean, 200, stats.agent_rng(0, "a"))
    np.testing.assert_allclose(dist, 50 / 8)


def test_same_seed_same_intervals_and_agent_independence():
    rng = np.random.default_rng(1)
    scores = {"a": rng.normal(size=(10, 4)), "b": rng.normal(size=(10, 4))}
    one = stats.interval_estimates(scores, reps=500, seed=3)
    two = stats.interval_estimates(scores, reps=500, seed=3)
    pd.testing.assert_frame_equal(one, two)
    other = stats.interval_estimates(scores, reps=500, seed=4)
    assert not np.allclose(one["ci_low"], other["ci_low"])
    alone = stats.interval_estimates({"b": scores["b"]}, reps=500, seed=3)
    np.testing.assert_array_equal(alone["ci_low"].to_numpy(), one[one["agent"] == "b"]["ci_low"].to_numpy())


def test_interval_coverage_on_known_distribution():
    """Mean of N(μ, 1) over 3 tasks × 20 runs: the 95 % interval covers μ about 95 % of the time."""
    rng = np.random.default_rng(7)
    hits, trials = 0, 300
    for i in range(trials):
        x = rng.normal(0.3, 1.0, size=(20, 3))
        d = stats.bootstrap_distribution(x, stats.mean, 400, stats.agent_rng(i, "c"))
        lo, hi = np.percentile(d, [2.5, 97.5])
        hits += lo <= 0.3 <= hi
    assert 0.89 <= hits / trials <= 0.99


def test_agrees_with_rliable_within_monte_carlo_error():
    from rliable import library as rly
    from rliable import metrics

    rng = np.random.default_rng(2)
    x = rng.normal(0.6, 0.3, size=(10, 5))
    np.random.seed(0)
    _, ci = rly.get_interval_estimates({"a": x}, lambda s: np.array([metrics.aggregate_iqm(s), metrics.aggregate_mean(s)]),
                                       reps=2000)
    ours = stats.interval_estimates({"a": x}, {"IQM": stats.iqm, "Mean": stats.mean}, reps=20_000, seed=0).set_index("metric")
    for j, name in enumerate(["IQM", "Mean"]):
        width = ours.loc[name, "ci_high"] - ours.loc[name, "ci_low"]
        assert abs(ours.loc[name, "ci_low"] - ci["a"][0, j]) < 0.1 * width
        assert abs(ours.loc[name, "ci_high"] - ci["a"][1, j]) < 0.1 * width


def test_probability_of_improvement():
    rng = np.random.default_rng(3)
    strong = [rng.normal(10, 1, 8) for _ in range(4)]
    weak = [rng.normal(0, 1, 8) for _ in range(4)]
    p, lo, hi = stats.probability_of_improvement(strong, weak, reps=1000)
    assert p == pytest.approx(1.0) and lo > 0.95
    p, lo, hi = stats.probability_of_improvement(weak, strong, reps=1000)
    assert p == pytest.approx(0.0) and hi < 0.05
    same = [np.full(5, 1.0)] * 3
    assert stats.probability_of_improvement(same, same, reps=200)[0] == pytest.approx(0.5)  # ties count ½
    a, b = [rng.normal(0, 1, 10) for _ in range(5)], [rng.normal(0, 1, 10) for _ in range(5)]
    p, lo, hi = stats.probability_of_improvement(a, b, reps=2000)
    assert lo < 0.5 < hi


def test_poi_table_and_aggregate_table_columns():
    ts = {"dqn": {"e1": np.arange(5.0), "e2": np.arange(5.0)}, "x": {"e1": np.arange(5.0) + 10}}
    t = stats.poi_table(ts, [("x", "dqn")], reps=200)
    assert list(t.columns) == ["x", "y", "probability", "ci_low", "ci_high", "tasks"]
    assert t.loc[0, "tasks"] == 1 and t.loc[0, "probability"] == pytest.approx(1.0)
    agg = stats.aggregate_table({"a": np.ones((3, 2)), "b": np.zeros((3, 2))}, reps=200)
    assert {"iqm", "iqm_ci_low", "median", "mean", "optimality_gap_ci_high", "runs", "tasks"} <= set(agg.columns)
    assert agg.set_index("agent").loc["b", "optimality_gap"] == pytest.approx(1.0)


def test_performance_profile_known_fractions():
    scores = {"a": [np.array([0.0, 1.0, 2.0, 3.0])]}
    prof = stats.performance_profile(scores, np.array([-1.0, 0.5, 1.5, 2.5, 3.5]), reps=300)
    np.testing.assert_allclose(prof["fraction"], [1.0, 0.75, 0.5, 0.25, 0.0])
    assert (prof["ci_low"] <= prof["fraction"] + 1e-12).all() and (prof["fraction"] <= prof["ci_high"] + 1e-12).all()
    # ragged tasks weigh each task equally: task 1 all above, task 2 none above
    prof = stats.performance_profile({"b": [np.ones(2), np.zeros(6)]}, np.array([0.5]), reps=50)
    assert prof["fraction"].iloc[0] == pytest.approx(0.5)


def test_sample_efficiency_curve():
    rows = [{"agent": "a", "x": x, "env": e, "seed": s, "score": x / 100 + 0.01 * s}
            for x in (50, 100) for e in ("e1", "e2") for s in range(4)]
    eff = stats.sample_efficiency(pd.DataFrame(rows), reps=300)
    assert list(eff["x"]) == [50.0, 100.0]
    assert (eff["ci_low"] <= eff["estimate"]).all() and (eff["estimate"] <= eff["ci_high"]).all()
    assert eff["estimate"].iloc[1] > eff["estimate"].iloc[0]


def test_fifty_thousand_reps_is_fast():
    import time

    rng = np.random.default_rng(0)
    scores = {f"a{i}": rng.normal(size=(10, 10)) for i in range(3)}
    t = time.perf_counter()
    stats.interval_estimates(scores, reps=50_000)
    assert time.perf_counter() - t < 20  # ~1 s on a quiet core; generous for loaded CI machines
