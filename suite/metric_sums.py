"""Running sums of a trial group's update metrics between two log points, kept on the device."""
from __future__ import annotations

import torch

__all__ = ["MetricSums"]


class MetricSums:
    """Per-replica running sums of update metrics between log points (no host sync in the hot loop)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        for k, v in metrics.items():
            self.sums[k] = self.sums[k] + v.detach() if k in self.sums else v.detach().clone()
        self.count += 1

    def means(self) -> dict[str, list[float]]:
        out = {k: (v / self.count).tolist() for k, v in self.sums.items()} if self.count else {}
        self.sums, self.count = {}, 0
        return out

    def state_dict(self) -> dict:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "count": self.count}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.sums = {k: v.to(device) for k, v in state["sums"].items()}
        self.count = int(state["count"])
