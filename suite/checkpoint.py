"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)`` so loading never runs code.

numpy arrays (environment states) are stored as tensors with a marker and restored as arrays. A write goes to
``<name>.pt<random>.tmp`` next to the checkpoint and is renamed over it; a process killed during a write leaves
that file behind, so every write and load first removes the stale temporary files of the same checkpoint (one
writer per checkpoint: a trial group is trained by one process at a time).
"""
from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from suite.errors import CheckpointError, WriteError

if TYPE_CHECKING:
    from suite.trial import TrialSpec

__all__ = ["save_checkpoint", "load_checkpoint", "peek_checkpoint", "checkpoint_path", "remove_stale_tmp", "FORMAT_VERSION",
           "REQUIRED_KEYS"]

FORMAT_VERSION = 1
_ND = "__ndarray__"
#: the training state every checkpoint the trainer writes holds and reads back on resume. A checkpoint with
#: part of it is refused at load, before a resume touches the tracking store, rather than failing later with a
#: KeyError deep in the trainer (payloads with none of it, written by other tools, are returned as they are)
REQUIRED_KEYS = ("step", "wall_s", "agent", "envs", "obs", "run_ids", "eval_returns", "diverged", "accumulator",
                 "pending")


class _Checkpoint(dict):
    """A loaded checkpoint: reading an entry it lacks is a one-line CheckpointError, not a KeyError."""

    path: Path

    def __missing__(self, key: str) -> Any:
        raise CheckpointError(f"checkpoint {self.path} is incomplete: missing {key}; delete it to start the trial "
                              "afresh")


def _to_storable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError("object arrays cannot be checkpointed")
        return {_ND: torch.from_numpy(np.ascontiguousarray(obj).copy())}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _to_storable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_storable(v) for v in obj]
    return obj


def _from_storable(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_ND}:
            return obj[_ND].numpy()
        return {k: _from_storable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_storable(v) for v in obj]
    return obj


class _WriteRecorder:
    """The file ``torch.save`` writes to, keeping the first OSError: torch turns a failed write into a
    RuntimeError ("unexpected pos ..."), which would hide a full disk behind an internal error."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        self.f.flush()


def checkpoint_path(trial: "TrialSpec", checkpoint_dir: Path) -> Path:
    """Where the checkpoint of ``trial``'s group lives in ``checkpoint_dir``."""
    name = trial.env.replace("/", "_").replace(":", "_")
    return Path(checkpoint_dir) / f"{trial.agent}-{name}-{trial.group_hash()}.pt"


def remove_stale_tmp(path: Path) -> int:
    """Delete the temporary files an interrupted write of checkpoint ``path`` left behind; returns how many."""
    removed = 0
    folder = Path(path).parent
    if folder.is_dir():
        for stale in folder.glob(f"{glob.escape(Path(path).name)}*.tmp"):
            try:
                stale.unlink()
                removed += 1
            except FileNotFoundError:
                pass
    return removed


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically: a crash or a full disk leaves the previous checkpoint intact.

    Raises:
        WriteError: the file could not be written (disk full, quota, read-only file system, ...).
    """
    data = {"format_version": FORMAT_VERSION, **_to_storable(payload)}
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            out = _WriteRecorder(f)
            try:
                torch.save(data, out)
            except Exception:
                if out.error is not None:
                    raise out.error from None
                raise
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise WriteError(f"cannot write checkpoint {path}: {exc.strerror or exc}; the previous checkpoint, "
                             "if any, is kept") from exc
        raise


def peek_checkpoint(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """The entries ``keys`` of a checkpoint, without reading its tensors (``mmap``: replay buffers are not
    read); same checks as :func:`load_checkpoint` except the trial hash."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises many kinds for truncated or foreign files
        raise CheckpointError(f"checkpoint {path} is corrupt or not a TargetBench checkpoint "
                              f"({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has an unknown format; expected format_version {FORMAT_VERSION}")
    return {k: data[k] for k in keys if k in data}


def load_checkpoint(path: Path, expected_trial: str) -> dict[str, Any]:
    """Load a checkpoint and check it belongs to the trial group ``expected_trial``."""
    remove_stale_tmp(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # torch raises many kinds for truncated or foreign files
        raise CheckpointError(f"checkpoint {path} is corrupt or not a TargetBench checkpoint "
                              f"({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has an unknown format; expected format_version {FORMAT_VERSION}")
    if data.get("trial_hash") != expected_trial:
        raise CheckpointError(f"checkpoint {path} belongs to trial {data.get('trial_hash')!r}, not {expected_trial!r} "
                              "(another agent, env, config or seed set)")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing and len(missing) < len(REQUIRED_KEYS):
        raise CheckpointError(f"checkpoint {path} is incomplete: missing {', '.join(missing)}; delete it to start "
                              "the trial afresh")
    state = _Checkpoint(_from_storable(data))
    state.path = path
    return state
