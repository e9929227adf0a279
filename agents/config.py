"""Typed agent configuration: dataclasses with per-family defaults, validated at load.

Per-family defaults come in two layers: the family-wide ones (every agent on MinAtar uses RMSProp, ...) are
part of the environment family's record in the suite and arrive as ``base_defaults``; an agent's own knobs
(DQN's target period on MinAtar, ...) sit in its config class's ``FAMILY_DEFAULTS``, keyed by family name, and
win. A family an agent's table does not name gets the field's generic default, so a new family needs no agent
edit.

A config field declares its meaning and its allowed range in ``metadata``; ``validate`` checks every field and
raises :class:`ConfigError` with one line naming the key, the bad value and what is allowed. Step counts are
environment steps per replica throughout.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Mapping

__all__ = ["ConfigError", "AgentConfig", "spec", "parse_value", "describe_fields"]


class ConfigError(ValueError):
    """A config key or value is not allowed. The message is one line."""


def spec(default: Any, help: str, *, min: float | None = None, max: float | None = None,
         min_exclusive: bool = False, max_exclusive: bool = False) -> Any:
    """A dataclass field with a help text and an allowed numeric range (checked by ``validate``)."""
    meta = {"help": help, "min": min, "max": max, "min_exclusive": min_exclusive, "max_exclusive": max_exclusive}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata=meta)


def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe_type(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(str(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join("none" if a is type(None) else _describe_type(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"comma-separated {typing.get_args(tp)[0].__name__}s"
    return getattr(tp, "__name__", str(tp))


def parse_value(key: str, tp: Any, raw: Any) -> Any:
    """Convert ``raw`` (a string from ``--set`` or a YAML scalar) to the field type ``tp``."""
    origin = typing.get_origin(tp)
    allowed = _describe_type(tp)
    text = str(raw).strip()
    try:
        if origin in (typing.Union, types.UnionType):
            args = typing.get_args(tp)
            if type(None) in args and (raw is None or text.lower() in ("none", "null", "")):
                return None
            inner = [a for a in args if a is not type(None)]
            return parse_value(key, inner[0], raw)
        if origin is Literal:
            choices = typing.get_args(tp)
            if text not in [str(c) for c in choices]:
                raise ValueError
            return next(c for c in choices if str(c) == text)
        if origin is tuple:
            item_tp = typing.get_args(tp)[0]
            items = raw if isinstance(raw, (list, tuple)) else [s for s in text.strip("()[]").split(",") if s.strip()]
            return tuple(parse_value(key, item_tp, i) for i in items)
        if tp is bool:
            if isinstance(raw, bool):
                return raw
            if text.lower() in ("true", "1", "yes", "on"):
                return True
            if text.lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            if isinstance(raw, bool):
                raise ValueError
            if isinstance(raw, float) and raw.is_integer():
                return int(raw)
            value = float(text.replace("_", ""))  # accepts 1e5 and 100_000
            if not value.is_integer():
                raise ValueError
            return int(value)
        if tp is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(text)
        if tp is str:
            return text
    except (ValueError, StopIteration, OverflowError):
        pass
    else:
        raise ConfigError(f"{key}: unsupported field type {tp!r}")
    raise ConfigError(f"{key}={raw!r} is not valid; allowed: {allowed}")


def describe_fields(cls: type) -> list[dict[str, Any]]:
    """Name, type, default and help of each config field (for ``targetbench agents``)."""
    hints = _type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        out.append({"name": f.name, "type": _describe_type(hints[f.name]), "default": f.default,
                    "help": f.metadata.get("help", "")})
    return out


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
    optimizer: Literal["adam", "adamw", "rmsprop-centered", "sgd"] = spec(
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
        values = cls.family_defaults(family, base_defaults)
        hints = _type_hints(cls)
        names = cls.field_names()
        for key, raw in (overrides or {}).items():
            if key not in names:
                raise ConfigError(f"unknown config key {key!r} for {cls.__name__}; allowed: {', '.join(names)}")
            values[key] = parse_value(key, hints[key], raw)
        cfg = cls(**values)
        cfg.validate()
        return cfg

    # -- validation ---------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check every field against its declared range, then the cross-field rules."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            self._check_range(f, value)
        if self.batch_size > self.buffer_size:
            raise ConfigError(f"batch_size={self.batch_size} is larger than buffer_size={self.buffer_size}; "
                              "allowed: batch_size <= buffer_size")
        if self.epsilon_end > self.epsilon_start:
            raise ConfigError(f"epsilon_end={self.epsilon_end} is above epsilon_start={self.epsilon_start}; "
                              "allowed: epsilon_end <= epsilon_start")
        if self.amsgrad and self.optimizer not in ("adam", "adamw"):
            raise ConfigError(f"amsgrad=True is not valid with optimizer={self.optimizer!r}; "
                              "allowed: optimizer adam | adamw")
        if any(h < 1 for h in self.hidden_sizes) or not self.hidden_sizes:
            raise ConfigError(f"hidden_sizes={self.hidden_sizes} is not valid; allowed: one or more widths >= 1")

    @staticmethod
    def _check_range(f: dataclasses.Field, value: Any) -> None:
        if value is None or isinstance(value, (str, tuple, bool)):
            return
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        lo_x, hi_x = f.metadata.get("min_exclusive"), f.metadata.get("max_exclusive")
        bad = not math.isfinite(value)
        if lo is not None:
            bad |= value <= lo if lo_x else value < lo
        if hi is not None:
            bad |= value >= hi if hi_x else value > hi
        if bad:
            # An unbounded side is open: "(0, inf)", never "(0, inf]".
            left = "(" if lo_x or lo is None else "["
            right = ")" if hi_x or hi is None else "]"
            lo_s = "-inf" if lo is None else f"{lo:g}"
            hi_s = "inf" if hi is None else f"{hi:g}"
            raise ConfigError(f"{f.name}={value!r} is out of range; allowed: {left}{lo_s}, {hi_s}{right}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view of the config (tuples become lists) for records and YAML."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
