"""A real loopback ``mlflow server`` for the fault tests: started on a port with its backend store and artifact
store in a folder (the same store again on a restart), and killed with its worker processes."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(folder: Path, port: int) -> subprocess.Popen:
    """A loopback MLflow server on ``port`` with its backend store in ``folder`` (the same store on a restart);
    returns once it answers its health check."""
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{folder}/server.db", "--workers", "1",
                             "--artifacts-destination", str(folder / "server-artifacts")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            break
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


def fast_env() -> dict[str, str]:
    """Child env in which MLflow's HTTP client gives up on a dead server at once (the product retries itself),
    so that an outage of a few seconds really makes calls fail. A stopped server refuses connections at once;
    the timeout only bounds a slow answer, which a loaded test machine can give."""
    return {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
