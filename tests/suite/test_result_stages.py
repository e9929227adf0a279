"""Studies built in stages (suite/result_stages.py): stage 2 and the tuned part are derived from per-run data,
deterministically; the sensitivity part runs both stages into one experiment and resumes them."""
from __future__ import annotations

import pandas as pd
import pytest

from analysis.run_table import read_run_table, to_frames
from suite import result_stages as stages
from suite import results
from suite.errors import UsageError
from suite.scheduler.spec import VariantSpec, parse_suite

LR_AT_BEST_BETA = stages.DerivedSweep(name="lr={value}", sweep="lr@beta", agent="agt2-dqn", knob="learning_rate",
                                      values=(0.001,), best_of="agt2-dqn beta", carry="beta")


def stage1(best_beta: float) -> pd.DataFrame:
    """agt2-dqn runs of a beta sweep whose best value (normalised IQM, both environments) is ``best_beta``."""
    rows = []
    for env, lo, hi in (("CartPole-v1", 22.2, 475.0), ("Acrobot-v1", -500.0, -100.0)):
        for beta in (0.001, 0.01, 0.1):
            for s in range(3):
                raw = hi if beta == best_beta else lo
                rows.append({"run_id": f"{env}{beta}{s}", "agent": "agt2-dqn", "variant": f"beta={beta}", "env": env,
                             "seed": s, "status": "FINISHED", "outcome": "completed", "final_eval_return": raw,
                             "method": "agt2-dqn beta", "knob": "agent.beta", "knob_value": beta})
    return pd.DataFrame(rows)


def test_suite_variants_declare_their_knob_and_sweep():
    suite = parse_suite({"name": "s", "agents": ["dqn", "sgt2-dqn"], "envs": ["CartPole-v1"], "variants": [
        {"name": "C={target_period}", "agents": ["dqn"], "grid": {"target_period": [50, 500]}, "sweep": "C"},
        {"name": "eta-mt={eta}", "agents": ["sgt2-dqn"], "overrides": {"form": "mutual-tracking"},
         "grid": {"eta": [0.1]}, "sweep": "eta-mt"},
        {"name": "plain", "overrides": {"learning_rate": 0.001}}]})
    assert [(v.knob, v.sweep) for v in suite.variants] == [("target_period", "C")] * 2 + [("eta", "eta-mt"),
                                                                                         (None, None)]
    assert stages.sweeps_of(suite.variants, list(suite.agents)) == {
        ("dqn", "C=50"): ("dqn C", "agent.target_period"), ("dqn", "C=500"): ("dqn C", "agent.target_period"),
        ("sgt2-dqn", "eta-mt=0.1"): ("sgt2-dqn eta-mt", "agent.eta")}
    with pytest.raises(UsageError, match=r"key 'variants\[0\].knob' is 'tau'; allowed: a key of the variant's grid"):
        parse_suite({"name": "s", "agents": ["dqn"], "envs": ["CartPole-v1"],
                     "variants": [{"grid": {"target_period": [1]}, "knob": "tau"}]})


def test_stage2_carries_the_best_value_of_stage1():
    (v,) = stages.stage2_variants(stage1(0.01), [LR_AT_BEST_BETA])
    assert v == VariantSpec("lr=0.001", {"beta": "0.01", "learning_rate": "0.001"}, agents=("agt2-dqn",),
                            knob="learning_rate", sweep="lr@beta")
    (w,) = stages.stage2_variants(stage1(0.1), [LR_AT_BEST_BETA])
    assert w.overrides["beta"] == "0.1"
    assert stages.stage2_variants(stage1(0.1).iloc[:0], [LR_AT_BEST_BETA]) == ()  # stage 1 not run yet


def test_tuned_takes_the_best_reading_and_its_overrides():
    runs = pd.concat([stage1(0.1), stage1(0.01).assign(  # a second agt2 sweep, best at 0.01 but lower everywhere
        method="agt2-dqn beta-b", variant=lambda d: "b-" + d["variant"],
        final_eval_return=lambda d: d["final_eval_return"] - 10, run_id=lambda d: "b" + d["run_id"])])
    variants = [VariantSpec(f"beta={b}", {"beta": str(b)}, agents=("agt2-dqn",), knob="beta", sweep="beta")
                for b in (0.001, 0.01, 0.1)]
    variants += [VariantSpec(f"b-beta={b}", {"beta": str(b), "optimizer": "adam"}, agents=("agt2-dqn",),
                             knob="beta", sweep="beta-b") for b in (0.001, 0.01, 0.1)]
    ((agent, variant, method, knob),) = stages.tuned_variants(runs, variants, ["agt2-dqn"])
    assert (agent, method, knob) == ("agt2-dqn", "agt2-dqn beta", "agent.beta")
    assert variant == VariantSpec("tuned", {"beta": "0.1"}, agents=("agt2-dqn",), knob="beta", sweep="beta")
    with pytest.raises(UsageError, match="needs the sensitivity study's per-run data for sgt2-dqn"):
        stages.tuned_variants(runs, variants, ["sgt2-dqn"])


@pytest.mark.slow  # six groups through the scheduler, twice: minutes on a busy 2-core machine
def test_sensitivity_part_runs_stage2_into_the_same_experiment_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(stages, "SENSITIVITY_STAGE2", (LR_AT_BEST_BETA,))
    argv = ["--part", "sensitivity", "--steps", "200", "--seeds", "0", "--agents", "agt2-dqn", "--envs", "CartPole-v1",
            "--out", str(tmp_path / "out"), "--results", str(tmp_path / "store"), "--reps", "100", "--quiet"]
    assert results.main(argv) == 0
    err = capsys.readouterr().err
    assert "sensitivity: 5 trials run" in err and "sensitivity stage 2: 1 trials run" in err
    table = read_run_table(tmp_path / "out" / "runs" / "sensitivity.csv.gz")
    runs, _ = to_frames(table)
    second = runs[runs["variant"] == "lr=0.001"].iloc[0]
    assert (second["method"], second["knob"], second["knob_value"]) == ("agt2-dqn lr@beta", "agent.learning_rate",
                                                                        0.001)
    best = runs[runs["method"] == "agt2-dqn beta"].sort_values("final_eval_return", kind="stable")
    assert float(second["param.agent.beta"]) in set(best["knob_value"])
    assert set(runs["experiment"]) == {"sweep-sensitivity-classic-steps200"}
    assert results.main(argv) == 0  # resumable: both stages are already in the store
    err = capsys.readouterr().err
    assert "sensitivity: 0 trials run, 5 already finished" in err and "stage 2: 0 trials run, 1 already" in err
