"""Q-networks built from replica-stacked layers: a trunk φ and one or more linear heads sharing it.

Several heads on one trunk is what iS-QL needs (head 0 its target); DQN uses a single head.

``layer_norm=True`` puts a LayerNorm after every hidden layer — each convolution and each hidden dense layer,
between the layer and its ReLU, never after the head — where the iS-QL authors' ``DQNNet`` places it (Flax
``nn.LayerNorm``; over the channels at each position after a convolution). Off, the networks are exactly what
they were before the option existed: same modules, parameters, state-dict keys and arithmetic.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from agents.nn.layers import BatchedConv2d, BatchedLayerNorm, BatchedLinear

__all__ = ["QNetwork", "build_q_network", "ARCHITECTURES"]

#: a family's default is in its record (``FamilyFacts.network``); agents know no family by name
ARCHITECTURES = ("mlp", "minatar-cnn", "nature-cnn")


class _MLPTrunk(nn.Module):
    def __init__(self, in_dim: int, hidden: Sequence[int], generators: Sequence[torch.Generator],
                 layer_norm: bool = False) -> None:
        super().__init__()
        dims = [in_dim, *hidden]
        self.layers = nn.ModuleList(BatchedLinear(a, b, generators) for a, b in zip(dims[:-1], dims[1:]))
        if layer_norm:  # registered only when on: without it the module tree is what it always was
            self.norms = nn.ModuleList(BatchedLayerNorm(b, generators) for b in dims[1:])
        self.out_dim = dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2)
        # .forward, not __call__: no hooks are ever registered on these layers, and __call__'s dispatch costs
        # several µs per layer, which dominates acting at batch size 1.
        if "norms" in self._modules:
            for layer, norm in zip(self.layers, self.norms):
                x = torch.relu(norm.forward(layer.forward(x)))
            return x
        for layer in self.layers:
            x = torch.relu(layer.forward(x))
        return x


class _ConvTrunk(nn.Module):
    """Convolutions (channels, kernel, stride) then one hidden fully connected layer."""

    def __init__(self, obs_shape: Sequence[int], convs: Sequence[tuple[int, int, int]], hidden: int,
                 generators: Sequence[torch.Generator], layer_norm: bool = False) -> None:
        super().__init__()
        c, h, w = obs_shape
        layers = []
        for out_c, k, s in convs:
            conv = BatchedConv2d(c, out_c, k, s, generators)
            layers.append(conv)
            c, h, w = out_c, conv.output_size(h), conv.output_size(w)
        self.convs = nn.ModuleList(layers)
        self.fc = BatchedLinear(c * h * w, hidden, generators)
        if layer_norm:  # see _MLPTrunk: registered only when on
            self.conv_norms = nn.ModuleList(BatchedLayerNorm(conv.out_channels, generators, dim=2)
                                            for conv in layers)
            self.fc_norm = BatchedLayerNorm(hidden, generators)
        self.out_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if "fc_norm" in self._modules:
            for conv, norm in zip(self.convs, self.conv_norms):
                x = torch.relu(norm.forward(conv.forward(x)))
            return torch.relu(self.fc_norm.forward(self.fc.forward(x.flatten(2))))
        for conv in self.convs:  # .forward: see _MLPTrunk.forward
            x = torch.relu(conv.forward(x))
        return torch.relu(self.fc.forward(x.flatten(2)))


class QNetwork(nn.Module):
    """R replicas of ``obs -> trunk -> num_heads linear heads -> Q-values``.

    Observations come in as ``[R, B, *obs_shape]`` of any dtype and are scaled by ``obs_scale`` (1/255 for
    Atari frames). All heads are held in one layer whose output columns are grouped by head, so head h's
    weights are ``head.weight[:, :, h*A:(h+1)*A]``.
    """

    def __init__(self, trunk: nn.Module, num_actions: int, num_heads: int, generators: Sequence[torch.Generator],
                 obs_scale: float = 1.0, architecture: str = "mlp", layer_norm: bool = False) -> None:
        super().__init__()
        self.trunk = trunk
        self.num_actions, self.num_heads = num_actions, num_heads
        self.head = BatchedLinear(trunk.out_dim, num_actions * num_heads, generators)
        self.obs_scale = obs_scale
        self.architecture = architecture
        self.layer_norm = layer_norm

    @property
    def num_replicas(self) -> int:
        return self.head.weight.shape[0]

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """Trunk output ``[R, B, F]``."""
        x = obs.to(torch.float32)
        if self.obs_scale != 1.0:
            x = x * self.obs_scale
        return self.trunk.forward(x)

    def heads_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """All heads' Q-values ``[R, B, H, A]`` from trunk features."""
        q = self.head.forward(features)
        return q.view(*q.shape[:2], self.num_heads, self.num_actions)

    def all_heads(self, obs: torch.Tensor) -> torch.Tensor:
        """All heads' Q-values ``[R, B, H, A]``."""
        return self.heads_from_features(self.features(obs))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Q-values ``[R, B, A]`` of the last head (the only one for single-head networks)."""
        return self.all_heads(obs)[:, :, -1]

    def act_values(self, obs: torch.Tensor) -> torch.Tensor:
        """``forward`` without autograd, for acting and evaluation (the cheapest way to one Q-value row)."""
        # torch._C._set_grad_enabled is what torch.no_grad does underneath, minus ~5 µs of context-manager cost.
        previous = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)
        try:
            return self.forward(obs)
        finally:
            torch._C._set_grad_enabled(previous)

    def replica_parameters(self, replica: int) -> list[torch.Tensor]:
        """Views of one replica's parameters, in ``named_parameters`` order."""
        return [p[replica] for p in self.parameters()]


def build_q_network(architecture: str, obs_shape: Sequence[int], num_actions: int,
                    generators: Sequence[torch.Generator], *, hidden_sizes: Sequence[int] = (120, 84),
                    num_heads: int = 1, obs_scale: float = 1.0, layer_norm: bool = False) -> QNetwork:
    """Build a replica-stacked Q-network; ``len(generators)`` is the number of replicas R.

    ``mlp``: hidden ReLU layers of ``hidden_sizes`` (CleanRL's 120-84 by default); ``minatar-cnn``: conv 16@3×3
    then FC 128 (MinAtar paper); ``nature-cnn``: conv 32@8×8/4, 64@4×4/2, 64@3×3/1, FC 512 (Mnih et al. 2015).
    ``layer_norm``: a LayerNorm between every hidden layer and its ReLU (see the module docstring).
    """
    if architecture == "mlp":
        trunk: nn.Module = _MLPTrunk(int(math.prod(obs_shape)), list(hidden_sizes), generators, layer_norm)
    elif architecture == "minatar-cnn":
        trunk = _ConvTrunk(obs_shape, [(16, 3, 1)], 128, generators, layer_norm)
    elif architecture == "nature-cnn":
        trunk = _ConvTrunk(obs_shape, [(32, 8, 4), (64, 4, 2), (64, 3, 1)], 512, generators, layer_norm)
    else:
        raise ValueError(f"unknown network {architecture!r}; allowed: {', '.join(ARCHITECTURES)}")
    return QNetwork(trunk, num_actions, num_heads, generators, obs_scale, architecture, layer_norm)
