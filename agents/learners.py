"""Learner backends: what computes an agent's gradients and greedy actions, chosen in one place (``choose``).

Two named backends:

* ``numpy`` — the kernels of ``agents/nn/host_qnet.py``: the gradient of QAgent's TD loss (``mse`` or ``huber``
  on the ``max`` or ``double`` bootstrap) for an ``mlp`` or one-convolution ``minatar-cnn`` network without
  LayerNorm, on the CPU, with a target rule that only copies θ; and argmax_a Q_θ(s, a) for acting.
* ``torch`` — autograd on the agent's own ``loss``; serves every agent. Its :class:`TorchOptions` add mixed
  precision (``amp``: bf16 autocast; fp16 autocast with a per-replica gradient scaler, CUDA only) and
  ``torch.compile`` of the update's loss and of acting; either one keeps learning and acting on torch (the numpy
  kernels compute in float32 and are not compiled).

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
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import numpy as np
import torch

from agents.nn.host_qnet import HostQNet, td_gradients, worker_pool
from agents.replay import Batch

__all__ = ["Declaration", "declared", "TD_METHODS", "ACTING_METHODS", "Components", "Verdict", "LearnerBackend",
           "NumpyBackend", "TorchBackend", "NumpyLearner", "NUMPY", "TORCH", "BACKENDS", "BackendChoice", "choose",
           "TorchOptions", "TorchLearner", "AMP_MODES"]


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


#: mixed-precision modes of the torch backend: float32, bfloat16 autocast, float16 autocast with a gradient scaler
AMP_MODES = ("off", "bf16", "fp16")


@dataclass(frozen=True)
class TorchOptions:
    """How the torch backend computes an update: autocast precision and ``torch.compile``.

    ``warn`` receives the one-line warning when compiling fails and the backend falls back to eager."""

    amp: str = "off"
    compile: bool = False
    warn: Callable[[str], None] | None = field(default=None, compare=False)

    @property
    def active(self) -> bool:
        """Whether anything differs from the plain float32 eager path."""
        return self.amp != "off" or self.compile

    def refusal(self, device: torch.device) -> str | None:
        """Why these options cannot run on ``device`` (one line), or ``None``."""
        if self.amp not in AMP_MODES:
            return f"train.amp={self.amp!r} is not valid; allowed: {', '.join(AMP_MODES)}"
        if self.amp == "fp16" and device.type != "cuda":
            return (f"train.amp=fp16 is not available on device {device}; allowed there: off, bf16 (fp16 needs a "
                    "gradient scaler and CUDA's float16 kernels)")
        if self.amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return f"train.amp=bf16 is not available on {torch.cuda.get_device_name(device)}; allowed there: off, fp16"
        return None

    @property
    def reason(self) -> str:
        on = [f"train.amp={self.amp}"] * (self.amp != "off") + ["train.compile=true"] * self.compile
        return f"{' and '.join(on)} {'run' if len(on) > 1 else 'runs'} on the torch backend"


class TorchLearner:
    """The torch backend bound to one agent with :class:`TorchOptions`.

    * ``amp``: the agent's ``loss`` runs under ``torch.autocast`` (bf16, or fp16 on CUDA); the backward pass and
      everything after it (clipping, the optimizer) stay in float32 on the float32 parameters. fp16 multiplies
      each replica's loss by its own scale before the backward pass and divides its gradient by it after: a
      replica whose gradient overflows gets a zero gradient for that update and half the scale (a scaler shared
      by all replicas would let one seed's overflow change the others' updates), and a scale doubles after
      ``GROWTH_INTERVAL`` finite updates in a row, as ``torch.amp.GradScaler`` does.
    * ``compile``: the agent's ``loss`` and the online network's ``act_values`` go through ``torch.compile``;
      when compiling fails (no C++ compiler, an unsupported platform or op) the same call runs eagerly and
      ``warn`` gets one line; ``compile_status`` says which happened (recorded as the run's ``compile`` tag).
    """

    INIT_SCALE, GROWTH_INTERVAL = 2.0 ** 16, 2000

    def __init__(self, agent: Any, options: TorchOptions) -> None:
        self.options = options
        self.device_type = agent.device.type
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(options.amp)
        self.compile_status = "on" if options.compile else "off"
        self._loss: Callable[..., Any] | None = None
        if options.amp == "fp16":
            self.scale = torch.full((agent.num_replicas,), self.INIT_SCALE, device=agent.device)
            self.growth = torch.zeros(agent.num_replicas, dtype=torch.int64, device=agent.device)
        if options.compile:
            self._compile_acting(agent.online)

    # -- torch.compile, with an eager fallback ---------------------------------------------------------------
    def _fallback(self, what: str, exc: BaseException) -> None:
        text = str(exc).strip().splitlines()
        why = f"{type(exc).__name__}: {text[0][:160] if text else ''}"
        if self.compile_status == "on":
            self.compile_status = f"fallback ({why})"
            if self.options.warn is not None:
                self.options.warn(f"warning: torch.compile failed on the {what} ({why}); running eagerly")

    def _compile_acting(self, online: torch.nn.Module) -> None:
        eager = online.act_values
        try:
            compiled = torch.compile(eager)
        except Exception as exc:  # torch.compile refuses up front on platforms dynamo does not support
            self._fallback("acting", exc)
            return
        state = {"call": compiled, "tried": False}

        def act_values(obs: torch.Tensor) -> torch.Tensor:
            if state["tried"]:
                return state["call"](obs)
            state["tried"] = True
            try:
                return compiled(obs)
            except Exception as exc:
                self._fallback("acting", exc)
                state["call"] = eager
                return eager(obs)

        # An instance attribute shadows the method for this network only: every caller of act_values
        # (greedy_actions, evaluation) gets the compiled one.
        online.act_values = act_values

    # -- the update ----------------------------------------------------------------------------------------
    def _forward(self, agent: Any, loss_fn: Callable[..., Any], batch: Batch) -> tuple[torch.Tensor, dict]:
        if self.dtype is None:
            return loss_fn(batch)
        with torch.autocast(self.device_type, dtype=self.dtype):
            return loss_fn(batch)

    def _backward(self, agent: Any, batch: Batch, loss_fn: Callable[..., Any]) -> tuple[torch.Tensor, dict]:
        loss, metrics = self._forward(agent, loss_fn, batch)
        loss = loss.float()
        agent.optimizer.zero_grad()
        if self.options.amp == "fp16":
            (loss * self.scale).sum().backward()
            self._unscale(agent)
        else:
            loss.sum().backward()
        return loss, {k: v.float() for k, v in metrics.items()}

    def _unscale(self, agent: Any) -> None:
        """Divide each replica's gradient by its scale; zero the gradient of replicas that overflowed and adapt
        each scale (halve on overflow, double after ``GROWTH_INTERVAL`` finite updates)."""
        params = [p for p in agent.trainable_parameters() if p.grad is not None]
        r = self.scale.numel()
        finite = torch.ones(r, dtype=torch.bool, device=self.scale.device)
        for p in params:  # rows of one replica are consecutive (QAgent.replica_view)
            rows = p.grad.view(r, -1)
            finite &= torch.isfinite(rows).all(dim=1)
        for p in params:
            rows = p.grad.view(r, -1)
            rows.mul_(torch.where(finite, 1.0 / self.scale, 0.0).unsqueeze(1))
            rows.nan_to_num_(0.0, 0.0, 0.0)
        self.growth = torch.where(finite, self.growth + 1, 0)
        grow = self.growth >= self.GROWTH_INTERVAL
        self.scale = torch.where(finite, torch.where(grow, self.scale * 2.0, self.scale), self.scale * 0.5)
        self.growth = torch.where(grow, 0, self.growth)

    def gradients(self, agent: Any, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The agent's per-replica loss ``[R]`` (float32) and metrics, its gradient left in ``.grad``."""
        if self._loss is not None:
            return self._backward(agent, batch, self._loss)
        if not self.options.compile or self.compile_status != "on":
            self._loss = agent.loss
            return self._backward(agent, batch, self._loss)
        try:  # the first call compiles (forward now, backward at the first backward pass)
            compiled = torch.compile(agent.loss)
            out = self._backward(agent, batch, compiled)
            self._loss = compiled
            return out
        except Exception as exc:
            self._fallback("update", exc)
            self._loss = agent.loss
            return self._backward(agent, batch, self._loss)

    def state_dict(self) -> dict[str, Any]:
        """The fp16 scaler's state (per-replica scales and growth counts); empty otherwise."""
        if self.options.amp != "fp16":
            return {}
        return {"scale": self.scale.cpu(), "growth": self.growth.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state and self.options.amp == "fp16":
            self.scale = state["scale"].to(self.scale.device)
            self.growth = state["growth"].to(self.growth.device)


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


def choose(c: Components, kernels: str, options: TorchOptions | None = None) -> BackendChoice:
    """The one place that picks backends: with ``kernels="auto"``, numpy for each part it serves exactly
    (``NumpyBackend.supports`` / ``supports_acting``), torch for the rest; ``kernels="torch"``, or torch
    ``options`` that are on (mixed precision, compile): torch for all."""
    if kernels == "torch":
        return BackendChoice("torch", "torch", "train.kernels=torch")
    if options is not None and options.active:
        return BackendChoice("torch", "torch", options.reason)
    learn, act = NUMPY.supports(c), NUMPY.supports_acting(c)
    reason = (f"learning on {'numpy' if learn.ok else 'torch'}: {learn.reason}; "
              f"acting on {'numpy' if act.ok else 'torch'}: {act.reason}")
    return BackendChoice("numpy" if learn.ok else "torch", "numpy" if act.ok else "torch", reason)
