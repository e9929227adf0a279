"""A rough cost model for ``--dry-run``: seconds per group from env steps, batch width and update cadence.

Per loop iteration (every replica steps once) a group of R seeds costs about
``env_a + env_b*R + (upd_a + upd_b*R) * m / train_frequency`` seconds after ``learning_starts``, where ``m``
is the agent's update-cost multiplier, plus evaluation episodes and a process start. The constants were
measured with this code on one core of a 2-core cloud VM (classic control, MinAtar; torch 2.13 CPU, one
thread); the Atari ones are for one GPU and are guesses until measured. Treat the numbers as +-50 %.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from agents import get_agent
from suite.envs import CostFigures, get_family

__all__ = ["GroupCost", "estimate_group", "estimate", "NodeType", "NODE_TYPES", "gpu_packing", "node_estimates"]

# The per-family figures (seconds per loop iteration: env_a, env_b per replica, update_a, update_b per replica;
# typical evaluation episode length) are in each family's record: ``EnvFamily.costs``.
# The cost of one update relative to DQN's is declared with each agent (``@register(..., update_cost=)``).
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
    factor = get_agent(spec.agent).update_cost
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


@dataclass(frozen=True)
class NodeType:
    """A kind of machine a sweep may run on: what bounds how many groups it runs at once."""

    name: str
    cores: int
    ram_gib: float
    gpus: int = 0
    gpu_gib: float = 0.0


#: typical cloud node shapes (cores, RAM, GPUs and their memory); prices vary by provider and are left out: the
#: estimate is in node-hours, to multiply by a node's hourly price
NODE_TYPES = (
    NodeType("cpu-2", 2, 8),
    NodeType("cpu-16", 16, 64),
    NodeType("gpu-1x24GB", 8, 32, 1, 24),
    NodeType("gpu-1x80GB", 16, 128, 1, 80),
    NodeType("gpu-8x80GB", 96, 1024, 8, 80),
)


def gpu_packing(groups: Sequence[Any], num_gpus: float) -> list[dict[str, Any]]:
    """Per config: seeds per group, the GPU share each group asks for, how many groups share one GPU, and the
    memory one group needs (host RAM; GPU memory, CUDA context included, when it asks for a GPU), by
    :mod:`suite.memory`'s estimate."""
    from suite.memory import CUDA_CONTEXT_BYTES, estimate_memory

    rows: dict[tuple, dict[str, Any]] = {}
    for g in groups:
        key = (g.config.variant, g.config.agent, g.config.env, len(g.seeds))
        if key in rows:
            rows[key]["groups"] += 1
            continue
        est = estimate_memory(g.spec)
        gpu = est.model + est.activations + CUDA_CONTEXT_BYTES if num_gpus > 0 else 0
        rows[key] = {"variant": key[0], "agent": key[1], "env": key[2], "seeds_per_group": key[3], "groups": 1,
                     "num_gpus": num_gpus, "groups_per_gpu": math.floor(1 / num_gpus + 1e-9) if num_gpus > 0 else 0,
                     "host_gib": round((est.host - (est.model + est.activations if num_gpus > 0 else 0)) / 2**30, 3),
                     "gpu_gib": round(gpu / 2**30, 3)}
    return list(rows.values())


def node_estimates(groups: Sequence[Any], num_cpus: float, num_gpus: float,
                   nodes: Sequence[NodeType] = NODE_TYPES) -> list[dict[str, Any]]:
    """For each node type: groups one node runs at once (bounded by its cores / ``num_cpus``, its RAM by the
    memory estimate, and with ``num_gpus`` > 0 its GPUs / ``num_gpus`` and their memory), and the wall time
    and node-hours of the sweep on one such node (longest-first packing of :func:`estimate_group`'s seconds,
    which assume one core or one GPU share per group: +-50 %). A node where a group does not fit says so."""
    if not groups:
        return []
    packing = gpu_packing(groups, num_gpus)
    host = max(r["host_gib"] for r in packing)
    gpu = max(r["gpu_gib"] for r in packing)
    out = []
    for node in nodes:
        slots = [int(node.cores // max(num_cpus, 1e-9)), int(node.ram_gib // max(host, 1e-9))]
        if num_gpus > 0:
            per_gpu = math.floor(1 / num_gpus + 1e-9) if num_gpus < 1 else 1
            gpus_each = max(1, math.ceil(num_gpus))
            slots.append(0 if gpu > node.gpu_gib * min(1.0, num_gpus) else node.gpus // gpus_each * per_gpu)
        lanes = max(0, min(slots))
        row: dict[str, Any] = {"node": node.name, "cores": node.cores, "ram_gib": node.ram_gib, "gpus": node.gpus,
                               "gpu_gib": node.gpu_gib, "groups_at_once": lanes}
        if lanes:
            est = estimate(groups, lanes)
            row.update(wall_h=round(est["wall_s"] / 3600, 3), node_hours=round(est["wall_s"] / 3600, 3))
        else:
            row.update(wall_h=None, node_hours=None,
                       why="no GPU" if num_gpus > 0 and not node.gpus else "a group does not fit")
        out.append(row)
    return out
