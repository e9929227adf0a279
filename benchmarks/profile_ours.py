"""Where `targetbench run --agent dqn` spends its time, at several seed counts (issue #6 measurement).

Runs ours in this process (through ``suite.cli.main``, the same argv as ``bench_speed.py``) with the training
loop's pieces wrapped by perf_counter timers (monkeypatching in this process only; no product-code change),
and prints one table: for each seed count, the seconds and share of ``trainer.train()`` spent in

  env step          ReplicaEnvs.step (training envs; evaluation's env steps count under evaluation)
  act               QAgent.act (ε-greedy: forward pass + exploration draws)
  replay insert     QAgent.observe
  replay sample     ReplayBuffer.sample (the agent's buffer)
  update            QAgent.update: loss forward, backward, optimizer step (target-rule hooks excluded)
  target rule       the agent's target rule: on_env_step + after_update
  logging/tracking  RunGroup.log / log_all (metric buffering) and RunGroup.flush (MLflow writes)
  evaluation        trainer.evaluate, everything inside it
  checkpoint        recorder.save_checkpoint
  rest              everything else in the loop: glue, metric accumulation, ε schedule, ...

Outside the loop, and shown apart: setup (train() start -> first act: env and agent construction, MLflow import,
store and runs) and finish (Recorder._finish: artifacts, tags, run end). Shares are of the loop (train() minus
setup and finish).

Times are exclusive: a timed call nested in another (e.g. the target rule's after_update inside update) is
counted once, under its own label. On a CUDA device every timed region ends with torch.cuda.synchronize()
(``--no-sync`` to turn that off), else asynchronous kernels would be billed to whichever call waits first.

The wrapped names are the loop's stable boundaries. If one disappears, this script stops with a message
naming it; if one exists but is never called (the loop went around it), the table says so under the table.

    python benchmarks/profile_ours.py --seeds 16 --steps 20000                        # one table row
    python benchmarks/profile_ours.py --scan 1,4,16,64 --steps 20000,20000,20000,8000  # one row per count
    python benchmarks/profile_ours.py --env minatar --scan 1,16 --steps 3000
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import PY, env_bench  # noqa: E402

PARTS = [  # (key, column title)
    ("env", "env step"), ("act", "act"), ("insert", "replay insert"), ("sample", "replay sample"),
    ("update", "update (fwd+bwd+opt)"), ("target", "target rule"), ("logging", "logging/tracking"),
    ("eval", "evaluation"), ("checkpoint", "checkpoint"), ("rest", "rest"),
]  # shares are of the loop: train() minus setup (start -> first act) and finish (Recorder._finish)


class Missing(SystemExit):
    pass


def require(owner, attr: str, what: str):
    """``getattr(owner, attr)``, or stop with a message naming what moved."""
    if not hasattr(owner, attr):
        name = getattr(owner, "__name__", type(owner).__name__)
        raise Missing(f"profile_ours: {what} is gone: {name}.{attr} does not exist any more. The product code "
                      f"changed; point benchmarks/profile_ours.py at the new name.")
    return getattr(owner, attr)


class Timers:
    """Exclusive-time accumulators with a call stack; ``inclusive`` regions silence the timers inside them."""

    def __init__(self, sync=None):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.stack: list[list[float]] = []
        self.inert = 0
        self.sync = sync  # callable run before reading the clock (cuda synchronize), or None
        self.first_act: float | None = None
        self.train_started: float | None = None

    def wrap(self, fn, label: str, inclusive: bool = False):
        perf, stack, seconds, calls, sync = time.perf_counter, self.stack, self.seconds, self.calls, self.sync

        @functools.wraps(fn)
        def timed(*a, **k):
            if self.inert:
                return fn(*a, **k)
            frame = [0.0]
            stack.append(frame)
            if inclusive:
                self.inert += 1
            t0 = perf()
            try:
                return fn(*a, **k)
            finally:
                if sync is not None:
                    sync()
                elapsed = perf() - t0
                if inclusive:
                    self.inert -= 1
                stack.pop()
                seconds[label] += elapsed - frame[0]
                calls[label] += 1
                if stack:
                    stack[-1][0] += elapsed

        return timed

    def patch(self, owner, attr: str, label: str, what: str, inclusive: bool = False) -> None:
        setattr(owner, attr, self.wrap(require(owner, attr, what), label, inclusive))

    def per_call_overhead(self) -> float:
        """Seconds one wrapper adds to a call (measured on a no-op), to estimate the timers' own cost."""
        probe = Timers()
        f = probe.wrap(lambda: None, "x")
        n = 20_000
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        wrapped = time.perf_counter() - t0
        g = lambda: None  # noqa: E731
        t0 = time.perf_counter()
        for _ in range(n):
            g()
        return max(0.0, (wrapped - (time.perf_counter() - t0)) / n)


def instrument(timers: Timers, agent_name: str = "dqn") -> None:
    """Wrap the loop's boundaries (see the module doc). Stops with a clear message if a name is gone."""
    from agents import get_agent
    from suite import trainer, tracking
    from suite.envs import replicas

    agent_cls = get_agent(agent_name).cls
    replica_envs = require(replicas, "ReplicaEnvs", "the lockstep env class")
    timers.patch(replica_envs, "step", "env", "ReplicaEnvs.step (env stepping)")
    # The concrete agent class: a wrapper there also covers methods it inherits from QAgent.
    act = timers.wrap(require(agent_cls, "act", "QAgent.act (action selection)"), "act")

    def act_first(self, *a, **k):
        if timers.first_act is None and not timers.inert:
            timers.first_act = time.perf_counter()
        return act(self, *a, **k)

    agent_cls.act = functools.wraps(act)(act_first)
    timers.patch(agent_cls, "observe", "insert", "QAgent.observe (replay insert)")
    timers.patch(agent_cls, "update", "update", "QAgent.update (TD update)")
    require(agent_cls, "after_env_step", "QAgent.after_env_step (the learner cadence)")
    init = require(agent_cls, "__init__", "the agent constructor")

    @functools.wraps(init)
    def init_and_wrap(self, *a, **k):
        init(self, *a, **k)
        # Per instance: whatever class the buffer and the target rule have, their calls go through these.
        replay = require(self, "replay", "QAgent.replay (the replay buffer)")
        timers.patch(replay, "sample", "sample", "ReplayBuffer.sample (replay sampling)")
        rule = require(self, "target_rule", "QAgent.target_rule")
        timers.patch(rule, "on_env_step", "target", "TargetRule.on_env_step")
        timers.patch(rule, "after_update", "target", "TargetRule.after_update")

    agent_cls.__init__ = init_and_wrap
    run_group = require(tracking, "RunGroup", "the MLflow run group")
    for name in ("log", "log_all", "flush"):
        timers.patch(run_group, name, "logging", f"RunGroup.{name} (metric logging)")
    timers.patch(trainer, "evaluate", "eval", "trainer.evaluate (evaluation)", inclusive=True)
    from suite import recorder  # the loop hands checkpoints and the end of the run to the recorder
    timers.patch(recorder, "save_checkpoint", "checkpoint", "recorder.save_checkpoint", inclusive=True)
    timers.patch(recorder.Recorder, "_finish", "finish", "Recorder._finish (artifacts and run end)", inclusive=True)
    train = timers.wrap(require(trainer, "train", "trainer.train (the training loop)"), "train")

    @functools.wraps(train)
    def train_marked(*a, **k):
        timers.train_started = time.perf_counter()
        return train(*a, **k)

    trainer.train = train_marked
    # the CLI may hold its own reference to train
    from suite import cli
    if getattr(cli, "train", None) is not None and getattr(cli, "train") is not trainer.train:
        cli.train = train_marked


def profile(env_key: str, seeds: int, steps: int, device: str | None = None, sync: bool = True) -> dict:
    """Run ours once in this process with the timers on; return the split (seconds per part) and context."""
    eb = env_bench(env_key)
    sync_fn = None
    if device and device.startswith("cuda") and sync:
        import torch
        sync_fn = torch.cuda.synchronize
    timers = Timers(sync_fn)
    instrument(timers)
    from suite import cli

    tmp = Path(tempfile.mkdtemp(prefix="profile_ours_"))
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli.main(eb.ours_argv(f"0-{seeds - 1}" if seeds > 1 else "0", steps, tmp, device))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if rc:
        raise SystemExit(f"targetbench run failed ({rc}):\n{err.getvalue()[-3000:]}")
    records = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    s, c = timers.seconds, timers.calls
    total = s["train"] + sum(v for k, v in s.items() if k != "train")  # train's exclusive + all nested
    setup = (timers.first_act - timers.train_started) if timers.first_act and timers.train_started else 0.0
    parts = {k: s.get(k, 0.0) for k, _ in PARTS if k != "rest"}
    parts["rest"] = max(0.0, s["train"] - setup)
    finish = s.get("finish", 0.0)
    warnings = []
    expected = {"env": "ReplicaEnvs.step", "act": "QAgent.act", "insert": "QAgent.observe",
                "logging": "RunGroup.log/log_all/flush", "eval": "trainer.evaluate", "target": "the target rule"}
    if steps > eb.scaled(steps)["learning_starts"]:
        expected.update(sample="ReplayBuffer.sample", update="QAgent.update")
    for k, name in expected.items():
        if c.get(k, 0) == 0:
            warnings.append(f"{name} was never called at {seeds} seeds: the loop no longer goes through it, so "
                            f"its time is counted under 'rest' (update benchmarks/profile_ours.py)")
    overhead = Timers().per_call_overhead() * sum(v for k, v in c.items() if k != "train")
    return dict(env=env_key, seeds=seeds, steps=steps, total_s=total, setup_s=setup, finish_s=finish,
                loop_s=total - setup - finish, json_wall_s=max(r["wall_s"] for r in records),
                parts=parts, calls={k: c.get(k, 0) for k in list(parts) + ["finish"]}, timer_overhead_s=overhead,
                device=records[0].get("device", "?"), final_eval_return=sum(r["final_eval_return"] for r in records)
                / len(records), warnings=warnings)


def profile_child(env_key: str, seeds: int, steps: int, device: str | None, sync: bool) -> dict:
    """``profile`` in a fresh interpreter (clean memory and torch state for every seed count)."""
    cmd = [PY, __file__, "--env", env_key, "--seeds", str(seeds), "--steps", str(steps), "--json"]
    if device:
        cmd += ["--device", device]
    if not sync:
        cmd.append("--no-sync")
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"profile_ours child failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}"
                         f"{p.stdout[-1000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    """One Markdown table, a row per seed count: seconds (share of the loop) per part."""
    head = ("| seeds | steps/seed | train() s | setup s | finish s | loop s | agg. env steps/s (loop) | "
            + " | ".join(title for _, title in PARTS) + " |")
    lines = [head, "|" + "---:|" * (7 + len(PARTS))]
    for r in rows:
        loop = r["loop_s"]
        cells = [f"{r['parts'][k]:.2f} ({100 * r['parts'][k] / loop:.0f}%)" for k, _ in PARTS]
        lines.append(f"| {r['seeds']} | {r['steps']:,} | {r['total_s']:.1f} | {r['setup_s']:.1f} | "
                     f"{r['finish_s']:.1f} | {loop:.1f} | {r['seeds'] * r['steps'] / loop:,.0f} | "
                     + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Per replica-step (µs of each part / (seeds × steps)):")
    lines.append("")
    lines.append("| seeds | loop | " + " | ".join(title for _, title in PARTS) + " |")
    lines.append("|" + "---:|" * (2 + len(PARTS)))
    for r in rows:
        n = r["seeds"] * r["steps"]
        lines.append(f"| {r['seeds']} | {1e6 * r['loop_s'] / n:.1f} | "
                     + " | ".join(f"{1e6 * r['parts'][k] / n:.1f}" for k, _ in PARTS) + " |")
    notes = []
    for r in rows:
        notes += [f"- {w}" for w in r["warnings"]]
        if r["timer_overhead_s"] > 0.02 * r["loop_s"]:
            notes.append(f"- {r['seeds']} seeds: the timers themselves cost ~{r['timer_overhead_s']:.2f} s "
                         f"({100 * r['timer_overhead_s'] / r['loop_s']:.0f}% of the loop), spread over the parts")
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def scan(env_key: str, counts: list[int], steps: list[int], device: str | None = None, sync: bool = True,
         say=None) -> tuple[list[dict], str]:
    """Profile ours at each seed count (a child process each); return the rows and the Markdown table."""
    if len(steps) == 1:
        steps = steps * len(counts)
    if len(steps) != len(counts):
        raise SystemExit(f"--steps needs 1 or {len(counts)} values, got {len(steps)}")
    rows = []
    for n, st in zip(counts, steps):
        t = time.perf_counter()
        rows.append(profile_child(env_key, n, st, device, sync))
        if say:
            say(f"[profile_ours] {env_key} {n} seeds x {st} steps: train() {rows[-1]['total_s']:.1f}s "
                f"({time.perf_counter() - t:.0f}s with process start)")
    eb = env_bench(env_key)
    scaled = ", ".join(f"{k}={v}" for k, v in eb.scaled(steps[0]).items())
    head = (f"Time split of ours (`targetbench run --agent dqn --env {eb.env_id}`), {eb.title}; device "
            f"{rows[0]['device']}; budget-scaled settings at {steps[0]:,} steps: {scaled} (scaled per row). "
            f"setup = `trainer.train()` start to the first `act` (env and agent construction, MLflow import, store "
            f"and runs); finish = `Recorder._finish` (artifacts, tags); loop = the rest of `train()`, split below in "
            f"seconds (share of the loop), exclusive. Timers wrap the loop's boundaries in the profiled process "
            f"(benchmarks/profile_ours.py).\n\n")
    return rows, head + table(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="cartpole", help="cartpole or minatar (default cartpole)")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds (0..N-1) for a single profile")
    p.add_argument("--scan", default=None, help="comma-separated seed counts, e.g. 1,4,16,64 (one child each)")
    p.add_argument("--steps", default="20000", help="env steps per seed; with --scan one value or one per count")
    p.add_argument("--device", default=None, help="passed as --set train.device=...")
    p.add_argument("--no-sync", action="store_true", help="on CUDA, do not synchronize at the end of each region")
    p.add_argument("--json", action="store_true", help="single profile: print one JSON line")
    args = p.parse_args()
    steps = [int(x) for x in args.steps.split(",") if x]
    if args.scan:
        counts = [int(x) for x in args.scan.split(",") if x]
        _, text = scan(args.env, counts, steps, args.device, not args.no_sync,
                       say=lambda m: print(m, file=sys.stderr, flush=True))
        print(text)
        return
    r = profile(args.env, args.seeds, steps[0], args.device, not args.no_sync)
    if args.json:
        print(json.dumps(r))
    else:
        print(table([r]))


if __name__ == "__main__":
    main()
