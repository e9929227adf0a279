"""The environment-family record and ``@register_family``: everything the suite knows about a family, in one place.

A family (classic control, MinAtar, Atari, tabular MDPs, or one from another package) is one module that builds
an :class:`EnvFamily` and registers it::

    @register_family("myfam")
    def my_family() -> EnvFamily:
        return EnvFamily(name="myfam", ...)

(or ``register_family(EnvFamily(...))`` directly). The record holds the family's ids and their options with
validation, its builders (one env, and optionally a vectorised backend for many replicas), state save/restore
hooks, the facts an agent needs (:class:`agents.family_facts.FamilyFacts`: default network, observation scale,
frame stacking), its family-wide agent defaults, training budgets, scheduler cost figures and reference scores.
:mod:`suite.envs.families` only looks records up; it holds no family-specific code. This module imports no
family module, so family modules import it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Sequence

from agents.config import AgentConfig
from agents.fields import NO_NEUTRAL, Field
from agents.family_facts import FamilyFacts

if TYPE_CHECKING:
    import gymnasium as gym

    from suite.protocol import ProtocolPreset

__all__ = [
    "CostFigures",
    "EnvFamily",
    "EnvOption",
    "EnvSpec",
    "MemoryFigures",
    "UnknownEnvError",
    "VectorBackend",
    "register_family",
    "registered_families",
]


@dataclass(frozen=True)
class EnvSpec:
    """Static description of one environment id."""

    id: str
    family: str  # the registered family name, e.g. "classic" | "minatar" | "atari" | "tabular"
    description: str
    default_max_episode_steps: int | None


class UnknownEnvError(ValueError):
    """Raised for an environment id the registry does not know (one-line message)."""


@dataclass(frozen=True)
class EnvOption:
    """One environment option (``--set env.KEY=VALUE``): its kind, default, allowed range or choices and help,
    declared compactly for family records; :meth:`field` gives the typed field (:class:`agents.fields.Field`) that
    parses and checks its values, like every other config value.

    Kinds: ``int``, ``float`` and ``bool`` (with ``lo``/``hi`` for numbers), and ``choice``: one of the names in
    ``choices`` (``EnvOption("choice", "default", choices=("default", "other"))``)."""

    kind: str  # "int" | "float" | "bool" | "choice"
    default: Any
    lo: float | None = None
    hi: float | None = None
    allow_none: bool = False
    help: str = ""
    #: the value at which the option keeps the math it had before it existed (left out of trial identity)
    neutral: Any = NO_NEUTRAL
    #: the allowed names of a ``choice`` option, in the order messages list them
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"EnvOption kind={self.kind!r} is not valid; allowed: {' | '.join(_KINDS)}")
        if self.kind == "choice":
            if not self.choices or any(not isinstance(c, str) or not c for c in self.choices):
                raise ValueError("EnvOption kind='choice' needs choices; allowed: a tuple of non-empty names")
            if self.default not in self.choices and not (self.allow_none and self.default is None):
                raise ValueError(f"EnvOption default={self.default!r} is not one of its choices; allowed: "
                                 f"{' | '.join(self.choices)}")
            if self.lo is not None or self.hi is not None:
                raise ValueError("EnvOption kind='choice' takes no range; allowed: lo=None, hi=None")
        elif self.choices:
            raise ValueError(f"EnvOption kind={self.kind!r} takes no choices; allowed: kind='choice'")

    def field(self, name: str) -> Field:
        """This option as the typed field ``name``."""
        tp = Literal[self.choices] if self.kind == "choice" else _KINDS[self.kind]
        return Field(name, tp | None if self.allow_none else tp, self.default, self.help, self.lo, self.hi,
                     neutral=self.neutral)


_KINDS = {"int": int, "float": float, "bool": bool, "choice": str}


@dataclass(frozen=True)
class CostFigures:
    """Seconds per loop iteration of a group of R seeds, for the scheduler's ``--dry-run`` estimate
    (``suite/scheduler/cost.py``): ``env_a + env_b*R`` per env step, ``update_a + update_b*R`` per DQN update,
    and the typical length of one evaluation episode. The defaults are the classic-control calibration (a cheap
    env and a small MLP); a family that has not been measured can keep them."""

    env_a: float = 1.35e-4
    env_b: float = 2.7e-5
    update_a: float = 1.2e-3
    update_b: float = 2.4e-4
    eval_episode_steps: int = 200


@dataclass(frozen=True)
class MemoryFigures:
    """Host-memory figures of a family for the estimate that refuses a group that cannot fit
    (``suite/memory.py``). The defaults are classic control's (a small env, short episodes); a family that has
    not been measured can keep them.

    Attributes:
        env_bytes: one environment instance (CartPole: 5 KiB measured; an ALE emulator with its frame buffers
            and frame-stack wrapper: a few MiB), rounded up.
        side_pool_fraction: fraction of replay slots whose true next observation lives in the replay's side
            pool (episode ends; with frame stacking also the key frames of episode starts): about two over the
            shortest typical episode (CartPole under a random policy ~22 steps).
    """

    env_bytes: int = 16 * 1024
    side_pool_fraction: float = 0.1


@dataclass(frozen=True)
class VectorBackend:
    """A family's numpy-vectorised replica stepper (used by :class:`suite.envs.ReplicaEnvs` from
    ``min_replicas(env_id)`` replicas on), bit-identical to the per-env envs.

    ``make(env_id, seeds, options)`` returns an object with ``num_actions``, ``observation_space``,
    ``reset(seeded=)``, ``step(actions)``, ``reset_indices(indices)``, ``get_state()``, ``set_state(data)``.
    Its state is stored as ``{"kind": kind, **get_state()}``; ``load_into_envs`` puts such a state into
    per-env envs and ``from_env_states`` converts the per-env layout (see ``ReplicaEnvs``) into it, so a
    checkpoint taken with either backend resumes with either."""

    kind: str
    make: Callable[[str, Sequence[int], dict[str, Any]], Any]
    min_replicas: Callable[[str], int]
    load_into_envs: Callable[[list[gym.Env], dict[str, Any]], None]
    from_env_states: Callable[[list[list[dict[str, Any]]], Any], dict[str, Any]]


def _no_layer_state(layer: gym.Env) -> dict[str, Any] | None:
    return None


def _no_layer_load(layer: gym.Env, data: dict[str, Any]) -> bool:
    return False


@dataclass(frozen=True)
class EnvFamily:
    """Everything the suite knows about one environment family.

    Ids:
        ``resolve(env_id)`` returns the :class:`EnvSpec` of an id this family owns, None for an id that is
        not this family's, and raises ValueError (its message is the reason) for an id of this family's form
        that is not valid. ``listed`` are the entries ``targetbench envs`` shows (fixed ids, documented
        examples and patterns); ``known`` the texts naming the accepted ids in error messages;
        ``candidates(env_id)`` the ids a "did you mean" hint may suggest (default: the listed ids).
    Options:
        ``options`` is the schema of ``env.KEY`` options; ``option_defaults(spec)`` fills defaults that depend
        on the id; ``check_options(env_id, resolved)`` raises ValueError (one line) for a bad combination.
    Building:
        ``make(env_id, options)`` builds one env (``make_env`` wraps it in ``BenchEnvWrapper``);
        ``clip_rewards(options)`` says whether training rewards are sign-clipped; ``vector`` is an optional
        vectorised backend for many replicas.
    State:
        ``save_layer(layer)`` returns the data-only state of a wrapper or base env this family owns (None
        for others), ``load_layer(layer, data)`` restores it (False for a layer it does not own). Layers with
        ``get_state``/``set_state`` methods, ``TimeLimit`` and ``BenchEnvWrapper`` need no hook.
    Agents and budgets:
        ``facts`` (network, observation scale, frame stacking) go to the agent as plain data;
        ``agent_defaults`` replace ``AgentConfig`` defaults (fields every agent has; checked at construction)
        for every agent on this family (an agent's own per-family entries, keyed by family name, still win); ``train_defaults`` replace ``TrainConfig``
        defaults (``steps``, ``eval_every``, ``eval_episodes`` ...); ``costs`` feed the scheduler's estimate and
        ``memory`` the memory estimate (replay layout: ``facts.frame_stack``).
    Protocol:
        ``protocol(env_id, options)`` returns protocol fields (:mod:`suite.protocol`) this family adds or
        replaces: its step unit, a named protocol's score definition. None: the defaults (env steps, final
        greedy evaluation). ``presets`` are the family's named published protocols
        (:class:`suite.protocol.ProtocolPreset`), selected by its ``protocol`` option (a ``choice`` option whose
        choices are exactly the preset names): each fixes env options, training and evaluation settings and the
        score definition (:func:`suite.trial.build_trial` applies it).
    Evaluation:
        ``eval_options(options)`` returns the options evaluation envs are built with (None: the same as training;
        Atari plays whole games in evaluation even where a lost life ends a training episode).
    Analysis:
        ``reference_scores`` is the CSV (columns env, random, reference, kind, source) of the reference scores
        that normalise this family's returns; None where they ship in ``analysis/reference/scores.csv``.
    """

    name: str
    description: str
    resolve: Callable[[str], EnvSpec | None]
    options: Mapping[str, EnvOption]
    make: Callable[[str, dict[str, Any]], gym.Env]
    listed: tuple[EnvSpec, ...] = ()
    known: tuple[str, ...] = ()
    candidates: Callable[[str], Sequence[str]] | None = None
    option_defaults: Callable[[EnvSpec], Mapping[str, Any]] | None = None
    check_options: Callable[[str, dict[str, Any]], None] | None = None
    clip_rewards: Callable[[dict[str, Any]], bool] | None = None
    vector: VectorBackend | None = None
    save_layer: Callable[[gym.Env], dict[str, Any] | None] = _no_layer_state
    load_layer: Callable[[gym.Env, dict[str, Any]], bool] = _no_layer_load
    facts: FamilyFacts | None = None
    agent_defaults: Mapping[str, Any] = field(default_factory=dict)
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    costs: CostFigures = field(default_factory=CostFigures)
    memory: MemoryFigures = field(default_factory=MemoryFigures)
    reference_scores: Path | None = None
    protocol: Callable[[str, dict[str, Any]], Mapping[str, Any]] | None = None
    presets: Mapping[str, ProtocolPreset] = field(default_factory=dict)
    eval_options: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name != self.name.strip():
            raise ValueError(f"family name {self.name!r} is not valid; allowed: a non-empty name without '/'")
        if self.facts is None:
            object.__setattr__(self, "facts", FamilyFacts(self.name))
        elif self.facts.name != self.name:
            raise ValueError(f"family {self.name!r} has facts for {self.facts.name!r}")
        for spec in self.listed:
            if spec.family != self.name:
                raise ValueError(f"family {self.name!r} lists {spec.id!r} as family {spec.family!r}")
        if self.presets:
            option = self.options.get("protocol")
            if option is None or option.kind != "choice" or set(option.choices) != set(self.presets):
                raise ValueError(f"family {self.name!r} has protocol presets {sorted(self.presets)} but no env option "
                                 "'protocol' choosing among exactly them")
            for name, preset in self.presets.items():
                unknown = sorted(set(preset.env) - set(self.options))
                if preset.name != name or unknown:
                    raise ValueError(f"family {self.name!r}: protocol {name!r} is not valid (named {preset.name!r}, "
                                     f"unknown env options {unknown})")
        # Family-wide defaults are for the fields every agent has; an agent's own knobs per family belong in its
        # config's FAMILY_DEFAULTS. Checked here so that a misspelt key fails at registration, not silently.
        shared = AgentConfig.field_names()
        unknown = sorted(set(self.agent_defaults) - set(shared))
        if unknown:
            raise ValueError(f"family {self.name!r}: agent_defaults key {unknown[0]!r} is not an AgentConfig field; "
                             f"allowed: {', '.join(shared)}")

    def suggestions(self, env_id: str) -> Sequence[str]:
        """Ids a "did you mean" hint for ``env_id`` may suggest."""
        if self.candidates is not None:
            return self.candidates(env_id)
        return [s.id for s in self.listed]

    def agent_config(self, config_cls: type, overrides: Mapping[str, Any] | None = None) -> Any:
        """``config_cls`` (an ``AgentConfig`` subclass) resolved for this family, with ``overrides`` applied."""
        return config_cls.for_family(self.name, overrides, base_defaults=self.agent_defaults)


_FAMILIES: dict[str, EnvFamily] = {}


def register_family(family: EnvFamily | str) -> Any:
    """Register an environment family.

    ``register_family(EnvFamily(...))`` registers the record and returns it; ``@register_family("name")`` on a
    function of no arguments that returns the record calls it once and registers the result (the function is
    returned unchanged). Registering another record under a taken name is an error; registering the same one
    again (a module imported twice) is not.
    """
    if isinstance(family, EnvFamily):
        return _add(family)
    if not isinstance(family, str):
        raise TypeError(f"register_family takes an EnvFamily or a name, got {family!r}")

    def decorate(build: Callable[[], EnvFamily]) -> Callable[[], EnvFamily]:
        record = build()
        if not isinstance(record, EnvFamily) or record.name != family:
            raise TypeError(f"@register_family({family!r}) must decorate a function returning EnvFamily(name={family!r})")
        _add(record)
        return build

    return decorate


def _add(record: EnvFamily) -> EnvFamily:
    old = _FAMILIES.get(record.name)
    if old is not None and old != record:
        # A module re-imported (importlib.reload, a test exec) rebuilds an equal record except for fresh
        # function objects: only a record from another module is a clash.
        if _module_of(old) != _module_of(record):
            raise ValueError(f"environment family {record.name!r} is already registered by {_module_of(old)}")
    _FAMILIES[record.name] = record
    return record


def _module_of(record: EnvFamily) -> str:
    return getattr(record.make, "__module__", "?")


def registered_families() -> dict[str, EnvFamily]:
    """The families registered so far, by name, in registration order (use ``suite.envs.list_families``
    to also load the built-in ones and the ``targetbench.envs`` entry points)."""
    return dict(_FAMILIES)
