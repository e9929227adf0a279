"""Target rules whose θ⁻ is trained by gradient instead of copied: AGT2 and SGT2, the two forms of
:class:`agents.targets.TrainedTarget`.

Both are **readings** of Park, Lee, Lee 2025, "gradient target tracking" (arXiv 2503.16700), written in
``docs/algorithms.md`` (#reading-agt2, #reading-sgt2); coefficients stay configurable.

- :class:`GradientTrackingTarget` (AGT2, and SGT2's ``mutual-tracking`` form): after every online step, θ⁻
  takes one step of its own optimizer (SGD of size β by default) on
  ``L_track(θ⁻) = ½ E_B Σ_a (sg Q_θ(s,a) − Q_θ⁻(s,a))²`` (all actions at each sampled state; ``track="pair"``
  keeps only the taken action, the tabular forms' other choice). θ never sees a gradient from this loss.
- :class:`JointTarget` (SGT2's ``joint-td`` form): θ⁻ is trained by the agent's own loss, which holds both
  networks' objectives; its optimizer is built like the online one.

Each reads in one of two **spaces** (``space`` field, :data:`SPACES`): ``function`` measures the gap between the
networks by their Q-values on the sampled states, as above; ``parameters`` by their weights,
:func:`parameter_gap` = ½‖θ⁻ − θ‖² (AGT2's tracking loss; SGD of size β on it is Polyak averaging at rate β).

The config fields of the tracking step (β, the target's optimizer, which actions it tracks) are declared once
here (:func:`beta_field`, :func:`target_optimizer_field`, :func:`target_optimizer_eps_field`, :func:`track_field`)
and used by both agents' configs; :func:`tracking_optimizer` turns them into θ⁻'s optimizer settings.

All losses are per-replica means summed over replicas, so each replica's θ⁻ gets exactly the gradient it would
get alone.
"""
from __future__ import annotations

import typing
from typing import Any, Literal, Sequence

import torch

from agents.config import AgentConfig, spec
from agents.fields import bad_value
from agents.nn.networks import QNetwork
from agents.optim import OptimizerSettings
from agents.replay import Batch
from agents.target_registry import TRACKING, Tracking
from agents.targets import TrainedTarget

__all__ = ["GradientTrackingTarget", "JointTarget", "tracking_loss", "parameter_gap", "beta_field",
           "target_optimizer_field", "target_optimizer_eps_field", "track_field", "space_field", "tracking_optimizer",
           "check_track_in_space", "Space", "SPACES"]

#: where the gap between θ⁻ and θ is measured: their Q-values on the sampled states, or their weights
Space = Literal["function", "parameters"]
SPACES: tuple[str, ...] = typing.get_args(Space)

#: β's default on every family (ours), see docs/algorithms.md
DEFAULT_BETA = 0.01


def beta_field(used_by: str = "") -> Any:
    """The config field β: step size of θ⁻'s tracking step (``used_by`` is appended to its help text)."""
    return spec(DEFAULT_BETA, "step size β of the target's gradient step on its tracking loss (space=function: "
                f"½ E_B Σ_a (sg Q_θ − Q_θ⁻)²; space=parameters: ½‖θ⁻ − sg θ‖²){used_by}", min=0.0, min_exclusive=True)


def space_field(used_by: str = "") -> Any:
    """The config field choosing where θ⁻ and θ are compared (``used_by`` is appended to its help text); at
    ``function``, the reading the option was added to, it stays out of the trial hash."""
    return spec("function", "where the target tracks (and is coupled to) the online network: function = their "
                "Q-values on the sampled states; parameters = their weights, ½‖θ⁻ − θ‖² (with SGD, AGT2 is then "
                f"Polyak averaging at rate β per update){used_by}", neutral="function")


def target_optimizer_field(used_by: str = "") -> Any:
    """The config field naming the optimizer of θ⁻'s tracking step (``used_by`` is appended to its help text)."""
    return spec("sgd", f"optimizer of the target's tracking step (lr = β, no weight decay){used_by}")


def target_optimizer_eps_field(used_by: str = "") -> Any:
    """The config field giving the epsilon of θ⁻'s Adam / RMSProp (``None``: the online ``optimizer_eps``)."""
    return spec(None, f"epsilon of the target's Adam / RMSProp; none = optimizer_eps{used_by}", min=0.0,
                min_exclusive=True, neutral=None)


def track_field(used_by: str = "") -> Any:
    """The config field choosing the actions θ⁻'s tracking loss covers (``used_by`` is appended to its help)."""
    return spec("state", "actions the tracking loss covers: state = every action at each sampled state (Σ_a), "
                f"pair = the taken action only{used_by}")


def check_track_in_space(track: str, space: str) -> None:
    """``track=pair`` selects actions of the function-space loss: with ``space=parameters`` it would be ignored, so
    it is refused (one line, as every bad config value)."""
    if space == "parameters" and track != "state":
        raise bad_value("track", track, "is not valid with space='parameters' (it selects Q-values)", "state")


def tracking_optimizer(cfg: AgentConfig) -> OptimizerSettings:
    """θ⁻'s optimizer for the tracking step: ``target_optimizer`` with step size β, the target's epsilon (the
    online one unless set), the online RMSProp decay, no weight decay (it would pull θ⁻ toward zero, not θ)."""
    eps = cfg.target_optimizer_eps if cfg.target_optimizer_eps is not None else cfg.optimizer_eps
    return OptimizerSettings(cfg.target_optimizer, cfg.beta, eps=eps, alpha=cfg.rmsprop_alpha, weight_decay=0.0)


def parameter_gap(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    """½‖a − b‖² per replica ``[R]`` over matching parameter lists (leading replica dimension); detach an argument
    to keep its gradient out."""
    sq = torch.zeros(a[0].shape[0], dtype=a[0].dtype, device=a[0].device)
    for x, y in zip(a, b):  # elementwise adds in a fixed order (see clip_grad_norm_per_replica)
        sq = sq + (x - y).square().flatten(1).sum(dim=1)
    return 0.5 * sq


def tracking_loss(q_online: torch.Tensor, q_target: torch.Tensor, action: torch.Tensor | None = None) -> torch.Tensor:
    """``½ E_B Σ_a (sg Q_θ − Q_θ⁻)²`` per replica ``[R]`` from Q-values ``[R, B, A]`` (``q_online`` is detached);
    with ``action`` ``[R, B]`` only the taken actions: ``½ E_B (sg Q_θ(s,a) − Q_θ⁻(s,a))²``."""
    gap = (q_online.detach() - q_target).square()
    if action is not None:
        gap = gap.gather(-1, action.unsqueeze(-1))
    return 0.5 * gap.sum(dim=-1).mean(dim=-1)


class GradientTrackingTarget(TrainedTarget):
    """AGT2 target (**reading** of arXiv 2503.16700): after each online gradient step, θ⁻ takes one step of its
    optimizer on the tracking loss, with the just-updated θ. In function space the loss is
    ``½ E_B Σ_a (sg Q_θ(s,a) − Q_θ⁻(s,a))²`` over the same minibatch, summed over **all** actions at each sampled
    state, not only the taken one; in parameter space it is ``½‖θ⁻ − sg θ‖²`` (so SGD of size β is
    θ⁻ ← θ⁻ + β(θ − θ⁻), Polyak averaging). This rule only moves θ⁻ (never clipped: see
    :class:`~agents.targets.TrainedTarget`); SGT2's ``mutual-tracking`` form uses it too and pulls θ toward θ⁻ in
    its own loss.

    Args:
        online: the online network θ.
        target: θ⁻'s initial network (a copy of θ for AGT2).
        optimizer: θ⁻'s optimizer (:func:`tracking_optimizer`: SGD of size β by default).
        track: ``"state"`` (every action at each sampled state, the default) or ``"pair"`` (the taken action);
            function space only.
        space: ``"function"`` or ``"parameters"``.

    Tabular forms: ``agt2`` and ``sgt2-mutual``'s target step (:mod:`agents.target_registry`).
    """

    name = "agt2"

    def __init__(self, online: QNetwork, target: QNetwork, optimizer: OptimizerSettings,
                 track: Tracking = "state", space: Space = "function") -> None:
        if not optimizer.lr > 0.0:
            raise ValueError(f"beta {optimizer.lr} must be > 0")
        if track not in TRACKING:
            raise ValueError(f"unknown track {track!r}; allowed: {', '.join(TRACKING)}")
        if space not in SPACES:
            raise ValueError(f"unknown space {space!r}; allowed: {', '.join(SPACES)}")
        super().__init__(online, target, optimizer)
        self.track, self.space = track, space

    def target_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.space == "parameters":
            loss = parameter_gap(list(self.target.parameters()), [p.detach() for p in self.online.parameters()])
            return loss, {"track_loss": loss.detach()}
        with torch.no_grad():
            q_online = self.online(batch.obs)
        loss = tracking_loss(q_online, self.target(batch.obs), batch.action if self.track == "pair" else None)
        return loss, {"track_loss": loss.detach()}


class JointTarget(TrainedTarget):
    """SGT2 ``joint-td`` target (**reading** of arXiv 2503.16700): θ⁻ is trained jointly with θ by the agent's loss,
    which holds the symmetric objective; its gradient is clipped with θ's and applied by its own optimizer, built
    like the online one, right after the online step.

    Args:
        online: the online network θ.
        target: θ⁻, built by the agent. It should not be a copy of θ: with identical initialisations the two
            symmetric objectives give identical gradients, so θ⁻ would equal θ forever (target-free DQN).
        optimizer: the online optimizer's settings.

    Tabular form: ``sgt2`` (:mod:`agents.target_registry`).
    """

    name = "sgt2"
    joint = True
