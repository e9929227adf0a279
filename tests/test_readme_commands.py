"""Every shell command the README (and docs/*.md) shows is run here, as a user types it, at a smoke budget.

A command "shown" is a line of a fenced ``bash`` block, or an inline code span that starts with ``make `` or
``targetbench `` (``.venv/bin/targetbench `` too). Each one must be accounted for in exactly one of:

* ``RUN``: run here, in order, in one workspace (a temporary folder with ``.venv`` linked to the checkout's, so
  ``.venv/bin/targetbench`` works as typed; ``make`` runs in the checkout, through the Makefile). Where the
  shown command's budget is hours, the smoke form cuts it (fewer steps and seeds, the smoke suite) and says so.
* ``NAMES``: a span that names a command or gives its synopsis (``targetbench run``, ``make results
  PART=classic|sensitivity|...``) rather than a command line to run; the command itself is run under ``RUN``.
* ``EXAMPLES``: a command of a worked example, run by the test of that example (``tests/test_readme.py``).
* ``RESOLVED``: a ``targetbench run`` of docs/algorithms.md's tuning notes (tens of thousands of steps each): its
  flags are parsed and its trial resolved and validated here (a placeholder value substituted), not trained.
* ``EXEMPT``: not run by the tests, with the reason (a cluster, hours of compute, the test run itself). The
  README lists them under "Commands the tests do not run"; a test checks that list against this one.

A new command in the README without an entry here fails ``test_every_shown_command_is_accounted_for``: a renamed
flag or a deleted function then breaks a test, not a user.
"""
from __future__ import annotations

import re
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shown_commands() -> dict[str, str]:
    """Command as shown (comment and trailing spaces stripped, continuations joined) → the file showing it."""
    out: dict[str, str] = {}
    for path in DOCS:
        text = path.read_text()
        for block in re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", text, re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()
                if line and not line.startswith("#"):
                    out.setdefault(re.sub(r"\s+", " ", line), path.name)
        for span in re.findall(r"`((?:make|targetbench|\.venv/bin/targetbench) [^`]*|make|targetbench)`", text):
            out.setdefault(re.sub(r"\s+", " ", span.strip()), path.name)
    return out


@dataclass(frozen=True)
class Smoke:
    """How a shown command runs here: ``cmd`` (``{results}``: the workspace's results folder, ``{ws}``: the
    workspace; ``make`` runs in the checkout), the exit codes it may end with, and a check of what it wrote."""

    cmd: str
    check: Callable[[subprocess.CompletedProcess, Path], None] = lambda proc, ws: None
    rc: tuple[int, ...] = (0,)
    slow: bool = False  # minutes on 2 cores: run by `make test-all`, not the default set


def _exists(*rel: str) -> Callable[[subprocess.CompletedProcess, Path], None]:
    def check(proc: subprocess.CompletedProcess, ws: Path) -> None:
        for r in rel:
            assert (ws / r).exists(), f"{r} missing after the command"
    return check


def _json_lines(keys: tuple[str, ...], n: int) -> Callable[[subprocess.CompletedProcess, Path], None]:
    def check(proc: subprocess.CompletedProcess, ws: Path) -> None:
        import json

        rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        assert len(rows) == n and all(set(keys) <= set(r) for r in rows), proc.stdout[-500:]
    return check


def _says(*words: str) -> Callable[[subprocess.CompletedProcess, Path], None]:
    def check(proc: subprocess.CompletedProcess, ws: Path) -> None:
        text = proc.stdout + proc.stderr
        for w in words:
            assert w in text, f"{w!r} not in the output: {text[-800:]}"
    return check


TINY_RUN = ("--set learning_starts=100 --set buffer_size=500 --set batch_size=16 --set train.eval_every=300 "
            "--set train.eval_episodes=1")

# In the order they run: later commands read what earlier ones wrote (the store under {results}).
RUN: dict[str, Smoke] = {
    "make install": Smoke("make install"),
    # the main job, end to end: sweep, benchmark.md, figures, tables, report
    "make benchmark": Smoke("make benchmark SUITE=smoke RESULTS={results}",
                            _exists("results/benchmark.md", "results/report.md", "results/figures/aggregates.pdf",
                                    "results/tables/aggregates.md")),
    ".venv/bin/targetbench agents": Smoke(".venv/bin/targetbench agents", _says("dqn", "isql", "fields:")),
    # a closed stdout ends the command quietly: 141 when head closed it first, 0 when the output fit the pipe
    "targetbench agents --json | head -1": Smoke(
        "set -o pipefail; .venv/bin/targetbench agents --json | head -1", lambda p, ws: (
            _json_lines(("name", "fields"), 1)(p, ws),
            None if not p.stderr.strip() else pytest.fail(f"stderr not quiet: {p.stderr[-300:]}")), rc=(0, 141)),
    ".venv/bin/targetbench envs": Smoke(".venv/bin/targetbench envs", _says("CartPole-v1", "MinAtar/breakout", "ALE/")),
    "targetbench run --agent dqn --env CartPole-v1": Smoke(
        f".venv/bin/targetbench run --agent dqn --env CartPole-v1 --steps 300 {TINY_RUN} --results {{results}}",
        _says("final eval")),
    ".venv/bin/targetbench run --agent dqn --env CartPole-v1 --seed 0,1,2 --steps 50000 --json": Smoke(
        f".venv/bin/targetbench run --agent dqn --env CartPole-v1 --seed 0,1,2 --steps 600 {TINY_RUN} --json "
        "--results {results}", _json_lines(("run_id", "final_eval_return", "params_sha256", "trial_hash"), 3)),
    ".venv/bin/targetbench run --agent dqn-soft --env MinAtar/breakout --seed 0-4 --set tau=0.01": Smoke(
        f".venv/bin/targetbench run --agent dqn-soft --env MinAtar/breakout --seed 0-4 --set tau=0.01 --steps 300 "
        f"{TINY_RUN} --set train.eval_max_steps=200 --results {{results}}", _says("seed 4")),
    ".venv/bin/targetbench convergence --mdp random:30,4,7 --rules all --json": Smoke(
        ".venv/bin/targetbench convergence --mdp random:30,4,7 --rules all --json --steps 2000 --runs 2",
        _json_lines(("rule",), 6)),
    ".venv/bin/targetbench sweep classic --dry-run": Smoke(".venv/bin/targetbench sweep classic --dry-run",
                                                           _says("150 trials")),
    "targetbench sweep default --dry-run": Smoke(".venv/bin/targetbench sweep default --dry-run", _says("trials")),
    "targetbench sweep --list": Smoke(".venv/bin/targetbench sweep --list", _says("smoke", "classic", "default")),
    ".venv/bin/targetbench sweep smoke --backend local --workers 2": Smoke(
        ".venv/bin/targetbench sweep smoke --backend local --workers 2 --results {results}",
        _says("smoke: done 0, diverged 0, skipped 4")),  # make benchmark SUITE=smoke ran these trials
    ".venv/bin/targetbench analyze --experiment benchmark-default": Smoke(
        ".venv/bin/targetbench analyze --experiment sweep-smoke --reps 100 --results {results}",
        _exists("results/report.md")),
    ".venv/bin/targetbench figure curves --experiment benchmark-default --agents dqn,isql,agt2-dqn --style paper":
        Smoke(".venv/bin/targetbench figure curves --experiment sweep-smoke --agents dqn,dqn-soft --style paper "
              "--reps 100 --results {results}", _exists("results/figures/curves.pdf", "results/figures/curves.csv")),
    "make figures": Smoke("make figures RESULTS={results} EXPERIMENT=sweep-smoke REPS=100",
                          _exists("results/figures/aggregates.png")),
    ".venv/bin/targetbench reproduce cartpole_dqn_ablation --quick": Smoke(
        ".venv/bin/targetbench reproduce cartpole_dqn_ablation --quick --steps 400 --seeds 0,1 --reps 100 --quiet "
        "--results {results}", _exists("results/tables/reproduce-cartpole_dqn_ablation-quick.md")),
    "targetbench push --results results": Smoke(".venv/bin/targetbench push --results {results}"),
    # the store the runs above were recorded in, named explicitly (a server's URI works the same way)
    "targetbench push --results RESULTS --tracking-uri URI": Smoke(
        ".venv/bin/targetbench push --results {results} --tracking-uri sqlite:///{results}/mlflow.db"),
    # one part trained at a smoke budget, then every file regenerated from that store without training
    "make results": Smoke(
        "make results PART=classic STEPS=300 SEEDS=0 AGENTS=dqn ENVS=CartPole-v1 REPS=100 RESULTS={results} "
        "OUT={ws}/docs-results && make results NO_RUN=1 RESULTS={results} RUNS={ws}/docs-results/runs "
        "OUT={ws}/docs-results-again REPS=100",
        _exists("docs-results/classic_control.csv", "docs-results/README.md",
                "docs-results-again/classic_control.csv")),
    "make ui": Smoke("ui"),  # a server: started on a free port, asked for its page, stopped (test_make_ui)
    # Atari under published protocols, at a smoke budget (no learning: a few hundred agent steps of ALE)
    ".venv/bin/targetbench run --agent dqn --env ALE/Pong-v5 --seed 0-4 --set env.protocol=dopamine": Smoke(
        ".venv/bin/targetbench run --agent dqn --env ALE/Pong-v5 --seed 0 --set env.protocol=dopamine --steps 200 "
        "--set train.eval_every=200 --set train.eval_episodes=1 --set train.eval_max_steps=100 --quiet --json "
        "--results {results}", _json_lines(("final_eval_return", "trial_hash"), 1)),
    ".venv/bin/targetbench run --agent isql --env ALE/Breakout-v5 --set env.protocol=atari-100k": Smoke(
        ".venv/bin/targetbench run --agent isql --env ALE/Breakout-v5 --set env.protocol=atari-100k --steps 200 "
        "--quiet --json --results {results}", _json_lines(("final_eval_return", "trial_hash"), 1),
        slow=True),  # the protocol fixes its evaluation (100 episodes): about 2 min on 2 cores
    # without CUDA it says so and exits 0 (a GPU node runs the real check)
    "make gpu-check": Smoke("make gpu-check", _says("skipped")),
    # every file of docs/results again from its per-run data alone, with no tracking store
    "make results NO_RUN=1 OUT=DIR": Smoke("make results NO_RUN=1 OUT={ws}/regenerated RESULTS={ws}/no-store",
                                           _exists("regenerated/README.md")),
}

RESOLVED = {
    "targetbench run --agent agt2-dqn --env CartPole-v1 --seed 0-5 --steps 20000 --set beta=B": {"B": "0.01"},
    "targetbench run --agent eaudeqn --env CartPole-v1 --seed 0,1 --steps 30000 --set prune_fraction=D":
        {"D": "0.03"},
    "targetbench run --agent isql --env CartPole-v1 --steps 50000 --set layer_norm=false --set loss=huber --set "
    "learning_rate=5e-4": {},
    "targetbench run --agent sgt2-dqn --env CartPole-v1 --set learning_rate=5e-4": {},
}

NAMES = {
    "targetbench", "targetbench run", "targetbench agents", "targetbench envs",
    "targetbench agents --json",  # its first line is checked by the `| head -1` entry
    "targetbench analyze", "targetbench run --seed 0,1,2,...",
    "targetbench push --checkpoint-dir",
    "targetbench sweep SUITE [--backend local|ray] [--workers N] [--dry-run] [--json]",
    "targetbench analyze --experiment NAME [--reps N | --publication] [--engine fast|rliable]",
    "targetbench reproduce cartpole_dqn_ablation|minatar_v1_dqn_ablation|dopamine_dqn [--quick]",
    "make results PART=classic|sensitivity|tuned|cartpole|minatar",
    "make benchmark SUITE=smoke RESULTS=<tmp>",  # what the `make benchmark` entry runs
    "targetbench analyze --engine fast|rliable", "targetbench convergence", "targetbench push", "targetbench sweep",
    "targetbench analyze --reference", "targetbench verify",
    "targetbench figure KIND --experiment NAME [--agents A,B] [--envs E,F] [--style default|paper|slides] "
    "[--out DIR] [--smooth N] [--layout auto|overlay|agents|groups] [--width column|text]",
}

EXAMPLES = {
    "targetbench run --agent dqn --env corridor/8 --set env.slip=0":
        "tests/test_readme.py::test_readme_family_example_registers_and_trains",
    **dict.fromkeys((
        ".venv/bin/targetbench run --agent dqn-soft --env Acrobot-v1 --seed 0-9 --set tau=0.01 --experiment mine --quiet",
        ".venv/bin/targetbench analyze --experiment mine --reference docs/results --out results/mine",
        ".venv/bin/targetbench seeds --reference docs/results --agent agt2-dqn --baseline dqn",
        ".venv/bin/targetbench verify --agent dqn --env Acrobot-v1 --sample 2"),
        "tests/test_readme.py::test_readme_compare_without_rerunning_the_baselines (against tests/data/reference)"),
}

EXEMPT = {
    "make test": "the test run itself (CI runs it through .ci/run)",
    "make test-all": "the default tests plus the slow learning checks (tens of minutes)",
    "make bench": "speed measurements side by side with Stable-Baselines3 (about 20 minutes on 2 cores)",
    "make bench BEFORE=DIR": "the same speed measurements with a second checkout's code added to the run",
    "make benchmark SUITE=atari BACKEND=ray": "Atari on a Ray cluster of GPU nodes",
    "make benchmark SUITE=atari BACKEND=ray CHECKPOINT_URI=...": "Atari on a Ray cluster of GPU nodes",
    "targetbench push --results RESULTS --tracking-uri http://MLFLOW:5000": "a cluster's tracking server "
    "(docs/cluster.md)",
    "make faults": "the whole fault set, run by CI after `make test` (.ci/run)",
    "targetbench push --checkpoint-uri tracking --tracking-uri http://MLFLOW:5000 --experiment sweep-atari":
        "a cluster's tracking server",
    "mlflow server --host 0.0.0.0 --port 5000 --backend-store-uri sqlite:////srv/mlflow/mlflow.db "
    "--artifacts-destination /srv/mlflow/artifacts": "a tracking server on a cluster's head node",
    "ray start --head --port 6379 --num-cpus 0": "a Ray cluster's head node",
    "export TARGETBENCH_NODE_DIR=/local/scratch/targetbench": "a Ray cluster node's setting",
    "ray start --address HEAD:6379": "a Ray cluster's GPU node",
    "targetbench sweep atari --backend ray --dry-run": "needs a Ray cluster to plan against",
    "targetbench reproduce dopamine_dqn": "dqn on the Atari-5 games at 50M steps, a GPU cluster's work (its --quick "
                                          "smoke run is tests/suite/test_dopamine_reproduce.py)",
    "targetbench sweep atari --backend ray --ray-address HEAD:6379 --tracking-uri http://MLFLOW:5000 "
    "[--checkpoint-uri tracking]": "Atari on a Ray cluster of GPU nodes",
}


def test_every_shown_command_is_accounted_for():
    shown = shown_commands()
    accounted = set(RUN) | NAMES | set(EXAMPLES) | set(RESOLVED) | set(EXEMPT)
    missing = sorted(c for c in shown if c not in accounted)
    assert not missing, f"commands shown in the docs with no entry in tests/test_readme_commands.py: {missing}"
    stale = sorted(c for c in accounted if c not in shown)
    assert not stale, f"entries for commands the docs no longer show: {stale}"
    groups = [set(RUN), NAMES, set(EXAMPLES), set(RESOLVED), set(EXEMPT)]
    assert sum(map(len, groups)) == len(set().union(*groups)), "a command is in two of the groups"


def test_readme_lists_the_commands_the_tests_do_not_run():
    text = (ROOT / "README.md").read_text()
    section = text.split("### Commands the tests do not run\n", 1)[1].split("\n#", 1)[0]
    listed = set(re.findall(r"`([^`]+)`", section))
    for cmd, file in shown_commands().items():
        if cmd in EXEMPT and file == "README.md":
            assert cmd in listed, f"{cmd!r} is not run by the tests: list it (and why) in the README"


@pytest.mark.parametrize("shown", sorted(RESOLVED))
def test_tuning_command_resolves(shown):
    """The command's flags parse and its trial resolves (agent, env, seeds, steps, every --set validated)."""
    from suite.cli import build_parser
    from suite.trial import build_trial, parse_overrides, parse_seeds

    words = shown.split()
    words = [w if "=" not in w else w.split("=")[0] + "=" + RESOLVED[shown].get(w.split("=", 1)[1], w.split("=", 1)[1])
             for w in words]
    args = build_parser().parse_args(words[1:])
    assert args.command == "run"
    build_trial(args.agent, args.env, parse_seeds(args.seed), steps=args.steps, overrides=parse_overrides(args.set))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("readme")
    (ws / ".venv").symlink_to(ROOT / ".venv")
    return ws


def _run(cmd: str, ws: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    cwd = ROOT if cmd.startswith("make ") else ws
    text = cmd.format(results=ws / "results", ws=ws)
    return subprocess.run(["bash", "-c", text], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("shown", [pytest.param(c, marks=[pytest.mark.slow] if RUN[c].slow else [])
                                   for c in RUN if RUN[c].cmd != "ui"])
def test_shown_command_runs(shown, workspace):
    smoke = RUN[shown]
    proc = _run(smoke.cmd, workspace)
    assert proc.returncode in smoke.rc, (f"{smoke.cmd!r} ended with {proc.returncode}:\n"
                                         f"{(proc.stdout + proc.stderr)[-2000:]}")
    smoke.check(proc, workspace)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_ui(workspace):
    """`make ui` serves the MLflow UI on loopback for the embedded store (here on a free port)."""
    port = _free_port()
    results = workspace / "ui-results"
    proc = subprocess.Popen(["make", "ui", f"RESULTS={results}", f"UI_PORT={port}"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline, last = time.time() + 120, None
        while time.time() < deadline:
            assert proc.poll() is None, f"make ui stopped: {proc.stderr.read().decode()[-500:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.status == 200
                    return
            except OSError as exc:
                last = exc
                time.sleep(1)
        pytest.fail(f"make ui did not answer on port {port}: {last}")
    finally:
        import os
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
