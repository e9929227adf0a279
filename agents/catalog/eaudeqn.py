"""EauDeQN: Eau De Q-Network, dense-to-sparse DQN whose sparsity grows at the agent's learning pace
(Vincent et al. 2025, arXiv 2503.01437; rule and readings in docs/algorithms.md).

Layout (``agents/ensemble.py``, as i-DQN's): the K online networks of R replicas are one replica-stacked network
with R·K slots, slot ``r·K + k`` holding online network k of replica r; the shared target is a frozen network with
R slots.

Readings where the paper's abstract is silent (each labelled "reading" below and in the config help):

- pruning: unstructured magnitude pruning of weight matrices / conv kernels, layer by layer (biases are never
  pruned). Online network k is the new target pruned so that each layer keeps round(n·(1−Δ)^k) of the n weights
  the target keeps in it (the smallest-magnitude ones go): level 0 keeps the target's sparsity, level k removes a
  fraction 1−(1−Δ)^k of what is left. Density therefore falls geometrically and never reaches 0 by itself, so
  there is no final sparsity level to set.
- selection: argmin over the accumulated losses (first index on ties, so with equal losses, e.g. before learning
  starts, the network at the target's sparsity is kept); a NaN loss counts as +∞ (the reference AdaDQN code
  uses ``nanargmin``). The accumulated loss of network k is the sum of its per-update TD losses (batch means)
  since the last target update, reset to zero at each target update (AdaDQN ``update_target_params``).
- initial state: the state right after a target update from the dense initial network (target = θ_init, online
  network k = θ_init pruned to level k).
- optimizer state: every online network inherits the winner's optimizer moments (copied, then zeroed where its
  mask is zero); the step counter is shared, so Adam's bias correction stays consistent.
- masks: a pruned weight's gradient is zeroed before clipping and the optimizer step and its moments are zero,
  so Adam, RMSProp and SGD all leave it exactly at zero.
- acting and evaluation: greedy w.r.t. the online network with the smallest accumulated loss so far in the
  current period (the one that would become the target now; network 0 right after a target update). AdaDQN
  instead draws a network with probability ∝ 1/loss.
- gradient clipping (``max_grad_norm``): per online network (each is its own learner).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from agents.agent import clip_grad_norm_per_replica
from agents.config import HARD_PERIOD, HARD_PERIOD_DEFAULTS, AgentConfig, spec
from agents.ensemble import SlotEnsemble, slots
from agents.losses import td_loss
from agents.nn.networks import QNetwork
from agents.optim import FlatOptimizer
from agents.registry import register
from agents.replay import Batch
from agents.targets import TargetRule, frozen_copy

__all__ = ["LossSelectedSparseTarget", "EauDeQNConfig", "EauDeQN", "keep_counts"]


def keep_counts(alive: torch.Tensor, prune_fraction: float, levels: int) -> torch.Tensor:
    """Weights kept at each pruning level: ``[R, levels]`` from the alive counts ``[R]`` of one layer, level k
    keeping round(alive·(1−Δ)^k) (level 0 keeps every alive weight)."""
    factors = torch.tensor([(1.0 - prune_fraction) ** k for k in range(levels)], dtype=torch.float64)
    return torch.floor(alive.to(torch.float64).unsqueeze(1) * factors + 0.5).to(torch.int64)


class LossSelectedSparseTarget(TargetRule):
    """EauDeQN's target rule. Between target updates it accumulates each online network's TD loss; every
    ``period`` env steps the online network with the smallest accumulated loss becomes the target, and online
    network k is replaced by the target pruned to level k (see the module docstring for the readings).

    It owns the pruning masks (one flat mask aligned with the online optimizer's flat buffer, 1 = alive, biases
    always 1) and the accumulated losses; the initial online networks are pruned to their levels on construction.
    """

    name = "eaudeqn"
    moves = "copy"

    def __init__(self, online: QNetwork, optimizer: FlatOptimizer, num_online: int, period: int,
                 prune_fraction: float) -> None:
        if period < 1:
            raise ValueError(f"target period {period} must be >= 1")
        if num_online < 1:
            raise ValueError(f"num_online {num_online} must be >= 1")
        if not 0.0 <= prune_fraction < 1.0:
            raise ValueError(f"prune_fraction {prune_fraction} must be in [0, 1)")
        self.k = num_online
        super().__init__(online)
        self.num_replicas = online.num_replicas // num_online
        self.period, self.prune_fraction = period, prune_fraction
        ref = next(online.parameters())
        self.losses = torch.zeros(self.num_replicas, num_online, dtype=ref.dtype, device=ref.device)
        self.target_sparsity = torch.zeros(self.num_replicas, dtype=torch.float64)
        # The optimizer's flat buffer holds exactly the online parameters, in order: the masks are views of one
        # flat mask aligned with it, and pruning zeroes the matching optimizer moments.
        self.optimizer = optimizer
        self.flat_mask = torch.ones_like(optimizer.flat.data)
        names = [name for name, _ in self.online.named_parameters()]
        self.masks: list[torch.Tensor | None] = []  # views of flat_mask; None for parameters never pruned
        offset = 0
        for name, p in zip(names, optimizer.params):
            n = p.numel()
            self.masks.append(self.flat_mask[offset:offset + n].view(p.shape) if name.endswith("weight") else None)
            offset += n
        self.replace_online(torch.zeros(self.num_replicas, dtype=torch.int64, device=self.losses.device))

    def slots(self, t: torch.Tensor) -> torch.Tensor:
        """View ``[R·K, ...]`` as ``[R, K, ...]`` (:func:`agents.ensemble.slots`)."""
        return slots(t, self.k)

    def make_target(self, online: QNetwork) -> QNetwork | None:
        target = frozen_copy(online)
        for p in target.parameters():
            p.data = p.data[::self.k].clone()  # one target per replica: slot r·K (network 0) of each
        return target

    # -- cadence ------------------------------------------------------------------------------------------
    def before_step(self) -> None:
        """Zero the gradients of pruned weights (before clipping and the optimizer step)."""
        self.optimizer.flat.grad.mul_(self.flat_mask)

    def after_update(self, batch: Batch, loss: torch.Tensor) -> dict[str, torch.Tensor]:
        """Add the update's per-network TD losses ``[R, K]`` to the running sums; report the target's sparsity."""
        self.losses += loss
        return {"target_sparsity": self.target_sparsity.to(loss.dtype).to(loss.device)}

    def on_env_step(self, step: int) -> None:
        if step % self.period == 0:
            self.select()

    def best(self) -> torch.Tensor:
        """Per replica, the online network with the smallest accumulated loss ``[R]`` (NaN as +∞, first on ties)."""
        return torch.nan_to_num(self.losses, nan=float("inf")).argmin(dim=1)

    def select(self) -> None:
        """The online network with the smallest accumulated loss becomes the target; the online networks become
        pruned copies of it; the accumulated losses restart from zero."""
        winner = self.best()
        rows = torch.arange(self.num_replicas, device=winner.device)
        with torch.no_grad():
            for t, o in zip(self.target.parameters(), self.online.parameters()):
                t.copy_(self.slots(o)[rows, winner])
        self.replace_online(winner)
        self.losses.zero_()

    @torch.no_grad()
    def replace_online(self, winner: torch.Tensor) -> None:
        """Online network k of replica r ← network ``winner[r]`` pruned to level k (weights, masks and moments)."""
        rows = torch.arange(self.num_replicas, device=winner.device)
        buffers = list(self.optimizer.buffers.values())
        offset = 0
        sparsity_zeros = torch.zeros(self.num_replicas, dtype=torch.int64)
        sparsity_total = 0
        for p, mask in zip(self.optimizer.params, self.masks):
            n = p.numel()
            moments = [b[offset:offset + n].view(p.shape) for b in buffers]
            offset += n
            w = self.slots(p)[rows, winner].clone()  # [R, ...]
            saved = [self.slots(m)[rows, winner].clone() for m in moments]
            if mask is None:
                self.slots(p).copy_(w.unsqueeze(1).expand_as(self.slots(p)))
                for m, s in zip(moments, saved):
                    self.slots(m).copy_(s.unsqueeze(1).expand_as(self.slots(m)))
                continue
            alive_mask = self.slots(mask)[rows, winner].clone().flatten(1)  # [R, n]
            alive = alive_mask.sum(dim=1).to(torch.int64).cpu()
            sparsity_zeros += alive_mask.shape[1] - alive
            sparsity_total += alive_mask.shape[1]
            keep = keep_counts(alive, self.prune_fraction, self.k)  # [R, K]
            # Pruned weights sort first (score −1), then alive ones by magnitude; a stable sort per row ties by
            # position, so the order depends on the replica's own weights only.
            score = torch.where(alive_mask > 0, w.flatten(1).abs(), torch.full_like(alive_mask, -1.0))
            order = score.argsort(dim=1, stable=True)
            rank = torch.empty_like(order)
            rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
            dropped = (alive_mask.shape[1] - keep).to(rank.device)  # [R, K] weights at zero per level
            new_mask = (rank.unsqueeze(1) >= dropped.unsqueeze(2)).to(mask.dtype)  # [R, K, n]
            self.slots(mask).copy_(new_mask.view_as(self.slots(mask)))
            self.slots(p).copy_(w.unsqueeze(1) * self.slots(mask))
            for m, s in zip(moments, saved):
                self.slots(m).copy_(s.unsqueeze(1) * self.slots(mask))
        self.target_sparsity = sparsity_zeros.to(torch.float64) / max(sparsity_total, 1)

    def sparsity(self) -> torch.Tensor:
        """Per-replica sparsity of each online network ``[R, K]``: the fraction of weights at zero by mask."""
        zeros = torch.zeros(self.num_replicas, self.k, dtype=torch.float64)
        total = 0
        for mask in self.masks:
            if mask is not None:
                m = self.slots(mask).flatten(2)
                zeros += (m.shape[2] - m.sum(dim=2)).to(torch.float64).cpu()
                total += m.shape[2]
        return zeros / max(total, 1)

    # -- checkpoints ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {**super().state_dict(), "losses": self.losses.clone(), "flat_mask": self.flat_mask.clone(),
                "target_sparsity": self.target_sparsity.clone()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.losses.copy_(state["losses"])
        self.flat_mask.copy_(state["flat_mask"])  # in place: the per-parameter masks are views of it
        self.target_sparsity = state["target_sparsity"].clone()


@dataclass(frozen=True)
class EauDeQNConfig(AgentConfig):
    """Adds the number of online networks K, the pruning increment Δ and the target period C (as DQN's per
    family). Defaults and their reasons: docs/algorithms.md.
    """

    num_online: int = spec(3, "K: online networks, network k being the target pruned to level k "
                              "(reading: 0 keeps the target's sparsity)", min=1)
    prune_fraction: float = spec(0.03, "Δ: each pruning level removes this fraction of the target's remaining "
                                      "weights per layer, by magnitude (reading: level k keeps (1−Δ)^k)",
                                 min=0.0, max=1.0, max_exclusive=True)
    target_period: int = spec(HARD_PERIOD, "C: env steps between target updates (the smallest-loss online network "
                                   "becomes the target, the others its pruned copies)", min=1)

    FAMILY_DEFAULTS = HARD_PERIOD_DEFAULTS


@register("eaudeqn", update_cost=2.5, color="#e7298a", marker="p", group="target-based", reading="eaudeqn")
class EauDeQN(SlotEnsemble):
    """EauDeQN (Vincent et al., arXiv 2503.01437): dense-to-sparse DQN, the lowest-loss pruned copy becomes θ⁻.

    K online networks at increasing sparsity, all learning ℓ(r + γ(1−d) max_a' Q_θ⁻(s',a') − Q_θ_k(s,a)) from one shared target θ⁻; every C env
    steps the online network with the smallest accumulated loss becomes θ⁻ and the online networks become copies
    of it pruned by magnitude to levels 0..K−1 (``LossSelectedSparseTarget``).

    Acting and evaluation are greedy (ε-greedy for acting) w.r.t. the online network with the smallest
    accumulated loss in the current period (reading). ``update`` returns the per-replica ``target_sparsity``
    (fraction of the target's weights at zero), which the trainer logs as ``train/target_sparsity``.
    """

    Config = EauDeQNConfig
    size_field = "num_online"

    def member_stream(self, k: int) -> str:
        """Every online network of a replica starts as DQN's θ (the ``init`` stream); pruning sets them apart."""
        return "init"

    def make_target_rule(self, online: QNetwork) -> TargetRule:
        cfg = self.config
        return LossSelectedSparseTarget(online, self.optimizer, cfg.num_online, cfg.target_period, cfg.prune_fraction)

    # -- acting -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def greedy_actions(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q_θ_k(s, a) per replica, k the online network with the smallest accumulated loss."""
        q = self.member_values(torch.as_tensor(obs, device=self.device))  # [R, K, A]
        best = self.target_rule.best()
        return q[torch.arange(q.shape[0], device=q.device), best].argmax(dim=-1).cpu().numpy()

    # -- learning -----------------------------------------------------------------------------------------
    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-network TD losses ``[R, K]`` from the shared target (terms of each replica's loss, which the target
        rule accumulates), and per-replica diagnostics."""
        cfg = self.config
        with torch.no_grad():
            v_next = self.target_rule.target(batch.next_obs).max(dim=-1).values  # [R, B]
            not_done = 1.0 - batch.terminated.to(batch.reward.dtype)
            y = (batch.reward + cfg.gamma * not_done * v_next).unsqueeze(1)  # [R, 1, B]
        act = batch.action.unsqueeze(1).expand(-1, self.K, -1).unsqueeze(-1)
        q = self.q_values(self.online, batch.obs).gather(-1, act).squeeze(-1)  # [R, K, B]
        return td_loss(cfg.loss, q, y.expand_as(q)), {"q_mean": q[:, 0].detach().mean(dim=1)}

    def after_env_step(self, step: int) -> dict[str, torch.Tensor] | None:
        """The base cadence; ``target_sparsity`` is then re-read so that it includes a target update made at
        this very step (the trainer logs the target's sparsity over env steps from it)."""
        metrics = super().after_env_step(step)
        if metrics is not None:
            metrics["target_sparsity"] = self.target_rule.target_sparsity.to(metrics["loss"])
        return metrics

    def clip_gradients(self, max_norm: float) -> torch.Tensor:
        """Clip each online network's gradient on its own; returns each replica's largest norm ``[R]``."""
        norms = clip_grad_norm_per_replica(self.trainable_parameters(), max_norm)
        return slots(norms, self.K).max(dim=1).values

    # -- records ------------------------------------------------------------------------------------------
    def replica_parameter_count(self, replica: int) -> int:
        """Non-zero parameters of replica ``replica``'s K online networks (what each seed's result records)."""
        return sum(int(torch.count_nonzero(slots(p.detach(), self.K)[replica])) for p in self.online.parameters())
