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

from suite.envs import CostFigures, get_family

__all__ = ["GroupCost", "estimate_group", "estimate"]

# The per-family figures (seconds per loop iteration: env_a, env_b per replica, update_a, update_b per replica;
# typical evaluation episode length) are in each family's record: ``EnvFamily.costs``.
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
    fam_costs = _family_costs(spec.family)
    env_a, env_b, upd_a, upd_b = fam_costs.env_a, fam_costs.env_b, fam_costs.update_a, fam_costs.update_b
    r = len(group.seeds)
    steps = train.steps
    freq = max(1, int(getattr(cfg, "train_frequency", 1) or 1))
    starts = min(steps, int(getattr(cfg, "learning_starts", 0) or 0))
    factor = AGENT_UPDATE_FACTOR.get(spec.agent, 1.0)
    per_env = env_a + env_b * r
    per_update = (upd_a + upd_b * r) * factor
    train_s = steps * per_env + (steps - starts) / freq * per_update
    evals = -(-steps // train.eval_every)
    eval_steps = min(fam_costs.eval_episode_steps, train.eval_max_steps) * train.eval_episodes
    eval_s = evals * eval_steps * (per_env + 0.2 * (upd_a + upd_b * r) / 10)
    return GroupCost(steps * r, train_s + eval_s + PROCESS_START_S)


def _family_costs(family: str) -> CostFigures:
    try:
        return get_family(family).costs
    except ValueError:  # a family no longer installed: the generic figures
        return CostFigures()


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
