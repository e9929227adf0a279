"""Per-call cost of the agent's compute paths, side by side in one run (issue #6 microbenchmark).

For the DQN agent on CartPole's MLP (batch 128, 120-84, Adam) and MinAtar's CNN (batch 32, conv16@3x3 + FC128,
centred RMSProp, Huber), in this process on one CPU thread (torch and BLAS), subnormals flushed as the trainer
does:

  update        QAgent.update on a fixed minibatch (loss, gradient, optimizer), numpy kernels vs torch autograd
  contenders    the same update with the gradient from torch.compile (of the agent's loss; forward and backward
                compiled, first call timed apart as compile time) and from torch.func (grad of a one-replica loss,
                vmap over the replicas, functional_call on the network): issue #13's question whether either
                should replace the numpy kernels (``--no-contenders`` skips them)
  greedy action QAgent.greedy_actions for one observation per replica, numpy vs torch
  replica split the numpy update of 16 replicas on 1 vs 2 threads (train.threads)
  bf16 product  torch bmm of 16 replicas' [128,120] x [120,84] in float32 vs bfloat16 (not used by the agent:
                what an opt-in bf16 mode could gain on a CPU with AMX)
  loop          with ``--e2e-steps N``: the trainer's loop body on CartPole-v1 (act, env step, store, an update
                every 10 env steps from step 1000) at 1 and 16 replicas, numpy vs torch eager vs torch.compile

Medians of ``--repeats`` timings of ``--calls`` calls each. The figures quoted in docs/performance.md come from

    python benchmarks/bench_kernels.py [--e2e-steps 20000]
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents import get_agent  # noqa: E402
from agents.bootstrap import td_target  # noqa: E402
from agents.losses import td_loss  # noqa: E402
from agents.replay import Batch  # noqa: E402
from suite.envs import get_family  # noqa: E402
from suite.provenance import set_cpu_threads  # noqa: E402

SETUPS = {  # name: (family, obs shape, obs dtype, actions, batch, config overrides)
    "CartPole MLP": ("classic", (4,), np.float32, 2, 128, {}),
    "MinAtar CNN": ("minatar", (4, 10, 10), np.uint8, 3, 32, {}),
}


def per_call_us(fn: Callable[[], object], calls: int, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def make(setup: str, replicas: int, kernels: str, threads: int = 1):
    family, shape, dtype, actions, batch, extra = SETUPS[setup]
    spec = get_agent("dqn")
    fam = get_family(family)
    cfg = fam.agent_config(spec.config_cls, {"batch_size": batch, "buffer_size": 1000, **extra})
    agent = spec.cls(cfg, obs_shape=shape, obs_dtype=np.dtype(dtype), num_actions=actions,
                     seeds=list(range(replicas)), family=fam.facts, total_steps=100_000, kernels=kernels,
                     threads=threads)
    g = np.random.default_rng(0)

    def obs(*lead):
        if dtype == np.uint8:
            return (g.random((*lead, *shape)) < 0.1).astype(np.uint8)
        return g.normal(size=(*lead, *shape)).astype(np.float32)

    batch_ = Batch(torch.from_numpy(obs(replicas, batch)), torch.from_numpy(g.integers(0, actions, (replicas, batch))),
                   torch.from_numpy(g.normal(size=(replicas, batch)).astype(np.float32)),
                   torch.from_numpy(obs(replicas, batch)),
                   torch.from_numpy((g.random((replicas, batch)) < 0.05).astype(np.float32)))
    return agent, batch_, obs(replicas)


class CompiledLearner:
    """The torch backend's gradient with the agent's ``loss`` under ``torch.compile`` (forward and backward graphs
    compiled by AOTAutograd); the optimizer step stays the agent's, as for every backend."""

    def __init__(self, agent) -> None:
        self.loss = torch.compile(agent.loss)

    def gradients(self, agent, batch: Batch):
        loss, metrics = self.loss(batch)
        agent.optimizer.zero_grad()
        loss.sum().backward()
        return loss, metrics


class FuncLearner:
    """The gradient by ``torch.func``: ``grad`` of one replica's TD loss (``functional_call`` on the replica-stacked
    network with a replica axis of 1), ``vmap``-ped over the replicas; written into ``.grad``."""

    def __init__(self, agent) -> None:
        from torch.func import functional_call, grad, vmap

        online, target = agent.online, agent.target_rule.network
        cfg, double = agent.config, agent.bootstrap.name == "double"
        self.params = dict(online.named_parameters())
        self.target_params = dict(target.named_parameters())

        def one(params, tparams, obs, action, reward, next_obs, terminated):
            q = functional_call(online, {k: v[None] for k, v in params.items()}, (obs[None],))[0]
            q_next = functional_call(target, {k: v[None].detach() for k, v in tparams.items()}, (next_obs[None],))[0]
            if double:
                with torch.no_grad():
                    greedy = functional_call(online, {k: v[None].detach() for k, v in params.items()},
                                             (next_obs[None],))[0].argmax(-1, keepdim=True)
                v_next = q_next.gather(-1, greedy)[:, 0]
            else:
                v_next = q_next.max(-1).values
            y = td_target(reward, terminated, v_next, cfg.gamma).detach()
            q_sa = q.gather(-1, action[:, None])[:, 0]
            loss = td_loss(cfg.loss, q_sa[None], y[None])[0]
            return loss, loss.detach()

        self.fn = vmap(grad(one, has_aux=True))

    def gradients(self, agent, batch: Batch):
        grads, loss = self.fn(self.params, self.target_params, batch.obs, batch.action, batch.reward,
                              batch.next_obs, batch.terminated)
        with torch.no_grad():  # the .grad are views into the optimizer's flat buffer (agents/optim.py)
            for name, p in self.params.items():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                p.grad.copy_(grads[name])
        return loss, {}


def contenders(setup: str, replicas: int, calls: int, repeats: int) -> dict[str, float]:
    """µs per update call for torch.compile and torch.func (and the compile time, s), after checking that each
    gives torch autograd's gradient."""
    out = {}
    for name, kind in (("compile", CompiledLearner), ("func", FuncLearner)):
        agent, batch, _ = make(setup, replicas, "torch")
        reference, _, _ = make(setup, replicas, "torch")
        reference.update(batch)
        want = [p.grad.clone() for p in reference.online.parameters()]
        agent._learner = kind(agent)  # the bound backend's gradient object (benchmark only)
        start = time.perf_counter()
        agent.update(batch)  # torch.compile traces and compiles here
        out[f"{name} first call s"] = time.perf_counter() - start
        for g, w in zip((p.grad for p in agent.online.parameters()), want):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)
        out[name] = per_call_us(lambda: agent.update(batch), calls, repeats)
    return out


def loop_seconds(learner: str, replicas: int, steps: int) -> float:
    """Wall seconds of the trainer's loop body (act, env step, store, update) for CleanRL's CartPole DQN
    (learning from step 1000, an update every 10 env steps), with the update's gradient from ``learner``
    (``numpy``, ``torch`` or ``compile``); compile time excluded (a warm-up update before the clock starts)."""
    from suite.envs.replicas import ReplicaEnvs

    agent, batch, _ = make("CartPole MLP", replicas, "torch" if learner != "numpy" else "auto")
    if learner == "compile":
        agent._learner = CompiledLearner(agent)
        agent.update(batch)
    envs = ReplicaEnvs("CartPole-v1", list(range(replicas)))
    agent.config = dataclasses.replace(agent.config, learning_starts=1000, train_frequency=10)
    obs = envs.reset()
    start = time.perf_counter()
    for step in range(steps):
        actions = agent.act(obs, step)
        res = envs.step(actions)
        agent.observe(obs, actions, res.reward, res.next_obs, res.terminated, res.truncated)
        obs = res.obs
        agent.after_env_step(step + 1)
    envs.close()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-contenders", action="store_true", help="skip torch.compile and torch.func")
    ap.add_argument("--e2e-steps", type=int, default=0,
                    help="also time the training loop of CartPole at 1 and 16 replicas for this many env steps "
                         "with numpy, torch eager and torch.compile gradients")
    args = ap.parse_args()
    set_cpu_threads(1, 1)
    c, r = args.calls, args.repeats
    rows, contender_rows = [], []
    for setup in SETUPS:
        for replicas in (1, 16):
            times = {}
            for kernels in ("auto", "torch"):
                agent, batch, _ = make(setup, replicas, kernels)
                times[kernels] = per_call_us(lambda: agent.update(batch), c, r)
            rows.append((f"{setup} update, {replicas} replica(s)", times["auto"], times["torch"]))
            if not args.no_contenders:
                contender_rows.append((rows[-1], contenders(setup, replicas, c, r)))
    times = {}
    for kernels in ("auto", "torch"):
        agent, _, one_obs = make("CartPole MLP", 1, kernels)
        times[kernels] = per_call_us(lambda: agent.greedy_actions(one_obs), c * 20, r)
    rows.append(("CartPole MLP greedy action, 1 replica", times["auto"], times["torch"]))

    split = {}
    for threads in (1, 2):
        agent, batch, _ = make("CartPole MLP", 16, "auto", threads)
        split[threads] = per_call_us(lambda: agent.update(batch), c, r)
    x, w = torch.rand(16, 128, 120), torch.rand(16, 120, 84)
    xb, wb = x.bfloat16(), w.bfloat16()
    f32 = per_call_us(lambda: torch.bmm(x, w), c * 5, r)
    bf16 = per_call_us(lambda: torch.bmm(xb, wb), c * 5, r)

    print("| what | numpy kernels µs | torch autograd µs | torch / numpy |")
    print("|---|---:|---:|---:|")
    for name, fast, slow in rows:
        print(f"| {name} | {fast:,.1f} | {slow:,.1f} | {slow / fast:.2f}x |")
    print()
    print(f"Replica split, CartPole MLP update of 16 replicas (numpy): 1 thread {split[1]:,.0f} µs, "
          f"2 threads {split[2]:,.0f} µs ({split[1] / split[2]:.2f}x).")
    print(f"bmm of 16 replicas [128,120]x[120,84]: float32 {f32:,.0f} µs, bfloat16 {bf16:,.0f} µs "
          f"({f32 / bf16:.2f}x).")
    if contender_rows:
        print()
        print("| update call | numpy µs | torch eager µs | torch.compile µs | torch.func µs | compile / func first "
              "call s | numpy / compile | numpy / func |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for (name, fast, slow), t in contender_rows:
            print(f"| {name.replace(' update', '')} | {fast:,.1f} | {slow:,.1f} | {t['compile']:,.1f} | "
                  f"{t['func']:,.1f} | {t['compile first call s']:.1f} / {t['func first call s']:.2f} | "
                  f"{fast / t['compile']:.2f}x | {fast / t['func']:.2f}x |")
    if args.e2e_steps:
        print()
        print(f"Training loop, CartPole-v1, {args.e2e_steps:,} env steps (act, step, store, update every 10 steps "
              "from step 1000; compile time excluded):")
        print()
        print("| replicas | numpy s | torch eager s | torch.compile s | numpy speed / compile speed |")
        print("|---:|---:|---:|---:|---:|")
        for replicas in (1, 16):
            t = {k: loop_seconds(k, replicas, args.e2e_steps) for k in ("numpy", "torch", "compile")}
            print(f"| {replicas} | {t['numpy']:.2f} | {t['torch']:.2f} | {t['compile']:.2f} | "
                  f"{t['compile'] / t['numpy']:.2f}x |")


if __name__ == "__main__":
    main()
