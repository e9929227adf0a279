"""Killing a whole ``targetbench sweep`` (driver and workers: SIGKILL to its process group) at random moments
with some trials finished and others mid-run, then starting it again, finishes every trial exactly once: one
FINISHED run per trial in the experiment (superseded attempts are soft-deleted, and deleted runs do not
count), no metric point lost or duplicated, and every trial's params_sha256 tag and metric histories equal
those of an uninterrupted run of the same group.

The sweep (3 agents x CartPole x 2 seeds, one seed per worker process, 2 workers) is killed twice, in an
order drawn from the seed: once while a trial is past its first checkpoint (it must be continued, same run),
once while a trial has its run but no checkpoint (it starts over; its first run must be soft-deleted). The
kill delays come from a seeded ``random.Random`` (``$TARGETBENCH_FAULT_SEED`` overrides the seed); the seed
and the state of every trial at each kill are in the assertion messages.
"""
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import mlflow
import psutil
import pytest
import torch
import yaml
from mlflow.entities import ViewType

from suite.scheduler.matrix import expand, make_groups
from suite.scheduler.spec import load_suite
from analysis import record_names as names

AGENTS = ["dqn", "dqn-soft", "double-dqn"]
SEEDS = [0, 1]
STEPS, EVAL, LOG = 12000, 1000, 500  # a group runs long enough that a drawn kill delay still lands mid-run
DEFAULT_FAULT_SEED = 7
#: the rate of recent env steps is wall-clock: only its steps must match between two runs
WALL_CLOCK_KEYS = set(names.WALL_CLOCK_METRICS)


def write_suite(tmp_path: Path) -> Path:
    data = {"name": "skill", "agents": AGENTS, "envs": ["CartPole-v1"], "seeds": SEEDS, "steps": STEPS,
            "eval": {"every": EVAL, "episodes": 1}, "retries": 1, "resources": {"group_size": 1},
            "overrides": {"hidden_sizes": [16], "learning_starts": 50, "train_frequency": 2, "buffer_size": 1000,
                          "batch_size": 16, "train.log_every": LOG}}
    path = tmp_path / "skill.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def sweep_cmd(path: Path, results: Path) -> list[str]:
    return [sys.executable, "-m", "suite", "sweep", str(path), "--workers", "2", "--results", str(results), "--json"]


def reference(path: Path, root: Path, out: dict) -> None:
    """Every group trained uninterrupted, in this process, exactly as a worker trains it (``run_group``)."""
    from suite.scheduler.worker import run_group

    suite = load_suite(path)
    for g in make_groups(expand(suite)[1], 1):
        job = {"agent": g.config.agent, "env": g.config.env, "seeds": list(g.seeds), "steps": g.config.steps,
               "overrides": g.config.overrides, "variant": g.config.variant, "suite": suite.name,
               "tracking_uri": f"sqlite:///{root}/mlflow.db", "experiment": "reference", "results_dir": str(root),
               "checkpoint_dir": str(root / "checkpoints")}
        for r in run_group(job):
            out[r["trial_hash"]] = r


def store_runs(db: Path) -> list[tuple[str, str, str, int]] | None:
    """(trial_hash, run_id, status, start_time ms) of every active run, read without MLflow while the sweep
    writes; None when the store cannot be read right now (not created yet, or busy: ask again)."""
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT t.value, r.run_uuid, r.status, r.start_time FROM runs r JOIN tags t "
                               "ON t.run_uuid = r.run_uuid AND t.key = 'trial_hash' "
                               "WHERE r.lifecycle_stage = 'active'").fetchall()
    except sqlite3.Error:
        return None


def checkpoints(ckpt_dir: Path) -> dict[str, tuple[float, list[str], int]]:
    """group_hash -> (mtime, run ids, env step) of each complete checkpoint (writes are atomic renames)."""
    out = {}
    for p in ckpt_dir.glob("*.pt") if ckpt_dir.exists() else []:
        try:
            data = torch.load(p, map_location="cpu", weights_only=True)
            out[p.stem.rsplit("-", 1)[-1]] = (p.stat().st_mtime, list(data["run_ids"]), int(data["step"]))
        except (OSError, RuntimeError, EOFError):  # replaced while being read: ask again
            pass
    return out


#: a trial whose checkpoint is this close to its end may finish within a drawn kill delay: not a kill target
END_MARGIN = 2 * EVAL


def trial_states(db: Path, ckpt_dir: Path, group_of: dict[str, str], since: float = 0.0, aiming: bool = False):
    """Each trial: finished (a FINISHED run), mid-run (a checkpoint written since ``since``), started (a run
    created since ``since``, no checkpoint) or waiting; and the unfinished runs that no checkpoint continues
    (killed before their first checkpoint: superseded when their trial runs again). None if unreadable.
    ``aiming``: while choosing the kill moment, a checkpoint within :data:`END_MARGIN` steps of the end (the
    final one included) is "ending", not mid-run, so that the trial cannot finish before the kill lands."""
    rows = store_runs(db)
    if rows is None:
        return None, set()
    ckpts = checkpoints(ckpt_dir)
    states, orphans = {}, set()
    for h, gh in group_of.items():
        runs = [(rid, status, start) for th, rid, status, start in rows if th == h]
        ckpt = ckpts.get(gh)
        if any(status == "FINISHED" for _, status, _ in runs):
            states[h] = "finished"
        elif ckpt is not None and ckpt[0] >= since:
            states[h] = "ending" if aiming and ckpt[2] > STEPS - END_MARGIN else "mid-run"
        elif ckpt is None and any(start >= since * 1000 for _, _, start in runs):
            states[h] = "started"
        else:
            states[h] = "waiting"
        if states[h] != "finished":
            orphans |= {rid for rid, _, _ in runs if ckpt is None or rid not in ckpt[1]}
    return states, orphans


def histories(client, run_id: str) -> dict[str, list]:
    keys = client.get_run(run_id).data.metrics
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in keys}


def group_alive(pgid: int) -> list[int]:
    alive = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            pass
    return alive


def kill_sweep_when(path: Path, results: Path, group_of: dict[str, str], aim: str, delay: float,
                    log_path: Path) -> dict:
    """Start the sweep in its own process group; once it has finished a trial and has one in state ``aim``
    (or has no trial left to start and one unfinished), wait ``delay`` seconds and SIGKILL the whole group.
    Returns the plan, the state of every trial at the kill and the runs no checkpoint continues."""
    db, ckpt_dir = results / "mlflow.db", results / "checkpoints"
    before, _ = trial_states(db, ckpt_dir, group_of)
    done_before = Counter((before or {}).values())["finished"]
    with open(log_path, "w") as log:
        since = time.time()
        proc = subprocess.Popen(sweep_cmd(path, results), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        pgid = proc.pid
        try:
            deadline = time.time() + 300
            while True:
                states, _ = trial_states(db, ckpt_dir, group_of, since, aiming=True)
                counts = Counter((states or {}).values())
                late = counts["waiting"] == 0 and counts["mid-run"] + counts["started"] >= 1
                if counts["finished"] > done_before and (counts[aim] >= 1 or late):
                    break
                assert proc.poll() is None and time.time() < deadline, (aim, counts, log_path.read_text()[-2000:])
                time.sleep(0.03)
            time.sleep(delay)
        finally:  # also when the wait failed: nothing of the sweep may outlive the test
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:  # it ended by itself (the assertion above says why)
                pass
            proc.wait(timeout=60)
    for _ in range(100):  # orphaned workers are reaped by init; none may survive the kill
        if not group_alive(pgid):
            break
        time.sleep(0.1)
    assert not group_alive(pgid)
    assert proc.returncode == -signal.SIGKILL, log_path.read_text()[-2000:]
    states, orphans = trial_states(db, ckpt_dir, group_of, since)
    if states is None:
        # Killed inside a write transaction: the hot journal it left makes a read-only open fail until a
        # read-write connection rolls it back (what the restarted sweep's first open does).
        with closing(sqlite3.connect(db, timeout=30)) as con:
            con.execute("SELECT count(*) FROM runs").fetchone()
        states, orphans = trial_states(db, ckpt_dir, group_of, since)
    assert states is not None, "the store cannot be read after the kill"
    return {"aim": aim, "delay_s": round(delay, 3), "at_kill": Counter(states.values()), "orphans": orphans}


@pytest.mark.fault
@pytest.mark.slow  # minutes, and timing-dependent by design (random kill moments): `make faults` runs it
def test_sigkill_whole_sweep_then_restart_finishes_every_trial_once(tmp_path, fault_log):
    seed = int(os.environ.get("TARGETBENCH_FAULT_SEED", DEFAULT_FAULT_SEED))
    rng = random.Random(f"sweep-kill/{seed}")
    path = write_suite(tmp_path)
    groups = make_groups(expand(load_suite(path))[1], 1)
    group_of = {g.trial_hashes[0]: g.group_hash for g in groups}
    assert len(group_of) == len(AGENTS) * len(SEEDS)

    # The reference trains alongside the killed sweep (its own store); it is only read at the end.
    ref: dict[str, dict] = {}
    ref_thread = threading.Thread(target=reference, args=(path, tmp_path / "ref", ref), daemon=True)
    ref_thread.start()

    results = tmp_path / "work"
    db = results / "mlflow.db"
    # Two kills, in an order drawn from the seed, each aimed at a moment with some trials finished and one
    # unfinished trial in a given state: "mid-run" (past its first checkpoint: it must be continued) or
    # "started" (its run exists, no checkpoint yet: it starts over, and that first run must be soft-deleted).
    aims = rng.sample(["mid-run", "started"], 2)
    kills = []
    for n, aim in enumerate(aims):
        kills.append(kill_sweep_when(path, results, group_of, aim, rng.uniform(0.0, 0.1), tmp_path / f"kill{n}.log"))
    counts = kills[-1]["at_kill"]
    why = f"fault seed {seed}, kills {[{k: v for k, v in kill.items() if k != 'orphans'} for kill in kills]}"
    assert all(k["at_kill"]["mid-run"] + k["at_kill"]["started"] >= 1 for k in kills), why
    assert 1 <= counts["finished"] < len(group_of), why
    orphans = set().union(*(k["orphans"] for k in kills))
    # A kill in the short window between a trial's end and the driver's bookkeeping leaves an earlier
    # unfinished attempt of a *finished* trial behind; rare by timing, so that state is made here directly:
    # an extra RUNNING run of a finished trial, as a killed attempt leaves it. The restart must delete it.
    client = mlflow.MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("sweep-skill")
    finished_hash = next(r.data.tags["trial_hash"] for r in client.search_runs([exp.experiment_id])
                         if r.info.status == "FINISHED")
    orphans.add(client.create_run(exp.experiment_id, tags={"trial_hash": finished_hash}).info.run_id)

    again = subprocess.run(sweep_cmd(path, results), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, (why, again.stderr[-3000:])
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    ref_thread.join(timeout=600)
    assert len(ref) == len(group_of)

    runs = client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL, max_results=1000)
    active = [r for r in runs if r.info.lifecycle_stage == "active"]
    deleted = [r for r in runs if r.info.lifecycle_stage == "deleted"]
    finished_runs = Counter(r.data.tags.get("trial_hash") for r in runs if r.info.status == "FINISHED")
    finished_once = sum(1 for h in group_of if finished_runs[h] == 1)
    ref_client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/ref/mlflow.db")
    points = Counter()
    same_params = 0
    for r in active:
        h = r.data.tags["trial_hash"]
        same_params += r.data.tags.get("params_sha256") == ref[h]["params_sha256"]
        want, got = histories(ref_client, ref[h]["run_id"]), histories(client, r.info.run_id)
        for key in set(want) | set(got):
            if key.startswith(names.SYSTEM_PREFIX):  # sampled on a timer: counts differ between runs
                continue
            a, b = want.get(key, []), got.get(key, [])
            if key in WALL_CLOCK_KEYS:
                a, b = [s for s, _ in a], [s for s, _ in b]
            points["compared"] += len(b)
            points["lost"] += sum((Counter(a) - Counter(b)).values())
            points["duplicated"] += sum((Counter(b) - Counter(a)).values())
    fault_log(kind="sweep_kill", trials=len(group_of), finished_once=finished_once,
              kills=len(kills), finished_at_last_kill=counts["finished"],
              midrun_at_kills=sum(k["at_kill"]["mid-run"] for k in kills),
              started_at_kills=sum(k["at_kill"]["started"] for k in kills), superseded_deleted=len(deleted),
              params_identical=same_params,
              points_compared=points["compared"], points_lost=points["lost"], points_duplicated=points["duplicated"],
              fault_seed=seed)

    # The restart skipped exactly the trials that had finished and ran the rest.
    assert (summary["skipped"], summary["done"], summary["failed"]) == \
        (counts["finished"], len(group_of) - counts["finished"], 0), (why, summary)
    # One FINISHED, active run per trial; the superseded attempts are soft-deleted and never FINISHED.
    assert sorted(r.data.tags["trial_hash"] for r in active) == sorted(group_of), (why, len(active))
    assert {r.info.status for r in active} == {"FINISHED"}, why
    assert finished_once == len(group_of), (why, finished_runs)
    # ... exactly the runs that no checkpoint continued at a kill (their trials started over), and the one made
    # above.
    assert {r.info.run_id for r in deleted} == orphans and all(r.info.status != "FINISHED" for r in deleted), why
    assert not any("error" in r.data.tags for r in active), why
    # Exact: the killed and restarted trials end where an uninterrupted run ends, point for point.
    assert same_params == len(group_of), why
    assert points["compared"] > 0 and points["lost"] == 0 and points["duplicated"] == 0, (why, dict(points))
