"""SGT2-DQN: two networks trained jointly, each bootstrapping from the other (symmetric gradient target tracking).

Our **reading** of Park, Lee, Lee 2025 (arXiv 2503.16700), as written in ``shared/ALGORITHMS.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch

from agents.agent import QAgent
from agents.bootstrap import td_target
from agents.config import AgentConfig, spec
from agents.gradient_targets import JointTarget, trainable_copy
from agents.losses import td_loss
from agents.nn.networks import QNetwork
from agents.registry import register
from agents.replay import Batch
from agents.seeding import torch_generator
from agents.targets import TargetRule

__all__ = ["SGT2Config", "SGT2DQN"]


@dataclass(frozen=True)
class SGT2Config(AgentConfig):
    """Adds the coupling η and how θ⁻ is initialised. Both networks share the agent's optimizer and learning rate.

    Defaults: η = 0.1 on every family (the paper's value could not be read; ours: on CartPole-v1, η in
    {0.1, 0.5, 1} behaved alike). Each network bootstraps from the other's *current* values, so, like a
    target-free DQN, SGT2 overestimates at high learning rates: on CartPole-v1 at Adam 5e-4 its mean Q rose to
    200-350 (the true values are below 100) and returns fell after 10k steps; at 2.5e-4 it learned stably.
    """

    eta: float = spec(0.1, "coupling η of (η/2)(Q_θ − Q_θ⁻)² in each network's loss", min=0.0)
    target_init: Literal["independent", "copy"] = spec(
        "independent", "θ⁻ init: independent draw from the seed's own stream, or a copy of θ (then both stay "
        "equal forever: the objectives are symmetric)")


@register("sgt2-dqn")
class SGT2DQN(QAgent):
    """Symmetric gradient target tracking (SGT2, reading of arXiv 2503.16700): θ and θ⁻ both learn, each
    bootstrapping from the other, coupled by (η/2)(Q_θ − Q_θ⁻)² in both losses; one step on L_θ + L_θ⁻.

    L_θ  = E_B[ℓ(r + γ(1−d) max_a' sg Q_θ⁻(s',a') − Q_θ(s,a)) + (η/2)(Q_θ(s,a) − Q_θ⁻(s,a))²]
    L_θ⁻ = E_B[ℓ(r + γ(1−d) max_a' sg Q_θ(s',a') − Q_θ⁻(s,a)) + (η/2)(Q_θ⁻(s,a) − Q_θ(s,a))²]
    The coupling is not detached, so the pair of coupling terms gives each network the gradient of η(Q_θ − Q_θ⁻)².
    The agent acts with θ.
    """

    Config = SGT2Config

    def build_network(self, obs_shape: Sequence[int], generators: Sequence[torch.Generator]) -> QNetwork:
        self._obs_shape = tuple(obs_shape)  # kept to build θ⁻ with the same architecture
        return super().build_network(obs_shape, generators)

    def make_target_rule(self, online: QNetwork) -> TargetRule:
        if self.config.target_init == "copy":
            target = trainable_copy(online)
        else:
            # Independent init from a stream of the replica's own seed: a copy of θ would make θ⁻ ≡ θ forever.
            gens = [torch_generator(s, "init-target") for s in self.seeds]
            target = QAgent.build_network(self, self._obs_shape, gens).to(self.device)
        return JointTarget(online, target)

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
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
        coupling = 0.5 * cfg.eta * (q - q_bar).square().mean(dim=-1)  # not detached: pulls both networks
        loss_online = td_loss(cfg.loss, q, y_online) + coupling
        loss_target = td_loss(cfg.loss, q_bar, y_target) + coupling
        metrics = {"q_mean": q.detach().mean(dim=1), "q_target_mean": q_bar.detach().mean(dim=1),
                   "loss_target": loss_target.detach()}
        return loss_online + loss_target, metrics
