"""Reference results (analysis/classic_tables.py, sensitivity_tables.py, result_files.py, readme_block.py): CSV
schemas, partial stores, the knob-range share, the verdict per reading, and the top-level README's generated block
against docs/results/."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import classic_tables as ct
from analysis import readme_block as rb
from analysis import record_names as names
from analysis import result_files as rf
from analysis import sensitivity_tables as st
from analysis.run_table import from_frames, to_frames
from analysis.runs import DEFAULT_METRICS, load_experiment
from analysis.synthetic import make_store

ROOT = Path(__file__).resolve().parents[2]


def frames(uri: str, experiment: str, sweeps=None):
    """The store's runs the way the generator sees them: through the per-run table."""
    runs, metrics = load_experiment(uri, experiment, cache_dir=None,
                                    metrics=DEFAULT_METRICS + (names.TARGET_SPARSITY,))
    return to_frames(from_frames(runs, metrics, experiment, sweeps=sweeps))


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
    runs, metrics = frames(uri, "c")
    expected = ct.Expected(cells=tuple((a, "default", e) for a, e in (
        ("dqn", "CartPole-v1"), ("dqn", "Acrobot-v1"), ("agt2-dqn", "CartPole-v1"), ("agt2-dqn", "Acrobot-v1"),
        ("dqn-soft", "CartPole-v1"))), seeds=3, steps=3000)
    paths = rf.write_classic(runs, metrics, tmp_path, reps=500, expected=expected)
    header = (tmp_path / "classic_control.csv").read_text().splitlines()[0]
    assert header == ",".join(ct.CLASSIC_COLUMNS) == "agent,variant,env,steps,seeds,mean,std,iqm,iqm_ci_low,iqm_ci_high"
    table = pd.read_csv(tmp_path / "classic_control.csv")
    row = table[(table["agent"] == "dqn") & (table["env"] == "CartPole-v1")].iloc[0]
    assert row["seeds"] == 3 and row["steps"] == 3000 and row["variant"] == "default"
    assert row["mean"] == pytest.approx(200.0) and row["std"] == pytest.approx(100.0)  # sample std, ddof 1
    assert row["iqm_ci_low"] <= row["iqm"] <= row["iqm_ci_high"]
    # the running seed is not scored, the failed one scores as the random policy (-499.09 on Acrobot)
    agt = table[(table["agent"] == "agt2-dqn") & (table["env"] == "Acrobot-v1")].iloc[0]
    assert agt["seeds"] == 1 and agt["mean"] == pytest.approx(-499.09)
    # a planned cell with nothing finished: a row with zero seeds and empty numbers, not a crash
    pending = table[table["agent"] == "dqn-soft"].iloc[0]
    assert pending["seeds"] == 0 and np.isnan(pending["mean"]) and np.isnan(pending["iqm"])
    assert {"curves_cartpole_v1.png", "curves_acrobot_v1.png", "aggregate.png", "aggregate.csv"} <= set(paths)
    part = rf.Part("classic", runs, experiments=("c",), expected=expected)
    readme = rf.write_readme(tmp_path, {"classic": part}, readings={"agt2-dqn": "agt2"}).read_text()
    assert "| dqn-soft | CartPole-v1 | 3,000 | 0 |" in readme and "pending" in readme
    assert "partial (1/3 seeds)" in readme and "Not run yet." in readme  # sensitivity / reproduced tables
    # a method from a reading carries the mark linking to its reading; the others do not
    assert "| agt2-dqn [†](../algorithms.md#reading-agt2) | Acrobot-v1 |" in readme and "| dqn [†]" not in readme


def test_empty_store_gives_empty_tables_with_the_columns():
    empty = pd.DataFrame(columns=["run_id", "status", "agent", "variant", "env", "seed", "outcome",
                                  "final_eval_return"])
    assert list(ct.classic_table(empty, reps=100).columns) == ct.CLASSIC_COLUMNS
    assert list(st.sensitivity_table(empty, reps=100).columns) == st.SENSITIVITY_COLUMNS
    assert list(st.sensitivity_share(empty, reps=100).columns) == st.SHARE_COLUMNS


def test_share_within_by_hand():
    x = np.array([1.0, 10.0, 100.0])
    assert st.share_within(x, np.array([1.0, 1.0, 1.0]))[0] == pytest.approx(1.0)
    # threshold 0.9: each segment is above it for 0.1 of its log-width next to the peak
    assert st.share_within(x, np.array([0.0, 1.0, 0.0]))[0] == pytest.approx(0.1)
    assert st.share_within(x, np.array([1.0, 0.95, 0.0]))[0] == pytest.approx((1.0 + 0.05 / 0.95) / 2)
    batch = st.share_within(x, np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]]))
    assert batch == pytest.approx([1.0, 0.1])


SWEEPS = {**{("dqn", f"C={c}"): ("dqn C", "agent.target_period") for c in (50, 160, 500, 1600, 5000)},
          **{("agt2-dqn", f"b{i}"): ("agt2-dqn beta", "agent.beta") for i in range(5)}}


@pytest.fixture(scope="module")
def sensitivity_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sens")
    uri = f"sqlite:///{tmp}/mlflow.db"
    runs = []
    # dqn: peaked at C=500 (raw CartPole 475 = normalised 1); agt2: flat. agt2's variant names carry no value:
    # the knob and its value come from the suite's declaration and the recorded param, not from the name.
    dqn = {50: 100.0, 160: 300.0, 500: 475.0, 1600: 300.0, 5000: 100.0}
    for env in ("CartPole-v1", "Acrobot-v1"):
        for c, v in dqn.items():
            raw = v if env == "CartPole-v1" else -500 + (v - 22.2) / (475 - 22.2) * 400
            for s in range(3):
                runs.append({"agent": "dqn", "env": env, "seed": s, "final": raw + s, "variant": f"C={c}",
                             "params": {"target_period": c}})
        for i, b in enumerate((0.001, 0.0032, 0.01, 0.032, 0.1)):
            for s in range(3):
                runs.append({"agent": "agt2-dqn", "env": env, "seed": s, "variant": f"b{i}", "params": {"beta": b},
                             "final": 450.0 + s if env == "CartPole-v1" else -120.0 + s})
    make_store(uri, "s", runs, steps=2000, evals=2)
    return uri


def test_sensitivity_csvs(sensitivity_store, tmp_path):
    runs, _ = frames(sensitivity_store, "s", SWEEPS)
    paths = rf.write_sensitivity(runs, tmp_path, reps=300)
    assert set(paths) == {"sensitivity.csv", "sensitivity_share.csv", "claim.csv", "sensitivity.png"}
    table = pd.read_csv(tmp_path / "sensitivity.csv")
    assert list(table.columns) == st.SENSITIVITY_COLUMNS
    assert set(table["method"]) == {"dqn C", "agt2-dqn beta"} and set(table["env"]) == {"CartPole-v1", "Acrobot-v1",
                                                                                        "all"}
    assert set(table["knob"]) == {"target_period", "beta"}
    assert sorted(table.loc[table["method"] == "agt2-dqn beta", "value"].unique()) == [0.001, 0.0032, 0.01, 0.032,
                                                                                       0.1]
    peak = table[(table["method"] == "dqn C") & (table["env"] == "CartPole-v1") & (table["value"] == 500)].iloc[0]
    assert peak["seeds"] == 3 and peak["iqm"] == pytest.approx((476 - 22.2) / (475 - 22.2))
    share = pd.read_csv(tmp_path / "sensitivity_share.csv")
    assert list(share.columns) == st.SHARE_COLUMNS
    flat = share[(share["method"] == "agt2-dqn beta") & (share["env"] == "all")].iloc[0]
    peaked = share[(share["method"] == "dqn C") & (share["env"] == "all")].iloc[0]
    assert flat["share"] == pytest.approx(1.0) and peaked["share"] < 0.5
    assert peaked["best_value"] == 500 and peaked["share_ci_low"] <= peaked["share"] <= peaked["share_ci_high"]
    # the generated README block quotes these numbers, read from the files
    block = rb.readme_block(tmp_path)
    assert rf.tables.fmt_ci(peaked["share"], peaked["share_ci_low"], peaked["share_ci_high"]) in block


def test_sweeps_without_a_declaration_are_not_guessed(sensitivity_store):
    """Variant names like C=500 look like KNOB=VALUE, but without the suite's declaration there is no method."""
    runs, _ = frames(sensitivity_store, "s")
    assert st.sensitivity_cells(runs).empty and st.sensitivity_table(runs, reps=100).empty


def test_claim_verdict_rule_by_hand():
    """The flat agt2 knob (share 1, interval above dqn C's) that is as good at its best supports the claim; a
    reading whose share interval lies below dqn C's does not; overlapping intervals cannot tell."""
    share = pd.DataFrame({"method": ["dqn C", "agt2-dqn beta", "sgt2-dqn eta", "isql T"], "env": "all",
                          "values": 5, "best_value": [500, 0.01, 0.1, 200], "best_iqm": [1.0, 0.98, 1.0, 1.0],
                          "share": [0.4, 1.0, 0.1, 0.45], "share_ci_low": [0.3, 0.9, 0.05, 0.35],
                          "share_ci_high": [0.5, 1.0, 0.2, 0.6]})
    table = pd.DataFrame({"method": ["agt2-dqn beta", "sgt2-dqn eta", "isql T"], "env": "all",
                          "value": [0.01, 0.1, 200], "iqm": [0.98, 1.0, 1.0], "iqm_ci_low": [0.9, 0.9, 0.9],
                          "iqm_ci_high": [1.01, 1.05, 1.05]})
    claim = st.claim_verdicts(share, table, same_as={"agt2-dqn beta": "dqn-soft under another name"})
    v = claim.set_index("reading")
    assert list(claim.columns) == st.CLAIM_COLUMNS and "dqn C" not in v.index
    assert (v.loc["agt2-dqn beta", "flatter"], v.loc["agt2-dqn beta", "as_good"]) == ("yes", "yes")
    assert v.loc["agt2-dqn beta", "verdict"] == "supports" and v.loc["agt2-dqn beta", "same_as"].startswith("dqn-soft")
    assert v.loc["sgt2-dqn eta", "verdict"] == "does not support"
    assert v.loc["isql T", "verdict"] == "inconclusive"
    worse = st.claim_verdicts(share, table.assign(iqm_ci_high=[0.95, 1.05, 1.05]))
    assert worse.set_index("reading").loc["agt2-dqn beta", "verdict"] == "does not support"  # not as good
    assert st.claim_verdicts(share[share["method"] != "dqn C"], table).empty  # no baseline sweep, no verdicts


def test_best_settings_are_point_estimates(sensitivity_store):
    runs, _ = frames(sensitivity_store, "s", SWEEPS)
    best = st.best_settings(runs).set_index("method")
    assert best.loc["dqn C", "best_value"] == 500 and best.loc["dqn C", "variant"] == "C=500"
    assert best.loc["dqn C", "knob"] == "agent.target_period"
    assert best.loc["agt2-dqn beta", "agent"] == "agt2-dqn"
    assert st.best_settings(runs).equals(st.best_settings(runs))


def test_run_costs_read_the_cost_tags(classic_store):
    import mlflow

    uri, _, _ = classic_store
    runs, _ = frames(uri, "c")
    client = mlflow.MlflowClient(uri)
    dqn = runs[(runs["agent"] == "dqn") & (runs["env"] == "CartPole-v1")]
    for rid in dqn["run_id"]:  # one batched group of three seeds: counted once
        for k, v in {"group_hash": "g1", "group_wall_s": "12.5", "group_cpu_s": "20.0"}.items():
            client.set_tag(rid, k, v)
    runs, _ = frames(uri, "c")
    cost = ct.run_costs(runs[runs["run_id"].isin(dqn["run_id"])])
    assert cost["groups"] == 1 and cost["wall_s"] == pytest.approx(12.5) and cost["cpu_s"] == pytest.approx(20.0)
    assert cost["seed_steps"] == 3 * 3000


def _csv_numbers(folder: Path) -> set[str]:
    """Every number of the CSVs the README block quotes, formatted the ways the block formats them."""
    out: set[str] = set()
    for name in rb.QUOTED_CSVS:
        path = folder / name
        if path.exists():
            for v in pd.read_csv(path).select_dtypes("number").to_numpy().ravel():
                if np.isfinite(v):
                    out |= {f"{v:.1f}", f"{v:.2f}", f"{v:g}"}
    return out


def test_top_readme_block_matches_docs_results():
    """Every number the top-level README quotes from docs/results/ comes from the files there: its generated block
    is exactly what the generator renders from the CSVs now, and each quoted number is a CSV value."""
    from suite.results import readings

    text = (ROOT / "README.md").read_text()
    block = rb.extract_readme_block(text)
    folder = ROOT / "docs" / "results"
    assert block == rb.readme_block(folder, readings()), "README's results block is stale: run `make results NO_RUN=1`"
    numbers = _csv_numbers(folder)
    assert all(n in numbers for n in rb.quoted_numbers(block))


def test_readme_block_replacement(classic_store, tmp_path):
    uri, _, _ = classic_store
    runs, metrics = frames(uri, "c")
    rf.write_classic(runs, metrics, tmp_path, reps=200)
    block = rb.readme_block(tmp_path, {"agt2-dqn": "agt2"})
    nums = rb.quoted_numbers(block)
    assert nums and all(n in _csv_numbers(tmp_path) for n in nums)
    assert "| agt2-dqn [†](docs/algorithms.md#reading-agt2) |" in block and "| dqn |" in block
    text = f"intro\n{rb.README_BEGIN}\nold 1.0\n{rb.README_END}\noutro\n"
    new = rb.replace_readme_block(text, block)
    assert new.startswith("intro\n") and new.endswith("\noutro\n") and rb.extract_readme_block(new) == block
    with pytest.raises(ValueError, match="no generated results block"):
        rb.replace_readme_block("no markers", block)


def test_readme_block_counts_reproduced_verdicts_and_lists_smoke_checks_apart(tmp_path):
    """Each reproduced table (not its --quick smoke version) is one line: its title and its verdict counts; a
    table whose every row is "not comparable" is listed as a smoke-level check, not as a reproduction."""
    pd.DataFrame({"verdict": ["inside", "outside", "outside", "not comparable"]}).to_csv(
        tmp_path / "reproduce-t.csv", index=False)
    (tmp_path / "reproduce-t.md").write_text("### Reproduce t (1,000 env steps per run, 2 seeds)\n\n| a |\n")
    pd.DataFrame({"verdict": ["not comparable"] * 3}).to_csv(tmp_path / "reproduce-m.csv", index=False)
    (tmp_path / "reproduce-m.md").write_text("### Reproduce m (50 env steps per run, 2 seeds)\n\n| a |\n")
    pd.DataFrame({"verdict": ["inside"]}).to_csv(tmp_path / "reproduce-t-quick.csv", index=False)
    block = rb.readme_block(tmp_path)
    line_t = ("- Reproduce t (1,000 env steps per run, 2 seeds): 1 inside, 2 outside, 1 not comparable of 4 rows "
              "([docs/results/reproduce-t.md](docs/results/reproduce-t.md))")
    assert line_t in block and "quick" not in block and "not been generated" not in block
    reproduced, smoke = block.split("Smoke-level checks")
    assert line_t in reproduced and "Reproduce m" not in reproduced and "- Reproduce m (50 env steps" in smoke
    assert "not been generated" in rb.readme_block(tmp_path / "empty")


def test_improvement_over_dqn_by_hand(classic_store, tmp_path):
    """agt2 beats every dqn run on CartPole (P = 1); on Acrobot its one scored run failed and scores as the
    random policy, below every dqn run (P = 0): averaged over the two environments, 0.5."""
    uri, _, _ = classic_store
    runs, metrics = frames(uri, "c")
    table = ct.improvement_over(runs, reps=300)
    assert list(table.columns) == ct.IMPROVEMENT_COLUMNS
    row = table.set_index("x").loc["agt2-dqn"]
    assert row["y"] == "dqn" and row["tasks"] == 2 and row["probability"] == pytest.approx(0.5)
    assert row["ci_low"] == pytest.approx(0.5) and row["ci_high"] == pytest.approx(0.5)  # nothing overlaps
    assert ct.improvement_over(runs[runs["agent"] != "dqn"]).empty  # no baseline, no rows
    paths = rf.write_classic(runs, metrics, tmp_path, reps=200)
    assert {"improvement.csv", "cost.csv"} <= set(paths)
    readme = rf.write_readme(tmp_path, {}).read_text()
    assert "| agt2-dqn | 0.50 [0.50, 0.50] | 2 |" in readme


def test_tuned_runs_are_their_own_rows_next_to_the_defaults(classic_store, tmp_path):
    """Runs of variant `tuned` (with the sweep that chose them) are rows `agent/tuned` in every classic file."""
    uri, _, _ = classic_store
    runs, metrics = frames(uri, "c")
    tuned = runs[runs["agent"] == "agt2-dqn"].assign(variant="tuned", method="agt2-dqn beta", knob="agent.beta",
                                                     knob_value=0.032, run_id=lambda d: d["run_id"] + "-t")
    both = pd.concat([runs, tuned], ignore_index=True)
    rf.write_classic(both, pd.concat([metrics, metrics[metrics["run_id"].isin(tuned["run_id"].str[:-2])].assign(
        run_id=lambda d: d["run_id"] + "-t")]), tmp_path, reps=200)
    table = pd.read_csv(tmp_path / "classic_control.csv")
    assert {("agt2-dqn", "default"), ("agt2-dqn", "tuned")} <= set(zip(table["agent"], table["variant"]))
    assert "agt2-dqn/tuned" in set(pd.read_csv(tmp_path / "improvement.csv")["x"])
    assert pd.read_csv(tmp_path / "tuned.csv").to_dict(orient="records") == [
        {"agent": "agt2-dqn/tuned", "method": "agt2-dqn beta", "knob": "agent.beta", "value": 0.032, "runs": 5}]
    block = rb.readme_block(tmp_path, {"agt2-dqn": "agt2"})
    assert "| agt2-dqn/tuned [†](docs/algorithms.md#reading-agt2) |" in block


def test_cost_table_by_hand():
    """Parameters and target bytes span the environments; wall time sums the groups; throughput is seed-steps
    over summed group wall time; the device is recorded per run; sparsity is the mean of each run's last
    recorded value, empty for agents that record none."""
    runs = pd.DataFrame({
        "run_id": ["a", "b", "c", "d"], "agent": ["eaudeqn", "eaudeqn", "eaudeqn", "dqn"], "variant": "default",
        "env": ["CartPole-v1", "CartPole-v1", "Acrobot-v1", "CartPole-v1"],
        "param.parameter_count": ["100", "100", "130", "50"], "param.target_bytes": ["400", "400", "520", "0"],
        "tag.group_hash": ["g1", "g1", "g2", "g3"], "tag.group_wall_s": ["10", "10", "30", "5"],
        "tag.torch_device": ["cpu", "cpu", "cpu", "cuda"], "tag.gpu": [None, None, None, "H100"],
        "final_step": [1000, 1000, 2000, 500], "start_time": [0, 0, 0, 0], "end_time": [1, 1, 1, 1],
        "target_sparsity": [0.2, 0.4, 0.6, np.nan]})
    table = ct.cost_table(runs).set_index("agent")
    assert list(table.reset_index().columns) == ct.COST_COLUMNS
    e = table.loc["eaudeqn"]
    assert (e["envs"], e["parameters_min"], e["parameters_max"], e["target_bytes_max"]) == (2, 100, 130, 520)
    assert e["wall_s"] == pytest.approx(40) and e["seed_steps_per_s"] == pytest.approx(4000 / 40)
    assert e["device"] == "cpu" and table.loc["dqn", "device"] == "cuda (H100)"
    assert e["target_sparsity_final"] == pytest.approx((0.2 + 0.4 + 0.6) / 3)
    assert table.loc["dqn", "seed_steps_per_s"] == pytest.approx(100)
    assert np.isnan(table.loc["dqn", "target_sparsity_final"])
