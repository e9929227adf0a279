"""Commands that read an experiment pick the store's only experiment holding runs, and list them otherwise."""
import pytest

from analysis.synthetic import make_store
from suite.cli import main
from suite.errors import UsageError
from suite.experiments import choose_experiment, experiments_with_runs


def _store(tmp_path, experiments):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    for name in experiments:
        make_store(uri, name, [{"agent": "dqn", "env": "CartPole-v1", "seed": s, "final": 100.0 + s}
                               for s in range(2)], steps=1000, evals=2)
    return uri


def test_the_only_experiment_holding_runs_is_chosen_and_said(tmp_path):
    uri = _store(tmp_path, ["sweep-smoke"])
    said = []
    assert choose_experiment(uri, None, "analyze", say=said.append) == "sweep-smoke"
    assert said == [f"analyze: using experiment 'sweep-smoke', the only one holding runs in {uri} "
                    "(--experiment to choose)"]
    assert choose_experiment(uri, "sweep-smoke", "analyze", say=said.append) == "sweep-smoke" and len(said) == 1


def test_several_or_a_wrong_name_is_one_line_listing_them(tmp_path):
    uri = _store(tmp_path, ["b-exp", "a-exp"])
    assert experiments_with_runs(uri) == ["a-exp", "b-exp"]  # "Default" (no runs) is not listed
    with pytest.raises(UsageError, match=r"^analyze: the store holds runs in 2 experiments; pass --experiment "
                                         r"with one of: a-exp, b-exp$"):
        choose_experiment(uri, None, "analyze")
    with pytest.raises(UsageError, match=r"^--experiment 'targetbench' has no runs in .*; experiments holding "
                                         r"runs: a-exp, b-exp$"):
        choose_experiment(uri, "targetbench", "analyze")


def test_analyze_without_experiment_after_a_sweep(tmp_path, capsys):
    """The README's order: a sweep records into its suite's experiment, then `analyze` with no --experiment."""
    _store(tmp_path, ["sweep-smoke"])
    assert main(["analyze", "--results", str(tmp_path), "--reps", "100", "--no-figures"]) == 0
    assert "using experiment 'sweep-smoke'" in capsys.readouterr().err
    assert (tmp_path / "report.md").exists()
    _store(tmp_path, ["other"])
    assert main(["analyze", "--results", str(tmp_path), "--reps", "100", "--no-figures"]) == 2
    assert "pass --experiment with one of: other, sweep-smoke" in capsys.readouterr().err
