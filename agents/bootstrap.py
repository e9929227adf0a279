"""Bootstrap rules: how the next-state value in the TD target y = r + γ(1−d)·v(s') is formed."""
from __future__ import annotations

import torch

__all__ = ["BootstrapRule", "MaxBootstrap", "DoubleBootstrap", "td_target", "BOOTSTRAP_RULES"]


class BootstrapRule:
    """Maps next-state Q-values ``[R, B, A]`` to next-state values ``[R, B]``."""

    name = "base"
    #: whether the online network's next-state Q-values are needed (double Q-learning's argmax)
    needs_online_next = False

    def __call__(self, q_next_target: torch.Tensor, q_next_online: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


class MaxBootstrap(BootstrapRule):
    """v(s') = max_a' Q_θ⁻(s', a')  (Mnih et al. 2015)."""

    name = "max"

    def __call__(self, q_next_target: torch.Tensor, q_next_online: torch.Tensor | None = None) -> torch.Tensor:
        return q_next_target.max(dim=-1).values


class DoubleBootstrap(BootstrapRule):
    """v(s') = Q_θ⁻(s', argmax_a' Q_θ(s', a'))  (van Hasselt, Guez, Silver 2016)."""

    name = "double"
    needs_online_next = True

    def __call__(self, q_next_target: torch.Tensor, q_next_online: torch.Tensor | None = None) -> torch.Tensor:
        assert q_next_online is not None, "double bootstrap needs the online next-state Q-values"
        greedy = q_next_online.argmax(dim=-1, keepdim=True)
        return q_next_target.gather(-1, greedy).squeeze(-1)


def td_target(reward: torch.Tensor, terminated: torch.Tensor, next_value: torch.Tensor, gamma: float) -> torch.Tensor:
    """y = r + γ(1−d)·v(s'). ``terminated`` is true termination only: time-limit truncation still bootstraps."""
    return reward + gamma * (1.0 - terminated.to(reward.dtype)) * next_value


BOOTSTRAP_RULES: dict[str, type[BootstrapRule]] = {"max": MaxBootstrap, "double": DoubleBootstrap}
