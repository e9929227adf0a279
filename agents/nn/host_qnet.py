"""Replica-stacked Q-networks evaluated and differentiated in numpy, on the parameters' own memory (CPU).

Why: at the sizes deep Q-learning uses on classic control and MinAtar (batch 32-128, hidden 120-84, or one 3x3
convolution and 128 units) a torch eager update on the CPU is mostly per-operation cost — autograd nodes,
small-matrix kernels, im2col copies — e.g. ~700 µs per DQN update of CartPole's MLP at one replica and ~50 µs
per greedy action. The same arithmetic written out in numpy (forward, TD target, and the short backward of a
ReLU network) is ~250 µs and ~6 µs. The agent uses these kernels only where they compute exactly what its
torch path does: an ``mlp`` or ``minatar-cnn`` network with one head, on the CPU, and the base agent's loss
(the ``numpy`` backend of ``agents/learners.py``, which decides).

Supported networks: ``mlp`` (dense ReLU layers, then the head) and ``minatar-cnn`` (one convolution first, then
dense layers). A convolution is only ever the first layer here, so its input needs no gradient and the backward
pass needs no col2im; deeper convolutional stacks (``nature-cnn``) stay on torch.

Properties (tests/agents/test_host_qnet.py):

* Replica independence: every array op works slice by slice along the replica axis (batched BLAS products,
  elementwise ops, reductions along a within-replica axis), so replica r's numbers are bitwise the same alone
  or among others, and the same for any BLAS thread count or split of the replicas over threads.
* Agreement with torch autograd to float32 rounding (not bitwise: different GEMM kernels and summation order).
* No copies of parameters: the arrays are numpy views of the torch parameters (and gradients), so optimizer
  steps, target copies and ``load_state_dict`` (all in place) are seen at once. Views are re-taken when the
  parameters' storage moved (they move together: ``flatten_parameters``, ``.to()``).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

__all__ = ["HostQNet", "td_gradients", "chunks", "worker_pool", "flushes_denormals"]


@dataclass
class _Trace:
    """What the backward pass needs from a forward pass."""

    cols: np.ndarray | None  # the convolution's input patches [R, B, C*k*k, L] (None without a convolution)
    acts: list[np.ndarray]  # each dense layer's input, then the Q-values [R, B, A]


class HostQNet:
    """numpy views of a replica-stacked ``QNetwork``'s parameters (and gradients), its forward pass and the
    pieces of its backward pass. Dense layer i maps ``[R, B, in] -> [R, B, out]`` by ``x @ W[i] + b[i]`` with a
    ReLU after every layer but the head, as ``agents.nn.networks`` builds it; the convolution is
    ``BatchedConv2d``'s im2col product."""

    def __init__(self, network: torch.nn.Module) -> None:
        if not self.supports(network):
            raise ValueError("HostQNet needs a single-head mlp or minatar-cnn QNetwork with float32 parameters "
                             "on the CPU")
        self.network = network
        self.obs_scale = float(network.obs_scale)
        trunk = network.trunk
        if network.architecture == "minatar-cnn":
            (conv,) = trunk.convs
            self.kernel, self.stride, self.conv_out = conv.kernel_size, conv.stride, conv.out_channels
            layers = [conv, trunk.fc, network.head]
        else:
            self.kernel = self.stride = self.conv_out = 0
            layers = [*trunk.layers, network.head]
        self.has_conv = bool(self.kernel)
        self._params: list[torch.Tensor] = [t for layer in layers for t in (layer.weight, layer.bias)]
        self._first_ptr = -1
        self._refresh()

    @staticmethod
    def supports(network: torch.nn.Module) -> bool:
        """Whether ``network`` is something these kernels compute exactly (see ``unsupported``)."""
        return HostQNet.unsupported(network) is None

    @staticmethod
    def unsupported(network: torch.nn.Module) -> str | None:
        """Why these kernels do not compute ``network`` exactly, or ``None`` when they do: they serve an mlp or
        one-convolution minatar-cnn with one head, no LayerNorm (not written here: such networks stay on torch),
        float32 parameters on the CPU."""
        arch = getattr(network, "architecture", None)
        if arch not in ("mlp", "minatar-cnn"):
            return f"network {arch!r} (numpy: mlp, minatar-cnn)"
        if getattr(network, "num_heads", 0) != 1:
            return f"{getattr(network, 'num_heads', 0)} heads (numpy: one)"
        if getattr(network, "layer_norm", False):
            return "LayerNorm (numpy: none)"
        if arch == "minatar-cnn" and len(network.trunk.convs) != 1:
            return f"{len(network.trunk.convs)} convolutions (numpy: one)"
        params = list(network.parameters())
        if not params or not all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params):
            return "parameters not float32 on the CPU"
        return None

    def _refresh(self) -> None:
        if self._params[0].data_ptr() == self._first_ptr:
            return
        arrays = [p.detach().numpy() for p in self._params]
        self.weights, self.biases = arrays[0::2], arrays[1::2]
        self._first_ptr = self._params[0].data_ptr()

    def gradient_views(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(dW, db)`` numpy views of each layer's ``.grad`` (allocated as zeros where missing), convolution
        first."""
        out = []
        for w, b in zip(self._params[0::2], self._params[1::2]):
            for p in (w, b):
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            out.append((w.grad.numpy(), b.grad.numpy()))
        return out

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        """``x`` as float32 times the network's observation scale (what ``QNetwork.features`` does first)."""
        x = x.astype(np.float32, copy=False)
        return x * np.float32(self.obs_scale) if self.obs_scale != 1.0 else x

    def _im2col(self, obs: np.ndarray) -> np.ndarray:
        """Raw observations ``[R, B, C, H, W]`` -> float32 patches ``[R, B, C*k*k, L]``, rows (c, ki, kj) as
        ``F.unfold`` orders them (so ``BatchedConv2d``'s weight rows apply), positions L = (i, j) innermost.
        Gathered in the observation's own dtype (uint8 for MinAtar: 4x less to move) and converted after."""
        k, s = self.kernel, self.stride
        r, b, c = obs.shape[:3]
        win = np.lib.stride_tricks.sliding_window_view(obs, (k, k), axis=(3, 4))[:, :, :, ::s, ::s]
        return self._scaled(win.transpose(0, 1, 2, 5, 6, 3, 4).reshape(r, b, c * k * k, win.shape[3] * win.shape[4]))

    def _dense(self, x: np.ndarray, first: int, rows: slice, acts: list[np.ndarray] | None = None) -> np.ndarray:
        """Dense layers ``first``.. (ReLU after all but the head) for replicas ``rows``; the Q-values. Each
        layer's output is appended to ``acts`` when given (the backward pass needs them)."""
        last = len(self.weights) - 1
        for i in range(first, last + 1):
            x = np.matmul(x, self.weights[i][rows])
            x += self.biases[i][rows]
            if i < last:
                np.maximum(x, 0.0, out=x)
            if acts is not None:
                acts.append(x)
        return x

    def forward(self, obs: np.ndarray, rows: slice = slice(None)) -> _Trace:
        """The forward pass for replicas ``rows`` (``obs`` ``[R, B, *obs_shape]``, already restricted to them),
        keeping what the backward pass needs."""
        self._refresh()
        obs = np.asarray(obs)
        r, b = obs.shape[:2]
        cols = None
        if self.has_conv:
            cols = self._im2col(obs)
            # W^T [C_out, C*k*k] @ patches [C*k*k, L] per sample gives [C_out, L]: BatchedConv2d's output in the
            # (c_out, i, j) order its flatten feeds the dense layer, with no transpose of the activations.
            z = np.matmul(self.weights[0][rows].transpose(0, 2, 1)[:, None], cols)
            z += self.biases[0][rows].reshape(r, 1, self.conv_out, 1)
            np.maximum(z, 0.0, out=z)
            x = z.reshape(r, b, -1)
        else:
            x = self._scaled(obs.reshape(r, b, -1))
        acts = [x]
        self._dense(x, int(self.has_conv), rows, acts)
        return _Trace(cols, acts)

    def q_values(self, obs: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
        """Q-values ``[R, B, A]`` for observations ``[R, B, *obs_shape]``."""
        return self.forward(obs, rows).acts[-1]

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q(s, a) ``[R]`` for one observation per replica ``[R, *obs_shape]``."""
        if self.has_conv:
            return self.q_values(obs[:, None]).argmax(axis=-1).reshape(-1)
        # MLP acting: ``forward`` without the trace, whose bookkeeping costs more than the math for one observation
        self._refresh()
        x = self._scaled(obs.reshape(obs.shape[0], 1, -1))
        return self._dense(x, 0, slice(None)).argmax(axis=-1).reshape(-1)

    def backward(self, trace: _Trace, grad_q: np.ndarray, rows: slice = slice(None)) -> None:
        """Write d(loss)/d(parameters) of replicas ``rows`` into the ``.grad`` views (overwriting), given
        d(loss)/d(Q-values) ``grad_q`` ``[R, B, A]`` of a forward pass ``trace``."""
        grads = self.gradient_views()
        acts, g = trace.acts, grad_q
        first = 1 if self.has_conv else 0
        for i in range(len(acts) - 2, -1, -1):
            dw, db = grads[first + i]
            np.matmul(acts[i].transpose(0, 2, 1), g, out=dw[rows])
            np.sum(g, axis=1, keepdims=True, out=db[rows])
            if i > 0 or self.has_conv:
                g = np.matmul(g, self.weights[first + i][rows].transpose(0, 2, 1))
                g *= acts[i] > 0  # ReLU: h = max(z, 0), so dz = dh where h > 0
        if self.has_conv:
            r, b = g.shape[:2]
            g = g.reshape(r, b, self.conv_out, -1)  # [R, B, C_out, L]
            dw, db = grads[0]
            # dW^T = sum over samples of g [C_out, L] @ patches^T [L, C*k*k]; stored transposed as [C*k*k, C_out]
            dw[rows] = np.matmul(g, trace.cols.transpose(0, 1, 3, 2)).sum(axis=1).transpose(0, 2, 1)
            db[rows] = g.sum(axis=(1, 3))[:, None, :]


def td_gradients(online: HostQNet, bootstrap_net: HostQNet, obs: np.ndarray, action: np.ndarray,
                 reward: np.ndarray, next_obs: np.ndarray, terminated: np.ndarray, *, gamma: float, loss: str,
                 double: bool, rows: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
    """Write the gradient of each replica's TD loss into ``online``'s ``.grad`` (overwriting) and return the
    per-replica loss and mean Q(s, a), both ``[R]``; the same quantities as ``QAgent.loss`` + ``backward``.

    y = r + γ(1−d)·v(s') with v from ``bootstrap_net`` (θ⁻, or θ for target-free rules) under no gradient:
    max_a' Q_θ⁻(s', a'), or with ``double`` Q_θ⁻(s', argmax_a' Q_θ(s', a')). Loss: batch mean of
    ``mse`` (y − Q)² or ``huber`` (δ = 1). ``rows`` restricts everything to a slice of the replicas (the
    arrays passed in are full-size), so disjoint slices can run on different threads.
    """
    q_next = bootstrap_net.q_values(next_obs[rows], rows)
    if double:
        greedy = online.q_values(next_obs[rows], rows).argmax(axis=-1)
        v_next = q_next.reshape(-1)[_flat_index(greedy, q_next.shape[-1])]
    else:
        v_next = q_next.max(axis=-1)
    rew = reward[rows]
    y = rew + gamma * (1.0 - terminated[rows].astype(rew.dtype)) * v_next

    trace = online.forward(obs[rows], rows)
    q = trace.acts[-1]
    # Q(s, a) and its gradient through flat indices into the contiguous [R, B, A] array (take/put_along_axis
    # build the same index with ~20 µs of Python per call)
    at = _flat_index(action[rows], q.shape[-1])
    q_sa = q.reshape(-1)[at]
    delta = q_sa - y
    batch = delta.shape[1]
    if loss == "mse":
        per_sample = delta * delta
        d_q_sa = delta * np.float32(2.0 / batch)
    elif loss == "huber":
        abs_delta = np.abs(delta)
        per_sample = np.where(abs_delta < 1.0, np.float32(0.5) * delta * delta, abs_delta - np.float32(0.5))
        d_q_sa = np.clip(delta, -1.0, 1.0) * np.float32(1.0 / batch)
    else:
        raise ValueError(f"unknown loss {loss!r}; allowed: mse, huber")
    grad_q = np.zeros_like(q)
    grad_q.reshape(-1)[at] = d_q_sa
    online.backward(trace, grad_q, rows)
    return per_sample.mean(axis=1), q_sa.mean(axis=1)


def _flat_index(index: np.ndarray, num_actions: int) -> np.ndarray:
    """Positions of ``x[r, b, index[r, b]]`` in a contiguous ``x`` of shape ``[R, B, num_actions]``."""
    r, b = index.shape
    return np.arange(0, r * b * num_actions, num_actions).reshape(r, b) + index


def chunks(num_replicas: int, parts: int) -> Sequence[slice]:
    """Split ``range(num_replicas)`` into at most ``parts`` contiguous, nearly equal slices."""
    parts = max(1, min(parts, num_replicas))
    bounds = np.linspace(0, num_replicas, parts + 1).round().astype(int)
    return [slice(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]


def flushes_denormals() -> bool:
    """Whether the calling thread flushes subnormal floats to zero (1e-39 is one in float32)."""
    return torch.tensor([1e-39], dtype=torch.float32).mul(1.0).item() == 0.0


def worker_pool(threads: int) -> ThreadPoolExecutor:
    """Threads for replica slices, with the creating thread's subnormal mode (a per-thread CPU setting that
    changes results), so a slice computes the same numbers on a worker as it would on the caller."""
    flush = flushes_denormals()
    return ThreadPoolExecutor(threads, thread_name_prefix="replicas",
                              initializer=torch.set_flush_denormal, initargs=(flush,))
