"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)`` so loading never runs code.

numpy arrays (environment states) are stored as tensors with a marker and restored as arrays. A write goes to
``<name>.pt<random>.tmp`` next to the checkpoint and is renamed over it; a process killed during a write leaves
that file behind, so every write and load first removes the stale temporary files of the same checkpoint (one
writer per checkpoint: a trial group is trained by one process at a time).

Large tensors (replay buffers: an Atari replay at 1M transitions is ~7 GB per replica) are written
incrementally: a tensor of at least :data:`CHUNK_MIN_BYTES` is cut into :data:`CHUNK_BYTES` pieces stored as
content-addressed files ``<name>.pt.chunks/<blake2b>`` and the checkpoint file holds only their list. A piece
already on disk is not written again, so a checkpoint writes only what changed since the previous one (the ring
slots filled since then), plus the hashing (about 1 GB/s). Order: new pieces (fsync), then the checkpoint file
(atomic rename), then the pieces no longer referenced are deleted: a kill at any point leaves the previous
checkpoint complete. Loading reassembles the tensors bit for bit (each piece checked against its hash).
"""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from suite.errors import CheckpointError, WriteError

if TYPE_CHECKING:
    from suite.trial import TrialSpec

__all__ = ["save_checkpoint", "load_checkpoint", "peek_checkpoint", "checkpoint_path", "remove_stale_tmp", "FORMAT_VERSION",
           "chunk_dir", "move_checkpoint", "CHUNK_MIN_BYTES", "CHUNK_BYTES",
           "REQUIRED_KEYS"]

FORMAT_VERSION = 1
_ND = "__ndarray__"
_CHUNKED = "__chunked__"
#: tensors at least this large are stored as content-addressed pieces next to the checkpoint (see above)
CHUNK_MIN_BYTES = 64 << 20
#: size of one piece
CHUNK_BYTES = 16 << 20
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


def chunk_dir(path: Path) -> Path:
    """The folder of checkpoint ``path``'s large-tensor pieces."""
    return Path(path).parent / f"{Path(path).name}.chunks"


def _digest(data: memoryview) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def _split_large(obj: Any, folder: Path, used: set[str], written: list[int]) -> Any:
    """``obj`` with each large tensor replaced by the list of its pieces; new pieces are written to ``folder``."""
    if isinstance(obj, torch.Tensor) and obj.numel() * obj.element_size() >= CHUNK_MIN_BYTES:
        try:
            flat = obj.detach().cpu().contiguous().numpy().reshape(-1).view(np.uint8)
        except (TypeError, RuntimeError):  # dtypes numpy lacks (bfloat16): stored inline
            return obj
        pieces = []
        for start in range(0, flat.size, CHUNK_BYTES):
            data = memoryview(flat[start:start + CHUNK_BYTES])
            key = _digest(data)
            pieces.append(key)
            if key not in used and not (folder / key).exists():
                folder.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=key, suffix=".tmp")
                try:
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                        f.flush()
                        os.fsync(f.fileno())
                    os.replace(tmp, folder / key)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
                written[0] += len(data)
            used.add(key)
        return {_CHUNKED: pieces, "dtype": str(obj.dtype).removeprefix("torch."), "shape": list(obj.shape)}
    if isinstance(obj, dict):
        return {k: _split_large(v, folder, used, written) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_split_large(v, folder, used, written) for v in obj]
    return obj


def _join_large(obj: Any, folder: Path) -> Any:
    if isinstance(obj, dict):
        if _CHUNKED in obj:
            buf = bytearray()
            for key in obj[_CHUNKED]:
                try:
                    data = (folder / key).read_bytes()
                except FileNotFoundError:
                    raise CheckpointError(f"checkpoint piece {folder / key} is missing; delete the checkpoint to "
                                          "start the trial afresh") from None
                if _digest(memoryview(data)) != key:
                    raise CheckpointError(f"checkpoint piece {folder / key} is corrupt; delete the checkpoint to "
                                          "start the trial afresh")
                buf += data
            dtype = getattr(torch, obj["dtype"])
            return torch.frombuffer(buf, dtype=torch.uint8).view(dtype).reshape(obj["shape"]).clone() \
                if buf else torch.empty(obj["shape"], dtype=dtype)
        return {k: _join_large(v, folder) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_large(v, folder) for v in obj]
    return obj


def _prune_chunks(folder: Path, used: set[str]) -> None:
    """Delete the pieces the current checkpoint does not reference (and stale temporary ones)."""
    if not folder.is_dir():
        return
    for piece in folder.iterdir():
        if piece.name not in used:
            piece.unlink(missing_ok=True)
    if not used:
        try:
            folder.rmdir()
        except OSError:
            pass


def move_checkpoint(src: Path, dest: Path) -> None:
    """Move checkpoint ``src`` (with its pieces) to ``dest``: pieces first, then the file (atomic rename)."""
    pieces = chunk_dir(src)
    if pieces.is_dir():
        target = chunk_dir(dest)
        target.mkdir(parents=True, exist_ok=True)
        for piece in pieces.iterdir():
            if not piece.name.endswith(".tmp"):
                os.replace(piece, target / piece.name)
        shutil.rmtree(pieces, ignore_errors=True)
    os.replace(src, dest)


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


def save_checkpoint(path: Path, payload: dict[str, Any]) -> int:
    """Write ``payload`` to ``path`` atomically: a crash or a full disk leaves the previous checkpoint intact.
    Returns the bytes written (the checkpoint file and the large-tensor pieces that were not on disk yet).

    Raises:
        WriteError: the file could not be written (disk full, quota, read-only file system, ...).
    """
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(path)
        used: set[str] = set()
        written = [0]
        data = {"format_version": FORMAT_VERSION,
                **_split_large(_to_storable(payload), chunk_dir(path), used, written)}
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
        tmp = None
        _prune_chunks(chunk_dir(path), used)
        return written[0] + path.stat().st_size
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
    state = _Checkpoint(_from_storable(_join_large(data, chunk_dir(path))))
    state.path = path
    return state
