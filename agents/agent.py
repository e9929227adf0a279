"""The deep Q-learning agent: a Q-network, a bootstrap rule, a TD loss, a target rule, an optimizer,
ε-greedy exploration and replay, for R seeds at once.

Variants override one method (Dopamine style): ``make_target_rule`` for a new target rule, ``loss`` for a new
objective, ``build_network`` for a new network. Every agent learns through the one ``update``: the loss's
gradient, the target rule's ``before_step``, value and norm clipping, the optimizer step, the target rule's
``after_update``. Parameters carry a leading replica dimension; the summed per-replica loss gives each replica
exactly the gradient it would get alone, and gradient clipping is per replica.
"""
from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from agents.bootstrap import BOOTSTRAP_RULES, BootstrapRule, td_target
from agents.config import AgentConfig
from agents.exploration import (EpsilonGreedy, EpsilonSchedule, ExponentialGapSchedule, ExponentialSchedule,
                                LinearSchedule)
from agents.family_facts import FamilyFacts
from agents.learners import (ACTING_METHODS, NUMPY, TD_METHODS, TORCH, BackendChoice, Components, TorchLearner,
                             TorchOptions, choose, declared)
from agents.losses import td_loss
from agents.nn.host_qnet import chunks
from agents.nn.networks import QNetwork, build_q_network
from agents.optim import FlatOptimizer, OptimizerSettings
from agents.replay import Batch, ReplayBuffer
from agents.seeding import numpy_rng, torch_generator
from agents.targets import TargetRule

__all__ = ["QAgent", "clip_grad_norm_per_replica", "KERNELS"]

#: ``auto``: numpy kernels where they compute the agent's math exactly (``agents/learners.py`` decides);
#: ``torch``: torch autograd for everything
KERNELS = ("auto", "torch")


def clip_grad_norm_per_replica(params: Sequence[torch.nn.Parameter], max_norm: float,
                               rows_per_replica: int = 1) -> torch.Tensor:
    """Scale each replica's gradient to L2 norm at most ``max_norm``, where replica r owns rows
    ``r·k .. r·k + k − 1`` (``k = rows_per_replica``) of every parameter's leading dimension; the norm is taken
    over all of them together. Returns the per-replica norms before clipping ``[R]``."""
    grads = [p.grad for p in params if p.grad is not None]
    k = rows_per_replica
    # Row sums, then elementwise adds in a fixed order: a column reduction over a stacked [P, R] tensor
    # may take a different kernel path for different R and change a replica's last bits.
    sq = torch.zeros(grads[0].shape[0] // k, dtype=grads[0].dtype, device=grads[0].device)
    for g in grads:
        sq = sq + g.reshape(g.shape[0] // k, -1).square().sum(dim=1)
    norms = sq.sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.view(g.shape[0] // k, k, *g.shape[1:]).mul_(scale.view(-1, *([1] * g.dim())))
    return norms


class QAgent:
    """Base agent (bootstrap rule ``max``); subclasses choose the target rule and may change the loss.

    Args:
        config: validated agent config.
        obs_shape, obs_dtype, num_actions: the environment's spaces.
        seeds: one seed per replica; every random stream of replica r derives from ``seeds[r]`` alone.
        family: the environment family's facts (default network, observation scaling, frame stacking), as the
            suite's family record gives them; a bare name means a flat-vector family (``FamilyFacts(name)``: MLP,
            unscaled, no frame stack).
        total_steps: env steps of the run (sets the ε decay when given as a fraction).
        device: torch device for networks and replay.
        kernels: ``auto`` (numpy kernels where eligible, CPU only) or ``torch``; see ``KERNELS``.
        threads: threads that share the replicas of a numpy-kernel update (from ``MIN_REPLICAS_PER_THREAD``
            replicas per thread on); a replica's numbers are the same for any value.
    """

    #: fewer replicas per thread than this and the hand-off costs more than the split saves (CartPole MLP: 4
    #: replicas were slower on 2 threads than on one; 16 are faster, see benchmarks/bench_kernels.py)
    MIN_REPLICAS_PER_THREAD: ClassVar[int] = 4

    Config: ClassVar[type[AgentConfig]] = AgentConfig
    bootstrap_rule: ClassVar[str] = "max"
    agent_name: ClassVar[str] = "unregistered"

    #: Opt-in declarations for the numpy kernels (agents/learners.py); an agent that declares neither runs on
    #: torch autograd, which computes every agent's own ``loss``. ``update_math = "td"``: the update is this
    #: class's TD update (the gradient of ``config.loss`` on the bootstrap rule's target, online parameters only);
    #: ``acting = "greedy"``: ``greedy_actions`` is argmax_a Q_θ(s, a) of the online network. A subclass that
    #: redefines a method a declaration speaks for (``learners.TD_METHODS``, ``learners.ACTING_METHODS``) without
    #: declaring again voids it.
    update_math: ClassVar[str | None] = None
    acting: ClassVar[str | None] = None

    def __init__(self, config: AgentConfig, *, obs_shape: Sequence[int], obs_dtype: np.dtype, num_actions: int,
                 seeds: Sequence[int], family: FamilyFacts | str, total_steps: int, device: torch.device | str = "cpu",
                 kernels: str = "auto", threads: int = 1) -> None:
        if kernels not in KERNELS:
            raise ValueError(f"unknown kernels {kernels!r}; allowed: {', '.join(KERNELS)}")
        self.config = config
        self.seeds = [int(s) for s in seeds]
        self.num_replicas = len(self.seeds)
        self.num_actions = num_actions
        self.facts = family if isinstance(family, FamilyFacts) else FamilyFacts(str(family))
        self.family = self.facts.name
        self.device = torch.device(device)
        self.obs_shape = tuple(obs_shape)
        self.bootstrap: BootstrapRule = BOOTSTRAP_RULES[self.bootstrap_rule]()
        self.use_network(self.build_network(self.obs_shape, [torch_generator(s, "init") for s in self.seeds])
                         .to(self.device))
        self.epsilon: EpsilonSchedule = self.make_schedule(total_steps)
        self.explorer = EpsilonGreedy([numpy_rng(s, "explore") for s in self.seeds], num_actions)
        torch_dtype = torch.from_numpy(np.zeros(0, dtype=obs_dtype)).dtype
        # Atari observations are frame stacks: the buffer keeps one frame per step (8x less memory, exact).
        self.replay = ReplayBuffer(self.num_replicas, config.buffer_size, obs_shape, torch_dtype,
                                   [numpy_rng(s, "replay") for s in self.seeds], self.device,
                                   frame_stack=self.facts.frame_stack)
        self.updates = 0
        self._kernel_choice, self._threads = kernels, threads
        self._torch_options = TorchOptions()
        self._bind_kernels()

    def use_network(self, online: QNetwork) -> None:
        """Make ``online`` θ and build around it, in this order, its optimizer and the target rule (a rule may use
        the optimizer: EauDeQN's pruning masks align with its flat buffer)."""
        self.online = online
        self.optimizer = self.make_optimizer(list(online.parameters()))
        self.target_rule = self.make_target_rule(online)

    # -- components (override points) ---------------------------------------------------------------------
    def build_network(self, obs_shape: Sequence[int], generators: Sequence[torch.Generator]) -> QNetwork:
        return build_q_network(self.architecture(), obs_shape, self.num_actions, generators,
                               hidden_sizes=self.config.hidden_sizes, obs_scale=self.facts.obs_scale,
                               layer_norm=self.config.layer_norm)

    def architecture(self) -> str:
        """The network architecture: the config's, or the family's default when it says ``auto``."""
        return self.config.network if self.config.network != "auto" else self.facts.network

    def make_target_rule(self, online: QNetwork) -> TargetRule:
        """The target rule (built after the optimizer); every registered agent overrides this."""
        raise NotImplementedError

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters the loss trains: θ, and θ⁻ where the target rule is trained by the same loss (SGT2
        joint-td); zeroed before each backward pass and clipped together."""
        return list(self.online.parameters()) + self.target_rule.trainable_parameters()

    def optimizer_settings(self) -> OptimizerSettings:
        """The online optimizer's settings, from the config."""
        cfg = self.config
        return OptimizerSettings(cfg.optimizer, cfg.learning_rate, eps=cfg.optimizer_eps, alpha=cfg.rmsprop_alpha,
                                 weight_decay=cfg.weight_decay, amsgrad=cfg.amsgrad)

    def make_optimizer(self, params: list[torch.nn.Parameter]) -> FlatOptimizer:
        """The online optimizer, over one flat buffer of ``params`` (see ``agents/optim.py`` for why)."""
        return self.optimizer_settings().build(params)

    def make_schedule(self, total_steps: int) -> EpsilonSchedule:
        cfg = self.config
        duration = cfg.epsilon_decay_steps or max(1, int(cfg.exploration_fraction * total_steps))
        kind = {"linear": LinearSchedule, "exponential": ExponentialSchedule,
                "exponential-gap": ExponentialGapSchedule}[cfg.epsilon_schedule]
        return kind(cfg.epsilon_start, cfg.epsilon_end, duration)

    def learner_components(self) -> Components:
        """This agent's parts as the learner backends read them (``agents/learners.py``)."""
        cls, rule = type(self), self.target_rule
        return Components(agent=cls.__name__, device=self.device,
                          update_math=declared(cls, "update_math", TD_METHODS),
                          acting=declared(cls, "acting", ACTING_METHODS),
                          loss=self.config.loss, bootstrap=self.bootstrap.name, target_rule=rule.name,
                          target_moves=declared(type(rule), "moves", rule.MOVE_METHODS),
                          online=self.online, bootstrap_network=rule.network)

    def _bind_kernels(self) -> None:
        """Choose the backends for acting and learning (``learners.choose``) for the current online network and
        target rule, and bind them (tests and variants may swap those after construction; ``_check_kernels``
        re-binds then)."""
        options = self._torch_options
        self._backend = choose(self.learner_components(), self._kernel_choice, options)
        self._host_actor = NUMPY.bind_actor(self.online) if self._backend.actor == "numpy" else None
        self._learner = TorchLearner(self, options) if options.active else TORCH
        if self._backend.learner == "numpy":
            parts = min(max(1, self._threads), self.num_replicas // self.MIN_REPLICAS_PER_THREAD)
            rows = chunks(self.num_replicas, parts) if parts > 1 else []
            self._learner = NUMPY.bind_learner(self._host_actor or self.online, self.target_rule.network, rows)
        self._bound_to = (self.online, self.target_rule)

    def use_torch_options(self, options: TorchOptions) -> None:
        """Mixed precision and ``torch.compile`` for the torch backend (``agents/learners.py``); options that are
        on move learning and acting to torch. ``options.refusal(device)`` says first whether they can run here."""
        self._torch_options = options
        self._bind_kernels()

    @property
    def torch_learner(self) -> TorchLearner | None:
        """The torch backend bound with options (mixed precision, compile), or ``None`` without them."""
        self._check_kernels()
        return self._learner if isinstance(self._learner, TorchLearner) else None

    def _check_kernels(self) -> None:
        if self._bound_to[0] is not self.online or self._bound_to[1] is not self.target_rule:
            self._bind_kernels()

    @property
    def backend(self) -> BackendChoice:
        """The backends that compute learning and acting here, and why (``agents/learners.py``)."""
        self._check_kernels()
        return self._backend

    def uses_host_learning(self) -> bool:
        """Whether the numpy backend computes this agent's gradients (``backend.reason`` says why or why not)."""
        return self.backend.learner == "numpy"

    @property
    def update_threads(self) -> int:
        """Threads a numpy-kernel update splits its replicas over (1: no split, and always 1 for torch kernels)."""
        self._check_kernels()
        return max(1, len(getattr(self._learner, "row_chunks", ())))

    @property
    def kernels(self) -> str:
        """What computes acting and learning here: ``numpy`` (both), ``numpy-act`` (acting only) or ``torch``."""
        return self.backend.kernels

    # -- acting -------------------------------------------------------------------------------------------
    def greedy_actions(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q_θ(s, a) per replica for observations ``[R, *obs_shape]``."""
        self._check_kernels()
        if self._host_actor is not None:
            return self._host_actor.greedy(np.asarray(obs))
        q = self.online.act_values(torch.as_tensor(obs, device=self.device).unsqueeze(1))
        return q[:, 0].argmax(dim=-1).cpu().numpy()

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        """ε-greedy actions ``[R]`` at env step ``step`` (0-based count of steps taken so far).

        The greedy forward pass is skipped when every replica explores at this step (most steps early on):
        the same coins are drawn either way, so the actions are the same."""
        return self.explorer.choose(lambda: self.greedy_actions(obs), self.epsilon(step))

    def observe(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
                terminated: np.ndarray, truncated: np.ndarray | None = None) -> None:
        """Store one transition per replica. ``terminated`` excludes time-limit truncation; ``truncated`` (time
        limit) lets the buffer know where an episode ended without comparing observations."""
        self.replay.add(obs, action, reward, next_obs, terminated,
                        episode_end=None if truncated is None else terminated | truncated)

    # -- learning -----------------------------------------------------------------------------------------
    def after_env_step(self, step: int) -> dict[str, torch.Tensor] | None:
        """Cadence after env step ``step`` (1-based): an update when ``step >= learning_starts`` and
        ``step % train_frequency == 0``, then the target rule's own cadence — not nested in the train check,
        so a target period that is not a multiple of the train frequency is still honoured."""
        cfg = self.config
        metrics = None
        if step >= cfg.learning_starts and step % cfg.train_frequency == 0 and self.replay.size > 0:
            metrics = self.update(self.replay.sample(cfg.batch_size))
        self.target_rule.on_env_step(step)
        return metrics

    def next_values(self, batch: Batch) -> torch.Tensor:
        """v(s') ``[R, B]`` from the bootstrap rule, with no gradient."""
        with torch.no_grad():
            q_next_target = self.target_rule.network(batch.next_obs)
            q_next_online = self.online(batch.next_obs) if self.bootstrap.needs_online_next else None
            return self.bootstrap(q_next_target, q_next_online)

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-replica TD loss ``[R]`` and per-replica diagnostics."""
        y = td_target(batch.reward, batch.terminated, self.next_values(batch), self.config.gamma)
        q = self.online(batch.obs).gather(-1, batch.action.unsqueeze(-1)).squeeze(-1)
        return td_loss(self.config.loss, q, y), {"q_mean": q.detach().mean(dim=1)}

    def zero_grad(self) -> None:
        """Zero the gradient of everything the loss trains (θ, and θ⁻ of a joint target rule)."""
        self.optimizer.zero_grad()
        self.target_rule.zero_grad()

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient step for every replica; returns per-replica metrics ``{name: [R]}``.

        The one update path of every agent: the chosen backend writes the loss's gradient into ``.grad``; the
        target rule's ``before_step`` may change it (EauDeQN masks pruned weights); ``max_grad_value`` clamps and
        ``max_grad_norm`` rescales it (the trainable parameters: θ, and θ⁻ of a joint rule); the optimizer steps;
        the target rule's ``after_update`` moves θ⁻. ``loss`` may return per-replica terms ``[R, K]`` (an
        ensemble's members): their sum is what is differentiated and logged as ``loss``."""
        self._check_kernels()
        loss, metrics = self._learner.gradients(self, batch)  # the chosen backend leaves the gradient in .grad
        self.target_rule.before_step()
        # value clamp, then norm scaling: the scaling (by at most 1) keeps the clamp's bound, and grad_norm is the
        # norm the scaling sees (torch has no order of its own: each is a separate call between backward and step)
        if self.config.max_grad_value is not None:
            self.clip_gradient_values(self.config.max_grad_value)
        if self.config.max_grad_norm is not None:
            metrics["grad_norm"] = self.clip_gradients(self.config.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        loss = loss.detach()
        metrics.update(self.target_rule.after_update(batch, loss))
        metrics["loss"] = loss if loss.dim() == 1 else loss.sum(dim=1)
        return metrics

    def clip_gradients(self, max_norm: float) -> torch.Tensor:
        """Clip each replica's gradient to ``max_norm``; returns the norms before clipping ``[R]``."""
        return clip_grad_norm_per_replica(self.trainable_parameters(), max_norm)

    def clip_gradient_values(self, max_value: float) -> None:
        """Clamp every gradient element to ``[-max_value, max_value]`` (``torch.nn.utils.clip_grad_value_``);
        elementwise, so each replica is clipped on its own."""
        torch.nn.utils.clip_grad_value_(self.trainable_parameters(), max_value)

    # -- records ------------------------------------------------------------------------------------------
    def replica_view(self, network: QNetwork) -> dict[str, torch.Tensor]:
        """``network``'s state dict with every tensor indexed ``[replica, ...]``: the one place that knows how the
        agent lays its replicas out in a network (one row each here). Agents that hold several networks per
        replica in consecutive rows (i-DQN, EauDeQN) override it; the records below read replicas through it."""
        return network.state_dict()

    def replica_params(self, replica: int) -> dict[str, dict[str, torch.Tensor]]:
        """One replica's online (and target, if any) parameters, for per-seed artifacts."""
        nets = {"online": self.online, "target": self.target_rule.target}
        return {name: {k: v[replica].detach().cpu().clone() for k, v in self.replica_view(net).items()}
                for name, net in nets.items() if net is not None}

    def parameter_count(self) -> int:
        """Trained parameters of one replica, the mean of ``replica_parameter_count`` over replicas rounded to an
        integer (the trial's record; the same for every replica unless an agent's size changes per replica)."""
        return int(round(sum(self.replica_parameter_count(r) for r in range(self.num_replicas)) / self.num_replicas))

    def replica_parameter_count(self, replica: int) -> int:
        """Trained parameters of replica ``replica``: its online parameters (every network or slot it holds),
        less θ⁻ where it lives inside the online network and is never trained (``TargetRule.inside_online``),
        plus θ⁻ where it is trained by gradient (``TargetRule.moves == "trained"``). An agent whose size changes
        per replica while it trains overrides this (EauDeQN counts non-zero parameters)."""
        rule, r = self.target_rule, self.num_replicas
        count = sum(p.numel() for p in self.online.parameters()) // r
        if rule.inside_online:
            count -= rule.target_numel() // r
        if rule.moves == "trained":
            count += rule.target_numel() // r
        return count

    def target_bytes(self) -> int:
        """Bytes one replica holds for target parameters beyond its online network."""
        return self.target_rule.target_bytes() // self.num_replicas

    def params_sha256(self) -> list[str]:
        """SHA-256 of each replica's online parameters (float bytes in ``state_dict`` order; an agent with several
        networks per replica hashes them slot by slot)."""
        out = []
        state = self.replica_view(self.online)
        for r in range(self.num_replicas):
            h = hashlib.sha256()
            for name, t in state.items():
                h.update(name.encode())
                h.update(t[r].detach().cpu().contiguous().numpy().tobytes())
            out.append(h.hexdigest())
        return out

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly (tensors and plain data only)."""
        return {"online": self.online.state_dict(), "target_rule": self.target_rule.state_dict(),
                "optimizer": self.optimizer.state_dict(), "explorer": self.explorer.state_dict(),
                "replay": self.replay.state_dict(), "updates": self.updates,
                **({"learner": self.torch_learner.state_dict()} if self.torch_learner is not None else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.online.load_state_dict(state["online"])
        self.target_rule.load_state_dict(state["target_rule"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.explorer.load_state_dict(state["explorer"])
        self.replay.load_state_dict(state["replay"])
        self.updates = int(state["updates"])
        if self.torch_learner is not None:
            self.torch_learner.load_state_dict(state.get("learner") or {})
