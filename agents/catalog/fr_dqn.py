"""FR-DQN: functional regularisation instead of a target network (Piché et al. 2021/2023, arXiv 2106.02613)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from agents.agent import QAgent
from agents.bootstrap import td_target
from agents.config import HARD_PERIOD, HARD_PERIOD_DEFAULTS, AgentConfig, spec
from agents.losses import td_loss
from agents.nn.networks import QNetwork
from agents.registry import register
from agents.replay import Batch
from agents.targets import HardUpdate, SoftUpdate, TargetRule

__all__ = ["FRConfig", "FRDQN"]


class FRHardUpdate(HardUpdate):
    """θ⁻ ← θ every C env steps, as the regulariser's anchor (named apart from DQN's bootstrap target)."""

    name = "fr-hard"


class FRSoftUpdate(SoftUpdate):
    """θ⁻ ← θ⁻ + τ(θ − θ⁻) every k env steps, as the regulariser's anchor."""

    name = "fr-soft"


@dataclass(frozen=True)
class FRConfig(AgentConfig):
    """Adds κ and the lagging copy's rule: hard every C env steps or Polyak τ every k env steps. Defaults: κ = 1
    (ours), C as DQN's target period per family, τ = 0.005 every env step (docs/algorithms.md)."""

    kappa: float = spec(1.0, "κ: weight of the regulariser κ E_B (Q_θ(s,a) − Q_θ⁻(s,a))²", min=0.0)
    fr_target: Literal["hard", "soft"] = spec("hard", "how the lagging copy θ⁻ follows θ: hard copy or Polyak")
    target_period: int = spec(HARD_PERIOD, "C: env steps between hard copies θ⁻ ← θ (fr_target=hard)", min=1)
    tau: float = spec(0.005, "Polyak rate τ (fr_target=soft)", min=0.0, max=1.0, min_exclusive=True)
    soft_every: int = spec(1, "env steps between Polyak updates (fr_target=soft)", min=1)

    FAMILY_DEFAULTS = HARD_PERIOD_DEFAULTS


@register("fr-dqn", update_cost=1.4, color="#de8f05", marker="X", group="target-based")
class FRDQN(QAgent):
    """Functional regularisation (Piché et al., arXiv 2106.02613): the TD target bootstraps from the current
    network under stop-gradient, y = r + γ(1−d) max_a' sg Q_θ(s',a'), and the loss adds κ E_B (Q_θ(s,a) −
    Q_θ⁻(s,a))² toward a lagging copy θ⁻ (hard every C env steps, or Polyak τ)."""

    Config = FRConfig
    acting = "greedy"

    def make_target_rule(self, online: QNetwork) -> TargetRule:
        cfg = self.config
        if cfg.fr_target == "soft":
            return FRSoftUpdate(online, cfg.tau, cfg.soft_every)
        return FRHardUpdate(online, cfg.target_period)

    def next_values(self, batch: Batch) -> torch.Tensor:
        """v(s') = max_a' sg Q_θ(s', a'): the bootstrap uses the up-to-date network, not θ⁻."""
        with torch.no_grad():
            return self.online(batch.next_obs).max(dim=-1).values

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        y = td_target(batch.reward, batch.terminated, self.next_values(batch), cfg.gamma)
        act = batch.action.unsqueeze(-1)
        q = self.online(batch.obs).gather(-1, act).squeeze(-1)
        with torch.no_grad():
            q_prior = self.target_rule.target(batch.obs).gather(-1, act).squeeze(-1)
        reg = (q - q_prior).square().mean(dim=-1)
        loss = td_loss(cfg.loss, q, y) + cfg.kappa * reg
        return loss, {"q_mean": q.detach().mean(dim=1), "fr_reg": reg.detach()}
