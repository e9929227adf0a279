"""Target rules: how the bootstrap network θ⁻ follows the online network θ.

Each rule is a small object with one job (after TorchRL's ``HardUpdate`` / ``SoftUpdate``): it owns θ⁻, says
which network the TD target bootstraps from, and moves θ⁻ on its cadence (counted in env steps) or after each
gradient update (``after_update``). A rule whose θ⁻ is trained by gradient derives from :class:`TrainedTarget`,
which owns θ⁻'s optimizer (built by the same factory as the online one), saves it, and says how the agent's
gradient clipping applies to θ⁻; AGT2 and SGT2 (:mod:`agents.gradient_targets`) are its two forms.

The rules' public names, knobs and tabular forms (``targetbench convergence``) are listed once in
:mod:`agents.target_registry`.
"""
from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch

from agents.nn.networks import QNetwork
from agents.optim import FlatOptimizer, OptimizerSettings
from agents.replay import Batch

__all__ = ["TargetRule", "GradientStepCadence", "HardUpdate", "SoftUpdate", "NoTarget", "TrainedTarget",
           "frozen_copy", "trainable_copy"]


def frozen_copy(network: QNetwork) -> QNetwork:
    """A deep copy of ``network`` that receives no gradient."""
    target = copy.deepcopy(network)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


def trainable_copy(network: QNetwork) -> QNetwork:
    """A deep copy of ``network`` whose parameters require gradients (a target trained by gradient)."""
    target = copy.deepcopy(network)
    for p in target.parameters():
        p.requires_grad_(True)
    return target


class TargetRule:
    """Base target rule: holds θ⁻ (a frozen copy of the online network unless given) and never moves it.

    Args:
        online: the online network θ.
        target: θ⁻ as the agent built it; ``None`` makes it with :meth:`make_target`.
    """

    name = "base"
    #: How θ⁻ moves: ``"copy"`` — only by copies or averages of θ (``sync``, Polyak) on the env-step cadence;
    #: ``"trained"`` — by gradient steps (:class:`TrainedTarget`; the agent's ``parameter_count`` counts θ⁻ then);
    #: ``None`` — not declared. The numpy kernels (agents/learners.py) serve ``"copy"`` rules only, so this is an
    #: opt-in: a new rule runs on torch until it declares ``"copy"``. A subclass that redefines one of
    #: ``MOVE_METHODS`` without declaring ``moves`` again declares nothing (``learners.declared``).
    moves: ClassVar[str | None] = None
    MOVE_METHODS: ClassVar[tuple[str, ...]] = ("after_update", "trainable_parameters")
    #: θ⁻ is part of the online network itself (iS-QL's head 0): those parameters are in the online optimizer but
    #: never trained, so ``parameter_count`` leaves them out.
    inside_online: ClassVar[bool] = False

    def __init__(self, online: QNetwork, target: QNetwork | None = None) -> None:
        self.online = online
        self.target: QNetwork | None = target if target is not None else self.make_target(online)

    def make_target(self, online: QNetwork) -> QNetwork | None:
        """Create θ⁻ (a frozen copy by default); ``None`` for rules that bootstrap from θ itself."""
        return frozen_copy(online)

    @property
    def network(self) -> QNetwork:
        """The network the TD target is computed with (always under no-grad for the max/double bootstrap)."""
        return self.target if self.target is not None else self.online

    def on_env_step(self, step: int) -> None:
        """Called after every env step ``step`` (1-based), whether or not an update happened at it."""

    def before_step(self) -> None:
        """Called after the agent's loss wrote its gradient, before clipping and the optimizer step."""

    def after_update(self, batch: Batch, loss: torch.Tensor) -> dict[str, torch.Tensor]:
        """Called after each online gradient step with the minibatch and the (detached) loss it used: per-replica
        ``[R]``, or ``[R, K]`` for an agent whose loss has K terms; returns per-replica metrics."""
        return {}

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """θ⁻ parameters the agent's loss gives a gradient to (a joint objective): the agent zeroes and clips their
        gradient together with θ's. None for every rule but a joint one."""
        return []

    def zero_grad(self) -> None:
        """Zero the gradient of parameters this rule trains (called with the online ``zero_grad``)."""

    def target_numel(self) -> int:
        """Elements held for θ⁻ (all replicas)."""
        return 0 if self.target is None else sum(p.numel() for p in self.target.parameters())

    def target_bytes(self) -> int:
        """Bytes held for target parameters (all replicas)."""
        return self.target_numel() * next(self.online.parameters()).element_size()

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
    :meth:`on_gradient_step`; the count is saved with the rule, so a resumed run keeps its phase. Moves are
    copies, never gradient steps."""

    moves = "copy"

    def __init__(self, online: QNetwork) -> None:
        self.gradient_steps = 0
        super().__init__(online)

    def after_update(self, batch: Batch, loss: torch.Tensor) -> dict[str, torch.Tensor]:
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

    Tabular form: ``hard`` (:class:`agents.tabular_rules.TabularHardUpdate`).
    """

    name = "hard"
    moves = "copy"

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

    Tabular form: ``soft`` (:class:`agents.tabular_rules.TabularSoftUpdate`, every step).
    """

    name = "soft"
    moves = "copy"

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

    Tabular form: ``target-free`` (:class:`agents.tabular_rules.TabularNoTarget`); the run tag stays ``none``.
    """

    name = "none"
    moves = "copy"

    def make_target(self, online: QNetwork) -> QNetwork | None:
        return None


class TrainedTarget(TargetRule):
    """Base of the rules whose θ⁻ is trained by gradient: θ⁻ is a network of its own (built by the agent, made
    trainable here) with an optimizer of its own, built by the same factory as the online network's
    (:class:`~agents.optim.OptimizerSettings`), and saved and restored with the rule.

    Where θ⁻'s gradient comes from decides how the agent's gradient clipping (``max_grad_value``,
    ``max_grad_norm``) applies to it:

    - ``joint = True`` (SGT2 joint-td): θ⁻ is trained by the agent's own loss. Its parameters are returned by
      ``trainable_parameters``, so the agent zeroes their gradient before the backward pass and clips it together
      with θ's, one norm per replica over both networks (one objective, one clip); the rule applies the step in
      ``after_update``, after the online step.
    - ``joint = False`` (AGT2, SGT2 mutual-tracking): θ⁻ takes a step on a loss of its own in ``after_update``
      (:meth:`target_loss`). That gradient is never clipped: the clip settings bound the TD gradient, and the
      tracking step is what its optimizer and β make it (in parameter space, SGD on it is exactly Polyak
      averaging, which a clip would break).

    Args:
        online: the online network θ.
        target: θ⁻'s initial network, built by the agent (its own draw or a copy of θ).
        optimizer: how to build θ⁻'s optimizer.
    """

    moves = "trained"
    joint: ClassVar[bool] = False

    def __init__(self, online: QNetwork, target: QNetwork, optimizer: OptimizerSettings) -> None:
        for p in target.parameters():
            p.requires_grad_(True)
        super().__init__(online, target)
        self.optimizer: FlatOptimizer = optimizer.build(list(target.parameters()))

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.target.parameters()) if self.joint else []

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def target_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """θ⁻'s own per-replica loss ``[R]`` and metrics (rules with ``joint = False``)."""
        raise NotImplementedError

    def after_update(self, batch: Batch, loss: torch.Tensor) -> dict[str, torch.Tensor]:
        """Joint: apply the step the agent's (clipped) gradient asks for. Otherwise one step of θ⁻'s optimizer
        on :meth:`target_loss`, with the just-updated θ."""
        if self.joint:
            self.optimizer.step()
            return {}
        self.optimizer.zero_grad()
        own, metrics = self.target_loss(batch)
        if own.requires_grad:
            own.sum().backward()  # sum of per-replica losses: replica r's θ⁻ gets its own gradient only
        self.optimizer.step()
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])
