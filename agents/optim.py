"""Optimizers over one flat buffer holding every trainable parameter of all replicas.

A per-step optimizer on a dozen small tensors is dominated by per-tensor overhead (the CPU foreach kernels loop
over tensors in Python-visible dispatch): ~170 µs per Adam step for CleanRL's 120-84 MLP at one replica, ~1.3 ms
at 16. Moving the parameters into one contiguous buffer — each ``nn.Parameter`` keeps its shape and becomes a
view of it, and its ``.grad`` a view of one flat gradient buffer that autograd accumulates into — lets the
optimizer run each of its elementwise ops once. Every op is elementwise, so a replica's update does not depend
on how many replicas share the buffer (tests/agents/test_optimizers.py).
"""
from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from agents.config import OptimizerKind

__all__ = ["flatten_parameters", "FlatOptimizer", "OptimizerSettings"]


def flatten_parameters(params: Sequence[torch.nn.Parameter]) -> torch.nn.Parameter:
    """Re-home ``params`` into one flat parameter and return it.

    Afterwards every ``p`` in ``params`` is a view of the returned tensor (same values, same shape) and
    ``p.grad`` a view of its ``.grad``; in-place writes such as ``load_state_dict`` keep the views. Backward
    passes accumulate into the views, so the flat gradient must be zeroed (not set to ``None``) before each.
    """
    params = list(params)
    if not params:
        raise ValueError("no parameters to flatten")
    ref = params[0]
    if any(p.dtype != ref.dtype or p.device != ref.device for p in params):
        raise ValueError("all parameters must share one dtype and device")
    total = sum(p.numel() for p in params)
    data = torch.empty(total, dtype=ref.dtype, device=ref.device)
    grad = torch.zeros(total, dtype=ref.dtype, device=ref.device)
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            data[offset:offset + n].copy_(p.detach().reshape(-1))
            p.data = data[offset:offset + n].view(p.shape)
            p.grad = grad[offset:offset + n].view(p.shape)
            offset += n
    flat = torch.nn.Parameter(data)
    flat.grad = grad
    return flat


#: take square roots through numpy on CPU (see ``_sqrt``); tests flip it to compare with torch.optim bitwise
_NUMPY_SQRT = True


def _sqrt(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Elementwise square root of ``x`` into ``out`` (which may be ``x``). On CPU through numpy: torch's
    vectorised CPU sqrt is ~10x slower on exact zeros (second moments of parameters that get no gradient, e.g.
    behind dead ReLUs) and is not correctly rounded, while numpy uses the correctly rounded instruction."""
    if _NUMPY_SQRT and x.device.type == "cpu":
        np.sqrt(x.numpy(), out=out.numpy())
        return out
    return torch.sqrt(x, out=out)


class FlatOptimizer:
    """Adam, AdamW, centred RMSProp or SGD on one flat parameter (see :func:`flatten_parameters`).

    The update formulas are torch's (``torch.optim.Adam``/``AdamW``/``RMSprop(centered=True)``/``SGD``, no
    momentum), written as a handful of in-place ops on the one buffer so the per-step cost is a few
    elementwise passes; bitwise equal to torch's foreach implementation except that square roots are correctly
    rounded (numpy) where torch's vectorised CPU sqrt is not; every op is elementwise, so a replica's update does
    not depend on how many replicas share the buffer. ``zero_grad`` zeroes the shared gradient buffer in place
    (the per-parameter views need it).

    ``weight_decay`` is torch's for each kind: decoupled for ``adamw`` (θ ← θ·(1 − lr·wd) before the Adam step),
    an L2 term added to the gradient (g + wd·θ, in scratch: the ``.grad`` views keep the raw gradient) for
    ``adam``, ``rmsprop-centered`` and ``sgd``; ``None`` is torch's default (0.01 for ``adamw``, else 0).
    ``amsgrad`` (``adam`` and ``adamw``) normalises by the running maximum of the second moment, as torch does.
    """

    KINDS: tuple[str, ...] = typing.get_args(OptimizerKind)
    #: torch.optim's default ``weight_decay`` where it is not 0 (``weight_decay=None`` picks it)
    DEFAULT_WEIGHT_DECAY = {"adamw": 0.01}
    #: the kinds that take ``amsgrad``
    AMSGRAD_KINDS = ("adam", "adamw")

    def __init__(self, params: Sequence[torch.nn.Parameter], kind: str, lr: float, *, eps: float = 1e-8,
                 betas: tuple[float, float] = (0.9, 0.999), alpha: float = 0.99,
                 weight_decay: float | None = None, amsgrad: bool = False) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown optimizer {kind!r}; allowed: {', '.join(self.KINDS)}")
        if weight_decay is None:
            weight_decay = self.DEFAULT_WEIGHT_DECAY.get(kind, 0.0)
        if not weight_decay >= 0.0:
            raise ValueError(f"weight_decay {weight_decay!r} must be >= 0")
        if amsgrad and kind not in self.AMSGRAD_KINDS:
            raise ValueError(f"amsgrad is for {' | '.join(self.AMSGRAD_KINDS)}, not {kind!r}")
        self.kind, self.lr, self.eps, self.betas, self.alpha = kind, float(lr), float(eps), betas, float(alpha)
        self.weight_decay, self.amsgrad = float(weight_decay), bool(amsgrad)
        self.params = list(params)
        self.flat = flatten_parameters(self.params)
        self.steps = 0
        zeros = lambda: torch.zeros_like(self.flat.data)  # noqa: E731
        # Scratch for the denominator: a fresh multi-MB tensor every step costs page faults (MinAtar CNN: 2M
        # parameters at 16 replicas).
        self._scratch = torch.empty_like(self.flat.data) if kind != "sgd" else None
        # the L2-decayed gradient g + wd·θ: torch computes it out of place too, so .grad keeps the raw gradient
        self._decayed = torch.empty_like(self.flat.data) if self.weight_decay and kind != "adamw" else None
        if kind in ("adam", "adamw"):
            self.buffers = {"exp_avg": zeros(), "exp_avg_sq": zeros()}
            if self.amsgrad:
                self.buffers["max_exp_avg_sq"] = zeros()
        elif kind == "rmsprop-centered":
            self.buffers = {"square_avg": zeros(), "grad_avg": zeros()}
        else:
            self.buffers = {}

    @property
    def defaults(self) -> dict:
        return {"kind": self.kind, "lr": self.lr, "eps": self.eps, "betas": self.betas, "alpha": self.alpha,
                "weight_decay": self.weight_decay, "amsgrad": self.amsgrad}

    def zero_grad(self, set_to_none: bool = False) -> None:  # noqa: ARG002 - views need the buffer kept
        """Zero the flat gradient in place (``set_to_none`` is ignored: the per-parameter views must live)."""
        self.flat.grad.zero_()

    def step(self) -> None:
        """One update of every parameter from the gradients accumulated since ``zero_grad``."""
        # what torch.no_grad does, without the decorator's per-call context object (~5 µs per update)
        previous = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)
        try:
            self._step()
        finally:
            torch._C._set_grad_enabled(previous)

    def _step(self) -> None:
        p, g = self.flat.data, self.flat.grad
        self.steps += 1
        if self._decayed is not None:  # L2 (torch Adam / RMSprop / SGD weight_decay)
            g = torch.add(g, p, alpha=self.weight_decay, out=self._decayed)
        if self.kind in ("adam", "adamw"):
            if self.kind == "adamw" and self.weight_decay:  # decoupled, before the moments (torch.optim.AdamW)
                p.mul_(1 - self.lr * self.weight_decay)
            beta1, beta2 = self.betas
            m, v = self.buffers["exp_avg"], self.buffers["exp_avg_sq"]
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            if self.amsgrad:
                v = torch.maximum(self.buffers["max_exp_avg_sq"], v, out=self.buffers["max_exp_avg_sq"])
            bias1, bias2 = 1 - beta1 ** self.steps, 1 - beta2 ** self.steps
            denom = _sqrt(v, self._scratch).div_(bias2 ** 0.5).add_(self.eps)  # bias2 ** 0.5 as torch.optim.Adam does
            p.addcdiv_(m, denom, value=(self.lr / bias1) * -1)
        elif self.kind == "rmsprop-centered":
            sq, ga = self.buffers["square_avg"], self.buffers["grad_avg"]
            sq.mul_(self.alpha).addcmul_(g, g, value=1 - self.alpha)
            ga.lerp_(g, 1 - self.alpha)
            denom = torch.addcmul(sq, ga, ga, value=-1, out=self._scratch)
            denom = _sqrt(denom, denom).add_(self.eps)
            p.addcdiv_(g, denom, value=-self.lr)
        else:
            p.add_(g, alpha=-self.lr)

    def state_dict(self) -> dict:
        """Step count and moment buffers (copies), keyed by kind."""
        return {"kind": self.kind, "steps": self.steps, **{k: v.clone() for k, v in self.buffers.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved, for the same kind and ``amsgrad`` setting."""
        if state.get("kind") != self.kind:
            raise ValueError(f"optimizer state is for {state.get('kind')!r}, not {self.kind!r}")
        missing = [k for k in self.buffers if k not in state]
        if missing:
            raise ValueError(f"optimizer state lacks {', '.join(missing)} (saved without amsgrad?)")
        self.steps = int(state["steps"])
        for k, v in self.buffers.items():
            v.copy_(state[k])


@dataclass(frozen=True)
class OptimizerSettings:
    """Everything a :class:`FlatOptimizer` is built from but its parameters. ``build`` is the one factory of the
    online network's optimizer and of a trained target's (``agents.targets.TrainedTarget``)."""

    kind: str
    lr: float
    eps: float = 1e-8
    alpha: float = 0.99
    weight_decay: float | None = None
    amsgrad: bool = False

    def build(self, params: Sequence[torch.nn.Parameter]) -> FlatOptimizer:
        """A :class:`FlatOptimizer` over ``params`` with these settings."""
        return FlatOptimizer(params, self.kind, self.lr, eps=self.eps, alpha=self.alpha,
                             weight_decay=self.weight_decay, amsgrad=self.amsgrad)
