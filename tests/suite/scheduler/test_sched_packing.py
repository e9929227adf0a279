"""--dry-run shows how groups are packed per GPU and the estimated wall time / node-hours per node type (issue
14), with memory from suite/memory.py's estimate."""
import argparse
import json

from suite.scheduler import run_sweep, sweep
from suite.scheduler.cost import NodeType, node_estimates


def _dry(tmp_path, capsys, *extra):
    p = argparse.ArgumentParser()
    sweep.add_arguments(p)
    assert sweep.main(p.parse_args(["smoke", "--dry-run", *extra, "--results", str(tmp_path / "r")])) == 0
    return capsys.readouterr().out


def test_dry_run_prints_gpu_packing_and_node_types(tmp_path, capsys):
    out = _dry(tmp_path, capsys, "--num-gpus", "0.25", "--group-size", "1")
    assert "0.25 GPU each, 4 groups per GPU" in out and "GiB GPU memory each" in out
    assert "cpu-2" in out and "cannot run it (no GPU)" in out
    assert "gpu-8x80GB" in out and "32 groups at once" in out and "node-hours" in out
    data = json.loads(_dry(tmp_path, capsys, "--num-gpus", "0.25", "--group-size", "1", "--json"))
    assert {r["groups_per_gpu"] for r in data["packing"]} == {4} and sum(r["groups"] for r in data["packing"]) == 4
    by_node = {n["node"]: n for n in data["nodes"]}
    assert by_node["gpu-1x80GB"]["groups_at_once"] == 4 and by_node["cpu-16"]["groups_at_once"] == 0
    assert not (tmp_path / "r").exists()


def test_node_estimates_are_bounded_by_cores_ram_and_gpu_memory(tmp_path):
    summary = run_sweep("smoke", dry_run=True, results_dir=tmp_path / "r", workers=2)
    assert summary.packing and all(r["num_gpus"] == 0 for r in summary.packing)
    from suite.scheduler.core import plan_sweep
    from suite.scheduler.spec import load_suite

    groups = plan_sweep(load_suite("smoke"), workers=2, overrides=None, steps=None, finished={}).groups
    nodes = [NodeType("tiny", 64, 0.5), NodeType("few-cores", 1, 64), NodeType("gpu-small", 8, 64, 1, 0.1)]
    rows = {r["node"]: r for r in node_estimates(groups, 1.0, 0.0, nodes)}
    assert rows["tiny"]["groups_at_once"] == 1  # RAM: one ~0.4 GiB group fits in 0.5 GiB
    assert rows["few-cores"]["groups_at_once"] == 1 and rows["few-cores"]["wall_h"] > 0
    gpu_rows = {r["node"]: r for r in node_estimates(groups, 1.0, 0.5, nodes)}
    assert gpu_rows["gpu-small"]["groups_at_once"] == 0 and gpu_rows["gpu-small"]["why"] == "a group does not fit"
    # Two groups per GPU, but this node's wall time counts both lanes: less than one lane would take.
    one_lane = node_estimates(groups, 1.0, 0.0, [NodeType("one", 1, 64)])[0]["wall_h"]
    assert node_estimates(groups, 1.0, 0.5, [NodeType("g", 8, 64, 1, 80)])[0]["wall_h"] < one_lane
