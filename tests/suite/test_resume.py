"""Checkpoint and resume: a trial killed with SIGKILL and resumed ends exactly where an uninterrupted run
ends, continuing the same MLflow runs without duplicated or missing metric points."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from suite.checkpoint import load_checkpoint, save_checkpoint
from suite.errors import CheckpointError

ARGS = ["--agent", "dqn", "--env", "CartPole-v1", "--seed", "0,1", "--steps", "1200", "--json", "--quiet",
        "--set", "learning_starts=100", "--set", "train_frequency=2", "--set", "buffer_size=2000",
        "--set", "batch_size=16", "--set", "hidden_sizes=16", "--set", "train.eval_every=300",
        "--set", "train.eval_episodes=2", "--set", "train.log_every=100"]


def cli(tmp: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "suite", "run", *ARGS, "--tracking-uri", f"sqlite:///{tmp}/mlflow.db",
            "--results", str(tmp), "--checkpoint-dir", str(tmp / "ckpt"), *extra]


def results(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_sigkill_then_resume_is_exact(tmp_path):
    ref = subprocess.run(cli(tmp_path / "ref"), capture_output=True, text=True, timeout=300, check=True)
    expected = results(ref.stdout)

    work = tmp_path / "killed"
    proc = subprocess.Popen(cli(work), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpt_dir = work / "ckpt"
    deadline = time.time() + 240
    while time.time() < deadline and not (ckpt_dir.exists() and any(ckpt_dir.glob("*.pt"))):
        time.sleep(0.05)
    time.sleep(0.3)  # land somewhere after the first checkpoint
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    resumed = subprocess.run(cli(work, "--resume"), capture_output=True, text=True, timeout=300, check=True)
    got = results(resumed.stdout)
    assert [r["params_sha256"] for r in got] == [r["params_sha256"] for r in expected]
    assert [r["eval_returns"] for r in got] == [r["eval_returns"] for r in expected]
    client = mlflow.MlflowClient(f"sqlite:///{work}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("targetbench").experiment_id])
    assert sorted(r.info.run_id for r in runs) == sorted(r["run_id"] for r in got)  # same runs continued
    for r in got:
        steps = [m.step for m in client.get_metric_history(r["run_id"], "eval/return_mean")]
        assert steps == [300, 600, 900, 1200]
        loss_steps = [m.step for m in client.get_metric_history(r["run_id"], "train/loss")]
        assert loss_steps == sorted(set(loss_steps)) and loss_steps[-1] == 1200  # no duplicates, none missing
        assert len(loss_steps) == len(range(100, 1201, 100))


def test_checkpoint_loading_refuses_other_trials_and_corrupt_files(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"trial_hash": "abc", "x": 1})
    assert load_checkpoint(path, "abc")["x"] == 1
    with pytest.raises(CheckpointError, match="belongs to trial 'abc'"):
        load_checkpoint(path, "other")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path, "abc")


def test_checkpoint_never_unpickles_code(tmp_path):
    """A pickle that would run code on load is refused (weights_only loading)."""
    import pickle
    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "trial_hash": "abc", "payload": Evil()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError):
        load_checkpoint(path, "abc")
    assert not (tmp_path / "pwned").exists()


def _flaky_flush(monkeypatch, fail_calls):
    """Make RunGroup.flush fail (as with a store that is down) on the given call numbers."""
    from suite.errors import TrackingError
    from suite.tracking import RunGroup
    calls = {"n": 0}
    orig = RunGroup.flush

    def flush(self):
        calls["n"] += 1
        if calls["n"] in fail_calls:
            raise TrackingError("tracking store write failed after 5 tries: ConnectionError")
        return orig(self)
    monkeypatch.setattr(RunGroup, "flush", flush)
    return calls


def _trial():
    from suite.trial import build_trial
    return build_trial("dqn", "CartPole-v1", (0, 1), steps=600, overrides={
        "learning_starts": "100", "train_frequency": "2", "buffer_size": "600", "batch_size": "16",
        "hidden_sizes": "16", "train.eval_every": "150", "train.eval_episodes": "1", "train.log_every": "50"})


def _histories(uri, run_id):
    client = mlflow.MlflowClient(uri)
    return {key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
            for key in ("eval/return_mean", "train/loss", "train/episode_return")}


def test_store_outage_mid_run_loses_nothing(tmp_path, monkeypatch):
    """Flushes at the 1st and 2nd checkpoint fail; training goes on and every point arrives, once."""
    from suite.trainer import train
    ref = train(_trial(), tracking_uri=f"sqlite:///{tmp_path}/ref.db", experiment="t", results_dir=tmp_path,
                checkpoint_dir=tmp_path / "ck-ref", progress=lambda m: None)
    calls = _flaky_flush(monkeypatch, {1, 2})
    messages = []
    got = train(_trial(), tracking_uri=f"sqlite:///{tmp_path}/m.db", experiment="t", results_dir=tmp_path,
                checkpoint_dir=tmp_path / "ck", progress=messages.append)
    assert calls["n"] == 4 and sum("tracking store unavailable" in m for m in messages) == 2
    for a, b in zip(ref, got):
        assert a.params_sha256 == b.params_sha256
        ha, hb = _histories(f"sqlite:///{tmp_path}/ref.db", a.run_id), _histories(f"sqlite:///{tmp_path}/m.db", b.run_id)
        assert [s for s, _ in ha["train/loss"]] == [s for s, _ in hb["train/loss"]]
        assert ha["eval/return_mean"] == hb["eval/return_mean"]
        assert len(ha["train/episode_return"]) == len(hb["train/episode_return"])


def test_store_down_at_the_end_keeps_data_for_resume(tmp_path, monkeypatch):
    """If the store never comes back, the points stay in the checkpoint and --resume pushes them later."""
    from suite.errors import TrackingError
    from suite.trainer import train
    uri = f"sqlite:///{tmp_path}/m.db"
    _flaky_flush(monkeypatch, set(range(1, 100)))
    with pytest.raises(TrackingError, match="rerun the same command with --resume"):
        train(_trial(), tracking_uri=uri, experiment="t", results_dir=tmp_path, checkpoint_dir=tmp_path / "ck",
              progress=lambda m: None)
    monkeypatch.undo()
    got = train(_trial(), tracking_uri=uri, experiment="t", results_dir=tmp_path, checkpoint_dir=tmp_path / "ck",
                resume=True, progress=lambda m: None)
    client = mlflow.MlflowClient(uri)
    for r in got:
        run = client.get_run(r.run_id)
        assert run.info.status == "FINISHED"
        evals = client.get_metric_history(r.run_id, "eval/return_mean")
        assert [m.step for m in evals] == [150, 300, 450, 600]
        loss_steps = [m.step for m in client.get_metric_history(r.run_id, "train/loss")]
        assert loss_steps == list(range(100, 601, 50))
