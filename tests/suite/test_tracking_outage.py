"""Tracking outages (issue #7): a store that goes away mid-run or mid-sweep does not stop training, unsent
points wait in memory and in checkpoints, and every point reaches the store once when it is back; a store that
never comes back leaves everything on disk for ``targetbench push``.

The fast tests use the embedded SQLite store with failures injected; the slow ones (`-m slow`) start a real
loopback ``mlflow server`` and kill it (its process group: uvicorn workers outlive a killed parent).
"""
import argparse
import itertools
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import torch
import yaml

from suite import push as push_cmd
from suite.checkpoint import load_checkpoint
from suite.errors import TrackingError
from suite.sqlite_metrics import SqliteMetricWriter
from suite.tracking import RunGroup, ensure_store, open_experiment
from suite.trainer import UnpushedError, checkpoint_path, public_uri, train
from suite.trial import build_trial
from analysis import record_names as names
from outage_proxy import OutageProxy
from tracking_server import fast_env, free_port, start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------------------------- helpers
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
    orig_write, calls = SqliteMetricWriter.write, {"n": 0}

    def write(self, batches, tags=None):
        calls["n"] += 1
        if calls["n"] <= 10:  # 2 flushes x 5 tries
            raise sqlite3.OperationalError("database is locked")
        return orig_write(self, batches, tags)
    monkeypatch.setattr(SqliteMetricWriter, "write", write)
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
    """On the installed MLflow, the bulk SQLite path writes exactly the rows MLflow's own ``log_batch`` writes:
    every column of ``metrics``, ``latest_metrics`` and ``tags`` (NaN, ±inf, out-of-order steps, ties, an
    over-long tag, two runs in one write), and a re-sent batch changes nothing."""
    from mlflow.entities import Metric, RunTag

    points = [("a", 1.0, 1000, 5), ("a", 0.5, 1001, 3), ("a", float("nan"), 1002, 7), ("b", float("inf"), 1000, 1),
              ("b", float("-inf"), 1000, 2), ("b", 2.0, 999, 2), ("c", 3.0, 1000, 4), ("c", 4.0, 1000, 4)]
    per_run = {"r0": (points, {"outcome": "completed", "note": "x" * 9000}),
               "r1": (points[::-1][:5], {"outcome": "diverged"})}
    tables = []
    for fast in (False, True):
        uri = f"sqlite:///{tmp_path}/{fast}.db"
        ensure_store(uri)
        client, eid = open_experiment(uri, "t", tmp_path / "art")
        rids = {name: client.create_run(eid, run_name=name).info.run_id for name in per_run}
        for _ in range(2):  # the second time is a re-send after an unknown outcome
            if fast:
                writer = SqliteMetricWriter.for_uri(uri)
                assert writer is not None
                writer.write({rids[n]: p for n, (p, _) in per_run.items()},
                             {rids[n]: t for n, (_, t) in per_run.items()})
            else:
                for n, (p, t) in per_run.items():
                    client.log_batch(rids[n], metrics=[Metric(k, v, ts, st) for k, v, ts, st in p],
                                     tags=[RunTag(k, v) for k, v in t.items()])
        by_id = {rid: n for n, rid in rids.items()}
        with sqlite3.connect(f"{tmp_path}/{fast}.db") as conn:
            got = {}
            for table in ("metrics", "latest_metrics", "tags"):
                cursor = conn.execute(f"SELECT * FROM {table}")
                columns = [c[0] for c in cursor.description]
                at = columns.index("run_uuid")
                got[table] = (columns, sorted(tuple(by_id.get(v, v) if i == at else v for i, v in enumerate(row))
                                              for row in cursor.fetchall() if row[at] in by_id))
        tables.append(got)
    assert tables[0] == tables[1]
    assert len(tables[1]["metrics"][1]) == 8 + 5 and len(tables[1]["latest_metrics"][1]) == 3 + 2


def test_sqlite_writer_is_not_used_on_an_unknown_schema(tmp_path):
    uri = f"sqlite:///{tmp_path}/m.db"
    ensure_store(uri)
    assert SqliteMetricWriter.for_uri(uri) is not None
    with sqlite3.connect(tmp_path / "m.db") as conn:
        conn.execute("ALTER TABLE metrics ADD COLUMN dataset_uuid VARCHAR(36)")
    assert SqliteMetricWriter.for_uri(uri) is None  # a future MLflow schema: fall back to log_batch
    assert SqliteMetricWriter.for_uri("http://127.0.0.1:5000") is None


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
# A real loopback `mlflow server`, shared by the tests of this module; each test reaches it through its own
# OutageProxy (tests/outage_proxy.py), which it takes down and brings back: a server that stops answering and
# answers again on the same store, at moments chosen by what the test observes (a checkpoint written, a request
# sent), not by sleeps. One test kills and restarts the server process itself.
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("server")
    port = free_port()
    proc = start_server(folder, port)
    yield {"port": port, "url": f"http://127.0.0.1:{port}", "db": folder / "server.db"}
    stop_server(proc)


def rows_of(db: Path, run_ids) -> list[tuple]:
    """The ``metrics`` rows of these runs."""
    run_ids = list(run_ids)
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT run_uuid, key, step, timestamp, value FROM metrics WHERE run_uuid IN "
                            f"({','.join('?' * len(run_ids))})", run_ids).fetchall()


def wait_for(condition, what: str, proc: subprocess.Popen | None = None, timeout: float = 300) -> None:
    """Poll ``condition()`` until true; fails if ``proc`` ended first or after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while not condition():
        assert proc is None or proc.poll() is None, f"ended before {what}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def kill_session(proc: subprocess.Popen) -> None:
    """Kill a child started in its own session, and every process it started (a sweep's workers)."""
    import os
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class Lines:
    """A child's text stream read in a thread, so a test can wait for a line to appear."""

    def __init__(self, stream) -> None:
        import threading

        self.lines: list[str] = []
        self._thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._thread.start()

    def has(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def text(self) -> str:
        self._thread.join(timeout=60)
        return "".join(self.lines)


STEPS, EVAL_EVERY, LOG_EVERY = 30_000, 2000, 250
ARGS = ["--agent", "dqn", "--env", "CartPole-v1", "--seed", "0", "--steps", str(STEPS), "--json",
        "--set", "learning_starts=500", "--set", "train_frequency=1", "--set", "hidden_sizes=32",
        "--set", f"train.eval_every={EVAL_EVERY}", "--set", "train.eval_episodes=2",
        "--set", f"train.log_every={LOG_EVERY}"]


@pytest.mark.slow
@pytest.mark.fault
def test_server_outage_mid_run_loses_nothing(tmp_path, server, fault_log):
    """The store stops answering after the first checkpoint and answers again once the run has told that a
    flush failed and has written two more checkpoints: training never waited, and every point is stored once."""
    proxy = OutageProxy(server["port"])
    ckpt = tmp_path / "ck"
    run = subprocess.Popen([sys.executable, "-m", "suite", "run", *ARGS, "--tracking-uri", proxy.url,
                            "--experiment", "mid-run", "--results", str(tmp_path), "--checkpoint-dir", str(ckpt)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=fast_env(), cwd=ROOT,
                             start_new_session=True)
    err = Lines(run.stderr)
    try:
        wait_for(lambda: checkpoint_steps(ckpt), "the first checkpoint", run)
        first = max(checkpoint_steps(ckpt).values())
        proxy.down()
        down_at = time.time()
        wait_for(lambda: err.has("tracking store unavailable")
                 and max(checkpoint_steps(ckpt).values()) >= first + 2 * EVAL_EVERY, "two checkpoints while down", run)
        proxy.up()
        up_at = time.time()
        out, _ = run.communicate(timeout=600)
        assert run.returncode == 0, err.text()
        (result,) = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        client = mlflow.MlflowClient(server["url"])
        evals = client.get_metric_history(result["run_id"], "eval/return_mean")
        assert [(m.step, m.value) for m in evals] == [tuple(x) for x in result["eval_returns"]]
        loss_steps = [m.step for m in client.get_metric_history(result["run_id"], "train/loss")]
        assert loss_steps == list(range(500, STEPS + 1, LOG_EVERY))  # every point, once
        assert client.get_run(result["run_id"]).info.status == "FINISHED"
        rows = rows_of(server["db"], [result["run_id"]])
        during = sum(1 for *_, ts, _ in rows if down_at * 1000 <= ts <= up_at * 1000)
        fault_log(kind="outage", server_down_s=round(proxy.down_s, 1), points_stored=len(rows),
                  duplicated=duplicates(rows), points_logged_while_down=during,
                  loss_points_expected=len(range(500, STEPS + 1, LOG_EVERY)), loss_points_stored=len(loss_steps))
        assert duplicates(rows) == 0 and during > 0
    finally:
        run.kill()
        proxy.close()


# Four groups on two workers; the outage starts once a group has checkpointed and ends once training has gone on
# through it (a group checkpointed while the store was away).
SWEEP = {"name": "outage", "agents": ["dqn"], "envs": ["CartPole-v1"], "seeds": [0, 1, 2, 3], "steps": 6000,
         "eval": {"every": 1000, "episodes": 1},
         "overrides": {"hidden_sizes": [32], "learning_starts": 500, "train_frequency": 1, "train.log_every": 250},
         "resources": {"group_size": 1}, "retries": 2}


def sweep_cmd(tmp: Path, uri: str, suite: dict, *extra: str) -> list[str]:
    path = tmp / f"{suite['name']}.yaml"
    path.write_text(yaml.safe_dump(suite))
    return [sys.executable, "-m", "suite", "sweep", str(path), "--workers", "2", "--tracking-uri", uri,
            "--results", str(tmp / "results"), "--json", "--quiet", *extra]


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
    """Every trial: exactly one active run, FINISHED, with complete histories (learning_starts must be a
    multiple of log_every) and no point twice. A deleted run is one that never trained: a run whose creation the
    store carried out while its answer was lost to an outage, deleted when the group started again (it is
    never FINISHED, and holds no metric point: the caller compares every stored row with what is counted here).
    Returns (points stored, points a complete record has: two per evaluation (return, wall time), one per log
    point for every aggregated metric, two per finished episode, and the system metrics it holds)."""
    from mlflow.entities import ViewType

    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL, max_results=1000)
    assert all(r.info.status != "FINISHED" for r in runs if r.info.lifecycle_stage == "deleted")
    by_trial: dict[str, list] = {}
    for r in runs:
        if r.info.lifecycle_stage == "active":
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
            if key.startswith(names.SYSTEM_PREFIX):  # sampled on a timer: how many depends on the wall time
                expected += len(points)  # (none twice: the caller checks every stored row for duplicates)
            elif key == names.WALL_S:  # the training wall time, at every evaluation
                assert [s for s, _ in points] == list(range(eval_every, steps + 1, eval_every)), key
                expected += len(points)
            elif key.startswith("train/") and not key.startswith("train/episode_"):
                want = learning_steps if points and points[0][0] == learning_starts else log_steps
                assert [s for s, _ in points] == want, key  # every log point, once
                expected += len(want)
    return stored, expected


def experiment_run_ids(client, experiment: str) -> list[str]:
    from mlflow.entities import ViewType

    exp = client.get_experiment_by_name(experiment)
    return [r.info.run_id for r in client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL,
                                                      max_results=1000)]


def leases_left(client) -> list[str]:
    return [m.name for m in client.search_registered_models(filter_string="name LIKE 'targetbench-%'")]


@pytest.mark.slow
@pytest.mark.fault
def test_sweep_keeps_training_through_a_server_outage(tmp_path, server, fault_log):
    """A 2-worker sweep whose store stops answering mid-sweep and answers again once training went on through
    the outage: no trial fails or is rerun from scratch, points logged while it was away reach it, and every
    trial has one FINISHED run with complete histories and no duplicates; no lease is left."""
    proxy = OutageProxy(server["port"])
    ckdir = tmp_path / "results" / "checkpoints"
    sweep = subprocess.Popen(sweep_cmd(tmp_path, proxy.url, SWEEP), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=fast_env(), cwd=ROOT, start_new_session=True)
    err = Lines(sweep.stderr)
    try:
        wait_for(lambda: any(s >= 1000 for s in checkpoint_steps(ckdir).values()), "a checkpoint", sweep)
        at_stop = checkpoint_steps(ckdir)
        proxy.down()
        down_at = time.time()
        wait_for(lambda: any(s > at_stop.get(k, 0) for k, s in checkpoint_steps(ckdir).items()),
                 "a checkpoint while the store is away", sweep)
        proxy.up()
        up_at = time.time()
        out, _ = sweep.communicate(timeout=600)
        assert sweep.returncode == 0, err.text()[-3000:]
        summary = json.loads(out.splitlines()[-1])
        assert summary["done"] == 4 and summary["failed"] == 0 and summary["unpushed"] == 0, summary
        client = mlflow.MlflowClient(server["url"])
        stored, expected = check_trials(client, "sweep-outage", 6000, 1000, 250, 500)
        rows = rows_of(server["db"], experiment_run_ids(client, "sweep-outage"))
        assert len(rows) == stored == expected and duplicates(rows) == 0
        during = sum(1 for *_, ts, _ in rows if down_at * 1000 <= ts <= up_at * 1000)
        assert during > 0  # points logged during the outage were buffered and delivered
        assert leases_left(client) == []
        fault_log(kind="outage", server_down_s=round(proxy.down_s, 1), workers=2, trials=4, points_expected=expected,
                  points_stored=len(rows), points_logged_while_down=during, lost=expected - len(rows),
                  duplicated=duplicates(rows))
    finally:
        kill_session(sweep)
        proxy.close()


#: where the outage starts in test_sweep_outlives_its_server: a request the proxy sees, or what the test observes
MOMENTS = {
    # the sweep's first read of its runs (what is finished): nothing planned yet
    "before-planning": ("POST", r"/runs/search$", 1),
    # the second lease (the first registered model is the sweep's own record); the server creates it, the
    # answer is lost
    "taking-leases": ("POST", r"/registered-models/create$", 3),
    # once a group has checkpointed (observed by the test)
    "mid-training": None,
    # a group's final records: its first artifact upload, right before its last points and FINISHED status
    "final-records": ("PUT", r"/mlflow-artifacts/artifacts/", 1),
}


@pytest.mark.slow
@pytest.mark.fault
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sweep_outlives_its_server(tmp_path, server, moment, fault_log):
    """The store stops answering at one moment of a sweep and stays away: the sweep retries (``--store-wait``),
    then exits 3 with one line (trials reported unpushed, or nothing run). Once it is back, ``push`` completes
    what trained, exactly once, and deletes the dead sweep's leases; the sweep run again finishes the rest:
    every trial has one FINISHED run, complete histories, no point twice, and no lease is left."""
    proxy = OutageProxy(server["port"])
    name = f"moment-{moment}"
    suite = {**SWEEP, "name": name, "seeds": [0, 1], "steps": 3000, "eval": {"every": 500, "episodes": 1}}
    ckdir = tmp_path / "results" / "checkpoints"
    rule = MOMENTS[moment]
    fired = proxy.down_on(*rule[:2], rule[2], reaches_server=moment == "taking-leases") if rule else None
    sweep = subprocess.Popen(sweep_cmd(tmp_path, proxy.url, suite, "--store-wait", "3"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=fast_env(), cwd=ROOT,
                             start_new_session=True)
    try:
        if rule is None:
            wait_for(lambda: len(checkpoint_steps(ckdir)) == 2, "a checkpoint of each group", sweep)
            proxy.down()
        out, err = sweep.communicate(timeout=600)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert fired is None or fired.is_set(), f"the outage did not happen: {proxy.requests[-5:]}"
        assert sweep.returncode == 3 and len(lines) == 1, err
        summary = json.loads(out.splitlines()[-1]) if out.strip() else None
        if moment in ("before-planning", "taking-leases"):
            assert "nothing has run" in lines[0] and summary is None, (lines, out)
        else:
            # The group that met the outage trained on and is unpushed; the other one too, unless it had not
            # opened its runs yet (a loaded machine): then it waited for the store and did not start.
            assert summary["unpushed"] >= 1 and summary["unpushed"] + summary["unstarted"] == 2, summary
            assert summary["failed"] == 0 and summary["done"] == 0, summary
            assert f"{summary['unpushed']} trials finished training" in lines[0] and "targetbench push" in lines[0]
            assert ("did not start" in lines[0]) == bool(summary["unstarted"]), lines
        down_s = proxy.down_s
        proxy.up()
        client = mlflow.MlflowClient(server["url"])
        code, pushed = run_push("--results", str(tmp_path / "results"), "--tracking-uri", proxy.url)
        assert code == 0, pushed
        assert leases_left(client) == [], pushed  # push deleted what the dead sweep left
        again = subprocess.run(sweep_cmd(tmp_path, proxy.url, suite), capture_output=True, text=True,
                               env=fast_env(), cwd=ROOT, timeout=600)
        assert again.returncode == 0, again.stderr[-3000:]
        final = json.loads(again.stdout.splitlines()[-1])
        assert final["failed"] == 0 and final["done"] + final["skipped"] == 2, final
        assert final["skipped"] == (summary["unpushed"] if summary else 0), final  # pushed: not run again
        stored, expected = check_trials(client, f"sweep-{name}", 3000, 500, 250, 500)
        rows = rows_of(server["db"], experiment_run_ids(client, f"sweep-{name}"))
        assert len(rows) == stored == expected and duplicates(rows) == 0
        assert leases_left(client) == []
        fault_log(kind="outage-moments", moment=moment, outages=1, server_down_s=round(down_s, 1), trials=2,
                  points_expected=expected, points_stored=len(rows), lost=expected - len(rows),
                  duplicated=duplicates(rows), pushed=sum(ln.startswith("pushed ") for ln in pushed))
    finally:
        kill_session(sweep)
        proxy.close()


@pytest.mark.slow
@pytest.mark.fault
def test_sweep_whose_server_never_comes_back_then_push(tmp_path, fault_log):
    """The server process is killed mid-sweep and stays down: both groups finish training, the sweep exits 3
    with one line naming `targetbench push`, the checkpoints hold every point; once a new server runs on the
    same store, push delivers everything exactly once, deletes the leases the sweep left, and a second push
    does nothing."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path, port)
    ckdir = tmp_path / "results" / "checkpoints"
    suite = {**SWEEP, "name": "never", "seeds": [0, 1], "steps": 3000, "eval": {"every": 500, "episodes": 1}}
    sweep = subprocess.Popen(sweep_cmd(tmp_path, uri, suite, "--store-wait", "3"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=fast_env(), cwd=ROOT,
                             start_new_session=True)
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
        assert "expired trial leases deleted" in lines[-1], lines  # the dead sweep's record and leases
        assert not mlflow.MlflowClient(uri).search_registered_models(filter_string="name LIKE 'targetbench-%'")
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
        kill_session(sweep)
        stop_server(server)
