"""Suite files: loading and validation.

A suite is a YAML file (read with ``yaml.safe_load``). Built-in suites live in ``suite/specs/<name>.yaml`` and
are named by their file stem (``load_suite("smoke")``); any other path works too. Every problem is a one-line
:class:`suite.errors.UsageError` that names the file, the key and what is allowed.

Schema (only ``name``, ``agents`` and ``envs`` are required; unknown keys are errors)::

    name: classic                    # str, required: [A-Za-z0-9_.-]+
    description: "..."               # str, optional, free text
    experiment: sweep-classic        # str, optional: MLflow experiment (default "sweep-<name>")

    agents: all                      # required, one of:
                                     #   all                   every registered agent (agents.list_agents())
                                     #   [dqn, dqn-soft, ...]  a list of registered names ("all" may be an item)
                                     #   {dqn: {target_period: 500}, dqn-soft: null}
                                     #                         names mapped to per-agent overrides (or null)
    envs: [CartPole-v1, Acrobot-v1]  # required: an env id or a list of them (see `targetbench envs`)
    seeds: [0, 1, 2, 3, 4]           # optional (default [0]): a list of ints, a string "0-4" / "0,1,2",
                                     #   or an int N meaning seeds 0..N-1
    steps: 100000                    # optional: env steps per seed (default: the env family's budget)
    eval:                            # optional, shorthand for train.eval_* overrides
      every: 5000                    #   -> train.eval_every
      episodes: 10                   #   -> train.eval_episodes
      max_steps: 27000               #   -> train.eval_max_steps

    overrides: {learning_starts: 1000, env.repeat_action_probability: 0.25, train.log_every: 500}
                                     # optional: applied to every trial. Keys are routed like `--set`:
                                     #   env.KEY -> environment option, train.KEY -> training loop,
                                     #   anything else -> agent config field. Values are YAML scalars
                                     #   (a list becomes "a,b,c", e.g. hidden_sizes: [64, 64]).
    env_overrides:                   # optional: {ENV_ID: {key: value}} on top of `overrides` for that env
      MountainCar-v0: {exploration_fraction: 0.5}

    variants:                        # optional: named override sets (ablations, sensitivity grids).
      - name: C=100                  #   str, required unless `grid` is given; may contain {key}
                                     #   placeholders filled from the grid point, e.g. "C={target_period}"
        agents: [dqn, double-dqn]    #   optional: restrict this variant to these suite agents (default: all
                                     #   of the suite's agents)
        envs: [CartPole-v1]          #   optional: restrict this variant to these suite envs
        overrides: {target_period: 100}   # optional: fixed overrides of this variant
        grid: {target_period: [100, 500, 2000]}
                                     #   optional: {key: [values]}; the cartesian product gives one variant
                                     #   per point, named by `name` (a template) or "key=value,key=value"
        knob: target_period          #   optional: the override key this sweep varies (default: the grid's key
                                     #   when it has one); sensitivity tables plot the runs against it
        sweep: C                     #   optional: the sweep's short name (default: the knob); the analysis
                                     #   names the method "<agent> <sweep>" (e.g. "dqn C")
      # The mapping form {VARIANT_NAME: {agents:..., envs:..., overrides:...}} is accepted too.
    include_default: false           # optional bool: also run the "default" variant (no variant overrides).
                                     #   Default: true when `variants` is absent, false when it is present.

    resources:                       # optional
      group_size: 0                  #   max seeds batched in one process (0 = auto: from cores and devices)
      num_cpus: 1                    #   ray: CPUs reserved per group (number > 0)
      num_gpus: 0                    #   ray: GPUs per group, fractional allowed (0.25: four groups share a GPU)
    retries: 2                       # optional int >= 0: a failed group is retried this many times (resuming
                                     #   from its checkpoint), then its trials are recorded as failed

The typed scalar keys (``steps``, ``retries``, ``eval.*``, ``resources.*``) are checked by the typed field layer
(:mod:`agents.fields`) through :func:`typed_keys`, the same fields that check ``train.*`` settings and ``sweep``'s
``--group-size`` / ``--num-cpus`` / ``--num-gpus``; ``targetbench sweep --help`` lists them.

Override precedence, lowest first: ``eval`` < ``overrides`` < ``env_overrides[env]`` < per-agent overrides <
variant overrides (fixed, then grid point) < call-time overrides (``run_sweep(overrides=...)``, ``--set``).

Every (variant, agent, env, seed) is a trial; its identity is ``TrialSpec.trial_hash(seed)`` over the resolved
config, so the variant *name* is not part of the identity (it is recorded as the MLflow tag ``variant``). Two
variants that resolve to the same config for the same agent and env are an error.
"""
from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from agents.fields import ConfigError, Field, fields_of, spec
from analysis import record_names
from suite.errors import UsageError

__all__ = ["SuiteSpec", "VariantSpec", "Resources", "load_suite", "parse_suite", "builtin_suites",
           "SPECS_DIR", "stringify", "typed_keys", "typed_keys_help"]

SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"

_TOP_KEYS = {"name", "description", "experiment", "agents", "envs", "seeds", "steps", "eval", "overrides",
             "env_overrides", "variants", "include_default", "resources", "retries"}
_EVAL_KEYS = {"every": "train.eval_every", "episodes": "train.eval_episodes", "max_steps": "train.eval_max_steps"}
_VARIANT_KEYS = {"name", "agents", "envs", "overrides", "grid", "knob", "sweep"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_VARIANT_NAME_RE = re.compile(r"^[^\s/\\]+$")


@dataclass(frozen=True)
class VariantSpec:
    """One named override set, applied to ``agents`` (None = all suite agents) on ``envs`` (None = all). A
    variant of a sweep names the override key it varies (``knob``) and the sweep (``sweep``), so the analysis
    reads the knob's value from the runs' params instead of parsing variant names."""

    name: str
    overrides: dict[str, str] = field(default_factory=dict)
    agents: tuple[str, ...] | None = None
    envs: tuple[str, ...] | None = None
    knob: str | None = None
    sweep: str | None = None


@dataclass(frozen=True)
class Resources:
    """A suite's ``resources``; the same fields check ``sweep``'s ``--group-size``, ``--num-cpus``, ``--num-gpus``."""

    group_size: int = spec(0, "max seeds batched in one process (0 = auto: from cores and devices)", min=0)
    num_cpus: float = spec(1.0, "ray: CPUs reserved per group", min=0, min_exclusive=True)
    num_gpus: float = spec(0.0, "ray: GPUs per group, fractional allowed (0.25: four groups share a GPU)", min=0)


@dataclass(frozen=True)
class SuiteSpec:
    """A validated suite file. ``agents`` maps each agent to its per-agent overrides (strings)."""

    name: str
    path: Path | None
    agents: dict[str, dict[str, str]]
    envs: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    steps: int | None = spec(None, "env steps per seed (default: the env family's budget)", min=1)
    overrides: dict[str, str] = field(default_factory=dict)
    env_overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    variants: tuple[VariantSpec, ...] = (VariantSpec(record_names.DEFAULT_VARIANT),)
    resources: Resources = field(default_factory=Resources)
    retries: int = spec(2, "a failed group is retried this many times, then its trials are recorded as failed",
                        min=0)
    experiment: str | None = None
    description: str = ""

    @property
    def default_experiment(self) -> str:
        return self.experiment or f"sweep-{self.name}"


def builtin_suites() -> list[str]:
    """Names of the built-in suites (``suite/specs/*.yaml``)."""
    return sorted(p.stem for p in SPECS_DIR.glob("*.yaml"))


def load_suite(name_or_path: str | Path) -> SuiteSpec:
    """Load and validate a suite: a built-in name (``smoke``) or a path to a YAML file."""
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith((".yaml", ".yml")) or path.exists()) and _NAME_RE.match(text):
        path = SPECS_DIR / f"{text}.yaml"
        if not path.exists():
            raise UsageError(f"unknown suite {text!r}; allowed: a built-in suite ({', '.join(builtin_suites())}) "
                             "or a path to a .yaml file")
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UsageError(f"suite file {path} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:  # a binary file given by mistake
        raise UsageError(f"suite file {path} is not a UTF-8 text file (byte {exc.start}); allowed: a YAML "
                         "suite file") from None
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        raise UsageError(f"suite file {path} is not valid YAML: {first[:200]}") from None
    return parse_suite(data, path)


def stringify(value: Any) -> str:
    """A YAML scalar (or list) as the string ``--set`` would take."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(stringify(v) for v in value)
    return str(value)


class _Checker:
    def __init__(self, path: Path | None) -> None:
        self.where = f"suite file {path}" if path is not None else "suite"

    def fail(self, key: str, problem: str, allowed: str) -> UsageError:
        return UsageError(f"{self.where}: key '{key}' {problem}; allowed: {allowed}")

    def mapping(self, key: str, value: Any, allowed_keys: set[str] | None = None) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"is {type(value).__name__}", "a mapping")
        if allowed_keys is not None:
            for k in value:
                if k not in allowed_keys:
                    raise self.fail(f"{key}.{k}" if key else str(k), "is unknown", ", ".join(sorted(allowed_keys)))
        return value

    def overrides(self, key: str, value: Any) -> dict[str, str]:
        out = {}
        for k, v in self.mapping(key, value).items():
            if not isinstance(k, str) or not k.strip():
                raise self.fail(f"{key}.{k}", "is not a valid override key", "agent fields, env.KEY or train.KEY")
            if isinstance(v, dict):
                raise self.fail(f"{key}.{k}", "has a mapping value", "a scalar or a list of scalars")
            out[k.strip()] = stringify(v)
        return out

    def str_list(self, key: str, value: Any) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
            raise self.fail(key, "is not a non-empty list of names", "a name or a list of names")
        if len(set(items)) != len(items):
            raise self.fail(key, "has duplicates", "distinct names")
        return items

    def value(self, key: str, fld: Field, value: Any) -> Any:
        """``value`` checked (type and range) against the typed field ``fld``."""
        try:
            return fld.check(value)
        except ConfigError:
            raise self.fail(key, f"is {value!r}", fld.bound_text()) from None


def typed_keys() -> dict[str, Field]:
    """The suite file's typed scalar keys and the fields that check them: ``steps`` and ``retries`` (declared on
    :class:`SuiteSpec`), ``eval.*`` (the training settings' own ``eval_*`` fields) and ``resources.*`` (declared
    on :class:`Resources`). The rest of the schema is structure (names, lists, mappings, overrides)."""
    from suite.trial import TrainConfig  # imported here: suite.trial imports the environment families

    suite, train = fields_of(SuiteSpec), fields_of(TrainConfig)
    out = {"steps": suite["steps"], "retries": suite["retries"]}
    out.update({f"eval.{k}": train[v.removeprefix("train.")] for k, v in _EVAL_KEYS.items()})
    out.update({f"resources.{k}": f for k, f in fields_of(Resources).items()})
    return out


def typed_keys_help() -> str:
    """The typed keys of a suite file and what each allows, for ``targetbench sweep --help``."""
    return "typed keys of a suite file: " + "; ".join(f"{k}: {f.bound_text()}" for k, f in typed_keys().items())


def _registered_agents() -> list[str]:
    from agents import list_agents

    return [a.name for a in list_agents()]


def _known_env(env: str) -> bool:
    from suite.envs import get_spec

    try:
        get_spec(env)
    except (ValueError, KeyError, LookupError):
        return False
    except Exception:
        return False
    return True


def _parse_seeds(chk: _Checker, value: Any) -> tuple[int, ...]:
    """The suite's ``seeds``: an int N means seeds 0..N-1; any other form goes to the one seed parser."""
    from suite.trial import parse_seeds

    allowed = "a list of distinct non-negative ints, a string like '0-4' or '0,1,2', or an int N (seeds 0..N-1)"
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise chk.fail("seeds", f"is {value}", allowed)
        return tuple(range(value))
    if not isinstance(value, (str, list)):
        raise chk.fail("seeds", f"is {value!r}", allowed)
    try:
        return parse_seeds(value, key="seeds")
    except UsageError:
        raise chk.fail("seeds", f"is {value!r}", allowed) from None


def _parse_agents(chk: _Checker, value: Any) -> dict[str, dict[str, str]]:
    registered = _registered_agents()
    allowed = "all, a list of registered agents, or a mapping agent -> overrides; registered: " + ", ".join(registered)
    if value is None:
        raise chk.fail("agents", "is missing", allowed)
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        names: list[str] = []
        for item in value:
            if not isinstance(item, str):
                raise chk.fail("agents", f"has item {item!r}", allowed)
            names.extend(registered if item == "all" else [item])
        entries: dict[str, Any] = {n: None for n in names}
    elif isinstance(value, dict):
        entries = {}
        for k, v in value.items():
            if k == "all":
                for n in registered:
                    entries.setdefault(n, v)
            else:
                entries[k] = v
    else:
        raise chk.fail("agents", f"is {type(value).__name__}", allowed)
    if not entries:
        raise chk.fail("agents", "is empty", allowed)
    out = {}
    for name, over in entries.items():
        if name not in registered:
            raise chk.fail("agents", f"names unknown agent {name!r}", "all or " + ", ".join(registered))
        out[name] = chk.overrides(f"agents.{name}", over)
    return out


def _expand_variant(chk: _Checker, key: str, entry: Any, default_name: str | None,
                    agents: Mapping[str, Any], envs: tuple[str, ...]) -> list[VariantSpec]:
    entry = chk.mapping(key, entry, _VARIANT_KEYS)
    if default_name is not None:
        entry = {"name": default_name, **entry}
    name = entry.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise chk.fail(f"{key}.name", f"is {name!r}", "a non-empty string")
    fixed = chk.overrides(f"{key}.overrides", entry.get("overrides"))
    v_agents = None
    if entry.get("agents") is not None:
        v_agents = []
        for a in chk.str_list(f"{key}.agents", entry["agents"]):
            v_agents.extend(agents if a == "all" else [a])
        for a in v_agents:
            if a not in agents:
                raise chk.fail(f"{key}.agents", f"names {a!r}, which is not one of the suite's agents",
                               ", ".join(agents))
        v_agents = tuple(dict.fromkeys(v_agents))
    v_envs = None
    if entry.get("envs") is not None:
        v_envs = tuple(chk.str_list(f"{key}.envs", entry["envs"]))
        for e in v_envs:
            if e not in envs:
                raise chk.fail(f"{key}.envs", f"names {e!r}, which is not one of the suite's envs", ", ".join(envs))
    grid = chk.mapping(f"{key}.grid", entry.get("grid"))
    knob, sweep = _knob(chk, key, entry, grid, fixed)
    if not grid:
        if name is None:
            raise chk.fail(f"{key}.name", "is missing", "a name (required unless `grid` is given)")
        return [VariantSpec(_check_variant_name(chk, f"{key}.name", name), fixed, v_agents, v_envs, knob, sweep)]
    axes = []
    for gk, values in grid.items():
        if not isinstance(gk, str) or not isinstance(values, list) or not values or any(isinstance(v, dict)
                                                                                       for v in values):
            raise chk.fail(f"{key}.grid.{gk}", "is not a non-empty list of values", "{key: [value, ...]}")
        axes.append([(gk, v) for v in values])
    out = []
    for point in itertools.product(*axes):
        values = {k: stringify(v) for k, v in point}
        if name is None:
            vname = ",".join(f"{k}={v}" for k, v in values.items())
        else:
            try:
                vname = name.format(**{k: v for k, v in point})
            except (KeyError, IndexError, ValueError) as exc:
                raise chk.fail(f"{key}.name", f"has a bad placeholder ({exc})",
                               "{key} placeholders of the grid keys: " + ", ".join(grid)) from None
        out.append(VariantSpec(_check_variant_name(chk, f"{key}.name", vname), {**fixed, **values}, v_agents, v_envs,
                               knob, sweep))
    return out


def _knob(chk: _Checker, key: str, entry: Mapping[str, Any], grid: Mapping[str, Any],
          fixed: Mapping[str, str]) -> tuple[str | None, str | None]:
    """A variant entry's ``knob`` (default: the grid's only key) and ``sweep`` (default: the knob)."""
    knob = entry.get("knob")
    if knob is None and len(grid) == 1:
        knob = next(iter(grid))
    if knob is not None and (not isinstance(knob, str) or knob not in set(grid) | set(fixed)):
        raise chk.fail(f"{key}.knob", f"is {knob!r}", "a key of the variant's grid or overrides: "
                       + (", ".join(map(str, [*grid, *fixed])) or "(none)"))
    sweep = entry.get("sweep", knob)
    if sweep is not None and (not isinstance(sweep, str) or not _VARIANT_NAME_RE.match(sweep)):
        raise chk.fail(f"{key}.sweep", f"is {sweep!r}", "a name without spaces or slashes")
    if sweep is not None and knob is None:
        raise chk.fail(f"{key}.sweep", "is given without a knob", "a `knob` (or a grid with one key) to go with it")
    return knob, sweep


def _check_variant_name(chk: _Checker, key: str, name: str) -> str:
    if not _VARIANT_NAME_RE.match(name):
        raise chk.fail(key, f"is {name!r}", "a name without spaces or slashes")
    return name


def parse_suite(data: Any, path: Path | None = None) -> SuiteSpec:
    """Validate already-loaded YAML ``data`` (``path`` is only used in messages)."""
    chk = _Checker(path)
    top = chk.mapping("", data, _TOP_KEYS) if isinstance(data, dict) else None
    if top is None:
        raise UsageError(f"{chk.where}: the file must be a mapping with keys name, agents, envs, ...; "
                         f"allowed keys: {', '.join(sorted(_TOP_KEYS))}")
    for required in ("name", "agents", "envs"):
        if required not in top:
            raise chk.fail(required, "is missing", "required keys: name, agents, envs")
    name = top["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise chk.fail("name", f"is {name!r}", "letters, digits, '_', '.', '-'")
    for k in ("description", "experiment"):
        if top.get(k) is not None and not isinstance(top[k], str):
            raise chk.fail(k, f"is {type(top[k]).__name__}", "a string")
    agents = _parse_agents(chk, top["agents"])
    envs = tuple(chk.str_list("envs", top["envs"]))
    for env in envs:
        if not _known_env(env):
            raise chk.fail("envs", f"names unknown env {env!r}", "ids listed by `targetbench envs`")
    seeds = _parse_seeds(chk, top["seeds"]) if "seeds" in top else (0,)
    typed = typed_keys()
    steps = chk.value("steps", typed["steps"], top["steps"]) if top.get("steps") is not None else None

    overrides: dict[str, str] = {}
    for ek, ev in chk.mapping("eval", top.get("eval"), set(_EVAL_KEYS)).items():
        overrides[_EVAL_KEYS[ek]] = stringify(chk.value(f"eval.{ek}", typed[f"eval.{ek}"], ev))
    overrides.update(chk.overrides("overrides", top.get("overrides")))
    env_overrides = {}
    for env, over in chk.mapping("env_overrides", top.get("env_overrides")).items():
        if env not in envs:
            raise chk.fail(f"env_overrides.{env}", "is not one of the suite's envs", ", ".join(envs))
        env_overrides[env] = chk.overrides(f"env_overrides.{env}", over)

    raw_variants = top.get("variants")
    variants: list[VariantSpec] = []
    if raw_variants is not None:
        if isinstance(raw_variants, list):
            for i, entry in enumerate(raw_variants):
                variants.extend(_expand_variant(chk, f"variants[{i}]", entry, None, agents, envs))
        elif isinstance(raw_variants, dict):
            for vname, entry in raw_variants.items():
                variants.extend(_expand_variant(chk, f"variants.{vname}", entry, str(vname), agents, envs))
        else:
            raise chk.fail("variants", f"is {type(raw_variants).__name__}",
                           "a list of {name, agents, envs, overrides, grid} or a mapping name -> {...}")
        if not variants:
            raise chk.fail("variants", "is empty", "at least one variant (or leave the key out)")
    include_default = top.get("include_default", raw_variants is None)
    if not isinstance(include_default, bool):
        raise chk.fail("include_default", f"is {include_default!r}", "true or false")
    if include_default:
        variants.insert(0, VariantSpec(record_names.DEFAULT_VARIANT))
    if not variants:
        raise chk.fail("include_default", "is false and there are no variants", "true, or some variants")
    names = [v.name for v in variants]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise chk.fail("variants", f"has the name {dup!r} twice", "distinct variant names")

    res = chk.mapping("resources", top.get("resources"), {f.name for f in dataclasses.fields(Resources)})
    resources = Resources(**{f.name: chk.value(f"resources.{f.name}", typed[f"resources.{f.name}"],
                                               res.get(f.name, f.default)) for f in dataclasses.fields(Resources)})
    retries = chk.value("retries", typed["retries"], top.get("retries", typed["retries"].default))
    return SuiteSpec(name=name, path=path, agents=agents, envs=envs, seeds=seeds, steps=steps, overrides=overrides,
                     env_overrides=env_overrides, variants=tuple(variants), resources=resources, retries=retries,
                     experiment=top.get("experiment"), description=top.get("description") or "")
