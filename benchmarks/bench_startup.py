"""Start-up before and after a change: a one-seed CartPole run of this checkout and of another (``--before DIR``,
e.g. ``git archive main | tar -x -C DIR``), interleaved, with this interpreter.

Per run: the whole process's wall time (e2e), the training loop's own ``wall_s`` and their difference (imports,
store set-up, the end of the run: what short runs pay for); medians over ``--repeats``; the ``params_sha256`` of
each side (a start-up change must not change them). ``--importtime`` adds ``python -X importtime`` of a 300-step
run of each side: the cumulative import time of the heaviest top-level modules (a module imported in a thread
counts its time in that thread).

    python benchmarks/bench_startup.py --before DIR [--steps 50000] [--repeats 3] [--importtime]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ["-m", "suite.cli", "run", "--agent", "dqn", "--env", "CartPole-v1", "--seed", "0", "--json", "--quiet"]


def one_run(tree: Path, steps: int, extra: list[str] | None = None) -> tuple[float, dict, str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the tree first on the path: it shadows the editable install
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, *(extra or []), *RUN, "--steps", str(steps), "--results", tmp],
                              cwd=tree, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return wall, json.loads(proc.stdout.splitlines()[-1]), proc.stderr


def importtime(tree: Path, top: int) -> list[tuple[str, float]]:
    _, _, err = one_run(tree, 300, ["-X", "importtime"])
    rows = []
    for line in err.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _, cumulative, name = line.split("|")
            if not name.startswith("  ") and cumulative.strip().isdigit():  # top-level imports only
                rows.append((name.strip(), int(cumulative) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:top]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="the other checkout")
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--importtime", action="store_true")
    args = p.parse_args()
    trees = {"before": Path(args.before).resolve(), "after": ROOT}
    runs: dict[str, list[tuple[float, float, str]]] = {k: [] for k in trees}
    for _ in range(args.repeats):
        for name, tree in trees.items():
            wall, res, _ = one_run(tree, args.steps)
            runs[name].append((wall, res["wall_s"], res["params_sha256"]))
            print(f"{name}: e2e {wall:.2f} s, loop {res['wall_s']:.2f} s, outside the loop {wall - res['wall_s']:.2f} s",
                  file=sys.stderr, flush=True)
    print(f"| side | e2e s (median of {args.repeats}) | loop s | outside the loop s | params_sha256 |")
    print("|---|---:|---:|---:|---|")
    for name, rows in runs.items():
        print(f"| {name} | {statistics.median(r[0] for r in rows):.2f} | {statistics.median(r[1] for r in rows):.2f} | "
              f"{statistics.median(r[0] - r[1] for r in rows):.2f} | {', '.join(sorted({r[2][:12] for r in rows}))} |")
    if args.importtime:
        for name, tree in trees.items():
            print(f"\n-X importtime, {name}: " + ", ".join(f"{m} {s:.2f} s" for m, s in importtime(tree, 6)))


if __name__ == "__main__":
    main()
