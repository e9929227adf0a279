"""Statistics against synthetic score sets with known answers, and against the rliable library itself.

Every aggregate is checked three ways against rliable 1.2.0: point estimates equal (float rounding), intervals
equal when our statistics run on *the same* resamples rliable draws (its draws replayed from numpy's global
generator), and the fast engine's own intervals within Monte-Carlo error of rliable's. Score sets: skewed
(lognormal), with ties, with outliers, several agents × tasks × runs.
"""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest
from rliable import library as rly
from rliable import metrics
from scipy.stats import trim_mean

from analysis import stats

RLIABLE = {"IQM": metrics.aggregate_iqm, "Median": metrics.aggregate_median, "Mean": metrics.aggregate_mean,
           "Optimality gap": metrics.aggregate_optimality_gap}


def _score_sets() -> dict[str, dict[str, np.ndarray]]:
    """name → agent → (runs × tasks) matrix."""
    rng = np.random.default_rng(12)
    skewed = {f"a{i}": rng.lognormal(-0.5 + 0.2 * i, 1.0, size=(5, 4)) for i in range(3)}
    ties = {f"a{i}": np.round(rng.uniform(0, 1.5, size=(6, 3)) * 4) / 4 for i in range(2)}  # few distinct values
    outliers = {}
    for i in range(2):
        x = rng.normal(0.6, 0.2, size=(10, 5))
        x[rng.integers(0, 10, 3), rng.integers(0, 5, 3)] = [25.0, -8.0, 40.0]
        outliers[f"a{i}"] = x
    few_runs = {"a0": rng.normal(0.8, 0.5, size=(3, 7))}
    return {"skewed": skewed, "ties": ties, "outliers": outliers, "few_runs": few_runs}


SETS = _score_sets()


def _stack_like_rliable(x: np.ndarray, reps: int, seed: int) -> np.ndarray:
    """Replay rliable's StratifiedBootstrap draws for ``x`` (runs × tasks): per repetition
    ``np.random.choice(runs, x.shape)`` picks a run for each cell of each column. Returns (reps, N) resamples
    grouped by task (column 0's runs first), our layout."""
    n, m = x.shape
    np.random.seed(seed)
    out = np.empty((reps, n * m))
    for r in range(reps):
        idx = np.random.choice(n, (n, m), replace=True)
        out[r] = x[idx, np.arange(m)].T.ravel()
    return out


# -- definitions ----------------------------------------------------------------------------------------------
def test_iqm_known_arrays():
    assert stats.iqm(np.arange(8.0)) == pytest.approx(3.5)  # middle four: 2, 3, 4, 5
    assert stats.iqm(np.array([0.0, 1, 2, 100])) == pytest.approx(1.5)
    rng = np.random.default_rng(0)
    for n in (1, 3, 7, 10, 33, 100):
        x = rng.normal(size=n)
        assert stats.iqm(x) == pytest.approx(trim_mean(x, 0.25))
    batch = rng.normal(size=(5, 21))
    np.testing.assert_allclose(stats.iqm(batch), trim_mean(batch, 0.25, axis=1))


def test_median_is_median_of_task_means_not_pooled_median():
    """Regression: the median was the median of the pooled run scores (1.0 here); rliable's is 2.0."""
    x = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [10.0, 1.0, 2.0]])  # task means 10/3, 1, 2
    assert np.median(x) == 1.0
    assert stats.MEDIAN(x) == pytest.approx(2.0) == metrics.aggregate_median(x)
    est = stats.interval_estimates({"a": x}, reps=200).set_index("metric")
    assert est.loc["Median", "estimate"] == pytest.approx(2.0)
    est = stats.interval_estimates({"a": x}, reps=200, engine="rliable").set_index("metric")
    assert est.loc["Median", "estimate"] == pytest.approx(2.0)


def test_unequal_run_counts_weigh_tasks_equally():
    tasks = [np.array([0.0]), np.array([1.0, 1.0, 1.0])]
    assert stats.MEAN(tasks) == pytest.approx(0.5)  # pooled mean would be 0.75
    assert stats.MEDIAN(tasks) == pytest.approx(0.5)
    assert stats.OPTIMALITY_GAP([np.array([0.0]), np.array([2.0, 2.0, 2.0])]) == pytest.approx(0.5)
    assert stats.IQM(tasks) == pytest.approx(1.0)  # IQM pools runs: middle two of 0, 1, 1, 1
    prof = stats.performance_profile({"b": [np.ones(2), np.zeros(6)]}, np.array([0.5]), reps=50)
    assert prof["fraction"].iloc[0] == pytest.approx(0.5)
    with pytest.raises(stats.RaggedScoresError, match=r"\[1, 3\] runs"):
        stats.interval_estimates({"a": tasks}, reps=100, engine="rliable")


@pytest.mark.parametrize("set_name", list(SETS))
def test_point_estimates_equal_rliable(set_name):
    for x in SETS[set_name].values():
        for name, f in RLIABLE.items():
            assert stats.AGGREGATES[name](x) == pytest.approx(f(x), rel=1e-12, abs=1e-12)
            assert stats.AGGREGATES[name]([x[:, j] for j in range(x.shape[1])]) == pytest.approx(f(x), rel=1e-12,
                                                                                                abs=1e-12)


# -- aggregate intervals ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("set_name", list(SETS))
def test_intervals_equal_rliable_on_identical_resamples(set_name):
    """Our batched aggregates + percentile step on rliable's own resamples give rliable's intervals exactly."""
    reps = 200
    for agent, x in SETS[set_name].items():
        np.random.seed(5)
        _, ci = rly.get_interval_estimates({agent: x}, lambda s: np.array([f(s) for f in RLIABLE.values()]),
                                           reps=reps)
        samples = _stack_like_rliable(x, reps, 5)
        sizes = np.full(x.shape[1], x.shape[0])
        for j, name in enumerate(RLIABLE):
            lo, hi = stats.percentile_interval(stats.AGGREGATES[name].batched(samples, sizes))
            np.testing.assert_allclose([lo, hi], ci[agent][:, j], rtol=1e-10, atol=1e-12)


def test_rliable_engine_is_the_library_with_seeded_global_generator():
    scores = SETS["skewed"]
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    ours = stats.interval_estimates(scores, reps=150, seed=4, engine="rliable")
    assert np.array_equal(np.random.get_state()[1], before)  # the global generator is restored
    assert set(ours["engine"]) == {"rliable"}
    for agent, x in scores.items():
        np.random.seed([4, zlib.crc32(agent.encode())])
        est, ci = rly.get_interval_estimates({agent: x}, lambda s: np.array([f(s) for f in RLIABLE.values()]),
                                             reps=150)
        sub = ours[ours["agent"] == agent].set_index("metric")
        for j, name in enumerate(RLIABLE):
            assert sub.loc[name, "estimate"] == est[agent][j]
            assert (sub.loc[name, "ci_low"], sub.loc[name, "ci_high"]) == (ci[agent][0, j], ci[agent][1, j])


@pytest.mark.parametrize("set_name", list(SETS))
def test_fast_engine_agrees_with_rliable_within_monte_carlo_error(set_name):
    """Fast at 20,000 repetitions against rliable at 1,000: the endpoints differ by 2.5-5 % of the interval
    width on the continuous sets and 10.5 % on the tied set (its endpoints move on a lattice of 0.25/18, one step
    there); allow 12 %. Point estimates equal."""
    scores = SETS[set_name]
    fast = stats.interval_estimates(scores, reps=20_000, seed=1).set_index(["agent", "metric"])
    slow = stats.interval_estimates(scores, reps=1_000, seed=1, engine="rliable").set_index(["agent", "metric"])
    np.testing.assert_allclose(fast["estimate"], slow["estimate"], rtol=1e-12, atol=1e-12)
    width = (fast["ci_high"] - fast["ci_low"]).to_numpy()
    assert (width > 0).all()
    for end in ("ci_low", "ci_high"):
        assert (np.abs(fast[end] - slow[end]).to_numpy() <= 0.12 * width).all(), (end, fast[end] - slow[end])


def test_stratified_resampling_stays_within_tasks():
    tasks = [np.zeros(3), np.full(5, 10.0)]  # a resample must keep 3 zeros and 5 tens
    dist = stats.bootstrap_distribution(tasks, stats.MEAN, 200, stats.agent_rng(0, "a"))
    np.testing.assert_allclose(dist, 5.0)
    pooled = stats.bootstrap_distribution(tasks, np.mean, 200, stats.agent_rng(0, "a"))  # plain f: pooled runs
    np.testing.assert_allclose(pooled, 50 / 8)


def test_same_seed_same_intervals_and_agent_independence():
    rng = np.random.default_rng(1)
    scores = {"a": rng.normal(size=(10, 4)), "b": rng.normal(size=(10, 4))}
    one = stats.interval_estimates(scores, reps=500, seed=3)
    two = stats.interval_estimates(scores, reps=500, seed=3)
    pd.testing.assert_frame_equal(one, two)
    assert list(one.columns[:5]) == ["agent", "metric", "estimate", "ci_low", "ci_high"]
    other = stats.interval_estimates(scores, reps=500, seed=4)
    assert not np.allclose(one["ci_low"], other["ci_low"])
    alone = stats.interval_estimates({"b": scores["b"]}, reps=500, seed=3)
    np.testing.assert_array_equal(alone["ci_low"].to_numpy(), one[one["agent"] == "b"]["ci_low"].to_numpy())
    with pytest.raises(ValueError, match="engine 'nope' is not valid; allowed: fast, rliable"):
        stats.interval_estimates(scores, reps=100, engine="nope")


def test_interval_coverage_on_known_distribution():
    """Mean of N(μ, 1) over 3 tasks × 20 runs: the 95 % interval covers μ about 95 % of the time."""
    rng = np.random.default_rng(7)
    hits, trials = 0, 300
    for i in range(trials):
        x = rng.normal(0.3, 1.0, size=(20, 3))
        d = stats.bootstrap_distribution(x, stats.MEAN, 400, stats.agent_rng(i, "c"))
        lo, hi = stats.percentile_interval(d)
        hits += lo <= 0.3 <= hi
    assert 0.89 <= hits / trials <= 0.99


def test_aggregate_table_columns():
    agg = stats.aggregate_table({"a": np.ones((3, 2)), "b": np.zeros((3, 2))}, reps=200)
    assert {"iqm", "iqm_ci_low", "median", "mean", "optimality_gap_ci_high", "runs", "tasks"} <= set(agg.columns)
    assert agg.set_index("agent").loc["b", "optimality_gap"] == pytest.approx(1.0)


def test_fifty_thousand_reps_is_fast():
    import time

    rng = np.random.default_rng(0)
    scores = {f"a{i}": rng.normal(size=(10, 10)) for i in range(3)}
    t = time.perf_counter()
    stats.interval_estimates(scores, reps=50_000)
    assert time.perf_counter() - t < 20  # ~1 s on a quiet core; generous for loaded CI machines


# -- performance profiles -----------------------------------------------------------------------------------------
def _taus(x: np.ndarray) -> np.ndarray:
    # a grid plus some of the scores themselves: "above τ" is strict, so a score equal to τ does not count
    return np.unique(np.concatenate([np.linspace(x.min() - 0.1, np.percentile(x, 95), 15), x.ravel()[:4]]))


@pytest.mark.parametrize("use_score_distribution", [True, False])
def test_profiles_equal_rliable(use_score_distribution):
    for set_name in ("ties", "outliers"):
        for agent, x in SETS[set_name].items():
            taus = _taus(x)
            np.random.seed(9)
            prof, ci = rly.create_performance_profile({agent: x}, taus, use_score_distribution=use_score_distribution,
                                                      reps=150)
            ours = stats.performance_profile({agent: x}, taus, reps=100, use_score_distribution=use_score_distribution)
            np.testing.assert_allclose(ours["fraction"], prof[agent], rtol=1e-12, atol=1e-12)
            # the same resamples give the same bands
            dist = stats.profile_batched(_stack_like_rliable(x, 150, 9), np.full(x.shape[1], x.shape[0]), taus,
                                         use_score_distribution)
            lo, hi = stats.percentile_interval(dist)
            np.testing.assert_allclose(np.vstack([lo, hi]), ci[agent], rtol=1e-10, atol=1e-12)
            # the rliable engine is the library
            eng = stats.performance_profile({agent: x}, taus, reps=150, seed=2, engine="rliable",
                                            use_score_distribution=use_score_distribution)
            np.random.seed([2, zlib.crc32(f"profile/{agent}".encode())])
            _, ci2 = rly.create_performance_profile({agent: x}, taus, use_score_distribution=use_score_distribution,
                                                    reps=150)
            np.testing.assert_array_equal(eng["ci_low"], ci2[agent][0])
            np.testing.assert_array_equal(eng["ci_high"], ci2[agent][1])


def test_profile_bands_fast_within_monte_carlo_error_of_rliable():
    x = SETS["skewed"]["a1"]
    taus = np.linspace(0.0, 2.0, 9)
    fast = stats.performance_profile({"a": x}, taus, reps=20_000, seed=0)
    slow = stats.performance_profile({"a": x}, taus, reps=1_000, seed=0, engine="rliable")
    # a fraction of 20 runs moves in steps of 1/20; the percentile of 1,000 replicates is off by at most a step
    for end in ("ci_low", "ci_high"):
        assert (np.abs(fast[end] - slow[end]) <= 1 / 20 + 1e-12).all()


def test_performance_profile_known_fractions():
    scores = {"a": [np.array([0.0, 1.0, 2.0, 3.0])]}
    prof = stats.performance_profile(scores, np.array([-1.0, 0.5, 1.5, 2.5, 3.5]), reps=300)
    np.testing.assert_allclose(prof["fraction"], [1.0, 0.75, 0.5, 0.25, 0.0])
    assert (prof["ci_low"] <= prof["fraction"] + 1e-12).all() and (prof["fraction"] <= prof["ci_high"] + 1e-12).all()
    avg = stats.performance_profile({"a": [np.array([0.0, 2.0]), np.array([3.0])]}, np.array([0.5, 1.0, 2.5]),
                                    reps=100, use_score_distribution=False)  # task means 1 and 3
    np.testing.assert_allclose(avg["fraction"], [1.0, 0.5, 0.5])


# -- probability of improvement -----------------------------------------------------------------------------------
def _poi_pairs():
    rng = np.random.default_rng(4)
    return [
        (np.round(rng.normal(0.5, 0.3, (6, 3)), 1), np.round(rng.normal(0.4, 0.3, (4, 3)), 1)),  # ties, 6 vs 4 runs
        (rng.lognormal(0, 1, (5, 4)), rng.lognormal(0.3, 1, (5, 4))),                            # skewed
        (np.full((3, 2), 1.0), np.full((3, 2), 1.0)),                                             # identical
    ]


def test_probability_of_improvement_equals_rliable():
    for i, (x, y) in enumerate(_poi_pairs()):
        xt, yt = [x[:, j] for j in range(x.shape[1])], [y[:, j] for j in range(y.shape[1])]
        p, _, _ = stats.probability_of_improvement(xt, yt, reps=100)
        assert p == pytest.approx(metrics.probability_of_improvement(x, y), rel=1e-12, abs=1e-12)
        # identical resamples: StratifiedIndependentBootstrap draws X's indices, then Y's, each repetition
        reps, m = 150, x.shape[1]
        np.random.seed(11)
        _, ci = rly.get_interval_estimates({"p": [x, y]}, metrics.probability_of_improvement, reps=reps)
        np.random.seed(11)
        dist = np.empty(reps)
        for r in range(reps):
            ix = np.random.choice(x.shape[0], x.shape)
            iy = np.random.choice(y.shape[0], y.shape)
            xs, ys = x[ix, np.arange(m)], y[iy, np.arange(m)]
            dist[r] = np.mean(stats.mann_whitney(xs.T, ys.T))
        lo, hi = stats.percentile_interval(dist)
        np.testing.assert_allclose([lo, hi], ci["p"][:, 0], rtol=1e-10, atol=1e-12)
        # rliable engine = the library with the global generator seeded from (seed, pair)
        eng = stats.probability_of_improvement(xt, yt, reps=reps, seed=3, name=f"x{i}>y", engine="rliable")
        np.random.seed([3, zlib.crc32(f"poi/x{i}>y".encode())])
        est, ci = rly.get_interval_estimates({"p": [x, y]}, metrics.probability_of_improvement, reps=reps)
        assert eng == (float(est["p"]), float(ci["p"][0, 0]), float(ci["p"][1, 0]))


def test_probability_of_improvement_fast_within_monte_carlo_error_of_rliable():
    x, y = _poi_pairs()[1]
    xt, yt = [x[:, j] for j in range(4)], [y[:, j] for j in range(4)]
    fast = stats.probability_of_improvement(xt, yt, reps=20_000, seed=0)
    slow = stats.probability_of_improvement(xt, yt, reps=1_000, seed=0, engine="rliable")
    width = fast[2] - fast[1]
    assert fast[0] == pytest.approx(slow[0], abs=1e-12)
    assert abs(fast[1] - slow[1]) < 0.12 * width and abs(fast[2] - slow[2]) < 0.12 * width


def test_probability_of_improvement_known():
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


def test_poi_table_columns():
    ts = {"dqn": {"e1": np.arange(5.0), "e2": np.arange(5.0)}, "x": {"e1": np.arange(5.0) + 10}}
    t = stats.poi_table(ts, [("x", "dqn")], reps=200)
    assert list(t.columns) == ["x", "y", "probability", "ci_low", "ci_high", "tasks"]
    assert t.loc[0, "tasks"] == 1 and t.loc[0, "probability"] == pytest.approx(1.0)


# -- sample efficiency --------------------------------------------------------------------------------------------
def _curves() -> pd.DataFrame:
    rng = np.random.default_rng(8)
    rows = [{"agent": a, "x": x, "env": e, "seed": s, "score": rng.lognormal(np.log(x / 100), 0.5) + 0.5 * (a == "b")}
            for a in ("a", "b") for x in (50, 100, 150) for e in ("e1", "e2", "e3") for s in range(5)]
    return pd.DataFrame(rows)


def test_sample_efficiency_equals_rliable_iqm_per_point():
    curves = _curves()
    fast = stats.sample_efficiency(curves, reps=300, seed=0)
    eng = stats.sample_efficiency(curves, reps=120, seed=0, engine="rliable")
    for (agent, x), g in curves.groupby(["agent", "x"]):
        mat = np.column_stack([grp["score"].to_numpy() for _, grp in g.groupby("env", sort=True)])
        row = fast[(fast["agent"] == agent) & (fast["x"] == x)].iloc[0]
        assert row["estimate"] == pytest.approx(metrics.aggregate_iqm(mat), rel=1e-12)
        np.random.seed([0, zlib.crc32(f"curve/{agent}/{x}".encode())])
        est, ci = rly.get_interval_estimates({"k": mat}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=120)
        r2 = eng[(eng["agent"] == agent) & (eng["x"] == x)].iloc[0]
        assert (r2["estimate"], r2["ci_low"], r2["ci_high"]) == (est["k"][0], ci["k"][0, 0], ci["k"][1, 0])
    assert (fast["ci_low"] <= fast["estimate"]).all() and (fast["estimate"] <= fast["ci_high"]).all()
    assert list(fast["x"].unique()) == [50.0, 100.0, 150.0] and set(fast["runs"]) == {15}


def test_sample_efficiency_fast_within_monte_carlo_error_of_rliable():
    curves = _curves()
    curves = curves[curves["x"] == 100]
    fast = stats.sample_efficiency(curves, reps=20_000, seed=0)
    slow = stats.sample_efficiency(curves, reps=1_000, seed=0, engine="rliable")
    width = (fast["ci_high"] - fast["ci_low"]).to_numpy()
    for end in ("ci_low", "ci_high"):
        assert (np.abs(fast[end] - slow[end]).to_numpy() < 0.12 * width).all()


def test_sample_efficiency_points_rliable_cannot_take_use_fast():
    """A run that stopped early leaves the last point with 4 runs on e1 and 5 on e2, e3: that point (only) is
    computed by the fast engine under engine="rliable", and says so."""
    curves = _curves()
    stopped = (curves["x"] == 150) & (curves["env"] == "e1") & (curves["seed"] == 4)
    curves = curves[(curves["agent"] == "a") & ~stopped]
    eng = stats.sample_efficiency(curves, reps=100, seed=0, engine="rliable").set_index("x")
    assert list(eng["engine"]) == ["rliable", "rliable", "fast"] and eng.loc[150.0, "runs"] == 14
    fast = stats.sample_efficiency(curves, reps=100, seed=0).set_index("x")
    assert set(fast["engine"]) == {"fast"}
    assert tuple(eng.loc[150.0, ["estimate", "ci_low", "ci_high"]]) == tuple(fast.loc[150.0, ["estimate", "ci_low",
                                                                                                 "ci_high"]])
