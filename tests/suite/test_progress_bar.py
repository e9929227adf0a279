"""Progress on a terminal is a tqdm bar (step, env steps/s, ETA, latest return); piped stderr keeps the lines."""
import fcntl
import os
import pty
import struct
import termios
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["-m", "suite.cli", "run", "--agent", "dqn", "--env", "CartPole-v1", "--seed", "0", "--steps", "600",
        "--set", "learning_starts=100", "--set", "train.eval_every=300", "--set", "train.eval_episodes=1"]


def _run_on_a_pty(args):
    """stderr on a pseudo-terminal (stdout piped): what a user at a terminal sees."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal 120 columns wide
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=slave, stdin=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=300)
    os.close(master)
    return proc.returncode, out.decode(errors="replace")


def test_a_terminal_gets_a_bar(tmp_path):
    code, err = _run_on_a_pty([*ARGS, "--results", str(tmp_path), "--set", "train.log_every=100"])
    assert code == 0, err
    assert "600/600" in err and "%|" in err  # tqdm's bar: percentage, bar, step count
    assert "env steps/s=" in err  # the postfix
    assert "eval" in err  # evaluation lines are printed above the bar


def test_piped_stderr_keeps_the_plain_lines(tmp_path):
    proc = subprocess.run([sys.executable, *ARGS, "--results", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "[dqn CartPole-v1 seeds 0] step 600/600 eval" in proc.stderr
    assert "%|" not in proc.stderr
