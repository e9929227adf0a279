"""What ``train.amp`` and ``train.compile`` cost and give (issue #23), measured two ways:

1. per update call (``QAgent.update``: gradient + optimizer), µs, for the learner paths a run can take: the numpy
   kernels (``kernels=auto``, the default for dqn), torch eager, torch with bf16 autocast, torch.compile, and
   torch.compile with bf16; CartPole MLP (batch 128, Adam) and MinAtar CNN (batch 32, centred RMSProp, Huber),
   at 1 and 16 replicas; medians of ``--repeats`` x ``--calls`` calls after warm-up (compile time reported apart);
2. end to end: ``targetbench run --agent dqn --env CartPole-v1`` at 1 and 16 seeds with each option, whole process
   wall and the loop's own ``wall_s``, interleaved so every variant sees the same machine;

plus the agreement of compiled and eager updates (max |Δθ| after ``--agree-updates`` updates on the same batches,
relative to max |θ|): the tolerance behind ``train.compile`` being left out of trial identity.

    python benchmarks/bench_train_options.py [--calls 100] [--repeats 3] [--e2e-steps 20000] [--e2e-repeats 1]
        [--skip-e2e] [--out results/bench_train_options.md]
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

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents import get_agent  # noqa: E402
from agents.learners import TorchOptions  # noqa: E402
from suite.envs import get_family  # noqa: E402

TARGETBENCH = str(Path(sys.executable).with_name("targetbench"))
PATHS = {"numpy": ("auto", TorchOptions()), "torch": ("torch", TorchOptions()),
         "torch bf16": ("torch", TorchOptions(amp="bf16")), "compile": ("torch", TorchOptions(compile=True)),
         "compile bf16": ("torch", TorchOptions(amp="bf16", compile=True))}
NETS = {"CartPole MLP": ("classic", (4,), 2), "MinAtar CNN": ("minatar", (4, 10, 10), 6)}


def make_agent(family: str, obs_shape, actions: int, replicas: int, kernels: str, options: TorchOptions):
    spec = get_agent("dqn")
    fam = get_family(family)
    cfg = fam.agent_config(spec.config_cls, {"learning_starts": "0"})
    agent = spec.cls(cfg, obs_shape=obs_shape, obs_dtype=np.float32 if family == "classic" else np.uint8,
                     num_actions=actions, seeds=list(range(replicas)), family=fam.facts, total_steps=100_000,
                     kernels=kernels)
    if options.active:
        agent.use_torch_options(options)
    rng = np.random.default_rng(0)
    for _ in range(max(cfg.batch_size * 2, 300)):
        draw = rng.random((replicas, *obs_shape))
        obs = draw.astype(np.float32) if family == "classic" else (draw < 0.1).astype(np.uint8)
        agent.observe(obs, rng.integers(0, actions, replicas), rng.random(replicas, dtype=np.float32), obs,
                      rng.random(replicas) < 0.05)
    return agent


def time_updates(agent, calls: int, repeats: int) -> tuple[float, float]:
    """(first call s, median µs per call)."""
    batch = agent.replay.sample(agent.config.batch_size)
    t = time.perf_counter()
    agent.update(batch)
    first = time.perf_counter() - t
    for _ in range(3):
        agent.update(batch)
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            agent.update(batch)
        runs.append((time.perf_counter() - t) / calls * 1e6)
    return first, statistics.median(runs)


def per_call(calls: int, repeats: int, say) -> str:
    torch.set_num_threads(1)
    lines = ["| network | replicas | " + " | ".join(PATHS) + " | compile time (first call) |",
             "|---|---:|" + "---:|" * len(PATHS) + "---:|"]
    for net, (family, shape, actions) in NETS.items():
        for replicas in (1, 16):
            cells, compile_s = [], "–"
            for name, (kernels, options) in PATHS.items():
                agent = make_agent(family, shape, actions, replicas, kernels, options)
                first, us = time_updates(agent, calls, repeats)
                status = agent.torch_learner.compile_status if agent.torch_learner is not None else "off"
                cells.append(f"{us:,.0f}" + ("" if status in ("on", "off") else " (fell back)"))
                if name == "compile":
                    compile_s = f"{first:.1f} s"
                say(f"[bench_train_options] {net} x{replicas} {name}: {us:,.0f} us (first call {first:.2f} s)")
            lines.append(f"| {net} | {replicas} | " + " | ".join(cells) + f" | {compile_s} |")
    return "\n".join(lines) + "\n"


def agreement(updates: int) -> str:
    """max |θ_compiled - θ_eager| / max |θ| after ``updates`` updates on the same batches, per network."""
    out = []
    for net, (family, shape, actions) in NETS.items():
        eager = make_agent(family, shape, actions, 2, "torch", TorchOptions())
        comp = make_agent(family, shape, actions, 2, "torch", TorchOptions(compile=True))
        for _ in range(updates):
            batch = eager.replay.sample(eager.config.batch_size)
            eager.update(batch)
            comp.update(batch)
        diff = max(float((a - b).abs().max()) for a, b in zip(eager.trainable_parameters(), comp.trainable_parameters()))
        scale = max(float(a.abs().max()) for a in eager.trainable_parameters())
        out.append(f"{net}: {diff / scale:.1e} (max |Δθ| {diff:.1e}, max |θ| {scale:.2f})")
    return "; ".join(out)


def e2e(steps: int, repeats: int, say) -> str:
    variants = {"default (numpy kernels)": [], "train.kernels=torch": ["--set", "train.kernels=torch"],
                "train.amp=bf16": ["--set", "train.amp=bf16"], "train.compile=true": ["--set", "train.compile=true"]}
    rows = {}
    for _ in range(repeats):
        for seeds in ("0", "0-15"):
            for name, extra in variants.items():
                with tempfile.TemporaryDirectory() as tmp:
                    cmd = [TARGETBENCH, "run", "--agent", "dqn", "--env", "CartPole-v1", "--seed", seeds, "--steps",
                           str(steps), "--results", tmp, "--json", "--quiet", *extra]
                    if seeds != "0":
                        cmd += ["--set", "train.threads=2"]
                    t = time.perf_counter()
                    p = subprocess.run(cmd, capture_output=True, text=True)
                    wall = time.perf_counter() - t
                if p.returncode != 0:
                    raise RuntimeError(p.stderr[-2000:])
                res = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
                rows.setdefault((seeds, name), []).append((wall, res[0]["wall_s"],
                                                            float(np.mean([r["final_eval_return"] for r in res]))))
                say(f"[bench_train_options] e2e seeds {seeds} {name}: {wall:.1f} s (loop {res[0]['wall_s']:.1f} s)")
    lines = [f"| seeds | option | wall s, e2e | wall s, loop | vs default (e2e) | final eval (mean) |",
             "|---:|---|---:|---:|---:|---:|"]
    for seeds in ("0", "0-15"):
        base = statistics.median(r[0] for r in rows[(seeds, "default (numpy kernels)")])
        for name in variants:
            r = rows[(seeds, name)]
            w, loop = statistics.median(x[0] for x in r), statistics.median(x[1] for x in r)
            lines.append(f"| {1 if seeds == '0' else 16} | {name} | {w:.1f} | {loop:.1f} | {base / w:.2f}x | "
                         f"{statistics.median(x[2] for x in r):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--agree-updates", type=int, default=50)
    p.add_argument("--e2e-steps", type=int, default=20_000)
    p.add_argument("--e2e-repeats", type=int, default=1)
    p.add_argument("--skip-e2e", action="store_true")
    p.add_argument("--out", default="results/bench_train_options.md")
    args = p.parse_args()
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    started = time.perf_counter()
    text = ["## Per update call, µs (one thread)", "", per_call(args.calls, args.repeats, say),
            f"Compiled vs eager after {args.agree_updates} updates on the same batches, relative to max |θ|: "
            f"{agreement(args.agree_updates)}.", ""]
    if not args.skip_e2e:
        text += [f"## End to end, CartPole-v1, {args.e2e_steps:,} env steps per seed (median of {args.e2e_repeats})",
                 "", e2e(args.e2e_steps, args.e2e_repeats, say)]
    body = "\n".join(text) + f"\nTotal {time.perf_counter() - started:.0f} s.\n"
    print(body)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# bench_train_options\n\nCommand: `python benchmarks/bench_train_options.py "
                   + " ".join(sys.argv[1:]) + "`\n\n" + body)


if __name__ == "__main__":
    main()
