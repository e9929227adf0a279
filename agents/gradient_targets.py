"""Target rules whose θ⁻ is trained by gradient instead of copied: AGT2 and SGT2.

Both are **readings** of Park, Lee, Lee 2025, "gradient target tracking" (arXiv 2503.16700): the paper's body
could not be read, so the update rules are the ones written in ``docs/algorithms.md``. Coefficients stay
configurable so a reader of the paper can check and change them in one place.

- :class:`GradientTrackingTarget` (AGT2, and SGT2's ``mutual-tracking`` form): after every online step, θ⁻
  takes one step of its own optimizer (SGD of size β by default) on
  ``L_track(θ⁻) = ½ E_B Σ_a (sg Q_θ(s,a) − Q_θ⁻(s,a))²`` (all actions at each sampled state; ``track="pair"``
  keeps only the taken action, the tabular forms' other choice). θ never sees a gradient from this loss.
- :class:`JointTarget` (SGT2's ``joint-td`` form): θ⁻ is an ordinary trainable network handed to the agent's
  optimizer through ``trainable_parameters``; the agent's ``loss`` supplies both networks' objectives.

The config fields of the tracking step (β, the target's optimizer, which actions it tracks) are declared once
here (:func:`beta_field`, :func:`target_optimizer_field`, :func:`track_field`) and used by both agents' configs.

All losses are per-replica means summed over replicas, so each replica's θ⁻ gets exactly the gradient it would
get alone.
"""
from __future__ import annotations

import copy
from typing import Any, Literal

import torch

from agents.config import spec
from agents.nn.networks import QNetwork
from agents.replay import Batch
from agents.target_registry import TRACKING, Tracking
from agents.targets import TargetRule

__all__ = ["GradientTrackingTarget", "JointTarget", "trainable_copy", "tracking_loss", "beta_field",
           "target_optimizer_field", "track_field", "TargetOptimizer"]

TargetOptimizer = Literal["sgd", "adam"]

#: β's default on every family (ours; the paper's value could not be read), see ``AGT2Config``
DEFAULT_BETA = 0.01


def beta_field(used_by: str = "") -> Any:
    """The config field β: step size of θ⁻'s tracking step (``used_by`` is appended to its help text)."""
    return spec(DEFAULT_BETA, f"step size β of the target's gradient step on ½ E_B Σ_a (sg Q_θ − Q_θ⁻)²{used_by}",
                min=0.0, min_exclusive=True)


def target_optimizer_field(used_by: str = "") -> Any:
    """The config field naming the optimizer of θ⁻'s tracking step (``used_by`` is appended to its help text)."""
    return spec("sgd", f"optimizer of the target's tracking step (lr = β){used_by}")


def track_field(used_by: str = "") -> Any:
    """The config field choosing the actions θ⁻'s tracking loss covers (``used_by`` is appended to its help)."""
    return spec("state", "actions the tracking loss covers: state = every action at each sampled state (Σ_a), "
                f"pair = the taken action only{used_by}")


def trainable_copy(network: QNetwork) -> QNetwork:
    """A deep copy of ``network`` whose parameters require gradients (a target trained by gradient)."""
    target = copy.deepcopy(network)
    for p in target.parameters():
        p.requires_grad_(True)
    return target


def tracking_loss(q_online: torch.Tensor, q_target: torch.Tensor, action: torch.Tensor | None = None) -> torch.Tensor:
    """``½ E_B Σ_a (sg Q_θ − Q_θ⁻)²`` per replica ``[R]`` from Q-values ``[R, B, A]`` (``q_online`` is detached);
    with ``action`` ``[R, B]`` only the taken actions: ``½ E_B (sg Q_θ(s,a) − Q_θ⁻(s,a))²``."""
    gap = (q_online.detach() - q_target).square()
    if action is not None:
        gap = gap.gather(-1, action.unsqueeze(-1))
    return 0.5 * gap.sum(dim=-1).mean(dim=-1)


class GradientTrackingTarget(TargetRule):
    """AGT2 target (**reading** of arXiv 2503.16700): θ⁻ starts as a copy of θ (or as the network given) and,
    after each online gradient step, takes one step of size β on the tracking loss
    ``½ E_B Σ_a (sg Q_θ(s,a) − Q_θ⁻(s,a))²`` over the same minibatch, with the just-updated θ. The loss sums
    over **all** actions at each sampled state, not only the taken one. This rule only moves θ⁻; SGT2's
    ``mutual-tracking`` form uses it too and pulls θ toward θ⁻ in its own loss.

    Args:
        online: the online network θ.
        beta: step size β of the target's optimizer.
        optimizer: ``"sgd"`` (plain gradient step, the paper's reading) or ``"adam"`` (step size β).
        adam_eps: Adam's epsilon when ``optimizer="adam"``.
        target: θ⁻'s initial network (made trainable); ``None`` (AGT2) starts θ⁻ as a copy of θ.
        track: ``"state"`` (every action at each sampled state, the default) or ``"pair"`` (the taken action).

    Tabular forms: ``agt2`` and ``sgt2-mutual``'s target step (:mod:`agents.target_registry`).
    """

    name = "agt2"
    moves = "trained"

    def __init__(self, online: QNetwork, beta: float, optimizer: TargetOptimizer = "sgd",
                 adam_eps: float = 1e-8, target: QNetwork | None = None, track: Tracking = "state") -> None:
        if beta <= 0.0:
            raise ValueError(f"beta {beta} must be > 0")
        if track not in TRACKING:
            raise ValueError(f"unknown track {track!r}; allowed: {', '.join(TRACKING)}")
        self.track = track
        self._initial_target = target  # read by make_target, which the base constructor calls
        super().__init__(online)
        del self._initial_target
        self.beta = beta
        params = list(self.target.parameters())
        if optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(params, lr=beta)
        elif optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=beta, eps=adam_eps)
        else:
            raise ValueError(f"unknown target optimizer {optimizer!r}; allowed: sgd, adam")

    def make_target(self, online: QNetwork) -> QNetwork | None:
        if self._initial_target is None:
            return trainable_copy(online)
        for p in self._initial_target.parameters():
            p.requires_grad_(True)
        return self._initial_target

    def after_update(self, batch: Batch) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            q_online = self.online(batch.obs)
        loss = tracking_loss(q_online, self.target(batch.obs), batch.action if self.track == "pair" else None)
        self.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()  # sum of per-replica means: replica r's θ⁻ gets its own gradient only
        self.optimizer.step()
        return {"track_loss": loss.detach()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])


class JointTarget(TargetRule):
    """SGT2 ``joint-td`` target (**reading** of arXiv 2503.16700): θ⁻ is trained jointly with θ by the agent's optimizer
    (its parameters are returned by ``trainable_parameters``); the agent's loss holds the symmetric objective.

    Args:
        online: the online network θ.
        target: θ⁻, built by the agent. It should not be a copy of θ: with identical initialisations the two
            symmetric objectives give identical gradients, so θ⁻ would equal θ forever (target-free DQN).

    Tabular form: ``sgt2`` (:mod:`agents.target_registry`).
    """

    name = "sgt2"
    moves = "trained"

    def __init__(self, online: QNetwork, target: QNetwork) -> None:
        super().__init__(online)
        for p in target.parameters():
            p.requires_grad_(True)
        self.target = target

    def make_target(self, online: QNetwork) -> QNetwork | None:
        return None  # θ⁻ is given to __init__ (built by the agent with its own initialisation)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.target.parameters())
