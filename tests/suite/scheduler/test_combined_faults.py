"""Faults combined in one sweep: a sweep of 8 trials (2 agents x 4 seeds on CartPole, 4 seeds per group, 2
workers) against a real MLflow server meets, in an order and at moments drawn from a seed,

* a worker SIGKILLed mid-group (the group is retried and resumes from its checkpoint),
* the tracking server unreachable and then back (tests/outage_proxy.py: its port refuses and the requests in
  flight get no answer; it comes back once training has gone on through the outage),
* a checkpoint write that fails with ENOSPC (tests/suite/scheduler/fault_hooks/sitecustomize.py, loaded by the
  sweep's processes through PYTHONPATH),
* the driver SIGKILLed and started again (once the workers it left have stopped),

and is run again until it ends with exit 0. Then every trial has finished exactly once, bitwise equal to its
uninterrupted run (params_sha256 and every metric history, point for point); no metric point is lost or
stored twice; no run that finished is deleted; no lease is left in the model registry.

Each fault waits for an observed state (a progress level read from the checkpoints, a live worker, a claimed
token), never for a guessed delay. ``$TARGETBENCH_FAULT_SEED`` runs one seed; by default seeds 0-4 run.
"""
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import mlflow
import psutil
import pytest
import torch
import yaml
from mlflow.entities import ViewType

from analysis import record_names as names
from outage_proxy import OutageProxy
from tracking_server import fast_env, free_port, start_server, stop_server
from suite.scheduler.matrix import expand, make_groups
from suite.scheduler.spec import load_suite

# minutes per seed on a loaded 2-core machine: more than the default per-test limit
pytestmark = [pytest.mark.fault, pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[3]
HOOKS = Path(__file__).resolve().parent / "fault_hooks"
SEEDS = ([int(os.environ["TARGETBENCH_FAULT_SEED"])] if os.environ.get("TARGETBENCH_FAULT_SEED")
         else [0, 1, 2, 3, 4])
STEPS, EVAL, LOG = 2000, 500, 250
SUITE = {"name": "combined", "agents": ["dqn", "dqn-soft"], "envs": ["CartPole-v1"], "seeds": [0, 1, 2, 3],
         "steps": STEPS, "eval": {"every": EVAL, "episodes": 1}, "retries": 4, "resources": {"group_size": 4},
         "overrides": {"hidden_sizes": [16], "learning_starts": 100, "train_frequency": 2, "buffer_size": 1000,
                       "batch_size": 16, "train.log_every": LOG}}
GROUPS = 2  # one per agent, its 4 seeds batched
KINDS = ("worker-kill", "outage", "checkpoint-write", "driver-kill")
#: the rate of recent env steps is wall-clock: only its steps must match between two runs
WALL_CLOCK_KEYS = set(names.WALL_CLOCK_METRICS)  # timings: compared by step only


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("suite") / "combined.yaml"
    path.write_text(yaml.safe_dump(SUITE))
    return path


@pytest.fixture(scope="module")
def reference(suite_file, tmp_path_factory) -> dict:
    """Every group trained uninterrupted, in this process, exactly as a worker trains it; by trial hash."""
    from suite.scheduler.worker import run_group

    root = tmp_path_factory.mktemp("reference")
    suite = load_suite(suite_file)
    out = {}
    for g in make_groups(expand(suite)[1], SUITE["resources"]["group_size"]):
        job = {"agent": g.config.agent, "env": g.config.env, "seeds": list(g.seeds), "steps": g.config.steps,
               "overrides": g.config.overrides, "variant": g.config.variant, "suite": suite.name,
               "tracking_uri": f"sqlite:///{root}/mlflow.db", "experiment": "reference", "results_dir": str(root)}
        for r in run_group(job):
            out[r["trial_hash"]] = r
    client = mlflow.MlflowClient(f"sqlite:///{root}/mlflow.db")
    return {h: {**r, "histories": histories(client, r["run_id"])} for h, r in out.items()}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("server")
    port = free_port()
    proc = start_server(folder, port)
    yield {"port": port, "url": f"http://127.0.0.1:{port}", "db": folder / "server.db"}
    stop_server(proc)


def histories(client, run_id: str) -> dict[str, list]:
    keys = client.get_run(run_id).data.metrics
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in keys}


def progress(ckdir: Path) -> float:
    """Share of the sweep's env steps covered by checkpoints (complete trials count in full once finished)."""
    steps = 0
    for p in ckdir.glob("*.pt") if ckdir.exists() else []:
        try:
            steps += int(torch.load(p, map_location="cpu", weights_only=True, mmap=True)["step"])
        except Exception:  # being replaced right now
            pass
    return steps / (STEPS * GROUPS)


def workers_of(driver: subprocess.Popen) -> list[psutil.Process]:
    try:
        children = psutil.Process(driver.pid).children(recursive=True)
    except psutil.Error:
        return []
    out = []
    for c in children:
        try:
            if "suite.scheduler.worker" in " ".join(c.cmdline()) and c.status() != psutil.STATUS_ZOMBIE:
                out.append(c)
        except psutil.Error:
            pass
    return out


class Sweep:
    """The sweep under test: started, killed and started again; every run's stdout/stderr kept."""

    def __init__(self, suite_file: Path, tmp: Path, uri: str, seed: int) -> None:
        self.tokens = tmp / "tokens"
        self.tokens.mkdir()
        self.cmd = [sys.executable, "-m", "suite", "sweep", str(suite_file), "--workers", "2", "--tracking-uri", uri,
                    "--experiment", f"combined-{seed}", "--results", str(tmp / "results"), "--json", "--quiet"]
        self.env = {**fast_env(), "TARGETBENCH_FAULT_TOKENS": str(self.tokens),
                    "PYTHONPATH": os.pathsep.join([str(HOOKS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        self.logs: list[tuple[int | None, str, str]] = []
        self.proc: subprocess.Popen | None = None
        self.started = 0
        self.sessions: list[int] = []

    def start(self) -> None:
        # its own session: the test's cleanup kills the driver and every worker it started
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env,
                                     cwd=ROOT, start_new_session=True)
        self.started += 1
        self.sessions.append(self.proc.pid)

    def kill_all(self) -> None:
        """Every process of every session this test started (orphaned workers included)."""
        for sid in self.sessions:
            for p in psutil.process_iter():
                try:
                    if os.getsid(p.pid) == sid:
                        p.kill()
                except (ProcessLookupError, psutil.Error):
                    pass

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self) -> int:
        out, err = self.proc.communicate(timeout=900)
        self.logs.append((self.proc.returncode, out, err))
        return self.proc.returncode

    def why(self) -> str:
        return "\n".join(f"exit {code}: {err[-1500:]}" for code, _, err in self.logs[-3:])


def wait_until(condition, timeout: float = 300) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def inject(kind: str, sweep: Sweep, proxy: OutageProxy, ckdir: Path, rng: random.Random) -> bool:
    """One fault of ``kind`` into the running sweep, once it can land; returns whether it was injected."""
    if kind == "worker-kill":
        if not wait_until(lambda: not sweep.alive() or workers_of(sweep.proc)):
            return False
        live = workers_of(sweep.proc)
        if not live:
            return False
        rng.choice(sorted(live, key=lambda p: p.pid)).send_signal(signal.SIGKILL)
        return True
    if kind == "outage":
        before = progress(ckdir)
        proxy.down()
        # Back once training has gone on without the store (or nothing is left to train).
        wait_until(lambda: progress(ckdir) > before or not (sweep.alive() and workers_of(sweep.proc)))
        proxy.up()
        return True
    if kind == "checkpoint-write":
        token = sweep.tokens / f"fail-checkpoint-{rng.getrandbits(32):08x}"
        token.touch()
        claimed = wait_until(lambda: not token.exists() or not sweep.alive())
        if token.exists():  # the sweep ended before it wrote another checkpoint
            token.unlink()
            return False
        return claimed
    if kind == "driver-kill":
        left = workers_of(sweep.proc)  # before the kill: orphans are no longer its children
        sweep.proc.send_signal(signal.SIGKILL)
        sweep.wait()
        # Its workers stop at their next progress report (their pipe is gone); the new driver starts after.
        assert wait_until(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in left)), \
            "workers outlived their driver"
        sweep.start()
        return True
    raise ValueError(kind)


@pytest.mark.parametrize("fault_seed", SEEDS)
def test_mixed_faults_in_one_sweep(fault_seed, suite_file, reference, server, tmp_path, fault_log):
    rng = random.Random(f"combined-faults/{fault_seed}")
    order = rng.sample(KINDS, len(KINDS))
    # each fault once the checkpoints cover this share of the sweep (drawn, increasing)
    at = sorted(rng.uniform(0.05, 0.6) for _ in order)
    plan = list(zip(order, [round(a, 3) for a in at]))
    why = f"fault seed {fault_seed}, plan {plan}"
    proxy = OutageProxy(server["port"])
    ckdir = tmp_path / "results" / "checkpoints"
    sweep = Sweep(suite_file, tmp_path, proxy.url, fault_seed)
    injected: Counter = Counter()
    try:
        sweep.start()
        for kind, share in plan:
            wait_until(lambda: progress(ckdir) >= share or not sweep.alive())
            if not sweep.alive():
                break
            injected[kind] += inject(kind, sweep, proxy, ckdir, rng)
        code = sweep.wait()
        for _ in range(3):  # a driver killed last, or an outage at the very end: run it again until it is done
            if code == 0:
                break
            sweep.start()
            code = sweep.wait()
        assert code == 0, (why, sweep.why())
    finally:
        sweep.kill_all()
        proxy.close()
    assert sum(injected.values()) >= 3, (why, injected)  # a fault can miss only if the sweep ended first

    client = mlflow.MlflowClient(server["url"])
    exp = client.get_experiment_by_name(f"combined-{fault_seed}")
    runs = client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL, max_results=1000)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    per_trial = Counter(r.data.tags["trial_hash"] for r in finished)
    # Every trial finished exactly once, in an active run; no finished run was deleted.
    assert sorted(per_trial) == sorted(reference) and set(per_trial.values()) == {1}, (why, per_trial)
    assert all(r.info.lifecycle_stage == "active" for r in finished), why
    deleted = [r for r in runs if r.info.lifecycle_stage == "deleted"]
    active = [r for r in runs if r.info.lifecycle_stage == "active"]
    assert len(active) == len(reference), (why, [(r.data.tags["trial_hash"][:8], r.info.status) for r in active])
    # Bitwise equal to the uninterrupted runs, point for point.
    same_params = sum(r.data.tags.get("params_sha256") == reference[r.data.tags["trial_hash"]]["params_sha256"]
                      for r in finished)
    points = Counter()
    for r in finished:
        want, got = reference[r.data.tags["trial_hash"]]["histories"], histories(client, r.info.run_id)
        for key in set(want) | set(got):
            if key.startswith(names.SYSTEM_PREFIX):  # sampled on a timer: counts differ between runs
                continue
            a, b = want.get(key, []), got.get(key, [])
            if key in WALL_CLOCK_KEYS:
                a, b = [s for s, _ in a], [s for s, _ in b]
            points["compared"] += len(b)
            points["lost"] += sum((Counter(a) - Counter(b)).values())
            points["duplicated"] += sum((Counter(b) - Counter(a)).values())
    with sqlite3.connect(server["db"]) as conn:  # what the store holds, duplicates included
        ids = [r.info.run_id for r in finished]
        stored = conn.execute("SELECT run_uuid, key, step FROM metrics WHERE key NOT LIKE 'system/%' AND run_uuid IN "
                              f"({','.join('?' * len(ids))})", ids).fetchall()
    stored_twice = len(stored) - len(set(stored))
    leases = [m.name for m in client.search_registered_models(filter_string="name LIKE 'targetbench-%'")]
    summary = json.loads(sweep.logs[-1][1].splitlines()[-1])
    fault_log(kind="combined", fault_seed=fault_seed, faults_injected=sum(injected.values()),
              worker_kills=injected["worker-kill"], outages=injected["outage"],
              checkpoint_write_failures=injected["checkpoint-write"], driver_kills=injected["driver-kill"],
              server_down_s=round(proxy.down_s, 1), sweeps_started=sweep.started, trials=len(reference),
              finished_once=sum(1 for n in per_trial.values() if n == 1), params_identical=same_params,
              points_compared=points["compared"], points_lost=points["lost"],
              points_duplicated=points["duplicated"] + stored_twice, superseded_deleted=len(deleted),
              finished_runs_deleted=0, stale_leases=len(leases))
    assert same_params == len(reference), why
    assert points["compared"] > 0 and points["lost"] == 0 and points["duplicated"] == 0, (why, dict(points))
    assert stored_twice == 0, why
    assert all(r.info.status != "FINISHED" for r in deleted), why
    assert leases == [], (why, leases)
    assert summary["failed"] == 0, (why, summary)
