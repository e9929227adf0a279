"""Side-by-side speed benchmark for issue #6: TargetBench DQN vs a CleanRL-shaped reference vs SB3.

Two environments (``--envs cartpole,minatar``), each with its own settings (``bench_common.py``):

  cartpole  CartPole-v1, CleanRL ``dqn.py`` settings (MLP 120-84, Adam 2.5e-4, buffer 10k, batch 128,
            learning_starts 10k, train every 10 steps, hard target every 500 steps, gamma 0.99, epsilon
            1 -> 0.05 over half the run, MSE; SB3 uses its fixed Huber loss). Reference: reference_dqn.py.
            Targets 1 (one seed: >= 2x the reference and SB3) and 2 (16 seeds in one process: >= 10x the
            aggregate env steps/s of the reference run 16 times, two at a time).
  minatar   MinAtar/breakout, TargetBench's minatar dqn defaults (the MinAtar paper: conv 16@3x3 + FC 128,
            centred RMSProp, Huber, batch 32, one update per env step, target every 1000 steps). Reference:
            reference_dqn_minatar.py; SB3 with a small features extractor of the same CNN. Target 3 (the same
            two ratios). Smaller budget (``--minatar-steps``, default 1000: the 16-seed reference row alone is
            16 processes of 3-7 ms per step on this 2-core machine, ~3.5 min per repeat at 2000 steps).

Short budgets scale learning_starts (and MinAtar's epsilon decay and replay size) identically for every
contender, see ``bench_common.EnvBench.scaled``.

Contenders (each in its own child process, peak RSS read from ``wait4``):
  ref1   the reference, seed 0
  ours1  targetbench run --agent dqn --seed 0
  sb3    stable_baselines3.DQN, seed 0 (skipped when SB3 is not installed)
  refN   16 reference processes, seeds 0-15, two running at once (2 cores)
  sb3N   16 SB3 processes, seeds 0-15, two running at once (2 cores)
  oursN  targetbench run --agent dqn --seed 0-15 (one process)
  before1, beforeN  ours1 and oursN with another checkout's code (``--before PATH``: e.g. an export of main), in
         the same run, so start-up and speed are compared before and after a change on the same machine state

The two ratios against SB3 (issue #23) are printed side by side at the end, e2e basis (whole processes: what a
user waits for): ours 1 seed vs SB3 1 seed (target >= 2x) and ours 16 seeds in one process vs sixteen SB3 runs
two at a time (target >= 7x).

Two bases: "loop", the training loop's own timer (the JSON ``wall_s`` of targetbench and of the reference,
SB3's learn()+eval; for refN the sum of per-seed loop times / 2, ideal packing on 2 cores), and "e2e", wall
clock of the whole child process(es), imports and startup included.

Also: ``--breakdown`` appends the time split of ours at 1, 4, 16 and 64 seeds (``profile_ours.py``), and
``--seeds-scan 1,4,16,64,256`` runs ours alone at each seed count and prints aggregate env steps/s (how many
seeds per device before throughput saturates). ``--device`` is passed to every contender (ours:
``--set train.device=...``; the references: ``--device``; SB3: ``device=``).

    python benchmarks/bench_speed.py [--envs cartpole,minatar] [--steps 50000] [--minatar-steps 1000]
        [--repeats 3] [--breakdown] [--seeds-scan 1,4,16,64,256] [--device cpu] [--out results/bench_speed.md]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import PY, ROOT, TARGETBENCH, EnvBench, env_bench  # noqa: E402

SB3_VERSION = None


# ----------------------------------------------------------------------------------------------- children
def _eval_sb3(model, make_env, seed: int, episodes: int = 10, epsilon: float = 0.001, cap: int = 27_000) -> float:
    """TargetBench's protocol: ``episodes`` episodes at epsilon 0.001 on fresh env instances."""
    import numpy as np

    rng = np.random.default_rng(seed + 10_000)
    returns = []
    for ep in range(episodes):
        env = make_env(seed + 10_000 + ep)
        obs, _ = env.reset(seed=seed + 10_000 + ep)
        env.action_space.seed(seed + 10_000 + ep)
        total = 0.0
        for _ in range(cap):
            if rng.random() < epsilon:
                action = env.action_space.sample()
            else:
                action, _ = model.predict(obs, deterministic=True)
            obs, r, term, trunc, _ = env.step(int(action))
            total += float(r)
            if term or trunc:
                break
        returns.append(total)
    return float(np.mean(returns))


def _sb3_child(env_key: str, seed: int, steps: int, device: str) -> None:
    """Train SB3 DQN in this process and print one JSON line (wall_s = learn() + final eval)."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)  # as ours and the reference
    eb = env_bench(env_key)
    sc = eb.scaled(steps)
    if env_key == "cartpole":
        def make_env(_seed):
            return gym.make("CartPole-v1")

        model = DQN(
            "MlpPolicy", make_env(seed), learning_rate=2.5e-4, buffer_size=10_000,
            learning_starts=sc["learning_starts"], batch_size=128, tau=1.0, gamma=0.99, train_freq=10,
            gradient_steps=1, target_update_interval=500, exploration_fraction=0.5, exploration_initial_eps=1.0,
            exploration_final_eps=0.05,
            max_grad_norm=1e10,  # effectively off, as CleanRL / ours (SB3 still computes the norm)
            policy_kwargs=dict(net_arch=[120, 84]), seed=seed, device=device, verbose=0)
    else:
        import numpy as np
        from gymnasium import spaces
        from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
        from torch import nn

        from reference_dqn_minatar import MinAtarGame

        class MinAtarGym(gym.Env):
            """The reference's MinAtarGame as a gymnasium Env (SB3 needs one); same per-step work."""

            def __init__(self, game_seed: int):
                self.g = MinAtarGame("breakout", game_seed)
                self.observation_space = spaces.Box(0, 1, self.g.obs_shape, np.uint8)
                self.action_space = spaces.Discrete(self.g.n_actions)

            def reset(self, *, seed=None, options=None):
                super().reset(seed=seed)
                return self.g.reset(), {}

            def step(self, action):
                obs, reward, done = self.g.step(int(action))
                return obs, reward, done, False, {}

        class MinAtarCNN(BaseFeaturesExtractor):
            """conv 16@3x3 -> ReLU -> FC 128 -> ReLU; SB3's q_net adds the linear head (net_arch=[])."""

            def __init__(self, observation_space, features_dim: int = 128):
                super().__init__(observation_space, features_dim)
                c, h, w = observation_space.shape
                self.net = nn.Sequential(nn.Conv2d(c, 16, 3, 1), nn.ReLU(), nn.Flatten(),
                                         nn.Linear(16 * (h - 2) * (w - 2), features_dim), nn.ReLU())

            def forward(self, x):
                return self.net(x)

        make_env = MinAtarGym
        # Box(0, 1, uint8) is not an SB3 "image space" (that needs 0..255), so SB3 feeds the 0/1 frames as
        # floats unscaled, as ours and the reference do.
        model = DQN(
            "MlpPolicy", make_env(seed), learning_rate=2.5e-4, buffer_size=sc["buffer_size"],
            learning_starts=sc["learning_starts"], batch_size=32, tau=1.0, gamma=0.99, train_freq=1,
            gradient_steps=1, target_update_interval=1000,
            exploration_fraction=min(1.0, sc["epsilon_decay_steps"] / steps), exploration_initial_eps=1.0,
            exploration_final_eps=0.1, max_grad_norm=1e10,
            policy_kwargs=dict(features_extractor_class=MinAtarCNN, features_extractor_kwargs=dict(features_dim=128),
                               net_arch=[], optimizer_class=torch.optim.RMSprop,
                               optimizer_kwargs=dict(alpha=0.95, eps=0.01, centered=True)),
            seed=seed, device=device, verbose=0)
    started = time.perf_counter()
    model.learn(total_timesteps=steps)
    final = _eval_sb3(model, make_env, seed)
    wall = time.perf_counter() - started
    print(json.dumps(dict(seed=seed, steps=steps, wall_s=round(wall, 3), sps=round(steps / wall, 1),
                          final_eval_return=final, device=str(model.device))))


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


#: another checkout whose code the before1/beforeN contenders run (--before)
BEFORE: Path | None = None


def run_ours(eb: EnvBench, seeds: str, steps: int, device: str | None, threads: int = 1,
             tree: Path | None = None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench_ours_"))
    # another checkout: this interpreter with that tree first on the path (it shadows the editable install)
    prog = [TARGETBENCH] if tree is None else ["env", f"PYTHONPATH={tree}", PY, "-m", "suite.cli"]
    try:
        return run_pool([[*prog, *eb.ours_argv(seeds, steps, tmp, device, threads)]], 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(eb: EnvBench, name: str, steps: int, n_seeds: int, device: str | None) -> dict:
    """One repeat of one contender: dict(loop_s, e2e_s, rss_mib, ret, seeds, device)."""
    if name == "ref1":
        r = run_pool([eb.reference_cmd(0, steps, device)], 1)
        loop = r["records"][0]["wall_s"]
    elif name == "refN":
        r = run_pool([eb.reference_cmd(s, steps, device) for s in range(n_seeds)], 2)
        loop = sum(x["wall_s"] for x in r["records"]) / 2  # ideal packing on two cores
    elif name in ("sb3", "sb3N"):
        cmds = [[PY, __file__, "--_child", "sb3", "--_env", eb.key, "--_seed", str(s), "--steps", str(steps),
                 "--device", device or "cpu"] for s in range(1 if name == "sb3" else n_seeds)]
        r = run_pool(cmds, 1 if name == "sb3" else 2)
        loop = sum(x["wall_s"] for x in r["records"]) / (1 if name == "sb3" else 2)  # ideal packing on two cores
    elif name in ("ours1", "oursN", "before1", "beforeN"):
        # one seed on one core, as the reference; N seeds on the two cores the reference's pair of processes uses
        one = name.endswith("1")
        r = run_ours(eb, "0" if one else f"0-{n_seeds - 1}", steps, device, threads=1 if one else 2,
                     tree=BEFORE if name.startswith("before") else None)
        loop = max(x["wall_s"] for x in r["records"])  # seeds share one loop
    else:
        raise ValueError(name)
    rets = [x["final_eval_return"] for x in r["records"]]
    return dict(loop_s=loop, e2e_s=r["e2e_s"], rss_mib=r["rss_mib"], ret=statistics.mean(rets),
                ret_min=min(rets), ret_max=max(rets), seeds=len(r["records"]),
                device=r["records"][0].get("device", "cpu"))


def sb3_version() -> str | None:
    p = subprocess.run([PY, "-c", "import stable_baselines3 as s; print(s.__version__)"], capture_output=True,
                       text=True)
    return p.stdout.strip() if p.returncode == 0 else None


# ----------------------------------------------------------------------------------------------- report
def labels(eb: EnvBench, sb3v: str | None) -> dict[str, str]:
    ref = "reference_dqn.py" if eb.key == "cartpole" else "reference_dqn_minatar.py"
    sb3 = f"Stable-Baselines3 {sb3v or ''} DQN".replace("  ", " ")
    if eb.key == "minatar":
        sb3 += " (MinAtar CNN features extractor)"
    return {
        "ref1": f"reference ({ref}, CleanRL-shaped), 1 seed",
        "ours1": "ours `targetbench run`, 1 seed",
        "sb3": f"{sb3}, 1 seed",
        "refN": "reference, {n} seeds, 2 processes at a time",
        "sb3N": f"{sb3}, {{n}} seeds, 2 processes at a time",
        "oursN": "ours `targetbench run`, {n} seeds, 1 process",
        "before1": "ours before (`--before`), 1 seed",
        "beforeN": "ours before (`--before`), {n} seeds, 1 process",
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
    gpu = ""
    if torch.cuda.is_available():
        gpu = f"; GPU {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}{gpu}; Python "
            f"{platform.python_version()}, torch {torch.__version__}, {platform.system()} {platform.release()}")


def _verdict(x_loop: float, x_e2e: float, need: float) -> str:
    ok_l, ok_e = x_loop >= need, x_e2e >= need
    word = "MET" if ok_l and ok_e else ("NOT MET" if not ok_l and not ok_e else "MET on one basis only")
    return f"{x_loop:.2f}x / {x_e2e:.2f}x (need >= {need:g}x): **{word}**"


def report(eb: EnvBench, res: dict, steps: int, repeats: int, n_seeds: int, sb3v: str | None,
           notes: list[str]) -> str:
    agg = {}
    for k, runs in res.items():
        loop = statistics.median(r["loop_s"] for r in runs)
        e2e = statistics.median(r["e2e_s"] for r in runs)
        seeds = runs[0]["seeds"]
        rss = max(r["rss_mib"] for r in runs)
        agg[k] = dict(loop=loop, e2e=e2e, seeds=seeds, sps_loop=seeds * steps / loop, sps_e2e=seeds * steps / e2e,
                      rss=rss, rss_seed=rss if k in ("refN", "sb3N") else rss / seeds, device=runs[0]["device"],
                      ret=statistics.median(r["ret"] for r in runs),
                      rmin=min(r["ret_min"] for r in runs), rmax=max(r["ret_max"] for r in runs))
    base = {"ref1": "ref1", "ours1": "ref1", "sb3": "ref1", "refN": "refN", "sb3N": "refN", "oursN": "refN",
            "before1": "ref1", "beforeN": "refN"}
    scaled = ", ".join(f"{k}={v:,}" for k, v in eb.scaled(steps).items())
    lab = labels(eb, sb3v)
    lines = [
        f"Steps per seed: {steps:,} (budget-scaled settings, the same for every contender: {scaled}); "
        f"repeats: {repeats} (median shown).",
        "",
        "| contender | seeds | device | wall s, loop (median) | wall s, e2e (median) | env steps/s agg., loop | "
        "env steps/s agg., e2e | ratio vs reference (loop / e2e) | peak RSS MiB (per process) | "
        "peak RSS per seed MiB | final eval return |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k in ("ref1", "before1", "ours1", "sb3", "refN", "sb3N", "beforeN", "oursN"):
        if k not in agg:
            continue
        a, b = agg[k], agg.get(base[k])
        ratio = (f"{a['sps_loop'] / b['sps_loop']:.2f}x / {a['sps_e2e'] / b['sps_e2e']:.2f}x" if b else "n/a")
        rss = f"2 x {a['rss']:.0f}" if k in ("refN", "sb3N") else f"{a['rss']:.0f}"
        ret = (f"{a['ret']:.1f}" if a["seeds"] == 1 else f"{a['ret']:.1f} (mean; {a['rmin']:.0f}-{a['rmax']:.0f})")
        lines.append(f"| {lab[k].format(n=n_seeds)} | {a['seeds']} | {a['device']} | {a['loop']:.1f} | "
                     f"{a['e2e']:.1f} | {a['sps_loop']:,.0f} | {a['sps_e2e']:,.0f} | {ratio} | {rss} | "
                     f"{a['rss_seed']:.0f} | {ret} |")
    if eb.key == "cartpole":
        t1a, t1b, t2 = "Target 1a", "Target 1b", "Target 2"
    else:
        t1a, t1b, t2 = "Target 3, one seed (as 1a)", "Target 3, one seed (as 1b)", "Target 3, many seeds (as 2)"
    lines += ["", f"Targets of issue #6 for {eb.env_id} (ratio of aggregate env steps/s; loop basis / e2e basis):", ""]
    if "ours1" in agg and "ref1" in agg:
        o, r = agg["ours1"], agg["ref1"]
        lines.append(f"- {t1a}, ours 1 seed vs reference 1 seed: "
                     f"{_verdict(o['sps_loop'] / r['sps_loop'], o['sps_e2e'] / r['sps_e2e'], 2)}")
        if "sb3" in agg:
            s = agg["sb3"]
            lines.append(f"- {t1b}, ours 1 seed vs SB3 1 seed: "
                         f"{_verdict(o['sps_loop'] / s['sps_loop'], o['sps_e2e'] / s['sps_e2e'], 2)}")
        else:
            lines.append(f"- {t1b}, ours 1 seed vs SB3 1 seed: not measured (SB3 not run)")
    if "oursN" in agg and "refN" in agg:
        o, r = agg["oursN"], agg["refN"]
        lines.append(f"- {t2}, ours {n_seeds} seeds in one process vs reference {n_seeds} seeds two at a time: "
                     f"{_verdict(o['sps_loop'] / r['sps_loop'], o['sps_e2e'] / r['sps_e2e'], 10)}")
    if "oursN" in agg:
        o = agg["oursN"]
        ref = f"; the reference: {agg['refN']['rss']:.0f} MiB per process (one seed each)" if "refN" in agg else ""
        lines.append(f"- Memory at {n_seeds} seeds: ours {o['rss']:.0f} MiB in one process = "
                     f"{o['rss_seed']:.0f} MiB per seed{ref}.")
    if notes:
        lines += [""] + [f"Note: {n}" for n in notes]
    return "\n".join(lines) + "\n", sb3_ratios(eb, agg, n_seeds)


def sb3_ratios(eb: EnvBench, agg: dict, n_seeds: int) -> str:
    """The two ratios against SB3, side by side (aggregate env steps/s, e2e basis, loop basis in brackets)."""
    def ratio(ours: str, sb3: str, need: float) -> str:
        if ours not in agg or sb3 not in agg:
            return "not measured"
        o, s = agg[ours], agg[sb3]
        e2e, loop = o["sps_e2e"] / s["sps_e2e"], o["sps_loop"] / s["sps_loop"]
        return f"**{e2e:.2f}x** ({'met' if e2e >= need else 'not met'}: >= {need:g}x; loop basis {loop:.2f}x)"

    rows = [f"| {eb.env_id} | {ratio('ours1', 'sb3', 2)} | {ratio('oursN', 'sb3N', 7)} |"]
    if "before1" in agg or "beforeN" in agg:
        rows.append(f"| {eb.env_id}, before (`--before`) | {ratio('before1', 'sb3', 2)} | "
                    f"{ratio('beforeN', 'sb3N', 7)} |")
    return "\n".join(rows)


def seeds_scan(eb: EnvBench, counts: list[int], steps: int, device: str | None, say) -> str:
    """Ours alone at each seed count: aggregate env steps/s, to see where throughput saturates."""
    rows = []
    for n in counts:
        t = time.perf_counter()
        r = run_ours(eb, "0" if n == 1 else f"0-{n - 1}", steps, device)
        loop = max(x["wall_s"] for x in r["records"])
        rows.append(dict(n=n, loop=loop, e2e=r["e2e_s"], rss=r["rss_mib"], device=r["records"][0].get("device")))
        say(f"[bench_speed] scan {eb.key} {n} seeds: loop {loop:.1f}s ({time.perf_counter() - t:.0f}s)")
    lines = [f"Seeds scan, ours only, {eb.env_id}, {steps:,} steps per seed (settings scaled as above: "
             + ", ".join(f"{k}={v:,}" for k, v in eb.scaled(steps).items()) + "), one run each:", "",
             "| seeds | device | wall s, loop | wall s, e2e | env steps/s agg., loop | env steps/s agg., e2e | "
             "gain vs previous row (loop) | peak RSS MiB | per seed MiB |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    prev, saturated = None, None
    for r in rows:
        sps = r["n"] * steps / r["loop"]
        gain = f"{sps / prev:.2f}x" if prev else ""
        if prev and sps < 1.1 * prev and saturated is None:
            saturated = r["n"]
        lines.append(f"| {r['n']} | {r['device']} | {r['loop']:.1f} | {r['e2e']:.1f} | {sps:,.0f} | "
                     f"{r['n'] * steps / r['e2e']:,.0f} | {gain} | {r['rss']:.0f} | {r['rss'] / r['n']:.1f} |")
        prev = sps
    lines += ["", (f"Aggregate throughput gains less than 10% from the previous count at {saturated} seeds."
                   if saturated else "Aggregate throughput still grows by >= 10% at the largest count tried.")]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- main
def main() -> None:
    p = argparse.ArgumentParser(description="DQN speed benchmark for issue #6 (CartPole-v1 and MinAtar/breakout)")
    p.add_argument("--envs", default="cartpole", help="comma-separated: cartpole, minatar (default cartpole)")
    p.add_argument("--steps", type=int, default=50_000, help="CartPole env steps per seed (default 50000)")
    p.add_argument("--minatar-steps", type=int, default=None, help="MinAtar env steps per seed (default 1000)")
    p.add_argument("--repeats", type=int, default=3, help="repeats per contender; the median is shown")
    p.add_argument("--minatar-repeats", type=int, default=None, help="MinAtar repeats (default: --repeats)")
    p.add_argument("--quick", action="store_true",
                   help="small budget: 12000 CartPole / 500 MinAtar steps, 1 repeat, 4 seeds")
    p.add_argument("--seeds", type=int, default=16, help="seeds of the many-seed rows (default 16)")
    p.add_argument("--only", default="ref1,ours1,sb3,refN,sb3N,oursN", help="comma-separated subset of contenders")
    p.add_argument("--before", default=None, help="another checkout (e.g. `git archive main | tar -x -C DIR`) "
                   "whose code the before1/beforeN contenders run, for before/after figures in one run")
    p.add_argument("--device", default=None, help="torch device for every contender (default: cpu; ours: auto)")
    p.add_argument("--breakdown", action="store_true", help="append ours' time split (profile_ours.py)")
    p.add_argument("--breakdown-env", default="cartpole", help="env(s) of the time split (default cartpole)")
    p.add_argument("--breakdown-seeds", default="1,4,16,64", help="seed counts of the time split")
    p.add_argument("--breakdown-steps", default="20000,20000,20000,8000",
                   help="steps per seed of the time split, one value or one per seed count")
    p.add_argument("--seeds-scan", default=None, help="run ours alone at these seed counts, e.g. 1,4,16,64,256")
    p.add_argument("--scan-steps", type=int, default=None,
                   help="steps per seed of the seeds scan (default: 10000 CartPole, 2000 MinAtar)")
    p.add_argument("--out", default="results/bench_speed.md", help="Markdown file for the tables")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    p.add_argument("--_env", default="cartpole", help=argparse.SUPPRESS)
    p.add_argument("--_seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._child == "sb3":
        _sb3_child(args._env, args._seed, args.steps, args.device or "cpu")
        return
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    global BEFORE
    BEFORE = Path(args.before).resolve() if args.before else None
    envs = [env_bench(e) for e in args.envs.split(",") if e]
    if args.quick:
        args.steps, args.repeats, args.seeds = 12_000, 1, 4
        args.minatar_steps = args.minatar_steps or 500
    budget = {"cartpole": args.steps, "minatar": args.minatar_steps or env_bench("minatar").default_steps}
    repeats = {"cartpole": args.repeats, "minatar": args.minatar_repeats or args.repeats}
    names = [n for n in args.only.split(",") if n]
    sb3v = sb3_version() if {"sb3", "sb3N"} & set(names) else None
    common_notes = ["every 1-seed contender uses one CPU thread (torch intra-op and BLAS); ours at 16 seeds runs with "
                    "`train.threads=2`, the two cores the reference's pair of processes uses (numpy-kernel agents split "
                    "their replicas over the threads, torch stays at one thread); the final evaluation is 10 "
                    "episodes at epsilon 0.001 (each capped at 27,000 steps)."]
    if {"sb3", "sb3N"} & set(names) and sb3v is None:
        names = [n for n in names if n not in ("sb3", "sb3N")]
        common_notes.append("SB3 is not installed in this venv, so its rows and targets 1b / 3b were skipped.")
    started = time.perf_counter()
    sections, ratios = [], []
    for eb in envs:
        steps, reps = budget[eb.key], repeats[eb.key]
        notes = list(common_notes)
        if eb.key == "cartpole":
            notes.append("SB3's DQN uses the Huber (smooth L1) loss, not MSE, and cannot be switched without "
                         "subclassing.")
        else:
            notes.append("the reference and SB3 step `minatar.Environment` directly (the same game calls and "
                         "frame transpose as ours' MinAtarEnv, without TargetBench's wrapper layers); all use the "
                         "Huber loss and centred RMSProp; SB3 computes a gradient norm (max_grad_norm=1e10).")
            notes.append("at MinAtar's short budget the final evaluation (10 episodes) and, on the e2e basis, "
                         "process start (minatar imports matplotlib and seaborn) are a visible share for every "
                         "contender; the 16-seed reference row is what limits the budget on 2 cores.")
        res: dict[str, list[dict]] = {}
        for rep in range(reps):
            for name in names:
                t = time.perf_counter()
                m = measure(eb, name, steps, args.seeds, args.device)
                res.setdefault(name, []).append(m)
                say(f"[bench_speed] {eb.key} repeat {rep + 1}/{reps} {name}: loop {m['loop_s']:.1f}s, "
                    f"e2e {m['e2e_s']:.1f}s, RSS {m['rss_mib']:.0f} MiB, return {m['ret']:.1f} "
                    f"({time.perf_counter() - t:.0f}s)")
        table, sb3_row = report(eb, res, steps, reps, args.seeds, sb3v, notes)
        sections.append(f"## {eb.title}\n\n" + table)
        ratios.append(sb3_row)
    if args.breakdown:
        import profile_ours

        counts = [int(x) for x in args.breakdown_seeds.split(",") if x]
        bsteps = [int(x) for x in args.breakdown_steps.split(",") if x]
        for key in args.breakdown_env.split(","):
            _, text = profile_ours.scan(key, counts, bsteps, args.device, True, say)
            sections.append(f"## Where ours spends its time, {env_bench(key).env_id}\n\n" + text)
    if args.seeds_scan:
        counts = [int(x) for x in args.seeds_scan.split(",") if x]
        for eb in envs:
            st = args.scan_steps or (10_000 if eb.key == "cartpole" else 2000)
            sections.append(f"## Seeds scan, {eb.env_id}\n\n" + seeds_scan(eb, counts, st, args.device, say))
    sections.append(f"## Ours vs Stable-Baselines3: the two ratios (aggregate env steps/s, whole processes)\n\n"
                    f"| env | 1 seed vs SB3 1 seed | {args.seeds} seeds in one process vs {args.seeds} SB3 runs, two "
                    f"at a time |\n|---|---|---|\n" + "\n".join(ratios) + "\n")
    cmd = "python benchmarks/bench_speed.py " + " ".join(sys.argv[1:])
    text = (f"Machine: {machine()}. Device requested: {args.device or 'default (cpu; ours auto)'}. "
            f"Total bench time {time.perf_counter() - started:.0f} s.\n\n" + "\n".join(sections))
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# bench_speed\n\nCommand: `{cmd.strip()}`\n\n" + text)
    say(f"[bench_speed] tables written to {out}")


if __name__ == "__main__":
    main()
