"""Atari family (``atari``): ``ALE/<Game>-v5`` with Nature-DQN preprocessing and exact state capture.

Registers the family record: any ale-py game as ``ALE/<Game>-v5``, the Nature CNN on frames scaled by 1/255,
frame-stack replay, Nature DQN's settings (Mnih et al. 2015) as family-wide agent defaults, 10M-step budgets.

Stack (inner to outer)::

    ale_py AtariEnv(frameskip=1, repeat_action_probability=0), its per-frame observation skipped
    -> StickyActions(p)          per-frame sticky actions, ALE semantics, python RNG
    -> AtariPreprocessing        no-op starts, frame skip, max-pool of last 2 frames, resize, grayscale
    -> FrameStackObservation     (frame_stack, H, W): gymnasium's, with one copy per step
    -> TimeLimit                 max_episode_steps agent steps -> truncated=True

With ``terminal_on_life_loss`` (training envs only: evaluation always plays whole games) the cap and the life
signal sit below the frame stack::

    ... -> AtariPreprocessing -> TimeLimit (per game) -> LifeLossTerminal -> FrameStackObservation

``LifeLossTerminal`` ends the episode the learner sees at a lost life but continues the game at the next reset,
as DQN's and Dopamine's training loops do; gymnasium's own ``terminal_on_life_loss`` would restart the game at
every lost life, so a policy would never see the later lives of a game.

Named protocols (``env.protocol``: ``machado-2018``, ``nature-2015``, ``dopamine``, ``atari-100k``) are in
:mod:`suite.envs.atari_protocols`; docs/protocols.md has their sources.

Why sticky actions are re-implemented here: ALE keeps the "previous action" used
by sticky actions in ``StellaEnvironment::m_actions``, which ``cloneState`` /
``restoreState`` do not save (verified with ale-py 0.12.1: a restored Pong run
diverges within a few frames at p=0.25 and matches exactly at p=0). Doing the
sticky draw in Python -- per emulator frame, ``rng.random() >= p`` takes the new
action, reset to NOOP at every reset, exactly the ALE rule -- makes the whole
state capturable. The process is distributionally identical to ALE v5 but not
bit-identical to ``gymnasium.make("ALE/<Game>-v5")`` for the same seed.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, TimeLimit
from gymnasium.wrappers import FrameStackObservation as GymFrameStack

from agents.family_facts import FamilyFacts
from suite.envs.atari_protocols import DEFAULT_PROTOCOL, PRESETS, protocol_fields
from suite.envs.family import CostFigures, EnvFamily, EnvOption, EnvSpec, MemoryFigures, register_family
from suite.envs.rng_state import generator_from_state, generator_state

__all__ = [
    "FrameStackObservation",
    "LifeLossTerminal",
    "StickyActions",
    "atari_rom_id",
    "get_atari_state",
    "get_wrapper_state",
    "make_atari",
    "set_atari_state",
    "set_wrapper_state",
]


_EXAMPLES = ("Pong", "Breakout", "BeamRider", "Seaquest", "SpaceInvaders", "Qbert")
# ale-py registers no v5 env for these: they only have multi-player modes.
_MULTIPLAYER_ONLY = frozenset({"combat", "joust", "maze_craze", "warlords"})
_ID_RE = re.compile(r"^ALE/([A-Za-z0-9]+)-v5$")
_MAX_STEPS = 27_000  # 108k frames at frame_skip 4 (ALE v5 / Machado et al. 2018)


@functools.cache
def _atari_games() -> dict[str, str]:
    """PascalCase game name -> ale-py ROM id, for every ROM ale-py ships."""
    from ale_py import roms  # noqa: PLC0415 - lazy: loads the ALE extension

    return {
        rom.title().replace("_", ""): rom
        for rom in roms.get_all_rom_ids()
        if rom not in _MULTIPLAYER_ONLY
    }


def atari_rom_id(env_id: str) -> str:
    """Return the ale-py ROM id (e.g. ``"space_invaders"``) of an ``ALE/<Game>-v5`` id (ValueError otherwise)."""
    m = _ID_RE.match(env_id)
    rom = _atari_games().get(m.group(1)) if m else None
    if rom is None:
        raise ValueError(f"no ale-py game for {env_id!r}")
    return rom


def _description(game: str) -> str:
    return f"Atari 2600 {game} (ALE v5 sticky actions, Nature-DQN preprocessing, 84x84x4 grayscale)."


def _resolve(env_id: str) -> EnvSpec | None:
    if not env_id.startswith("ALE/"):
        return None
    try:
        atari_rom_id(env_id)
    except ValueError:
        return None
    return EnvSpec(env_id, "atari", _description(env_id[4:-3]), _MAX_STEPS)


def _candidates(env_id: str) -> list[str]:
    if not env_id.startswith("ALE/"):
        return []
    try:
        return [f"ALE/{g}-v5" for g in _atari_games()]
    except Exception:  # noqa: BLE001 - suggestions are best effort only
        return []


class StickyActions(gym.Wrapper):
    """Per-call sticky actions with ALE's rule, drawing from ``env.unwrapped.np_random``.

    With probability ``p`` the previously executed action is repeated instead of the
    requested one; the previous action is NOOP (index 0) after every reset. Must wrap
    an env with ``frameskip=1`` so that the rule applies per emulator frame.
    """

    def __init__(self, env: gym.Env, repeat_action_probability: float) -> None:
        super().__init__(env)
        self.repeat_action_probability = float(repeat_action_probability)
        self.last_action = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset; the previous action becomes NOOP as in ALE's softReset."""
        self.last_action = 0
        return self.env.reset(seed=seed, options=options)

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step with ``action`` or, with probability p, the previous action."""
        p = self.repeat_action_probability
        # Same comparison as ALE (draw >= p takes the new action); no draw when p == 0.
        if p <= 0.0 or self.env.unwrapped.np_random.random() >= p:
            self.last_action = int(action)
        return self.env.step(self.last_action)


class LifeLossTerminal(gym.Wrapper):
    """A lost life ends the episode, not the game: ``step`` returns ``terminated=True`` when the lives counter
    drops, and the next ``reset`` continues the same game with one NOOP step instead of restarting it (unless
    the game is over, or a seed is given). Training returns are then per life; evaluation envs never use it."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Restart the game after a game over (or with a seed); otherwise continue it with a NOOP step."""
        if self.game_over or seed is not None:
            obs, info = self.env.reset(seed=seed, options=options)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:  # the game ended during the NOOP: start a new one
                obs, info = self.env.reset()
        self.game_over = False
        self.lives = int(self.env.unwrapped.ale.lives())
        return obs, info

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step; a lost life is reported as ``terminated``."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = bool(terminated or truncated)
        lives = int(self.env.unwrapped.ale.lives())
        terminated = bool(terminated or lives < self.lives)
        self.lives = lives
        return obs, reward, terminated, truncated, info


def _eval_options(options: dict[str, Any]) -> dict[str, Any]:
    # A lost life is a training signal: evaluation scores whole games under every protocol.
    return {**options, "terminal_on_life_loss": False}


class FrameStackObservation(GymFrameStack):
    """gymnasium's ``FrameStackObservation`` (same state, same observations) with one copy per step instead of
    a copy into its buffer and a deep copy of that. It keeps gymnasium's class name because checkpoints tag each
    layer's state with its class name, and this layer's state is gymnasium's (old checkpoints load)."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Step and stack the last ``stack_size`` frames, newest last."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.obs_queue.append(obs)
        return np.stack(self.obs_queue), reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset; the stack is the reset frame repeated (``padding_type="reset"``)."""
        obs, info = self.env.reset(seed=seed, options=options)
        if self.padding_type == "reset":
            self.padding_value = obs
        for _ in range(self.stack_size - 1):
            self.obs_queue.append(self.padding_value)
        self.obs_queue.append(obs)
        return np.stack(self.obs_queue), info


@functools.cache
def _screenless_env_class() -> type:
    from ale_py.env import AtariEnv  # noqa: PLC0415 - lazy: loads the ALE extension

    class ScreenlessAtariEnv(AtariEnv):
        """ale-py's env without its per-frame observation: ``AtariPreprocessing`` reads the two screens it
        max-pools from the ALE itself and drops what ``step`` returns, so copying every frame's screen is wasted
        (a constant blank frame of the declared shape is returned instead; the emulation is untouched). Named
        ``AtariEnv`` like its base, because checkpoints tag each layer's state with its class name."""

        def _get_obs(self) -> np.ndarray:
            blank = getattr(self, "_blank", None)
            if blank is None:
                blank = self._blank = np.zeros(self.observation_space.shape, self.observation_space.dtype)
            return blank

    ScreenlessAtariEnv.__name__ = ScreenlessAtariEnv.__qualname__ = "AtariEnv"
    return ScreenlessAtariEnv


def make_atari(env_id: str, options: dict[str, Any]) -> gym.Env:
    """Build the preprocessed Atari env described in the module docstring."""
    grayscale = bool(options["grayscale"])
    base = _screenless_env_class()(
        game=atari_rom_id(env_id),
        obs_type="grayscale" if grayscale else "rgb",  # the shape AtariPreprocessing sizes its frame buffers by
        frameskip=1,
        repeat_action_probability=0.0,
        full_action_space=bool(options["full_action_space"]),
        # Episode length is limited in agent steps by TimeLimit below (ALE would also
        # count the no-op start frames).
        max_num_frames_per_episode=None,
    )
    env: gym.Env = StickyActions(base, options["repeat_action_probability"])
    env = AtariPreprocessing(
        env,
        noop_max=int(options["noop_max"]),
        frame_skip=int(options["frame_skip"]),
        screen_size=int(options["screen_size"]),
        terminal_on_life_loss=False,  # LifeLossTerminal (outside) does it and keeps the game going
        grayscale_obs=grayscale,
        grayscale_newaxis=False,
        scale_obs=False,
    )
    cap = options["max_episode_steps"]
    if options["terminal_on_life_loss"]:
        if cap is not None:  # per game: below the life signal, which continues games across lives
            env = TimeLimit(env, max_episode_steps=int(cap))
        env = FrameStackObservation(LifeLossTerminal(env), int(options["frame_stack"]))
    else:
        env = FrameStackObservation(env, int(options["frame_stack"]))
        if cap is not None:
            env = TimeLimit(env, max_episode_steps=int(cap))
    return env


# ------------------------------------------------------------------- state


def get_atari_state(env: gym.Env) -> dict[str, Any]:
    """Data-only state of the ale_py AtariEnv: serialized ALE state (incl. RNG) + np_random."""
    ale_state = env.ale.cloneState(include_rng=True).serialize()
    return {
        "ale_state": np.frombuffer(ale_state, dtype=np.uint8).copy(),
        "np_random": generator_state(env._np_random),
    }


def set_atari_state(env: gym.Env, data: dict[str, Any]) -> None:
    """Inverse of :func:`get_atari_state`."""
    import ale_py  # noqa: PLC0415

    env.ale.restoreState(ale_py.ALEState(np.asarray(data["ale_state"], dtype=np.uint8).tobytes()))
    env._np_random = generator_from_state(data["np_random"])


def get_wrapper_state(wrapper: gym.Wrapper) -> dict[str, Any] | None:
    """State of the Atari-specific wrappers (None for a wrapper type this module does not own)."""
    if isinstance(wrapper, StickyActions):
        return {"last_action": wrapper.last_action}
    if isinstance(wrapper, LifeLossTerminal):
        return {"lives": wrapper.lives, "game_over": wrapper.game_over}
    if isinstance(wrapper, AtariPreprocessing):
        return {
            "obs_buffer": np.stack([b.copy() for b in wrapper.obs_buffer]),
            "lives": int(wrapper.lives),
            "game_over": bool(wrapper.game_over),
        }
    if isinstance(wrapper, GymFrameStack):
        return {
            "obs_queue": np.stack([np.array(o, copy=True) for o in wrapper.obs_queue]),
            "padding_value": np.array(wrapper.padding_value, copy=True),
        }
    return None


def set_wrapper_state(wrapper: gym.Wrapper, data: dict[str, Any]) -> None:
    """Inverse of :func:`get_wrapper_state`."""
    if isinstance(wrapper, StickyActions):
        wrapper.last_action = int(data["last_action"])
    elif isinstance(wrapper, LifeLossTerminal):
        wrapper.lives, wrapper.game_over = int(data["lives"]), bool(data["game_over"])
    elif isinstance(wrapper, AtariPreprocessing):
        for dst, src in zip(wrapper.obs_buffer, data["obs_buffer"], strict=True):
            dst[...] = src
        wrapper.lives = int(data["lives"])
        wrapper.game_over = bool(data["game_over"])
    elif isinstance(wrapper, GymFrameStack):
        wrapper.obs_queue = deque(
            (np.array(o, copy=True) for o in data["obs_queue"]), maxlen=wrapper.stack_size
        )
        wrapper.padding_value = np.array(data["padding_value"], copy=True)
    else:
        raise TypeError(f"no Atari state handler for wrapper {type(wrapper).__name__}")


def _save_layer(layer: gym.Env) -> dict[str, Any] | None:
    if isinstance(layer, gym.Wrapper):
        return get_wrapper_state(layer)
    if hasattr(layer, "ale"):
        return {"env": get_atari_state(layer)}
    return None


def _load_layer(layer: gym.Env, data: dict[str, Any]) -> bool:
    if isinstance(layer, (StickyActions, LifeLossTerminal, AtariPreprocessing, GymFrameStack)):
        set_wrapper_state(layer, data)
        return True
    if not isinstance(layer, gym.Wrapper) and hasattr(layer, "ale"):
        set_atari_state(layer, data["env"])
        return True
    return False


FAMILY = register_family(EnvFamily(
    name="atari",
    description="Atari 2600 games (ale-py)",
    resolve=_resolve,
    listed=tuple(EnvSpec(f"ALE/{g}-v5", "atari", _description(g), _MAX_STEPS) for g in _EXAMPLES),
    known=("ALE/<Game>-v5 (any ale-py game, e.g. ALE/Pong-v5)",),
    candidates=_candidates,
    options={
        "frame_skip": EnvOption("int", 4, lo=1,
                                help="emulator frames per agent step (max-pooled over the last two)"),
        "noop_max": EnvOption("int", 30, lo=0,
                              help="at most this many no-op actions after a reset"),
        "screen_size": EnvOption("int", 84, lo=1,
                                 help="observation height and width in pixels"),
        "frame_stack": EnvOption("int", 4, lo=1,
                                 help="frames stacked into one observation"),
        "grayscale": EnvOption("bool", True,
                               help="grayscale frames (false: RGB)"),
        "repeat_action_probability": EnvOption("float", 0.25, lo=0.0, hi=1.0,
                                               help="sticky actions: repeat the previous action with this probability"),
        "full_action_space": EnvOption("bool", False,
                                       help="all 18 actions (false: the game's minimal set)"),
        "terminal_on_life_loss": EnvOption("bool", False,
                                           help="end a training episode at every lost life (the game goes on; "
                                                "evaluation plays whole games)"),
        "clip_rewards": EnvOption("bool", True,
                                  help="sign-clip training rewards (evaluation is never clipped)"),
        "max_episode_steps": EnvOption("int", _MAX_STEPS, lo=1, allow_none=True,
                                       help="truncate episodes after this many agent steps; none = never"),
        "protocol": EnvOption("choice", DEFAULT_PROTOCOL, choices=tuple(PRESETS), neutral=DEFAULT_PROTOCOL,
                              help="named evaluation protocol: fixes env options, the settings that define it and "
                                   "the score (docs/protocols.md)"),
    },
    presets=PRESETS,
    protocol=protocol_fields,
    eval_options=_eval_options,
    make=make_atari,
    clip_rewards=lambda options: bool(options["clip_rewards"]),
    save_layer=_save_layer,
    load_layer=_load_layer,
    # Frames are 0..255; observations are frame stacks (replay keeps one frame per step: 8x less memory, exact).
    facts=FamilyFacts("atari", network="nature-cnn", obs_scale=1.0 / 255.0, frame_stack=True),
    # Nature DQN (Mnih et al. 2015): RMSProp, Huber (error clipping), replay 1M, every 4 steps.
    agent_defaults={"optimizer": "rmsprop-centered", "learning_rate": 2.5e-4, "optimizer_eps": 0.01,
                    "rmsprop_alpha": 0.95, "loss": "huber", "batch_size": 32, "buffer_size": 1_000_000,
                    "learning_starts": 50_000, "train_frequency": 4, "epsilon_end": 0.1,
                    "epsilon_decay_steps": 1_000_000},
    # 10M agent steps = 40M frames.
    train_defaults={"steps": 10_000_000, "eval_every": 250_000, "eval_episodes": 5},
    costs=CostFigures(2.0e-4, 1.0e-3, 2.0e-3, 5.0e-4, eval_episode_steps=3000),  # one GPU, ALE on the host CPU
    # an ALE emulator with its frame buffers and frame stack: a few MiB; episodes ~1000 agent steps
    memory=MemoryFigures(env_bytes=8 * 2**20, side_pool_fraction=0.002),
))
