"""Evaluation protocols in the analysis (analysis/protocol_check.py): one protocol per environment in a comparison,
one-line errors naming the first differing field, runs without a protocol said once, reference selection."""
from __future__ import annotations

import pandas as pd
import pytest

from analysis.protocol_check import MixedProtocolsError, check_protocols, first_difference, select_reference


def runs(env: str, fp: str | None, budget: int | None, n: int = 2, experiment: str = "mine", start: int = 0):
    rows = []
    for i in range(n):
        row = {"run_id": f"{experiment}-{env}-{fp}-{start + i}", "agent": "dqn", "env": env, "experiment": experiment}
        if fp is not None:
            row.update({"tag.protocol": fp, "param.protocol.env_id": env, "param.protocol.budget_steps": str(budget),
                        "param.protocol.eval_episodes": "10"})
        rows.append(row)
    return pd.DataFrame(rows)


def test_first_difference_follows_the_field_order():
    a = {"env_id": "A", "budget_steps": 1, "eval_episodes": 10, "env.sticky": 0}
    assert first_difference(a, {**a, "eval_episodes": 5, "budget_steps": 2}) == ("budget_steps", 1, 2)
    assert first_difference(a, {**a, "env.sticky": 1}) == ("env.sticky", 0, 1)
    assert first_difference(a, {k: str(v) for k, v in a.items()}) is None


def test_one_protocol_per_environment_or_a_one_line_error():
    same = pd.concat([runs("CartPole-v1", "p1", 500000), runs("Acrobot-v1", "p2", 500000)])
    assert check_protocols(same) == []  # another protocol on another environment is fine
    mixed = pd.concat([same, runs("CartPole-v1", "p3", 50000, n=1, experiment="other")])
    with pytest.raises(MixedProtocolsError) as err:
        check_protocols(mixed)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("CartPole-v1: runs of 2 evaluation protocols")
    assert "first difference budget_steps: 500000 (experiment mine) vs 50000 (experiment other)" in msg
    assert "--allow-mixed-protocols" in msg
    notes = check_protocols(mixed, allow_mixed=True)
    assert len(notes) == 1 and notes[0].startswith("Mixed protocols allowed (--allow-mixed-protocols): CartPole-v1")


def test_runs_without_a_protocol_are_one_unknown_protocol_said_once():
    old = pd.concat([runs("CartPole-v1", None, None, n=3), runs("Acrobot-v1", None, None)])
    notes = check_protocols(old)
    assert notes == ["5 of 5 runs record no evaluation protocol (a store older than the fingerprint): they are "
                     "treated as one unknown protocol."]
    with pytest.raises(MixedProtocolsError, match="record no protocol"):
        check_protocols(pd.concat([old, runs("CartPole-v1", "p1", 500000, experiment="new")]))


def test_select_reference_keeps_the_same_protocol_and_names_a_mismatch():
    reference = pd.concat([runs("CartPole-v1", "p500", 500000, n=3, experiment="results-classic"),
                           runs("CartPole-v1", "p200", 200000, n=4, experiment="sensitivity"),
                           runs("MountainCar-v0", "pm", 500000, n=2, experiment="results-classic")])
    mine = runs("CartPole-v1", "p500", 500000)
    chosen, notes = select_reference(mine, reference, own_name="experiment mine")
    assert set(chosen["experiment"]) == {"results-classic"} and len(chosen) == 3 and notes == []
    short = runs("CartPole-v1", "p5k", 5000)
    with pytest.raises(MixedProtocolsError) as err:
        select_reference(short, reference, own_name="experiment mine")
    msg = str(err.value)
    assert msg.startswith("CartPole-v1: no reference run has the evaluation protocol of experiment mine")
    # the closest reference protocol (one field apart from both, the most runs) is named
    assert "first difference budget_steps: 5000 (experiment mine) vs 200000 (reference)" in msg
    chosen, notes = select_reference(short, reference, allow_mixed=True)
    assert len(chosen) == 7 and "every reference run of CartPole-v1 is shown" in notes[0]
    _, notes = select_reference(runs("Acrobot-v1", "pa", 500000), reference)
    assert notes == ["Acrobot-v1: the reference has no runs of this environment."]
