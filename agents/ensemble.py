"""Agents with K members per seed: iS-QL's heads, i-DQN's and EauDeQN's networks.

What they share is written once here: the member count ``K``; the slot layout of members stored as consecutive
rows of one replica-stacked network (:func:`slots`, :class:`SlotEnsemble`); acting greedily with a member drawn
uniformly per seed per env step (:class:`IndexSampler`, :class:`SampledActing`); per-seed gradient clipping over a
seed's slots. Each stays a batched-product slice of the stacked network, so a seed's numbers are the same alone
or among other seeds.
"""
from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from agents.agent import QAgent, clip_grad_norm_per_replica
from agents.nn.networks import QNetwork
from agents.seeding import numpy_rng, torch_generator

__all__ = ["slots", "IndexSampler", "EnsembleAgent", "SampledActing", "SlotEnsemble"]


def slots(t: torch.Tensor, k: int) -> torch.Tensor:
    """View ``[R·K, ...]`` (member k of replica r in row r·K + k) as ``[R, K, ...]``."""
    return t.view(t.shape[0] // k, k, *t.shape[1:])


class IndexSampler:
    """One uniform integer in ``[0, n)`` per replica per call, each from a stream of that replica's seed alone
    (so a replica's draws do not depend on which other seeds share the batch)."""

    def __init__(self, seeds: Sequence[int], stream: str, n: int) -> None:
        self.rngs = [numpy_rng(s, stream) for s in seeds]
        self.n = n

    def draw(self) -> np.ndarray:
        """Indices ``[R]``."""
        return np.array([rng.integers(self.n) for rng in self.rngs], dtype=np.int64)

    def greedy(self, q: torch.Tensor, mode: str) -> np.ndarray:
        """Greedy actions ``[R]`` from ensemble Q-values ``[R, n, A]``: w.r.t. one member drawn per replica
        (``"uniform"``) or the ensemble mean (``"mean"``, which draws nothing)."""
        if mode == "mean":
            q_act = q.mean(dim=1)
        else:
            idx = torch.from_numpy(self.draw()).to(q.device)
            q_act = q[torch.arange(q.shape[0], device=q.device), idx]
        return q_act.argmax(dim=-1).cpu().numpy()

    def state_dict(self) -> dict[str, Any]:
        return {"rngs": [rng.bit_generator.state for rng in self.rngs]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for rng, s in zip(self.rngs, state["rngs"]):
            rng.bit_generator.state = s


class EnsembleAgent(QAgent):
    """An agent with K members per seed; ``size_field`` names the config field that holds K."""

    size_field: ClassVar[str] = "bellman_iterations"

    @property
    def K(self) -> int:  # noqa: N802  (the papers' name)
        return int(getattr(self.config, self.size_field))

    def member_values(self, obs: torch.Tensor) -> torch.Tensor:
        """Q-values ``[R, K, A]`` of every member for one observation per replica ``[R, *obs_shape]``."""
        raise NotImplementedError


class SampledActing(EnsembleAgent):
    """Acting greedily w.r.t. one member drawn uniformly per replica per env step, or w.r.t. the members' mean
    (the config field ``act_<member>``). Training draws from the replica's ``act-<member>`` stream, the greedy
    policy (``greedy_actions``, evaluation) from a separate ``eval-<member>`` stream, so evaluating never shifts the
    training draws; both are saved in checkpoints."""

    #: what a member is called (``"head"``, ``"network"``): names the acting field and the random streams
    member: ClassVar[str] = "network"

    def __init__(self, config: Any, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.act_sampler = IndexSampler(self.seeds, f"act-{self.member}", self.K)
        self.eval_sampler = IndexSampler(self.seeds, f"eval-{self.member}", self.K)

    @torch.no_grad()
    def _greedy(self, obs: np.ndarray, sampler: IndexSampler) -> np.ndarray:
        q = self.member_values(torch.as_tensor(obs, device=self.device))
        return sampler.greedy(q, getattr(self.config, f"act_{self.member}"))

    def greedy_actions(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions ``[R]`` of the evaluation policy (member from the ``eval-<member>`` stream, or the mean)."""
        return self._greedy(obs, self.eval_sampler)

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        return self.explorer.select(self._greedy(obs, self.act_sampler), self.epsilon(step))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), f"act_{self.member}s": self.act_sampler.state_dict(),
                f"eval_{self.member}s": self.eval_sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.act_sampler.load_state_dict(state[f"act_{self.member}s"])
        self.eval_sampler.load_state_dict(state[f"eval_{self.member}s"])


class SlotEnsemble(EnsembleAgent):
    """Members stored as slots of one replica-stacked network: slot ``r·K + k`` is member k of replica r. One
    batched forward computes every member, and every slot is a batched-product slice (bitwise the same alone or
    among others). Records read a replica's members through ``replica_view`` as ``[R, K, ...]``; gradient
    clipping is per replica over its K slots together."""

    #: θ⁻ holds K slots per replica too (i-DQN's K targets) rather than one network (EauDeQN's shared target)
    target_slots: ClassVar[bool] = False

    def member_stream(self, k: int) -> str:
        """The random stream member k of a replica is initialised from: member 0 from ``init``, as DQN's θ."""
        return "init" if k == 0 else f"init-{k}"

    def build_network(self, obs_shape: Sequence[int], generators: Sequence[torch.Generator]) -> QNetwork:
        slot_generators = [torch_generator(s, self.member_stream(k)) for s in self.seeds for k in range(self.K)]
        return super().build_network(obs_shape, slot_generators)

    def q_values(self, network: QNetwork, obs: torch.Tensor) -> torch.Tensor:
        """Q-values ``[R, K, B, A]`` of the K slots of each replica for observations ``[R, B, ...]``."""
        return slots(network(obs.repeat_interleave(self.K, dim=0)), self.K)

    def member_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q_values(self.online, obs.unsqueeze(1))[:, :, 0]

    def clip_gradients(self, max_norm: float) -> torch.Tensor:
        """Per-replica clipping over each replica's K slots together."""
        return clip_grad_norm_per_replica(self.trainable_parameters(), max_norm, rows_per_replica=self.K)

    def replica_view(self, network: QNetwork) -> dict[str, torch.Tensor]:
        """The online network's tensors (and θ⁻'s where it holds K slots) as ``[R, K, ...]``: a replica's members
        in slot order. Row ``r`` of such a state-dict tensor is a slot, not replica r."""
        state = network.state_dict()
        if network is self.online or (self.target_slots and network is self.target_rule.target):
            return {k: slots(v, self.K) for k, v in state.items()}
        return state
