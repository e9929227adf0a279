"""Side-by-side speed benchmark for issue #6: TargetBench DQN vs a CleanRL-shaped reference vs SB3.

All contenders train DQN on CartPole-v1 with CleanRL ``dqn.py`` hyperparameters (MLP 120-84, Adam 2.5e-4,
buffer 10k, batch 128, learning_starts 10k, train every 10 steps, hard target every 500 steps, gamma 0.99,
epsilon 1 -> 0.05 over half the run, MSE; SB3 uses its fixed Huber loss) and evaluate once at the end.

Contenders (each run in its own child process, peak RSS read from ``wait4``):
  reference x1        benchmarks/reference_dqn.py, seed 0
  ours x1             targetbench run --agent dqn --seed 0
  reference 16 (2 at a time)  16 reference processes, seeds 0-15, two running at once (2 cores)
  ours x16            targetbench run --agent dqn --seed 0-15 (one process)
  sb3 x1              stable_baselines3.DQN, seed 0 (skipped when SB3 is not installed)

Two bases are reported. "loop": the training loop's own timer (the JSON ``wall_s`` of targetbench and of
the reference, SB3's learn()+eval); for the 16-seed reference, sum of per-seed loop times / 2 (ideal
packing on 2 cores). "e2e": wall clock of the whole child process(es), imports and startup included.

    python benchmarks/bench_speed.py [--steps 50000] [--repeats 3] [--quick] [--out results/bench_speed.md]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TARGETBENCH = str(Path(PY).with_name("targetbench"))
REFERENCE = str(ROOT / "benchmarks" / "reference_dqn.py")

# The CleanRL values. The classic family's defaults already equal them (see `targetbench agents --json`),
# set explicitly so the benchmark stays valid if a default moves.
OURS_SET = [
    "hidden_sizes=120,84", "optimizer=adam", "learning_rate=0.00025", "loss=mse", "buffer_size=10000",
    "batch_size=128", "learning_starts=10000", "train_frequency=10", "target_period=500", "gamma=0.99",
    "epsilon_schedule=linear", "epsilon_start=1.0", "epsilon_end=0.05", "exploration_fraction=0.5",
    "max_grad_norm=none",
]


# ----------------------------------------------------------------------------------------------- children
def _sb3_child(seed: int, steps: int) -> None:
    """Train SB3 DQN in this process and print one JSON line (wall_s = learn() + final eval)."""
    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)  # as ours and the reference
    env = gym.make("CartPole-v1")
    model = DQN(
        "MlpPolicy", env, learning_rate=2.5e-4, buffer_size=10_000, learning_starts=10_000, batch_size=128,
        tau=1.0, gamma=0.99, train_freq=10, gradient_steps=1, target_update_interval=500,
        exploration_fraction=0.5, exploration_initial_eps=1.0, exploration_final_eps=0.05,
        max_grad_norm=1e10,  # effectively off, as CleanRL / ours (SB3 still computes the norm)
        policy_kwargs=dict(net_arch=[120, 84]), seed=seed, device="cpu", verbose=0)
    started = time.perf_counter()
    model.learn(total_timesteps=steps)
    eval_env = gym.make("CartPole-v1")
    eval_env.action_space.seed(seed + 10_000)
    rng = np.random.default_rng(seed + 10_000)
    returns = []
    for ep in range(10):
        obs, _ = eval_env.reset(seed=seed + 10_000 + ep)
        done, total = False, 0.0
        while not done:
            if rng.random() < 0.001:
                action = eval_env.action_space.sample()
            else:
                action, _ = model.predict(obs, deterministic=True)
            obs, r, term, trunc, _ = eval_env.step(int(action))
            total += float(r)
            done = term or trunc
        returns.append(total)
    wall = time.perf_counter() - started
    print(json.dumps(dict(seed=seed, steps=steps, wall_s=round(wall, 3), sps=round(steps / wall, 1),
                          final_eval_return=float(np.mean(returns)))))


# ----------------------------------------------------------------------------------------------- running
class Proc:
    def __init__(self, cmd: list[str], workdir: Path):
        self.out = open(workdir / f"out_{id(self)}.txt", "w+")
        self.err = open(workdir / f"err_{id(self)}.txt", "w+")
        self.cmd = cmd
        self.p = subprocess.Popen(cmd, stdout=self.out, stderr=self.err, cwd=ROOT)
        self.maxrss_kb = 0

    def finish(self, status: int, rusage) -> list[dict]:
        self.p.returncode = os.waitstatus_to_exitcode(status)
        self.maxrss_kb = rusage.ru_maxrss
        self.out.seek(0)
        self.err.seek(0)
        text, err = self.out.read(), self.err.read()
        self.out.close()
        self.err.close()
        if self.p.returncode != 0:
            raise RuntimeError(f"{' '.join(self.cmd)} failed ({self.p.returncode}):\n{err[-3000:]}")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def run_pool(cmds: list[list[str]], parallel: int) -> dict:
    """Run cmds, at most `parallel` at once; return records, e2e wall and peak RSS per process (MiB)."""
    work = Path(tempfile.mkdtemp(prefix="bench_speed_"))
    pending, running, records, rss = list(cmds), {}, [], []
    started = time.perf_counter()
    try:
        while pending or running:
            while pending and len(running) < parallel:
                pr = Proc(pending.pop(0), work)
                running[pr.p.pid] = pr
            pid, status, rusage = os.wait4(-1, 0)
            pr = running.pop(pid, None)
            if pr is None:
                continue
            records.extend(pr.finish(status, rusage))
            rss.append(pr.maxrss_kb / 1024)
    finally:
        for pr in running.values():
            pr.p.kill()
        shutil.rmtree(work, ignore_errors=True)
    return dict(records=records, e2e_s=time.perf_counter() - started, rss_mib=max(rss))


def ours_cmd(seeds: str, steps: int, tmp: Path) -> list[str]:
    cmd = [TARGETBENCH, "run", "--agent", "dqn", "--env", "CartPole-v1", "--seed", seeds, "--steps", str(steps),
           "--json", "--quiet", "--tracking-uri", f"sqlite:///{tmp}/m.db", "--results", str(tmp),
           "--checkpoint-dir", str(tmp / "checkpoints"), "--set", f"train.eval_every={steps}"]
    for kv in OURS_SET:
        cmd += ["--set", kv]
    return cmd


def measure(name: str, steps: int, n_seeds: int) -> dict:
    """One repeat of one contender: dict(loop_s, e2e_s, rss_mib, ret, seeds)."""
    if name == "ref1":
        r = run_pool([[PY, REFERENCE, "--seed", "0", "--steps", str(steps), "--json"]], 1)
        loop = r["records"][0]["wall_s"]
    elif name == "refN":
        cmds = [[PY, REFERENCE, "--seed", str(s), "--steps", str(steps), "--json"] for s in range(n_seeds)]
        r = run_pool(cmds, 2)
        loop = sum(x["wall_s"] for x in r["records"]) / 2  # ideal packing on two cores
    elif name == "sb3":
        r = run_pool([[PY, __file__, "--_child", "sb3", "--_seed", "0", "--steps", str(steps)]], 1)
        loop = r["records"][0]["wall_s"]
    elif name in ("ours1", "oursN"):
        tmp = Path(tempfile.mkdtemp(prefix="bench_ours_"))
        try:
            seeds = "0" if name == "ours1" else f"0-{n_seeds - 1}"
            r = run_pool([ours_cmd(seeds, steps, tmp)], 1)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        loop = max(x["wall_s"] for x in r["records"])  # seeds share one loop
    else:
        raise ValueError(name)
    rets = [x["final_eval_return"] for x in r["records"]]
    return dict(loop_s=loop, e2e_s=r["e2e_s"], rss_mib=r["rss_mib"], ret=statistics.mean(rets),
                ret_min=min(rets), ret_max=max(rets), seeds=len(r["records"]))


def sb3_available() -> bool:
    return subprocess.run([PY, "-c", "import stable_baselines3"], capture_output=True).returncode == 0


# ----------------------------------------------------------------------------------------------- report
LABELS = {
    "ref1": "reference (CleanRL-shaped), 1 seed",
    "ours1": "ours `targetbench run`, 1 seed",
    "sb3": "Stable-Baselines3 2.9.2 DQN, 1 seed",
    "refN": "reference, {n} seeds, 2 processes at a time",
    "oursN": "ours `targetbench run`, {n} seeds, 1 process",
}


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}; Python "
            f"{platform.python_version()}, torch {torch.__version__}, {platform.system()} {platform.release()}")


def report(res: dict, steps: int, repeats: int, n_seeds: int, notes: list[str]) -> str:
    agg = {}
    for k, runs in res.items():
        loop = statistics.median(r["loop_s"] for r in runs)
        e2e = statistics.median(r["e2e_s"] for r in runs)
        seeds = runs[0]["seeds"]
        agg[k] = dict(loop=loop, e2e=e2e, seeds=seeds, sps_loop=seeds * steps / loop,
                      sps_e2e=seeds * steps / e2e, rss=max(r["rss_mib"] for r in runs),
                      ret=statistics.median(r["ret"] for r in runs),
                      rmin=min(r["ret_min"] for r in runs), rmax=max(r["ret_max"] for r in runs))
    base = {"ref1": "ref1", "ours1": "ref1", "sb3": "ref1", "refN": "refN", "oursN": "refN"}
    lines = [
        f"Steps per seed: {steps:,}; repeats: {repeats} (median shown); machine: {machine()}",
        "",
        "| contender | seeds | wall s, loop (median) | wall s, e2e (median) | env steps/s agg., loop | "
        "env steps/s agg., e2e | ratio vs reference (loop / e2e) | peak RSS MiB | final eval return |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k in ("ref1", "ours1", "sb3", "refN", "oursN"):
        if k not in agg:
            continue
        a, b = agg[k], agg.get(base[k])
        ratio = (f"{a['sps_loop'] / b['sps_loop']:.2f}x / {a['sps_e2e'] / b['sps_e2e']:.2f}x" if b else "n/a")
        rss = f"2 x {a['rss']:.0f}" if k == "refN" else f"{a['rss']:.0f}"
        ret = (f"{a['ret']:.1f}" if a["seeds"] == 1 else f"{a['ret']:.1f} (mean; {a['rmin']:.0f}-{a['rmax']:.0f})")
        lines.append(f"| {LABELS[k].format(n=n_seeds)} | {a['seeds']} | {a['loop']:.1f} | {a['e2e']:.1f} | "
                     f"{a['sps_loop']:,.0f} | {a['sps_e2e']:,.0f} | {ratio} | {rss} | {ret} |")
    lines += ["", "Headline targets of issue #6 (ratio of aggregate env steps/s; loop basis / e2e basis):", ""]

    def verdict(x_loop, x_e2e, need):
        ok_l, ok_e = x_loop >= need, x_e2e >= need
        word = "MET" if ok_l and ok_e else ("NOT MET" if not ok_l and not ok_e else "MET on one basis only")
        return f"{x_loop:.2f}x / {x_e2e:.2f}x (need >= {need:g}x): **{word}**"

    if "ours1" in agg and "ref1" in agg:
        o, r = agg["ours1"], agg["ref1"]
        lines.append(f"- Target 1a, ours 1 seed vs reference 1 seed: "
                     f"{verdict(o['sps_loop'] / r['sps_loop'], o['sps_e2e'] / r['sps_e2e'], 2)}")
        if "sb3" in agg:
            s = agg["sb3"]
            lines.append(f"- Target 1b, ours 1 seed vs SB3 1 seed: "
                         f"{verdict(o['sps_loop'] / s['sps_loop'], o['sps_e2e'] / s['sps_e2e'], 2)}")
        else:
            lines.append("- Target 1b, ours 1 seed vs SB3 1 seed: not measured (SB3 not run)")
    if "oursN" in agg and "refN" in agg:
        o, r = agg["oursN"], agg["refN"]
        lines.append(f"- Target 2, ours {n_seeds} seeds in one process vs reference {n_seeds} seeds two at a "
                     f"time: {verdict(o['sps_loop'] / r['sps_loop'], o['sps_e2e'] / r['sps_e2e'], 10)}")
    if notes:
        lines += [""] + [f"Note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description="DQN speed benchmark for issue #6 (CartPole-v1, CleanRL settings)")
    p.add_argument("--steps", type=int, default=50_000, help="env steps per seed (default 50000)")
    p.add_argument("--repeats", type=int, default=3, help="repeats per contender; the median is shown")
    p.add_argument("--quick", action="store_true", help="small budget: 12000 steps, 1 repeat, 4 seeds")
    p.add_argument("--seeds", type=int, default=16, help="seeds of the many-seed rows (default 16)")
    p.add_argument("--only", default="ref1,ours1,sb3,refN,oursN", help="comma-separated subset of contenders")
    p.add_argument("--out", default="results/bench_speed.md", help="Markdown file for the table")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    p.add_argument("--_seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._child == "sb3":
        _sb3_child(args._seed, args.steps)
        return
    if args.quick:
        args.steps, args.repeats, args.seeds = 12_000, 1, 4
    notes = ["all contenders use 1 torch intra-op thread; the final evaluation is 10 episodes at epsilon 0.001.",
             "SB3's DQN uses the Huber (smooth L1) loss, not MSE, and cannot be switched without subclassing."]
    names = [n for n in args.only.split(",") if n]
    if "sb3" in names and not sb3_available():
        names.remove("sb3")
        notes.append("SB3 is not installed in this venv, so its row and target 1b were skipped.")
    res: dict[str, list[dict]] = {}
    for rep in range(args.repeats):
        for name in names:
            t = time.perf_counter()
            m = measure(name, args.steps, args.seeds)
            res.setdefault(name, []).append(m)
            print(f"[bench_speed] repeat {rep + 1}/{args.repeats} {name}: loop {m['loop_s']:.1f}s, "
                  f"e2e {m['e2e_s']:.1f}s, RSS {m['rss_mib']:.0f} MiB, return {m['ret']:.1f} "
                  f"({time.perf_counter() - t:.0f}s)", file=sys.stderr, flush=True)
    table = report(res, args.steps, args.repeats, args.seeds, notes)
    cmd = "python benchmarks/bench_speed.py " + " ".join(sys.argv[1:])
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# bench_speed\n\nCommand: `{cmd.strip()}`\n\n" + table)
    print(f"[bench_speed] table written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
