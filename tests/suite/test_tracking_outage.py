"""Tracking outages (issue #7): a store that goes away mid-run or mid-sweep does not stop training, unsent
points wait in memory and in checkpoints, and every point reaches the store once when it is back; a store that
never comes back leaves everything on disk for ``targetbench push``.

The fast tests use the embedded SQLite store with failures injected; the slow ones (`-m slow`) start a real
loopback ``mlflow server`` and kill it (its process group: uvicorn workers outlive a killed parent).
"""
import argparse
import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
import torch
import yaml

from suite import push as push_cmd
from suite.checkpoint import load_checkpoint
from suite.errors import TrackingError
from suite.tracking import RunGroup, _SqliteMetricWriter, ensure_store, open_experiment
from suite.trainer import UnpushedError, checkpoint_path, public_uri, train
from suite.trial import build_trial
from analysis import record_names as names

ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------------------------- helpers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: Path, port: int) -> subprocess.Popen:
    """A loopback MLflow server on ``port`` with its backend store in ``tmp`` (the same store on a restart)."""
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{tmp}/server.db", "--workers", "1",
                             "--artifacts-destination", str(tmp / "server-artifacts")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError("mlflow server did not start")


def outage(server: subprocess.Popen, tmp: Path, port: int, seconds: float,
           startup_s: float) -> tuple[subprocess.Popen, float, float]:
    """Kill ``server`` and have a new one (same port, same backend store) answering about ``seconds`` later:
    the restart is launched ``startup_s`` (what the first start took; ~15-60 s on a loaded 2-core machine)
    before that. Returns (new server, time it went down, seconds it was down)."""
    stop_server(server)
    down_at = time.time()
    time.sleep(max(0.0, seconds - startup_s))
    server = start_server(tmp, port)
    return server, down_at, time.time() - down_at


def stop_server(proc: subprocess.Popen) -> None:
    """Kill the server and its worker processes (uvicorn workers outlive a killed parent)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def fast_env() -> dict[str, str]:
    """Child env in which MLflow's HTTP client gives up on a dead server at once (the trainer retries itself),
    so that an outage of a few seconds really makes flushes fail."""
    return {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


def run_push(*argv: str) -> tuple[int, list[str]]:
    """``targetbench push ARGV`` in a child process: (exit status, output lines). The CLI wiring is the
    lead's; this calls ``suite.push.main`` the way the CLI does, errors included."""
    code = ("import argparse, sys\n"
            "from suite import push\n"
            "from suite.errors import TargetBenchError\n"
            "p = argparse.ArgumentParser(); push.add_arguments(p)\n"
            "try:\n"
            "    sys.exit(push.main(p.parse_args(sys.argv[1:])))\n"
            "except TargetBenchError as exc:\n"
            "    print(f'targetbench: error: {exc}', file=sys.stderr); sys.exit(exc.exit_code)\n")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env=fast_env())
    return out.returncode, [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]


def push_in_process(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    push_cmd.add_arguments(parser)
    return push_cmd.main(parser.parse_args(list(argv)))


def metric_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT run_uuid, key, step, timestamp, value FROM metrics").fetchall()


def duplicates(rows: list[tuple]) -> int:
    """Points stored more than once: a (run, key, step) never has two points in these runs (one episode ends
    per replica per step at most; aggregated metrics are logged once per step)."""
    return len(rows) - len({(r, k, s) for r, k, s, *_ in rows})


def histories(client, run_id: str) -> dict[str, list[tuple[int, float]]]:
    keys = client.get_run(run_id).data.metrics
    return {k: [(m.step, m.value) for m in client.get_metric_history(run_id, k)] for k in sorted(keys)}


def tiny_trial(seeds=(0, 1), steps=600):
    return build_trial("dqn", "CartPole-v1", seeds, steps=steps, overrides={
        "learning_starts": "100", "train_frequency": "2", "buffer_size": "600", "batch_size": "16",
        "hidden_sizes": "16", "train.eval_every": "150", "train.eval_episodes": "1", "train.log_every": "50"})


# ----------------------------------------------------------------------------------------------- fast tests
@pytest.mark.fault
def test_store_down_at_the_end_then_push_delivers_everything_once(tmp_path, monkeypatch, fault_log):
    """Every flush fails (a store that went away and never came back before the end): training completes,
    the error is one line naming `targetbench push`, the checkpoint holds every point; push to a store still
    unreachable changes nothing; push once it is back writes every point once and finishes the runs; a
    second push does nothing. The histories equal those of an uninterrupted run."""
    ref = train(tiny_trial(), tracking_uri=f"sqlite:///{tmp_path}/ref.db", experiment="t", results_dir=tmp_path,
                checkpoint_dir=tmp_path / "ck-ref", progress=lambda m: None)
    db = tmp_path / "m.db"
    uri = f"sqlite:///{db}"
    orig_flush = RunGroup.flush
    calls = {"n": 0}

    def failing_flush(self):
        calls["n"] += 1
        raise TrackingError("tracking store write failed after 5 tries: OperationalError: disk I/O error")
    monkeypatch.setattr(RunGroup, "flush", failing_flush)
    messages: list[str] = []
    with pytest.raises(UnpushedError) as info:
        train(tiny_trial(), tracking_uri=uri, experiment="t", results_dir=tmp_path, checkpoint_dir=tmp_path / "ck",
              progress=messages.append)
    monkeypatch.setattr(RunGroup, "flush", orig_flush)
    text = str(info.value)
    assert "\n" not in text and "targetbench push" in text and "--resume" in text
    assert calls["n"] == 4 and sum("tracking store unavailable" in m for m in messages) == 3  # training went on
    assert metric_rows(db) == []

    ckpt = checkpoint_path(tiny_trial(), tmp_path / "ck")
    state = load_checkpoint(ckpt, tiny_trial().group_hash())
    kept = sum(RunGroup.count(state["pending"]))
    assert state["complete"] and state["step"] == 600 and kept > 0
    assert state["tracking_uri"] == uri and state["experiment"] == "t"

    # Still unreachable: exit 3, one line, nothing on disk changed.
    before = (ckpt.read_bytes(), db.read_bytes(), sorted(p.name for p in tmp_path.iterdir()))
    code, lines = run_push("--checkpoint-dir", str(tmp_path / "ck"),
                           "--tracking-uri", f"http://127.0.0.1:{free_port()}")
    assert code == 3 and len(lines) == 1 and "unreachable" in lines[0], lines
    assert (ckpt.read_bytes(), db.read_bytes(), sorted(p.name for p in tmp_path.iterdir())) == before

    code, lines = run_push("--results", str(tmp_path), "--checkpoint-dir", str(tmp_path / "ck"))
    assert code == 0, lines
    assert sum(ln.startswith("pushed dqn CartPole-v1 seed") for ln in lines) == 2
    assert lines[-1].startswith("push: 2 trials pushed")
    rows = metric_rows(db)
    assert len(rows) == kept and duplicates(rows) == 0
    client, ref_client = mlflow.MlflowClient(uri), mlflow.MlflowClient(f"sqlite:///{tmp_path}/ref.db")
    runs = client.search_runs([client.get_experiment_by_name("t").experiment_id])
    assert sorted(r.info.run_id for r in runs) == sorted(state["run_ids"])  # the same runs, completed
    for a, rid in zip(ref, state["run_ids"]):
        run = client.get_run(rid)
        assert run.info.status == "FINISHED" and run.data.tags["outcome"] == "completed"
        assert run.data.tags["params_sha256"] == a.params_sha256
        assert {f.path for f in client.list_artifacts(rid)} == {"config.yaml", "eval_returns.csv", "final_params.pt"}
        got, want = histories(client, rid), histories(ref_client, a.run_id)
        assert got.keys() == want.keys()
        for key in want:
            if key.startswith(names.SYSTEM_PREFIX):  # sampled on a timer: counts differ between runs
                continue
            assert [s for s, _ in got[key]] == [s for s, _ in want[key]], key
            if key not in names.WALL_CLOCK_METRICS:  # timings
                assert got[key] == want[key], key

    # A second push finds nothing to do and changes nothing.
    code, lines = run_push("--results", str(tmp_path), "--checkpoint-dir", str(tmp_path / "ck"))
    assert code == 0 and lines == [f"push: nothing to push in {tmp_path / 'ck'}: 2 trials already complete"], lines
    assert metric_rows(db) == rows
    fault_log(kind="outage-never-back", points_expected=kept, points_stored=len(rows), lost=kept - len(rows),
              duplicated=duplicates(rows), pushes=2)


@pytest.mark.fault
def test_background_write_failures_mid_run_lose_nothing(tmp_path, monkeypatch, fault_log):
    """The background write itself fails (the store answers errors for a while): the trial is not failed,
    points stay buffered and in the checkpoints, and every point is stored once in the end."""
    ref = train(tiny_trial(), tracking_uri=f"sqlite:///{tmp_path}/ref.db", experiment="t", results_dir=tmp_path,
                checkpoint_dir=tmp_path / "ck-ref", progress=lambda m: None)
    orig_write, calls = _SqliteMetricWriter.write, {"n": 0}

    def write(self, batches, tags=None):
        calls["n"] += 1
        if calls["n"] <= 10:  # 2 flushes x 5 tries
            raise sqlite3.OperationalError("database is locked")
        return orig_write(self, batches, tags)
    monkeypatch.setattr(_SqliteMetricWriter, "write", write)
    monkeypatch.setattr(RunGroup, "RETRY_BACKOFF_S", 0.0)
    messages: list[str] = []
    got = train(tiny_trial(), tracking_uri=f"sqlite:///{tmp_path}/m.db", experiment="t", results_dir=tmp_path,
                checkpoint_dir=tmp_path / "ck", progress=messages.append)
    assert calls["n"] > 10 and sum("tracking store unavailable" in m for m in messages) >= 1
    rows = metric_rows(tmp_path / "m.db")
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/m.db")
    ref_client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/ref.db")
    expected = 0
    for a, b in zip(ref, got):
        assert client.get_run(b.run_id).info.status == "FINISHED" and a.params_sha256 == b.params_sha256
        want, have = histories(ref_client, a.run_id), histories(client, b.run_id)
        steps = lambda h: {k: [s for s, _ in v] for k, v in h.items() if not k.startswith(names.SYSTEM_PREFIX)}  # noqa: E731
        assert steps(have) == steps(want)
        expected += sum(len(v) for v in have.values())
    assert len(rows) == expected and duplicates(rows) == 0
    fault_log(kind="write-errors", failed_writes=10, points_expected=expected, points_stored=len(rows),
              lost=expected - len(rows), duplicated=duplicates(rows))


def test_sqlite_writer_stores_what_mlflow_log_batch_stores(tmp_path):
    """The bulk SQLite path writes the same ``metrics``, ``latest_metrics`` and ``tags`` rows as MLflow's own
    ``log_batch`` (NaN, ±inf, out-of-order steps, ties, an over-long tag), and a re-sent batch changes
    nothing."""
    from mlflow.entities import Metric, RunTag

    points = [("a", 1.0, 1000, 5), ("a", 0.5, 1001, 3), ("a", float("nan"), 1002, 7), ("b", float("inf"), 1000, 1),
              ("b", float("-inf"), 1000, 2), ("b", 2.0, 999, 2), ("c", 3.0, 1000, 4), ("c", 4.0, 1000, 4)]
    tags = {"outcome": "completed", "note": "x" * 9000}
    tables = []
    for fast in (False, True):
        uri = f"sqlite:///{tmp_path}/{fast}.db"
        ensure_store(uri)
        client, eid = open_experiment(uri, "t", tmp_path / "art")
        rid = client.create_run(eid).info.run_id
        for _ in range(2):  # the second time is a re-send after an unknown outcome
            if fast:
                writer = _SqliteMetricWriter.for_uri(uri)
                assert writer is not None
                writer.write({rid: points}, {rid: tags})
            else:
                client.log_batch(rid, metrics=[Metric(k, v, ts, st) for k, v, ts, st in points],
                                 tags=[RunTag(k, v) for k, v in tags.items()])
        with sqlite3.connect(f"{tmp_path}/{fast}.db") as conn:
            tables.append([sorted(conn.execute(f"SELECT key, value, timestamp, step, is_nan FROM {t}").fetchall())
                           for t in ("metrics", "latest_metrics")]
                          + [sorted(conn.execute("SELECT key, value FROM tags WHERE key IN ('outcome', 'note')"))])
    assert tables[0] == tables[1]
    assert len(tables[1][0]) == len(points) and len(tables[1][2]) == 2


def test_sqlite_writer_is_not_used_on_an_unknown_schema(tmp_path):
    uri = f"sqlite:///{tmp_path}/m.db"
    ensure_store(uri)
    assert _SqliteMetricWriter.for_uri(uri) is not None
    with sqlite3.connect(tmp_path / "m.db") as conn:
        conn.execute("ALTER TABLE metrics ADD COLUMN dataset_uuid VARCHAR(36)")
    assert _SqliteMetricWriter.for_uri(uri) is None  # a future MLflow schema: fall back to log_batch
    assert _SqliteMetricWriter.for_uri("http://127.0.0.1:5000") is None


def test_public_uri_keeps_no_credentials():
    assert public_uri("https://alice:s3cret@mlflow.example.org:8443/x?y=1") == "https://mlflow.example.org:8443/x?y=1"
    assert public_uri("http://tok@[::1]:5000") == "http://[::1]:5000"
    assert public_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert public_uri("sqlite:///rel/m.db") == f"sqlite:///{Path('rel/m.db').resolve().as_posix()}"


def test_push_leaves_unfinished_training_alone_and_reports_it(tmp_path, capsys):
    """A checkpoint of a run that stopped before its last step is listed, not trained and not changed."""
    from suite.checkpoint import save_checkpoint

    trial = tiny_trial()
    path = checkpoint_path(trial, tmp_path / "ck")
    save_checkpoint(path, {"trial_hash": trial.group_hash(), "agent_name": "dqn", "env": "CartPole-v1",
                           "seeds": [0, 1], "step": 300, "run_ids": ["a", "b"], "pending": [[], []],
                           "complete": False, "trial": {**trial.resolved(), "seeds": [0, 1]},
                           "tracking_uri": f"sqlite:///{tmp_path}/m.db", "experiment": "t"})
    before = path.read_bytes()
    assert push_in_process("--checkpoint-dir", str(tmp_path / "ck"), "--results", str(tmp_path)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("not finished dqn CartPole-v1 seeds 0,1: training stopped at step 300 of 600")
    assert "left alone: 2 not finished training" in out[-1] and path.read_bytes() == before
    assert not (tmp_path / "m.db").exists()
    assert push_cmd.trial_from_checkpoint({"trial": {**trial.resolved(), "seeds": [0, 1]},
                                           "trial_hash": trial.group_hash()}) == trial


# ----------------------------------------------------------------------------------------------- slow tests
# Long enough (~30 s here; 30k steps were until the numpy kernels made training ~4x faster) to outlive the
# outage: training no longer waits for a dead store.
STEPS = 120_000
ARGS = ["--agent", "dqn", "--env", "CartPole-v1", "--seed", "0", "--steps", str(STEPS), "--json",
        "--set", "learning_starts=500", "--set", "train_frequency=1", "--set", "hidden_sizes=32",
        "--set", "train.eval_every=2000", "--set", "train.eval_episodes=2", "--set", "train.log_every=250"]


@pytest.mark.slow
@pytest.mark.fault
def test_server_outage_mid_run_loses_nothing(tmp_path, fault_log):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    started = time.time()
    server = start_server(tmp_path, port)
    startup_s = time.time() - started
    ckpt = tmp_path / "ck"
    run = subprocess.Popen([sys.executable, "-m", "suite", "run", *ARGS, "--tracking-uri", uri,
                            "--results", str(tmp_path), "--checkpoint-dir", str(ckpt)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=fast_env(), cwd=ROOT)
    try:
        while not (ckpt.exists() and any(ckpt.glob("*.pt"))):
            assert run.poll() is None, run.stderr.read()
            time.sleep(0.05)
        # The server goes away after the first checkpoint, for several checkpoints: whole flushes fail (the
        # writer gives up after ~3 s here).
        server, down_at, down_s = outage(server, tmp_path, port, 15, startup_s)
        assert run.poll() is None, "the run ended during the outage; make it longer"
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
        assert "tracking store unavailable" in err  # the outage really hit a flush
        (result,) = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        client = mlflow.MlflowClient(uri)
        evals = client.get_metric_history(result["run_id"], "eval/return_mean")
        assert [(m.step, m.value) for m in evals] == [tuple(x) for x in result["eval_returns"]]
        loss_steps = [m.step for m in client.get_metric_history(result["run_id"], "train/loss")]
        assert loss_steps == list(range(500, STEPS + 1, 250))  # every point, once
        assert client.get_run(result["run_id"]).info.status == "FINISHED"
        rows = metric_rows(tmp_path / "server.db")
        during = sum(1 for *_, ts, _ in rows if down_at * 1000 <= ts <= (down_at + down_s) * 1000)
        fault_log(kind="outage", server_down_s=round(down_s, 1), points_stored=len(rows), duplicated=duplicates(rows),
                  points_logged_while_down=during, loss_points_expected=len(range(500, STEPS + 1, 250)),
                  loss_points_stored=len(loss_steps))
        assert duplicates(rows) == 0 and during > 0
    finally:
        run.kill()
        stop_server(server)


# Four groups of ~15 s on two workers: two finish around the end of the outage, two start during it.
SWEEP = {"name": "outage", "agents": ["dqn"], "envs": ["CartPole-v1"], "seeds": [0, 1, 2, 3], "steps": 12000,
         "eval": {"every": 1000, "episodes": 1},
         "overrides": {"hidden_sizes": [32], "learning_starts": 500, "train_frequency": 1, "train.log_every": 250},
         "resources": {"group_size": 1}, "retries": 2}


def sweep_cmd(tmp: Path, uri: str, suite: dict) -> list[str]:
    path = tmp / f"{suite['name']}.yaml"
    path.write_text(yaml.safe_dump(suite))
    return [sys.executable, "-m", "suite", "sweep", str(path), "--workers", "2", "--tracking-uri", uri,
            "--results", str(tmp / "results"), "--json", "--quiet"]


def checkpoint_steps(folder: Path) -> dict[str, int]:
    """Step of every checkpoint in ``folder`` (read without its tensors)."""
    out = {}
    for p in folder.glob("*.pt"):
        try:
            out[p.name] = int(torch.load(p, map_location="cpu", weights_only=True, mmap=True)["step"])
        except Exception:
            pass  # being replaced right now
    return out


def check_trials(client, experiment: str, steps: int, eval_every: int, log_every: int,
                 learning_starts: int) -> tuple[int, int]:
    """Every trial: exactly one run (deleted ones included), FINISHED, with complete histories (learning_starts
    must be a multiple of log_every) and no point twice. Returns (points stored, points a complete record has:
    one per evaluation, one per log point for every aggregated metric, two per finished episode)."""
    from mlflow.entities import ViewType

    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL, max_results=1000)
    by_trial: dict[str, list] = {}
    for r in runs:
        by_trial.setdefault(r.data.tags["trial_hash"], []).append(r)
    log_steps = list(range(log_every, steps + 1, log_every))
    learning_steps = list(range(learning_starts, steps + 1, log_every))
    stored = expected = 0
    for trial_runs in by_trial.values():
        assert len(trial_runs) == 1, "a trial was retried from scratch into a second run"
        (run,) = trial_runs
        assert run.info.status == "FINISHED" and run.info.lifecycle_stage == "active"
        h = histories(client, run.info.run_id)
        assert [s for s, _ in h["eval/return_mean"]] == list(range(eval_every, steps + 1, eval_every))
        assert [s for s, _ in h["train/loss"]] == learning_steps and [s for s, _ in h["train/epsilon"]] == log_steps
        lengths = [int(v) for _, v in h["train/episode_length"]]
        ends = [s for s, _ in h["train/episode_length"]]
        assert ends == list(itertools.accumulate(lengths))  # every episode end, once (no gap, no repeat)
        assert steps - 500 < sum(lengths) <= steps  # CartPole episodes end by 500 steps
        assert [s for s, _ in h["train/episode_return"]] == ends
        expected += len(range(eval_every, steps + 1, eval_every)) + 2 * len(ends)
        for key, points in h.items():
            stored += len(points)
            if key.startswith("train/") and not key.startswith("train/episode_"):
                want = learning_steps if points and points[0][0] == learning_starts else log_steps
                assert [s for s, _ in points] == want, key  # every log point, once
                expected += len(want)
    return stored, expected


@pytest.mark.slow
@pytest.mark.fault
def test_sweep_keeps_training_through_a_server_outage(tmp_path, fault_log):
    """A 2-worker sweep whose server is killed mid-sweep and restarted 15 s later (same port, same backend
    store): training goes on (points logged while the server was down reach it), no trial fails or is rerun
    from scratch, and every trial has one FINISHED run with complete histories and no duplicates."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    started = time.time()
    server = start_server(tmp_path, port)
    startup_s = time.time() - started
    ckdir = tmp_path / "results" / "checkpoints"
    sweep = subprocess.Popen(sweep_cmd(tmp_path, uri, SWEEP), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=fast_env(), cwd=ROOT)
    try:
        deadline = time.time() + 300
        while not any(s >= 1000 for s in checkpoint_steps(ckdir).values()):
            assert sweep.poll() is None and time.time() < deadline, sweep.stderr.read()
            time.sleep(0.1)
        at_stop = checkpoint_steps(ckdir)
        server, down_at, down_s = outage(server, tmp_path, port, 15, startup_s)
        at_restart = checkpoint_steps(ckdir)
        assert sweep.poll() is None, "the sweep ended during the outage; make it longer"
        out, err = sweep.communicate(timeout=600)
        assert sweep.returncode == 0, err[-3000:]
        summary = json.loads(out.splitlines()[-1])
        assert summary["done"] == 4 and summary["failed"] == 0 and summary["unpushed"] == 0, summary
        # training went on while the server was down
        assert sum(at_restart.values()) > sum(at_stop.values()) or len(at_restart) > len(at_stop)
        client = mlflow.MlflowClient(uri)
        stored, expected = check_trials(client, "sweep-outage", 12000, 1000, 250, 500)
        rows = metric_rows(tmp_path / "server.db")
        assert len(rows) == stored == expected and duplicates(rows) == 0
        during = sum(1 for *_, ts, _ in rows if down_at * 1000 <= ts <= (down_at + down_s) * 1000)
        assert during > 0  # points logged during the outage were buffered and delivered
        fault_log(kind="outage", server_down_s=round(down_s, 1), workers=2, trials=4, points_expected=expected,
                  points_stored=len(rows), points_logged_while_down=during, lost=expected - len(rows),
                  duplicated=duplicates(rows), attempts=[t["attempts"] for t in summary["trials"]])
    finally:
        sweep.kill()
        stop_server(server)


@pytest.mark.slow
@pytest.mark.fault
def test_sweep_whose_server_never_comes_back_then_push(tmp_path, fault_log):
    """The server dies mid-sweep and stays down: both groups finish training, the sweep exits 3 with one line
    naming `targetbench push`, the checkpoints hold every point; once the server is back, push delivers
    everything exactly once and a second push does nothing."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path, port)
    ckdir = tmp_path / "results" / "checkpoints"
    suite = {**SWEEP, "name": "never", "seeds": [0, 1], "steps": 3000, "eval": {"every": 500, "episodes": 1}}
    sweep = subprocess.Popen(sweep_cmd(tmp_path, uri, suite), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=fast_env(), cwd=ROOT)
    try:
        deadline = time.time() + 300
        while len([s for s in checkpoint_steps(ckdir).values() if s >= 500]) < 2:
            assert sweep.poll() is None and time.time() < deadline, sweep.stderr.read()
            time.sleep(0.1)
        stop_server(server)
        out, err = sweep.communicate(timeout=600)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert sweep.returncode == 3 and len(lines) == 1, err
        assert "2 trials finished training" in lines[0] and "targetbench push" in lines[0]
        kept = 0
        for p in ckdir.glob("*.pt"):
            meta = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
            assert meta["complete"] and meta["step"] == 3000 and meta["tracking_uri"] == uri
            kept += sum(RunGroup.count(meta["pending"]))
        assert kept > 0

        code, lines = run_push("--results", str(tmp_path / "results"))  # still down
        assert code == 3 and len(lines) == 1 and "unreachable" in lines[0], lines

        server = start_server(tmp_path, port)
        code, lines = run_push("--results", str(tmp_path / "results"))
        assert code == 0 and lines[-1].startswith("push: 2 trials pushed"), lines
        client = mlflow.MlflowClient(uri)
        stored, expected = check_trials(client, "sweep-never", 3000, 500, 250, 500)
        rows = metric_rows(tmp_path / "server.db")
        assert len(rows) == stored == expected and kept <= expected and duplicates(rows) == 0
        code, lines = run_push("--results", str(tmp_path / "results"))
        assert code == 0 and lines[-1].startswith("push: nothing to push") and "2 trials already complete" in lines[-1]
        assert metric_rows(tmp_path / "server.db") == rows
        fault_log(kind="outage-never-back", points_expected=expected, points_kept=kept, points_stored=len(rows),
                  lost=expected - len(rows),
                  duplicated=duplicates(rows), pushes=2)
    finally:
        sweep.kill()
        stop_server(server)
