"""Reference DQN for MinAtar: a minimal single-file PyTorch loop of the shape of CleanRL's ``dqn.py``.

Kept only as a speed baseline for ``benchmarks/bench_speed.py --env minatar`` (issue #6, target 3); it is not
product code and TargetBench does not use it. One MinAtar game, a numpy ring buffer with uint8 observations,
a plain Python loop, one torch intra-op thread.

The environment does the same per-step work as TargetBench's ``MinAtar/<game>`` (``suite/envs/minatar.py``):
``minatar.Environment(game, sticky_action_prob=0.1, difficulty_ramping=True)``, all 6 actions, observations
``state().transpose(2, 0, 1)`` as contiguous uint8 ``(C, 10, 10)``, the game's RandomState seeded with the
seed, no step limit. It is written against the ``minatar`` package directly (not TargetBench's wrapper), as
a single-file script would be, so TargetBench's wrapper layers are counted as TargetBench's cost.

Network and hyperparameters are TargetBench's ``minatar`` family defaults for ``dqn`` (the MinAtar paper's
``examples/dqn.py``; ``suite/envs/minatar.py`` agent_defaults, ``agents/catalog/dqn.py``): conv 16@3x3
stride 1 -> ReLU -> FC 128 -> ReLU -> linear head, centred RMSProp (lr 2.5e-4, alpha 0.95, eps 0.01), Huber
loss, batch 32, replay 100k, one update per env step, hard target copy every 1000 env steps, gamma 0.99,
epsilon 1 -> 0.1 linearly over ``--epsilon-decay-steps`` (100k in the paper), ``--learning-starts`` (5000 in
the paper). The bench passes smaller values of the last two and of the replay size for short budgets (the same
to every contender; see ``bench_common.py``).
Final evaluation: TargetBench's protocol, 10 episodes at epsilon 0.001 (each capped at 27,000 steps).

    python benchmarks/reference_dqn_minatar.py --seed 0 --steps 20000 [--learning-starts 1000]
        [--epsilon-decay-steps 2000] [--buffer-size 20000] [--device cpu] [--json]
"""
from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HP = dict(
    learning_rate=2.5e-4, rmsprop_alpha=0.95, rmsprop_eps=0.01, buffer_size=100_000, gamma=0.99,
    target_network_frequency=1000, batch_size=32, start_e=1.0, end_e=0.1, epsilon_decay_steps=100_000,
    learning_starts=5000, train_frequency=1, eval_episodes=10, eval_epsilon=0.001, eval_max_steps=27_000,
    sticky_action_prob=0.1, difficulty_ramping=True,
)


class MinAtarGame:
    """The bare minimum around ``minatar.Environment``: seeded reset, step, channels-first uint8 frames."""

    def __init__(self, game: str, seed: int):
        import minatar

        self.game = minatar.Environment(game, sticky_action_prob=HP["sticky_action_prob"],
                                        difficulty_ramping=HP["difficulty_ramping"])
        self.game.seed(seed)  # one RandomState shared by sticky actions and dynamics, as TargetBench does
        h, w, c = self.game.state_shape()
        self.obs_shape = (c, h, w)
        self.n_actions = self.game.num_actions()  # all 6 actions (the MinAtar paper's DQN)

    def obs(self) -> np.ndarray:
        return np.ascontiguousarray(self.game.state().transpose(2, 0, 1), dtype=np.uint8)

    def reset(self) -> np.ndarray:
        self.game.reset()
        return self.obs()

    def step(self, action: int) -> tuple[np.ndarray, float, bool]:
        reward, done = self.game.act(action)
        return self.obs(), float(reward), bool(done)


def q_network(obs_shape: tuple[int, int, int], n_actions: int) -> nn.Sequential:
    c, h, w = obs_shape
    return nn.Sequential(
        nn.Conv2d(c, 16, kernel_size=3, stride=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(16 * (h - 2) * (w - 2), 128), nn.ReLU(), nn.Linear(128, n_actions))


def linear_schedule(start_e: float, end_e: float, duration: int, t: int) -> float:
    slope = (end_e - start_e) / duration
    return max(slope * t + start_e, end_e)


def evaluate(net: nn.Module, game: str, seed: int, device: torch.device) -> float:
    env = MinAtarGame(game, seed + 10_000)
    rng = np.random.default_rng(seed + 10_000)
    returns = []
    for _ in range(HP["eval_episodes"]):
        obs, total = env.reset(), 0.0
        for _ in range(HP["eval_max_steps"]):
            if rng.random() < HP["eval_epsilon"]:
                action = int(rng.integers(env.n_actions))
            else:
                with torch.no_grad():
                    x = torch.as_tensor(obs, device=device).unsqueeze(0).float()
                    action = int(net(x).argmax().item())
            obs, reward, done = env.step(action)
            total += reward
            if done:
                break
        returns.append(total)
    return float(np.mean(returns))


def run(seed: int = 0, total_steps: int = 20_000, game: str = "breakout", threads: int = 1,
        learning_starts: int | None = None, epsilon_decay_steps: int | None = None, device: str = "cpu",
        buffer_size: int | None = None) -> dict:
    """Train one seed; return ``dict(wall_s, train_s, sps, final_eval_return)`` (wall_s = training + final eval)."""
    if threads:
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    hp = dict(HP)
    if learning_starts is not None:
        hp["learning_starts"] = learning_starts
    if epsilon_decay_steps is not None:
        hp["epsilon_decay_steps"] = epsilon_decay_steps
    if buffer_size is not None:
        hp["buffer_size"] = buffer_size
    dev = torch.device(device)
    env = MinAtarGame(game, seed)
    net = q_network(env.obs_shape, env.n_actions).to(dev)
    target = q_network(env.obs_shape, env.n_actions).to(dev)
    target.load_state_dict(net.state_dict())
    optimizer = torch.optim.RMSprop(net.parameters(), lr=hp["learning_rate"], alpha=hp["rmsprop_alpha"],
                                    eps=hp["rmsprop_eps"], centered=True)

    size = hp["buffer_size"]
    b_obs = np.zeros((size, *env.obs_shape), np.uint8)
    b_next = np.zeros((size, *env.obs_shape), np.uint8)
    b_act = np.zeros(size, np.int64)
    b_rew = np.zeros(size, np.float32)
    b_done = np.zeros(size, np.float32)
    ptr, full = 0, False

    started = time.perf_counter()
    obs = env.reset()
    for global_step in range(total_steps):
        epsilon = linear_schedule(hp["start_e"], hp["end_e"], hp["epsilon_decay_steps"], global_step)
        if random.random() < epsilon:
            action = random.randrange(env.n_actions)
        else:
            with torch.no_grad():
                q_values = net(torch.from_numpy(obs).to(dev).unsqueeze(0).float())
            action = int(q_values.argmax().item())

        next_obs, reward, terminated = env.step(action)
        b_obs[ptr] = obs
        b_next[ptr] = next_obs
        b_act[ptr] = action
        b_rew[ptr] = reward
        b_done[ptr] = float(terminated)
        ptr = (ptr + 1) % size
        full = full or ptr == 0
        obs = env.reset() if terminated else next_obs

        if global_step > hp["learning_starts"]:
            if global_step % hp["train_frequency"] == 0:
                idx = np.random.randint(0, size if full else ptr, size=hp["batch_size"])
                s = torch.from_numpy(b_obs[idx]).to(dev).float()
                s2 = torch.from_numpy(b_next[idx]).to(dev).float()
                a = torch.from_numpy(b_act[idx]).to(dev)
                r = torch.from_numpy(b_rew[idx]).to(dev)
                d = torch.from_numpy(b_done[idx]).to(dev)
                with torch.no_grad():
                    target_max, _ = target(s2).max(dim=1)
                    td_target = r + hp["gamma"] * target_max * (1 - d)
                old_val = net(s).gather(1, a.unsqueeze(1)).squeeze(1)
                loss = F.smooth_l1_loss(old_val, td_target)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if global_step % hp["target_network_frequency"] == 0:
                target.load_state_dict(net.state_dict())
    if dev.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - started
    final = evaluate(net, game, seed, dev)
    wall = time.perf_counter() - started
    return dict(wall_s=round(wall, 3), train_s=round(train_s, 3), sps=round(total_steps / wall, 1),
                final_eval_return=final, device=str(dev))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--game", default="breakout")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0 = torch default)")
    p.add_argument("--learning-starts", type=int, default=None, help=f"default {HP['learning_starts']}")
    p.add_argument("--epsilon-decay-steps", type=int, default=None, help=f"default {HP['epsilon_decay_steps']}")
    p.add_argument("--buffer-size", type=int, default=None, help=f"default {HP['buffer_size']}")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:N)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    args = p.parse_args()
    out = run(args.seed, args.steps, args.game, args.threads, args.learning_starts, args.epsilon_decay_steps,
              args.device, args.buffer_size)
    out = dict(seed=args.seed, steps=args.steps, **out)
    print(json.dumps(out) if args.json else out)


if __name__ == "__main__":
    main()
