"""`targetbench reproduce dopamine_dqn`: the shipped Dopamine runs carry today's `dopamine` protocol fingerprint, the
table is wired, and the quick path runs end to end."""
from __future__ import annotations

import pandas as pd
import pytest

from analysis.reproduction import read_published_runs
from suite.cli import main
from suite.protocol import fingerprint, protocol_of
from suite.reproduce import TABLES, build_table, resolve_table
from suite.trial import build_trial


def test_shipped_runs_carry_the_dopamine_protocol_fingerprint_of_today():
    """Fails when the protocol's definition moved: rerun benchmarks/convert_dopamine.py (README there)."""
    published = read_published_runs("dopamine/runs/dopamine-dqn.csv.gz")
    shipped = published.groupby("env")["protocol"].first()
    for env, fp in shipped.items():
        trial = build_trial("dqn", env, (0,), steps=50_000_000, overrides={"env.protocol": "dopamine"})
        assert fingerprint(protocol_of(trial)) == fp, env


def test_table_is_registered_and_its_notes_name_the_source():
    assert resolve_table("dopamine-dqn") is TABLES["dopamine_dqn"]
    runs = pd.DataFrame({"run_id": ["r"], "env": ["ALE/Pong-v5"], "seed": [0], "status": ["FINISHED"],
                         "outcome": ["completed"], "param.env.protocol": ["dopamine"]})
    metrics = pd.DataFrame({"run_id": ["r", "r"], "metric": ["train/episode_return", "eval/return_mean"],
                            "step": [900, 1000], "value": [-21.0, -21.0]})
    table, notes = build_table(TABLES["dopamine_dqn"], runs, metrics=metrics, reps=100, seed=0, steps=1000, quick=True)
    assert "google/dopamine" in notes[0] and len(notes) == 1  # no fingerprint drift note
    assert table["verdict"].tolist() == ["not comparable"] and "0.4% run" in table["reason"].iloc[0]


@pytest.mark.slow
def test_quick_reproduce_runs_end_to_end(tmp_path, capsys):
    code = main(["reproduce", "dopamine_dqn", "--quick", "--results", str(tmp_path), "--quiet", "--reps", "100"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Reproduce dopamine_dqn (QUICK budget" in out and "Pong" in out and "not comparable" in out
