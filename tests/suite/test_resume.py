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
