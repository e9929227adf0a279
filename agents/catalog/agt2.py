"""AGT2-DQN: DQN whose target network tracks the online network by gradient (asymmetric gradient target tracking).

Our **reading** of Park, Lee, Lee 2025 (arXiv 2503.16700), written in docs/algorithms.md (#reading-agt2). AGT2 is
SGT2's ``mutual-tracking`` form with η = 0 and θ⁻ starting as a copy of θ (``sgt2-dqn`` with
``form=mutual-tracking eta=0 target_init=copy`` takes the same steps).
"""
from __future__ import annotations

from dataclasses import dataclass

from agents.agent import QAgent
from agents.config import AgentConfig, OptimizerKind
from agents.gradient_targets import (GradientTrackingTarget, Space, beta_field, check_track_in_space, space_field,
                                     target_optimizer_eps_field, target_optimizer_field, track_field,
                                     tracking_optimizer)
from agents.nn.networks import QNetwork
from agents.registry import register
from agents.target_registry import Tracking
from agents.targets import TargetRule, trainable_copy


@dataclass(frozen=True)
class AGT2Config(AgentConfig):
    """Adds the target step size β, the target's optimizer, which actions the tracking loss covers (every
    action at the sampled state by default; ``pair`` is the tabular forms' other choice) and the space it tracks
    in. Defaults and their reasons: docs/algorithms.md."""

    beta: float = beta_field()
    target_optimizer: OptimizerKind = target_optimizer_field()
    target_optimizer_eps: float | None = target_optimizer_eps_field()
    track: Tracking = track_field()
    space: Space = space_field()

    def validate(self) -> None:
        """The base checks, then: ``track`` chooses actions, so it has a choice in function space only."""
        super().validate()
        check_track_in_space(self.track, self.space)


@register("agt2-dqn", update_cost=1.65, color="#cc78bc", marker="D", group="gradient tracking", reading="agt2")
class AGT2DQN(QAgent):
    """DQN with a gradient-tracking target (AGT2, reading of arXiv 2503.16700): max bootstrap from θ⁻, then one
    step of size β on ½ E_B Σ_a (sg Q_θ(s,a) − Q_θ⁻(s,a))² (all actions at each sampled state; ``space=parameters``:
    on ½‖θ⁻ − sg θ‖²) after each online step; only θ⁻ is pulled. θ⁻ starts as a copy of θ."""

    Config = AGT2Config
    acting = "greedy"

    def make_target_rule(self, online: QNetwork) -> TargetRule:
        cfg = self.config
        return GradientTrackingTarget(online, trainable_copy(online), tracking_optimizer(cfg), track=cfg.track,
                                      space=cfg.space)
