"""MinAtar family (``minatar``): a gymnasium wrapper around ``minatar.Environment`` with exact state capture.

Registers the family record: ``MinAtar/<game>`` ids, the MinAtar CNN, the MinAtar paper's DQN settings
(Young & Tian 2019, ``examples/dqn.py``) as family-wide agent defaults, 5M-step budgets.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit

from agents.family_facts import FamilyFacts
from suite.envs.family import CostFigures, EnvFamily, EnvOption, EnvSpec, MemoryFigures, register_family
from suite.envs.rng_state import generator_from_state, generator_state

__all__ = ["MinAtarEnv", "make_minatar"]

_MAX_U32 = 2**32


def _random_state(seed: int) -> np.random.RandomState:
    # RandomState(seed) for seeds that fit keeps trajectories identical to minatar's own
    # gym wrapper (Environment.seed); larger seeds are hashed down deterministically.
    if 0 <= seed < _MAX_U32:
        return np.random.RandomState(seed)
    return np.random.RandomState(np.random.SeedSequence(seed).generate_state(4))


class MinAtarEnv(gym.Env):
    """A MinAtar game as a gymnasium Env with uint8 channels-first ``(C, 10, 10)`` observations.

    ``reset(seed=s)`` replaces the game's RandomState with ``RandomState(s)`` (shared by
    the sticky-action draw and the game dynamics, as ``minatar.Environment.seed`` does),
    so the trajectory is identical to minatar's own gym env seeded with ``s``.
    Episodes end only by the game's own terminal (``terminated=True``); a step limit
    is added by ``make_minatar`` as a TimeLimit (``truncated=True``).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 10}
    #: pixels per MinAtar cell in rendered frames (10 cells -> 160 px, a whole number of H.264 macroblocks)
    CELL_PIXELS = 16

    def __init__(
        self,
        game: str,
        *,
        sticky_action_prob: float = 0.1,
        difficulty_ramping: bool = True,
        minimal_action_set: bool = False,
    ) -> None:
        import minatar  # noqa: PLC0415 - lazy: minatar pulls in matplotlib/seaborn

        self.game_name = game
        self.game = minatar.Environment(
            game, sticky_action_prob=sticky_action_prob, difficulty_ramping=difficulty_ramping
        )
        self._action_set: list[int] = (
            list(self.game.minimal_action_set()) if minimal_action_set else list(range(self.game.num_actions()))
        )
        h, w, c = self.game.state_shape()
        self.action_space = spaces.Discrete(len(self._action_set))
        self.observation_space = spaces.Box(0, 1, shape=(c, h, w), dtype=np.uint8)
        self._game_seeded = False

    def render(self) -> np.ndarray | None:
        """An RGB frame ``(160, 160, 3)`` of the current state with ``render_mode="rgb_array"`` (evaluation
        videos): each channel in its own colour (a channel drawn later covers an earlier one), black where no
        channel is set; ``None`` otherwise."""
        if getattr(self, "render_mode", None) != "rgb_array":
            return None
        state = self.game.state()  # (10, 10, C) booleans
        channels = state.shape[2]
        hues = np.arange(channels) / max(channels, 1)
        # evenly spaced hues at full saturation and value: HSV to RGB for s = v = 1
        k = (np.array([5.0, 3.0, 1.0])[None, :] + hues[:, None] * 6.0) % 6.0
        palette = (255 * (1 - np.clip(np.minimum(k, 4 - k), 0, 1))).astype(np.uint8)  # (C, 3)
        frame = np.zeros((*state.shape[:2], 3), dtype=np.uint8)
        for c in range(channels):
            frame[state[:, :, c].astype(bool)] = palette[c]
        return np.repeat(np.repeat(frame, self.CELL_PIXELS, axis=0), self.CELL_PIXELS, axis=1)

    def _obs(self) -> np.ndarray:
        return np.ascontiguousarray(self.game.state().transpose(2, 0, 1), dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Start a new episode; a seed reseeds the game RNG deterministically."""
        super().reset(seed=seed)
        if seed is not None:
            self._set_rng(_random_state(int(seed)))
        elif not self._game_seeded:
            # Never seeded: derive from gymnasium's np_random rather than OS entropy
            # held inside minatar, so at least env.np_random governs everything.
            self._set_rng(_random_state(int(self.np_random.integers(_MAX_U32))))
        self.game.reset()
        return self._obs(), {}

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Apply ``action`` (an index into the action set); never truncates by itself."""
        reward, done = self.game.act(self._action_set[int(action)])
        return self._obs(), float(reward), bool(done), False, {}

    def _set_rng(self, rs: np.random.RandomState) -> None:
        # Environment.seed() shares one RandomState between the wrapper (sticky actions)
        # and the game; keep that aliasing.
        self.game.random = rs
        self.game.env.random = rs
        self._game_seeded = True

    # ----------------------------------------------------------------- state

    def get_state(self) -> dict[str, Any]:
        """Data-only snapshot: every game attribute, the shared RandomState, the sticky last action."""
        if self.game.env.random is not self.game.random:
            raise RuntimeError("MinAtar game and wrapper RNGs are not shared; cannot snapshot")
        game_vars = {k: _encode(v, k) for k, v in vars(self.game.env).items() if k != "random"}
        return {
            "game_name": self.game_name,
            "game": game_vars,
            "random": _encode(self.game.random.get_state(legacy=False), "random"),
            "last_action": int(self.game.last_action),
            "game_seeded": self._game_seeded,
            "np_random": generator_state(self._np_random),
        }

    def set_state(self, data: dict[str, Any]) -> None:
        """Inverse of :meth:`get_state`."""
        if data["game_name"] != self.game_name:
            raise ValueError(f"MinAtar state is for game {data['game_name']!r}, env is {self.game_name!r}")
        env = self.game.env
        for k, v in data["game"].items():
            setattr(env, k, _decode(v))
        rs = np.random.RandomState()
        rs.set_state(_decode(data["random"]))
        self._set_rng(rs)
        self._game_seeded = bool(data["game_seeded"])
        self.game.last_action = int(data["last_action"])
        self._np_random = generator_from_state(data["np_random"])


# MinAtar games keep python ints/bools/lists, numpy arrays and (freeway, space_invaders)
# numpy int64 scalars: a tagged encoding keeps the exact types, so a restored game
# does the very same arithmetic.
_TAG = "__minatar_type__"


def _encode(x: Any, path: str) -> Any:
    if x is None or type(x) in (bool, int, float, str):
        return x
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, np.generic):
        return {_TAG: "scalar", "value": np.array(x)}
    if type(x) is list:
        return [_encode(v, f"{path}[{i}]") for i, v in enumerate(x)]
    if type(x) is tuple:
        return {_TAG: "tuple", "items": [_encode(v, f"{path}[{i}]") for i, v in enumerate(x)]}
    if type(x) is dict and all(isinstance(k, str) for k in x):
        return {_TAG: "dict", "items": {k: _encode(v, f"{path}.{k}") for k, v in x.items()}}
    raise TypeError(f"cannot snapshot MinAtar attribute {path} of type {type(x).__name__}")


def _decode(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, list):
        return [_decode(v) for v in x]
    if isinstance(x, dict):
        tag = x.get(_TAG)
        if tag == "scalar":
            return x["value"][()]
        if tag == "tuple":
            return tuple(_decode(v) for v in x["items"])
        if tag == "dict":
            return {k: _decode(v) for k, v in x["items"].items()}
        raise ValueError(f"malformed MinAtar state entry: {sorted(x)}")
    return x


def make_minatar(env_id: str, options: dict[str, Any]) -> gym.Env:
    """``MinAtar/<game>`` -> :class:`MinAtarEnv` (+ TimeLimit when ``max_episode_steps`` is set)."""
    env: gym.Env = MinAtarEnv(
        env_id.split("/", 1)[1],
        sticky_action_prob=options["sticky_action_prob"],
        difficulty_ramping=options["difficulty_ramping"],
        minimal_action_set=options["minimal_action_set"],
    )
    if options["max_episode_steps"] is not None:
        env = TimeLimit(env, max_episode_steps=int(options["max_episode_steps"]))
    return env


_PREFIX = "MinAtar/"
_GAMES: dict[str, str] = {
    "asterix": "MinAtar Asterix: collect gold, avoid enemies (10x10x4).",
    "breakout": "MinAtar Breakout: bounce the ball to break bricks (10x10x4).",
    "freeway": "MinAtar Freeway: cross the road avoiding cars (10x10x7).",
    "seaquest": "MinAtar Seaquest: shoot enemies, rescue divers, surface for oxygen (10x10x10).",
    "space_invaders": "MinAtar Space Invaders: shoot the descending aliens (10x10x6).",
}


def _resolve(env_id: str) -> EnvSpec | None:
    if env_id.startswith(_PREFIX) and env_id[len(_PREFIX):] in _GAMES:
        return EnvSpec(env_id, "minatar", _GAMES[env_id[len(_PREFIX):]], None)
    return None


FAMILY = register_family(EnvFamily(
    name="minatar",
    description="MinAtar games",
    resolve=_resolve,
    listed=tuple(EnvSpec(f"{_PREFIX}{g}", "minatar", d, None) for g, d in _GAMES.items()),
    known=tuple(f"{_PREFIX}{g}" for g in _GAMES),
    options={
        "sticky_action_prob": EnvOption("float", 0.1, lo=0.0, hi=1.0,
                                        help="sticky actions: repeat the previous action with this probability"),
        "difficulty_ramping": EnvOption("bool", True,
                                        help="the games get harder as an episode goes on (MinAtar's default)"),
        # The MinAtar paper's DQN acts with all 6 actions.
        "minimal_action_set": EnvOption("bool", False,
                                        help="only the game's own actions (false: all 6)"),
        "max_episode_steps": EnvOption("int", None, lo=1, allow_none=True,
                                       help="truncate episodes after this many steps; none = never"),
    },
    make=make_minatar,
    # MinAtarEnv has get_state/set_state: no layer hook needed.
    facts=FamilyFacts("minatar", network="minatar-cnn"),  # channels are 0/1: no scaling
    # MinAtar examples/dqn.py (Young & Tian 2019).
    agent_defaults={"optimizer": "rmsprop-centered", "learning_rate": 2.5e-4, "optimizer_eps": 0.01,
                    "rmsprop_alpha": 0.95, "loss": "huber", "batch_size": 32, "buffer_size": 100_000,
                    "learning_starts": 5000, "train_frequency": 1, "epsilon_end": 0.1,
                    "epsilon_decay_steps": 100_000},
    # The MinAtar paper's 5M frames (one frame per env step).
    train_defaults={"steps": 5_000_000, "eval_every": 100_000},
    costs=CostFigures(3.0e-4, 3.0e-4, 9.0e-4, 1.4e-3, eval_episode_steps=500),
    memory=MemoryFigures(env_bytes=64 * 1024, side_pool_fraction=0.02),  # episodes ~100 steps
))
