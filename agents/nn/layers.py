"""Layers whose parameters carry a leading replica dimension R.

Both layers reduce to ``torch.baddbmm`` over the replica dimension. Batched matrix products compute each
replica's slice with the same kernel whatever the batch holds, so a replica's forward and backward passes are
bitwise identical alone or among others (checked in tests). Grouped convolutions do not have this property
on CPU (their weight gradients differ in the last bits), which is why the convolution is written as
im2col (``unfold``) followed by a batched product. ``BatchedLayerNorm`` normalises each row on its own
(``F.layer_norm`` without affine) and applies per-replica scale and shift elementwise, so it keeps the property.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BatchedLinear", "BatchedConv2d", "BatchedLayerNorm"]


def _uniform_stack(shape: tuple[int, ...], bound: float, generators: Sequence[torch.Generator]) -> torch.Tensor:
    # One draw per replica from that replica's own generator: init of replica r depends on seed r only.
    return torch.stack([(torch.rand(shape, generator=g) * 2.0 - 1.0) * bound for g in generators])


class BatchedLinear(nn.Module):
    """R independent affine maps: ``x[R, B, in] -> x @ W[r] + b[r]`` for each replica r.

    Initialised like ``torch.nn.Linear`` (uniform in ±1/sqrt(fan_in) for weight and bias), drawn per replica.
    """

    def __init__(self, in_features: int, out_features: int, generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(_uniform_stack((in_features, out_features), bound, generators))
        self.bias = nn.Parameter(_uniform_stack((1, out_features), bound, generators))

    @property
    def num_replicas(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class BatchedConv2d(nn.Module):
    """R independent 2-D convolutions without padding: ``x[R, B, C, H, W] -> [R, B, C_out, H', W']``.

    Initialised like ``torch.nn.Conv2d`` (uniform in ±1/sqrt(C·k·k)), drawn per replica.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        fan_in = in_channels * kernel_size * kernel_size
        bound = 1.0 / math.sqrt(fan_in)
        # Stored as [R, C*k*k, C_out], the layout the batched product wants.
        self.weight = nn.Parameter(_uniform_stack((fan_in, out_channels), bound, generators))
        self.bias = nn.Parameter(_uniform_stack((1, out_channels), bound, generators))

    def output_size(self, size: int) -> int:
        return (size - self.kernel_size) // self.stride + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, b, c, h, w = x.shape
        cols = F.unfold(x.reshape(r * b, c, h, w), self.kernel_size, stride=self.stride)  # [R*B, Ckk, L]
        length = cols.shape[-1]
        cols = cols.view(r, b, -1, length).transpose(2, 3).reshape(r, b * length, -1)
        out = torch.baddbmm(self.bias, cols, self.weight)  # [R, B*L, C_out]
        ho, wo = self.output_size(h), self.output_size(w)
        return out.view(r, b, ho, wo, self.out_channels).permute(0, 1, 4, 2, 3)


class BatchedLayerNorm(nn.Module):
    """R independent LayerNorms over one feature axis ``dim`` of ``x[R, B, ...]`` (``-1`` after a dense layer,
    ``2`` — the channels — after a ``BatchedConv2d``), with a learned scale and shift per replica.

    As Flax's ``nn.LayerNorm`` (the iS-QL authors' networks): statistics over the features of one position
    (channels only, per spatial position, after a convolution), epsilon 1e-6, scale initialised to 1 and shift
    to 0 (so building one draws nothing from the replicas' generators and the other layers' init is unchanged).
    """

    EPS = 1e-6

    def __init__(self, num_features: int, generators: Sequence[torch.Generator], dim: int = -1) -> None:
        super().__init__()
        self.num_features, self.dim = num_features, dim
        r = len(generators)
        self.weight = nn.Parameter(torch.ones(r, num_features))
        self.bias = nn.Parameter(torch.zeros(r, num_features))

    @property
    def num_replicas(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Features last (after a convolution this undoes BatchedConv2d's permute: a view, no copy).
        xl = x.movedim(self.dim, -1) if self.dim not in (-1, x.dim() - 1) else x
        y = F.layer_norm(xl, (self.num_features,), eps=self.EPS)
        shape = (self.num_replicas, *([1] * (xl.dim() - 2)), self.num_features)
        y = torch.addcmul(self.bias.view(shape), y, self.weight.view(shape))
        return y.movedim(-1, self.dim) if xl is not x else y
