"""Tracking overhead (issue #6 target 4: below 3 % of wall time with the default logging cadence).

Times the same ``train()`` call (dqn on CartPole-v1, the classic family's default agent and loop settings:
evaluation and checkpoint every 10k steps, training metrics every 1k steps, every episode's return and
length) twice per seed count:

  real   the embedded SQLite store (created before the timer starts, as in a sweep where it exists)
  null   tracking replaced by a null sink: every public ``RunGroup`` method is a no-op and the trainer does
         not open the store (benchmark only; the trainer is not changed). The store is still created before
         the timer, so that both variants import the same modules.

and, with ``--modes null,real,logbatch``, a third variant:

  logbatch  the embedded SQLite store written through MLflow's own ``log_batch`` (the bulk SQLite writer,
            ``suite.sqlite_metrics.SqliteMetricWriter``, switched off), which is what the store costs without it

overhead = (real - null) / real, on wall time and on the process's CPU time (the CPU basis is less disturbed
by other jobs on a shared machine, but does not see time spent waiting for the disk). Each measurement runs
in its own child process, the variants alternate (null, real, null, real, ...), and the median over
``--repeats`` is reported. Besides the differences (noisy on a shared machine: two runs of the same thing
differ by several %), the real run reports the time its training thread spent inside ``RunGroup`` calls
("blocked"; background writes are not in it), which is what the tracking costs the loop directly, and its
checkpoint-writing time (checkpoints also hold the points not yet written).

The real variants also report "write_s": the time spent inside the store writes themselves (``RunGroup._write``,
in whichever thread runs them: mid-run flushes run in the background), as a share of the run's wall time.

    python benchmarks/bench_tracking.py [--steps 50000] [--seeds 1,16] [--repeats 1] [--json]
    python benchmarks/bench_tracking.py --seeds 16 --modes real,logbatch --repeats 2   # the SQLite writer's worth
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
    import suite.recorder as recorder

    recorder.ensure_store = lambda uri: None
    recorder.open_experiment = lambda uri, name, root: (None, "0")


def _time_calls() -> dict[str, float]:
    """Wrap every public ``RunGroup`` method (and checkpoint writes) with a timer of the calling thread."""
    import inspect

    from suite.tracking import RunGroup

    spent = {"blocked_s": 0.0, "checkpoint_s": 0.0, "write_s": 0.0}

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
    import suite.recorder as recorder

    recorder.save_checkpoint = timed(recorder.save_checkpoint, "checkpoint_s")
    RunGroup._write = timed(RunGroup._write, "write_s")
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
        if mode == "logbatch":
            from suite.sqlite_metrics import SqliteMetricWriter

            SqliteMetricWriter.for_uri = classmethod(lambda cls, uri: None)
        started, cpu_started = time.perf_counter(), time.process_time()
        results = train(trial, tracking_uri=uri, experiment="bench", results_dir=Path(tmp),
                        checkpoint_dir=Path(tmp) / "ck", progress=lambda m: None)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        points = None
        if mode != "null":  # what the store holds, so the variants are known to record the same run
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
    p.add_argument("--modes", default="null,real",
                   help="variants, alternating within each repeat (default null,real; add logbatch)")
    p.add_argument("--json", action="store_true", help="print one JSON object per seed count")
    p.add_argument("--child", choices=["real", "null", "logbatch"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, int(args.seeds), args.steps)
        return 0
    modes = args.modes.split(",")
    if not set(modes) <= {"null", "real", "logbatch"} or "real" not in modes:
        raise SystemExit("--modes: a comma list of null, real, logbatch that includes real")
    rows = []
    for n in (int(s) for s in args.seeds.split(",")):
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
        for _ in range(args.repeats):
            for mode in modes:
                runs[mode].append(measure(mode, n, args.steps))
        med = {m: {k: statistics.median(r[k] for r in v) for k in v[0] if k in (
            "wall_s", "cpu_s", "blocked_s", "checkpoint_s", "write_s")} for m, v in runs.items()}
        real = med["real"]
        row = {"seeds": n, "steps": args.steps, "real_s": real["wall_s"], "blocked_s": real["blocked_s"],
               "real_cpu_s": real["cpu_s"], "blocked_pct": round(100 * real["blocked_s"] / real["wall_s"], 2),
               "write_s": real["write_s"], "write_pct": round(100 * real["write_s"] / real["wall_s"], 2),
               "checkpoint_s": real["checkpoint_s"], "points": runs["real"][0]["points"], "repeats": args.repeats,
               # the variants must not change training: all end with the same evaluations and the same points
               "same_results": len({r["mean_final_eval"] for v in runs.values() for r in v}) == 1
               and len({r["points"] for m, v in runs.items() if m != "null" for r in v}) == 1,
               "walls": {m: [r["wall_s"] for r in v] for m, v in runs.items()},
               "cpus": {m: [r["cpu_s"] for r in v] for m, v in runs.items()}}
        if "null" in med:
            null = med["null"]
            row.update(null_s=null["wall_s"], null_cpu_s=null["cpu_s"],
                       overhead_pct=round(100 * (real["wall_s"] - null["wall_s"]) / real["wall_s"], 2),
                       cpu_overhead_pct=round(100 * (real["cpu_s"] - null["cpu_s"]) / real["cpu_s"], 2))
        if "logbatch" in med:
            lb = med["logbatch"]
            row.update(logbatch_s=lb["wall_s"], logbatch_cpu_s=lb["cpu_s"], logbatch_write_s=lb["write_s"],
                       logbatch_write_pct=round(100 * lb["write_s"] / lb["wall_s"], 2),
                       logbatch_blocked_s=lb["blocked_s"])
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
            continue
        text = f"dqn CartPole-v1 x{n} seeds, {args.steps} steps: real store {real['wall_s']:.2f} s"
        if "null" in med:
            text += (f", null sink {row['null_s']:.2f} s, overhead {row['overhead_pct']:+.2f} % (wall difference), "
                     f"{row['cpu_overhead_pct']:+.2f} % (process CPU time {real['cpu_s']:.2f} vs "
                     f"{row['null_cpu_s']:.2f} s)")
        text += (f"; training thread blocked in tracking {real['blocked_s']:.2f} s = {row['blocked_pct']:.2f} %; "
                 f"store writes {real['write_s']:.2f} s = {row['write_pct']:.2f} % of wall")
        if "logbatch" in med:
            text += (f"; through MLflow's log_batch instead: {row['logbatch_s']:.2f} s wall, store writes "
                     f"{row['logbatch_write_s']:.2f} s = {row['logbatch_write_pct']:.2f} % of wall, training thread "
                     f"blocked {row['logbatch_blocked_s']:.2f} s")
        text += (f"; {row['points']} metric points stored; checkpoints {row['checkpoint_s']:.2f} s"
                 + ("" if row["same_results"] else "; WARNING: the variants trained or stored differently"))
        print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
