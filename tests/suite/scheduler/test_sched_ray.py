"""The Ray backend against a local Ray instance: the smoke suite runs, records its runs, and a rerun skips."""
import mlflow
import pytest

ray = pytest.importorskip("ray")

from suite.scheduler import run_sweep  # noqa: E402


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.slow  # a local Ray cluster: minutes on 2 cores (make test-all)
def test_smoke_suite_on_local_ray(tmp_path, local_ray):
    summary = run_sweep("smoke", backend="ray", results_dir=tmp_path / "r", progress=False)
    assert (summary.done, summary.failed, summary.backend) == (4, 0, "ray")
    client = mlflow.MlflowClient(summary.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("sweep-smoke").experiment_id])
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["variant"] for r in runs} == {"default"}
    assert sorted((r.data.tags["agent"], r.data.tags["seed"]) for r in runs) == [
        ("dqn", "0"), ("dqn", "1"), ("dqn-soft", "0"), ("dqn-soft", "1")]
    again = run_sweep("smoke", backend="ray", results_dir=tmp_path / "r", progress=False)
    assert again.skipped == 4 and again.groups == 0
