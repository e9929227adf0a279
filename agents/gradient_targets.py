"""Target rules whose θ⁻ is trained by gradient instead of copied: AGT2 and SGT2.

Both are **readings** of Park, Lee, Lee 2025, "gradient target tracking" (arXiv 2503.16700); the update rules
are the ones written in ``shared/ALGORITHMS.md``. Coefficients stay configurable so a reader of the paper can
check and change them in one place.

- :class:`GradientTrackingTarget` (AGT2, asymmetric): after every online step, θ⁻ takes one step of its own
  optimizer (SGD of size β by default) on ``L_track(θ⁻) = ½ E_B Σ_a (sg Q_θ(s,a) − Q_θ⁻(s,a))²``. Only θ⁻
  moves; θ never sees a gradient from this loss.
- :class:`JointTarget` (SGT2, symmetric): θ⁻ is an ordinary trainable network handed to the agent's optimizer
  through ``trainable_parameters``; the agent's ``loss`` supplies both networks' objectives.

All losses are per-replica means summed over replicas, so each replica's θ⁻ gets exactly the gradient it would
get alone.
"""
from __future__ import annotations

import copy
from typing import Any, Literal

import torch

from agents.nn.networks import QNetwork
from agents.replay import Batch
from agents.targets import TargetRule

__all__ = ["GradientTrackingTarget", "JointTarget", "trainable_copy", "tracking_loss"]

TargetOptimizer = Literal["sgd", "adam"]


def trainable_copy(network: QNetwork) -> QNetwork:
    """A deep copy of ``network`` whose parameters require gradients (a target trained by gradient)."""
    target = copy.deepcopy(network)
    for p in target.parameters():
        p.requires_grad_(True)
    return target


def tracking_loss(q_online: torch.Tensor, q_target: torch.Tensor) -> torch.Tensor:
    """``½ E_B Σ_a (sg Q_θ − Q_θ⁻)²`` per replica ``[R]`` from Q-values ``[R, B, A]`` (``q_online`` is detached)."""
    return 0.5 * (q_online.detach() - q_target).square().sum(dim=-1).mean(dim=-1)


class GradientTrackingTarget(TargetRule):
    """AGT2 target (**reading** of arXiv 2503.16700): θ⁻ starts as a copy of θ and, after each online gradient
    step, takes one step of size β on the tracking loss ``½ E_B Σ_a (sg Q_θ(s,a) − Q_θ⁻(s,a))²`` over the same
    minibatch, with the just-updated θ. Only θ⁻ is pulled.

    Args:
        online: the online network θ.
        beta: step size β of the target's optimizer.
        optimizer: ``"sgd"`` (plain gradient step, the paper's reading) or ``"adam"`` (step size β).
        adam_eps: Adam's epsilon when ``optimizer="adam"``.
    """

    name = "agt2"

    def __init__(self, online: QNetwork, beta: float, optimizer: TargetOptimizer = "sgd",
                 adam_eps: float = 1e-8) -> None:
        if beta <= 0.0:
            raise ValueError(f"beta {beta} must be > 0")
        super().__init__(online)
        self.beta = beta
        params = list(self.target.parameters())
        if optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(params, lr=beta)
        elif optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=beta, eps=adam_eps)
        else:
            raise ValueError(f"unknown target optimizer {optimizer!r}; allowed: sgd, adam")

    def make_target(self, online: QNetwork) -> QNetwork | None:
        return trainable_copy(online)

    def after_update(self, batch: Batch) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            q_online = self.online(batch.obs)
        loss = tracking_loss(q_online, self.target(batch.obs))
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
    """SGT2 target (**reading** of arXiv 2503.16700): θ⁻ is trained jointly with θ by the agent's optimizer
    (its parameters are returned by ``trainable_parameters``); the agent's loss holds the symmetric objective.

    Args:
        online: the online network θ.
        target: θ⁻, built by the agent. It should not be a copy of θ: with identical initialisations the two
            symmetric objectives give identical gradients, so θ⁻ would equal θ forever (target-free DQN).
    """

    name = "sgt2"

    def __init__(self, online: QNetwork, target: QNetwork) -> None:
        super().__init__(online)
        for p in target.parameters():
            p.requires_grad_(True)
        self.target = target

    def make_target(self, online: QNetwork) -> QNetwork | None:
        return None  # θ⁻ is given to __init__ (built by the agent with its own initialisation)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.target.parameters())
