"""Evaluation videos (``train.video_every=N``): one greedy evaluation episode per seed, written as an mp4.

Every N-th evaluation, each replica plays one more episode with the evaluation policy (ε_eval-greedy) on a fresh
env seeded from (seed, ``video/<index>``), with its own ε stream: it consumes nothing from the training or
scoring streams, so turning videos on changes no number of the run. Frames come from the env's own
``render()`` in ``rgb_array`` mode (classic control through gymnasium's pygame renderer, MinAtar's channels
coloured by ``MinAtarEnv.render``, Atari's ALE screen).

The mp4 is H.264 in yuv420p (what browsers and the MLflow UI play), written by the ffmpeg binary that the
``imageio-ffmpeg`` wheel ships; frames are padded to a multiple of 16 pixels (H.264 macroblocks).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from agents.exploration import EpsilonGreedy
from agents.seeding import derive_seed, numpy_rng
from suite.envs import make_env
from suite.errors import UsageError

__all__ = ["check_video_support", "record_videos", "video_dir", "write_mp4", "count_frames", "due"]

#: H.264 encodes 16x16 macroblocks: frames are padded to a multiple of this
MACRO_BLOCK = 16


def check_video_support(env_id: str, options: dict[str, Any]) -> None:
    """One-line :class:`UsageError` when videos cannot be made here: the env does not render to ``rgb_array``
    or the mp4 writer (imageio-ffmpeg) is missing."""
    env = make_env(env_id, 0, eval=True, options=options)
    try:
        modes = env.unwrapped.metadata.get("render_modes") or []
    finally:
        env.close()
    if "rgb_array" not in modes:
        raise UsageError(f"train.video_every is not available for {env_id}: its environment does not render frames "
                         f"(render modes: {', '.join(modes) or 'none'}); allowed there: train.video_every=0")
    try:
        import imageio_ffmpeg  # noqa: F401, PLC0415 - only runs that record videos need it
    except ImportError:
        raise UsageError("train.video_every needs the imageio-ffmpeg package (installed by `make install`); "
                         "allowed without it: train.video_every=0") from None


def due(video_every: int, evaluations: int) -> bool:
    """Whether the evaluation just recorded (``evaluations`` so far, 1-based) gets a video."""
    return video_every > 0 and evaluations % video_every == 0


def video_dir(results_dir: Path, group_hash: str) -> Path:
    """Where a trial group's videos wait until its runs' artifacts are written (one folder per replica)."""
    return Path(results_dir) / "videos" / group_hash


def _quiet_renderer() -> None:
    """pygame (classic control's renderer) draws off-screen here: no display, no audio, no greeting on stdout."""
    for key, value in (("SDL_VIDEODRIVER", "dummy"), ("SDL_AUDIODRIVER", "dummy"), ("PYGAME_HIDE_SUPPORT_PROMPT", "1")):
        os.environ.setdefault(key, value)


def _render(env: Any) -> np.ndarray:
    frame = np.asarray(env.unwrapped.render(), dtype=np.uint8)
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    return frame


def record_videos(agent: Any, trial: Any, index: int, step: int, folder: Path) -> list[tuple[Path, int]]:
    """Play one evaluation-policy episode per replica and write it to
    ``folder/<replica>/eval-<index>-step<step>.mp4``; returns each replica's file and its frame count (the
    reset frame and one per env step).

    Replicas are played one at a time (the agent acts on all replicas at once; the others' rows repeat the
    recorded replica's observation and are ignored), so only one replica's frames are ever held: they are
    streamed to the encoder."""
    cfg, seeds = trial.train, trial.seeds
    _quiet_renderer()
    out = []
    for r, seed in enumerate(seeds):
        env = make_env(trial.env, derive_seed(seed, f"video/{index}"), eval=True, options=trial.env_options)
        env.unwrapped.render_mode = "rgb_array"  # set after construction: training envs never render
        explorer = EpsilonGreedy([numpy_rng(seed, f"video-explore/{index}")], agent.num_actions)
        fps = int(env.metadata.get("render_fps") or env.unwrapped.metadata.get("render_fps") or 30)
        path = Path(folder) / str(r) / f"eval-{index:04d}-step{step}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            obs, _ = env.reset(seed=derive_seed(seed, f"video/{index}"))
            first = _render(env)
            writer = _Writer(path, first.shape, fps)
            frames = 1
            try:
                writer.add(first)
                for _ in range(cfg.eval_max_steps):
                    batch = np.repeat(np.asarray(obs)[None], len(seeds), axis=0)
                    greedy = agent.greedy_actions(batch)[r:r + 1]
                    action = int(explorer.select(greedy, agent.config.eval_epsilon)[0])
                    obs, _, terminated, truncated, _ = env.step(action)
                    writer.add(_render(env))
                    frames += 1
                    if terminated or truncated:
                        break
            finally:
                writer.close()
        finally:
            env.close()
        out.append((path, frames))
    return out


class _Writer:
    """Frames streamed to imageio-ffmpeg's encoder (H.264, yuv420p), padded to whole macroblocks."""

    def __init__(self, path: Path, shape: tuple[int, ...], fps: int) -> None:
        import imageio_ffmpeg  # noqa: PLC0415

        h, w = shape[:2]
        self.h, self.w = -(-h // MACRO_BLOCK) * MACRO_BLOCK, -(-w // MACRO_BLOCK) * MACRO_BLOCK
        self.gen = imageio_ffmpeg.write_frames(str(path), (self.w, self.h), fps=fps, codec="libx264",
                                               pix_fmt_in="rgb24", pix_fmt_out="yuv420p", macro_block_size=1,
                                               ffmpeg_log_level="error", output_params=["-movflags", "+faststart"])
        self.gen.send(None)

    def add(self, frame: np.ndarray) -> None:
        padded = np.zeros((self.h, self.w, 3), dtype=np.uint8)
        padded[:frame.shape[0], :frame.shape[1]] = frame[:, :, :3]
        self.gen.send(padded)

    def close(self) -> None:
        self.gen.close()


def write_mp4(path: Path, frames: list[np.ndarray], fps: int = 30) -> None:
    """Write RGB ``frames`` (H, W, 3 uint8) to ``path`` as an H.264 mp4."""
    writer = _Writer(Path(path), frames[0].shape, fps)
    try:
        for frame in frames:
            writer.add(frame)
    finally:
        writer.close()


def count_frames(path: Path) -> int:
    """Frames in an mp4, counted by decoding it (ffmpeg)."""
    import imageio_ffmpeg  # noqa: PLC0415

    return int(imageio_ffmpeg.count_frames_and_secs(str(path))[0])
