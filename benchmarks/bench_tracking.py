"""Tracking overhead (issue #6 target 4: below 3 % of wall time with the default logging cadence).

Times the same ``train()`` call (dqn on CartPole-v1, the classic family's default agent and loop settings:
evaluation and checkpoint every 10k steps, training metrics every 1k steps, every episode's return and
length) twice per seed count:

  real   the embedded SQLite store (created before the timer starts, as in a sweep where it exists)
  null   tracking replaced by a null sink: every public ``RunGroup`` method is a no-op and the trainer does
         not open the store (benchmark only; the trainer is not changed). The store is still created before
         the timer, so that both variants import the same modules.

overhead = (real - null) / real, on wall time and on the process's CPU time (the CPU basis is less disturbed
by other jobs on a shared machine, but does not see time spent waiting for the disk). Each measurement runs
in its own child process, the variants alternate (null, real, null, real, ...), and the median over
``--repeats`` is reported. Besides the differences (noisy on a shared machine: two runs of the same thing
differ by several %), the real run reports the time its training thread spent inside ``RunGroup`` calls
("blocked"; background writes are not in it), which is what the tracking costs the loop directly, and its
checkpoint-writing time (checkpoints also hold the points not yet written).

    python benchmarks/bench_tracking.py [--steps 50000] [--seeds 1,16] [--repeats 1] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------- child
def _null_sink() -> None:
    """Replace tracking with no-ops, in this process only."""
    import inspect

    import suite.trainer as trainer
    from suite.tracking import RunGroup

    class NullClient:
        """Answers every MLflow client call with nothing (create_run with a fake id)."""

        tracking_uri = None

        def create_run(self, *args: Any, **kwargs: Any) -> Any:
            from types import SimpleNamespace

            return SimpleNamespace(info=SimpleNamespace(run_id="null"))

        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: None

    real_init = RunGroup.__init__

    def init(self: Any, client: Any, *args: Any, **kwargs: Any) -> None:
        real_init(self, NullClient(), *args, **kwargs)  # every attribute the trainer reads exists

    def noop(self: Any, *args: Any, **kwargs: Any) -> None:
        return None

    for name, member in inspect.getmembers(RunGroup, inspect.isfunction):
        if not name.startswith("_"):
            setattr(RunGroup, name, noop)
    RunGroup.__init__ = init
    trainer.ensure_store = lambda uri: None
    trainer.open_experiment = lambda uri, name, root: (None, "0")


def _time_calls() -> dict[str, float]:
    """Wrap every public ``RunGroup`` method (and checkpoint writes) with a timer of the calling thread."""
    import inspect

    import suite.trainer as trainer
    from suite.tracking import RunGroup

    spent = {"blocked_s": 0.0, "checkpoint_s": 0.0}

    def timed(fn: Any, key: str) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[key] += time.perf_counter() - t
        return wrapper

    for name, member in inspect.getmembers(RunGroup, inspect.isfunction):
        if not name.startswith("_") or name == "__init__":
            setattr(RunGroup, name, timed(member, "blocked_s"))
    trainer.save_checkpoint = timed(trainer.save_checkpoint, "checkpoint_s")
    return spent


def child(mode: str, seeds: int, steps: int) -> None:
    """One measurement; prints one JSON line."""
    import torch

    torch.set_num_threads(1)
    from suite.trainer import train
    from suite.tracking import ensure_store, open_experiment
    from suite.trial import build_trial

    trial = build_trial("dqn", "CartPole-v1", tuple(range(seeds)), steps=steps)
    with tempfile.TemporaryDirectory(prefix="bench_tracking_") as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        # Both variants create the store before the timer: the same modules are imported (MLflow, SQLAlchemy:
        # ~1 s, and a larger heap for the garbage collector) and the schema migrations of a new store are a
        # one-time cost of the store, not of a run. What differs is only what recording the run costs.
        ensure_store(uri)
        open_experiment(uri, "bench", Path(tmp) / "artifacts")
        spent: dict[str, float] = {}
        if mode == "null":
            _null_sink()
        else:
            spent = _time_calls()
        started, cpu_started = time.perf_counter(), time.process_time()
        results = train(trial, tracking_uri=uri, experiment="bench", results_dir=Path(tmp),
                        checkpoint_dir=Path(tmp) / "ck", progress=lambda m: None)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        points = None
        if mode == "real":  # what the store holds, so both variants are known to record the same run
            import mlflow

            client = mlflow.MlflowClient(uri)
            points = sum(len(client.get_metric_history(r.run_id, key))
                         for r in results for key in client.get_run(r.run_id).data.metrics)
    print(json.dumps({"mode": mode, "seeds": seeds, "steps": steps, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                      "points": points, **{k: round(v, 3) for k, v in spent.items()},
                      "mean_final_eval": sum(r.final_eval_return for r in results) / len(results)}))


# ----------------------------------------------------------------------------------------------- parent
def measure(mode: str, seeds: int, steps: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--seeds", str(seeds), "--steps", str(steps)],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"child {mode} x{seeds} failed:\n{out.stderr[-3000:]}")
    return json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=50_000, help="env steps per seed (default 50000)")
    p.add_argument("--seeds", default="1,16", help="seed counts to measure, comma-separated (default 1,16)")
    p.add_argument("--repeats", type=int, default=1, help="pairs of runs per seed count (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object per seed count")
    p.add_argument("--child", choices=["real", "null"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, int(args.seeds), args.steps)
        return 0
    rows = []
    for n in (int(s) for s in args.seeds.split(",")):
        runs: dict[str, list[dict[str, Any]]] = {"null": [], "real": []}
        for _ in range(args.repeats):
            for mode in ("null", "real"):
                runs[mode].append(measure(mode, n, args.steps))
        real = statistics.median(r["wall_s"] for r in runs["real"])
        null = statistics.median(r["wall_s"] for r in runs["null"])
        blocked = statistics.median(r["blocked_s"] for r in runs["real"])
        real_cpu = statistics.median(r["cpu_s"] for r in runs["real"])
        null_cpu = statistics.median(r["cpu_s"] for r in runs["null"])
        row = {"seeds": n, "steps": args.steps, "real_s": real, "null_s": null,
               "overhead_pct": round(100 * (real - null) / real, 2), "blocked_s": blocked,
               "real_cpu_s": real_cpu, "null_cpu_s": null_cpu,
               "cpu_overhead_pct": round(100 * (real_cpu - null_cpu) / real_cpu, 2),
               "blocked_pct": round(100 * blocked / real, 2),
               "checkpoint_s": statistics.median(r["checkpoint_s"] for r in runs["real"]),
               "points": runs["real"][0]["points"], "repeats": args.repeats,
               # the null sink must not change training: both variants end with the same evaluations
               "same_results": len({r["mean_final_eval"] for v in runs.values() for r in v}) == 1,
               "walls": {m: [r["wall_s"] for r in v] for m, v in runs.items()},
               "cpus": {m: [r["cpu_s"] for r in v] for m, v in runs.items()}}
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"dqn CartPole-v1 x{n} seeds, {args.steps} steps: real store {real:.2f} s, null sink {null:.2f} s, "
                  f"overhead {row['overhead_pct']:+.2f} % (wall difference), {row['cpu_overhead_pct']:+.2f} % (process "
                  f"CPU time {real_cpu:.2f} vs {null_cpu:.2f} s); training thread blocked in tracking "
                  f"{blocked:.2f} s = {row['blocked_pct']:.2f} %; {row['points']} metric points stored; "
                  f"checkpoints {row['checkpoint_s']:.2f} s"
                  + ("" if row["same_results"] else "; WARNING: the variants trained differently"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
