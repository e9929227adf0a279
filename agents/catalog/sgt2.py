"""SGT2-DQN: symmetric gradient target tracking, in two forms (``form`` option).

Our **reading** of Park, Lee, Lee 2025 (arXiv 2503.16700), written in docs/algorithms.md (#reading-sgt2): both
readings are offered and their coefficients stay configurable.

- ``joint-td`` (default): θ and θ⁻ both learn TD, each bootstrapping from the other, coupled by
  (η/2)(Q_θ − Q_θ⁻)² in both losses; one step of the agent's optimizer on L_θ + L_θ⁻.
- ``mutual-tracking``: θ learns TD from θ⁻ plus the pull (η/2)(Q_θ − sg Q_θ⁻)²; θ⁻ learns only the tracking
  loss ½ E_B Σ_a (sg Q_θ − Q_θ⁻)² with its own step β, exactly as AGT2's target (same rule object). AGT2 is this
  form with η = 0 and ``target_init=copy``.

``space=parameters`` measures both the coupling and the tracking by the weights instead of the Q-values:
(η/2)‖θ − θ⁻‖² (joint-td, in both losses), (η/2)‖θ − sg θ⁻‖² (mutual-tracking: a proximal term toward the target,
as DQN Pro) and ½‖θ⁻ − sg θ‖² for θ⁻'s tracking step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from agents.agent import QAgent
from agents.bootstrap import td_target
from agents.config import AgentConfig, OptimizerKind, spec
from agents.gradient_targets import (GradientTrackingTarget, JointTarget, Space, beta_field, check_track_in_space,
                                     parameter_gap, space_field, target_optimizer_eps_field, target_optimizer_field,
                                     track_field, tracking_optimizer)
from agents.losses import td_loss
from agents.nn.networks import QNetwork
from agents.registry import register
from agents.replay import Batch
from agents.seeding import torch_generator
from agents.target_registry import TargetInit, Tracking
from agents.targets import TargetRule, trainable_copy

__all__ = ["SGT2Config", "SGT2DQN", "SGT2_FORMS"]

SGT2_FORMS = ("joint-td", "mutual-tracking")


@dataclass(frozen=True)
class SGT2Config(AgentConfig):
    """Adds the form, the coupling η, how θ⁻ is initialised, the space of the coupling and tracking, and
    (``mutual-tracking`` only) θ⁻'s tracking step β, its optimizer and the actions it tracks (AGT2's fields). In
    ``joint-td`` θ⁻'s optimizer has the online one's settings. Defaults and their reasons: docs/algorithms.md.
    """

    eta: float = spec(0.1, "coupling η of (η/2)(Q_θ − Q_θ⁻)² in θ's loss (and, joint-td, in θ⁻'s)", min=0.0)
    target_init: TargetInit = spec(
        "independent", "θ⁻ init: independent draw from the seed's own stream, or a copy of θ (with joint-td both "
        "then stay equal forever: the objectives are symmetric)")
    form: Literal["joint-td", "mutual-tracking"] = spec(
        "joint-td", "joint-td: both networks learn TD from each other; mutual-tracking: θ learns TD from θ⁻ plus "
        "the pull η, θ⁻ only tracks θ with step β (AGT2's target step)")
    beta: float = beta_field("; mutual-tracking only")
    target_optimizer: OptimizerKind = target_optimizer_field("; mutual-tracking only")
    target_optimizer_eps: float | None = target_optimizer_eps_field("; mutual-tracking only")
    track: Tracking = track_field("; mutual-tracking only")
    space: Space = space_field()

    def validate(self) -> None:
        """The base checks, then: ``track`` chooses actions, so it has a choice in function space only."""
        super().validate()
        check_track_in_space(self.track, self.space)


@register("sgt2-dqn", update_cost=2.0, color="#ca9161", marker="P", group="gradient tracking", reading="sgt2")
class SGT2DQN(QAgent):
    """Symmetric gradient target tracking (SGT2, **reading** of arXiv 2503.16700), ``form`` chooses the reading.

    ``joint-td``: θ and θ⁻ both learn, each bootstrapping from the other, coupled by (η/2)(Q_θ − Q_θ⁻)² in both
    losses; one step on L_θ + L_θ⁻:
    L_θ  = E_B[ℓ(r + γ(1−d) max_a' sg Q_θ⁻(s',a') − Q_θ(s,a)) + (η/2)(Q_θ(s,a) − Q_θ⁻(s,a))²]
    L_θ⁻ = E_B[ℓ(r + γ(1−d) max_a' sg Q_θ(s',a') − Q_θ⁻(s,a)) + (η/2)(Q_θ⁻(s,a) − Q_θ(s,a))²]
    The coupling is not detached, so the pair of coupling terms gives each network the gradient of η(Q_θ − Q_θ⁻)².

    ``mutual-tracking``: one step of the agent's optimizer on
    L_θ = E_B[ℓ(r + γ(1−d) max_a' sg Q_θ⁻(s',a') − Q_θ(s,a)) + (η/2)(Q_θ(s,a) − sg Q_θ⁻(s,a))²]
    (pull at the taken action), then θ⁻ takes one step of size β on ½ E_B Σ_a (sg Q_θ(s,a) − Q_θ⁻(s,a))² with the
    updated θ (:class:`GradientTrackingTarget`, as AGT2; ``track=pair`` keeps the taken action only). With η = 0 and
    ``target_init=copy`` this is AGT2.

    ``space=parameters`` replaces (η/2)(Q_θ − Q_θ⁻)² by (η/2)‖θ − θ⁻‖² in both joint-td losses (so the pair gives
    each network the gradient of η‖θ − θ⁻‖²), the mutual-tracking pull by (η/2)‖θ − sg θ⁻‖², and θ⁻'s tracking
    loss by ½‖θ⁻ − sg θ‖².

    Either way θ⁻ starts as an independent draw (``target_init=independent``) or a copy of θ, and the agent acts
    with θ.
    """

    Config = SGT2Config
    acting = "greedy"

    def make_target_rule(self, online: QNetwork) -> TargetRule:
        cfg = self.config
        if cfg.target_init == "copy":
            target = trainable_copy(online)
        else:
            # Independent init from a stream of the replica's own seed: a copy of θ would make θ⁻ ≡ θ forever
            # under joint-td.
            gens = [torch_generator(s, "init-target") for s in self.seeds]
            target = self.build_network(self.obs_shape, gens).to(self.device)
        if cfg.form == "mutual-tracking":
            return GradientTrackingTarget(online, target, tracking_optimizer(cfg), track=cfg.track, space=cfg.space)
        return JointTarget(online, target, self.optimizer_settings())

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.config.form == "mutual-tracking":
            return self._mutual_tracking_loss(batch)
        return self._joint_td_loss(batch)

    def _joint_td_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """L_θ + L_θ⁻ per replica; gradients reach both networks."""
        cfg = self.config
        online, target = self.online, self.target_rule.target
        with torch.no_grad():
            v_from_target = target(batch.next_obs).max(dim=-1).values
            online_next = online(batch.next_obs).max(dim=-1).values
        y_online = td_target(batch.reward, batch.terminated, v_from_target, cfg.gamma)
        y_target = td_target(batch.reward, batch.terminated, online_next, cfg.gamma)
        act = batch.action.unsqueeze(-1)
        q = online(batch.obs).gather(-1, act).squeeze(-1)
        q_bar = target(batch.obs).gather(-1, act).squeeze(-1)
        if cfg.space == "parameters":  # (η/2)‖θ − θ⁻‖², not detached: pulls both networks
            coupling = cfg.eta * parameter_gap(list(online.parameters()), list(target.parameters()))
        else:
            coupling = 0.5 * cfg.eta * (q - q_bar).square().mean(dim=-1)  # not detached: pulls both networks
        loss_online = td_loss(cfg.loss, q, y_online) + coupling
        loss_target = td_loss(cfg.loss, q_bar, y_target) + coupling
        metrics = {"q_mean": q.detach().mean(dim=1), "q_target_mean": q_bar.detach().mean(dim=1),
                   "loss_target": loss_target.detach()}
        return loss_online + loss_target, metrics

    def _mutual_tracking_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """L_θ per replica; θ⁻ is under stop-gradient here and moves in the target rule's ``after_update``."""
        cfg = self.config
        target = self.target_rule.target
        with torch.no_grad():
            v_from_target = target(batch.next_obs).max(dim=-1).values
            q_bar = target(batch.obs).gather(-1, batch.action.unsqueeze(-1)).squeeze(-1)
        y = td_target(batch.reward, batch.terminated, v_from_target, cfg.gamma)
        q = self.online(batch.obs).gather(-1, batch.action.unsqueeze(-1)).squeeze(-1)
        if cfg.space == "parameters":  # (η/2)‖θ − sg θ⁻‖²: a proximal term toward the target (DQN Pro)
            pull = cfg.eta * parameter_gap(list(self.online.parameters()), [p.detach() for p in target.parameters()])
        else:
            pull = 0.5 * cfg.eta * (q - q_bar).square().mean(dim=-1)
        metrics = {"q_mean": q.detach().mean(dim=1), "q_target_mean": q_bar.mean(dim=1)}
        return td_loss(cfg.loss, q, y) + pull, metrics
