"""Typed config fields: declare, parse, check and describe a setting, with one error format.

Every setting TargetBench validates -- an agent config field, a training-loop setting (``train.KEY``), an
environment option (``env.KEY``), a suite file's numbers -- is a :class:`Field`: a type, a default, a help text
and an allowed range. On a dataclass a field is declared with :func:`spec`; :func:`fields_of` reads them back.
Values arrive either as text (``--set KEY=VALUE``, a YAML scalar turned into text: :meth:`Field.parse`) or as
Python values (an options dict, a YAML number: :meth:`Field.check`); both end in the same range check.

Every bad value or key is a :class:`ConfigError` with one line in one of these forms::

    KEY=VALUE is not valid; allowed: TYPE OR CHOICES
    KEY=VALUE is out of range; allowed: [a, b)        (an unbounded side is open: "(0, inf)")
    unknown config key 'KEY' for OWNER; allowed: KEY1, KEY2, ...

Cross-field rules (``batch_size`` above ``buffer_size`` ...) use :func:`bad_value` with their own problem text
in the same ``KEY=VALUE PROBLEM; allowed: ...`` shape. This module is the bottom layer: it imports nothing from
the project, so ``agents/`` and ``suite/`` both build on it.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping, Sequence

__all__ = ["ConfigError", "Field", "spec", "fields_of", "parse_value", "describe_type", "describe_fields",
           "bad_value", "unknown_key", "resolve", "check_fields", "NO_NEUTRAL", "identity_view"]


class _NoNeutral:
    """Marker: the field has no neutral value, so every value of it is part of a trial's identity."""

    def __repr__(self) -> str:
        return "NO_NEUTRAL"


NO_NEUTRAL: Any = _NoNeutral()


class ConfigError(ValueError):
    """A config key or value is not allowed. The message is one line."""


def bad_value(key: str, value: Any, problem: str, allowed: str) -> ConfigError:
    """``KEY=VALUE PROBLEM; allowed: ALLOWED`` -- the one shape of a bad-value message."""
    return ConfigError(f"{key}={value!r} {problem}; allowed: {allowed}")


def unknown_key(key: str, owner: str, allowed: Iterable[str]) -> ConfigError:
    """``unknown config key 'KEY' for OWNER; allowed: ...`` -- the one shape of an unknown-key message."""
    return ConfigError(f"unknown config key {key!r} for {owner}; allowed: {', '.join(allowed)}")


def spec(default: Any, help: str, *, min: float | None = None, max: float | None = None,
         min_exclusive: bool = False, max_exclusive: bool = False, neutral: Any = NO_NEUTRAL,
         identity: bool = True) -> Any:
    """A dataclass field with a help text and an allowed numeric range (read back by :func:`fields_of`).

    Trial identity (the hash that makes stored runs resumable and matchable) is declared here too:
    ``identity=False`` for a setting that chooses how, not what, is computed (device, threads); ``neutral=V``
    for an option whose value ``V`` leaves the math as it was before the option existed: at ``V`` it is left out
    of the hash, so adding the option changes no stored trial's identity (see :func:`identity_view`)."""
    meta = {"help": help, "min": min, "max": max, "min_exclusive": min_exclusive, "max_exclusive": max_exclusive,
            "neutral": neutral, "identity": identity}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults")
    return dataclasses.field(default=default, metadata=meta)


def describe_type(tp: Any) -> str:
    """The allowed values of type ``tp`` in words: ``float``, ``mse | huber``, ``int | none``, ..."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(str(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join("none" if a is type(None) else describe_type(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"comma-separated {typing.get_args(tp)[0].__name__}s"
    return getattr(tp, "__name__", str(tp))


def _split_optional(tp: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        inner = [a for a in args if a is not type(None)]
        if type(None) in args and len(inner) == 1:
            return inner[0], True
    return tp, False


def parse_value(key: str, tp: Any, raw: Any) -> Any:
    """Convert ``raw`` (a string from ``--set`` or a YAML scalar) to the type ``tp`` (no range check)."""
    origin = typing.get_origin(tp)
    allowed = describe_type(tp)
    text = str(raw).strip()
    try:
        if origin in (typing.Union, types.UnionType):
            args = typing.get_args(tp)
            if type(None) in args and (raw is None or text.lower() in ("none", "null", "")):
                return None
            for alternative in (a for a in args if a is not type(None)):  # the first that parses wins
                try:
                    return parse_value(key, alternative, raw)
                except ConfigError:
                    continue
            raise ValueError
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
    raise bad_value(key, raw, "is not valid", allowed)


def _check_typed(tp: Any, value: Any) -> tuple[bool, Any]:
    """(ok, normalised value) for a Python value (not text) of type ``tp``: bools are not numbers, numpy
    scalars become Python ones, an integral float is an int."""
    tp, optional = _split_optional(tp)
    if value is None:
        return optional, None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):  # e.g. int | Literal["auto"]: the first that fits wins
        for alternative in typing.get_args(tp):
            ok, norm = _check_typed(alternative, value)
            if ok:
                return ok, norm
        return False, None
    if origin is Literal:
        return (value in typing.get_args(tp) and not isinstance(value, bool)), value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False, None
        items = [_check_typed(typing.get_args(tp)[0], v) for v in value]
        return all(ok for ok, _ in items), tuple(v for _, v in items)
    if tp is bool:
        return (True, bool(value)) if isinstance(value, (bool, _np_bool())) else (False, None)
    if isinstance(value, (bool, _np_bool())):  # True as a step count is almost surely a mistake
        return False, None
    if tp is int:
        if isinstance(value, numbers.Integral):
            return True, int(value)
        if isinstance(value, numbers.Real) and float(value).is_integer():
            return True, int(value)
        return False, None
    if tp is float:
        return (True, float(value)) if isinstance(value, numbers.Real) else (False, None)
    if tp is str:
        return isinstance(value, str), value
    return isinstance(value, tp), value


def _np_bool() -> type:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return bool
    return np.bool_


def _range_text(lo: float | None, hi: float | None, lo_x: bool, hi_x: bool) -> str:
    # An unbounded side is open: "(0, inf)", never "(0, inf]".
    left = "(" if lo_x or lo is None else "["
    right = ")" if hi_x or hi is None else "]"
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    return f"{left}{lo_s}, {hi_s}{right}"


@dataclass(frozen=True)
class Field:
    """One typed setting: ``type`` (a Python type, ``X | None``, ``Literal[...]`` or ``tuple[X, ...]``), default,
    help text and an allowed numeric range (``min``/``max``, each inclusive unless ``*_exclusive``)."""

    name: str
    type: Any
    default: Any = None
    help: str = ""
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    neutral: Any = NO_NEUTRAL
    identity: bool = True

    def in_identity(self, value: Any) -> bool:
        """Whether ``value`` of this field is part of a trial's identity (see :func:`spec`)."""
        if not self.identity:
            return False
        return self.neutral is NO_NEUTRAL or value != self.neutral

    def allowed(self) -> str:
        """The allowed values: the type in words, then the range where there is one."""
        tp, optional = _split_optional(self.type)
        text = describe_type(tp)
        if self.min is not None or self.max is not None:
            text += " in " + self.range_text()
        return f"none or {text}" if optional else text

    def range_text(self) -> str:
        """The allowed range as an interval, ``[1, inf)``."""
        return _range_text(self.min, self.max, self.min_exclusive, self.max_exclusive)

    def bound_text(self) -> str:
        """The allowed values in words, ``an integer >= 1``, ``a number in [0, 1]`` (for flags and suite files)."""
        tp, _ = _split_optional(self.type)
        kind = {int: "an integer", float: "a number", bool: "true or false"}.get(tp, describe_type(tp))
        lo, hi = self.min, self.max
        if lo is not None and hi is not None:
            return f"{kind} in {self.range_text()}"
        if lo is not None:
            return f"{kind} {'>' if self.min_exclusive else '>='} {lo:g}"
        if hi is not None:
            return f"{kind} {'<' if self.max_exclusive else '<='} {hi:g}"
        return kind

    def check_range(self, value: Any, key: str | None = None) -> None:
        """Raise :class:`ConfigError` (``is out of range``) when a number lies outside the declared range."""
        if value is None or isinstance(value, (str, tuple, bool)):
            return
        lo, hi = self.min, self.max
        bad = not math.isfinite(value)
        if lo is not None:
            bad |= value <= lo if self.min_exclusive else value < lo
        if hi is not None:
            bad |= value >= hi if self.max_exclusive else value > hi
        if bad:
            raise bad_value(key or self.name, value, "is out of range", self.range_text())

    def parse(self, raw: Any, key: str | None = None) -> Any:
        """Text (``--set``, a YAML scalar) to a checked value of this field."""
        value = parse_value(key or self.name, self.type, raw)
        self.check_range(value, key)
        return value

    def check(self, value: Any, key: str | None = None) -> Any:
        """A Python value to a checked, normalised value of this field (``np.int64(7)`` -> ``7``; ``"5"`` for an
        int field, ``True`` for a number and ``1`` for a bool are errors)."""
        ok, norm = _check_typed(self.type, value)
        if not ok:
            raise bad_value(key or self.name, value, "is not valid", describe_type(self.type))
        self.check_range(norm, key)
        return norm

    def describe(self) -> dict[str, Any]:
        """Name, type, default, help and allowed values (the field rows of ``targetbench agents --json`` and the
        option rows of ``targetbench envs --json``)."""
        return {"name": self.name, "type": describe_type(self.type), "default": self.default, "help": self.help,
                "allowed": self.allowed()}


def fields_of(cls: type) -> dict[str, Field]:
    """The :class:`Field` of each field of dataclass ``cls`` (declared with :func:`spec`), by name, in order."""
    return dict(_fields_of(cls))


@functools.cache
def _fields_of(cls: type) -> tuple[tuple[str, Field], ...]:
    hints = typing.get_type_hints(cls)  # resolves the string annotations of ``from __future__ import annotations``
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        default = f.default if f.default is not dataclasses.MISSING else None
        out.append((f.name, Field(f.name, hints[f.name], default, meta.get("help", ""), meta.get("min"),
                                  meta.get("max"), bool(meta.get("min_exclusive")), bool(meta.get("max_exclusive")),
                                  meta.get("neutral", NO_NEUTRAL), meta.get("identity", True))))
    return tuple(out)


def identity_view(values: Mapping[str, Any], fields: Mapping[str, Field]) -> dict[str, Any]:
    """``values`` without the entries that are not part of a trial's identity: fields declared
    ``identity=False`` and fields at their ``neutral`` value. Keys without a field are kept."""
    return {k: v for k, v in values.items() if k not in fields or fields[k].in_identity(v)}


def describe_fields(cls: type) -> list[dict[str, Any]]:
    """Name, type, default and help of each field of dataclass ``cls`` (for ``targetbench agents``)."""
    return [f.describe() for f in fields_of(cls).values()]


def check_fields(obj: Any, prefix: str = "") -> None:
    """Range-check every field of dataclass instance ``obj`` (keys in messages are ``prefix + name``)."""
    for name, f in fields_of(type(obj)).items():
        f.check_range(getattr(obj, name), prefix + name)


def resolve(cls: type, defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None, *, owner: str,
            prefix: str = "") -> Any:
    """An instance of dataclass ``cls`` from ``defaults`` with ``overrides`` (text or typed values, keys without
    ``prefix``) parsed in, every field range-checked. An unknown key names ``owner`` and the allowed keys."""
    fields = fields_of(cls)
    values = dict(defaults)
    for key, raw in (overrides or {}).items():
        if key not in fields:
            raise unknown_key(prefix + key, owner, [prefix + k for k in fields])
        values[key] = parse_value(prefix + key, fields[key].type, raw)
    obj = cls(**values)
    check_fields(obj, prefix)
    return obj

