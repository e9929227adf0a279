"""i-DQN: iterated DQN, K online networks each learning one Bellman iteration of the one before
(Vincent et al. 2024, TMLR 2025, arXiv 2403.02107; public code theovincent/i-DQN ``slimdqn/networks/idqn.py``).

Layout: the K online networks of R replicas are one replica-stacked network with R·K slots, slot ``r·K + i``
holding θ_{i+1} of replica r; the K targets θ̄_0..θ̄_{K−1} are a frozen network with the same layout, slot
``r·K + j`` holding θ̄_j. Online slot i bootstraps from target slot i, so one batched forward computes all K
losses, and every slot is a batched-product slice (bitwise the same alone or among others).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
import torch

from agents.agent import QAgent
from agents.catalog.isql import IndexSampler
from agents.config import AgentConfig, spec
from agents.losses import td_loss
from agents.nn.networks import QNetwork
from agents.registry import register
from agents.replay import Batch
from agents.seeding import torch_generator
from agents.targets import GradientStepCadence, TargetRule, frozen_copy

__all__ = ["IteratedTargets", "IDQNConfig", "IDQN", "clip_grad_norm_grouped"]


def _slots(t: torch.Tensor, k: int) -> torch.Tensor:
    """View ``[R·K, ...]`` as ``[R, K, ...]``."""
    return t.view(t.shape[0] // k, k, *t.shape[1:])


def clip_grad_norm_grouped(params: Sequence[torch.nn.Parameter], max_norm: float, group: int) -> torch.Tensor:
    """Per-replica gradient clipping when each replica owns ``group`` consecutive slots of the leading dimension:
    the norm is taken over all of a replica's slots together. Returns the norms before clipping ``[R]``."""
    grads = [p.grad for p in params if p.grad is not None]
    # [R, P] summed along its contiguous last dim: the same reduction order whatever R is (a [P, R] sum over
    # dim 0 is not, so a replica's norm could differ in the last bit from the one it gets alone).
    sq = torch.stack([_slots(g, group).flatten(1).square().sum(dim=1) for g in grads], dim=1).sum(dim=1)
    norms = sq.sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        _slots(g, group).mul_(scale.view(-1, *([1] * g.dim())))
    return norms


class IteratedTargets(GradientStepCadence):
    """The K target networks of i-DQN and their two cadences, both counted in **gradient steps** (the rule's own
    count, advanced in ``after_update``, so nothing moves before learning starts):

    - every ``sync_period`` D: θ̄_k ← θ_k for k = 1..K−1 (θ̄_0 stays);
    - every ``shift_period`` T (instead of the sync when both fall on a step): roll the window forward,
      θ̄_j ← θ_{j+1} for j = 0..K−1, then θ_k ← θ_{k+1} for k = 1..K−1 (θ_K kept, so θ_{K−1} = θ_K afterwards).
      This is ``update_target_params`` of the reference code (target copy, then ``shift_params``).

    Initially θ̄_0 = θ_1 and θ̄_k = θ_k (k ≥ 1), the state right after a roll. (The reference starts with
    θ̄_j = θ_{j+1}; the two agree from the first sync on.) Optimizer state is left positional on a roll, as in the
    reference code (the optax state is not shifted).

    Phase: the first sync follows the D-th gradient step and the first roll the T-th, each right after that
    step's update. The authors' loop (``experiments/base/dqn.py``) calls the cadence only once
    ``step > n_initial_samples`` and tests ``step % T_env`` / ``step % D_env`` on the absolute env-step counter
    at one update per env step: the same spacing, and the same phase when the initial samples are a multiple of
    the periods (LunarLander: 1000 initial samples, D = 10, T = 200).
    """

    name = "iterated"

    def __init__(self, online: QNetwork, num_networks: int, sync_period: int, shift_period: int) -> None:
        if sync_period < 1 or shift_period < 1:
            raise ValueError(f"sync period {sync_period} and shift period {shift_period} must be >= 1")
        self.k = num_networks
        super().__init__(online)
        self.sync_period, self.shift_period = sync_period, shift_period

    def make_target(self, online: QNetwork) -> QNetwork | None:
        target = frozen_copy(online)  # θ̄_j = θ_{j+1}
        with torch.no_grad():
            for t, o in zip(target.parameters(), online.parameters()):
                _slots(t, self.k)[:, 1:] = _slots(o, self.k)[:, :-1]  # θ̄_j = θ_j for j ≥ 1
        return target

    def on_gradient_step(self, step: int) -> None:
        """Roll on every T-th gradient step, else sync on every D-th."""
        if step % self.shift_period == 0:
            self.roll()
        elif step % self.sync_period == 0:
            self.sync()

    def sync(self) -> None:
        """θ̄_k ← θ_k for k = 1..K−1."""
        with torch.no_grad():
            for t, o in zip(self.target.parameters(), self.online.parameters()):
                _slots(t, self.k)[:, 1:] = _slots(o, self.k)[:, :-1]

    def roll(self) -> None:
        """θ̄_j ← θ_{j+1} (j = 0..K−1), then θ_k ← θ_{k+1} (k = 1..K−1)."""
        with torch.no_grad():
            for t, o in zip(self.target.parameters(), self.online.parameters()):
                t.copy_(o)
                slots = _slots(o, self.k)
                slots[:, :-1] = slots[:, 1:].clone()



@dataclass(frozen=True)
class IDQNConfig(AgentConfig):
    """Adds K, the sync period D and the window-shift period T (both **gradient steps**), and the acting rule.

    D and T count gradient steps, not env steps (until issue 12 they counted env steps, so D = 10 at CleanRL's
    update every 10 env steps synced after every update): what must match the authors is the number of gradient
    steps between syncs and rolls, and their LunarLander runs take one per env step. Defaults and sources
    (authors' code: theovincent/i-DQN):

    - classic: K = 3, D = 10, T = 200 gradient steps (the authors' LunarLander launch in their README and their
      parser defaults); the rest is the family's CleanRL setting (T = 2000 env steps at an update every 10).
    - minatar: D = 10 (LunarLander's), T = 1000 gradient steps (MinAtar DQN's target period, 1000 updates).
    - atari: T = 2000 gradient steps (8000 env steps at one update every 4, the iS-DQN Atari launch and
      Dopamine's target period), D = 8 gradient steps (ours: 32 env steps, the authors' Atari D is not in the
      stored code).
    - tabular: D = 1, T = 200 gradient steps (one update per env step there, as before).

    ``layer_norm`` stays off: the i-DQN authors' ``DQNNet`` has no LayerNorm.
    """

    bellman_iterations: int = spec(3, "K: online networks θ_1..θ_K, each learning one Bellman iteration", min=1)
    sync_period: int = spec(10, "D: GRADIENT steps (not env steps) between θ̄_k ← θ_k (k ≥ 1)", min=1)
    shift_period: int = spec(200, "T: GRADIENT steps (not env steps) between window rolls "
                                  "(θ̄_0 ← θ_1, θ_k ← θ_{k+1}); a roll replaces a sync", min=1)
    act_network: Literal["uniform", "mean"] = spec(
        "uniform", "act greedily w.r.t. an online network drawn uniformly each step, or w.r.t. their mean")

    FAMILY_DEFAULTS = {
        # authors' LunarLander launch (README: K = 3, T = 200, D = 10 at one update per env step)
        "classic": {"sync_period": 10, "shift_period": 200},
        # D: LunarLander's; T: MinAtar DQN's target period (1000 updates)
        "minatar": {"sync_period": 10, "shift_period": 1000},
        # T: 8000 env steps / 4 (iS-DQN Atari launch, Dopamine); D: ours (32 env steps / 4)
        "atari": {"sync_period": 8, "shift_period": 2000},
        # one update per env step in this family: the same numbers in env steps as before
        "tabular": {"sync_period": 1, "shift_period": 200},
    }


@register("idqn", update_cost=2.5, color="#1b7837", marker="h", group="iterated")
class IDQN(QAgent):
    """i-DQN (Vincent et al., arXiv 2403.02107): K online networks, θ_k learning
    ℓ(r + γ(1−d) max_a' Q_θ̄_{k−1}(s',a') − Q_θ_k(s,a)) from target θ̄_{k−1}; one step on the sum over k.
    θ̄_k ← θ_k every D gradient steps (k ≥ 1); every T gradient steps the window rolls forward (see
    ``IteratedTargets``).

    Acting draws one online network uniformly per replica per env step from the replica's ``act-network`` stream
    (or averages them); ``greedy_actions`` (evaluation) draws from a separate ``eval-network`` stream. Gradient
    clipping (``max_grad_norm``) is per replica over its K networks together.
    """

    Config = IDQNConfig

    def __init__(self, config: IDQNConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.act_networks = IndexSampler(self.seeds, "act-network", config.bellman_iterations)
        self.eval_networks = IndexSampler(self.seeds, "eval-network", config.bellman_iterations)

    @property
    def K(self) -> int:  # noqa: N802  (the paper's name)
        return self.config.bellman_iterations

    def build_network(self, obs_shape: Sequence[int], generators: Sequence[torch.Generator]) -> QNetwork:
        # θ_1 of replica r comes from the same "init" stream as DQN's θ (so both start alike); θ_k from "init-k".
        slot_generators = [torch_generator(s, "init" if k == 0 else f"init-{k}")
                           for s in self.seeds for k in range(self.config.bellman_iterations)]
        return super().build_network(obs_shape, slot_generators)

    def make_target_rule(self, online: QNetwork) -> TargetRule:
        cfg = self.config
        return IteratedTargets(online, cfg.bellman_iterations, cfg.sync_period, cfg.shift_period)

    def q_values(self, network: QNetwork, obs: torch.Tensor) -> torch.Tensor:
        """Q-values ``[R, K, B, A]`` of the K slots of each replica for observations ``[R, B, ...]``."""
        return _slots(network(obs.repeat_interleave(self.K, dim=0)), self.K)

    # -- acting -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _greedy(self, obs: np.ndarray, sampler: IndexSampler) -> np.ndarray:
        q = self.q_values(self.online, torch.as_tensor(obs, device=self.device).unsqueeze(1))[:, :, 0]  # [R, K, A]
        return sampler.greedy(q, self.config.act_network)

    def greedy_actions(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions ``[R]`` of the evaluation policy (network from the ``eval-network`` stream, or mean)."""
        return self._greedy(obs, self.eval_networks)

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        return self.explorer.select(self._greedy(obs, self.act_networks), self.epsilon(step))

    # -- learning -----------------------------------------------------------------------------------------
    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg, k = self.config, self.K
        with torch.no_grad():
            v_next = self.q_values(self.target_rule.target, batch.next_obs).max(dim=-1).values  # [R, K, B]
            not_done = 1.0 - batch.terminated.to(batch.reward.dtype)
            y = batch.reward.unsqueeze(1) + cfg.gamma * not_done.unsqueeze(1) * v_next
        act = batch.action.unsqueeze(1).expand(-1, k, -1).unsqueeze(-1)
        q = self.q_values(self.online, batch.obs).gather(-1, act).squeeze(-1)  # [R, K, B]
        per_network = td_loss(cfg.loss, q, y)  # [R, K]
        return per_network.sum(dim=1), {"q_mean": q[:, -1].detach().mean(dim=1)}

    def clip_gradients(self, max_norm: float) -> torch.Tensor:
        """Per-replica clipping over each replica's K slots together."""
        return clip_grad_norm_grouped(self.trainable_parameters(), max_norm, self.K)

    # -- records ------------------------------------------------------------------------------------------
    def replica_view(self, network: QNetwork) -> dict[str, torch.Tensor]:
        """Each tensor as ``[R, K, ...]``: a replica's K online networks (and K targets) in slot order. Row ``r`` of
        a state-dict tensor is a slot, not replica r."""
        return {k: _slots(v, self.K) for k, v in network.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "act_networks": self.act_networks.state_dict(),
                "eval_networks": self.eval_networks.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.act_networks.load_state_dict(state["act_networks"])
        self.eval_networks.load_state_dict(state["eval_networks"])
