"""A sweep whose trials trained but could not be recorded (tracking store away at the end): ``--json`` still
prints the summary with its ``unpushed`` count (exit 3), and the table shows an ``unpushed`` column."""
import json

import suite.scheduler as scheduler
from suite.cli import main
from suite.errors import TrackingError
from suite.scheduler.core import SweepSummary, TrialRecord
from suite.scheduler.progress import format_table


def _trials():
    return [TrialRecord("dqn", "default", "CartPole-v1", 0, "h0", "done", final_eval_return=10.0),
            TrialRecord("dqn", "default", "CartPole-v1", 1, "h1", "unpushed", error="UnpushedError: x")]


def test_table_has_an_unpushed_column_only_when_needed():
    lines = format_table(_trials()).splitlines()
    header = lines[0].split()
    assert header[header.index("failed") + 1] == "unpushed"
    row = lines[2].split()
    assert row[3:9] == ["2", "1", "0", "0", "0", "1"]  # seeds, done, skipped, diverged, failed, unpushed
    assert "unpushed" not in format_table(_trials()[:1])


def test_sweep_json_prints_the_summary_when_trials_are_unpushed(tmp_path, monkeypatch, capsys):
    summary = SweepSummary("smoke", "sweep-smoke", "sqlite:///x.db", "local", trials=_trials(), done=1, unpushed=1)

    def run_sweep(*args, **kwargs):
        err = TrackingError("1 trials finished training but the tracking store sqlite:///x.db was unreachable")
        err.summary = summary
        raise err

    monkeypatch.setattr(scheduler, "run_sweep", run_sweep)
    code = main(["sweep", "smoke", "--json", "--quiet", "--results", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 3
    printed = json.loads(out)
    assert (printed["done"], printed["unpushed"]) == (1, 1)
    assert [t["status"] for t in printed["trials"]] == ["done", "unpushed"]
    assert err.startswith("targetbench: error: 1 trials finished training") and err.count("\n") == 1
