"""A trial group: one (agent, env, config) with the seeds trained together, fully resolved and hashed.

``--set key=value`` overrides are routed by prefix: ``env.KEY`` to the environment options, ``train.KEY`` to
the training loop, anything else to the agent config. A family's named protocol (``env.protocol``) adds its
settings under the explicit ones and refuses an explicit value that contradicts one it fixes. Every value is
validated here, at load, by the typed field layer (:mod:`agents.fields`): the agent config's fields,
:class:`TrainConfig`'s and the family's environment options are all :class:`agents.fields.Field` s, with one
error format.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

from agents import get_agent
from agents.fields import bad_value, fields_of, identity_view, resolve, spec, unknown_key
from suite.envs import get_family, get_spec, validate_env_options
from suite.errors import UsageError

__all__ = ["TrainConfig", "TrialSpec", "build_trial", "parse_seeds", "parse_overrides", "add_set_argument",
           "override_keys"]

@dataclass(frozen=True)
class TrainConfig:
    """The training loop's settings (all counts are env steps per replica). A family's record replaces the
    defaults it names (``EnvFamily.train_defaults``: step budget, evaluation cadence)."""

    steps: int = spec(500_000, "env steps per seed", min=1)
    eval_every: int = spec(10_000, "evaluate every this many env steps (and always at the end)", min=1)
    eval_episodes: int = spec(10, "episodes per evaluation", min=1)
    eval_max_steps: int = spec(27_000, "cap on one evaluation episode's length", min=1)
    log_every: int = spec(1_000, "aggregate training metrics over this many env steps", min=1)
    checkpoint_every: int = spec(0, "env steps between checkpoints (0 = at every evaluation)", min=0)
    device: str = spec("auto", "torch device: auto, cpu, cuda or cuda:N", identity=False)
    # auto: numpy-kernel agents split their replicas over the cores (bitwise the same for any count); torch
    # agents keep one thread, since with more MKL may split a one-replica matrix product along its inner
    # dimension, which changes the last bits. Resolved by suite/provenance.py, recorded as tag threads_resolved.
    threads: str = spec("auto", "CPU threads: auto (numpy-kernel agents: min(cores, replicas/4), others: 1), or a "
                                "count: numpy-kernel agents split their replicas over them, other agents use them "
                                "as torch intra-op threads (0 = all cores / torch's default)", identity=False)
    # Like device and threads, which code computes the (same) math is not part of a trial's identity; the run
    # records what was used (tag ``kernels``).
    kernels: str = spec("auto", "auto: numpy kernels for MLP/MinAtar-CNN agents with a copy-based target on the CPU "
                                "(agents/nn/host_qnet.py); torch: torch autograd for every agent", identity=False)
    # Mixed precision changes the numbers (bf16 products keep 8 bits of mantissa): part of a trial's identity, except
    # at "off", the float32 math every stored trial was computed with.
    amp: Literal["off", "bf16", "fp16"] = spec("off", "mixed precision of the torch learner's update: off, bf16 (autocast; CPU or CUDA) or fp16 "
                           "(autocast with a per-replica gradient scaler; CUDA only); on, it trains on the torch "
                           "backend", neutral="off")
    # torch.compile agrees with eager to float32 rounding per update (docs/performance.md), as the numpy kernels do:
    # like `kernels`, it chooses how the same math is computed.
    compile: bool = spec(False, "torch.compile the torch learner's update and acting (trains on the torch backend; "
                                "falls back to eager with a one-line warning where compiling fails)", identity=False)
    video_every: int = spec(0, "record one greedy evaluation episode per seed as an mp4 artifact every this many "
                               "evaluations (0 = never)", min=0, identity=False)

    @classmethod
    def for_family(cls, family: str, overrides: Mapping[str, Any]) -> "TrainConfig":
        """The settings for the registered ``family`` with ``overrides`` (``train.KEY`` strings) applied."""
        cfg = resolve(cls, get_family(family).train_defaults, overrides, owner=cls.__name__, prefix="train.")
        cfg.validate()
        if cfg.threads != "auto":
            cfg = dataclasses.replace(cfg, threads=str(int(cfg.threads)))  # "02" and 2 (YAML) are "2"
        return cfg

    def validate(self) -> None:
        """The rules beyond each field's range (checked by :meth:`for_family`): ``kernels`` names a learner path,
        ``threads`` is ``auto`` or a count."""
        from agents.agent import KERNELS  # imported here: agents.agent loads torch, reading settings need not

        if self.kernels not in KERNELS:
            raise bad_value("train.kernels", self.kernels, "is not valid", ", ".join(KERNELS))
        if self.threads != "auto" and not str(self.threads).isdigit():
            raise bad_value("train.threads", self.threads, "is not valid", "auto or an integer >= 0")


def parse_seeds(value: str | int | Sequence[int], *, key: str = "--seed") -> tuple[int, ...]:
    """The one seed parser: ``"0,1,2"``, ``"0-4"``, ``"0-2,5"``, an int, or a list of ints -> seeds in order.

    Duplicates, negatives and an empty set are errors: a one-line :class:`UsageError` naming ``key`` (the flag,
    ``--seed`` or ``--seeds``; a suite file reports its own key)."""
    seeds: list[int] = []
    try:
        if isinstance(value, (list, tuple)):
            if any(isinstance(s, bool) or not isinstance(s, int) for s in value):
                raise ValueError
            seeds = list(value)
        elif isinstance(value, bool):
            raise ValueError
        else:
            for part in str(value).split(","):
                part = part.strip()
                if "-" in part[1:]:
                    lo, hi = part.split("-", 1)
                    seeds.extend(range(int(lo), int(hi) + 1))
                else:
                    seeds.append(int(part))
    except ValueError:
        raise UsageError(f"{key} {value!r} is not valid; allowed: comma-separated non-negative integers "
                         "or a range like 0-4") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise UsageError(f"{key} {value!r} is not valid; allowed: distinct non-negative integers")
    return tuple(seeds)


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """``["lr=1e-3", "env.sticky_action_prob=0"]`` → dict; a missing ``=`` is an error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r} is not valid; allowed: key=value")
        out[key.strip()] = value.strip()
    return out


def override_keys() -> str:
    """The keys ``--set`` takes, read from the typed fields (``train.*``) and the families' options (``env.*``)."""
    from suite.envs import list_families

    envs = "; ".join(f"{fam.name}: {', '.join(fam.options)}" for fam in list_families() if fam.options)
    return (f"agent fields: see `targetbench agents`; train.FIELD: {', '.join(fields_of(TrainConfig))}; "
            f"env.OPTION: {envs}")


class _OnDemand:
    """Text computed when argparse formats ``--help`` (``%(keys)s``), so building a parser loads no family."""

    def __init__(self, make: Any) -> None:
        self._make = make

    def __str__(self) -> str:
        return self._make()


def add_set_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable), its help followed by the keys :func:`override_keys` lists."""
    action = parser.add_argument("--set", action="append", metavar="KEY=VALUE", help=f"{help} (repeatable). %(keys)s")
    action.keys = _OnDemand(override_keys)  # type: ignore[attr-defined]  # argparse fills %(NAME)s from the action


def _canonical_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TrialSpec:
    """Everything that decides a trial group's numbers, resolved and validated."""

    agent: str
    env: str
    family: str
    seeds: tuple[int, ...]
    agent_config: Any
    env_options: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)

    def resolved(self) -> dict[str, Any]:
        """The whole resolved config as plain data, recorded with each run. Train settings that choose how, not
        what, is computed (device, threads, kernels: ``identity=False``) are recorded as tags instead."""
        train_fields = fields_of(TrainConfig)
        return {"agent": self.agent, "env": self.env, "family": self.family,
                "agent_config": self.agent_config.to_dict(), "env_options": dict(self.env_options),
                "train": {k: v for k, v in dataclasses.asdict(self.train).items() if train_fields[k].identity}}

    def identity(self) -> dict[str, Any]:
        """What a trial's hash covers: :meth:`resolved` without the options at their neutral value (declared on
        each field with ``spec(neutral=...)``), so an option added later, at a value that keeps the math as it
        was, changes no stored trial's hash."""
        rec = self.resolved()
        return {**rec,
                "agent_config": identity_view(rec["agent_config"], fields_of(type(self.agent_config))),
                "env_options": identity_view(rec["env_options"], _env_option_fields(self.family)),
                "train": identity_view(rec["train"], fields_of(TrainConfig))}

    def trial_hash(self, seed: int) -> str:
        """Identity of one (agent, env, config, seed) trial: device, thread count and kernels are not part of it."""
        return _canonical_hash({**self.identity(), "seed": int(seed)})

    def group_hash(self) -> str:
        """Identity of the batched group (its seeds in order)."""
        return _canonical_hash({**self.identity(), "seeds": list(self.seeds)})


def _env_option_fields(family: str) -> dict[str, Any]:
    return {name: opt.field(name) for name, opt in get_family(family).options.items()}


def build_trial(agent: str, env: str, seeds: Sequence[int], *, steps: int | None = None,
                overrides: Mapping[str, str] | None = None) -> TrialSpec:
    """Resolve and validate a trial group; every problem becomes a one-line :class:`UsageError`."""
    try:
        agent_spec = get_agent(agent)
        env_spec = get_spec(env)
        agent_over, env_over, train_over = {}, {}, {}
        for key, value in (overrides or {}).items():
            if key.startswith("env."):
                env_over[key[4:]] = value
            elif key.startswith("train."):
                train_over[key[6:]] = value
            else:
                agent_over[key] = value
        if steps is not None:
            train_over["steps"] = steps
        typed_env = _typed_env_options(env, env_over)
        family = get_family(env_spec.family)
        if family.presets:  # a named protocol fixes some settings and proposes others (suite/protocol.py)
            preset = family.presets[typed_env.get("protocol", family.options["protocol"].default)]
            typed_env, agent_over, train_over = preset.apply(
                typed_env, agent_over, train_over, agent_fields=fields_of(agent_spec.config_cls),
                train_fields=fields_of(TrainConfig))
        env_options = validate_env_options(env, typed_env)
        agent_config = family.agent_config(agent_spec.config_cls, agent_over)
        train = TrainConfig.for_family(env_spec.family, train_over)
    except UsageError:
        raise
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    return TrialSpec(agent=agent, env=env, family=env_spec.family, seeds=tuple(int(s) for s in seeds),
                     agent_config=agent_config, env_options=env_options, train=train)


def _typed_env_options(env: str, raw: Mapping[str, str]) -> dict[str, Any]:
    """Parse ``--set env.KEY=VALUE`` strings with the family's option fields (type and range)."""
    options = get_family(get_spec(env).family).options
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in options:
            raise unknown_key(f"env.{key}", env, [f"env.{k}" for k in options])
        out[key] = options[key].field(key).parse(value, f"env.{key}")
    return out
