"""The recorder (suite/recorder.py): live progress lines, MLflow system tags, checkpoints tied to their store,
and no stale temporary files after a kill during a checkpoint write."""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import torch

from analysis import record_names as names
from suite.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from suite.errors import CheckpointError
from suite.recorder import OTHER_STORES, store_key
from suite.trainer import train
from suite.trial import build_trial

FAST = {"learning_starts": "50", "train_frequency": "2", "buffer_size": "300", "batch_size": "8",
        "hidden_sizes": "8", "train.eval_every": "100", "train.eval_episodes": "1", "train.log_every": "50",
        "env.max_episode_steps": "40"}


def tiny(steps: int = 100, seeds=(0,)):
    return build_trial("dqn", "CartPole-v1", list(seeds), steps=steps, overrides=FAST)


def finished_runs(uri: str, experiment: str) -> list:
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'")


def test_progress_lines_come_on_the_time_cadence(tmp_path):
    lines: list[str] = []
    train(tiny(200), tracking_uri=f"sqlite:///{tmp_path}/m.db", experiment="t", results_dir=tmp_path,
          progress=lines.append, progress_interval_s=0.0)
    live = [m for m in lines if "ETA" in m]
    assert len(live) > 10  # interval 0: a line at every step
    m = re.search(r"\] step (\d+)/200, ([\d,]+) env steps/s, ETA (\d+:\d\d)(; train return (\d+\.\d))?", live[-1])
    assert m, live[-1]
    assert int(m.group(1)) >= 190 and m.group(5) is not None  # CartPole episodes of <= 40 steps have ended
    # the scheduler reads the same `step S/N` form from these lines
    from suite.scheduler.worker import _STEP_RE
    assert _STEP_RE.search(live[0])


def test_no_progress_lines_between_evaluations_with_a_long_interval(tmp_path):
    lines: list[str] = []
    train(tiny(200), tracking_uri=f"sqlite:///{tmp_path}/m.db", experiment="t", results_dir=tmp_path,
          progress=lines.append, progress_interval_s=3600.0)
    assert not [m for m in lines if "ETA" in m]
    assert len([m for m in lines if " eval " in m]) == 2


def test_run_json_keeps_stdout_clean_and_quiet_silences_stderr(tmp_path, capsys):
    from suite.cli import main

    argv = ["run", "--agent", "dqn", "--env", "CartPole-v1", "--steps", "100", "--results", str(tmp_path),
            "--json"] + [x for k, v in FAST.items() for x in ("--set", f"{k}={v}")]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["steps"] for line in out.splitlines()] == [100]
    assert "step 100/100 eval" in err
    assert main(argv + ["--quiet", "--seed", "1"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 and err == ""


def test_runs_carry_mlflow_system_tags(tmp_path):
    uri = f"sqlite:///{tmp_path}/m.db"
    trial = tiny(100, seeds=(3,))
    (res,) = train(trial, tracking_uri=uri, experiment="t", results_dir=tmp_path, progress=lambda m: None,
                   extra_tags={"suite": "smoke", "variant": "default"})
    tags = mlflow.MlflowClient(uri).get_run(res.run_id).data.tags
    assert tags[names.MLFLOW_SOURCE_NAME] == "targetbench sweep smoke"
    assert tags[names.MLFLOW_SOURCE_TYPE] == "LOCAL"
    note = tags[names.MLFLOW_NOTE]
    assert note.startswith("dqn on CartPole-v1 (classic), seed 3: 100 env steps") and "batch_size=8" in note
    assert trial.trial_hash(3) in note
    if tags["git_commit"] != "unknown":
        assert tags[names.MLFLOW_GIT_COMMIT] == tags["git_commit"]
    # the public names stay as they were
    assert (tags["agent"], tags["env"], tags["seed"], tags["outcome"]) == ("dqn", "CartPole-v1", "3", "completed")
    assert tags["params_sha256"] == res.params_sha256


def test_a_checkpoint_of_another_store_is_moved_aside_and_comes_back(tmp_path):
    """Resuming against store B a trial whose checkpoint records store A: B starts fresh (A's checkpoint is
    kept aside, untouched); resuming against A later continues A's checkpoint."""
    trial = tiny(100)
    a, b = f"sqlite:///{tmp_path}/A/m.db", f"sqlite:///{tmp_path}/B/m.db"
    ck = checkpoint_path(trial, tmp_path / "checkpoints")
    (ra,) = train(trial, tracking_uri=a, experiment="t", results_dir=tmp_path, resume=True, progress=lambda m: None)
    a_bytes = ck.read_bytes()
    said: list[str] = []
    (rb,) = train(trial, tracking_uri=b, experiment="t", results_dir=tmp_path, resume=True, progress=said.append)
    kept = tmp_path / "checkpoints" / OTHER_STORES / store_key(a, "t") / ck.name
    assert kept.read_bytes() == a_bytes
    assert any("not in" in m and "kept as" in m and "start fresh" in m for m in said)
    assert [r.info.run_id for r in finished_runs(a, "t")] == [ra.run_id]
    assert [r.info.run_id for r in finished_runs(b, "t")] == [rb.run_id]
    assert rb.params_sha256 == ra.params_sha256  # trained afresh, same seed: same result
    said.clear()
    (again,) = train(trial, tracking_uri=a, experiment="t", results_dir=tmp_path, resume=True, progress=said.append)
    assert again.run_id == ra.run_id and any("moved back" in m for m in said)
    assert load_checkpoint(ck, trial.group_hash())["tracking_uri"].endswith("/A/m.db")
    assert (tmp_path / "checkpoints" / OTHER_STORES / store_key(b, "t") / ck.name).exists()


def test_a_fresh_run_in_another_store_does_not_overwrite_the_checkpoint(tmp_path):
    trial = tiny(100)
    a = f"sqlite:///{tmp_path}/A/m.db"
    train(trial, tracking_uri=a, experiment="t", results_dir=tmp_path, progress=lambda m: None)
    ck = checkpoint_path(trial, tmp_path / "checkpoints")
    a_bytes = ck.read_bytes()
    train(trial, tracking_uri=a, experiment="other", results_dir=tmp_path, progress=lambda m: None)
    assert (tmp_path / "checkpoints" / OTHER_STORES / store_key(a, "t") / ck.name).read_bytes() == a_bytes
    assert load_checkpoint(ck, trial.group_hash())["experiment"] == "other"


def test_an_old_checkpoint_whose_runs_are_not_in_the_store_is_a_clear_error(tmp_path):
    trial = tiny(100)
    train(trial, tracking_uri=f"sqlite:///{tmp_path}/A/m.db", experiment="t", results_dir=tmp_path,
          progress=lambda m: None)
    ck = checkpoint_path(trial, tmp_path / "checkpoints")
    data = torch.load(ck, weights_only=True)
    del data["tracking_uri"], data["experiment"]  # as written before checkpoints recorded their store
    torch.save(data, ck)
    with pytest.raises(CheckpointError, match=r"continues run \w+, which is not an active run of tracking store"):
        train(trial, tracking_uri=f"sqlite:///{tmp_path}/B/m.db", experiment="t", results_dir=tmp_path,
              resume=True, progress=lambda m: None)


_KILL_DURING_WRITE = """
import os, signal, sys
from pathlib import Path
from suite.checkpoint import save_checkpoint
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # dies with the temporary file written, not renamed
save_checkpoint(Path(sys.argv[1]), {"step": 2})
"""


def test_a_kill_during_a_checkpoint_write_leaves_no_stale_tmp(tmp_path):
    path = tmp_path / "ck" / "dqn-CartPole-v1-abc.pt"
    save_checkpoint(path, {"step": 1})
    proc = subprocess.run([sys.executable, "-c", _KILL_DURING_WRITE, str(path)], capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert proc.returncode == -signal.SIGKILL
    assert len(list(path.parent.glob("*.tmp"))) == 1
    assert torch.load(path, weights_only=True)["step"] == 1  # the previous checkpoint is intact
    save_checkpoint(path, {"step": 3})
    assert list(path.parent.iterdir()) == [path]
    (path.parent / (path.name + "x1y2.tmp")).write_bytes(b"partial")  # a kill before the next write
    with pytest.raises(CheckpointError):  # a payload without a trial: loading still cleans up first
        load_checkpoint(path, "abc")
    assert list(path.parent.iterdir()) == [path]


_SUITE = """name: two-stores
description: one group of two seeds, a few hundred env steps
experiment: sweep-two-stores
agents: [dqn]
envs: [CartPole-v1]
seeds: [0, 1]
steps: 150
eval: {every: 150, episodes: 1}
overrides: {hidden_sizes: [8], learning_starts: 50, train_frequency: 2, buffer_size: 300, batch_size: 8,
            train.log_every: 50, env.max_episode_steps: 40}
retries: 0
"""


@pytest.mark.fault
def test_sweep_into_another_store_records_there_and_keeps_the_first_store(tmp_path):
    """The same folder, a sweep into store A, then the same sweep into store B: before, B's sweep picked up A's
    finished checkpoint, failed to continue A's runs in B and ended with exit 3 "unreachable", "unpushed 2"
    (`targetbench sweep smoke` showed it with 4). A one-group suite keeps this test short."""
    (tmp_path / "two.yaml").write_text(_SUITE)

    def sweep(store: str) -> tuple[subprocess.CompletedProcess, dict]:
        proc = subprocess.run([sys.executable, "-m", "suite", "sweep", str(tmp_path / "two.yaml"), "--workers", "1",
                               "--results", str(tmp_path / "results"), "--tracking-uri",
                               f"sqlite:///{tmp_path}/{store}/m.db", "--json", "--quiet"],
                              capture_output=True, text=True, timeout=600, cwd=tmp_path)
        return proc, json.loads(proc.stdout) if proc.stdout.strip() else {}

    first, sa = sweep("A")
    assert first.returncode == 0, first.stderr
    second, sb = sweep("B")
    assert second.returncode == 0, second.stderr
    assert "unreachable" not in second.stderr
    assert (sa["done"], sb["done"], sb["unpushed"]) == (2, 2, 0)
    for store in ("A", "B"):
        runs = finished_runs(f"sqlite:///{tmp_path}/{store}/m.db", "sweep-two-stores")
        assert len(runs) == 2 and {r.data.tags["outcome"] for r in runs} == {"completed"}
    aside = list((tmp_path / "results" / "checkpoints" / OTHER_STORES).glob("*/*.pt"))
    assert len(aside) == 1  # A's group checkpoint, kept
