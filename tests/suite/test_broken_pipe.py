"""A reader that closes our stdout early (`targetbench agents --json | head -1`) ends any subcommand quietly:
exit 141 (128 + SIGPIPE, as a Unix tool killed by SIGPIPE), nothing on stderr. Tested with real pipes."""
import json
import os
import subprocess
import sys

import pytest

from suite.errors import BROKEN_PIPE_EXIT

pytestmark = pytest.mark.fault


def _run_with_closed_stdout(args, stdin=None, timeout=120):
    """Run ``args`` with stdout a pipe whose read end is already closed: its first write gets EPIPE."""
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    try:
        proc = subprocess.run(args, stdout=write_fd, stderr=subprocess.PIPE, input=stdin, text=True,
                              timeout=timeout)
    finally:
        os.close(write_fd)
    return proc


@pytest.mark.parametrize("argv", [["agents", "--json"], ["envs"], ["envs", "--json"]])
def test_closed_pipe_ends_quietly(argv):
    proc = _run_with_closed_stdout([sys.executable, "-m", "suite", *argv])
    assert proc.returncode == BROKEN_PIPE_EXIT, proc.stderr
    assert proc.stderr == ""


def test_closed_pipe_during_help_is_quiet():
    # argparse's own printing already ignores a failed write and exits 0: quiet too, which is what matters.
    proc = _run_with_closed_stdout([sys.executable, "-m", "suite", "sweep", "--help"])
    assert proc.returncode in (0, BROKEN_PIPE_EXIT) and proc.stderr == ""


def test_head_one_in_a_shell_pipeline():
    # The reported case: the first line arrives intact, the rest stops quietly (pipefail shows our status).
    cmd = f"set -o pipefail; {sys.executable} -m suite agents --json | head -1"
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert "name" in json.loads(proc.stdout)
    assert proc.stderr == ""
    assert proc.returncode in (0, BROKEN_PIPE_EXIT)  # 0 when all output fit the pipe before head exited


def test_worker_stops_like_sigterm_when_the_scheduler_is_gone(tmp_path):
    # A scheduler child whose stdout pipe is closed: its first progress event stops the attempt as an interrupt
    # (its run marked KILLED, so the next sweep resumes or replaces it), with no traceback.
    job = {"agent": "dqn", "env": "CartPole-v1", "seeds": [0], "steps": 120,
           "overrides": {"learning_starts": "50", "buffer_size": "100", "batch_size": "8", "hidden_sizes": "8",
                         "train.eval_every": "60", "train.eval_episodes": "1"},
           "tracking_uri": f"sqlite:///{tmp_path}/m.db", "experiment": "e", "results_dir": str(tmp_path),
           "store_wait_s": 0}
    proc = _run_with_closed_stdout([sys.executable, "-m", "suite.scheduler.worker"], stdin=json.dumps(job))
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(job["tracking_uri"])
    runs = client.search_runs([client.get_experiment_by_name("e").experiment_id])
    assert [r.info.status for r in runs] == ["KILLED"]
