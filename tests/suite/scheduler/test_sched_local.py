"""The local backend end to end: run, skip finished trials, only run the unfinished seeds of a group, tag the
variant, retry then fail, divergence as an outcome, and resume after a worker is SIGKILLed mid-trial."""
import os
import signal
import threading
import time
from pathlib import Path

import mlflow
import psutil
import pytest
import yaml

from suite.scheduler import run_sweep
from suite.scheduler.matrix import expand, make_groups
from suite.scheduler.spec import load_suite

TINY = {"hidden_sizes": [16], "learning_starts": 50, "train_frequency": 2, "buffer_size": 1000, "batch_size": 16,
        "train.log_every": 50}


def write_suite(tmp_path: Path, name: str, **fields) -> Path:
    data = {"name": name, "agents": ["dqn"], "envs": ["CartPole-v1"], "seeds": [0], "steps": 300,
            "eval": {"every": 150, "episodes": 1}, "overrides": dict(TINY), "retries": 1, **fields}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def runs_of(uri: str, experiment: str):
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id], max_results=1000)


def test_retry_then_fail_divergence_and_the_sweep_goes_on(tmp_path):
    """dqn: every attempt raises (its checkpoint is corrupt), so it is tried 1 + retries times and its trial is
    recorded as a FAILED run with the error; double-dqn diverges (an outcome: FINISHED, tagged, not retried);
    dqn-soft completes. A second sweep reruns only the failed trial."""
    results = tmp_path / "r"
    path = write_suite(tmp_path, "flaky", retries=1, variants=[{"name": "v1"}],
                       agents={"dqn": None, "dqn-soft": None,
                               "double-dqn": {"optimizer": "sgd", "learning_rate": 1e12}})
    trials = expand(load_suite(path))[1]
    bad = next(g for g in make_groups(trials, 1) if g.config.agent == "dqn")
    ckpt = results / "checkpoints" / f"dqn-CartPole-v1-{bad.group_hash}.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a checkpoint")
    summary = run_sweep(path, workers=2, results_dir=results, progress=False)
    by_agent = {t.agent: t for t in summary.trials}
    assert by_agent["dqn"].status == "failed" and by_agent["dqn"].attempts == 2
    assert "CheckpointError" in by_agent["dqn"].error
    assert by_agent["dqn-soft"].status == "done" and by_agent["double-dqn"].status == "diverged"
    assert by_agent["double-dqn"].attempts == 1
    assert (summary.failed, summary.done, summary.diverged) == (1, 1, 1)
    client, runs = runs_of(summary.tracking_uri, "sweep-flaky")
    tags = {r.data.tags["agent"]: (r.info.status, r.data.tags) for r in runs}
    assert len(runs) == 3 and {t["variant"] for _, t in tags.values()} == {"v1"}
    assert {t["suite"] for _, t in tags.values()} == {"flaky"}
    status, t = tags["dqn"]
    assert status == "FAILED" and "CheckpointError" in t["error"] and t["trial_hash"] == by_agent["dqn"].trial_hash
    status, t = tags["double-dqn"]
    assert status == "FINISHED" and t["outcome"] == "diverged" and "diverged_step" in t
    assert tags["dqn-soft"][0] == "FINISHED" and tags["dqn-soft"][1]["outcome"] == "completed"

    ckpt.unlink()  # fixed: the next sweep runs only the failed trial; one run per trial remains
    fixed = run_sweep(path, workers=2, results_dir=results, progress=False)
    assert (fixed.done, fixed.skipped, fixed.failed, fixed.groups) == (1, 2, 0, 1)
    client, runs = runs_of(summary.tracking_uri, "sweep-flaky")
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 3


def _worker_pids() -> list[int]:
    me = psutil.Process()
    out = []
    for child in me.children(recursive=True):
        try:
            if "suite.scheduler.worker" in " ".join(child.cmdline()):
                out.append(child.pid)
        except psutil.Error:
            pass
    return out


@pytest.mark.fault
def test_sigkill_worker_mid_trial_resumes_exactly(tmp_path):
    over = {**TINY, "train_frequency": 1, "train.log_every": 100}
    path = write_suite(tmp_path, "kill", seeds=[0, 1], steps=2400, eval={"every": 400, "episodes": 1},
                       overrides=over, retries=1)
    ref = run_sweep(path, workers=1, results_dir=tmp_path / "ref", progress=False)
    assert ref.done == 2

    work = tmp_path / "work"
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("s", run_sweep(path, workers=1, results_dir=work,
                                                                             progress=False)))
    thread.start()
    ckpt_dir = work / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and not (ckpt_dir.exists() and any(ckpt_dir.glob("*.pt"))):
        time.sleep(0.02)
    pids = _worker_pids()
    assert pids, "no worker process found"
    os.kill(pids[0], signal.SIGKILL)
    thread.join(timeout=300)
    summary = box["s"]
    assert summary.done == 2 and all(t.attempts == 2 for t in summary.trials), summary.trials

    uri_ref, uri = ref.tracking_uri, summary.tracking_uri
    got, want = {}, {}
    for u, out in ((uri_ref, want), (uri, got)):
        client, runs = runs_of(u, "sweep-kill")
        assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}  # the same runs continued
        for r in runs:
            evals = [(m.step, m.value) for m in client.get_metric_history(r.info.run_id, "eval/return_mean")]
            loss = [m.step for m in client.get_metric_history(r.info.run_id, "train/loss")]
            assert sorted(s for s, _ in evals) == [400, 800, 1200, 1600, 2000, 2400]
            assert loss == sorted(set(loss)) and loss[-1] == 2400  # no duplicates, none missing
            out[r.data.tags["seed"]] = (r.data.tags["params_sha256"], sorted(evals), len(loss))
    assert got == want


def test_how_an_attempt_failed_is_decided_by_its_exception_type(tmp_path):
    """The worker reports the kind of its failure (suite.scheduler.backend.Failure, from the exception's type):
    a store that did not answer as the group started is not retried (the group already waited for it), any
    other error is, up to ``retries``."""
    from tracking_server import free_port

    from suite.errors import TrackingError, UnpushedError
    from suite.scheduler.backend import Failure, Job, Task, failure_of
    from suite.scheduler.local import LocalBackend
    from suite.scheduler.progress import Progress

    assert failure_of(UnpushedError("x")) is Failure.UNPUSHED and failure_of(TrackingError("x")) is Failure.TRACKING
    assert failure_of(KeyboardInterrupt()) is Failure.INTERRUPTED and failure_of(ValueError("x")) is Failure.ERROR
    path = write_suite(tmp_path, "kinds")
    (group,) = make_groups(expand(load_suite(path))[1], 1)

    def job(uri: str) -> Job:
        return Job(agent="dqn", env="CartPole-v1", seeds=[0], steps=300, overrides=dict(group.config.overrides),
                   tracking_uri=uri, experiment="e", results_dir=str(tmp_path / "r"), store_wait_s=0)

    away = Task(group, job(f"http://127.0.0.1:{free_port()}"), retries=2)
    broken = Task(group, Job(**{**job("sqlite:///unused.db").to_json(), "overrides": {"hidden_sizes": "x"}}),
                  retries=1)
    seen = {}
    LocalBackend(2).run([away, broken], Progress([group], enabled=False),
                        lambda task, out: seen.__setitem__(id(task), out))
    out = seen[id(away)]
    assert not out.ok and out.failure is Failure.TRACKING and out.attempts == 1, out
    assert "unreachable" in out.error
    out = seen[id(broken)]
    assert not out.ok and out.failure is Failure.ERROR and out.attempts == 2, out
