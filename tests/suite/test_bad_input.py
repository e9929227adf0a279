"""Issue #7 "Bad input": one table of malformed inputs across every `targetbench` subcommand.

Each row names a command line (or a setup function that writes the bad file and returns the command line),
the documented exit code and a regex the single stderr line must match (it names the bad value). For every
row: the exit code is the documented one, stderr is exactly one line ``targetbench: error: ...`` (library
warnings and log records count as lines), there is no traceback unless ``--debug``, and nothing already
recorded changes: rows that point at the shared results folder (a real small `targetbench run` made once per
module) are followed by a check that its files are byte-identical and its MLflow experiments, runs, params,
tags and metric histories read back unchanged.

Most rows run in-process through :func:`suite.cli.main` (fast); a few run the real console process
(``python -m suite``) to catch output that only a fresh process shows. Disk full is simulated by a patched
``open`` that fails with ENOSPC after writing part of the bytes, and, when running as root, by a real tiny
tmpfs.
"""
from __future__ import annotations

import builtins
import errno
import hashlib
import io
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
import yaml

from suite.cli import main
from suite.errors import EXIT_CODES

# A row that wrongly starts real work (a sweep, a long training run) must fail fast, not hang the suite.
pytestmark = [pytest.mark.fault, pytest.mark.timeout(120)]

# One short, cheap trial: two evaluations and two checkpoints (steps 150 and 300).
TINY = ["--steps", "300", "--set", "learning_starts=50", "--set", "train.eval_every=150", "--set",
        "train.eval_episodes=1", "--set", "hidden_sizes=16", "--set", "batch_size=16"]
RUN = ["run", "--agent", "dqn", "--env", "CartPole-v1", *TINY]
SUITE = {"name": "t", "agents": ["dqn"], "envs": ["CartPole-v1"], "seeds": [0], "steps": 100}
COMMANDS = ("run", "sweep", "convergence", "analyze", "reproduce", "agents", "envs")


# --------------------------------------------------------------------------------------------- the table


@dataclass
class Ctx:
    """What a row's setup function gets."""

    shared: Path  # the real results folder made once per module (snapshot-checked after shared rows)
    tmp: Path  # this row's own folder
    port: int  # a closed TCP port on 127.0.0.1
    monkeypatch: pytest.MonkeyPatch
    checks: list[Callable[[], None]] = field(default_factory=list)  # extra checks after the command
    cleanups: list[Callable[[], None]] = field(default_factory=list)


@dataclass(frozen=True)
class Row:
    id: str
    category: str
    argv: list[str] | Callable[[Ctx], list[str]]  # "{shared}", "{tmp}", "{port}" are filled in
    code: int
    pattern: str  # must match (re.search) the one stderr line
    proc: bool = False  # run as a real `python -m suite` process
    debug: bool = False  # also check that --debug shows a traceback
    needs_non_root: bool = False


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


def suite_file(data: Any, raw: bool = False) -> Callable[[Ctx], list[str]]:
    """`targetbench sweep FILE` on a suite file with this content (raw: written as given)."""
    def setup(c: Ctx) -> list[str]:
        text = data if raw else yaml.safe_dump(data)
        return ["sweep", str(_write(c.tmp / "suite.yaml", text)), "--results", str(c.shared)]
    return setup


def _mdp_arrays(**changes: Any) -> dict[str, Any]:
    P = np.full((3, 2, 3), 1 / 3)
    arrays: dict[str, Any] = {"P": P, "R": np.zeros((3, 2)), "gamma": np.float64(0.9)}
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


def npz(command: str, **changes: Any) -> Callable[[Ctx], list[str]]:
    """An .npz MDP with ``changes`` (None drops an array), used by `convergence --mdp` or `run --env tabular/`."""
    def setup(c: Ctx) -> list[str]:
        path = c.tmp / "bad.npz"
        np.savez(path, **_mdp_arrays(**changes))
        return _npz_argv(command, path, c)
    return setup


def npz_bytes(command: str, content: bytes | None) -> Callable[[Ctx], list[str]]:
    """A file named bad.npz with these bytes (None: no file at all)."""
    def setup(c: Ctx) -> list[str]:
        path = c.tmp / "bad.npz"
        if content is not None:
            _write(path, content)
        return _npz_argv(command, path, c)
    return setup


def _npz_argv(command: str, path: Path, c: Ctx) -> list[str]:
    if command == "convergence":
        return ["convergence", "--mdp", str(path), "--json", "--steps", "10", "--runs", "1"]
    return ["run", "--agent", "dqn", "--env", f"tabular/{path}", *TINY, "--results", str(c.shared)]


def _shared_checkpoint(c: Ctx) -> Path:
    (path,) = (c.shared / "checkpoints").glob("*.pt")
    return path


def _checkpoint_path(argv: list[str], folder: Path) -> Path:
    """Where the trainer looks for the checkpoint of this `run` command line (agent-env-grouphash.pt)."""
    from suite.cli import build_parser
    from suite.trial import build_trial, parse_overrides, parse_seeds

    a = build_parser().parse_args(argv)
    t = build_trial(a.agent, a.env, parse_seeds(a.seed), steps=a.steps, overrides=parse_overrides(a.set or []))
    try:
        from suite.trainer import checkpoint_path
    except ImportError:  # older trainer: the same rule, spelled out
        return folder / f"{t.agent}-{t.env.replace('/', '_').replace(':', '_')}-{t.group_hash()}.pt"
    return checkpoint_path(t, folder)


def resume_with(make: Callable[[Ctx, bytes], bytes], agent: str = "dqn", extra: tuple[str, ...] = ()
                ) -> Callable[[Ctx], list[str]]:
    """`run --resume` into the shared results folder with a bad checkpoint in a private checkpoint folder.

    ``make(ctx, good_bytes)`` returns the bad file's bytes; it is placed where the trainer looks for this
    command's checkpoint, and must still be there, unchanged, afterwards.
    """
    def setup(c: Ctx) -> list[str]:
        argv = ["run", "--agent", agent, "--env", "CartPole-v1", *TINY, *extra]
        path = _checkpoint_path(argv, c.tmp / "ck")
        data = make(c, _shared_checkpoint(c).read_bytes())
        _write(path, data)
        c.checks.append(lambda: _assert(path.read_bytes() == data, f"bad checkpoint {path} was changed"))
        return [*argv, "--results", str(c.shared), "--checkpoint-dir", str(path.parent), "--resume", "--quiet"]
    return setup


def _torch_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class _Evil:
    """Unpickling this would run a shell command: a checkpoint must be refused, never executed."""

    marker: str = ""

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


def _evil_checkpoint(c: Ctx, good: bytes) -> bytes:
    marker = c.tmp / "pwned"
    evil = _Evil()
    evil.marker = str(marker)
    c.checks.append(lambda: _assert(not marker.exists(), "loading the checkpoint ran code"))
    return _torch_bytes({"format_version": 1, "trial_hash": "x", "payload": evil})


def _trial_hash(good: bytes) -> str:
    return torch.load(io.BytesIO(good), weights_only=True)["trial_hash"]


def _incomplete_checkpoint(c: Ctx, good: bytes) -> bytes:
    # The right format and trial, but the training state is missing (a hand-edited or half-migrated file).
    state = torch.load(io.BytesIO(good), weights_only=True)
    return _torch_bytes({"format_version": state["format_version"], "trial_hash": state["trial_hash"],
                         "step": state["step"]})


def blocked(flag: str, *rest: str, sub: str = "r") -> Callable[[Ctx], list[str]]:
    """``flag`` points below a regular file, so the folder cannot be created (works as root too)."""
    def setup(c: Ctx) -> list[str]:
        blocker = _write(c.tmp / "file", "x")
        return [*(a.format(shared=c.shared) for a in rest), flag, str(blocker / sub if sub else blocker)]
    return setup


def read_only_results(c: Ctx) -> list[str]:
    folder = c.tmp / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    c.cleanups.append(lambda: folder.chmod(0o700))
    return [*RUN, "--results", str(folder)]


class _FullFile:
    """A file on a full disk: each write stores part of its bytes, then fails with ENOSPC, like write(2)."""

    def __init__(self, f: Any) -> None:
        self._f = f

    def write(self, data: Any) -> int:
        if not isinstance(data, str):
            data = memoryview(data).cast("B")
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> "_FullFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._f.close()


def fill_disk(monkeypatch: pytest.MonkeyPatch, folder: Path, after: int = 0) -> None:
    """Files opened for writing under ``folder`` (after the first ``after`` of them) are on a full disk.

    Patches ``io.open`` (used by pathlib and ``os.fdopen``) and ``builtins.open`` (matplotlib, PIL).
    """
    real, root, opened = io.open, os.path.realpath(folder), [0]

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        f = real(file, mode, *args, **kwargs)
        if any(ch in mode for ch in "wax+"):
            where = os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else os.fspath(file)
            if isinstance(where, str) and os.path.realpath(where).startswith(root + os.sep):
                opened[0] += 1
                if opened[0] > after:
                    return _FullFile(f)
        return f

    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(builtins, "open", fake_open)


def _check_kept_checkpoint(results: Path, ck: Path) -> None:
    """After a failed second checkpoint write: the first (step 150) is intact, no temp file is left, and the
    runs are recorded as failed with their step-150 evaluation."""
    from mlflow import MlflowClient

    from suite.checkpoint import load_checkpoint

    (path,) = ck.iterdir()  # nothing else: the temp file of the failed write is gone
    state = load_checkpoint(path, path.stem.rsplit("-", 1)[1])
    _assert(state["step"] == 150, f"checkpoint step {state['step']}, expected the good one at 150")
    client = MlflowClient(f"sqlite:///{results}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("disk-full").experiment_id])
    _assert(run.info.status == "FAILED", f"run status {run.info.status}")
    history = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "eval/return_mean")]
    _assert([s for s, _ in history] == [150], f"eval history {history}")


def _private_results(c: Ctx) -> list[str]:
    """A results folder of this row's own (the failed run adds its runs, marked failed), starting from a copy
    of the shared store: a fresh store would spend seconds on MLflow's schema migrations."""
    results = _mkdir(c.tmp / "res")
    shutil.copy(c.shared / "mlflow.db", results / "mlflow.db")
    return ["--results", str(results), "--experiment", "disk-full"]


def disk_full_checkpoint(c: Ctx) -> list[str]:
    ck = c.tmp / "ck"
    fill_disk(c.monkeypatch, ck, after=1)  # the step-150 checkpoint is written, the step-300 one hits ENOSPC
    c.checks.append(lambda: _check_kept_checkpoint(c.tmp / "res", ck))
    return [*RUN, *_private_results(c), "--checkpoint-dir", str(ck), "--quiet"]


def disk_full_results(c: Ctx) -> list[str]:
    """Training and checkpoints succeed; the run's artifacts (written under the results folder) hit ENOSPC.
    The final checkpoint stays complete, so `--resume` can finish the records once there is space."""
    ck = c.tmp / "ck"
    argv = [*RUN, *_private_results(c), "--checkpoint-dir", str(ck), "--quiet"]
    fill_disk(c.monkeypatch, c.tmp / "res")

    def check() -> None:
        from suite.checkpoint import load_checkpoint

        (path,) = ck.iterdir()
        _assert(load_checkpoint(path, path.stem.rsplit("-", 1)[1])["step"] == 300, "final checkpoint lost")
    c.checks.append(check)
    return argv


def tiny_tmpfs_checkpoint(c: Ctx) -> list[str]:
    """A real tiny tmpfs as the checkpoint folder, 1.5 times the size of this trial's final checkpoint (the
    shared folder's): the step-150 checkpoint fits, but not the step-300 one next to it, which the atomic
    writer needs (temp file + rename) to replace it. A writer that overwrote in place would not fail here."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    pages = -(-_shared_checkpoint(c).stat().st_size // 4096)
    ck = c.tmp / "ck"
    ck.mkdir()
    size = f"size={4 * (pages + max(2, pages // 2))}k"
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", size, "tmpfs", str(ck)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    c.cleanups.append(lambda: subprocess.run(["umount", str(ck)], check=True))
    c.checks.append(lambda: _check_kept_checkpoint(c.tmp / "res", ck))
    return [*RUN, *_private_results(c), "--checkpoint-dir", str(ck), "--quiet"]


def disk_full_under(sub: str, argv: list[str]) -> Callable[[Ctx], list[str]]:
    def setup(c: Ctx) -> list[str]:
        fill_disk(c.monkeypatch, c.tmp / sub)
        return argv
    return setup


def disk_full_cache(c: Ctx) -> list[str]:
    """`analyze` caches what it reads under RESULTS/cache: that write hits ENOSPC (a copy of the shared store, as
    the cache lives in the results folder)."""
    results = _mkdir(c.tmp / "res")
    shutil.copy(c.shared / "mlflow.db", results / "mlflow.db")
    fill_disk(c.monkeypatch, results / "cache")
    return ["analyze", "--results", str(results), "--out", str(c.tmp / "out"), "--no-figures", "--reps", "100"]


NOSPACE = r"No space left on device"

ROWS = [
    # ---- unknown names: agent, env, suite, suite key, variant, table, rule, experiment, subcommand, flag
    Row("run-unknown-agent", "unknown-name", ["run", "--agent", "dqm", "--env", "CartPole-v1", "--results", "{shared}"],
        2, r"unknown agent 'dqm'; registered: .*\bdqn\b", proc=True, debug=True),
    Row("run-unknown-env", "unknown-name", [*RUN[:3], "--env", "CartPol-v1", *TINY, "--results", "{shared}"], 2,
        r"unknown environment 'CartPol-v1'.*did you mean 'CartPole-v1'"),
    Row("run-unknown-atari-game", "unknown-name", [*RUN[:3], "--env", "ALE/Pongg-v5", "--results", "{shared}"], 2,
        r"unknown environment 'ALE/Pongg-v5'"),
    Row("run-unknown-minatar-game", "unknown-name", [*RUN[:3], "--env", "MinAtar/pacman", "--results", "{shared}"], 2,
        r"unknown environment 'MinAtar/pacman'"),
    Row("run-unknown-config-key", "unknown-name", [*RUN, "--set", "learning_rat=1", "--results", "{shared}"], 2,
        r"unknown config key 'learning_rat'.*allowed: .*learning_rate"),
    Row("run-unknown-train-key", "unknown-name", [*RUN, "--set", "train.foo=1", "--results", "{shared}"], 2,
        r"unknown config key 'train\.foo' for TrainConfig; allowed: .*train\.eval_every"),
    Row("run-unknown-env-option", "unknown-name", [*RUN, "--set", "env.sticky=1", "--results", "{shared}"], 2,
        r"unknown config key 'env\.sticky' for CartPole-v1; allowed: env\.max_episode_steps"),
    Row("sweep-unknown-suite", "unknown-name", ["sweep", "nosuch-suite", "--results", "{shared}"], 2,
        r"unknown suite 'nosuch-suite'; allowed: .*smoke"),
    Row("sweep-unknown-suite-key", "unknown-name", suite_file({**SUITE, "bogus": 1}), 2,
        r"suite file .*suite\.yaml: key 'bogus' is unknown; allowed: .*agents"),
    Row("sweep-unknown-agent-in-suite", "unknown-name", suite_file({**SUITE, "agents": ["dqn", "nope"]}), 2,
        r"key 'agents' names unknown agent 'nope'"),
    Row("sweep-unknown-env-in-suite", "unknown-name", suite_file({**SUITE, "envs": ["CartPole-v9"]}), 2,
        r"key 'envs' names unknown env 'CartPole-v9'"),
    Row("sweep-variant-unknown-agent", "unknown-name",
        suite_file({**SUITE, "variants": [{"name": "x", "agents": ["dqn-soft"]}]}), 2,
        r"key 'variants\[0\]\.agents' names 'dqn-soft', which is not one of the suite's agents"),
    Row("sweep-variant-unknown-key", "unknown-name",
        suite_file({**SUITE, "variants": [{"name": "x", "overides": {"tau": 1}}]}), 2,
        r"key 'variants\[0\]\.overides' is unknown"),
    Row("sweep-variant-unknown-override", "unknown-name",
        suite_file({**SUITE, "variants": [{"name": "x", "overrides": {"target_perod": 5}}]}), 2,
        r"target_perod"),
    Row("sweep-set-unknown-key", "unknown-name", ["sweep", "smoke", "--set", "learning_rat=1", "--results", "{shared}"],
        2, r"unknown config key 'learning_rat'"),
    Row("reproduce-unknown-table", "unknown-name", ["reproduce", "nosuch_table", "--results", "{shared}"], 2,
        r"unknown table 'nosuch_table'; allowed: cartpole_dqn_ablation"),
    Row("reproduce-not-yet-table", "unknown-name", ["reproduce", "cleanrl_dqn", "--results", "{shared}"], 2,
        r"table 'cleanrl_dqn' cannot be reproduced yet"),
    Row("analyze-unknown-engine", "unknown-name", ["analyze", "--results", "{shared}", "--engine", "scipy"], 2,
        r"--engine: invalid choice: 'scipy' \(choose from '?fast'?, '?rliable'?\)"),
    Row("analyze-unknown-experiment", "unknown-name",
        ["analyze", "--results", "{shared}", "--experiment", "nosuch-exp", "--no-figures"], 2, r"'nosuch-exp'"),
    Row("convergence-unknown-rule", "unknown-name", ["convergence", "--mdp", "chain:5", "--rules", "hard,nope", "--json"],
        2, r"unknown rule\(s\) 'nope'; allowed: .*hard"),
    Row("convergence-bad-mdp-spec", "unknown-name", ["convergence", "--mdp", "random:5,2", "--json"], 2,
        r"bad MDP spec 'random:5,2'"),
    Row("unknown-subcommand", "unknown-name", ["fly"], 2, r"invalid choice: 'fly'"),
    Row("agents-unknown-flag", "unknown-name", ["agents", "--jsn"], 2, r"unrecognized arguments: --jsn"),
    Row("envs-unknown-flag", "unknown-name", ["envs", "--family", "x"], 2, r"unrecognized arguments: --family x"),

    # ---- wrong types
    Row("run-steps-not-int", "wrong-type", [*RUN[:5], "--steps", "ten", "--results", "{shared}"], 2,
        r"--steps: invalid int value: 'ten'"),
    Row("run-gamma-not-float", "wrong-type", [*RUN, "--set", "gamma=x", "--results", "{shared}"], 2,
        r"gamma='x' is not valid; allowed: float"),
    Row("run-threads-not-int", "wrong-type", [*RUN, "--set", "train.threads=two", "--results", "{shared}"], 2,
        r"train.threads='two' is not valid; allowed: auto or an integer >= 0"),
    Row("run-seed-not-int", "wrong-type", [*RUN, "--seed", "a,b", "--results", "{shared}"], 2,
        r"--seed 'a,b' is not valid"),
    Row("run-hidden-sizes-not-ints", "wrong-type", [*RUN, "--set", "hidden_sizes=a,b", "--results", "{shared}"], 2,
        r"hidden_sizes='a,b' is not valid"),
    Row("run-optimizer-not-a-choice", "wrong-type", [*RUN, "--set", "optimizer=adamax", "--results", "{shared}"], 2,
        r"optimizer='adamax' is not valid; allowed: adam \| adamw \| rmsprop-centered \| sgd"),
    Row("run-amsgrad-not-bool", "wrong-type", [*RUN, "--set", "amsgrad=maybe", "--results", "{shared}"], 2,
        r"amsgrad='maybe' is not valid; allowed: bool"),
    Row("run-env-option-not-int", "wrong-type", [*RUN, "--set", "env.max_episode_steps=abc", "--results", "{shared}"],
        2, r"env\.max_episode_steps='abc' is not valid"),
    Row("run-set-without-value", "wrong-type", [*RUN, "--set", "learning_rate", "--results", "{shared}"], 2,
        r"--set 'learning_rate' is not valid; allowed: key=value"),
    Row("sweep-workers-not-int", "wrong-type", ["sweep", "smoke", "--workers", "two", "--results", "{shared}"], 2,
        r"--workers: invalid int value: 'two'"),
    Row("sweep-suite-steps-not-int", "wrong-type", suite_file({**SUITE, "steps": "many"}), 2,
        r"key 'steps' is 'many'; allowed: an integer"),
    Row("sweep-suite-agents-not-list", "wrong-type", suite_file({**SUITE, "agents": 5}), 2,
        r"key 'agents' is int; allowed: all, a list"),
    Row("sweep-suite-not-a-mapping", "wrong-type", suite_file(["dqn", "CartPole-v1"]), 2,
        r"suite\.yaml: the file must be a mapping"),
    Row("convergence-steps-not-int", "wrong-type", ["convergence", "--mdp", "chain:5", "--steps", "1.5"], 2,
        r"--steps: invalid int value: '1\.5'"),
    Row("analyze-reps-not-int", "wrong-type", ["analyze", "--results", "{shared}", "--reps", "x"], 2,
        r"--reps: invalid int value: 'x'"),
    Row("analyze-pair-malformed", "wrong-type", ["analyze", "--results", "{shared}", "--pair", "dqn"], 2,
        r"--pair 'dqn' is not valid; allowed: X:Y"),
    Row("reproduce-seeds-not-ints", "wrong-type", ["reproduce", "cartpole_dqn_ablation", "--seeds", "x",
                                                   "--results", "{shared}"], 2, r"--seeds 'x' is not valid"),

    # ---- out-of-range values
    Row("run-learning-rate-negative", "out-of-range", [*RUN, "--set", "learning_rate=-1", "--results", "{shared}"], 2,
        r"learning_rate=-1\.0 is out of range; allowed: \(0, inf\)", debug=True),
    Row("run-weight-decay-negative", "out-of-range", [*RUN, "--set", "weight_decay=-0.01", "--results", "{shared}"],
        2, r"weight_decay=-0\.01 is out of range; allowed: \[0, inf\)"),
    Row("run-max-grad-value-zero", "out-of-range", [*RUN, "--set", "max_grad_value=0", "--results", "{shared}"], 2,
        r"max_grad_value=0\.0 is out of range; allowed: \(0, inf\)"),
    Row("run-amsgrad-with-sgd", "out-of-range",
        [*RUN, "--set", "optimizer=sgd", "--set", "amsgrad=true", "--results", "{shared}"], 2,
        r"amsgrad=True is not valid with optimizer='sgd'; allowed: optimizer adam \| adamw"),
    Row("run-gamma-above-one", "out-of-range", [*RUN, "--set", "gamma=1.5", "--results", "{shared}"], 2,
        r"gamma=1\.5 is out of range; allowed: \[0, 1\)"),
    Row("run-steps-zero", "out-of-range", [*RUN, "--steps", "0", "--results", "{shared}"], 2,
        r"--steps 0 is not valid; allowed: a positive integer"),
    Row("run-seed-negative", "out-of-range", [*RUN, "--seed", "-1", "--results", "{shared}"], 2,
        r"--seed '-1' is not valid; allowed: distinct non-negative"),
    Row("run-seed-duplicate", "out-of-range", [*RUN, "--seed", "1,1", "--results", "{shared}"], 2,
        r"--seed '1,1' is not valid; allowed: distinct"),
    Row("run-kernels-unknown", "unknown-name", [*RUN, "--set", "train.kernels=jax", "--results", "{shared}"], 2,
        r"train.kernels='jax' is not valid; allowed: auto, torch"),
    Row("run-eval-episodes-zero", "out-of-range", [*RUN, "--set", "train.eval_episodes=0", "--results", "{shared}"],
        2, r"eval_episodes=0 is out of range"),
    Row("run-max-episode-steps-negative", "out-of-range",
        [*RUN, "--set", "env.max_episode_steps=-5", "--results", "{shared}"], 2, r"max_episode_steps=-5"),
    Row("run-tau-above-one", "out-of-range", ["run", "--agent", "dqn-soft", "--env", "CartPole-v1", "--set", "tau=2",
                                              "--results", "{shared}"], 2, r"tau=2\.0 is out of range"),
    # Memory is checked before it is spent: 100k seeds of a 4096-wide MLP need tens of TiB anywhere.
    Row("run-seeds-beyond-memory", "out-of-range", [*RUN, "--seed", "0-99999", "--set", "hidden_sizes=4096,4096",
                                                    "--results", "{shared}"], 2,
        r"100000 seeds of dqn on CartPole-v1 need about [\d.]+ GiB of RAM .*, but [\d.]+ GiB is available; "
        r"allowed: at most about \d+ seeds per run here"),
    Row("run-batch-larger-than-buffer", "out-of-range", [*RUN, "--set", "buffer_size=8", "--results", "{shared}"], 2,
        r"batch_size=16 is larger than buffer_size=8"),
    Row("sweep-workers-zero", "out-of-range", ["sweep", "smoke", "--workers", "0", "--results", "{shared}"], 2,
        r"--workers 0 is not valid; allowed: a positive integer"),
    Row("sweep-num-gpus-negative", "out-of-range", ["sweep", "smoke", "--num-gpus", "-1", "--results", "{shared}"], 2,
        r"--num-gpus -1 is not valid"),
    Row("sweep-store-wait-negative", "out-of-range", ["sweep", "smoke", "--store-wait", "-1", "--results", "{shared}"],
        2, r"--store-wait: '-1' is not valid; allowed: seconds >= 0"),
    Row("sweep-suite-seeds-negative", "out-of-range", suite_file({**SUITE, "seeds": -1}), 2, r"key 'seeds' is -1"),
    Row("sweep-suite-retries-fraction", "out-of-range", suite_file({**SUITE, "retries": 1.5}), 2,
        r"key 'retries' is 1\.5; allowed: an integer >= 0"),
    Row("convergence-runs-zero", "out-of-range", ["convergence", "--mdp", "chain:5", "--runs", "0", "--json"], 2,
        r"runs=0 is out of range; allowed: \[1, inf\)"),
    Row("convergence-epsilon-above-one", "out-of-range",
        ["convergence", "--mdp", "chain:5", "--epsilon", "1.5", "--json"], 2,
        r"epsilon=1\.5 is out of range; allowed: \[0, 1\]"),
    Row("analyze-reps-too-few", "out-of-range", ["analyze", "--results", "{shared}", "--reps", "5"], 2,
        r"--reps 5 is not valid; allowed: an integer >= 100"),
    Row("reproduce-reps-too-few", "out-of-range", ["reproduce", "cartpole_dqn_ablation", "--reps", "5",
                                                   "--results", "{shared}"], 2, r"--reps 5 is not valid"),
    Row("reproduce-steps-zero", "out-of-range", ["reproduce", "cartpole_dqn_ablation", "--steps", "0",
                                                 "--results", "{shared}"], 2, r"--steps 0 is not valid"),
    Row("reproduce-workers-zero", "out-of-range", ["reproduce", "cartpole_dqn_ablation", "--workers", "0", "--quick",
                                                   "--results", "{shared}"], 2, r"--workers 0 is not valid"),

    # ---- missing or corrupt YAML
    Row("sweep-yaml-missing", "yaml", ["sweep", "{tmp}/missing.yaml", "--results", "{shared}"], 2,
        r"suite file .*missing\.yaml cannot be read: No such file or directory"),
    Row("sweep-yaml-corrupt", "yaml", suite_file("name: t\nagents: [dqn\nenvs: CartPole-v1\n", raw=True), 2,
        r"suite file .*suite\.yaml is not valid YAML"),
    Row("sweep-yaml-empty", "yaml", suite_file("", raw=True), 2, r"suite\.yaml: the file must be a mapping"),
    Row("sweep-yaml-binary", "yaml", suite_file(b"\x00\xff\xfe\x89PNG\r\n\x1a\n" * 4, raw=True), 2,
        r"suite file .*suite\.yaml is not valid YAML|suite file .*suite\.yaml is not a UTF-8 text file"),
    Row("sweep-yaml-python-tag", "yaml", suite_file("!!python/object/apply:os.system ['echo hi']\n", raw=True), 2,
        r"suite file .*suite\.yaml is not valid YAML"),
    Row("sweep-yaml-is-a-directory", "yaml", lambda c: ["sweep", str(_mkdir(c.tmp / "d.yaml")), "--results",
                                                        str(c.shared)], 2, r"d\.yaml cannot be read: Is a directory"),
    Row("sweep-yaml-missing-required-key", "yaml", suite_file({k: v for k, v in SUITE.items() if k != "envs"}), 2,
        r"key 'envs' is missing; allowed: required keys: name, agents, envs"),

    # ---- checkpoints given to --resume: corrupt, truncated, empty, of another agent or config, not ours
    Row("resume-corrupt-checkpoint", "checkpoint", resume_with(lambda c, good: b"not a checkpoint" * 100), 4,
        r"checkpoint .*\.pt is corrupt or not a TargetBench checkpoint", proc=True, debug=True),
    Row("resume-truncated-checkpoint", "checkpoint", resume_with(lambda c, good: good[: len(good) // 2]), 4,
        r"checkpoint .*\.pt is corrupt"),
    Row("resume-empty-checkpoint", "checkpoint", resume_with(lambda c, good: b""), 4, r"checkpoint .*\.pt is corrupt"),
    Row("resume-checkpoint-of-another-agent", "checkpoint", resume_with(lambda c, good: good, agent="dqn-soft"), 4,
        r"checkpoint .*dqn-soft-CartPole-v1-\w+\.pt belongs to trial '\w+', not '\w+' \(another agent"),
    Row("resume-checkpoint-of-another-config", "checkpoint",
        resume_with(lambda c, good: good, extra=("--set", "learning_rate=0.001")), 4,
        r"checkpoint .*\.pt belongs to trial '\w+', not '\w+'"),
    Row("resume-checkpoint-unknown-format", "checkpoint", resume_with(lambda c, good: _torch_bytes({"x": 1})), 4,
        r"checkpoint .*\.pt has an unknown format"),
    Row("resume-checkpoint-with-code", "checkpoint", resume_with(_evil_checkpoint), 4,
        r"checkpoint .*\.pt is corrupt or not a TargetBench checkpoint"),
    Row("resume-checkpoint-incomplete", "checkpoint", resume_with(_incomplete_checkpoint), 4,
        r"checkpoint .*\.pt is incomplete: missing .*run_ids"),
    Row("resume-checkpoint-without-state", "checkpoint",
        resume_with(lambda c, good: _torch_bytes({"format_version": 1, "trial_hash": _trial_hash(good)})), 4,
        r"checkpoint .*\.pt is incomplete: missing step"),

    # ---- .npz MDPs: bad shapes, non-stochastic or negative P, missing arrays, gamma out of range, not an npz
    Row("convergence-npz-bad-P-shape", "npz", npz("convergence", P=np.full((3, 2, 2), 0.5)), 2,
        r"bad\.npz: P has shape \(3, 2, 2\), must be \(S, A, S\)"),
    Row("convergence-npz-bad-R-shape", "npz", npz("convergence", R=np.zeros((2, 3))), 2,
        r"bad\.npz: R has shape \(2, 3\), must be \(S, A\) = \(3, 2\)"),
    Row("convergence-npz-not-stochastic", "npz", npz("convergence", P=np.full((3, 2, 3), 0.5)), 2,
        r"bad\.npz: P\[0, 0\] sums to 1\.5, rows of P must sum to 1", debug=True),
    Row("convergence-npz-negative-probability", "npz",
        npz("convergence", P=np.broadcast_to(np.array([1.5, -0.5, 0.0]), (3, 2, 3))), 2,
        r"bad\.npz: P\[0, 0, 1\] = -0\.5 is negative"),
    Row("convergence-npz-nan", "npz", npz("convergence", P=np.full((3, 2, 3), np.nan)), 2,
        r"bad\.npz: P\[0, 0, 0\] is nan, entries of P must be finite"),
    Row("convergence-npz-missing-arrays", "npz", npz("convergence", R=None, gamma=None), 2,
        r"bad\.npz: missing key\(s\) R, gamma"),
    Row("convergence-npz-gamma-one", "npz", npz("convergence", gamma=np.float64(1.0)), 2,
        r"bad\.npz: gamma = 1\.0 is out of range, gamma must be a real number in \[0, 1\)"),
    Row("convergence-npz-gamma-not-scalar", "npz", npz("convergence", gamma=np.array([0.9, 0.9])), 2,
        r"bad\.npz: gamma has shape \(2,\), must be a scalar"),
    Row("convergence-npz-object-array", "npz", npz("convergence", R=np.array([None, "x"], dtype=object)), 2,
        r"bad\.npz: cannot read as an \.npz archive"),
    Row("convergence-npz-not-a-zip", "npz", npz_bytes("convergence", b"PK\x03\x04 truncated zip"), 2,
        r"bad\.npz: cannot read as an \.npz archive"),
    Row("convergence-npz-missing-file", "npz", npz_bytes("convergence", None), 2, r"bad\.npz: no such file"),
    Row("run-tabular-npz-not-stochastic", "npz", npz("run", P=np.full((3, 2, 3), 0.5)), 2,
        r"'tabular/.*bad\.npz'.*P\[0, 0\] sums to 1\.5, rows of P must sum to 1"),
    Row("run-tabular-npz-bad-shape", "npz", npz("run", P=np.full((3, 3), 1 / 3)), 2,
        r"'tabular/.*bad\.npz'.*P has shape \(3, 3\)"),
    Row("run-tabular-npz-gamma-negative", "npz", npz("run", gamma=np.float64(-0.1)), 2,
        r"'tabular/.*bad\.npz'.*gamma = -0\.1 is out of range"),
    Row("run-tabular-npz-missing-file", "npz", npz_bytes("run", None), 2, r"'tabular/.*bad\.npz'.*no such file"),

    # ---- tracking store: unreachable server, unsupported scheme, unusable SQLite path
    Row("run-tracking-unreachable", "tracking", [*RUN, "--results", "{shared}", "--tracking-uri",
                                                 "http://127.0.0.1:{port}"], 3,
        r"tracking server http://127\.0\.0\.1:\d+ is unreachable", proc=True, debug=True),
    Row("run-tracking-unsupported-scheme", "tracking", [*RUN, "--results", "{shared}", "--tracking-uri", "ftp://x"], 3,
        r"tracking URI 'ftp://x' is not supported; allowed: sqlite:///PATH"),
    Row("run-tracking-sqlite-below-a-file", "tracking",
        lambda c: [*RUN, "--results", str(c.shared), "--tracking-uri",
                   f"sqlite:///{_write(c.tmp / 'file', 'x')}/m.db"], 3,
        r"tracking store sqlite:///.*/file/m\.db cannot be opened or written"),
    Row("sweep-tracking-unreachable", "tracking", lambda c: [*suite_file(SUITE)(c), "--tracking-uri",
                                                            f"http://127.0.0.1:{c.port}"], 3,
        r"tracking server http://127\.0\.0\.1:\d+ is unreachable"),
    Row("analyze-tracking-unreachable", "tracking", ["analyze", "--results", "{shared}", "--tracking-uri",
                                                     "http://127.0.0.1:{port}"], 3,
        r"tracking server http://127\.0\.0\.1:\d+ is unreachable"),
    Row("analyze-tracking-missing-db", "tracking", ["analyze", "--results", "{tmp}/none"], 2,
        r"tracking store sqlite:///.*none/mlflow\.db does not exist"),
    Row("reproduce-tracking-unreachable", "tracking", ["reproduce", "cartpole_dqn_ablation", "--no-run",
                                                       "--results", "{shared}", "--tracking-uri",
                                                       "http://127.0.0.1:{port}"], 3,
        r"tracking server http://127\.0\.0\.1:\d+ is unreachable"),

    # ---- unwritable results / output folders
    Row("run-results-below-a-file", "unwritable", blocked("--results", *RUN), 2,
        r"results folder .*/file/r cannot be created: Not a directory"),
    Row("run-results-read-only", "unwritable", read_only_results, 2, r"results folder .*/ro is not writable",
        needs_non_root=True),
    Row("sweep-results-below-a-file", "unwritable", lambda c: [*suite_file(SUITE)(c)[:2],
                                                              *blocked("--results")(c)], 2,
        r"results folder .*/file/r cannot be created: Not a directory"),
    Row("reproduce-results-below-a-file", "unwritable", blocked("--results", "reproduce", "cartpole_dqn_ablation",
                                                                "--quick"), 2,
        r"results folder .*/file/r cannot be created: Not a directory"),
    Row("analyze-out-below-a-file", "unwritable", blocked("--out", "analyze", "--results", "{shared}", "--no-cache",
                                                          "--no-figures"), 2,
        r"output folder .*/file/r cannot be created: Not a directory"),
    Row("convergence-out-is-a-file", "unwritable", blocked("--out", "convergence", "--mdp", "chain:5", sub=""), 2,
        r"--out '.*/file' exists and is not a directory"),

    # ---- disk full: writes fail with ENOSPC part-way; a good checkpoint is never replaced by a broken one
    Row("run-disk-full-checkpoint", "disk-full", disk_full_checkpoint, 5,
        r"cannot write checkpoint .*dqn-CartPole-v1-\w+\.pt: " + NOSPACE),
    Row("run-disk-full-artifacts", "disk-full", disk_full_results, 5,
        r"cannot write the run's files under .*/res: " + NOSPACE + "; the last checkpoint is kept"),
    Row("run-disk-full-tiny-tmpfs", "disk-full", tiny_tmpfs_checkpoint, 5,
        r"cannot write checkpoint .*dqn-CartPole-v1-\w+\.pt: " + NOSPACE),
    Row("convergence-disk-full", "disk-full",
        disk_full_under("out", ["convergence", "--mdp", "chain:5", "--rules", "hard", "--steps", "50", "--runs", "1",
                                "--out", "{tmp}/out"]), 5, r"cannot write .*/out: " + NOSPACE),
    Row("analyze-disk-full-cache", "disk-full", disk_full_cache, 5,
        r"cannot write the cache under .*/res/cache: " + NOSPACE + r" \(free space, or pass --no-cache\)"),
    Row("analyze-disk-full", "disk-full",
        disk_full_under("out", ["analyze", "--results", "{shared}", "--no-cache", "--no-figures", "--reps", "100",
                                "--out", "{tmp}/out"]), 5, r"cannot write .*/out: " + NOSPACE),
]


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _assert(ok: bool, message: str) -> None:
    assert ok, message


# ------------------------------------------------------------------------ the shared results folder


def _snapshot(folder: Path) -> dict[str, Any]:
    """sha256 of every file but the SQLite store, and the store's content read back through MLflow."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    files = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith("mlflow.db")}
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    experiments, runs = {}, {}
    for exp in client.search_experiments(view_type=ViewType.ALL):
        experiments[exp.experiment_id] = (exp.name, exp.lifecycle_stage, exp.artifact_location, dict(exp.tags))
        for r in client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL, max_results=1000):
            history = {k: [(m.step, m.timestamp, m.value) for m in client.get_metric_history(r.info.run_id, k)]
                       for k in sorted(r.data.metrics)}
            runs[r.info.run_id] = {"info": (r.info.status, r.info.start_time, r.info.end_time,
                                            r.info.lifecycle_stage, r.info.artifact_uri),
                                   "params": dict(r.data.params), "tags": dict(r.data.tags), "metrics": history}
    return {"files": files, "experiments": experiments, "runs": runs}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A real small results folder (one `targetbench run`) and its snapshot."""
    folder = tmp_path_factory.mktemp("shared") / "results"
    assert main([*RUN, "--results", str(folder), "--quiet", "--json"]) == 0
    snap = _snapshot(folder)
    assert len(snap["runs"]) == 1 and any(f.startswith("checkpoints/") for f in snap["files"])
    return folder, snap


@pytest.fixture(scope="module")
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------- runners


class _Records(logging.Handler):
    """Log records of WARNING and above: with the default setup each is printed on stderr."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"[log {record.name}] {record.getMessage()}")


def _in_process(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run `targetbench ARGV` through suite.cli.main; stderr includes the warnings and log records that the
    console script would print (Python's default warning filters)."""
    capfd.readouterr()
    records = _Records()
    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger) and not lg.propagate]
    for lg in loggers:
        lg.addHandler(records)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.resetwarnings()
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.filterwarnings("ignore", category=category)  # Python's defaults outside __main__
            warnings.simplefilter("default", append=True)
            try:
                code = main(argv)
            except SystemExit as exc:  # pragma: no cover - main returns its code
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        for lg in loggers:
            lg.removeHandler(records)
    err = capfd.readouterr().err
    noise = [f"[warning] {w.category.__name__}: {w.message}" for w in caught] + records.lines
    return code, err + "".join(line + "\n" for line in noise)


def _subprocess(argv: list[str], cwd: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "TARGETBENCH_RESULTS", "PYTHONWARNINGS")}
    proc = subprocess.run([sys.executable, "-m", "suite", *argv], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=env)
    return proc.returncode, proc.stderr


# ------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row: Row, shared, closed_port, tmp_path, monkeypatch, capfd, fault_log):
    folder, before = shared
    if row.needs_non_root and os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    monkeypatch.chdir(tmp_path)  # relative defaults (results/, results/convergence) land here, not in the repo
    for name in ("MLFLOW_TRACKING_URI", "TARGETBENCH_RESULTS"):
        monkeypatch.delenv(name, raising=False)
    ctx = Ctx(shared=folder, tmp=tmp_path, port=closed_port, monkeypatch=monkeypatch)
    try:
        argv = row.argv(ctx) if callable(row.argv) else list(row.argv)
        argv = [a.format(shared=folder, tmp=tmp_path, port=closed_port) if "{" in a else a for a in argv]
        code, err = _subprocess(argv, tmp_path) if row.proc else _in_process(argv, capfd)
        monkeypatch.undo()  # a patched open must not touch the checks below
        lines = err.splitlines()
        one_line = (len(lines) == 1 and lines[0].startswith("targetbench: error: ")
                    and "Traceback" not in err and re.search(row.pattern, lines[0]) is not None)
        after = _snapshot(folder) if _touches(argv, folder) else before
        changed = after != before
        fault_log(kind="bad_input", inputs=1, clear_one_line=int(one_line and code == row.code),
                  recorded_changed=int(changed))
        assert code == row.code, f"exit code {code}, expected {row.code} ({EXIT_CODES.get(row.code)}); stderr:\n{err}"
        assert len(lines) == 1, f"stderr is not one line:\n{err}"
        assert lines[0].startswith("targetbench: error: ") and "Traceback" not in err, err
        assert re.search(row.pattern, lines[0]), f"{lines[0]!r} does not match {row.pattern!r}"
        assert not changed, _diff(before, after)
        for check in ctx.checks:
            check()
    finally:
        for cleanup in reversed(ctx.cleanups):
            cleanup()


def _touches(argv: list[str], folder: Path) -> bool:
    return any(str(folder) in a for a in argv)


def _diff(before: dict[str, Any], after: dict[str, Any]) -> str:
    out = []
    for part in ("files", "experiments", "runs"):
        b, a = before[part], after[part]
        for key in sorted(set(b) | set(a)):
            if b.get(key) != a.get(key):
                out.append(f"{part} {key}: {b.get(key)!r} -> {a.get(key)!r}"[:500])
    return "the shared results folder changed:\n" + "\n".join(out)


DEBUG_ROWS = [r for r in ROWS if r.debug]


@pytest.mark.parametrize("row", DEBUG_ROWS, ids=[r.id for r in DEBUG_ROWS])
def test_debug_shows_the_traceback(row: Row, shared, closed_port, tmp_path, monkeypatch, capfd):
    folder, _ = shared
    monkeypatch.chdir(tmp_path)
    ctx = Ctx(shared=folder, tmp=tmp_path, port=closed_port, monkeypatch=monkeypatch)
    argv = row.argv(ctx) if callable(row.argv) else list(row.argv)
    argv = [a.format(shared=folder, tmp=tmp_path, port=closed_port) if "{" in a else a for a in argv]
    code, err = _in_process(["--debug", *argv], capfd)
    assert code == row.code
    assert "Traceback (most recent call last)" in err
    assert re.search(row.pattern, err.strip().splitlines()[-1]), err  # the one-line message still ends it


def test_the_table_covers_the_issue():
    assert len(ROWS) >= 40 and len({r.id for r in ROWS}) == len(ROWS)
    assert {r.category for r in ROWS} == {"unknown-name", "wrong-type", "out-of-range", "yaml", "checkpoint", "npz",
                                          "tracking", "unwritable", "disk-full"}
    used = set()
    for r in ROWS:
        argv = r.argv if isinstance(r.argv, list) else None
        used.add(argv[0] if argv else r.id.split("-")[0])
    assert set(COMMANDS) <= used, set(COMMANDS) - used
    assert {r.code for r in ROWS} <= set(EXIT_CODES) - {0, 1}, "only documented failure codes, never 'internal'"
    assert sum(r.proc for r in ROWS) >= 3 and sum(r.debug for r in ROWS) >= 3
