"""Low-overhead time split of one `targetbench run --agent dqn` on CartPole-v1 (issue #6 measurement).

Wraps the training loop's pieces with perf_counter accumulators (no product-code change, monkeypatching
only in this process) and prints where the loop's wall time goes: env step, acting (ε-greedy forward),
replay insert, learner step (replay sample + TD update + target copy), evaluation, checkpoint, MLflow
logging / flush.

    python benchmarks/profile_ours.py --seeds 0 --steps 50000
    python benchmarks/profile_ours.py --seeds 0-15 --steps 50000
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import io
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TIMES: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)


def wrap(owner, attr: str, label: str) -> None:
    fn = getattr(owner, attr)

    @functools.wraps(fn)
    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            TIMES[label] += time.perf_counter() - t
            CALLS[label] += 1

    setattr(owner, attr, timed)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", default="0")
    p.add_argument("--steps", type=int, default=50_000)
    args = p.parse_args()

    from agents.agent import QAgent
    from suite import cli, trainer, tracking
    from suite.envs import replicas

    wrap(trainer, "train", "train() total")
    wrap(replicas.ReplicaEnvs, "step", "env step (ReplicaEnvs.step)")
    wrap(QAgent, "act", "act (ε-greedy forward)")
    wrap(QAgent, "observe", "replay insert (observe)")
    wrap(QAgent, "after_env_step", "learner (sample+update+target)")
    wrap(QAgent, "update", "  of which TD update (fwd+bwd+Adam)")
    wrap(trainer, "evaluate", "final evaluation")
    wrap(trainer, "save_checkpoint", "checkpoint save")
    wrap(trainer, "_flush_or_keep", "MLflow flush")
    wrap(tracking.RunGroup, "log", "metric buffering (log)")
    wrap(tracking.RunGroup, "log_all", "metric buffering (log_all)")

    tmp = Path(tempfile.mkdtemp(prefix="profile_ours_"))
    argv = ["run", "--agent", "dqn", "--env", "CartPole-v1", "--seed", args.seeds, "--steps", str(args.steps),
            "--json", "--quiet", "--tracking-uri", f"sqlite:///{tmp}/m.db", "--results", str(tmp),
            "--checkpoint-dir", str(tmp / "ck"), "--set", f"train.eval_every={args.steps}"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            rc = cli.main(argv)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if rc:
        sys.exit(rc)
    total = TIMES["train() total"]
    n = len(out.getvalue().splitlines())
    print(f"seeds {args.seeds} ({n} replicas), {args.steps} steps: train() {total:.2f}s")
    print("| part | s | % of train() | calls |\n|---|---:|---:|---:|")
    accounted = 0.0
    for label, s in sorted(TIMES.items(), key=lambda kv: -kv[1]):
        if label == "train() total":
            continue
        if not label.startswith("  "):
            accounted += s
        print(f"| {label} | {s:.2f} | {100 * s / total:.0f}% | {CALLS[label]} |")
    print(f"| rest of the loop (Python glue, setup) | {total - accounted:.2f} | "
          f"{100 * (total - accounted) / total:.0f}% | |")


if __name__ == "__main__":
    main()
