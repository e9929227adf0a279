"""Reference results (analysis/results.py, suite/results.py): CSV schemas, partial stores, the knob-range share,
and the top-level README's generated block against docs/results/."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import results as res
from analysis.runs import load_experiment
from analysis.synthetic import make_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def classic_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("classic")
    uri = f"sqlite:///{tmp}/mlflow.db"
    runs = []
    finals = {("dqn", "CartPole-v1"): [100.0, 200.0, 300.0], ("dqn", "Acrobot-v1"): [-300.0, -200.0, -100.0],
              ("agt2-dqn", "CartPole-v1"): [400.0, 450.0, 500.0]}
    for (agent, env), values in finals.items():
        for s, v in enumerate(values):
            runs.append({"agent": agent, "env": env, "seed": s, "final": v, "steps": 3000})
    # unfinished work: one agt2 seed on Acrobot still running, one failed (scored as random)
    runs.append({"agent": "agt2-dqn", "env": "Acrobot-v1", "seed": 0, "final": -150.0, "outcome": "running",
                 "steps": 3000})
    runs.append({"agent": "agt2-dqn", "env": "Acrobot-v1", "seed": 1, "final": -150.0, "outcome": "failed",
                 "steps": 3000})
    make_store(uri, "c", runs, steps=3000, evals=3)
    return uri, tmp, finals


def test_classic_csv_has_exactly_the_columns_and_marks_unfinished(classic_store, tmp_path):
    uri, tmp, finals = classic_store
    runs, metrics = load_experiment(uri, "c", cache_dir=None)
    expected = res.Expected(pairs=(("dqn", "CartPole-v1"), ("dqn", "Acrobot-v1"), ("agt2-dqn", "CartPole-v1"),
                                   ("agt2-dqn", "Acrobot-v1"), ("dqn-soft", "CartPole-v1")), seeds=3, steps=3000)
    paths = res.write_classic(runs, metrics, tmp_path, reps=500, expected=expected)
    header = (tmp_path / "classic_control.csv").read_text().splitlines()[0]
    assert header == ",".join(res.CLASSIC_COLUMNS) == "agent,env,steps,seeds,mean,std,iqm,iqm_ci_low,iqm_ci_high"
    table = pd.read_csv(tmp_path / "classic_control.csv")
    row = table[(table["agent"] == "dqn") & (table["env"] == "CartPole-v1")].iloc[0]
    assert row["seeds"] == 3 and row["steps"] == 3000
    assert row["mean"] == pytest.approx(200.0) and row["std"] == pytest.approx(100.0)  # sample std, ddof 1
    assert row["iqm_ci_low"] <= row["iqm"] <= row["iqm_ci_high"]
    # the running seed is not scored, the failed one scores as the random policy (-499.09 on Acrobot)
    agt = table[(table["agent"] == "agt2-dqn") & (table["env"] == "Acrobot-v1")].iloc[0]
    assert agt["seeds"] == 1 and agt["mean"] == pytest.approx(-499.09)
    # a planned pair with nothing finished: a row with zero seeds and empty numbers, not a crash
    pending = table[table["agent"] == "dqn-soft"].iloc[0]
    assert pending["seeds"] == 0 and np.isnan(pending["mean"]) and np.isnan(pending["iqm"])
    assert {"curves_cartpole_v1.png", "curves_acrobot_v1.png", "aggregate.png", "aggregate.csv"} <= set(paths)
    readme = res.write_readme(tmp_path, command="make results", parts={"classic": {"experiment": "c", "runs": runs}},
                              expected={"classic": expected}).read_text()
    assert "| dqn-soft | CartPole-v1 | 3,000 | 0 |" in readme and "pending" in readme
    assert "partial (1/3 seeds)" in readme and "Not run yet." in readme  # sensitivity / reproduced tables


def test_empty_store_gives_empty_tables_with_the_columns():
    empty = pd.DataFrame(columns=["run_id", "status", "agent", "variant", "env", "seed", "outcome",
                                  "final_eval_return"])
    assert list(res.classic_table(empty, reps=100).columns) == res.CLASSIC_COLUMNS
    assert list(res.sensitivity_table(empty, reps=100).columns) == res.SENSITIVITY_COLUMNS
    assert list(res.sensitivity_share(empty, reps=100).columns) == res.SHARE_COLUMNS


def test_share_within_by_hand():
    x = np.array([1.0, 10.0, 100.0])
    assert res.share_within(x, np.array([1.0, 1.0, 1.0]))[0] == pytest.approx(1.0)
    # threshold 0.9: each segment is above it for 0.1 of its log-width next to the peak
    assert res.share_within(x, np.array([0.0, 1.0, 0.0]))[0] == pytest.approx(0.1)
    assert res.share_within(x, np.array([1.0, 0.95, 0.0]))[0] == pytest.approx((1.0 + 0.05 / 0.95) / 2)
    batch = res.share_within(x, np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]]))
    assert batch == pytest.approx([1.0, 0.1])
    assert res.parse_knob("C=500") == ("C", 500.0) and res.parse_knob("eta-mt=0.032") == ("eta-mt", 0.032)
    assert res.parse_knob("full-dqn") is None


@pytest.fixture(scope="module")
def sensitivity_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sens")
    uri = f"sqlite:///{tmp}/mlflow.db"
    runs = []
    # dqn: peaked at C=500 (raw CartPole 475 = normalised 1); agt2: flat
    dqn = {50: 100.0, 160: 300.0, 500: 475.0, 1600: 300.0, 5000: 100.0}
    for env in ("CartPole-v1", "Acrobot-v1"):
        for c, v in dqn.items():
            raw = v if env == "CartPole-v1" else -500 + (v - 22.2) / (475 - 22.2) * 400
            for s in range(3):
                runs.append({"agent": "dqn", "env": env, "seed": s, "final": raw + s, "variant": f"C={c}"})
        for b in (0.001, 0.0032, 0.01, 0.032, 0.1):
            for s in range(3):
                runs.append({"agent": "agt2-dqn", "env": env, "seed": s,
                             "final": 450.0 + s if env == "CartPole-v1" else -120.0 + s, "variant": f"beta={b}"})
    make_store(uri, "s", runs, steps=2000, evals=2)
    return uri


def test_sensitivity_csvs(sensitivity_store, tmp_path):
    runs, _ = load_experiment(sensitivity_store, "s", cache_dir=None)
    paths = res.write_sensitivity(runs, tmp_path, reps=300)
    assert set(paths) == {"sensitivity.csv", "sensitivity_share.csv", "sensitivity.png"}
    table = pd.read_csv(tmp_path / "sensitivity.csv")
    assert list(table.columns) == res.SENSITIVITY_COLUMNS
    assert set(table["method"]) == {"dqn C", "agt2-dqn beta"} and set(table["env"]) == {"CartPole-v1", "Acrobot-v1",
                                                                                        "all"}
    peak = table[(table["method"] == "dqn C") & (table["env"] == "CartPole-v1") & (table["value"] == 500)].iloc[0]
    assert peak["seeds"] == 3 and peak["iqm"] == pytest.approx((476 - 22.2) / (475 - 22.2))
    share = pd.read_csv(tmp_path / "sensitivity_share.csv")
    assert list(share.columns) == res.SHARE_COLUMNS
    flat = share[(share["method"] == "agt2-dqn beta") & (share["env"] == "all")].iloc[0]
    peaked = share[(share["method"] == "dqn C") & (share["env"] == "all")].iloc[0]
    assert flat["share"] == pytest.approx(1.0) and peaked["share"] < 0.5
    assert peaked["best_value"] == 500 and peaked["share_ci_low"] <= peaked["share"] <= peaked["share_ci_high"]
    # the generated README block quotes these numbers, read from the files
    block = res.readme_block(tmp_path)
    assert f"{peaked['share']:.2f} [{peaked['share_ci_low']:.2f}, {peaked['share_ci_high']:.2f}]" in block


def test_run_costs_read_the_cost_tags(classic_store):
    import mlflow

    uri, _, _ = classic_store
    runs, _ = load_experiment(uri, "c", cache_dir=None)
    client = mlflow.MlflowClient(uri)
    dqn = runs[(runs["agent"] == "dqn") & (runs["env"] == "CartPole-v1")]
    for rid in dqn["run_id"]:  # one batched group of three seeds: counted once
        for k, v in {"group_hash": "g1", "group_wall_s": "12.5", "group_cpu_s": "20.0"}.items():
            client.set_tag(rid, k, v)
    runs, _ = load_experiment(uri, "c", cache_dir=None)
    cost = res.run_costs(runs[runs["run_id"].isin(dqn["run_id"])])
    assert cost["groups"] == 1 and cost["wall_s"] == pytest.approx(12.5) and cost["cpu_s"] == pytest.approx(20.0)
    assert cost["seed_steps"] == 3 * 3000


def _csv_numbers(folder: Path) -> set[str]:
    """Every number of the CSVs the README block quotes, formatted the ways the block formats them."""
    out: set[str] = set()
    for name in ("classic_control.csv", "sensitivity_share.csv", "improvement.csv"):
        path = folder / name
        if path.exists():
            for v in pd.read_csv(path).select_dtypes("number").to_numpy().ravel():
                if np.isfinite(v):
                    out |= {f"{v:.1f}", f"{v:.2f}"}
    return out


def test_top_readme_block_matches_docs_results():
    """Every number the top-level README quotes from docs/results/ comes from the files there: its generated block
    is exactly what the generator renders from the CSVs now, and each quoted number is a CSV value."""
    text = (ROOT / "README.md").read_text()
    block = res.extract_readme_block(text)
    folder = ROOT / "docs" / "results"
    assert block == res.readme_block(folder), "README's results block is stale: run `make results NO_RUN=1`"
    numbers = _csv_numbers(folder)
    assert all(n in numbers for n in res.quoted_numbers(block))


def test_readme_block_replacement(classic_store, tmp_path):
    uri, _, _ = classic_store
    runs, metrics = load_experiment(uri, "c", cache_dir=None)
    res.write_classic(runs, metrics, tmp_path, reps=200)
    block = res.readme_block(tmp_path)
    nums = res.quoted_numbers(block)
    assert nums and all(n in _csv_numbers(tmp_path) for n in nums)
    text = f"intro\n{res.README_BEGIN}\nold 1.0\n{res.README_END}\noutro\n"
    new = res.replace_readme_block(text, block)
    assert new.startswith("intro\n") and new.endswith("\noutro\n") and res.extract_readme_block(new) == block
    with pytest.raises(ValueError, match="no generated results block"):
        res.replace_readme_block("no markers", block)


def test_driver_bad_part_and_filters(tmp_path, capsys):
    from suite import results as driver

    assert driver.main(["--part", "nope", "--out", str(tmp_path), "--results", str(tmp_path)]) == 2
    assert "--part 'nope' is not valid" in capsys.readouterr().err
    args = driver._parse_args(["--agents", "dqn", "--envs", "CartPole-v1", "--seeds", "0,1", "--steps", "3000"])
    suite, experiment = driver._suite("sensitivity", args)
    assert experiment == "sweep-sensitivity-classic-steps3000" and list(suite.agents) == ["dqn"]
    assert [v.name for v in suite.variants] == ["C=50", "C=160", "C=500", "C=1600", "C=5000"]
    assert suite.envs == ("CartPole-v1",) and suite.seeds == (0, 1)
    bad = driver._parse_args(["--agents", "nope"])
    from suite.errors import UsageError
    with pytest.raises(UsageError, match="--agents names 'nope'"):
        driver._suite("classic", bad)


def test_driver_table_budgets(tmp_path, capsys):
    """The reproduced tables run at the driver's budgets unless a flag says otherwise; --steps beats both."""
    from suite import results as driver

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


def test_readme_block_counts_reproduced_verdicts(tmp_path):
    """Each reproduced table (not its --quick smoke version) is one line: its title and its verdict counts."""
    pd.DataFrame({"verdict": ["inside", "outside", "outside", "not comparable"]}).to_csv(
        tmp_path / "reproduce-t.csv", index=False)
    (tmp_path / "reproduce-t.md").write_text("### Reproduce t (1,000 env steps per run, 2 seeds)\n\n| a |\n")
    pd.DataFrame({"verdict": ["inside"]}).to_csv(tmp_path / "reproduce-t-quick.csv", index=False)
    block = res.readme_block(tmp_path)
    assert ("- Reproduce t (1,000 env steps per run, 2 seeds): 1 inside, 2 outside, 1 not comparable of 4 rows "
            "([docs/results/reproduce-t.md](docs/results/reproduce-t.md))") in block
    assert "quick" not in block and "not been generated" not in block
    assert "not been generated" in res.readme_block(tmp_path / "empty")


def test_improvement_over_dqn_by_hand(classic_store, tmp_path):
    """agt2 beats every dqn run on CartPole (P = 1); on Acrobot its one scored run failed and scores as the
    random policy, below every dqn run (P = 0): averaged over the two environments, 0.5."""
    uri, _, _ = classic_store
    runs, metrics = load_experiment(uri, "c", cache_dir=None)
    table = res.improvement_over(runs, reps=300)
    assert list(table.columns) == res.IMPROVEMENT_COLUMNS
    row = table.set_index("x").loc["agt2-dqn"]
    assert row["y"] == "dqn" and row["tasks"] == 2 and row["probability"] == pytest.approx(0.5)
    assert row["ci_low"] == pytest.approx(0.5) and row["ci_high"] == pytest.approx(0.5)  # nothing overlaps
    assert res.improvement_over(runs[runs["agent"] != "dqn"]).empty  # no baseline, no rows
    paths = res.write_classic(runs, metrics, tmp_path, reps=200)
    assert {"improvement.csv", "cost.csv"} <= set(paths)
    readme = res.write_readme(tmp_path, command="make results", parts={}).read_text()
    assert "| agt2-dqn | 0.50 [0.50, 0.50] | 2 |" in readme


def test_cost_table_by_hand():
    """Parameters and target bytes span the environments; throughput is seed-steps over summed group wall time;
    sparsity is the mean of each run's last recorded value, empty for agents that record none."""
    runs = pd.DataFrame({
        "run_id": ["a", "b", "c", "d"], "agent": ["eaudeqn", "eaudeqn", "eaudeqn", "dqn"],
        "env": ["CartPole-v1", "CartPole-v1", "Acrobot-v1", "CartPole-v1"],
        "param.parameter_count": ["100", "100", "130", "50"], "param.target_bytes": ["400", "400", "520", "0"],
        "tag.group_hash": ["g1", "g1", "g2", "g3"], "tag.group_wall_s": ["10", "10", "30", "5"],
        "final_step": [1000, 1000, 2000, 500], "start_time": [0, 0, 0, 0], "end_time": [1, 1, 1, 1]})
    metrics = pd.DataFrame({"run_id": ["a", "a", "b", "c"], "metric": res.names.TARGET_SPARSITY,
                            "step": [10, 20, 20, 20], "value": [0.9, 0.2, 0.4, 0.6]})
    table = res.cost_table(runs, metrics).set_index("agent")
    assert list(table.reset_index().columns) == res.COST_COLUMNS
    e = table.loc["eaudeqn"]
    assert (e["envs"], e["parameters_min"], e["parameters_max"], e["target_bytes_max"]) == (2, 100, 130, 520)
    assert e["seed_steps_per_s"] == pytest.approx(4000 / 40)  # groups g1 (10 s) and g2 (30 s)
    assert e["target_sparsity_final"] == pytest.approx((0.2 + 0.4 + 0.6) / 3)  # last value of run a is 0.2
    assert table.loc["dqn", "seed_steps_per_s"] == pytest.approx(100)
    assert np.isnan(table.loc["dqn", "target_sparsity_final"])
