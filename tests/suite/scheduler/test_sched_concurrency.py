"""Four workers writing to one store lose nothing: the embedded SQLite store and a local MLflow server on
127.0.0.1 started by the test. Also: finished trials are skipped and only the unfinished seeds of a config run."""
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
import yaml

from suite.scheduler import run_sweep

AGENTS = ["dqn", "dqn-soft", "double-dqn", "dqn-no-target"]
STEPS, EVAL, LOG = 300, 100, 50


def write_suite(tmp_path: Path, seeds, agents=AGENTS) -> Path:
    data = {"name": "conc", "agents": agents, "envs": ["CartPole-v1"], "seeds": seeds, "steps": STEPS,
            "eval": {"every": EVAL, "episodes": 1}, "retries": 1, "resources": {"group_size": 1},
            "overrides": {"hidden_sizes": [16], "learning_starts": 50, "train_frequency": 2, "buffer_size": 1000,
                          "batch_size": 16, "train.log_every": LOG}}
    path = tmp_path / "conc.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def check_complete(uri: str, experiment: str, n_runs: int) -> None:
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=1000)
    assert len(runs) == n_runs and {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["trial_hash"] for r in runs}) == n_runs
    for r in runs:
        evals = [m.step for m in client.get_metric_history(r.info.run_id, "eval/return_mean")]
        assert evals == list(range(EVAL, STEPS + 1, EVAL)), (r.data.tags["agent"], evals)
        eps = [m.step for m in client.get_metric_history(r.info.run_id, "train/epsilon")]
        assert eps == list(range(LOG, STEPS + 1, LOG))
        assert {a.path for a in client.list_artifacts(r.info.run_id)} >= {"config.yaml", "eval_returns.csv"}


def test_four_workers_sqlite_skip_finished_and_partial(tmp_path):
    results = tmp_path / "r"
    first = run_sweep(write_suite(tmp_path, [0]), workers=4, results_dir=results, progress=False)
    assert (first.done, first.failed, first.groups) == (4, 0, 4)
    check_complete(first.tracking_uri, "sweep-conc", 4)

    again = run_sweep(write_suite(tmp_path, [0]), workers=4, results_dir=results, progress=False)
    assert (again.done, again.skipped, again.groups) == (0, 4, 0)

    # more seeds for two of the agents: their finished seed 0 is skipped, only seed 1 runs
    more = run_sweep(write_suite(tmp_path, [0, 1], AGENTS[:2]), workers=4, results_dir=results, progress=False)
    assert (more.done, more.skipped, more.failed) == (2, 2, 0)
    assert sorted((t.seed, t.status) for t in more.trials) == [(0, "skipped")] * 2 + [(1, "done")] * 2
    check_complete(first.tracking_uri, "sweep-conc", 6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
                             "--default-artifact-root", (tmp_path / "server-artifacts").as_uri(),
                             "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("mlflow server did not start: " + (tmp_path / "server.log").read_text()[-500:])
                time.sleep(0.5)
        yield uri
    finally:
        import os
        import signal
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.mark.slow  # the server alone takes 20-30 s to start on 2 loaded cores
def test_four_workers_mlflow_server(tmp_path, mlflow_server):
    summary = run_sweep(write_suite(tmp_path, [0]), workers=4, tracking_uri=mlflow_server,
                        results_dir=tmp_path / "r", progress=False)
    assert (summary.done, summary.failed) == (4, 0)
    check_complete(mlflow_server, "sweep-conc", 4)
    again = run_sweep(write_suite(tmp_path, [0]), workers=4, tracking_uri=mlflow_server,
                      results_dir=tmp_path / "r", progress=False)
    assert again.skipped == 4 and again.groups == 0
