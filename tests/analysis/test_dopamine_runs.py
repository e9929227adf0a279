"""Dopamine's published Atari runs, as shipped in the per-run format (analysis/published/dopamine/): their shape,
a few values against the source files, and our analysis of DQN vs Rainbow against the rliable library."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rliable import library as rly
from rliable import metrics

from analysis import stats
from analysis.normalization import reference_scores, score_runs
from analysis.reproduction import PUBLISHED_DIR, read_published_runs

COLUMNS = ["experiment", "agent", "variant", "env", "seed", "step", "eval_return", "status", "trial_hash",
           "protocol", "params_sha256", "commit"]
RLIABLE = {"IQM": metrics.aggregate_iqm, "Median": metrics.aggregate_median, "Mean": metrics.aggregate_mean,
           "Optimality gap": metrics.aggregate_optimality_gap}


@pytest.fixture(scope="module")
def runs():
    return {a: read_published_runs(f"dopamine/runs/dopamine-{a}.csv.gz") for a in ("dqn", "rainbow")}


def test_per_run_format_and_shape(runs):
    for agent, df in runs.items():
        assert list(df.columns) == COLUMNS
        assert set(df["experiment"]) == {"dopamine-baselines"} and set(df["agent"]) == {f"dopamine-{agent}"}
        assert set(df["variant"]) == {"default"} and set(df["status"]) == {"completed"}
        assert df["env"].nunique() == 60 and df["env"].str.fullmatch(r"ALE/[A-Za-z]+-v5").all()
        assert (df.groupby(["env", "seed"]).size() == 199).all() and set(df["seed"]) == set(range(5))
        assert set(df["step"]) == {(k + 1) * 250_000 for k in range(199)}
        assert (df["trial_hash"] == "").all() and (df["params_sha256"] == "").all()
        assert df["commit"].str.fullmatch(r"[0-9a-f]{40}").all() and df["commit"].nunique() == 1
        assert (df.groupby("env")["protocol"].nunique() == 1).all()  # one protocol per game (the env id is in it)
    # the two agents ran under one protocol: per game, the same fingerprint
    fp = {a: df.groupby("env")["protocol"].first() for a, df in runs.items()}
    assert fp["dqn"].equals(fp["rainbow"])
    assert (PUBLISHED_DIR / "dopamine" / "README.md").exists() and (PUBLISHED_DIR / "dopamine" / "LICENSE").exists()


def test_final_iteration_means_equal_the_source_files(runs):
    # means over the 5 runs of iteration 198, computed from google/dopamine baselines/atari/data/<game>.json
    expected = {("dqn", "ALE/Pong-v5"): 16.609718258565177, ("dqn", "ALE/Breakout-v5"): 96.23473015711043,
                ("dqn", "ALE/Seaquest-v5"): 1600.6573830122768, ("dqn", "ALE/SpaceInvaders-v5"): 1794.2367473386664,
                ("rainbow", "ALE/Pong-v5"): 20.179506650803557, ("rainbow", "ALE/Seaquest-v5"): 9903.38434289288,
                ("rainbow", "ALE/MontezumaRevenge-v5"): 500.0}
    for (agent, env), mean in expected.items():
        df = runs[agent]
        final = df[(df["env"] == env) & (df["step"] == 199 * 250_000)]
        assert len(final) == 5 and final["eval_return"].mean() == pytest.approx(mean, rel=1e-12), (agent, env)
    first = runs["dqn"][(runs["dqn"]["env"] == "ALE/Pong-v5") & (runs["dqn"]["step"] == 250_000)]
    assert first.sort_values("seed")["eval_return"].iloc[0] == pytest.approx(-20.333333333333332, rel=1e-15)


def _matrix(df: pd.DataFrame) -> np.ndarray:
    """runs x games of human-normalised final-iteration returns, through our scoring (analysis.normalization)."""
    final = df[df["step"] == df["step"].max()].rename(columns={"eval_return": "final_eval_return"})
    final = final.assign(status="FINISHED", outcome="completed")
    scored = score_runs(final, reference_scores())
    scored = scored[scored["normalised"]]
    return scored.pivot(index="seed", columns="env", values="score").to_numpy()


def test_dqn_vs_rainbow_aggregates_and_intervals_equal_rliable(runs):
    mats = {a: _matrix(df) for a, df in runs.items()}
    assert mats["dqn"].shape == (5, 55)  # the 55 of Dopamine's 60 games that have human scores
    for agent, x in mats.items():
        for name, f in RLIABLE.items():
            assert stats.AGGREGATES[name](x) == pytest.approx(f(x), rel=1e-12, abs=1e-12), (agent, name)
    # intervals: the rliable engine is the library itself (seeded), and our batched statistics on rliable's own
    # resamples give its intervals exactly
    ours = stats.interval_estimates(mats, reps=300, seed=7, engine="rliable").set_index(["agent", "metric"])
    for agent, x in mats.items():
        np.random.seed(11)
        est, ci = rly.get_interval_estimates({agent: x}, lambda s: np.array([f(s) for f in RLIABLE.values()]),
                                             reps=300)
        np.random.seed(11)
        n, m = x.shape
        samples = np.empty((300, n * m))
        for r in range(300):
            idx = np.random.choice(n, (n, m), replace=True)
            samples[r] = x[idx, np.arange(m)].T.ravel()
        for j, name in enumerate(RLIABLE):
            lo, hi = stats.percentile_interval(stats.AGGREGATES[name].batched(samples, np.full(m, n)))
            np.testing.assert_allclose([lo, hi], ci[agent][:, j], rtol=1e-10, atol=1e-12)
            assert ours.loc[(agent, name), "estimate"] == pytest.approx(est[agent][j], rel=1e-12)
    # the comparison the data is known for: Rainbow above DQN on IQM
    assert metrics.aggregate_iqm(mats["rainbow"]) > metrics.aggregate_iqm(mats["dqn"])
