"""The replica-stacked MLP Q-network evaluated and differentiated in numpy, on the parameters' own memory.

Why: at the sizes deep Q-learning uses on classic control (batch 128, hidden 120-84) a torch eager update on
the CPU is mostly per-operation cost — autograd nodes, small-matrix kernels, ~40 ops of a few µs each — about
700 µs per DQN update at one replica, and a greedy action ~50 µs. The same arithmetic written out in numpy
(forward, TD target, the two-line backward of a ReLU MLP) is ~250 µs and ~6 µs. The agent uses these kernels
only where they compute exactly what its torch path does: an ``mlp`` network with one head, on the CPU, and the
base agent's loss (see ``QAgent.uses_host_learning``).

Properties (tests/agents/test_host_mlp.py):

* Replica independence: every array op works slice by slice along the replica axis (batched BLAS products,
  elementwise ops, reductions along a within-replica axis), so replica r's numbers are bitwise the same alone
  or among others, and the same for any BLAS thread count.
* Agreement with torch autograd to float32 rounding (not bitwise: different GEMM kernels and summation order).
* No copies of parameters: the arrays are numpy views of the torch parameters (and gradients), so optimizer
  steps, target copies and ``load_state_dict`` (all in place) are seen at once. Views are re-taken if a
  parameter's storage moved.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
import torch

__all__ = ["HostMLP", "td_gradients", "chunks", "worker_pool"]


class HostMLP:
    """numpy views of a replica-stacked MLP ``QNetwork``'s parameters (and gradients) and its forward pass.

    Layer i maps ``[R, B, in] -> [R, B, out]`` by ``x @ W[i] + b[i]``; ReLU after every layer but the last
    (the head), as ``agents.nn.networks`` builds it.
    """

    def __init__(self, network: torch.nn.Module) -> None:
        if not self.supports(network):
            raise ValueError("HostMLP needs a single-head mlp QNetwork with float32 parameters on the CPU")
        self.network = network
        self.obs_scale = float(network.obs_scale)
        self._params: list[torch.Tensor] = list(network.parameters())
        self._first_ptr = -1
        self._refresh()

    @staticmethod
    def supports(network: torch.nn.Module) -> bool:
        """Whether ``network`` is something these kernels compute exactly: mlp, one head, float32, CPU."""
        params = list(network.parameters())
        return (getattr(network, "architecture", None) == "mlp" and getattr(network, "num_heads", 0) == 1
                and bool(params) and all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params))

    def _refresh(self) -> None:
        # Parameters move storage together (flatten_parameters, .to()), so the first one's address is checked
        # on the hot path; every address is compared before re-taking the views.
        if self._params[0].data_ptr() == self._first_ptr:
            return
        arrays = [p.detach().numpy() for p in self._params]
        self.weights, self.biases = arrays[0::2], arrays[1::2]
        self._first_ptr = self._params[0].data_ptr()

    def gradient_views(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(dW, db)`` numpy views of each layer's ``.grad`` (allocated as zeros where missing)."""
        out = []
        for w, b in zip(self._params[0::2], self._params[1::2]):
            for p in (w, b):
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            out.append((w.grad.numpy(), b.grad.numpy()))
        return out

    def inputs(self, obs: np.ndarray) -> np.ndarray:
        """Observations ``[R, B, *obs_shape]`` as the float32 ``[R, B, D]`` the first layer takes."""
        x = np.asarray(obs)
        x = x.reshape(*x.shape[:2], -1)
        x = x.astype(np.float32, copy=False)
        if self.obs_scale != 1.0:
            x = x * np.float32(self.obs_scale)
        return x

    def activations(self, obs: np.ndarray, rows: slice = slice(None)) -> list[np.ndarray]:
        """Every layer's input and the Q-values: ``[x, h1, ..., q]`` for replicas ``rows``."""
        self._refresh()
        acts = [self.inputs(obs)]
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = np.matmul(acts[-1], w[rows])
            z += b[rows]
            if i < last:
                np.maximum(z, 0.0, out=z)
            acts.append(z)
        return acts

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q(s, a) ``[R]`` for one observation per replica ``[R, *obs_shape]`` (acting: the same
        arithmetic as :meth:`q_values`, without its bookkeeping, which costs more than the math at this size)."""
        self._refresh()
        x = obs.reshape(obs.shape[0], 1, -1)
        if x.dtype != np.float32:
            x = x.astype(np.float32)
        if self.obs_scale != 1.0:
            x = x * np.float32(self.obs_scale)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = np.matmul(x, w)
            x += b
            if i < last:
                np.maximum(x, 0.0, out=x)
        return x.argmax(axis=-1).reshape(-1)

    def q_values(self, obs: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
        """Q-values ``[R, B, A]`` for observations ``[R, B, *obs_shape]``."""
        return self.activations(obs, rows)[-1]


def td_gradients(online: HostMLP, bootstrap_net: HostMLP, obs: np.ndarray, action: np.ndarray,
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
        greedy = online.q_values(next_obs[rows], rows).argmax(axis=-1)[..., None]
        v_next = np.take_along_axis(q_next, greedy, axis=-1)[..., 0]
    else:
        v_next = q_next.max(axis=-1)
    rew = reward[rows]
    y = rew + gamma * (1.0 - terminated[rows].astype(rew.dtype)) * v_next

    acts = online.activations(obs[rows], rows)
    q = acts[-1]
    a = action[rows][..., None]
    q_sa = np.take_along_axis(q, a, axis=-1)[..., 0]
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

    grad = np.zeros_like(q)
    np.put_along_axis(grad, a, d_q_sa[..., None], axis=-1)
    grads = online.gradient_views()
    for i in range(len(online.weights) - 1, -1, -1):
        dw, db = grads[i]
        np.matmul(acts[i].transpose(0, 2, 1), grad, out=dw[rows])
        np.sum(grad, axis=1, keepdims=True, out=db[rows])
        if i > 0:
            grad = np.matmul(grad, online.weights[i][rows].transpose(0, 2, 1))
            grad *= acts[i] > 0  # ReLU: h = max(z, 0), so dz = dh where h > 0
    return per_sample.mean(axis=1), q_sa.mean(axis=1)


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
