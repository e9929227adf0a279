"""Environment registry: ids, per-family options and the `make_env` factory.

Four families are supported:

* ``classic``  -- gymnasium classic control (CartPole-v1, Acrobot-v1, MountainCar-v0)
* ``minatar``  -- MinAtar games (``MinAtar/<game>``)
* ``atari``    -- any ale-py game as ``ALE/<Game>-v5`` with Nature-DQN preprocessing
* ``tabular``  -- finite MDPs, ``tabular/<spec>`` where ``<spec>`` is understood by
  :func:`suite.envs.mdp.parse_mdp_spec`

Family modules (and ale_py / minatar) are imported lazily so that importing the
registry stays cheap.
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym
import numpy as np

__all__ = [
    "BenchEnvWrapper",
    "EnvSpec",
    "UnknownEnvError",
    "default_env_options",
    "generator_from_state",
    "generator_state",
    "get_spec",
    "list_envs",
    "make_env",
    "validate_env_options",
]

FAMILIES = ("classic", "minatar", "atari", "tabular")


@dataclass(frozen=True)
class EnvSpec:
    """Static description of one environment id."""

    id: str
    family: str  # "classic" | "minatar" | "atari" | "tabular"
    description: str
    default_max_episode_steps: int | None


class UnknownEnvError(ValueError):
    """Raised for an environment id the registry does not know (one-line message)."""


# --------------------------------------------------------------------------- ids

# Limits are gymnasium's registered max_episode_steps for these ids.
_CLASSIC: dict[str, tuple[int, str]] = {
    "CartPole-v1": (500, "Balance a pole on a cart; +1 per step, 2 actions, 4-dim state."),
    "Acrobot-v1": (500, "Swing a two-link arm above a line; -1 per step, 3 actions, 6-dim state."),
    "MountainCar-v0": (200, "Drive an underpowered car up a hill; -1 per step, 3 actions, 2-dim state."),
}

_MINATAR: dict[str, str] = {
    "asterix": "MinAtar Asterix: collect gold, avoid enemies (10x10x4).",
    "breakout": "MinAtar Breakout: bounce the ball to break bricks (10x10x4).",
    "freeway": "MinAtar Freeway: cross the road avoiding cars (10x10x7).",
    "seaquest": "MinAtar Seaquest: shoot enemies, rescue divers, surface for oxygen (10x10x10).",
    "space_invaders": "MinAtar Space Invaders: shoot the descending aliens (10x10x6).",
}

_ATARI_EXAMPLES = ("Pong", "Breakout", "BeamRider", "Seaquest", "SpaceInvaders", "Qbert")
# ale-py registers no v5 env for these: they only have multi-player modes.
_ATARI_MULTIPLAYER_ONLY = frozenset({"combat", "joust", "maze_craze", "warlords"})
_ATARI_RE = re.compile(r"^ALE/([A-Za-z0-9]+)-v5$")
_ATARI_MAX_STEPS = 27_000  # 108k frames at frame_skip 4 (ALE v5 / Machado et al. 2018)

_TABULAR_PREFIX = "tabular/"
_TABULAR_PATTERNS: dict[str, str] = {
    "tabular/random:S,A,SEED": "Random finite MDP with S states and A actions generated from SEED.",
    "tabular/chain:N": "Chain MDP with N states.",
    "tabular/<file.npz>": "Finite MDP loaded from an .npz file (P, R, gamma).",
}
_TABULAR_MAX_STEPS = 100

_KNOWN_TEXT = ", ".join(
    [*_CLASSIC, *(f"MinAtar/{g}" for g in _MINATAR)]
    + ["ALE/<Game>-v5 (any ale-py game, e.g. ALE/Pong-v5)", *_TABULAR_PATTERNS]
)


@functools.cache
def _atari_games() -> dict[str, str]:
    """PascalCase game name -> ale-py ROM id, for every ROM ale-py ships."""
    from ale_py import roms  # noqa: PLC0415 - lazy: loads the ALE extension

    return {
        rom.title().replace("_", ""): rom
        for rom in roms.get_all_rom_ids()
        if rom not in _ATARI_MULTIPLAYER_ONLY
    }


def atari_rom_id(env_id: str) -> str:
    """Return the ale-py ROM id (e.g. ``"space_invaders"``) of an ``ALE/<Game>-v5`` id."""
    m = _ATARI_RE.match(env_id)
    rom = _atari_games().get(m.group(1)) if m else None
    if rom is None:
        raise _unknown(env_id)
    return rom


def _unknown(env_id: str, reason: str = "") -> UnknownEnvError:
    candidates = [*_CLASSIC, *(f"MinAtar/{g}" for g in _MINATAR)]
    if env_id.startswith("ALE/"):
        try:
            candidates = [f"ALE/{g}-v5" for g in _atari_games()]
        except Exception:  # noqa: BLE001 - suggestions are best effort only
            candidates = []
    close = difflib.get_close_matches(env_id, candidates, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    why = f" ({reason})" if reason else ""
    return UnknownEnvError(f"unknown environment {env_id!r}{why}{hint}; known: {_KNOWN_TEXT}")


@functools.lru_cache(maxsize=64)
def _parse_cached(spec: str) -> Any:
    from suite.envs.mdp import parse_mdp_spec  # noqa: PLC0415 - tabular only

    return parse_mdp_spec(spec)


def load_mdp(env_id: str) -> Any:
    """Return the ``FiniteMDP`` of a ``tabular/<spec>`` id (UnknownEnvError if it does not parse).

    Generated MDPs are cached (they are pure functions of the spec); files are
    re-read each time so edits to them are seen.
    """
    if not env_id.startswith(_TABULAR_PREFIX):
        raise _unknown(env_id)
    spec = env_id[len(_TABULAR_PREFIX) :]
    try:
        if spec.strip().lower().endswith(".npz"):
            from suite.envs.mdp import parse_mdp_spec  # noqa: PLC0415

            return parse_mdp_spec(spec)
        return _parse_cached(spec)
    except ValueError as exc:
        raise _unknown(env_id, str(exc).splitlines()[0] if str(exc) else "bad spec") from None


def list_envs() -> list[EnvSpec]:
    """All fixed environment ids plus the documented Atari examples and tabular patterns."""
    specs = [EnvSpec(k, "classic", d, n) for k, (n, d) in _CLASSIC.items()]
    specs += [EnvSpec(f"MinAtar/{g}", "minatar", d, None) for g, d in _MINATAR.items()]
    specs += [
        EnvSpec(f"ALE/{g}-v5", "atari", _atari_description(g), _ATARI_MAX_STEPS)
        for g in _ATARI_EXAMPLES
    ]
    specs += [EnvSpec(k, "tabular", d, _TABULAR_MAX_STEPS) for k, d in _TABULAR_PATTERNS.items()]
    return specs


def _atari_description(game: str) -> str:
    return f"Atari 2600 {game} (ALE v5 sticky actions, Nature-DQN preprocessing, 84x84x4 grayscale)."


def get_spec(env_id: str) -> EnvSpec:
    """Return the :class:`EnvSpec` for ``env_id``.

    Accepts the fixed ids of :func:`list_envs`, any ``ALE/<Game>-v5`` whose ROM
    ale-py ships, and ``tabular/<spec>`` ids that ``parse_mdp_spec`` accepts.
    Raises :class:`UnknownEnvError` otherwise.
    """
    if not isinstance(env_id, str):
        raise UnknownEnvError(f"environment id must be a string, got {env_id!r}; known: {_KNOWN_TEXT}")
    if env_id in _CLASSIC:
        n, d = _CLASSIC[env_id]
        return EnvSpec(env_id, "classic", d, n)
    if env_id.startswith("MinAtar/") and env_id[len("MinAtar/") :] in _MINATAR:
        return EnvSpec(env_id, "minatar", _MINATAR[env_id[len("MinAtar/") :]], None)
    if env_id.startswith("ALE/"):
        atari_rom_id(env_id)
        return EnvSpec(env_id, "atari", _atari_description(env_id[4:-3]), _ATARI_MAX_STEPS)
    if env_id.startswith(_TABULAR_PREFIX):
        mdp = load_mdp(env_id)
        desc = f"Finite MDP {mdp.name!r}: {mdp.num_states} states, {mdp.num_actions} actions, gamma={mdp.gamma}."
        return EnvSpec(env_id, "tabular", desc, _TABULAR_MAX_STEPS)
    raise _unknown(env_id)


# ----------------------------------------------------------------------- options


@dataclass(frozen=True)
class _Opt:
    kind: str  # "int" | "float" | "bool"
    default: Any
    lo: float | None = None
    hi: float | None = None
    allow_none: bool = False

    def allowed(self) -> str:
        if self.kind == "bool":
            text = "a bool"
        elif self.lo is not None and self.hi is not None:
            text = f"{'an int' if self.kind == 'int' else 'a number'} in [{self.lo}, {self.hi}]"
        elif self.lo is not None:
            text = f"{'an int' if self.kind == 'int' else 'a number'} >= {self.lo}"
        else:
            text = "an int" if self.kind == "int" else "a number"
        return text + (" or None" if self.allow_none else "")

    def coerce(self, value: Any) -> tuple[bool, Any]:
        """(ok, normalised python value)."""
        if value is None:
            return self.allow_none, None
        if self.kind == "bool":
            if isinstance(value, (bool, np.bool_)):
                return True, bool(value)
            return False, None
        # bool is an int subclass; True as a step count is almost surely a mistake
        if isinstance(value, (bool, np.bool_)):
            return False, None
        if self.kind == "int":
            if not isinstance(value, (int, np.integer)):
                return False, None
            value = int(value)
        else:
            if not isinstance(value, (int, float, np.integer, np.floating)):
                return False, None
            value = float(value)
            if not math.isfinite(value):
                return False, None
        if self.lo is not None and value < self.lo:
            return False, None
        if self.hi is not None and value > self.hi:
            return False, None
        return True, value


_OPTIONS: dict[str, dict[str, _Opt]] = {
    "classic": {"max_episode_steps": _Opt("int", None, lo=1)},  # default filled per id
    "minatar": {
        "sticky_action_prob": _Opt("float", 0.1, lo=0.0, hi=1.0),
        "difficulty_ramping": _Opt("bool", True),
        # The MinAtar paper's DQN acts with all 6 actions.
        "minimal_action_set": _Opt("bool", False),
        "max_episode_steps": _Opt("int", None, lo=1, allow_none=True),
    },
    "atari": {
        "frame_skip": _Opt("int", 4, lo=1),
        "noop_max": _Opt("int", 30, lo=0),
        "screen_size": _Opt("int", 84, lo=1),
        "frame_stack": _Opt("int", 4, lo=1),
        "grayscale": _Opt("bool", True),
        "repeat_action_probability": _Opt("float", 0.25, lo=0.0, hi=1.0),
        "full_action_space": _Opt("bool", False),
        "terminal_on_life_loss": _Opt("bool", False),
        "clip_rewards": _Opt("bool", True),
        "max_episode_steps": _Opt("int", _ATARI_MAX_STEPS, lo=1, allow_none=True),
    },
    "tabular": {
        "max_episode_steps": _Opt("int", _TABULAR_MAX_STEPS, lo=1),
        "start_state": _Opt("int", -1, lo=-1),  # -1: uniform random start state
    },
}


def default_env_options(env_id: str) -> dict[str, Any]:
    """Default options of ``env_id`` (a fresh dict)."""
    spec = get_spec(env_id)
    opts = {k: o.default for k, o in _OPTIONS[spec.family].items()}
    if spec.family == "classic":
        opts["max_episode_steps"] = spec.default_max_episode_steps
    return opts


def validate_env_options(env_id: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """Return the defaults of ``env_id`` merged with ``options``, normalised to python types.

    Raises ValueError (one line naming the key, the bad value and what is allowed)
    for an unknown key or a bad value.
    """
    spec = get_spec(env_id)
    schema = _OPTIONS[spec.family]
    resolved = default_env_options(env_id)
    if options is None:
        return resolved
    if not isinstance(options, dict):
        raise ValueError(f"options for {env_id!r} must be a dict, got {type(options).__name__}")
    for key, value in options.items():
        opt = schema.get(key)
        if opt is None:
            raise ValueError(
                f"unknown option {key!r}={value!r} for {spec.family} environment {env_id!r}; "
                f"allowed: {', '.join(schema)}"
            )
        ok, norm = opt.coerce(value)
        if not ok:
            raise ValueError(f"invalid option {key}={value!r} for {env_id!r}: expected {opt.allowed()}")
        resolved[key] = norm
    if spec.family == "tabular" and resolved["start_state"] >= 0:
        n = load_mdp(env_id).num_states
        if resolved["start_state"] >= n:
            raise ValueError(
                f"invalid option start_state={resolved['start_state']!r} for {env_id!r}: "
                f"expected -1 (uniform) or an int in [0, {n - 1}]"
            )
    return resolved


# -------------------------------------------------------------------- RNG state


def generator_state(gen: np.random.Generator | None) -> dict[str, Any] | None:
    """Data-only snapshot of a numpy Generator (its bit generator's state dict), or None."""
    return None if gen is None else copy.deepcopy(gen.bit_generator.state)


def generator_from_state(state: dict[str, Any] | None) -> np.random.Generator | None:
    """A new Generator continuing exactly from :func:`generator_state` output."""
    if state is None:
        return None
    bit_gen = getattr(np.random, state["bit_generator"])()
    bit_gen.state = copy.deepcopy(state)
    return np.random.Generator(bit_gen)


# -------------------------------------------------------------------- make_env


class BenchEnvWrapper(gym.Wrapper):
    """Outermost wrapper of every env returned by :func:`make_env`.

    * the first ``reset()`` without a seed uses the seed given to ``make_env``;
    * ``info["raw_reward"]`` always holds the unclipped reward;
    * with ``clip_rewards`` the returned reward is ``sign(r)`` (Atari training envs).
    """

    def __init__(self, env: gym.Env, *, seed: int, clip_rewards: bool, bench_spec: EnvSpec, options: dict):
        super().__init__(env)
        self.seed = int(seed)
        self.clip_rewards = bool(clip_rewards)
        self.bench_spec = bench_spec
        self.bench_options = dict(options)
        self.seeded = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset; the first reset defaults to the construction seed."""
        if seed is None and not self.seeded:
            seed = self.seed
        self.seeded = True
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step and record the raw reward in ``info["raw_reward"]``."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["raw_reward"] = reward
        if self.clip_rewards:
            reward = float((reward > 0) - (reward < 0))
        return obs, reward, terminated, truncated, info


def _builder(family: str) -> Callable[..., gym.Env]:
    # Lazy imports: only the family in use pays for ale_py / minatar imports.
    if family == "classic":
        from suite.envs.classic import make_classic  # noqa: PLC0415

        return make_classic
    if family == "minatar":
        from suite.envs.minatar import make_minatar  # noqa: PLC0415

        return make_minatar
    if family == "atari":
        from suite.envs.atari import make_atari  # noqa: PLC0415

        return make_atari
    from suite.envs.tabular_env import make_tabular  # noqa: PLC0415

    return make_tabular


def make_env(env_id: str, seed: int, *, eval: bool = False, options: dict | None = None) -> gym.Env:  # noqa: A002
    """Build one environment.

    Observations: classic -> float32 vector; minatar -> uint8 ``(C, 10, 10)``;
    atari -> uint8 ``(frame_stack, H, W)`` (``(frame_stack, H, W, 3)`` when
    ``grayscale=False``); tabular -> float32 one-hot of the state.

    ``seed`` is not applied here (no RNG is touched): it is used by the first
    ``reset()`` (or pass ``reset(seed=...)`` explicitly). ``eval=True`` disables
    Atari reward clipping; ``info["raw_reward"]`` always has the unclipped reward.
    All ``max_episode_steps`` limits surface as ``truncated=True``.
    """
    spec = get_spec(env_id)
    resolved = validate_env_options(env_id, options)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    inner = _builder(spec.family)(env_id, resolved)
    clip = spec.family == "atari" and resolved["clip_rewards"] and not eval
    return BenchEnvWrapper(inner, seed=int(seed), clip_rewards=clip, bench_spec=spec, options=resolved)
