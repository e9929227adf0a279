"""The cost of one checkpoint per environment family: time and bytes at a given replay fill.

For each family (classic: CartPole-v1, MinAtar: breakout, Atari: Pong) a DQN group is built as the trainer
builds it (the family's default agent config: its buffer size), its replay filled with ``--fill`` synthetic
transitions per replica (random observations of the env's shape and dtype; for Atari, consistent 4-frame stacks,
so the frame deduplication behaves as in training), and one checkpoint of the whole group is written
(``suite.checkpoint.save_checkpoint``: agent incl. replay, env states, records) and read back; then
``--between`` (default 10 %) more transitions are stored and the next checkpoint is written: large tensors are
written incrementally (only their changed pieces), so this one costs less. Optionally both are also uploaded to
an fsspec store (``--upload file:///...``: the object + pointer + pieces write of ``suite.checkpoint_store``).
Prints a Markdown table (docs/cluster.md quotes it).

    python benchmarks/bench_checkpoint.py                       # default fills
    python benchmarks/bench_checkpoint.py --fill atari=100000 --seeds 1
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FAMILIES = {"classic": "CartPole-v1", "minatar": "MinAtar/breakout", "atari": "ALE/Pong-v5"}
#: default replay fill per replica (transitions): a realistic mid-run fill that fits a shared 24 GB machine
DEFAULT_FILL = {"classic": 10_000, "minatar": 100_000, "atari": 100_000}


def measure(family: str, fill: int, seeds: int, upload: str | None, between: float) -> dict:
    import torch

    from agents import get_agent
    from agents.seeding import derive_seed
    from suite.checkpoint import load_checkpoint, save_checkpoint
    from suite.envs import ReplicaEnvs, get_family
    from suite.trial import build_trial

    env_id = FAMILIES[family]
    trial = build_trial("dqn", env_id, list(range(seeds)), steps=max(fill, 1000),
                        overrides={"learning_starts": str(fill + 1), "buffer_size": str(fill)})
    envs = ReplicaEnvs(env_id, [derive_seed(s, "env") for s in trial.seeds], options=trial.env_options)
    agent = get_agent("dqn").cls(trial.agent_config, obs_shape=envs.observation_shape,
                                 obs_dtype=envs.observation_dtype, num_actions=envs.num_actions,
                                 seeds=trial.seeds, family=get_family(trial.family).facts, total_steps=fill,
                                 device=torch.device("cpu"), kernels="torch", threads=1)
    obs = envs.reset()
    rng = np.random.default_rng(0)
    shape, dtype = envs.observation_shape, np.dtype(envs.observation_dtype)
    stacked = family == "atari"

    def frame_like(n: int) -> np.ndarray:
        if dtype == np.uint8:
            return rng.integers(0, 256, size=(n, *shape[1:]) if stacked else (n, *shape), dtype=np.uint8)
        return rng.random((n, *shape)).astype(dtype)

    cur = frame_like(seeds) if not stacked else np.stack([frame_like(seeds) for _ in range(shape[0])], axis=1)
    state = {"t": 0}

    def add(n: int) -> None:
        nonlocal cur
        for _ in range(n):
            t = state["t"] = state["t"] + 1
            if stacked:
                nxt = np.concatenate([cur[:, 1:], frame_like(seeds)[:, None]], axis=1)
            else:
                nxt = frame_like(seeds)
            end = np.full(seeds, t % 1000 == 0)
            agent.observe(cur, rng.integers(0, envs.num_actions, seeds), rng.random(seeds).astype(np.float32),
                          nxt, end, np.zeros(seeds, bool))
            cur = nxt if not end[0] else (np.stack([frame_like(seeds) for _ in range(shape[0])], axis=1)
                                          if stacked else frame_like(seeds))

    t0 = time.perf_counter()
    add(fill)
    fill_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        path = Path(tmp) / "ck.pt"
        store = None
        if upload:
            from suite.checkpoint_store import FsspecStore

            store = FsspecStore(upload.rstrip("/") + f"/{family}-{os.getpid()}")
        out = {"family": family, "env": env_id, "seeds": seeds, "fill": fill, "fill_s": fill_s}
        for which in ("first", "next"):
            if which == "next":
                add(max(1, int(fill * between)))
            t0 = time.perf_counter()
            written = save_checkpoint(path, {
                "trial_hash": trial.group_hash(), "step": state["t"], "wall_s": 0.0, "agent": agent.state_dict(),
                "envs": envs.get_state(), "obs": obs, "run_ids": [], "eval_returns": [], "diverged": [],
                "accumulator": {}, "pending": []})
            out[f"{which}_s"], out[f"{which}_bytes"] = time.perf_counter() - t0, written
            if store is not None:
                t0 = time.perf_counter()
                store.put(path)
                out[f"{which}_upload_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_checkpoint(path, trial.group_hash())
        out["load_s"] = time.perf_counter() - t0
    envs.close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default="classic,minatar,atari")
    p.add_argument("--fill", action="append", default=[], help="FAMILY=N transitions per replica (repeatable)")
    p.add_argument("--seeds", type=int, default=1, help="replicas in the group")
    p.add_argument("--between", type=float, default=0.1,
                   help="transitions stored between the two checkpoints, as a fraction of the fill (default 0.1)")
    p.add_argument("--upload", default=None, help="also time the upload to this fsspec URL (e.g. file:///tmp/ck)")
    args = p.parse_args()
    fills = dict(DEFAULT_FILL)
    for item in args.fill:
        k, _, v = item.partition("=")
        fills[k] = int(v)
    print("| family | env | seeds | replay fill / replica | first checkpoint: MB written, s (upload s) | "
          f"next after +{args.between:.0%}: MB written, s (upload s) | read s |")
    print("|---|---|---|---|---|---|---|")

    def cell(r: dict, which: str) -> str:
        up = f" ({r[which + '_upload_s']:.2f})" if which + "_upload_s" in r else ""
        return f"{r[which + '_bytes'] / 1e6:,.1f} MB, {r[which + '_s']:.2f} s{up}"

    for fam in args.families.split(","):
        r = measure(fam, fills[fam], args.seeds, args.upload, args.between)
        print(f"| {fam} | {r['env']} | {r['seeds']} | {r['fill']:,} | {cell(r, 'first')} | {cell(r, 'next')} | "
              f"{r['load_s']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
