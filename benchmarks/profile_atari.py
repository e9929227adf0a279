"""Where an Atari step's time goes on the CPU, before and after the env-side savings, side by side in one run.

One process, one seed of ``dqn`` on ``ALE/Pong-v5`` (the Atari family's settings, with a short warm-up and a
small replay so that the update runs from early on), the trainer's loop body (act, env step, replay insert,
learner cadence) timed piece by piece with exclusive timers (a timed call nested in another counts once, under
its own label):

  emulator         ale-py's AtariEnv.step per frame (x frame_skip per agent step): the ALE emulating it and, before,
                   copying its screen into an observation nobody reads
  sticky actions   the Python sticky-action draw per frame
  preprocessing    AtariPreprocessing: max-pool of the last two screens, resize to 84x84, no-op starts
  frame stack      stacking the last 4 frames into the observation
  env glue         BenchEnvWrapper, TimeLimit and ReplicaEnvs around one env step
  act              QAgent.act: ε-greedy (the greedy forward pass when not exploring)
  replay insert    QAgent.observe (one uint8 frame per step kept, the stack rebuilt at sampling)
  replay sample    ReplayBuffer.sample: the minibatch's stacks gathered from the frame ring
  update           QAgent.update: forward, backward, optimizer step (1 in train_frequency steps)
  rest             the loop itself, the ε schedule, the target rule's cadence

Variants, run alternately (``--repeats`` rounds, every other one in reverse order; the median of each is reported,
with the spread):

  before           ale-py's AtariEnv reading every frame's screen, gymnasium's FrameStackObservation (a copy into
                   its buffer, then a deep copy): the Atari stack as it was
  after            what ``suite/envs/atari.py`` builds now (same frames, same numbers)
  after, 2 threads the same with torch intra-op threads = 2 (``--set train.threads=2``): faster updates on this
                   CPU, but more than one thread may change the last bits of a result, so it is not the default

    python benchmarks/profile_atari.py --steps 1500 --repeats 3

The machine this runs on may be shared: the table states the load average before and after.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from profile_ours import Timers  # noqa: E402  - the exclusive timers of the general profile

PARTS = ["emulator", "sticky actions", "preprocessing", "frame stack", "env glue", "act", "replay insert",
         "replay sample", "update", "rest"]
ENV = "ALE/Pong-v5"


@contextmanager
def atari_stack(variant: str):
    """Build envs as ``variant`` says for the duration of the block."""
    from gymnasium.wrappers import FrameStackObservation

    from suite.envs import atari

    saved = atari._screenless_env_class, atari.FrameStackObservation
    if variant == "before":
        from ale_py.env import AtariEnv

        atari._screenless_env_class, atari.FrameStackObservation = (lambda: AtariEnv), FrameStackObservation
    try:
        yield
    finally:
        atari._screenless_env_class, atari.FrameStackObservation = saved


def instrument(timers: Timers, agent, envs) -> None:
    """Wrap the pieces of one agent and its envs, per instance (the classes stay untouched for the other
    variants)."""
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TimeLimit

    from suite.envs import atari
    from suite.envs.wrappers import BenchEnvWrapper, env_layers

    layers = env_layers(envs._envs[0])
    base = layers[-1]

    def patch(owner, attr, label):
        setattr(owner, attr, timers.wrap(getattr(owner, attr), label))

    for layer in layers:
        if layer is base:
            patch(layer, "step", "emulator")
        elif isinstance(layer, atari.StickyActions):
            patch(layer, "step", "sticky actions")
        elif isinstance(layer, AtariPreprocessing):
            patch(layer, "step", "preprocessing")
        elif isinstance(layer, FrameStackObservation):
            patch(layer, "step", "frame stack")
        elif isinstance(layer, (TimeLimit, BenchEnvWrapper)):
            patch(layer, "step", "env glue")
    patch(envs, "step", "env glue")
    patch(agent, "act", "act")
    patch(agent, "observe", "replay insert")
    patch(agent.replay, "sample", "replay sample")
    patch(agent, "update", "update")


def run_variant(variant: str, steps: int, learning_starts: int) -> dict:
    """One timed run of the loop body; returns seconds per part and env steps/s."""
    import torch

    from agents import get_agent
    from suite.envs import ReplicaEnvs, get_family
    from suite.trial import build_trial

    torch.set_num_threads(2 if variant.endswith("2 threads") else 1)
    trial = build_trial("dqn", ENV, (0,), steps=steps, overrides={
        "learning_starts": str(learning_starts), "buffer_size": "20000", "epsilon_decay_steps": str(steps)})
    with atari_stack("before" if variant == "before" else "after"):
        envs = ReplicaEnvs(ENV, [0], options=trial.env_options)
    spec = get_agent("dqn")
    agent = spec.cls(trial.agent_config, obs_shape=envs.observation_shape, obs_dtype=envs.observation_dtype,
                     num_actions=envs.num_actions, seeds=trial.seeds, family=get_family("atari").facts,
                     total_steps=steps, kernels="torch", threads=1)
    timers = Timers()
    obs = envs.reset()
    instrument(timers, agent, envs)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):  # the trainer's loop body
        actions = agent.act(obs, step - 1)
        res = envs.step(actions)
        agent.observe(obs, actions, res.reward, res.next_obs, res.terminated, res.truncated)
        obs = res.obs
        agent.after_env_step(step)
    wall = time.perf_counter() - t0
    envs.close()
    seconds = dict(timers.seconds)
    seconds["rest"] = wall - sum(v for k, v in seconds.items() if k != "rest")
    return {"seconds": seconds, "wall": wall, "sps": steps / wall, "updates": agent.updates}


def env_only(variant: str, steps: int) -> float:
    """Env steps/s of random play alone (no agent)."""
    import numpy as np

    from suite.envs import ReplicaEnvs

    with atari_stack(variant):
        envs = ReplicaEnvs(ENV, [0])
    rng = np.random.default_rng(0)
    envs.reset()
    actions = rng.integers(0, envs.num_actions, (steps, 1))
    t0 = time.perf_counter()
    for a in actions:
        envs.step(a)
    sps = steps / (time.perf_counter() - t0)
    envs.close()
    return sps


def identical_frames(steps: int = 300) -> bool:
    """Whether both stacks give the same observations, rewards and ends for the same seed and actions."""
    import numpy as np

    from suite.envs import ReplicaEnvs

    out = []
    for variant in ("before", "after"):
        with atari_stack(variant):
            envs = ReplicaEnvs(ENV, [0])
        rng = np.random.default_rng(1)
        obs = [envs.reset()]
        for a in rng.integers(0, envs.num_actions, (steps, 1)):
            res = envs.step(a)
            obs.append(np.concatenate([res.obs.ravel(), res.next_obs.ravel(), res.reward.ravel(),
                                       res.terminated.ravel(), res.truncated.ravel()]))
        envs.close()
        out.append(obs)
    return all(np.array_equal(x, y) for x, y in zip(*out, strict=True))


def _fmt_row(name: str, results: list[dict]) -> str:
    shares = []
    for part in PARTS:
        per_step = [r["seconds"].get(part, 0.0) / r["steps"] * 1e3 for r in results]
        shares.append(f"{statistics.median(per_step):.2f}")
    sps = [r["sps"] for r in results]
    return (f"| {name} | {statistics.median(sps):.1f} ({min(sps):.1f}–{max(sps):.1f}) | " + " | ".join(shares) + " |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1500, help="loop steps per timed run (default 1500)")
    p.add_argument("--learning-starts", type=int, default=500, help="steps before the first update (default 500)")
    p.add_argument("--repeats", type=int, default=3, help="rounds of the variants (default 3)")
    p.add_argument("--env-steps", type=int, default=3000, help="steps of the env-only measurement (default 3000)")
    p.add_argument("--variants", default="before,after,after 2 threads")
    args = p.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",")]
    load_before = os.getloadavg()
    same = identical_frames()
    env_sps: dict[str, list[float]] = {v: [] for v in ("before", "after")}
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for i in range(args.repeats):
        order = 1 if i % 2 == 0 else -1  # alternate the order too: a drift in the load cancels over rounds
        for v in ("before", "after")[::order]:
            env_sps[v].append(env_only(v, args.env_steps))
        for v in variants[::order]:
            r = run_variant(v, args.steps, args.learning_starts)
            r["steps"] = args.steps
            runs[v].append(r)
            print(f"{v}: {r['sps']:.1f} env steps/s ({r['updates']} updates)", file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    import torch

    lines = [
        f"Atari on the CPU: dqn on {ENV}, one seed, {args.steps} loop steps per run ({args.learning_starts} before "
        f"learning, then an update every 4 steps), {args.repeats} rounds of the variants in alternating order, medians "
        f"(range); {os.cpu_count()} CPUs, torch {torch.__version__}, load average {load_before[0]:.1f} before and "
        f"{load_after[0]:.1f} after (the machine is shared: absolute rates move with the load, the variants "
        f"ran alternately under the same load). Same frames, rewards and ends before and after: {same}.",
        "",
        "Env alone (random actions, env steps/s): before "
        f"{statistics.median(env_sps['before']):.0f} ({min(env_sps['before']):.0f}–{max(env_sps['before']):.0f}), "
        f"after {statistics.median(env_sps['after']):.0f} ({min(env_sps['after']):.0f}–{max(env_sps['after']):.0f}).",
        "",
        "Training loop, env steps/s and milliseconds per env step in each part:",
        "",
        "| variant | env steps/s | " + " | ".join(PARTS) + " |",
        "|---|---:|" + "---:|" * len(PARTS),
    ]
    lines += [_fmt_row(v, runs[v]) for v in variants]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
