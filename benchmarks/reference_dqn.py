"""Reference DQN: a minimal single-file PyTorch loop of the shape of CleanRL's ``dqn.py``.

Kept only as a speed baseline for ``benchmarks/bench_speed.py`` (issue #6); it is not product code and is
not used by TargetBench itself. One gymnasium env, replay as preallocated numpy arrays, a plain Python loop.

Hyperparameters are CleanRL ``dqn.py``'s CartPole defaults: MLP 120-84, Adam lr 2.5e-4, buffer 10k,
batch 128, learning_starts 10k, one update every 10 env steps, hard target copy every 500 env steps,
gamma 0.99, epsilon 1 -> 0.05 linearly over half the run, MSE TD loss.

Differences from CleanRL kept on purpose: no SyncVectorEnv wrapper (one plain env), numpy ring buffer
instead of SB3's ``ReplayBuffer``, torch limited to one intra-op thread (as TargetBench does), and the final
evaluation uses TargetBench's protocol (10 episodes, epsilon 0.001) so the returns are comparable.

    python benchmarks/reference_dqn.py --seed 0 --steps 50000 [--learning-starts 10000] [--device cpu] [--json]

``--learning-starts`` (default CleanRL's 10k) lets the bench shorten budgets without a run that never updates;
``--device`` puts the networks and minibatches on another torch device (the loop itself stays on the host).
"""
from __future__ import annotations

import argparse
import json
import random
import time

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HP = dict(
    learning_rate=2.5e-4, buffer_size=10_000, gamma=0.99, target_network_frequency=500, batch_size=128,
    start_e=1.0, end_e=0.05, exploration_fraction=0.5, learning_starts=10_000, train_frequency=10,
    eval_episodes=10, eval_epsilon=0.001,
)


class QNetwork(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int):
        super().__init__()
        self.network = nn.Sequential(
            nn.Linear(obs_dim, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, n_actions))

    def forward(self, x):
        return self.network(x)


def linear_schedule(start_e: float, end_e: float, duration: int, t: int) -> float:
    slope = (end_e - start_e) / duration
    return max(slope * t + start_e, end_e)


def evaluate(q_network: QNetwork, env_id: str, seed: int, episodes: int, epsilon: float,
             device: torch.device = torch.device("cpu")) -> float:
    env = gym.make(env_id)
    env.action_space.seed(seed + 10_000)
    rng = np.random.default_rng(seed + 10_000)
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + 10_000 + ep)
        done, total = False, 0.0
        while not done:
            if rng.random() < epsilon:
                action = int(env.action_space.sample())
            else:
                with torch.no_grad():
                    action = int(q_network(torch.as_tensor(obs, dtype=torch.float32, device=device)).argmax().item())
            obs, reward, term, trunc, _ = env.step(action)
            total += float(reward)
            done = term or trunc
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def run(seed: int = 0, total_steps: int = 500_000, env_id: str = "CartPole-v1", threads: int = 1,
        learning_starts: int | None = None, device: str = "cpu") -> dict:
    """Train one seed; return ``dict(wall_s, sps, final_eval_return)`` (wall_s covers training + final eval)."""
    if threads:
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    hp = dict(HP)
    if learning_starts is not None:
        hp["learning_starts"] = learning_starts
    dev = torch.device(device)
    env = gym.make(env_id)
    env.action_space.seed(seed)
    obs_dim = int(np.prod(env.observation_space.shape))
    n_actions = int(env.action_space.n)

    q_network = QNetwork(obs_dim, n_actions).to(dev)
    optimizer = torch.optim.Adam(q_network.parameters(), lr=hp["learning_rate"])
    target_network = QNetwork(obs_dim, n_actions).to(dev)
    target_network.load_state_dict(q_network.state_dict())

    size = hp["buffer_size"]
    b_obs = np.zeros((size, obs_dim), np.float32)
    b_next = np.zeros((size, obs_dim), np.float32)
    b_act = np.zeros(size, np.int64)
    b_rew = np.zeros(size, np.float32)
    b_done = np.zeros(size, np.float32)
    ptr, full = 0, False

    started = time.perf_counter()
    obs, _ = env.reset(seed=seed)
    duration = int(hp["exploration_fraction"] * total_steps)
    for global_step in range(total_steps):
        epsilon = linear_schedule(hp["start_e"], hp["end_e"], duration, global_step)
        if random.random() < epsilon:
            action = int(env.action_space.sample())
        else:
            with torch.no_grad():
                q_values = q_network(torch.as_tensor(obs, dtype=torch.float32, device=dev))
            action = int(torch.argmax(q_values).item())

        next_obs, reward, terminated, truncated, _ = env.step(action)
        # as CleanRL: store the true next observation on truncation, bootstrap only cut on termination
        b_obs[ptr] = obs
        b_next[ptr] = next_obs
        b_act[ptr] = action
        b_rew[ptr] = reward
        b_done[ptr] = float(terminated)
        ptr = (ptr + 1) % size
        full = full or ptr == 0
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()

        if global_step > hp["learning_starts"]:
            if global_step % hp["train_frequency"] == 0:
                idx = np.random.randint(0, size if full else ptr, size=hp["batch_size"])
                s = torch.from_numpy(b_obs[idx]).to(dev)
                s2 = torch.from_numpy(b_next[idx]).to(dev)
                a = torch.from_numpy(b_act[idx]).to(dev)
                r = torch.from_numpy(b_rew[idx]).to(dev)
                d = torch.from_numpy(b_done[idx]).to(dev)
                with torch.no_grad():
                    target_max, _ = target_network(s2).max(dim=1)
                    td_target = r + hp["gamma"] * target_max * (1 - d)
                old_val = q_network(s).gather(1, a.unsqueeze(1)).squeeze(1)
                loss = F.mse_loss(td_target, old_val)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if global_step % hp["target_network_frequency"] == 0:
                target_network.load_state_dict(q_network.state_dict())
    if dev.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - started
    env.close()
    final = evaluate(q_network, env_id, seed, hp["eval_episodes"], hp["eval_epsilon"], dev)
    wall = time.perf_counter() - started
    return dict(wall_s=round(wall, 3), train_s=round(train_s, 3), sps=round(total_steps / wall, 1),
                final_eval_return=final, device=str(dev))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=500_000)
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0 = torch default)")
    p.add_argument("--learning-starts", type=int, default=None, help=f"default {HP['learning_starts']}")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:N)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    args = p.parse_args()
    out = run(args.seed, args.steps, args.env, args.threads, args.learning_starts, args.device)
    out = dict(seed=args.seed, steps=args.steps, **out)
    print(json.dumps(out) if args.json else out)


if __name__ == "__main__":
    main()
