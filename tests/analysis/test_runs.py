"""Reading runs back from a synthetic MLflow store, and the Parquet/CSV cache."""
from __future__ import annotations

import numpy as np
import pytest

from analysis import runs as runs_mod
from analysis.runs import load_experiment, load_runs
from analysis.synthetic import make_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{tmp}/m.db"
    make_store(uri, "e", [
        {"agent": "dqn", "env": "CartPole-v1", "seed": 0, "final": 200.0},
        {"agent": "dqn", "env": "CartPole-v1", "seed": 1, "final": 300.0, "outcome": "diverged"},
        {"agent": "dqn-soft", "env": "CartPole-v1", "seed": 0, "final": 400.0, "variant": "tau=0.1",
         "episode_returns": [10, 20, 30]},
        {"agent": "dqn-soft", "env": "CartPole-v1", "seed": 1, "final": 50.0, "outcome": "failed"},
        {"agent": "dqn-soft", "env": "CartPole-v1", "seed": 2, "final": 50.0, "outcome": "running"},
    ], steps=1000, evals=4)
    return uri, tmp


def test_load_runs_columns_and_values(store):
    uri, _ = store
    df = load_runs(uri, "e")
    assert {"run_id", "status", "agent", "env", "seed", "outcome", "trial_hash", "final_eval_return", "variant",
            "diverged_step", "param.train.steps"} <= set(df.columns)
    assert len(df) == 5
    row = df[(df["agent"] == "dqn") & (df["seed"] == 1)].iloc[0]
    assert row["outcome"] == "diverged" and row["final_eval_return"] == pytest.approx(300.0)
    assert row["diverged_step"] == 500
    assert set(df["variant"]) == {"default", "tau=0.1"}
    soft = df[df["agent"] == "dqn-soft"].set_index("seed")
    assert soft.loc[1, "status"] == "FAILED" and soft.loc[1, "outcome"] == "failed"
    assert soft.loc[2, "status"] == "RUNNING" and soft.loc[2, "outcome"] == "running"


def test_unknown_experiment_is_one_line_error(store):
    uri, _ = store
    with pytest.raises(ValueError, match="not found"):
        load_runs(uri, "nope")


def test_tidy_metrics_and_cache(store, monkeypatch):
    uri, tmp = store
    cache = tmp / "cache"
    runs, long = load_experiment(uri, "e", cache_dir=cache)
    assert list(long.columns) == ["run_id", "agent", "variant", "env", "seed", "status", "outcome", "step", "metric",
                                  "value"]
    ev = long[(long["metric"] == "eval/return_mean") & (long["agent"] == "dqn") & (long["seed"] == 0)]
    assert list(ev["step"]) == [250, 500, 750, 1000]
    np.testing.assert_allclose(ev["value"], [50, 100, 150, 200])
    ep = long[long["metric"] == "train/episode_return"]
    assert list(ep["value"]) == [10, 20, 30]
    assert runs.set_index("seed").loc[0].query("agent == 'dqn'")["final_step"].iloc[0] == 1000
    assert any(p.suffix in (".parquet", ".csv") for p in cache.iterdir())

    def boom(*a, **k):
        raise AssertionError("the store's metric histories were read again")

    monkeypatch.setattr(runs_mod, "load_metrics", boom)
    runs2, long2 = load_experiment(uri, "e", cache_dir=cache)
    assert len(long2) == len(long)
    # a new run changes the fingerprint: the cache is rebuilt
    make_store(uri, "e", [{"agent": "dqn", "env": "CartPole-v1", "seed": 5, "final": 1.0}])
    with pytest.raises(AssertionError, match="read again"):
        load_experiment(uri, "e", cache_dir=cache)


def test_analysis_never_imports_agents_or_suite():
    import subprocess
    import sys

    code = ("import sys, analysis.runs, analysis.stats, analysis.normalization, analysis.figures, analysis.tables, "
            "analysis.report, analysis.experiment, analysis.summary, analysis.result_files, "
            "analysis.readme_block, analysis.run_table, analysis.protocol_check, analysis.seed_count, "
            "analysis.verification; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('agents', 'suite')); "
            "assert not bad, f'imported: {bad}'")
    subprocess.run([sys.executable, "-c", code], check=True)
