"""`targetbench seeds` and `analyze --reference` against the small reference fixture (tests/data/reference): what
they print, and one-line errors for what they cannot use."""
from __future__ import annotations

import json
from pathlib import Path

from analysis.synthetic import make_store
from suite.cli import main

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference"


def test_seeds_prints_one_row_per_count_and_an_answer(capsys):
    assert main(["seeds", "--reference", str(REFERENCE), "--agent", "agt2-dqn", "--subsets", "5", "--reps", "100",
                 "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["seeds"] for r in rows[:-1]] == [2, 3] and rows[-1]["stored_seeds"] == 3
    assert rows[-1]["envs"] == ["Acrobot-v1", "CartPole-v1"] and rows[-1]["baseline"] == "dqn"
    assert rows[-1]["smallest_seeds"] in (None, 2, 3) and rows[-1]["answer"]


def test_seeds_and_reference_errors_are_one_line(tmp_path, capsys):
    assert main(["seeds", "--reference", str(REFERENCE), "--agent", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--agent 'nope' has no runs in the reference; allowed:" in err and "agt2-dqn/tuned" in err
    assert main(["seeds", "--reference", str(tmp_path), "--agent", "dqn"]) == 2
    assert "has no per-run data (runs/*.csv.gz)" in capsys.readouterr().err
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    make_store(uri, "mine", [{"agent": "dqn", "env": "CartPole-v1", "seed": 0, "final": 10.0}])
    assert main(["analyze", "--results", str(tmp_path), "--experiment", "mine", "--reference", str(tmp_path / "x"),
                 "--no-figures", "--reps", "100"]) == 2
    assert "--reference" in capsys.readouterr().err


def test_runs_without_a_protocol_are_refused_next_to_the_reference_unless_allowed(tmp_path, capsys):
    """An older store's runs record no protocol: next to reference runs that do, they are one unknown protocol,
    refused by name, and shown with the reference when mixing is allowed (the report says so)."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    make_store(uri, "old", [{"agent": "dqn-soft", "env": "CartPole-v1", "seed": s, "final": 100.0} for s in range(2)])
    argv = ["analyze", "--results", str(tmp_path), "--experiment", "old", "--reference", str(REFERENCE),
            "--no-figures", "--reps", "100", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "record no protocol (older store)" in capsys.readouterr().err
    assert main(argv + ["--allow-mixed-protocols"]) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Mixed protocols allowed (--allow-mixed-protocols)" in report and "treated as one unknown protocol" in report
    assert "dqn/ref" in report
