"""Node loss on a Ray cluster simulated on this machine: a head (no CPUs) and two worker nodes, each worker
running from its own folder ($TARGETBENCH_NODE_DIR), with a loopback MLflow server as the only shared thing (its
artifact store holds the checkpoints: the default with an http tracking URI and --backend ray). The node
running a group is removed (its processes SIGKILLed) once that group has uploaded a checkpoint: the scheduler
resubmits the group, which resumes on the other node from that checkpoint, continuing the same MLflow run.
Then: every trial finished exactly once (one run per trial, FINISHED; nothing deleted), and parameters
(params_sha256) and every metric point (all keys except the wall-clock rate) equal an uninterrupted run's."""
import os
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_tracking_outage import free_port, start_server, stop_server  # noqa: E402

from suite.scheduler import run_sweep  # noqa: E402
from analysis import record_names as names  # noqa: E402

pytestmark = [pytest.mark.fault, pytest.mark.slow]

SUITE = """
name: nodeloss
experiment: sweep-nodeloss
agents: [dqn]
envs: [CartPole-v1]
seeds: [0, 1]
steps: 6000
eval: {every: 1000, episodes: 2}
overrides:
  hidden_sizes: [16]
  learning_starts: 100
  train_frequency: 2
  buffer_size: 2000
  batch_size: 16
  train.log_every: 250
  train.checkpoint_every: 500
resources: {group_size: 1, num_cpus: 1}
retries: 0
"""
WALL_CLOCK_KEYS = set(names.WALL_CLOCK_METRICS)


def _histories(client, run_id, keys):
    return {k: [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, k), key=lambda m: m.step)]
            for k in keys if k not in WALL_CLOCK_KEYS and not k.startswith(names.SYSTEM_PREFIX)}


def test_worker_node_removed_mid_sweep_resumes_elsewhere_exactly(tmp_path, fault_log):
    suite = tmp_path / "nodeloss.yaml"
    suite.write_text(SUITE)
    # The uninterrupted reference: the same suite on the local backend, its own store.
    ref = run_sweep(suite, backend="local", workers=1, results_dir=tmp_path / "ref", progress=False)
    assert ref.done == 2
    ref_client = mlflow.MlflowClient(ref.tracking_uri)
    ref_runs = {r.data.tags["trial_hash"]: r for r in ref_client.search_runs(
        [ref_client.get_experiment_by_name("sweep-nodeloss").experiment_id])}

    port = free_port()
    server = start_server(tmp_path, port)
    uri = f"http://127.0.0.1:{port}"
    node_dirs = {n: tmp_path / n for n in ("node-a", "node-b")}
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = {n: cluster.add_node(num_cpus=1, env_vars={**env, "TARGETBENCH_NODE_DIR": str(d)})
             for n, d in node_dirs.items()}
    box = {}

    def sweep():
        try:
            box["summary"] = run_sweep(suite, backend="ray", ray_address=cluster.address, tracking_uri=uri,
                                       results_dir=tmp_path / "driver", progress=False)
        except BaseException as exc:  # reported by the assertions below
            box["error"] = exc

    thread = threading.Thread(target=sweep)
    try:
        thread.start()
        # Wait for a group that has uploaded a checkpoint (its pointer in the server's artifact store) while
        # still training on its node (its working file in that node's folder), then remove that node.
        artifacts = tmp_path / "server-artifacts"
        victim = name = None
        deadline = time.time() + 300
        while victim is None and time.time() < deadline and thread.is_alive():
            for n, d in node_dirs.items():
                for ck in (d / "checkpoints").glob("*.pt"):
                    if list(artifacts.glob(f"*/checkpoints/{ck.name}/LATEST")):
                        victim, name = n, ck.name
            time.sleep(0.1)
        assert victim is not None, f"no checkpoint uploaded in time: {box}"
        client = mlflow.MlflowClient(uri)
        exp_id = client.get_experiment_by_name("sweep-nodeloss").experiment_id
        group_hash = name.rsplit("-", 1)[1][:-3]
        before = [r.info.run_id for r in client.search_runs([exp_id], f"tags.group_hash = '{group_hash}'")]
        cluster.remove_node(nodes[victim], allow_graceful=False)
        thread.join(timeout=480)
        assert not thread.is_alive(), "the sweep did not end"
        assert "error" not in box, box.get("error")
        summary = box["summary"]
    finally:
        thread.join(timeout=60)
        cluster.shutdown()
        stop_server(server)
        # restarted below only for reading: the store is a SQLite file
    assert (summary.done, summary.failed, summary.lost_attempts) == (2, 0, 1), summary
    server = start_server(tmp_path, port)
    try:
        client = mlflow.MlflowClient(uri)
        exp_id = client.get_experiment_by_name("sweep-nodeloss").experiment_id
        runs = client.search_runs([exp_id], run_view_type=mlflow.entities.ViewType.ALL)
        by_trial = {}
        for r in runs:
            by_trial.setdefault(r.data.tags["trial_hash"], []).append(r)
        assert sorted(by_trial) == sorted(ref_runs)
        assert all(len(v) == 1 and v[0].info.status == "FINISHED" and v[0].info.lifecycle_stage == "active"
                   for v in by_trial.values()), {k: [(r.info.status, r.info.lifecycle_stage) for r in v]
                                                for k, v in by_trial.items()}
        killed = [v[0] for v in by_trial.values() if v[0].data.tags["group_hash"] == group_hash]
        assert [r.info.run_id for r in killed] == before  # resumed: the same run continued, not a fresh one
        survivor = "node-b" if victim == "node-a" else "node-a"
        assert (node_dirs[survivor] / "checkpoints" / name).exists()  # resumed on the other node
        assert not (tmp_path / "driver" / "checkpoints").exists() or not list(
            (tmp_path / "driver" / "checkpoints").glob("*.pt"))  # nothing shared through the driver's folder
        points = 0
        for h, (run,) in by_trial.items():
            want = ref_runs[h]
            assert run.data.tags["params_sha256"] == want.data.tags["params_sha256"], h
            keys = set(want.data.metrics)
            assert set(run.data.metrics) == keys
            got, exp = _histories(client, run.info.run_id, keys), _histories(ref_client, want.info.run_id, keys)
            assert got == exp, h
            points += sum(len(v) for v in exp.values())
    finally:
        stop_server(server)
    fault_log(kind="node-loss", trials=len(by_trial), kills=1, resumes=len(killed), points_compared=points,
              lost=0, duplicated=0)
    print(f"node loss: trials {len(by_trial)}, kills 1, resumes {len(killed)}, points compared {points}, "
          "lost 0, duplicated 0")
