"""Target rules: how the bootstrap network θ⁻ follows the online network θ.

Each rule is a small object with one job (after TorchRL's ``HardUpdate`` / ``SoftUpdate``): it owns θ⁻, says
which network the TD target bootstraps from, and moves θ⁻ on its cadence (counted in env steps) or after each
gradient update. Rules that train θ⁻ by gradient (AGT2, SGT2) hook in through ``after_update`` or
``trainable_parameters`` without touching the agent loop.

The rules' public names, knobs and tabular forms (``targetbench convergence``) are listed once in
:mod:`agents.target_registry`.
"""
from __future__ import annotations

import copy
from typing import ClassVar

import torch

from agents.nn.networks import QNetwork
from agents.replay import Batch

__all__ = ["TargetRule", "GradientStepCadence", "HardUpdate", "SoftUpdate", "NoTarget", "frozen_copy"]


def frozen_copy(network: QNetwork) -> QNetwork:
    """A deep copy of ``network`` that receives no gradient."""
    target = copy.deepcopy(network)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


class TargetRule:
    """Base target rule: holds a frozen copy θ⁻ of the online network and never moves it."""

    name = "base"
    #: How θ⁻ moves, as learner backends read it (agents/learners.py): ``"copy"`` — only by copies or averages of
    #: θ (``sync``, Polyak) on the env-step cadence; ``"trained"`` — by gradient steps. A subclass that redefines
    #: one of ``MOVE_METHODS`` without declaring ``moves`` again declares nothing (``learners.declared``).
    moves: ClassVar[str] = "copy"
    MOVE_METHODS: ClassVar[tuple[str, ...]] = ("after_update", "trainable_parameters")

    def __init__(self, online: QNetwork) -> None:
        self.online = online
        self.target: QNetwork | None = self.make_target(online)

    def make_target(self, online: QNetwork) -> QNetwork | None:
        """Create θ⁻ (a frozen copy by default); ``None`` for rules that bootstrap from θ itself."""
        return frozen_copy(online)

    @property
    def network(self) -> QNetwork:
        """The network the TD target is computed with (always under no-grad for the max/double bootstrap)."""
        return self.target if self.target is not None else self.online

    def on_env_step(self, step: int) -> None:
        """Called after every env step ``step`` (1-based), whether or not an update happened at it."""

    def after_update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Called after each online gradient step with the minibatch it used; returns per-replica metrics."""
        return {}

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """Target parameters the agent's optimizer trains jointly with θ (none for copy-based rules)."""
        return []

    def target_bytes(self) -> int:
        """Bytes held for target parameters beyond the online network (all replicas)."""
        if self.target is None:
            return 0
        return sum(p.numel() * p.element_size() for p in self.target.parameters())

    def sync(self) -> None:
        """θ⁻ ← θ."""
        if self.target is None:
            return
        with torch.no_grad():
            torch._foreach_copy_(list(self.target.parameters()), list(self.online.parameters()))

    def state_dict(self) -> dict:
        return {"target": self.target.state_dict() if self.target is not None else None}

    def load_state_dict(self, state: dict) -> None:
        if self.target is not None:
            self.target.load_state_dict(state["target"])


class GradientStepCadence(TargetRule):
    """A rule whose cadence counts its own **gradient steps** (``after_update``), not env steps, so nothing moves
    before learning starts and the n-th move follows the n·T-th gradient step, right after that step's update
    (iS-QL's head shift, i-DQN's sync and roll). Subclasses say what happens at step n in
    :meth:`on_gradient_step`; the count is saved with the rule, so a resumed run keeps its phase."""

    def __init__(self, online: QNetwork) -> None:
        self.gradient_steps = 0
        super().__init__(online)

    def after_update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Count the gradient step just taken, then act on it."""
        self.gradient_steps += 1
        self.on_gradient_step(self.gradient_steps)
        return {}

    def on_gradient_step(self, step: int) -> None:
        """Move the target after gradient step ``step`` (1-based) if the cadence says so."""

    def state_dict(self) -> dict:
        return {**super().state_dict(), "gradient_steps": self.gradient_steps}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.gradient_steps = int(state.get("gradient_steps", 0))


class HardUpdate(TargetRule):
    """θ⁻ ← θ every ``period`` env steps C (Mnih et al. 2015). Independent of the train frequency: the copy
    happens at every multiple of C even when no gradient step falls on that env step.

    Tabular form: ``hard`` (:class:`agents.tabular.TabularHardUpdate`).
    """

    name = "hard"

    def __init__(self, online: QNetwork, period: int) -> None:
        if period < 1:
            raise ValueError(f"target period {period} must be >= 1")
        super().__init__(online)
        self.period = period

    def on_env_step(self, step: int) -> None:
        if step % self.period == 0:
            self.sync()


class SoftUpdate(TargetRule):
    """Polyak averaging θ⁻ ← θ⁻ + τ(θ − θ⁻) every ``every`` env steps (Lillicrap et al. 2016).

    Tabular form: ``soft`` (:class:`agents.tabular.TabularSoftUpdate`, every step).
    """

    name = "soft"

    def __init__(self, online: QNetwork, tau: float, every: int = 1) -> None:
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"tau {tau} must be in (0, 1]")
        super().__init__(online)
        self.tau, self.every = tau, every

    def on_env_step(self, step: int) -> None:
        if step % self.every == 0:
            with torch.no_grad():
                torch._foreach_lerp_(list(self.target.parameters()), list(self.online.parameters()), self.tau)


class NoTarget(TargetRule):
    """Target-free: bootstrap from sg(θ), the online network under stop-gradient. Holds no extra parameters.

    Tabular form: ``target-free`` (:class:`agents.tabular.TabularNoTarget`); the run tag stays ``none``.
    """

    name = "none"

    def make_target(self, online: QNetwork) -> QNetwork | None:
        return None
