"""Checkpoint and resume: a trial SIGKILLed at several random moments and resumed each time ends exactly where an
uninterrupted run ends (params_sha256, eval curve), continuing the same MLflow runs, with every metric point
of the uninterrupted run present exactly once (all keys, compared with the uninterrupted run's own store).
Classic control and MinAtar in the default set, Atari (slow).

Kill moments are drawn from a seeded ``random.Random`` (``$TARGETBENCH_FAULT_SEED`` overrides the default seed)
and anchored on what the run itself shows (its runs appearing in the store, its progress lines), so that they
land in every phase: run creation and the stretch before the first checkpoint (``--resume`` then starts
fresh), training and evaluation between checkpoints, the checkpoint write and the flush after it, and the
final checkpoint, flush and artifact upload. Load on a shared machine still moves the exact landing point;
the seed, the plan and where each kill landed are in every assertion message and in the fault log.

A kill while the very first run creates the SQLite store is a separate test below.
"""
import json
import os
import queue
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import mlflow
import pytest
import torch

from suite.checkpoint import load_checkpoint, save_checkpoint
from suite.errors import CheckpointError
from analysis import record_names as names

#: Per family: a tiny but complete trial (learning starts, several evaluations and checkpoints), and two kill
#: windows in seconds, sized from runs on this 2-core machine when lightly loaded (the classic tail shrank to 0.5 s when
#: the final checkpoint and flush got faster: at 1.5 s a kill could land after the process had ended): after the runs appear in the
#: store (run creation to the first checkpoints), and after the final evaluation line (the final checkpoint,
#: flush and artifacts). A heavier load only moves kills earlier within those phases.
SETTINGS = {
    "classic": dict(
        agent="dqn", env="CartPole-v1", seeds="0,1", steps=3000, eval_every=500, windows=(1.0, 0.5),
        sets=["learning_starts=100", "train_frequency=2", "buffer_size=2000", "batch_size=16", "hidden_sizes=16",
              "train.eval_episodes=3", "train.log_every=100"]),
    "minatar": dict(
        agent="dqn", env="MinAtar/breakout", seeds="0,1", steps=1000, eval_every=250, windows=(0.8, 2.0),
        sets=["learning_starts=200", "train_frequency=4", "buffer_size=1000", "batch_size=16",
              "train.eval_episodes=1", "train.log_every=50"]),
    # Nature CNN on 84x84x4 frames on a CPU: few steps, a tiny replay and capped evaluation episodes.
    "atari": dict(
        agent="dqn", env="ALE/Pong-v5", seeds="0", steps=300, eval_every=100, windows=(8.0, 4.0),
        sets=["learning_starts=50", "train_frequency=4", "buffer_size=500", "batch_size=8",
              "train.eval_episodes=1", "train.eval_max_steps=100", "train.log_every=50"]),
}
KILLS = 3
DEFAULT_FAULT_SEED = 7
#: the rate of the recent env steps: a wall-clock measurement, so only its steps must match between two runs
WALL_CLOCK_KEYS = set(names.WALL_CLOCK_METRICS)
_EVAL_LINE = re.compile(r"\] step (\d+)/(\d+) eval")
_RESUMED_LINE = re.compile(r"\] resumed at step (\d+)")


def cli(settings: dict, work: Path, *extra: str) -> list[str]:
    sets = [x for kv in settings["sets"] for x in ("--set", kv)]
    return [sys.executable, "-m", "suite", "run", "--agent", settings["agent"], "--env", settings["env"],
            "--seed", settings["seeds"], "--steps", str(settings["steps"]), "--set",
            f"train.eval_every={settings['eval_every']}", *sets, "--json",
            "--tracking-uri", f"sqlite:///{work}/mlflow.db", "--results", str(work),
            "--checkpoint-dir", str(work / "ckpt"), *extra]


def results(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


class Watched:
    """A ``targetbench run`` subprocess; reader threads timestamp its stderr lines as they arrive."""

    def __init__(self, cmd: list[str]) -> None:
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: "queue.Queue[tuple[float, str] | None]" = queue.Queue()
        self.stderr: list[tuple[float, str]] = []
        self.stdout: list[str] = []
        self._threads = [threading.Thread(target=self._read_err, daemon=True),
                         threading.Thread(target=lambda: self.stdout.extend(self.proc.stdout), daemon=True)]
        for t in self._threads:
            t.start()

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            item = (time.monotonic() - self.t0, line.rstrip("\n"))
            self.stderr.append(item)
            self.lines.put(item)
        self.lines.put(None)

    def wait_for(self, pattern: re.Pattern, want: int | None, timeout: float = 300) -> tuple[float, re.Match] | None:
        """Block until a stderr line matches (with group 1 == ``want`` if given): (its time, the match), or None
        if the process ended first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern.pattern!r} within {timeout} s: {self.stderr[-5:]}")
            if item is None:
                return None
            m = pattern.search(item[1])
            if m and (want is None or int(m.group(1)) == want):
                return item[0], m

    def finish(self, timeout: float = 300) -> int:
        code = self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=10)
        return code


def wait_for_runs(db: Path, w: Watched, timeout: float = 300) -> tuple[float, None] | None:
    """Poll the (pre-created) store until the process has created a run: the moment, or None if it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and w.proc.poll() is None:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
                if con.execute("SELECT count(*) FROM runs").fetchone()[0]:
                    return time.monotonic() - w.t0, None
        except sqlite3.Error:
            pass
        time.sleep(0.02)
    assert w.proc.poll() is not None, f"no run created within {timeout} s"
    return None


def checkpoint_state(ckpt_dir: Path) -> dict | None:
    """The step and run ids of the (single) checkpoint of the trial, or None when none was written yet."""
    files = sorted(ckpt_dir.glob("*.pt")) if ckpt_dir.exists() else []
    if not files:
        return None
    data = torch.load(files[0], map_location="cpu", weights_only=True)
    return {"step": int(data["step"]), "run_ids": list(data["run_ids"])}


def kill_plan(rng: random.Random, kills: int) -> list[tuple[str, float, float]]:
    """(anchor, selector, u) per kill, all drawn up front so the plan depends only on the seed; ``u`` in [0, 1)
    scales the kill's window (see ``_kill_segment``).

    The first kill counts from the moment the MLflow runs appear in the store (it lands while the runs are
    created, in training before the first checkpoint, or later); the middle ones from an evaluation line after
    the resume point (the selector picks which), landing anywhere in the following checkpoint interval: the
    checkpoint write, the flush after it, training, the next evaluation; the last one from the final
    evaluation line, landing in the final checkpoint, its flush or the artifact upload (or after the end)."""
    # u**2 for the first kill: half of the draws land in the first ~30 % of the window, before the first
    # checkpoint on a fast machine too
    plan = [("created", 0.0, rng.random() ** 2)]
    plan += [("eval", rng.random(), rng.random()) for _ in range(kills - 2)]
    plan.append(("final", 1.0, rng.random()))
    return plan


def metric_histories(uri: str, run_id: str) -> dict[str, list[tuple[int, float]]]:
    client = mlflow.MlflowClient(uri)
    keys = client.get_run(run_id).data.metrics
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in keys}


def compare_histories(want: dict, got: dict) -> dict[str, int]:
    """Points of the uninterrupted run missing from the killed one, and extra ones (duplicates), over all keys.
    Wall-clock keys are compared by step only."""
    lost = dup = compared = 0
    for key in set(want) | set(got):
        if key.startswith(names.SYSTEM_PREFIX):  # sampled on a timer: counts differ between runs
            continue
        a, b = want.get(key, []), got.get(key, [])
        if key in WALL_CLOCK_KEYS:
            a, b = [s for s, _ in a], [s for s, _ in b]
        ca, cb = Counter(a), Counter(b)
        lost += sum((ca - cb).values())
        dup += sum((cb - ca).values())
        compared += len(b)
    return {"points_compared": compared, "points_lost": lost, "points_duplicated": dup}


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An initialised, empty MLflow SQLite store, copied into each run's folder.

    Creating a store runs MLflow's schema migrations (seconds); a SIGKILL during them breaks the store for good
    (see ``test_sigkill_during_store_creation_leaves_a_usable_store``), so the resume runs start from a store
    that already exists, as any run after the first does."""
    from suite.tracking import ensure_store

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    ensure_store(f"sqlite:///{path}")
    return path


def _kill_segment(w: Watched, work: Path, before: dict | None, settings: dict, anchor: str, selector: float,
                  u: float) -> tuple[bool, str, float]:
    """Wait for this segment's anchor, then SIGKILL it a fraction ``u`` of its window later. Windows: for an
    evaluation anchor, the time this process took for its previous checkpoint interval (so the kill lands in
    the next interval whatever the machine's load); otherwise the family's fixed seconds. Returns whether it
    was killed (False: it ended first), the anchor used and the delay in seconds."""
    created_s, tail_s = settings["windows"]
    evals = list(range(settings["eval_every"], settings["steps"] + 1, settings["eval_every"]))
    start = 0.0  # the moment a "created" anchor counts from: the runs' creation, or the resume
    if before is not None:  # a resumed process restarts exactly at its checkpoint
        resumed = w.wait_for(_RESUMED_LINE, None)
        assert resumed is not None and int(resumed[1].group(1)) == before["step"], (before, w.stderr[-5:])
        start = resumed[0]
    later = [s for s in evals if s > (before["step"] if before else 0)]
    target = None
    if anchor != "created" and later:  # no later evaluation: the checkpoint is the final one; count from resume
        target = later[-1] if anchor == "final" else later[min(int(selector * len(later)), len(later) - 1)]
        if before is None and target == later[0] and len(later) > 1:
            target = later[1]  # a fresh process's first interval includes its start-up: measure the second
    if target is not None:
        seen = w.wait_for(_EVAL_LINE, target)
    elif before is None:
        seen = wait_for_runs(work / "mlflow.db", w)
    else:
        seen = (start, None)
    if seen is None:
        return False, f"eval@{target}", 0.0
    if target is None or anchor == "final":
        delay = u * (created_s if target is None and before is None else tail_s)
    else:  # the previous progress line (evaluation or resume) of this process marks the last interval's start
        prev = [t for t, line in w.stderr if t < seen[0] and (_EVAL_LINE.search(line) or _RESUMED_LINE.search(line))]
        delay = u * (seen[0] - (prev[-1] if prev else start))
    time.sleep(max(0.0, seen[0] + delay - (time.monotonic() - w.t0)))
    killed = w.proc.poll() is None
    if killed:
        os.kill(w.proc.pid, signal.SIGKILL)
    return killed, f"eval@{target}" if target else ("created" if before is None else "resume"), delay


def run_kill_resume(family: str, tmp_path: Path, empty_store: Path, fault_log) -> None:
    settings = SETTINGS[family]
    for name in ("ref", "killed"):
        (tmp_path / name).mkdir()
        shutil.copy(empty_store, tmp_path / name / "mlflow.db")
    # The uninterrupted run goes alongside the killed one (separate stores and checkpoints).
    ref = subprocess.Popen(cli(settings, tmp_path / "ref"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _kill_resume_compare(settings, tmp_path, ref, fault_log)
    finally:  # a failed assertion must not leave a training process behind
        if ref.poll() is None:
            ref.kill()
            ref.wait()


def _kill_resume_compare(settings: dict, tmp_path: Path, ref: subprocess.Popen, fault_log) -> None:
    seed = int(os.environ.get("TARGETBENCH_FAULT_SEED", DEFAULT_FAULT_SEED))
    rng = random.Random(f"{settings['env']}/{seed}")
    evals = list(range(settings["eval_every"], settings["steps"] + 1, settings["eval_every"]))

    work = tmp_path / "killed"
    plan = kill_plan(rng, KILLS)
    landed: list[dict] = []  # one entry per segment: what was planned and where the process was at the kill
    first_runs = None
    for i, (anchor, selector, u) in enumerate(plan):
        before = checkpoint_state(work / "ckpt")
        w = Watched(cli(settings, work, *(["--resume"] if i else [])))
        try:
            killed, anchored, delay = _kill_segment(w, work, before, settings, anchor, selector, u)
        finally:
            if w.proc.poll() is None:  # an assertion failed before the kill
                w.proc.kill()
        code = w.finish()
        after = checkpoint_state(work / "ckpt")
        landed.append({"anchor": anchored, "delay_s": round(delay, 3), "killed": killed, "exit": code,
                       "ckpt_before": before and before["step"],
                       "ckpt_after": after and after["step"],
                       "last_line": w.stderr[-1][1][-80:] if w.stderr else ""})
        if after is not None and first_runs is None:
            first_runs = after["run_ids"]
        if not killed:  # it finished before the kill fired: nothing left to kill
            assert code == 0, (landed, w.stderr[-5:])
            break
        assert code == -signal.SIGKILL, landed
    why = f"fault seed {seed}, plan {plan}, landed {landed}"
    kills = sum(e["killed"] for e in landed)

    final = subprocess.run(cli(settings, work, "--resume"), capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, (why, final.stderr[-2000:])
    got = results(final.stdout)
    ref_out, ref_err = ref.communicate(timeout=600)
    assert ref.returncode == 0, ref_err[-2000:]
    expected = results(ref_out)
    identical = ([r["params_sha256"] for r in got] == [r["params_sha256"] for r in expected]
                 and [r["eval_returns"] for r in got] == [r["eval_returns"] for r in expected])

    # MLflow: the killed run's stored points against the uninterrupted run's (separate stores), every key.
    uri_ref, uri = f"sqlite:///{tmp_path}/ref/mlflow.db", f"sqlite:///{work}/mlflow.db"
    counts = Counter()
    for a, b in zip(expected, got):
        counts.update(compare_histories(metric_histories(uri_ref, a["run_id"]), metric_histories(uri, b["run_id"])))
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("targetbench").experiment_id], max_results=1000)
    status = {r.info.run_id: r.info.status for r in runs}
    # Runs created by a process killed before its first checkpoint: the next start cannot know them.
    orphans = [r for r in runs if r.info.run_id not in {g["run_id"] for g in got}]
    orphan_points = sum(len(client.get_metric_history(r.info.run_id, k)) for r in orphans for k in r.data.metrics)

    fault_log(kind="kill", env=settings["env"], kills=kills, resumes_identical=int(identical),
              points_compared=counts["points_compared"], points_lost=counts["points_lost"],
              points_duplicated=counts["points_duplicated"], orphan_runs=len(orphans), fault_seed=seed,
              landed=[f"{e['anchor']}+{e['delay_s']}s:{'killed' if e['killed'] else 'ended'},"
                      f"checkpoint@{e['ckpt_after']}" for e in landed])

    assert kills >= KILLS - 1, why  # only the last kill may come too late (the run ended first)
    assert [r["params_sha256"] for r in got] == [r["params_sha256"] for r in expected], why
    assert [r["eval_returns"] for r in got] == [r["eval_returns"] for r in expected], why
    assert [[s for s, _ in r["eval_returns"]] for r in got] == [evals] * len(got), why
    assert counts["points_compared"] > 0 and counts["points_lost"] == 0 and counts["points_duplicated"] == 0, \
        (why, dict(counts))
    if first_runs is not None:  # once a checkpoint existed, every later segment continued the same runs
        assert [r["run_id"] for r in got] == first_runs, why
    assert all(status[r["run_id"]] == "FINISHED" for r in got), (why, status)
    assert all(status[r.info.run_id] != "FINISHED" for r in orphans) and orphan_points == 0, (why, status)


@pytest.mark.fault
def test_sigkill_at_random_moments_then_resume_is_exact_classic(tmp_path, empty_store, fault_log):
    run_kill_resume("classic", tmp_path, empty_store, fault_log)


@pytest.mark.fault
def test_sigkill_at_random_moments_then_resume_is_exact_minatar(tmp_path, empty_store, fault_log):
    run_kill_resume("minatar", tmp_path, empty_store, fault_log)


@pytest.mark.fault
@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_exact_atari(tmp_path, empty_store, fault_log):
    """ALE state is captured with ``cloneState(include_rng=True)`` and sticky actions are drawn in Python
    (suite/envs/atari.py), so an Atari trial resumes bit-exactly too."""
    pytest.importorskip("ale_py")
    run_kill_resume("atari", tmp_path, empty_store, fault_log)


#: Run in a subprocess: create a store and SIGKILL itself right after the Nth schema statement (CREATE, ALTER,
#: DROP) of MLflow's migration chain, i.e. at a random moment of the migration, deterministically.
_KILL_DURING_MIGRATION = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from suite.tracking import ensure_store
kill_at, seen = int(sys.argv[2]), {"n": 0, "migrating": False}

@event.listens_for(Engine, "after_cursor_execute")
def _after(conn, cursor, statement, *args):
    s = statement.lstrip().upper()
    if s.startswith("INSERT INTO ALEMBIC_VERSION"):
        seen["migrating"] = True
    elif seen["migrating"] and s.startswith(("CREATE", "ALTER", "DROP")):
        seen["n"] += 1
        if seen["n"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

ensure_store(sys.argv[1])
"""


@pytest.mark.fault
def test_sigkill_during_store_creation_leaves_a_usable_store(tmp_path, fault_log):
    """The very first run on a new results folder creates the store; a SIGKILL while MLflow migrates it (about
    300 schema statements, seconds on a loaded machine) must not leave a store that no later run can open.
    Stores are copies of a per-machine template (suite/tracking.py), so the migrations run when that template is
    built: an empty cache makes this first run build it, and the kill lands there."""
    seed = int(os.environ.get("TARGETBENCH_FAULT_SEED", DEFAULT_FAULT_SEED))
    kill_at = random.Random(f"migration/{seed}").randint(1, 250)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {**os.environ, "TARGETBENCH_CACHE": str(tmp_path / "cache")}
    killed = subprocess.run([sys.executable, "-c", _KILL_DURING_MIGRATION, uri, str(kill_at)], capture_output=True,
                            text=True, timeout=300, env=env)
    again = subprocess.run([sys.executable, "-c", "import sys; from suite.tracking import ensure_store; "
                            "ensure_store(sys.argv[1])", uri], capture_output=True, text=True, timeout=300, env=env)
    fault_log(kind="kill", phase="store_creation", kills=int(killed.returncode == -signal.SIGKILL),
              store_usable=int(again.returncode == 0), fault_seed=seed)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-1000:]
    assert again.returncode == 0, f"killed after schema statement {kill_at}: {again.stderr.strip().splitlines()[-1:]}"


def test_checkpoint_loading_refuses_other_trials_and_corrupt_files(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"trial_hash": "abc", "x": 1})
    assert load_checkpoint(path, "abc")["x"] == 1
    with pytest.raises(CheckpointError, match="belongs to trial 'abc'"):
        load_checkpoint(path, "other")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path, "abc")


def test_checkpoint_never_unpickles_code(tmp_path):
    """A pickle that would run code on load is refused (weights_only loading)."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "trial_hash": "abc", "payload": Evil()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError):
        load_checkpoint(path, "abc")
    assert not (tmp_path / "pwned").exists()


def _flaky_flush(monkeypatch, fail_calls):
    """Make RunGroup.flush fail (as with a store that is down) on the given call numbers."""
    from suite.errors import TrackingError
    from suite.tracking import RunGroup
    calls = {"n": 0}
    orig = RunGroup.flush

    def flush(self):
        calls["n"] += 1
        if calls["n"] in fail_calls:
            raise TrackingError("tracking store write failed after 5 tries: ConnectionError")
        return orig(self)
    monkeypatch.setattr(RunGroup, "flush", flush)
    return calls


def _trial():
    from suite.trial import build_trial
    return build_trial("dqn", "CartPole-v1", (0, 1), steps=600, overrides={
        "learning_starts": "100", "train_frequency": "2", "buffer_size": "600", "batch_size": "16",
        "hidden_sizes": "16", "train.eval_every": "150", "train.eval_episodes": "1", "train.log_every": "50"})


def _histories(uri, run_id):
    client = mlflow.MlflowClient(uri)
    return {key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
            for key in ("eval/return_mean", "train/loss", "train/episode_return")}


def test_store_outage_mid_run_loses_nothing(tmp_path, monkeypatch):
    """Flushes at the 1st and 2nd checkpoint fail; training goes on and every point arrives, once."""
    from suite.trainer import train
    ref = train(_trial(), tracking_uri=f"sqlite:///{tmp_path}/ref.db", experiment="t", results_dir=tmp_path,
                checkpoint_dir=tmp_path / "ck-ref", progress=lambda m: None)
    calls = _flaky_flush(monkeypatch, {1, 2})
    messages = []
    got = train(_trial(), tracking_uri=f"sqlite:///{tmp_path}/m.db", experiment="t", results_dir=tmp_path,
                checkpoint_dir=tmp_path / "ck", progress=messages.append)
    # both failed flushes were reported, and training went on flushing after them (how many flushes a run makes
    # is the trainer's business: at every checkpoint, and possibly at the end)
    assert calls["n"] >= 4 and sum("tracking store unavailable" in m for m in messages) == 2
    for a, b in zip(ref, got):
        assert a.params_sha256 == b.params_sha256
        ha, hb = _histories(f"sqlite:///{tmp_path}/ref.db", a.run_id), _histories(f"sqlite:///{tmp_path}/m.db", b.run_id)
        assert [s for s, _ in ha["train/loss"]] == [s for s, _ in hb["train/loss"]]
        assert ha["eval/return_mean"] == hb["eval/return_mean"]
        assert len(ha["train/episode_return"]) == len(hb["train/episode_return"])


def test_store_down_at_the_end_keeps_data_for_resume(tmp_path, monkeypatch):
    """If the store never comes back, the points stay in the checkpoint and --resume pushes them later."""
    from suite.errors import TrackingError
    from suite.trainer import train
    uri = f"sqlite:///{tmp_path}/m.db"
    _flaky_flush(monkeypatch, set(range(1, 100)))
    with pytest.raises(TrackingError, match="rerun the same command with --resume"):
        train(_trial(), tracking_uri=uri, experiment="t", results_dir=tmp_path, checkpoint_dir=tmp_path / "ck",
              progress=lambda m: None)
    monkeypatch.undo()
    got = train(_trial(), tracking_uri=uri, experiment="t", results_dir=tmp_path, checkpoint_dir=tmp_path / "ck",
                resume=True, progress=lambda m: None)
    client = mlflow.MlflowClient(uri)
    for r in got:
        run = client.get_run(r.run_id)
        assert run.info.status == "FINISHED"
        evals = client.get_metric_history(r.run_id, "eval/return_mean")
        assert [m.step for m in evals] == [150, 300, 450, 600]
        loss_steps = [m.step for m in client.get_metric_history(r.run_id, "train/loss")]
        assert loss_steps == list(range(100, 601, 50))
