"""Checkpoint stores (suite/checkpoint_store.py): the object + pointer layout over fsspec (memory://, file://),
bad URLs as one-line usage errors, and a trial interrupted on one "node" and resumed on another whose only shared
thing is the checkpoint store and the tracking store, ending bitwise equal to an uninterrupted run."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from suite.checkpoint import save_checkpoint
from suite.checkpoint_store import FsspecStore, LocalStore, is_remote_uri, open_checkpoint_store
from suite.errors import UsageError
from suite.trial import build_trial

SETS = {"learning_starts": "100", "train_frequency": "2", "buffer_size": "2000", "batch_size": "16",
        "hidden_sizes": "16", "train.eval_episodes": "2", "train.log_every": "100", "train.eval_every": "500",
        "train.checkpoint_every": "500"}


def test_versioned_store_round_trip_and_supersedes_old_objects(tmp_path):
    store = FsspecStore((tmp_path / "remote").as_uri())
    local = tmp_path / "work" / "a.pt"
    assert store.fetch("a.pt", tmp_path / "x.pt") is False
    for step in (1, 2):
        save_checkpoint(local, {"step": step})
        store.put(local)
    got = tmp_path / "other" / "a.pt"
    assert store.fetch("a.pt", got) is True
    assert torch.load(got, weights_only=True)["step"] == 2
    objects = sorted(p.name for p in (tmp_path / "remote" / "a.pt").iterdir())
    assert len(objects) == 2 and "LATEST" in objects  # the superseded object was deleted
    assert store.names() == ["a.pt"]
    # a writer killed between the object upload and the pointer: the previous checkpoint stays current
    (tmp_path / "remote" / "a.pt" / "orphan.pt").write_bytes(b"partial")
    assert store.fetch("a.pt", got) and torch.load(got, weights_only=True)["step"] == 2


def test_uri_kinds_and_bad_urls():
    assert not is_remote_uri(None) and not is_remote_uri("results/ck")
    assert is_remote_uri("tracking") and is_remote_uri("memory://x") and is_remote_uri("mlflow-artifacts:/ck")
    assert isinstance(open_checkpoint_store("some/dir", tracking_uri="sqlite:///m.db", experiment="e",
                                            checkpoint_dir=Path("x")), LocalStore)
    one = open_checkpoint_store("memory://ck", tracking_uri="sqlite:///a.db", experiment="e", checkpoint_dir=Path("x"))
    two = open_checkpoint_store("memory://ck", tracking_uri="sqlite:///b.db", experiment="e", checkpoint_dir=Path("x"))
    assert one.uri != two.uri  # two stores sharing one URL never read each other's checkpoints
    with pytest.raises(UsageError, match="--checkpoint-uri 'nosuchproto://x'"):
        open_checkpoint_store("nosuchproto://x", tracking_uri="sqlite:///a.db", experiment="e",
                              checkpoint_dir=Path("x"))


def _train(tmp, store, *, stop_at=None, uri):
    from suite.trainer import train

    trial = build_trial("dqn", "CartPole-v1", [0, 1], steps=2000, overrides=SETS)
    seen = []

    def progress(msg):
        seen.append(msg)
        if stop_at is not None and f"step {stop_at}/" in msg and " eval " in msg:
            raise KeyboardInterrupt  # after the checkpoint at stop_at was written and uploaded

    return train(trial, tracking_uri=uri, experiment="e", results_dir=tmp, resume=True, progress=progress,
                 checkpoint_store=store, progress_interval_s=-1), seen


def test_resume_on_another_node_from_a_remote_store_is_exact(tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    plain, _ = _train(tmp_path / "plain", None, uri=f"sqlite:///{tmp_path / 'p.db'}")
    store_url = "memory://ckpt-test-" + tmp_path.name
    node_a = tmp_path / "node-a"
    store = open_checkpoint_store(store_url, tracking_uri=uri, experiment="e", checkpoint_dir=node_a / "checkpoints")
    with pytest.raises(KeyboardInterrupt):
        _train(node_a, store, stop_at=1000, uri=uri)
    shutil.rmtree(node_a)  # the node is gone, its disk with it
    store_b = open_checkpoint_store(store_url, tracking_uri=uri, experiment="e",
                                    checkpoint_dir=tmp_path / "node-b" / "checkpoints")
    resumed, lines = _train(tmp_path / "node-b", store_b, uri=uri)
    assert any("fetched checkpoint" in m for m in lines) and any(re.search(r"resumed at step [1-9]", m) for m in lines), lines
    assert [r.params_sha256 for r in resumed] == [r.params_sha256 for r in plain]
    assert [r.eval_returns for r in resumed] == [r.eval_returns for r in plain]


def test_run_cli_checkpoint_uri_file_url(tmp_path):
    ck = tmp_path / "remote"
    cmd = [sys.executable, "-m", "suite", "run", "--agent", "dqn", "--env", "CartPole-v1", "--steps", "600",
           "--quiet", "--results", str(tmp_path / "r"), "--checkpoint-uri", ck.as_uri(),
           *[a for k, v in SETS.items() for a in ("--set", f"{k}={v}")]]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (key,) = [p for p in ck.iterdir()]  # the store key folder
    (name,) = [p for p in key.iterdir()]
    assert name.name.endswith(".pt") and (name / "LATEST").exists()
    # push fetches a remote store's checkpoints first (here: already complete, so nothing to write)
    ckdir = tmp_path / "r" / "checkpoints"
    shutil.rmtree(ckdir)
    push = [sys.executable, "-m", "suite", "push", "--results", str(tmp_path / "r"), "--checkpoint-uri", ck.as_uri()]
    no_exp = subprocess.run(push, capture_output=True, text=True, timeout=120)
    assert no_exp.returncode == 2 and "--experiment" in no_exp.stderr
    uri = f"sqlite:///{tmp_path / 'r' / 'mlflow.db'}"
    pushed = subprocess.run(push + ["--tracking-uri", uri, "--experiment", "targetbench"], capture_output=True,
                            text=True, timeout=120)
    assert pushed.returncode == 0 and "1 trials already complete" in pushed.stdout, (pushed.stdout, pushed.stderr)
    assert [p.name for p in ckdir.glob("*.pt")] == [name.name]
    bad = subprocess.run(cmd[:-2 * len(SETS)] [:-1] + ["nosuchproto://x"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "nosuchproto" in bad.stderr


def test_large_tensors_are_written_incrementally_and_resume_exactly(tmp_path, monkeypatch):
    """With the piece threshold lowered to a few KB the CartPole replay is stored as pieces: a later checkpoint
    writes only the pieces that changed, pieces travel through the remote store, and the resume on another node
    is bitwise exact."""
    import suite.checkpoint as ck

    monkeypatch.setattr(ck, "CHUNK_MIN_BYTES", 4096)
    monkeypatch.setattr(ck, "CHUNK_BYTES", 4096)
    payload = {"step": 1, "big": torch.arange(100_000, dtype=torch.int32), "small": torch.zeros(3)}
    path = tmp_path / "a.pt"
    first = ck.save_checkpoint(path, payload)
    payload["big"][-10:] = -1  # the end of the buffer changed
    second = ck.save_checkpoint(path, payload)
    assert first > 400_000 and second < 20_000, (first, second)
    assert len(list(ck.chunk_dir(path).iterdir())) == 98  # 400 000 bytes / 4096, the superseded piece deleted
    back = torch.load(path, weights_only=True)
    assert "__chunked__" in back["big"]
    full = ck._join_large(back, ck.chunk_dir(path))
    assert torch.equal(full["big"], payload["big"])
    test_resume_on_another_node_from_a_remote_store_is_exact(tmp_path / "resume")
    assert list((tmp_path / "resume" / "node-b" / "checkpoints").glob("*.pt.chunks/*"))


def test_tracking_artifact_store_with_pieces(tmp_path, monkeypatch):
    """`--checkpoint-uri tracking` through the MLflow client's artifact repository (here the SQLite store's local
    artifact location; an http server goes through the same calls, see test_node_loss.py)."""
    import mlflow

    import suite.checkpoint as ck
    from suite.checkpoint_store import MlflowArtifactStore

    monkeypatch.setattr(ck, "CHUNK_MIN_BYTES", 4096)
    monkeypatch.setattr(ck, "CHUNK_BYTES", 4096)
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    store = open_checkpoint_store("tracking", tracking_uri=uri, experiment="e", checkpoint_dir=tmp_path / "x")
    assert isinstance(store, MlflowArtifactStore) and store.fetch("a.pt", tmp_path / "y.pt") is False
    mlflow.MlflowClient(uri).create_experiment("e", artifact_location=(tmp_path / "art").as_uri())
    payload = {"trial_hash": "g", "n": 1, "big": torch.arange(50_000, dtype=torch.int32)}
    path = tmp_path / "node-a" / "a.pt"
    for step in (1, 2):
        payload["n"], payload["big"][:5] = step, step
        ck.save_checkpoint(path, payload)
        store.put(path)
    remote = tmp_path / "art" / "checkpoints" / "a.pt"
    assert len(list((remote / "chunks").iterdir())) == len(list(ck.chunk_dir(path).iterdir())) == 49
    other = MlflowArtifactStore(uri, "e")
    dest = tmp_path / "node-b" / "a.pt"
    assert other.fetch("a.pt", dest) and store.names() == ["a.pt"]
    state = ck.load_checkpoint(dest, "g")
    assert state["n"] == 2 and torch.equal(state["big"], payload["big"])


def test_a_write_that_dies_after_its_pieces_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    """Pieces first, then the file: a write killed between them (simulated by a failing rename of the file)
    leaves the previous checkpoint loadable and whole; the next write tidies the orphan pieces."""
    import suite.checkpoint as ck

    monkeypatch.setattr(ck, "CHUNK_MIN_BYTES", 4096)
    monkeypatch.setattr(ck, "CHUNK_BYTES", 4096)
    path = tmp_path / "a.pt"
    old = {"trial_hash": "g", "n": 1, "big": torch.arange(20_000, dtype=torch.int32)}
    ck.save_checkpoint(path, old)
    before = {p.name for p in ck.chunk_dir(path).iterdir()}
    real_replace = ck.os.replace

    def dies(src, dst):
        if Path(dst) == path:
            raise KeyboardInterrupt  # the process is killed here
        return real_replace(src, dst)

    monkeypatch.setattr(ck.os, "replace", dies)
    new = {"trial_hash": "g", "n": 2, "big": torch.arange(20_000, dtype=torch.int32) * 3}
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(path, new)
    monkeypatch.setattr(ck.os, "replace", real_replace)
    assert {p.name for p in ck.chunk_dir(path).iterdir()} > before  # the new pieces were written
    state = ck.load_checkpoint(path, "g")
    assert state["n"] == 1 and torch.equal(state["big"], old["big"])
    ck.save_checkpoint(path, new)
    assert len(list(ck.chunk_dir(path).iterdir())) == 20  # 80 000 bytes / 4096: the orphans are gone
    state = ck.load_checkpoint(path, "g")
    assert state["n"] == 2 and torch.equal(state["big"], new["big"])
