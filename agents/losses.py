"""TD losses, reduced to one value per replica (batch mean), so the summed loss gives each replica its own gradient."""
from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["td_loss", "LOSSES"]

LOSSES = ("mse", "huber")


def td_loss(kind: str, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-replica mean loss ``[R]`` of ``prediction`` vs ``target`` (both ``[R, B]``).

    ``mse``: mean (y − Q)²; ``huber``: Huber with δ = 1 (the Nature DQN error clipping).
    """
    if kind == "mse":
        per_sample = (prediction - target).square()
    elif kind == "huber":
        per_sample = F.huber_loss(prediction, target, reduction="none", delta=1.0)
    else:
        raise ValueError(f"unknown loss {kind!r}; allowed: {', '.join(LOSSES)}")
    return per_sample.mean(dim=-1)
