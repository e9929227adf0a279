"""A rough cost model for ``--dry-run``: seconds per group from env steps, batch width and update cadence.

Per loop iteration (every replica steps once) a group of R seeds costs about
``env_a + env_b*R + (upd_a + upd_b*R) * m / train_frequency`` seconds after ``learning_starts``, where ``m``
is the agent's update-cost multiplier, plus evaluation episodes and a process start. The constants were
measured with this code on one core of a 2-core cloud VM (classic control, MinAtar; torch 2.13 CPU, one
thread); the Atari ones are for one GPU and are guesses until measured. Treat the numbers as +-50 %.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["GroupCost", "estimate_group", "estimate"]

#: seconds per loop iteration: (env_a, env_b per replica, update_a, update_b per replica)
FAMILY_COSTS = {
    "classic": (1.35e-4, 2.7e-5, 1.2e-3, 2.4e-4),  # calibrated on the default suite (dqn, agt2-dqn groups)
    "tabular": (5.0e-5, 1.0e-5, 5.0e-4, 5.0e-5),
    "minatar": (3.0e-4, 3.0e-4, 9.0e-4, 1.4e-3),
    "atari": (2.0e-4, 1.0e-3, 2.0e-3, 5.0e-4),  # one GPU, ALE on the host CPU
}
#: typical evaluation episode length (env steps) per family
EVAL_EPISODE_STEPS = {"classic": 200, "tabular": 100, "minatar": 500, "atari": 3000}
#: cost of one update relative to DQN's (more networks or heads, a second optimizer, ...)
AGENT_UPDATE_FACTOR = {"idqn": 2.5, "isql": 1.3, "sgt2-dqn": 2.0, "agt2-dqn": 1.65, "fr-dqn": 1.4,
                       "double-dqn": 1.1, "dqn-no-target": 0.9,
                       "eaudeqn": 2.5}  # eaudeqn: K = 3 networks as idqn (a guess, not calibrated)
PROCESS_START_S = 6.0


@dataclass(frozen=True)
class GroupCost:
    env_steps: int  # summed over seeds
    seconds: float  # on one worker (one core, or the group's GPU share)


def estimate_group(group: Any) -> GroupCost:
    spec = group.spec
    cfg, train = spec.agent_config, spec.train
    env_a, env_b, upd_a, upd_b = FAMILY_COSTS.get(spec.family, FAMILY_COSTS["classic"])
    r = len(group.seeds)
    steps = train.steps
    freq = max(1, int(getattr(cfg, "train_frequency", 1) or 1))
    starts = min(steps, int(getattr(cfg, "learning_starts", 0) or 0))
    factor = AGENT_UPDATE_FACTOR.get(spec.agent, 1.0)
    per_env = env_a + env_b * r
    per_update = (upd_a + upd_b * r) * factor
    train_s = steps * per_env + (steps - starts) / freq * per_update
    evals = -(-steps // train.eval_every)
    eval_steps = min(EVAL_EPISODE_STEPS.get(spec.family, 200), train.eval_max_steps) * train.eval_episodes
    eval_s = evals * eval_steps * (per_env + 0.2 * (upd_a + upd_b * r) / 10)
    return GroupCost(steps * r, train_s + eval_s + PROCESS_START_S)


def estimate(groups: Sequence[Any], workers: int) -> dict[str, float]:
    """Totals for ``groups`` run ``workers`` at a time (longest-first greedy packing)."""
    costs = sorted((estimate_group(g).seconds for g in groups), reverse=True)
    lanes = [0.0] * max(1, workers)
    for c in costs:
        i = lanes.index(min(lanes))
        lanes[i] += c
    total = sum(costs)
    return {"groups": len(costs), "env_steps": sum(estimate_group(g).env_steps for g in groups),
            "worker_hours": round(total / 3600, 3), "wall_s": round(max(lanes) if costs else 0.0, 1),
            "workers": max(1, workers)}
