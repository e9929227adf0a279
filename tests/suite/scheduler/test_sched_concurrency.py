"""Eight workers writing to one store at once lose nothing and duplicate nothing, and no "database is locked"
(or any other error) reaches the user: the embedded SQLite store, and a local MLflow server on 127.0.0.1
started by the test. Also: finished trials are skipped and only the unfinished seeds of a config run.

Every metric point is accounted for without a reference run: the points logged at a fixed cadence (evaluation,
the per-log-interval training metrics) must sit at exactly their steps, and a replica's episode points must
chain (each episode ends its length after the previous one), so a lost or repeated write shows up as a gap
or a repeat.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import mlflow
import pytest
import yaml

from suite.scheduler import run_sweep

AGENTS = ["dqn", "dqn-soft", "double-dqn", "dqn-no-target"]
SEEDS = [0, 1]
WORKERS = 8
STEPS, EVAL, LOG = 300, 100, 50
#: logged at every log point from the start (the loss-like ones start once learning has started)
EVERY_LOG = ("train/epsilon", "train/sps")
EPISODE_KEYS = ("train/episode_return", "train/episode_length")
MAX_EPISODE = 500  # CartPole-v1's time limit


def write_suite(tmp_path: Path, seeds, agents=AGENTS) -> Path:
    data = {"name": "conc", "agents": agents, "envs": ["CartPole-v1"], "seeds": seeds, "steps": STEPS,
            "eval": {"every": EVAL, "episodes": 1}, "retries": 1, "resources": {"group_size": 1},
            "overrides": {"hidden_sizes": [16], "learning_starts": 50, "train_frequency": 2, "buffer_size": 1000,
                          "batch_size": 16, "train.log_every": LOG}}
    path = tmp_path / "conc.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def sweep_cli(path: Path, results: Path, *extra: str) -> subprocess.CompletedProcess:
    """The sweep as a user runs it, with its whole output captured (progress and errors go to stderr)."""
    return subprocess.run([sys.executable, "-m", "suite", "sweep", str(path), "--workers", str(WORKERS),
                           "--results", str(results), "--json", *extra], capture_output=True, text=True, timeout=600)


def audit_points(client, run) -> Counter:
    """Lost and duplicated points of one finished run, judged from the cadence the trainer logs at."""
    rid = run.info.run_id
    hist = {k: [(m.step, m.value) for m in client.get_metric_history(rid, k)] for k in run.data.metrics}
    out = Counter(points=sum(len(h) for h in hist.values()))
    log_steps = list(range(LOG, STEPS + 1, LOG))
    for key, points in hist.items():
        steps = sorted(s for s, _ in points)
        out["duplicated"] += len(steps) - len(set(steps))  # one point per step and key, whatever the key
        if key == "eval/return_mean":
            want = list(range(EVAL, STEPS + 1, EVAL))
        elif key in EVERY_LOG:
            want = log_steps
        elif key.startswith("train/") and key not in EPISODE_KEYS:  # from the first update on, every log point
            want = [s for s in log_steps if s >= min(steps)] if steps else log_steps
        else:
            continue
        out["lost"] += len(set(want) - set(steps))
        out["duplicated"] += len(set(steps) - set(want))
    lengths = sorted(hist.get("train/episode_length", []))
    ends = sorted(s for s, _ in hist.get("train/episode_return", []))
    chain = [sum(int(v) for _, v in lengths[:i + 1]) for i in range(len(lengths))]
    # A missing episode leaves the next one ending later than its length allows; a repeated one, too early.
    out["lost"] += sum(1 for a, b in zip(ends, chain) if a != b) + abs(len(ends) - len(lengths))
    if not ends or STEPS - ends[-1] >= MAX_EPISODE:
        out["lost"] += 1  # the run's last episodes are missing
    return out


def check_complete(uri: str, experiment: str, n_runs: int) -> Counter:
    """Every trial has one FINISHED run with all its points; returns the point and error counts."""
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=1000)
    assert len(runs) == n_runs and {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["trial_hash"] for r in runs}) == n_runs
    counts = Counter()
    for r in runs:
        counts.update(audit_points(client, r))
        # an attempt that failed on a lock and was retried leaves its error in these tags
        counts["lock_errors"] += sum("database is locked" in v for v in r.data.tags.values())
        counts["error_tags"] += sum(k in ("error", "retried_after_error") for k in r.data.tags)
        assert {a.path for a in client.list_artifacts(r.info.run_id)} >= {"config.yaml", "eval_returns.csv"}
    return counts


def run_eight_workers(tmp_path: Path, uri: str | None, store: str, fault_log) -> Path:
    """One sweep of 8 one-seed groups on 8 workers; asserts a clean output and complete, duplicate-free records."""
    results = tmp_path / "r"
    out = sweep_cli(write_suite(tmp_path, SEEDS), results, *(["--tracking-uri", uri] if uri else []))
    summary = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}
    uri = uri or summary.get("tracking_uri")
    counts = check_complete(uri, "sweep-conc", len(AGENTS) * len(SEEDS)) if out.returncode == 0 else Counter()
    text = out.stdout + out.stderr
    lock_errors = text.count("database is locked") + counts["lock_errors"]
    fault_log(kind="concurrent", workers=WORKERS, store=store, trials=len(summary.get("trials", [])),
              points=counts["points"], lost=counts["lost"], duplicated=counts["duplicated"], lock_errors=lock_errors,
              retried_attempts=sum(t["attempts"] - 1 for t in summary.get("trials", [])))

    assert out.returncode == 0, out.stderr[-3000:]
    assert (summary["done"], summary["failed"], summary["groups"]) == (8, 0, 8), summary
    assert all(t["attempts"] == 1 and t["error"] is None for t in summary["trials"]), summary["trials"]
    # Nothing but progress on stderr: no lock error, traceback, failed attempt or bookkeeping complaint.
    bad = [line for line in out.stderr.splitlines()
           if any(w in line.lower() for w in ("locked", "traceback", "error", "failed:", "retry", "could not"))]
    assert not bad and lock_errors == 0, bad[:5]
    assert counts["points"] > 0 and counts["lost"] == 0 and counts["duplicated"] == 0, dict(counts)
    assert counts["error_tags"] == 0, dict(counts)
    return results


@pytest.mark.fault
def test_eight_workers_sqlite_then_skip_finished_and_partial(tmp_path, fault_log):
    results = run_eight_workers(tmp_path, None, "sqlite", fault_log)
    uri = f"sqlite:///{results}/mlflow.db"

    again = run_sweep(write_suite(tmp_path, SEEDS), workers=WORKERS, results_dir=results, progress=False)
    assert (again.done, again.skipped, again.groups) == (0, 8, 0)

    # a third seed for two of the agents: their finished seeds 0 and 1 are skipped, only seed 2 runs
    more = run_sweep(write_suite(tmp_path, [0, 1, 2], AGENTS[:2]), workers=WORKERS, results_dir=results,
                     progress=False)
    assert (more.done, more.skipped, more.failed) == (2, 4, 0)
    assert sorted((t.seed, t.status) for t in more.trials) == [(0, "skipped")] * 2 + [(1, "skipped")] * 2 + \
        [(2, "done")] * 2
    assert check_complete(uri, "sweep-conc", 10)["lost"] == 0


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
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.mark.fault
@pytest.mark.slow  # the server alone takes 20-30 s to start on 2 loaded cores
def test_eight_workers_mlflow_server(tmp_path, mlflow_server, fault_log):
    run_eight_workers(tmp_path, mlflow_server, "server", fault_log)
    again = run_sweep(write_suite(tmp_path, SEEDS), workers=WORKERS, tracking_uri=mlflow_server,
                      results_dir=tmp_path / "r", progress=False)
    assert again.skipped == 8 and again.groups == 0
