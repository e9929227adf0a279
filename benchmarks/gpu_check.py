"""The GPU check (``make gpu-check``): what a CUDA node gives, in one table, in under 10 minutes.

Sections, each a group of rows of one table:

1. **update parity**: every registered agent's update on CUDA against the CPU (what a run on each gets: numpy
   kernels where the CPU uses them, torch otherwise), on CartPole (MLP), MinAtar/breakout (MinAtar CNN) and
   ALE/Pong-v5 (Nature CNN): both agents start from the same parameters, store the same real transitions and
   take the same minibatches (replay sampling is host numpy), then make ``--updates`` updates. Passes when the
   parameters differ by at most ``TOLERANCE`` (1 %) of how far the CPU's updates moved them
   (``||θ_cuda − θ_cpu|| / ||θ_cpu − θ_0||``), which allows for TF32 convolutions and reordered reductions.
2. **runs on CUDA**: ``targetbench run`` with 16 seeds on CartPole-v1 and MinAtar/breakout and 2 seeds on
   ALE/Pong-v5 (short budgets), end to end with MLflow records: env steps/s and the final evaluation.
3. **seeds per GPU**: aggregate env steps/s of the training loop (act, env step, store, update) for 1, 4, 16, 64
   and 256 seeds on MinAtar/breakout and ALE/Pong-v5, with a small replay (throughput, not learning).
4. **torch.compile and AMP**: a 16-seed MinAtar run with ``train.compile`` / ``train.amp`` where TrainConfig has
   those settings (rows say "skipped" otherwise).

Prints the table and, with ``--out FILE``, writes it into FILE between ``<!-- gpu-check:begin -->`` and
``<!-- gpu-check:end -->`` (appended when absent). Without a CUDA device it prints why, writes nothing and exits
0. Everything it needs is the project's own dependencies (no download); each section stops early rather than
pass the time budget (``--budget-s``, default 540 s), and says so.

    python benchmarks/gpu_check.py --out docs/performance.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOLERANCE = 0.01
BEGIN, END = "<!-- gpu-check:begin -->", "<!-- gpu-check:end -->"
PARITY_ENVS = ("CartPole-v1", "MinAtar/breakout", "ALE/Pong-v5")
SEED_COUNTS = (1, 4, 16, 64, 256)


class Table:
    """Rows of (section, case, result, detail), printed and written as one Markdown table."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, section: str, case: str, result: str, detail: str = "") -> None:
        self.rows.append((section, case, result, detail))
        print(f"  {section} | {case} | {result} | {detail}", flush=True)

    def markdown(self, header: str) -> str:
        lines = [header, "", "| section | case | result | detail |", "|---|---|---|---|"]
        lines += [f"| {s} | {c} | {r} | {d} |" for s, c, r, d in self.rows]
        return "\n".join(lines) + "\n"


class Deadline:
    """A time budget; :meth:`until` gives a section the part of it that ends at a share of the whole."""

    def __init__(self, seconds: float, start: float | None = None, end: float | None = None) -> None:
        self.start = time.perf_counter() if start is None else start
        self.total = seconds
        self.end = self.start + seconds if end is None else end

    def left(self) -> float:
        return self.end - time.perf_counter()

    def until(self, share: float) -> "Deadline":
        """A section's budget: it ends when ``share`` of the whole budget is spent (or the whole ends)."""
        return Deadline(self.total, self.start, min(self.end, self.start + share * self.total))


def cuda_status() -> tuple[bool, str]:
    """(whether CUDA can be used, a one-line description of the device or of why not)."""
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return True, (f"{props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__} "
                      f"(CUDA {torch.version.cuda})")
    if torch.version.cuda is None and shutil.which("nvidia-smi"):
        return False, (f"torch {torch.__version__} is a CPU build, though nvidia-smi is present: install a CUDA "
                       "build of the same torch version in this environment and rerun")
    return False, f"no CUDA device (torch {torch.__version__}, torch.cuda.is_available() is False)"


# -- 1. update parity --------------------------------------------------------------------------------------------
def _agent(name: str, env: str, device: str, seeds: tuple[int, ...], envs, overrides: dict[str, str],
           kernels: str = "auto"):
    from agents import get_agent
    from suite.envs import get_family
    from suite.trial import build_trial

    trial = build_trial(name, env, seeds, steps=10_000, overrides=overrides)
    spec = get_agent(name)
    return spec.cls(trial.agent_config, obs_shape=envs.observation_shape, obs_dtype=envs.observation_dtype,
                    num_actions=envs.num_actions, seeds=seeds, family=get_family(trial.family).facts,
                    total_steps=10_000, device=device, kernels=kernels)


def _flat(agent) -> "torch.Tensor":
    import torch

    return torch.cat([p.detach().reshape(-1).double().cpu() for p in agent.online.parameters()])


def update_parity(table: Table, deadline: Deadline, updates: int, device: str = "cuda", kernels: str = "auto"
                  ) -> None:
    """Section 1; ``device``/``kernels`` name the side compared with the CPU's default (a CPU-only self-check
    compares torch kernels with numpy ones)."""
    import numpy as np
    import torch

    from agents import list_agents
    from suite.envs import ReplicaEnvs

    seeds = (0, 1)
    fill = 64
    for env in PARITY_ENVS:
        envs = ReplicaEnvs(env, list(seeds))
        rng = np.random.default_rng(0)
        obs = envs.reset()
        transitions = []
        for _ in range(fill):
            actions = rng.integers(0, envs.num_actions, len(seeds))
            res = envs.step(actions)
            transitions.append((obs, actions, res.reward, res.next_obs, res.terminated, res.truncated))
            obs = res.obs
        envs.close()
        overrides = {"learning_starts": str(fill), "train_frequency": "1", "batch_size": "16",
                     "buffer_size": str(fill)}
        for spec in list_agents():
            if deadline.left() < 10:
                table.add("update parity", f"{spec.name} {env}", "skipped", "time budget spent")
                continue
            try:
                # both start from the same parameters: initialisation draws from per-seed CPU generators
                cpu = _agent(spec.name, env, "cpu", seeds, envs, overrides)
                gpu = _agent(spec.name, env, device, seeds, envs, overrides, kernels)
                start = _flat(cpu)
                assert bool((start == _flat(gpu)).all()), "initial parameters differ"
                for t in transitions:
                    cpu.observe(*t)
                    gpu.observe(*t)
                for step in range(fill, fill + updates):
                    cpu.after_env_step(step)
                    gpu.after_env_step(step)
                a, b = _flat(cpu), _flat(gpu)
                moved = float((a - start).norm())
                rel = float((a - b).norm()) / max(moved, 1e-12)
                verdict = "pass" if rel <= TOLERANCE else "FAIL"
                table.add("update parity", f"{spec.name} {env}", verdict,
                          f"rel. difference {rel:.1e} after {updates} updates (CPU: {cpu.kernels} kernels, "
                          f"{device}: {gpu.kernels}; tolerance {TOLERANCE:.0%})")
            except Exception as exc:  # one agent's failure must not hide the others
                table.add("update parity", f"{spec.name} {env}", "ERROR", f"{type(exc).__name__}: {exc}"[:160])


# -- 2. runs on CUDA ---------------------------------------------------------------------------------------------
def _run(argv: list[str], results: Path) -> list[dict]:
    """``targetbench run ... --json`` in a child process (its own CUDA context and MLflow store)."""
    cmd = [sys.executable, "-m", "suite", "run", *argv, "--results", str(results), "--json", "--quiet"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError((out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1])
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


RUNS = (
    ("CartPole-v1 x16", ["--agent", "dqn", "--env", "CartPole-v1", "--seed", "0-15", "--steps", "20000",
                         "--set", "train.eval_every=10000", "--set", "train.eval_episodes=5"]),
    ("MinAtar/breakout x16", ["--agent", "dqn", "--env", "MinAtar/breakout", "--seed", "0-15", "--steps", "10000",
                              "--set", "learning_starts=1000", "--set", "train.eval_every=5000",
                              "--set", "train.eval_episodes=3"]),
    ("ALE/Pong-v5 x2", ["--agent", "dqn", "--env", "ALE/Pong-v5", "--seed", "0,1", "--steps", "5000",
                        "--set", "learning_starts=1000", "--set", "buffer_size=10000", "--set", "train.eval_every=5000",
                        "--set", "train.eval_episodes=1", "--set", "train.eval_max_steps=2000"]),
)


def cuda_runs(table: Table, deadline: Deadline, results: Path, section: str = "run on CUDA",
              runs=RUNS, extra: tuple[str, ...] = ()) -> None:
    for case, argv in runs:
        if deadline.left() < 30:
            table.add(section, case, "skipped", "time budget spent")
            continue
        try:
            t0 = time.perf_counter()
            out = _run([*argv, "--set", "train.device=cuda", *extra], results)
            wall = time.perf_counter() - t0
            sps = sum(r["sps"] for r in out)
            finals = [r["final_eval_return"] for r in out]
            devices = sorted({r["device"] for r in out})
            table.add(section, case, f"{sps:,.0f} env steps/s",
                      f"{len(out)} seeds, device {', '.join(devices)}, final eval mean {sum(finals) / len(finals):.1f}, "
                      f"wall {wall:.0f} s")
        except Exception as exc:
            table.add(section, case, "ERROR", f"{type(exc).__name__}: {exc}"[:160])


# -- 3. seeds per GPU --------------------------------------------------------------------------------------------
def throughput(table: Table, deadline: Deadline, steps: int) -> None:
    import torch

    from suite.envs import ReplicaEnvs

    for env in ("MinAtar/breakout", "ALE/Pong-v5"):
        for n in SEED_COUNTS:
            if deadline.left() < 15:
                table.add("seeds per GPU", f"{env} x{n}", "skipped", "time budget spent")
                continue
            envs = None
            try:
                seeds = tuple(range(n))
                envs = ReplicaEnvs(env, list(seeds))
                agent = _agent("dqn", env, "cuda", seeds, envs,
                               {"learning_starts": "32", "buffer_size": "2000", "batch_size": "32"})
                obs = envs.reset()
                timed = 0.0
                for step in range(1, steps + 1):
                    if step == steps // 4 + 1:  # the first quarter warms up (allocations, cuDNN autotune)
                        torch.cuda.synchronize()
                        t0 = time.perf_counter()
                    actions = agent.act(obs, step - 1)
                    res = envs.step(actions)
                    agent.observe(obs, actions, res.reward, res.next_obs, res.terminated, res.truncated)
                    obs = res.obs
                    agent.after_env_step(step)
                torch.cuda.synchronize()
                timed = time.perf_counter() - t0
                measured = steps - steps // 4
                mem = torch.cuda.max_memory_allocated() / 2**20
                table.add("seeds per GPU", f"{env} x{n}", f"{measured * n / timed:,.0f} env steps/s",
                          f"{measured} loop steps timed, peak GPU memory {mem:,.0f} MiB")
            except Exception as exc:
                table.add("seeds per GPU", f"{env} x{n}", "ERROR", f"{type(exc).__name__}: {exc}"[:160])
            finally:
                if envs is not None:
                    envs.close()
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()


# -- 4. torch.compile and AMP ------------------------------------------------------------------------------------
def compile_amp(table: Table, deadline: Deadline, results: Path) -> None:
    from agents.fields import fields_of
    from suite.trial import TrainConfig

    fields = fields_of(TrainConfig)
    minatar = [r for r in RUNS if r[0].startswith("MinAtar")]
    for key in ("compile", "amp"):
        if key not in fields:
            table.add("compile / AMP", f"train.{key}", "skipped",
                      f"this TargetBench has no train.{key} setting (TrainConfig fields: {', '.join(fields)})")
            continue
        cuda_runs(table, deadline, results, section=f"train.{key}=true",
                  runs=[(f"{case} train.{key}=true", argv) for case, argv in minatar],
                  extra=("--set", f"train.{key}=true"))


def write_section(path: Path, text: str) -> None:
    """Replace the marked section of ``path`` with ``text`` (append it when the markers are absent)."""
    block = f"{BEGIN}\n{text}{END}\n"
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + block + rest.split(END, 1)[1].lstrip("\n")
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + block
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="write the table into this Markdown file's marked section")
    p.add_argument("--budget-s", type=float, default=540.0, help="time budget of all sections (default 540 s)")
    p.add_argument("--updates", type=int, default=5, help="updates compared per agent and env (default 5)")
    p.add_argument("--throughput-steps", type=int, default=200, help="loop steps per seed count (default 200)")
    args = p.parse_args(argv)

    ok, device = cuda_status()
    if not ok:
        print(f"gpu-check: skipped: {device}. Nothing was measured or written.")
        return 0
    deadline = Deadline(args.budget_s)
    table = Table()
    print(f"gpu-check on {device}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        results = Path(tmp)
        # each section may run until its share of the budget is spent, so a slow one cannot starve the rest
        update_parity(table, deadline.until(0.3), args.updates)
        cuda_runs(table, deadline.until(0.55), results)
        throughput(table, deadline.until(0.85), args.throughput_steps)
        compile_amp(table, deadline, results)
    spent = args.budget_s - deadline.left()
    header = (f"### GPU check ({time.strftime('%Y-%m-%d')}, {device}, {os.cpu_count()} CPUs, Python "
              f"{platform.python_version()}; `make gpu-check`, {spent:.0f} s)")
    text = table.markdown(header)
    print()
    print(text)
    if args.out is not None:
        write_section(args.out, text)
        print(f"wrote the table into {args.out}")
    failed = sum(r[2] in ("FAIL", "ERROR") for r in table.rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
