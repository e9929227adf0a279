"""DQN and its classic target variants: hard copies, Polyak averaging, double Q-learning, no target.

These keep QAgent's TD update and its greedy acting, and say so (``update_math``, ``acting``): the numpy kernels of
``agents/learners.py`` may then compute them on the CPU.
"""
from __future__ import annotations

from dataclasses import dataclass

from agents.agent import QAgent
from agents.config import HARD_PERIOD, HARD_PERIOD_DEFAULTS, AgentConfig, spec
from agents.nn.networks import QNetwork
from agents.registry import register
from agents.targets import HardUpdate, NoTarget, SoftUpdate, TargetRule


@dataclass(frozen=True)
class HardTargetConfig(AgentConfig):
    """Adds the hard-copy period C."""

    target_period: int = spec(HARD_PERIOD, "env steps between hard copies θ⁻ ← θ (C)", min=1)

    FAMILY_DEFAULTS = HARD_PERIOD_DEFAULTS


@dataclass(frozen=True)
class SoftTargetConfig(AgentConfig):
    """Adds the Polyak rate τ and its cadence."""

    tau: float = spec(0.005, "Polyak rate τ of θ⁻ ← θ⁻ + τ(θ − θ⁻)", min=0.0, max=1.0, min_exclusive=True)
    soft_every: int = spec(1, "env steps between Polyak updates", min=1)


@register("dqn", update_cost=1.0, color="#0173b2", marker="o", group="target-based")
class DQN(QAgent):
    """DQN with a hard target copy every C env steps (Mnih et al. 2015)."""

    Config = HardTargetConfig
    update_math, acting = "td", "greedy"

    def make_target_rule(self, online: QNetwork) -> TargetRule:
        return HardUpdate(online, self.config.target_period)


@register("dqn-soft", update_cost=1.0, color="#029e73", marker="^", group="target-based")
class SoftDQN(QAgent):
    """DQN with a Polyak-averaged target, θ⁻ ← θ⁻ + τ(θ − θ⁻) every k env steps (Lillicrap et al. 2016)."""

    Config = SoftTargetConfig
    update_math, acting = "td", "greedy"

    def make_target_rule(self, online: QNetwork) -> TargetRule:
        return SoftUpdate(online, self.config.tau, self.config.soft_every)


@register("double-dqn", update_cost=1.1, color="#56b4e9", marker="s", group="target-based")
class DoubleDQN(DQN):
    """Double DQN: online argmax, target evaluation, hard target (van Hasselt et al. 2016)."""

    bootstrap_rule = "double"


@register("dqn-no-target", update_cost=0.9, color="#d55e00", marker="v", group="target-free")
class TargetFreeDQN(QAgent):
    """Target-free DQN: bootstrap from the online network under stop-gradient (MinAtar ablation)."""

    Config = AgentConfig
    update_math, acting = "td", "greedy"

    def make_target_rule(self, online: QNetwork) -> TargetRule:
        return NoTarget(online)
