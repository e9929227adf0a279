"""A real tracking server that goes away mid-run: training continues, unsent points wait in memory and in the
checkpoint, and every point reaches the server, once, when it is back. Loopback only."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

pytestmark = pytest.mark.slow  # starts an MLflow server twice (~1 min); run with `make test-all`


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{tmp}/server.db",
                             "--artifacts-destination", str(tmp / "server-artifacts")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    import urllib.request
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError("mlflow server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    """Kill the server and its worker processes (uvicorn workers outlive a killed parent)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


ARGS = ["--agent", "dqn", "--env", "CartPole-v1", "--seed", "0", "--steps", "8000", "--json",
        "--set", "learning_starts=500", "--set", "train_frequency=1", "--set", "hidden_sizes=32",
        "--set", "train.eval_every=1000", "--set", "train.eval_episodes=2", "--set", "train.log_every=250"]


def test_server_outage_mid_run_loses_nothing(tmp_path):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path, port)
    ckpt = tmp_path / "ck"
    run = subprocess.Popen([sys.executable, "-m", "suite", "run", *ARGS, "--tracking-uri", uri,
                            "--results", str(tmp_path), "--checkpoint-dir", str(ckpt)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not (ckpt.exists() and any(ckpt.glob("*.pt"))):
            assert run.poll() is None, run.stderr.read()
            time.sleep(0.05)
        stop_server(server)  # the server goes away after the first checkpoint
        time.sleep(20)  # longer than the writer's own retries, so whole flushes fail and points wait on disk
        server = start_server(tmp_path, port)
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
        assert "tracking store unavailable" in err  # the outage really hit a flush
        (result,) = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        client = mlflow.MlflowClient(uri)
        evals = client.get_metric_history(result["run_id"], "eval/return_mean")
        assert [(m.step, m.value) for m in evals] == [tuple(x) for x in result["eval_returns"]]
        loss_steps = [m.step for m in client.get_metric_history(result["run_id"], "train/loss")]
        assert loss_steps == list(range(500, 8001, 250))  # every point, once
        assert client.get_run(result["run_id"]).info.status == "FINISHED"
    finally:
        run.kill()
        stop_server(server)
