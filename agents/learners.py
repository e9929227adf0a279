"""Learner backends: what computes an agent's gradients and greedy actions, chosen in one place (``choose``).

Two named backends:

* ``numpy`` — the kernels of ``agents/nn/host_qnet.py``: the gradient of QAgent's TD loss (``mse`` or ``huber``
  on the ``max`` or ``double`` bootstrap) for an ``mlp`` or one-convolution ``minatar-cnn`` network without
  LayerNorm, on the CPU, with a target rule that only copies θ; and argmax_a Q_θ(s, a) for acting.
* ``torch`` — autograd on the agent's own ``loss``; serves every agent.

Either backend only writes the parameters' ``.grad``; value and norm clipping and the optimizer step (any of
``agents/optim.py``'s) run after it, in torch, the same on both. numpy and torch agree to float32 rounding, not
bitwise (other GEMM kernels and summation order), so ``train.kernels=torch`` keeps every agent on torch.

The choice is read from what the agent's parts declare, and the declarations are opt-in: an agent or a target
rule that declares nothing runs on torch, so a new method needs nothing from this module.

* the agent class declares its update's math in ``QAgent.update_math`` (``"td"``: QAgent's own TD update) and
  its acting in ``QAgent.acting`` (``"greedy"``: argmax of the online network); the DQN-family classes declare
  both (``agents/catalog/dqn.py``), the agents that keep QAgent's acting declare ``acting``;
* the target rule declares how θ⁻ moves in ``TargetRule.moves`` (``"copy"``: the hard, soft and no-target rules;
  ``"trained"``: :class:`agents.targets.TrainedTarget`);
* the network says what it is (``HostQNet.unsupported``), the config names the loss, the bootstrap rule its name.

A declaration covers the methods of the class that makes it and of the classes above it: a class below it that
redefines one of the methods the declaration speaks for (:data:`TD_METHODS`, :data:`ACTING_METHODS`,
``TargetRule.MOVE_METHODS``) without declaring again voids it (``declared``). So a subclass of DQN that overrides
``loss`` without saying its math is still QAgent's gets torch, with the method named in the reason.
"""
from __future__ import annotations

import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np
import torch

from agents.nn.host_qnet import HostQNet, td_gradients, worker_pool
from agents.replay import Batch

__all__ = ["Declaration", "declared", "TD_METHODS", "ACTING_METHODS", "Components", "Verdict", "LearnerBackend", "NumpyBackend",
           "TorchBackend", "NumpyLearner", "NUMPY", "TORCH", "BACKENDS", "BackendChoice", "choose"]


class Declaration(NamedTuple):
    """A declared value, or ``None`` with the redefinitions that voided it (``"Class.method"``)."""

    value: Any
    voided_by: tuple[str, ...] = ()


def declared(cls: type, attr: str, methods: Iterable[str]) -> Declaration:
    """``cls.attr`` if no class below the one that declares it redefines any of ``methods``; else ``None`` and
    the redefinitions. The declaring class itself may redefine them: its declaration speaks for its own code.
    A declaration of ``None`` (nothing declared) is ``None`` with no redefinitions."""
    owner = next(k for k in cls.__mro__ if attr in vars(k))
    if getattr(owner, attr) is None:
        return Declaration(None)
    voided = tuple(f"{k.__name__}.{m}" for m in methods
                   for k in [next((k for k in cls.__mro__ if m in vars(k)), owner)] if k not in owner.__mro__)
    return Declaration(None if voided else getattr(cls, attr), voided)


#: The QAgent methods whose work the numpy TD kernel does in their place: ``update_math = "td"`` speaks for them
#: (``update`` runs on either backend, but redefining it may bypass the backend altogether).
TD_METHODS: tuple[str, ...] = ("loss", "next_values", "trainable_parameters", "update")
#: The method ``acting = "greedy"`` speaks for.
ACTING_METHODS: tuple[str, ...] = ("greedy_actions",)


@dataclass(frozen=True)
class Components:
    """An agent's parts as a backend sees them (built by ``QAgent``; networks are the live modules)."""

    agent: str  # class name, for reasons
    device: torch.device
    update_math: Declaration  # "td": QAgent's TD update
    acting: Declaration  # "greedy": argmax_a Q_θ(s, a) of the online network
    loss: str  # config.loss
    bootstrap: str  # bootstrap rule name
    target_rule: str  # target rule name
    target_moves: Declaration  # "copy" or "trained"
    online: torch.nn.Module
    bootstrap_network: torch.nn.Module  # the network the TD target bootstraps from (θ⁻, or θ)


class Verdict(NamedTuple):
    """Whether a backend computes a part exactly, and why (a short phrase either way)."""

    ok: bool
    reason: str


def _voided(what: str, attr: str, d: Declaration) -> str:
    verb = "redefines" if len(d.voided_by) == 1 else "redefine"
    return f"{', '.join(d.voided_by)} {verb} {what} without declaring {attr}"


def _undeclared(owner: str, what: str, attr: str, d: Declaration) -> str:
    """Why a declaration does not allow numpy: voided by a redefinition, not made, or another value."""
    if d.voided_by:
        return _voided(what, attr, d)
    return f"{owner} declares no {attr}" if d.value is None else f"{owner} declares {attr}={d.value!r}"


class LearnerBackend:
    """A way to compute an agent's gradients and greedy actions. ``supports`` and ``supports_acting`` answer from
    ``Components`` alone; ``bind`` makes the object that computes them for one agent."""

    name = "base"

    def supports(self, c: Components) -> Verdict:
        """Whether this backend computes the update's gradient of ``c`` exactly."""
        raise NotImplementedError

    def supports_acting(self, c: Components) -> Verdict:
        """Whether this backend computes ``c``'s greedy actions exactly."""
        raise NotImplementedError


class TorchBackend(LearnerBackend):
    """torch autograd on the agent's own ``loss``, and the agent's own ``greedy_actions``: serves every agent."""

    name = "torch"

    def supports(self, c: Components) -> Verdict:
        return Verdict(True, "torch autograd serves every agent")

    def supports_acting(self, c: Components) -> Verdict:
        return Verdict(True, "torch serves every agent")

    @staticmethod
    def gradients(agent: Any, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The agent's per-replica loss ``[R]`` and metrics, its gradient left in ``.grad``."""
        loss, metrics = agent.loss(batch)
        agent.zero_grad()
        loss.sum().backward()
        return loss, metrics


class NumpyBackend(LearnerBackend):
    """The numpy kernels of ``agents/nn/host_qnet.py`` (see the module docstring for what they serve)."""

    name = "numpy"
    LOSSES = ("mse", "huber")
    BOOTSTRAPS = ("max", "double")

    def _network(self, c: Components) -> str | None:
        if c.device.type != "cpu":
            return f"device {c.device} (the numpy kernels run on the CPU)"
        return HostQNet.unsupported(c.online)

    def supports(self, c: Components) -> Verdict:
        if c.update_math.value != "td":
            why = _undeclared(c.agent, "the update", "update_math", c.update_math)
            return Verdict(False, why + " (numpy computes QAgent's TD update only)")
        if c.loss not in self.LOSSES:
            return Verdict(False, f"loss {c.loss!r} (numpy: {', '.join(self.LOSSES)})")
        if c.bootstrap not in self.BOOTSTRAPS:
            return Verdict(False, f"bootstrap rule {c.bootstrap!r} (numpy: {', '.join(self.BOOTSTRAPS)})")
        if c.target_moves.value != "copy":
            d = c.target_moves
            why = (_undeclared(f"target rule {c.target_rule!r}", "how θ⁻ moves", "moves", d) if d.value is None
                   else f"target rule {c.target_rule!r} moves θ⁻ by {d.value!r}")
            return Verdict(False, why + " (numpy: copy-only target rules)")
        bad = self._network(c) or HostQNet.unsupported(c.bootstrap_network)
        if bad:
            return Verdict(False, bad)
        return Verdict(True, f"QAgent's TD update ({c.loss}, {c.bootstrap} bootstrap), copy-only target rule "
                             f"{c.target_rule!r}, {c.online.architecture} network")

    def supports_acting(self, c: Components) -> Verdict:
        if c.acting.value != "greedy":
            return Verdict(False, _undeclared(c.agent, "acting", "acting", c.acting))
        bad = self._network(c)
        return Verdict(bad is None, bad or f"argmax of the online {c.online.architecture} network")

    @staticmethod
    def bind_actor(online: torch.nn.Module) -> HostQNet:
        """numpy views of ``online``'s parameters, for ``HostQNet.greedy``."""
        return HostQNet(online)

    @staticmethod
    def bind_learner(online: HostQNet | torch.nn.Module, bootstrap_network: torch.nn.Module,
                     row_chunks: Sequence[slice]) -> "NumpyLearner":
        return NumpyLearner(online if isinstance(online, HostQNet) else HostQNet(online),
                            HostQNet(bootstrap_network), row_chunks)


class NumpyLearner:
    """The numpy backend bound to one agent's networks: ``td_gradients`` for every replica, split over a thread
    pool when ``row_chunks`` is given (numpy releases the GIL inside its products and elementwise loops, so the
    slices run in parallel)."""

    def __init__(self, online: HostQNet, bootstrap_network: HostQNet, row_chunks: Sequence[slice]) -> None:
        self.online, self.bootstrap_network, self.row_chunks = online, bootstrap_network, list(row_chunks)
        self._pool: ThreadPoolExecutor | None = None

    def gradients(self, agent: Any, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-replica loss ``[R]`` and ``q_mean``, the gradient written into the online ``.grad``."""
        args = (self.online, self.bootstrap_network, batch.obs.numpy(), batch.action.numpy(), batch.reward.numpy(),
                batch.next_obs.numpy(), batch.terminated.numpy())
        kwargs = {"gamma": agent.config.gamma, "loss": agent.config.loss, "double": agent.bootstrap.name == "double"}
        if not self.row_chunks:
            loss, q_mean = td_gradients(*args, **kwargs)
        else:
            if self._pool is None:
                self._pool = worker_pool(len(self.row_chunks))
                weakref.finalize(self, self._pool.shutdown, wait=False)
            futures = [self._pool.submit(td_gradients, *args, rows=rows, **kwargs) for rows in self.row_chunks]
            parts = [f.result() for f in futures]
            loss, q_mean = (np.concatenate(x) for x in zip(*parts))
        return torch.from_numpy(loss), {"q_mean": torch.from_numpy(q_mean)}


NUMPY, TORCH = NumpyBackend(), TorchBackend()
BACKENDS: dict[str, LearnerBackend] = {b.name: b for b in (NUMPY, TORCH)}


@dataclass(frozen=True)
class BackendChoice:
    """The backends chosen for learning and acting, and why."""

    learner: str  # "numpy" | "torch"
    actor: str  # "numpy" | "torch"
    reason: str

    @property
    def kernels(self) -> str:
        """The public summary (the ``kernels`` tag): ``numpy`` (learning; acting too where it can),
        ``numpy-act`` (acting only) or ``torch``."""
        if self.learner == "numpy":
            return "numpy"
        return "numpy-act" if self.actor == "numpy" else "torch"


def choose(c: Components, kernels: str) -> BackendChoice:
    """The one place that picks backends: with ``kernels="auto"``, numpy for each part it serves exactly
    (``NumpyBackend.supports`` / ``supports_acting``), torch for the rest; ``kernels="torch"``: torch for all."""
    if kernels == "torch":
        return BackendChoice("torch", "torch", "train.kernels=torch")
    learn, act = NUMPY.supports(c), NUMPY.supports_acting(c)
    reason = (f"learning on {'numpy' if learn.ok else 'torch'}: {learn.reason}; "
              f"acting on {'numpy' if act.ok else 'torch'}: {act.reason}")
    return BackendChoice("numpy" if learn.ok else "torch", "numpy" if act.ok else "torch", reason)
