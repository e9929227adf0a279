"""Uniform experience replay with one ring buffer per replica, stored compactly in host memory.

Layout (``C`` = capacity, ``R`` = replicas; slot-major, so one env step is one contiguous write):

* ``action``/``reward``/``terminated``: ``[C, R]`` numpy arrays (int64 / float32 / float32, the dtypes of
  :class:`Batch`).
* Observations are stored once. The next observation of slot ``j`` is the observation of slot ``j + 1``
  ("linked"), except where the episode ended at ``j`` — then the true next observation lives in a side
  pool (``_side[j, r]`` is its row there) — and for the newest slot, whose successor is not stored yet —
  its next observation is ``_pending``. When the next ``add`` arrives, the newest slot is either linked or
  its pending next observation moves to the side pool. Links never dangle: slot ``j + 1`` is written
  right after ``j`` and is overwritten only after ``j``.
* Plain mode: observations ``[C, R, *obs_shape]``.
* Frame-stack mode (``frame_stack=True``, observations ``(S, *frame)`` with the newest frame last, as
  gymnasium's ``FrameStackObservation`` gives): only the newest frame of each step is kept, in a ring of
  ``F = C + S - 1`` frames indexed by step time ``t % F`` (the ``S - 1`` extra frames keep the oldest
  slots' stacks complete). A step continues the previous step's stack when its obs is the previous
  ``next_obs`` (the same link condition as above) and that ``next_obs[:-1]`` equalled the previous
  ``obs[1:]`` bytewise (checked on ``add``); then the stack is rebuilt from the frame ring at sample time.
  Otherwise (an episode start, whose stack is the reset frame repeated, or any other break) its first
  ``S - 1`` frames are kept as a key frame. So reconstruction is exact whatever the env does (under the
  same ``episode_end`` contract as the links); the mode only decides how much is saved.

Sampling draws each replica's indices from that replica's own generator exactly as the original tensor
implementation did (``rng.integers(0, size, batch_size)`` per replica, in replica order), so the
minibatches are identical for the same history; the batch is gathered with numpy and handed to torch
without a copy on CPU (copied to the device otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["Batch", "ReplayBuffer"]

_FORMAT = "targetbench.ReplayBuffer/2"


@dataclass
class Batch:
    """A minibatch per replica: every tensor is ``[R, B, ...]``."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor


class _Pool:
    """Growable array of same-shaped entries with a free list, for the rare per-transition extras
    (true next observations of ended episodes, key frames of stack breaks)."""

    def __init__(self, entry_shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.entry_shape, self.dtype = entry_shape, dtype
        self.data = np.empty((0, *entry_shape), dtype=dtype)
        self._free: list[int] = []

    def alloc(self, n: int) -> np.ndarray:
        if len(self._free) < n:
            old = len(self.data)
            new = max(2 * old, old + n - len(self._free), 8)
            data = np.empty((new, *self.entry_shape), dtype=self.dtype)
            data[:old] = self.data
            self.data = data
            self._free.extend(range(new - 1, old - 1, -1))  # popped from the end: lowest rows first
        out = self._free[len(self._free) - n:]
        del self._free[len(self._free) - n:]
        return np.array(out, dtype=np.int64)

    def release(self, rows: np.ndarray) -> None:
        self._free.extend(rows.tolist())

    def load(self, data: np.ndarray) -> None:
        """Replace the contents with ``data`` (every row live)."""
        self.data = np.array(data, dtype=self.dtype, copy=True).reshape(-1, *self.entry_shape)
        self._free = []

    def nbytes(self) -> int:
        return self.data.nbytes


def _numpy_dtype(dtype: torch.dtype | np.dtype | type) -> np.dtype:
    if isinstance(dtype, torch.dtype):
        return torch.empty(0, dtype=dtype).numpy().dtype
    return np.dtype(dtype)


def _rows_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[R]`` bool: row ``r`` of ``a`` and ``b`` are bytewise equal (so -0.0 != 0.0 and NaN == same NaN)."""
    n = a.shape[0]
    a2, b2 = a.reshape(n, -1).view(np.uint8), b.reshape(n, -1).view(np.uint8)
    width = a2.shape[1]
    if width == 0:
        return np.ones(n, dtype=bool)
    for wide in (np.uint64, np.uint32, np.uint16):  # fewer, wider words: a smaller temporary, faster
        if width % np.dtype(wide).itemsize == 0:
            a2, b2 = a2.view(wide), b2.view(wide)
            break
    return (a2 == b2).all(axis=1)


def _as_numpy(x: Any) -> np.ndarray:
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _compact(index: np.ndarray, pool: _Pool) -> tuple[np.ndarray, np.ndarray]:
    """Pool rows referenced by ``index`` (``-1`` = none), renumbered ``0..L-1`` in index order."""
    live = index >= 0
    out = np.full(index.shape, -1, dtype=np.int32)
    rows = index[live]
    out[live] = np.arange(rows.size, dtype=np.int32)
    return out, pool.data[rows]


class ReplayBuffer:
    """R ring buffers filled in lockstep (one transition per replica per env step).

    Observations keep the environment's dtype (uint8 frames stay uint8). Sampling draws each replica's
    indices from that replica's own generator, so replicas never share randomness. Storage is host
    numpy memory (see the module docstring for the layout); batches come back as tensors on ``device``.

    Args:
        frame_stack: observations are frame stacks ``(S, *frame)``, newest frame last; store one frame
            per step (exact for any input — see the module docstring — but only smaller when consecutive
            observations really share ``S - 1`` frames, as Atari's ``FrameStackObservation`` does).
    """

    def __init__(self, num_replicas: int, capacity: int, obs_shape: Sequence[int], obs_dtype: torch.dtype,
                 rngs: Sequence[np.random.Generator], device: torch.device | str = "cpu", *,
                 frame_stack: bool = False) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be at least 1, got {capacity}")
        R = self.num_replicas = int(num_replicas)
        C = self.capacity = int(capacity)
        self.device = torch.device(device)
        self._on_cpu = self.device.type == "cpu"
        self.rngs = list(rngs)
        if len(self.rngs) != R:
            raise ValueError(f"{len(self.rngs)} generators for {R} replicas")
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.obs_dtype = _numpy_dtype(obs_dtype)
        self.frame_stack = bool(frame_stack)
        if self.frame_stack and len(self.obs_shape) < 1:
            raise ValueError("frame_stack needs observations shaped (stack, *frame)")
        self._action = np.zeros((C, R), dtype=np.int64)
        self._reward = np.zeros((C, R), dtype=np.float32)
        self._terminated = np.zeros((C, R), dtype=np.float32)
        self._side = np.full((C, R), -1, dtype=np.int32)  # side-pool row of slot's true next obs; -1: linked
        self._side_pool = _Pool(self.obs_shape, self.obs_dtype)
        self._pending = np.zeros((R, *self.obs_shape), dtype=self.obs_dtype)  # true next obs of the newest slot
        self._pending_end: np.ndarray | None = None  # its episode_end, if the caller gave it
        self._rows = np.arange(R, dtype=np.int64)[:, None]
        if self.frame_stack:
            S = self._stack = self.obs_shape[0]
            self._frame_shape = self.obs_shape[1:]
            F = self._ring = C + S - 1
            self._frames = np.zeros((F, R, *self._frame_shape), dtype=self.obs_dtype)
            # depth: how many preceding frames of the stack come from the ring (capped at S - 1); the rest
            # come from the key frames of the chain start at time t - depth.
            self._depth = np.zeros((F, R), dtype=np.uint8 if S <= 256 else np.int32)
            self._key = np.full((F, R), -1, dtype=np.int32)
            self._key_pool = _Pool((S - 1, *self._frame_shape), self.obs_dtype)
            self._slot_time = np.zeros(C, dtype=np.int64)  # step time of each slot (shared by replicas)
            self._shift_ok = np.zeros(R, dtype=bool)  # the previous add's next_obs[:-1] == its obs[1:]
        else:
            self._obs = np.zeros((C, R, *self.obs_shape), dtype=self.obs_dtype)
        self._t = 0  # adds so far: the step time of the next add
        self.pos = 0
        self.size = 0

    # -- adding --------------------------------------------------------------------------------------------
    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, *, episode_end: np.ndarray | None = None) -> None:
        """Store one transition for every replica (arrays with leading dimension R).

        ``episode_end`` (bool ``[R]``, ``terminated | truncated``) says where ``next_obs`` is *not* the
        ``obs`` of this replica's next ``add``; where it is False that equality is trusted (it holds for
        the trainer loop: the next obs acted on is ``StepResult.obs``). Without it the buffer compares the
        two arrays bytewise on the next ``add`` instead, which is exact for any caller.
        """
        R, C, i = self.num_replicas, self.capacity, self.pos
        shape = (R, *self.obs_shape)
        obs = np.asarray(obs, dtype=self.obs_dtype)
        if obs.shape != shape:
            obs = np.broadcast_to(obs, shape)
        ended = None  # per replica: the previous add's next_obs is not this obs
        if self._t > 0:
            ended = self._pending_end if self._pending_end is not None else ~_rows_equal(self._pending, obs)
        if C > 1 and ended is not None:
            # The newest slot p gets its successor now: link it, or keep its true next obs aside.
            p = (i - 1) % C
            if ended.any():
                rows = np.flatnonzero(ended)
                k = self._side_pool.alloc(rows.size)
                self._side_pool.data[k] = self._pending[rows]
                self._side[p, rows] = k
        if self.size == C:  # slot i's old transition is dropped (C == 1: the newest, never resolved)
            old = self._side[i]
            if old.max() >= 0:
                self._side_pool.release(old[old >= 0])
                self._side[i] = -1
        if self.frame_stack:
            self._add_frames(obs, i, ended)
        else:
            self._obs[i] = obs
        self._action[i] = action
        self._reward[i] = reward
        self._terminated[i] = terminated
        np.copyto(self._pending, next_obs, casting="unsafe")
        if self.frame_stack:  # next_obs shifts this obs by one frame (checked here, where both are at hand)
            self._shift_ok = _rows_equal(self._pending[:, :-1], obs[:, 1:])
        self._pending_end = None if episode_end is None else np.array(episode_end, dtype=bool).reshape(R)
        self._t += 1
        self.pos = (i + 1) % C
        self.size = min(self.size + 1, C)

    def _add_frames(self, obs: np.ndarray, slot: int, ended: np.ndarray | None) -> None:
        S, F, t = self._stack, self._ring, self._t
        f = t % F
        old = self._key[f]  # the key frames written F steps ago: no stored slot depends on them any more
        if old.max() >= 0:
            self._key_pool.release(old[old >= 0])
            self._key[f] = -1
        if ended is not None:
            # obs[:-1] == previous obs[1:] follows from next_obs == obs (the link, trusted from episode_end
            # or compared) and the previous add's checked shift, so no copy of the previous obs is needed.
            cont = ~ended & self._shift_ok
            depth = np.where(cont, np.minimum(self._depth[(t - 1) % F].astype(np.int64) + 1, S - 1), 0)
        else:
            cont = np.zeros(self.num_replicas, dtype=bool)
            depth = np.zeros(self.num_replicas, dtype=np.int64)
        if S > 1 and not cont.all():
            rows = np.flatnonzero(~cont)
            k = self._key_pool.alloc(rows.size)
            self._key_pool.data[k] = obs[rows, :-1]
            self._key[f, rows] = k
        self._frames[f] = obs[:, -1]
        self._depth[f] = depth
        self._slot_time[slot] = t

    # -- sampling ------------------------------------------------------------------------------------------
    def sample(self, batch_size: int) -> Batch:
        """Uniform minibatch of ``batch_size`` per replica (with replacement, as in CleanRL / SB3)."""
        idx = np.stack([rng.integers(0, self.size, size=batch_size) for rng in self.rngs])
        return self.gather(idx)

    def gather(self, idx: np.ndarray) -> Batch:
        """The transitions at slots ``idx`` (``[R, B]``, each ``< size``; row ``r`` indexes replica ``r``)."""
        R, C = self.num_replicas, self.capacity
        idx = np.asarray(idx, dtype=np.int64)
        flat = idx * R + self._rows  # slot-major [C, R] storage: slot j of replica r is j * R + r
        side = self._side.reshape(-1).take(flat)
        newest = idx == (self.pos - 1) % C
        has_side = side >= 0
        if self.frame_stack:
            times = self._slot_time.take(idx)
            obs = self._stacks(times)
            # positions whose next obs is not the following slot's obs are filled in below
            next_obs = self._stacks(np.where(has_side | newest, times, times + 1))
        else:
            store = self._obs.reshape(C * R, *self.obs_shape)
            obs = store.take(flat, axis=0)
            next_obs = store.take((idx + 1) % C * R + self._rows, axis=0)
        if has_side.any():
            next_obs[has_side] = self._side_pool.data[side[has_side]]
        if newest.any():
            next_obs[newest] = self._pending[np.nonzero(newest)[0]]
        return Batch(self._tensor(obs), self._tensor(self._action.reshape(-1).take(flat)),
                     self._tensor(self._reward.reshape(-1).take(flat)), self._tensor(next_obs),
                     self._tensor(self._terminated.reshape(-1).take(flat)))

    def _stacks(self, times: np.ndarray) -> np.ndarray:
        """Observation stacks ``[R, B, S, *frame]`` of step times ``times`` (``[R, B]``)."""
        R, S, F = self.num_replicas, self._stack, self._ring
        ring = self._frames.reshape(F * R, *self._frame_shape)
        ft = (times[..., None] + np.arange(1 - S, 1)) % F
        out = ring.take(ft * R + self._rows[..., None], axis=0)
        if S == 1:
            return out
        depth = self._depth[times % F, self._rows]
        rr, bb = np.nonzero(depth < S - 1)
        if rr.size:  # near a chain start: the oldest S-1-depth frames are that start's key frames
            d = depth[rr, bb].astype(np.int64)
            key = self._key[(times[rr, bb] - d) % F, rr]
            for k in range(S - 1):
                m = k < S - 1 - d
                if m.any():
                    out[rr[m], bb[m], k] = self._key_pool.data[key[m], k + d[m]]
        return out

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        # A fresh array per batch: the tensor shares its memory, so reusing a preallocated output would
        # silently rewrite batches a caller still holds.
        t = torch.from_numpy(a)
        return t if self._on_cpu else t.to(self.device)

    # -- accounting and state ------------------------------------------------------------------------------
    def nbytes(self) -> int:
        """Bytes of host memory reserved for the stored transitions of all replicas (arrays are zero-filled
        lazily by the OS, so resident memory grows as the buffer fills)."""
        arrays = [self._action, self._reward, self._terminated, self._side, self._pending]
        if self.frame_stack:
            arrays += [self._frames, self._depth, self._key, self._slot_time, self._shift_ok]
            pools = self._side_pool.nbytes() + self._key_pool.nbytes()
        else:
            arrays.append(self._obs)
            pools = self._side_pool.nbytes()
        return sum(a.nbytes for a in arrays) + pools

    def state_dict(self) -> dict:
        """Data-only state (torch tensors and python scalars) from which sampling continues exactly.

        Only the filled part is saved; the large tensors share memory with the buffer (as module state
        dicts do), so serialize the state before the next ``add``.
        """
        n = self.size
        side, side_obs = _compact(self._side[:n], self._side_pool)
        state: dict[str, Any] = {
            "format": _FORMAT, "capacity": self.capacity, "num_replicas": self.num_replicas,
            "frame_stack": self.frame_stack, "pos": self.pos, "size": self.size, "time": self._t,
            "action": torch.from_numpy(self._action[:n]), "reward": torch.from_numpy(self._reward[:n]),
            "terminated": torch.from_numpy(self._terminated[:n]), "side_index": torch.from_numpy(side),
            "side_obs": torch.from_numpy(side_obs), "pending": torch.from_numpy(self._pending.copy()),
            "pending_end": None if self._pending_end is None else torch.from_numpy(self._pending_end.copy()),
            "rngs": [rng.bit_generator.state for rng in self.rngs]}
        if self.frame_stack:
            m = min(self._t, self._ring)  # frame ring entries written so far (a prefix until it wraps)
            key, key_frames = _compact(self._key[:m], self._key_pool)
            state.update(frames=torch.from_numpy(self._frames[:m]), depth=torch.from_numpy(self._depth[:m]),
                         key_index=torch.from_numpy(key), key_frames=torch.from_numpy(key_frames),
                         slot_time=torch.from_numpy(self._slot_time[:n]),
                         shift_ok=torch.from_numpy(self._shift_ok.copy()))
        else:
            state["obs"] = torch.from_numpy(self._obs[:n])
        return state

    def load_state_dict(self, state: dict) -> None:
        if state.get("format") != _FORMAT:
            raise ValueError(f"replay state has format {state.get('format')!r}; expected {_FORMAT!r} (states of "
                             "older versions cannot be loaded: start the trial afresh)")
        if state["capacity"] != self.capacity or state["num_replicas"] != self.num_replicas:
            raise ValueError(f"replay state has capacity {state['capacity']} x {state['num_replicas']} replicas; "
                             f"expected {self.capacity} x {self.num_replicas}")
        if bool(state["frame_stack"]) != self.frame_stack:
            raise ValueError(f"replay state has frame_stack={state['frame_stack']}, this buffer {self.frame_stack}")
        pending = _as_numpy(state["pending"])
        if pending.shape != self._pending.shape or pending.dtype != self.obs_dtype:
            raise ValueError(f"replay state holds observations {pending.dtype}{list(pending.shape[1:])}; "
                             f"expected {self.obs_dtype}{list(self.obs_shape)}")
        self._clear()
        n = int(state["size"])
        self._action[:n] = _as_numpy(state["action"])
        self._reward[:n] = _as_numpy(state["reward"])
        self._terminated[:n] = _as_numpy(state["terminated"])
        self._side[:n] = _as_numpy(state["side_index"])
        self._side_pool.load(_as_numpy(state["side_obs"]))
        self._pending[...] = pending
        end = state["pending_end"]
        self._pending_end = None if end is None else np.array(_as_numpy(end), dtype=bool)
        self._t = int(state["time"])
        if self.frame_stack:
            m = min(self._t, self._ring)
            self._frames[:m] = _as_numpy(state["frames"])
            self._depth[:m] = _as_numpy(state["depth"])
            self._key[:m] = _as_numpy(state["key_index"])
            self._key_pool.load(_as_numpy(state["key_frames"]))
            self._slot_time[:n] = _as_numpy(state["slot_time"])
            self._shift_ok[...] = _as_numpy(state["shift_ok"])
        else:
            self._obs[:n] = _as_numpy(state["obs"])
        self.pos, self.size = int(state["pos"]), n
        self._set_rng_states(state["rngs"])

    def _clear(self) -> None:
        self._side.fill(-1)
        self._side_pool.load(self._side_pool.data[:0])
        self._pending_end = None
        if self.frame_stack:
            self._key.fill(-1)
            self._key_pool.load(self._key_pool.data[:0])
        self._t = self.pos = self.size = 0

    def _set_rng_states(self, states: Sequence[dict]) -> None:
        for rng, s in zip(self.rngs, states, strict=True):
            rng.bit_generator.state = s
