"""iS-QL: iterated shared Q-learning — one trunk, K+1 linear heads, head 0 the target (Vincent et al. 2025,
arXiv 2506.04398; public code theovincent/iS-DQN ``slimdqn/networks/isdqn.py``). Its K heads are an ensemble
(``agents/ensemble.py``): acting draws one per step, as i-DQN's networks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch

from agents.config import AgentConfig, ConfigError, spec
from agents.ensemble import SampledActing
from agents.losses import td_loss
from agents.nn.networks import QNetwork, build_q_network
from agents.optim import FlatOptimizer
from agents.registry import register
from agents.replay import Batch
from agents.targets import GradientStepCadence, TargetRule

__all__ = ["HeadShift", "ISQLConfig", "ISQL"]


class HeadShift(GradientStepCadence):
    """iS-QL's target: head 0 of the online network itself (no separate copy). Every ``period`` **gradient
    steps** T the heads shift, w_k ← w_{k+1} for k = 0..K−1, and w_K is kept (so heads K−1 and K start equal).

    The cadence runs on the rule's own count of gradient steps (``after_update``), so nothing shifts before
    learning starts and the first shift follows the T-th gradient step, right after that step's update (the
    authors' order: ``update_online_params`` then ``update_target_params`` at the same step); T gradient steps
    separate shifts whatever the train frequency. The authors' loop (``experiments/base/dqn.py``) calls the
    cadence only once ``step > n_initial_samples`` and shifts when ``step % T_env == 0`` on the absolute env-step
    counter (T_env = T × the update period): the same spacing; their first shift is at the first multiple of
    T_env past the initial samples, which is the T-th gradient step when the initial samples are a multiple of
    T_env (LunarLander: 1000 and 200, first shift at env step 1200) and earlier otherwise (Atari: 20k and 8000,
    first shift at env step 24000, the 1000th gradient step; ours: the 2000th).

    Optimizer state is left where it is (positional), as in the reference code, where the optax state is not
    touched by ``shift_params``: head k's moments keep describing the k-th Bellman iterate's loss. It also keeps
    head 0 frozen under Adam / RMSProp: its gradient is exactly zero from the first step, so its moments stay
    zero and its update is exactly zero; shifting the moments would hand head 0 the moments of old head 1.
    """

    name = "head-shift"
    inside_online = True

    def __init__(self, online: QNetwork, period: int) -> None:
        if period < 1:
            raise ValueError(f"shift period {period} must be >= 1")
        if online.num_heads < 2:
            raise ValueError("iS-QL needs a network with K+1 >= 2 heads")
        super().__init__(online)
        self.period = period

    def make_target(self, online: QNetwork) -> QNetwork | None:
        return None  # the target is head 0 of the online network

    def on_gradient_step(self, step: int) -> None:
        """Shift on every T-th gradient step."""
        if step % self.period == 0:
            self.shift()

    def shift(self) -> None:
        """w_k ← w_{k+1} for k = 0..K−1; w_K kept."""
        head, a = self.online.head, self.online.num_actions
        with torch.no_grad():
            for p in (head.weight, head.bias):
                p[:, :, :-a] = p[:, :, a:].clone()

    def target_numel(self) -> int:
        """Elements of head 0 (all replicas): the only parameters iS-QL holds for its target. They live inside the
        online network's head layer; they count as target weights (no gradient), not in ``parameter_count``, so
        the two add up to the network."""
        head, a = self.online.head, self.online.num_actions
        return sum(p[:, :, :a].numel() for p in (head.weight, head.bias))



@dataclass(frozen=True)
class ISQLConfig(AgentConfig):
    """Adds K (online heads), the shift period T (**gradient steps**) and the acting rule; LayerNorm on (the
    authors' networks). Defaults and their sources: docs/algorithms.md.
    """

    layer_norm: bool = spec(True, "LayerNorm between every hidden layer (dense or conv) and its ReLU (on: the "
                                  "iS-QL authors' networks); such networks run on torch kernels")
    bellman_iterations: int = spec(3, "K: online heads w_1..w_K, each learning one Bellman iteration", min=1)
    shift_period: int = spec(200, "T: GRADIENT steps (not env steps) between head shifts w_k ← w_{k+1}; the "
                                  "first follows the T-th gradient step", min=1)
    act_head: Literal["uniform", "mean"] = spec(
        "uniform", "act greedily w.r.t. a head drawn uniformly from 1..K each step, or w.r.t. their mean")

    FAMILY_DEFAULTS = {
        # authors' parser defaults (LunarLander): K = 3, T = 200 at one update per env step
        "classic": {"shift_period": 200},
        # MinAtar DQN's target period (1000 updates); the authors' squared loss
        "minatar": {"shift_period": 1000, "loss": "mse"},
        # authors' Atari launch script (theovincent/iS-DQN launch_job/atari/launch.sh)
        "atari": {"bellman_iterations": 9, "shift_period": 2000, "network": "nature-cnn", "layer_norm": True,
                  "optimizer": "adam", "learning_rate": 6.25e-5, "optimizer_eps": 1.5e-4, "loss": "mse",
                  "batch_size": 32, "buffer_size": 1_000_000, "train_frequency": 4, "learning_starts": 20_000,
                  "epsilon_end": 0.01, "epsilon_decay_steps": 250_000},
        # one update per env step in this family: 200 gradient steps = 200 env steps
        "tabular": {"shift_period": 200},
    }

    def validate(self) -> None:
        """The base checks, then: no weight decay (head 0 stays put only because its gradient is exactly zero)."""
        super().validate()
        decay = (FlatOptimizer.DEFAULT_WEIGHT_DECAY.get(self.optimizer, 0.0) if self.weight_decay is None
                 else self.weight_decay)
        if decay:
            raise ConfigError(f"weight_decay={decay!r} (with optimizer={self.optimizer!r}) is not valid for isql: it "
                              "would move the target head 0, which only a zero gradient keeps fixed; allowed: 0")


@register("isql", update_cost=1.3, color="#7b3294", marker="*", group="iterated")
class ISQL(SampledActing):
    """iS-QL (Vincent et al. 2025, arXiv 2506.04398): one network, shared trunk φ and K+1 linear heads; head k
    learns r + γ(1−d) max_a' sg Q_{w_{k−1}}(s',a') (current trunk), head 0 is the target and gets no gradient;
    every T gradient steps the heads shift (see ``HeadShift``). K = 1 is "shared last layer".

    L = Σ_{k=1..K} E_B ℓ(r + γ(1−d) max_a' sg Q_{ω,w_{k−1}}(s',a') − Q_{ω,w_k}(s,a)); ℓ is the config's loss
    (the paper's squared error is ``mse``). Acting draws a head uniformly from 1..K per replica per env step from
    the replica's ``act-head`` stream (or uses their mean); the greedy policy (``greedy_actions``, evaluation)
    draws from a separate ``eval-head`` stream so evaluating never shifts the training draws.
    """

    Config = ISQLConfig
    member = "head"

    def build_network(self, obs_shape: Sequence[int], generators: Sequence[torch.Generator]) -> QNetwork:
        cfg = self.config
        return build_q_network(self.architecture(), obs_shape, self.num_actions, generators,
                               hidden_sizes=cfg.hidden_sizes, num_heads=cfg.bellman_iterations + 1,
                               obs_scale=self.facts.obs_scale, layer_norm=cfg.layer_norm)

    def make_target_rule(self, online: QNetwork) -> TargetRule:
        return HeadShift(online, self.config.shift_period)

    def member_values(self, obs: torch.Tensor) -> torch.Tensor:
        """Q-values ``[R, K, A]`` of heads 1..K."""
        return self.online.all_heads(obs.unsqueeze(1))[:, 0, 1:]

    # -- learning -----------------------------------------------------------------------------------------
    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg, k = self.config, self.K
        q_all = self.online.all_heads(batch.obs)  # [R, B, K+1, A]
        with torch.no_grad():
            v_next = self.online.all_heads(batch.next_obs)[:, :, :k].max(dim=-1).values  # heads 0..K−1: [R, B, K]
            not_done = 1.0 - batch.terminated.to(batch.reward.dtype)
            y = batch.reward.unsqueeze(-1) + cfg.gamma * not_done.unsqueeze(-1) * v_next
        act = batch.action.view(*batch.action.shape, 1, 1).expand(-1, -1, k, 1)
        q = q_all[:, :, 1:].gather(-1, act).squeeze(-1)  # heads 1..K: [R, B, K]
        per_head = td_loss(cfg.loss, q.transpose(1, 2), y.transpose(1, 2))  # [R, K]
        return per_head.sum(dim=1), {"q_mean": q[..., -1].detach().mean(dim=1)}
