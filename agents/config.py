"""Typed agent configuration: dataclasses with per-family defaults, validated at load.

Per-family defaults come in two layers: the family-wide ones (every agent on MinAtar uses RMSProp, ...) are
part of the environment family's record in the suite and arrive as ``base_defaults``; an agent's own knobs
(DQN's target period on MinAtar, ...) sit in its config class's ``FAMILY_DEFAULTS``, keyed by family name, and
win. A family an agent's table does not name gets the field's generic default, so a new family needs no agent
edit.

A config field declares its meaning and its allowed range with :func:`agents.fields.spec` (the typed field layer
shared with the suite's training settings, environment options and suite files); ``validate`` checks every field
and raises :class:`ConfigError` with one line naming the key, the bad value and what is allowed. Step counts are
environment steps per replica throughout.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping

from agents.fields import ConfigError, bad_value, check_fields, describe_fields, parse_value, resolve, spec

__all__ = ["ConfigError", "AgentConfig", "spec", "parse_value", "describe_fields", "OptimizerKind", "HARD_PERIOD",
           "HARD_PERIOD_DEFAULTS"]

#: the optimizers ``agents/optim.py`` implements (the online network's and a trained target's)
OptimizerKind = Literal["adam", "adamw", "rmsprop-centered", "sgd"]

#: DQN's hard-target period C in env steps on classic control (CleanRL's 500)
HARD_PERIOD = 500
#: C on the other families, for every agent whose knob is a hard period (dqn, fr-dqn, eaudeqn): MinAtar 1000
#: updates at one update per env step; Nature DQN 10k updates x 4 env steps; 200 on tabular MDPs
HARD_PERIOD_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "minatar": {"target_period": 1000}, "atari": {"target_period": 40_000}, "tabular": {"target_period": 200}}


@dataclass(frozen=True)
class AgentConfig:
    """Fields every deep Q-learning agent shares. Defaults here are CleanRL's ``dqn.py`` (classic control);
    the environment family's record replaces them family-wide (MinAtar: the MinAtar paper; Atari: Nature DQN),
    passed to :meth:`for_family` as ``base_defaults``. Subclasses may add agent-specific per-family defaults in
    ``FAMILY_DEFAULTS = {"family": {"field": value}}``."""

    network: Literal["auto", "mlp", "minatar-cnn", "nature-cnn"] = spec(
        "auto", "Q-network architecture; auto picks the family's (MLP / MinAtar CNN / Nature CNN)")
    hidden_sizes: tuple[int, ...] = spec((120, 84), "hidden layer widths of the MLP")
    layer_norm: bool = spec(False, "LayerNorm between every hidden layer (dense or conv) and its ReLU, as the "
                                   "iS-QL authors' networks; such networks run on torch kernels")
    gamma: float = spec(0.99, "discount factor", min=0.0, max=1.0, max_exclusive=True)
    optimizer: OptimizerKind = spec(
        "adam", "optimizer of the online network (torch.optim's update rules)")
    learning_rate: float = spec(2.5e-4, "optimizer step size", min=0.0, min_exclusive=True)
    optimizer_eps: float = spec(1e-8, "epsilon of Adam / RMSProp", min=0.0, min_exclusive=True)
    rmsprop_alpha: float = spec(0.95, "RMSProp squared-gradient decay", min=0.0, max=1.0, max_exclusive=True)
    weight_decay: float | None = spec(
        None, "weight decay, torch's per optimizer: decoupled for adamw, added to the gradient (L2) for adam, "
        "rmsprop-centered and sgd; none = torch's default (0.01 for adamw, 0 otherwise)", min=0.0)
    amsgrad: bool = spec(False, "AMSGrad: adam / adamw normalise by the running maximum of the second moment")
    loss: Literal["mse", "huber"] = spec("mse", "TD loss (huber has delta 1)")
    max_grad_norm: float | None = spec(None, "clip each replica's gradient to this L2 norm; none = off",
                                       min=0.0, min_exclusive=True)
    max_grad_value: float | None = spec(None, "clamp every gradient element to [-v, v] (torch's clip_grad_value_; "
                                        "before max_grad_norm when both are set); none = off",
                                        min=0.0, min_exclusive=True)
    buffer_size: int = spec(10_000, "replay capacity (transitions per replica)", min=1)
    batch_size: int = spec(128, "minibatch size per replica", min=1)
    learning_starts: int = spec(10_000, "env steps before the first update", min=0)
    train_frequency: int = spec(10, "one update every this many env steps", min=1)
    epsilon_schedule: Literal["linear", "exponential", "exponential-gap"] = spec(
        "linear", "shape of the epsilon decay: linear; exponential (start·r^t, reaching end when the decay ends); "
        "exponential-gap (end + (start-end)·exp(-t/decay), the PyTorch DQN tutorial's; the decay steps are its "
        "time constant)")
    epsilon_start: float = spec(1.0, "initial exploration epsilon", min=0.0, max=1.0)
    epsilon_end: float = spec(0.05, "final exploration epsilon", min=0.0, max=1.0)
    exploration_fraction: float = spec(0.5, "epsilon reaches its end after this fraction of the run",
                                       min=0.0, max=1.0, min_exclusive=True)
    epsilon_decay_steps: int | None = spec(None, "env steps of the epsilon decay; overrides exploration_fraction",
                                           min=1)
    eval_epsilon: float = spec(0.001, "epsilon of the greedy evaluation policy", min=0.0, max=1.0)

    #: agent-specific defaults per family name (subclasses); the family-wide ones come from the family record
    FAMILY_DEFAULTS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def family_defaults(cls, family: str, base_defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults for ``family``: ``base_defaults`` (the family-wide ones, from the family record), then the
        ``FAMILY_DEFAULTS`` entries for ``family`` merged along the class hierarchy (a subclass's entries win)."""
        merged: dict[str, Any] = dict(base_defaults or {})
        for klass in reversed(cls.__mro__):
            table = klass.__dict__.get("FAMILY_DEFAULTS")
            if table and family in table:
                merged.update(table[family])
        return merged

    @classmethod
    def for_family(cls, family: str, overrides: Mapping[str, Any] | None = None, *,
                   base_defaults: Mapping[str, Any] | None = None) -> "AgentConfig":
        """The config for ``family`` with ``overrides`` (strings from ``--set`` or typed values) applied.

        ``base_defaults`` are the family-wide defaults (``EnvFamily.agent_defaults`` in the suite; the suite's
        ``EnvFamily.agent_config`` passes them); without them only the agent's own per-family entries apply."""
        cfg = resolve(cls, cls.family_defaults(family, base_defaults), overrides, owner=cls.__name__)
        cfg.validate()
        return cfg

    # -- validation ---------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check every field against its declared range, then the cross-field rules."""
        check_fields(self)
        if self.batch_size > self.buffer_size:
            raise bad_value("batch_size", self.batch_size, f"is larger than buffer_size={self.buffer_size}",
                            "batch_size <= buffer_size")
        if self.epsilon_end > self.epsilon_start:
            raise bad_value("epsilon_end", self.epsilon_end, f"is above epsilon_start={self.epsilon_start}",
                            "epsilon_end <= epsilon_start")
        if self.amsgrad and self.optimizer not in ("adam", "adamw"):
            raise bad_value("amsgrad", True, f"is not valid with optimizer={self.optimizer!r}",
                            "optimizer adam | adamw")
        if any(h < 1 for h in self.hidden_sizes) or not self.hidden_sizes:
            raise bad_value("hidden_sizes", self.hidden_sizes, "is not valid", "one or more widths >= 1")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view of the config (tuples become lists) for records and YAML."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
