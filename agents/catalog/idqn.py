"""i-DQN: iterated DQN, K online networks each learning one Bellman iteration of the one before
(Vincent et al. 2024, TMLR 2025, arXiv 2403.02107; public code theovincent/i-DQN ``slimdqn/networks/idqn.py``).

Layout: the K online networks of R replicas are one replica-stacked network with R·K slots, slot ``r·K + i``
holding θ_{i+1} of replica r; the K targets θ̄_0..θ̄_{K−1} are a frozen network with the same layout, slot
``r·K + j`` holding θ̄_j. Online slot i bootstraps from target slot i, so one batched forward computes all K
losses, and every slot is a batched-product slice (bitwise the same alone or among others).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from agents.config import AgentConfig, spec
from agents.ensemble import SampledActing, SlotEnsemble, slots
from agents.losses import td_loss
from agents.nn.networks import QNetwork
from agents.registry import register
from agents.replay import Batch
from agents.targets import GradientStepCadence, TargetRule, frozen_copy

__all__ = ["IteratedTargets", "IDQNConfig", "IDQN"]


class IteratedTargets(GradientStepCadence):
    """The K target networks of i-DQN and their two cadences, both counted in **gradient steps** (the rule's own
    count, advanced in ``after_update``, so nothing moves before learning starts):

    - every ``sync_period`` D: θ̄_k ← θ_k for k = 1..K−1 (θ̄_0 stays);
    - every ``shift_period`` T (instead of the sync when both fall on a step): roll the window forward,
      θ̄_j ← θ_{j+1} for j = 0..K−1, then θ_k ← θ_{k+1} for k = 1..K−1 (θ_K kept, so θ_{K−1} = θ_K afterwards).
      This is ``update_target_params`` of the reference code (target copy, then ``shift_params``).

    Initially θ̄_0 = θ_1 and θ̄_k = θ_k (k ≥ 1), the state right after a roll; the reference code starts from
    θ̄_j = θ_{j+1} (a labelled deviation, docs/algorithms.md; the two agree from the first sync on). Optimizer
    state is left positional on a roll, as in the reference code (the optax state is not shifted).

    Phase: the first sync follows the D-th gradient step and the first roll the T-th, each right after that
    step's update. The authors' loop (``experiments/base/dqn.py``) calls the cadence only once
    ``step > n_initial_samples`` and tests ``step % T_env`` / ``step % D_env`` on the absolute env-step counter
    at one update per env step: the same spacing, and the same phase when the initial samples are a multiple of
    the periods (LunarLander: 1000 initial samples, D = 10, T = 200).
    """

    name = "iterated"

    def __init__(self, online: QNetwork, num_networks: int, sync_period: int, shift_period: int) -> None:
        if sync_period < 1 or shift_period < 1:
            raise ValueError(f"sync period {sync_period} and shift period {shift_period} must be >= 1")
        self.k = num_networks
        super().__init__(online)
        self.sync_period, self.shift_period = sync_period, shift_period

    def make_target(self, online: QNetwork) -> QNetwork | None:
        target = frozen_copy(online)  # θ̄_j = θ_{j+1}, as the reference starts ...
        with torch.no_grad():
            for t, o in zip(target.parameters(), online.parameters()):
                slots(t, self.k)[:, 1:] = slots(o, self.k)[:, :-1]  # ... then θ̄_j = θ_j for j ≥ 1
        return target

    def on_gradient_step(self, step: int) -> None:
        """Roll on every T-th gradient step, else sync on every D-th."""
        if step % self.shift_period == 0:
            self.roll()
        elif step % self.sync_period == 0:
            self.sync()

    def sync(self) -> None:
        """θ̄_k ← θ_k for k = 1..K−1."""
        with torch.no_grad():
            for t, o in zip(self.target.parameters(), self.online.parameters()):
                slots(t, self.k)[:, 1:] = slots(o, self.k)[:, :-1]

    def roll(self) -> None:
        """θ̄_j ← θ_{j+1} (j = 0..K−1), then θ_k ← θ_{k+1} (k = 1..K−1)."""
        with torch.no_grad():
            for t, o in zip(self.target.parameters(), self.online.parameters()):
                t.copy_(o)
                window = slots(o, self.k)
                window[:, :-1] = window[:, 1:].clone()



@dataclass(frozen=True)
class IDQNConfig(AgentConfig):
    """Adds K, the sync period D and the window-shift period T (both **gradient steps**), and the acting rule.
    The squared loss and Adam on every family, as the authors; defaults and their sources: docs/algorithms.md.
    ``layer_norm`` stays off: the i-DQN authors' ``DQNNet`` has no LayerNorm.
    """

    bellman_iterations: int = spec(3, "K: online networks θ_1..θ_K, each learning one Bellman iteration", min=1)
    sync_period: int = spec(10, "D: GRADIENT steps (not env steps) between θ̄_k ← θ_k (k ≥ 1)", min=1)
    shift_period: int = spec(200, "T: GRADIENT steps (not env steps) between window rolls "
                                  "(θ̄_0 ← θ_1, θ_k ← θ_{k+1}); a roll replaces a sync", min=1)
    act_network: Literal["uniform", "mean"] = spec(
        "uniform", "act greedily w.r.t. an online network drawn uniformly each step, or w.r.t. their mean")

    FAMILY_DEFAULTS = {
        # authors' LunarLander launch (README: K = 3, T = 200, D = 10 at one update per env step); the family's
        # Adam and squared loss are already the authors'
        "classic": {"sync_period": 10, "shift_period": 200},
        # D: LunarLander's; T: MinAtar DQN's target period (1000 updates); Adam with the authors' image-setting
        # epsilon and the squared loss, in place of the family's centred RMSProp and Huber
        "minatar": {"sync_period": 10, "shift_period": 1000, "optimizer": "adam", "optimizer_eps": 1.5e-4,
                    "loss": "mse"},
        # T: 8000 env steps / 4 (iS-DQN Atari launch, Dopamine); D: ours (32 env steps / 4); the authors' Atari
        # Adam (6.25e-5, epsilon 1.5e-4) and squared loss
        "atari": {"sync_period": 8, "shift_period": 2000, "optimizer": "adam", "learning_rate": 6.25e-5,
                  "optimizer_eps": 1.5e-4, "loss": "mse"},
        # one update per env step in this family; the family's Adam and squared loss are the authors'
        "tabular": {"sync_period": 1, "shift_period": 200},
    }


@register("idqn", update_cost=2.5, color="#1b7837", marker="h", group="iterated")
class IDQN(SampledActing, SlotEnsemble):
    """i-DQN (Vincent et al., arXiv 2403.02107): K online networks, θ_k learning
    ℓ(r + γ(1−d) max_a' Q_θ̄_{k−1}(s',a') − Q_θ_k(s,a)) from target θ̄_{k−1}; one step on the sum over k.
    θ̄_k ← θ_k every D gradient steps (k ≥ 1); every T gradient steps the window rolls forward (see
    ``IteratedTargets``).

    Acting draws one online network uniformly per replica per env step from the replica's ``act-network`` stream
    (or averages them); ``greedy_actions`` (evaluation) draws from a separate ``eval-network`` stream. Gradient
    clipping (``max_grad_norm``) is per replica over its K networks together.
    """

    Config = IDQNConfig
    member = "network"
    target_slots = True

    def make_target_rule(self, online: QNetwork) -> TargetRule:
        cfg = self.config
        return IteratedTargets(online, cfg.bellman_iterations, cfg.sync_period, cfg.shift_period)

    # -- learning -----------------------------------------------------------------------------------------
    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg, k = self.config, self.K
        with torch.no_grad():
            v_next = self.q_values(self.target_rule.target, batch.next_obs).max(dim=-1).values  # [R, K, B]
            not_done = 1.0 - batch.terminated.to(batch.reward.dtype)
            y = batch.reward.unsqueeze(1) + cfg.gamma * not_done.unsqueeze(1) * v_next
        act = batch.action.unsqueeze(1).expand(-1, k, -1).unsqueeze(-1)
        q = self.q_values(self.online, batch.obs).gather(-1, act).squeeze(-1)  # [R, K, B]
        per_network = td_loss(cfg.loss, q, y)  # [R, K]
        return per_network.sum(dim=1), {"q_mean": q[:, -1].detach().mean(dim=1)}
