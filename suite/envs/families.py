"""Environment registry: looks environment ids up in the registered families and builds envs (``make_env``).

It holds the mechanism only; every family-specific fact lives in the family's record
(:class:`suite.envs.family.EnvFamily`, one module per family). Built in, in this order:

* ``classic``  -- gymnasium classic control (:mod:`suite.envs.classic`)
* ``minatar``  -- MinAtar games, ``MinAtar/<game>`` (:mod:`suite.envs.minatar`)
* ``atari``    -- any ale-py game as ``ALE/<Game>-v5`` with Nature-DQN preprocessing (:mod:`suite.envs.atari`)
* ``tabular``  -- finite MDPs, ``tabular/<spec>`` (:mod:`suite.envs.tabular_env`)

Families from other installed packages are found through the entry-point group ``targetbench.envs``: each
entry point names a module (or object) whose import registers its families with
:func:`suite.envs.family.register_family` (as ``targetbench.agents`` does for agents). The family modules
import ale_py / minatar lazily, so importing the registry stays cheap.
"""

from __future__ import annotations

import difflib
import importlib
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.fields import unknown_key
from suite.envs.family import EnvFamily, EnvSpec, UnknownEnvError, registered_families
from suite.envs.wrappers import BenchEnvWrapper

__all__ = [
    "BenchEnvWrapper",
    "ENTRY_POINT_GROUP",
    "EnvSpec",
    "UnknownEnvError",
    "default_env_options",
    "family_of",
    "get_family",
    "get_spec",
    "list_envs",
    "list_families",
    "load_entry_points",
    "make_env",
    "reference_files",
    "validate_env_options",
]

ENTRY_POINT_GROUP = "targetbench.envs"
#: modules of the built-in families, in the order of listings and messages (whatever order they were imported in)
BUILTIN_MODULES = ("suite.envs.classic", "suite.envs.minatar", "suite.envs.atari", "suite.envs.tabular_env")
_entry_points_loaded = False


def load_entry_points() -> None:
    """Import the built-in families and every ``targetbench.envs`` entry point (once)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for module in BUILTIN_MODULES:  # built-in families register on import
        importlib.import_module(module)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def list_families() -> list[EnvFamily]:
    """Every registered family: the built-in ones first (``BUILTIN_MODULES`` order), then the others in
    registration order."""
    load_entry_points()
    families = list(registered_families().values())
    rank = {module: i for i, module in enumerate(BUILTIN_MODULES)}
    return sorted(families, key=lambda fam: rank.get(fam.make.__module__, len(rank)))  # stable: keeps the rest


def get_family(name: str) -> EnvFamily:
    """The family registered as ``name`` (ValueError, one line, listing the registered names otherwise)."""
    load_entry_points()
    family = registered_families().get(name)
    if family is None:
        raise ValueError(f"unknown environment family {name!r}; "
                         f"registered: {', '.join(f.name for f in list_families())}")
    return family


def reference_files() -> list[Path]:
    """The reference-score tables the registered families ship (``EnvFamily.reference_scores``), for analysis."""
    return [fam.reference_scores for fam in list_families() if fam.reference_scores is not None]


def _known_text() -> str:
    return ", ".join(text for fam in list_families() for text in fam.known)


def _unknown(env_id: str, reason: str = "") -> UnknownEnvError:
    candidates = [c for fam in list_families() for c in fam.suggestions(env_id)]
    close = difflib.get_close_matches(env_id, candidates, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    why = f" ({reason})" if reason else ""
    return UnknownEnvError(f"unknown environment {env_id!r}{why}{hint}; known: {_known_text()}")


def list_envs() -> list[EnvSpec]:
    """Every family's listed entries: fixed ids, documented examples and id patterns."""
    return [spec for fam in list_families() for spec in fam.listed]


def get_spec(env_id: str) -> EnvSpec:
    """Return the :class:`EnvSpec` for ``env_id``: the first family whose ``resolve`` owns the id.

    Raises :class:`UnknownEnvError` (one line: the reason where a family gave one, a close match, the known
    ids) otherwise.
    """
    if not isinstance(env_id, str):
        raise UnknownEnvError(f"environment id must be a string, got {env_id!r}; known: {_known_text()}")
    for fam in list_families():
        try:
            spec = fam.resolve(env_id)
        except ValueError as exc:
            raise _unknown(env_id, str(exc).splitlines()[0] if str(exc) else "bad id") from None
        if spec is not None:
            return spec
    raise _unknown(env_id)


def family_of(env_id: str) -> EnvFamily:
    """The family record of ``env_id`` (UnknownEnvError for an unknown id)."""
    return get_family(get_spec(env_id).family)


# ----------------------------------------------------------------------- options


def default_env_options(env_id: str) -> dict[str, Any]:
    """Default options of ``env_id`` (a fresh dict)."""
    spec = get_spec(env_id)
    fam = get_family(spec.family)
    opts = {k: o.default for k, o in fam.options.items()}
    if fam.option_defaults is not None:
        opts.update(fam.option_defaults(spec))
    return opts


def validate_env_options(env_id: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """Return the defaults of ``env_id`` merged with ``options``, normalised to python types.

    Raises :class:`agents.fields.ConfigError` (a ValueError; one line naming the key as ``env.KEY``, the bad
    value and what is allowed) for an unknown key or a bad value: each option is a typed field.
    """
    spec = get_spec(env_id)
    fam = get_family(spec.family)
    schema = fam.options
    resolved = default_env_options(env_id)
    if options is None:
        return resolved
    if not isinstance(options, dict):
        raise ValueError(f"options for {env_id!r} must be a dict, got {type(options).__name__}")
    for key, value in options.items():
        opt = schema.get(key)
        if opt is None:
            raise unknown_key(f"env.{key}", env_id, [f"env.{k}" for k in schema])
        resolved[key] = opt.field(key).check(value, f"env.{key}")
    if fam.check_options is not None:
        fam.check_options(env_id, resolved)
    return resolved


# -------------------------------------------------------------------- make_env


def make_env(env_id: str, seed: int, *, eval: bool = False, options: dict | None = None) -> gym.Env:  # noqa: A002
    """Build one environment: the family's env inside :class:`BenchEnvWrapper`.

    Observations (built-in families): classic -> float32 vector; minatar -> uint8 ``(C, 10, 10)``;
    atari -> uint8 ``(frame_stack, H, W)`` (``(frame_stack, H, W, 3)`` when ``grayscale=False``);
    tabular -> float32 one-hot of the state.

    ``seed`` is not applied here (no RNG is touched): it is used by the first
    ``reset()`` (or pass ``reset(seed=...)`` explicitly). ``eval=True`` disables
    reward clipping (Atari's training rewards are clipped) and builds the env with the family's
    ``eval_options`` (Atari: a lost life never ends an evaluation episode); ``info["raw_reward"]`` always has the unclipped
    reward. All ``max_episode_steps`` limits surface as ``truncated=True``.
    """
    spec = get_spec(env_id)
    fam = get_family(spec.family)
    resolved = validate_env_options(env_id, options)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    inner = fam.make(env_id, fam.eval_options(resolved) if eval and fam.eval_options is not None else resolved)
    clip = fam.clip_rewards is not None and fam.clip_rewards(resolved) and not eval
    return BenchEnvWrapper(inner, seed=int(seed), clip_rewards=clip, bench_spec=spec, options=resolved)
