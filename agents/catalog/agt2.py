"""AGT2-DQN: DQN whose target network tracks the online network by gradient (asymmetric gradient target tracking).

Our **reading** of Park, Lee, Lee 2025 (arXiv 2503.16700), as written in ``docs/algorithms.md``: the paper's body
could not be read. AGT2 is SGT2's ``mutual-tracking`` form with η = 0 and θ⁻ starting as a copy of θ
(``sgt2-dqn`` with ``form=mutual-tracking eta=0 target_init=copy`` takes the same steps).
"""
from __future__ import annotations

from dataclasses import dataclass
from agents.agent import QAgent
from agents.config import AgentConfig
from agents.gradient_targets import (GradientTrackingTarget, TargetOptimizer, beta_field, target_optimizer_field,
                                     track_field)
from agents.nn.networks import QNetwork
from agents.registry import register
from agents.target_registry import Tracking
from agents.targets import TargetRule


@dataclass(frozen=True)
class AGT2Config(AgentConfig):
    """Adds the target step size β, the target's optimizer, and which actions the tracking loss covers (every
    action at the sampled state by default, as our reading of the paper; ``pair`` is the tabular forms' other
    choice).

    Defaults: β = 0.01 with SGD on every family. The paper's values could not be read; 0.01 is ours, chosen on
    CartPole-v1 among 0.01 / 0.05 / 0.2 (6 seeds, 20k env steps: 0.2 collapsed on some seeds, 0.01 was best).
    On the 120-84 MLP at initialisation one SGD step of 0.01 closes about 4 % of the gap Q_θ − Q_θ⁻ on its
    batch: at one update every 10 env steps (CleanRL) that is near a Polyak rate of 0.005 per env step. With
    SGD the pull scales with the squared feature norm, so wide networks (Nature CNN) may need a smaller β, or
    ``target_optimizer=adam``, whose step does not depend on that scale.
    """

    beta: float = beta_field()
    target_optimizer: TargetOptimizer = target_optimizer_field()
    track: Tracking = track_field()


@register("agt2-dqn", update_cost=1.65, color="#cc78bc", marker="D", group="gradient tracking", reading="agt2")
class AGT2DQN(QAgent):
    """DQN with a gradient-tracking target (AGT2, reading of arXiv 2503.16700): max bootstrap from θ⁻, then one
    step of size β on ½ E_B Σ_a (sg Q_θ(s,a) − Q_θ⁻(s,a))² (all actions at each sampled state) after each online
    step; only θ⁻ is pulled. θ⁻ starts as a copy of θ."""

    Config = AGT2Config

    def make_target_rule(self, online: QNetwork) -> TargetRule:
        cfg = self.config
        return GradientTrackingTarget(online, cfg.beta, cfg.target_optimizer, adam_eps=cfg.optimizer_eps,
                                      track=cfg.track)

    def parameter_count(self) -> int:
        """Online plus target parameters of one replica: θ⁻ is trained (by its own optimizer), so it counts."""
        return super().parameter_count() + sum(p[0].numel() for p in self.target_rule.target.parameters())
