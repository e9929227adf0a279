"""Two sweeps at once on one store (issue 14): two drivers of the same suite, each with its own results folder
(no shared checkpoints), against one SQLite store. Trial leases (suite/scheduler/lease.py) make each trial run
and be recorded once, and no run is deleted: the pruning at sweep start never touches a trial another live
sweep holds."""
import json
import socket
import subprocess
import sys
import time
from collections import Counter

import mlflow
import pytest
import yaml
from mlflow.entities import ViewType

from suite.scheduler.lease import LeaseBook, lease_name, process_id

pytestmark = pytest.mark.fault


def _suite(tmp_path):
    data = {"name": "two", "agents": ["dqn", "dqn-soft"], "envs": ["CartPole-v1"], "seeds": [0, 1, 2],
            "steps": 300, "eval": {"every": 150, "episodes": 1}, "retries": 1, "resources": {"group_size": 1},
            "overrides": {"hidden_sizes": [16], "learning_starts": 50, "buffer_size": 1000, "batch_size": 16}}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_two_sweeps_at_once_record_each_trial_once(tmp_path, fault_log):
    suite = _suite(tmp_path)
    uri = f"sqlite:///{tmp_path}/shared.db"
    procs = [subprocess.Popen([sys.executable, "-m", "suite", "sweep", str(suite), "--workers", "2", "--json",
                               "--quiet", "--tracking-uri", uri, "--results", str(tmp_path / name)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    summaries = [json.loads(out) for out, _ in outs]
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("sweep-two")
    runs = client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL, max_results=1000)
    per_trial = Counter(r.data.tags["trial_hash"] for r in runs)
    assert len(per_trial) == 6 and set(per_trial.values()) == {1}, per_trial  # one run each, none duplicated
    assert all(r.info.lifecycle_stage == "active" and r.info.status == "FINISHED" for r in runs)
    # Every trial was run by exactly one of the two sweeps; the other reported it leased (or, if it started
    # after the first had finished it, skipped).
    ran = Counter(t["trial_hash"] for s in summaries for t in s["trials"] if t["status"] in ("done", "diverged"))
    assert set(ran.values()) == {1} and len(ran) == 6
    assert all(t["status"] in ("done", "diverged", "leased", "skipped") for s in summaries for t in s["trials"])
    assert sum(s["leased"] for s in summaries) >= 1  # the two really overlapped: one met the other's leases
    # Leases are released at the end: nothing is left behind in the registry.
    assert not client.search_registered_models(filter_string="name LIKE 'targetbench-%'")
    fault_log(kind="two-sweeps", trials=6, runs=len(runs), duplicated=sum(per_trial.values()) - 6,
              deleted=sum(r.info.lifecycle_stage != "active" for r in runs),
              leased=sum(s["leased"] for s in summaries))


def test_dead_lease_is_taken_over_and_live_one_is_not(tmp_path):
    uri = f"sqlite:///{tmp_path}/m.db"
    from suite.tracking import ensure_store, open_experiment

    ensure_store(uri)
    client, exp_id = open_experiment(uri, "e", tmp_path / "artifacts")
    now = [1000.0]
    with LeaseBook(client, exp_id, clock=lambda: now[0]) as first:
        assert first.acquire(["t1", "t2", "t4"]) == (["t1", "t2", "t4"], {})
        with LeaseBook(client, exp_id, clock=lambda: now[0]) as second:
            assert second.acquire(["t1", "t3"]) == (["t3"], {"t1": first.sweep_id})
            assert set(second.live()) == {"t1", "t2", "t3", "t4"}
            # The first sweep as if it ran on another host: judged by its heartbeat, live until the TTL passes.
            client.set_registered_model_tag(first.sweep_name, "process", "elsewhere:1:0")
            client.set_registered_model_tag(first.sweep_name, "heartbeat", repr(now[0]))
            now[0] += 30
            assert set(second.live()) == {"t1", "t2", "t3", "t4"}
            now[0] += 31  # no heartbeat for longer than the TTL
            assert set(second.live()) == {"t3"}
            assert second.acquire(["t2"]) == (["t2"], {})
            assert client.get_registered_model(lease_name(exp_id, "t2")).tags["owner"] == second.sweep_id
            first.release(["t2"])  # the first sweep's release leaves the new owner's lease alone
            assert client.get_registered_model(lease_name(exp_id, "t2")).tags["owner"] == second.sweep_id
            # On this host a dead process is seen at once (a sweep restarted after a kill goes on at once) ...
            client.set_registered_model_tag(first.sweep_name, "process", f"{socket.gethostname()}:999999999:0")
            client.set_registered_model_tag(first.sweep_name, "heartbeat", repr(now[0]))
            assert "t4" not in second.live()
            # ... and a worker still training keeps the lease live even when its driver is gone.
            client.set_registered_model_tag(lease_name(exp_id, "t4"), "worker", process_id())
            assert second.live()["t4"] == first.sweep_id
            assert second.acquire(["t4"]) == ([], {"t4": first.sweep_id})
    assert not client.search_registered_models(filter_string="name LIKE 'targetbench-%'")


def test_what_a_crashed_sweep_left_is_cleared_once_it_is_dead(tmp_path):
    """A sweep that died without releasing (its store was away) leaves its record and its leases as registered
    models; clear_expired deletes them (and leases moved aside) once their holders are dead, and leaves alone
    a live sweep's and a lease whose worker still trains."""
    from suite.scheduler.lease import clear_expired
    from suite.tracking import ensure_store, open_experiment

    uri = f"sqlite:///{tmp_path}/m.db"
    ensure_store(uri)
    client, exp_id = open_experiment(uri, "e", tmp_path / "artifacts")
    dead = LeaseBook(client, exp_id).__enter__()
    dead.acquire(["a", "b", "c"])
    dead._stop.set()  # its heartbeat stops: it "crashed" (no release)
    client.set_registered_model_tag(dead.sweep_name, "process", f"{socket.gethostname()}:999999999:0")
    client.set_registered_model_tag(lease_name(exp_id, "c"), "worker", process_id())  # still training
    client.create_registered_model(f"{lease_name(exp_id, 'd')}.expired.1234")  # moved aside earlier
    with LeaseBook(client, exp_id) as live:
        live.acquire(["e"])
        assert live.clear_expired() == 4  # the dead record, leases a and b, the aside copy
        left = sorted(m.name for m in client.search_registered_models(filter_string="name LIKE 'targetbench-%'"))
        assert left == sorted([live.sweep_name, lease_name(exp_id, "c"), lease_name(exp_id, "e")])
        assert clear_expired(client) == 0  # nothing more is dead
    client.delete_registered_model(lease_name(exp_id, "c"))


def test_a_lease_whose_creation_answer_was_lost_is_still_ours(tmp_path):
    """The store created the lease but its answer never arrived (a server dying mid-request): the retry meets
    "already exists", and the lease, ours, is taken, not reported as another sweep's."""
    from suite.tracking import ensure_store, open_experiment

    uri = f"sqlite:///{tmp_path}/m.db"
    ensure_store(uri)
    client, exp_id = open_experiment(uri, "e", tmp_path / "artifacts")
    with LeaseBook(client, exp_id) as book:
        client.create_registered_model(lease_name(exp_id, "t"), tags={"owner": book.sweep_id, "heartbeat": "0"})
        assert book.acquire(["t"]) == (["t"], {})
    assert not client.search_registered_models(filter_string="name LIKE 'targetbench-%'")
