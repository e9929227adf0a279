"""The compact replay buffer samples exactly what the original tensor buffer sampled.

``_ReferenceReplayBuffer`` is the original implementation (obs and next_obs stored separately as tensors),
kept verbatim here as the oracle: for the same history and seeds both must return bitwise-equal batches,
which keeps every training result unchanged.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
import torch

from agents.replay import Batch, ReplayBuffer
from agents.seeding import numpy_rng

FIELDS = ("obs", "action", "reward", "next_obs", "terminated")


class _ReferenceReplayBuffer:
    """The original ``agents.replay.ReplayBuffer`` (before the compact storage), unchanged."""

    def __init__(self, num_replicas: int, capacity: int, obs_shape: Sequence[int], obs_dtype: torch.dtype,
                 rngs: Sequence[np.random.Generator], device: torch.device | str = "cpu") -> None:
        self.num_replicas, self.capacity = num_replicas, capacity
        self.device = torch.device(device)
        self.rngs = list(rngs)
        shape = (num_replicas, capacity, *obs_shape)
        self.obs = torch.zeros(shape, dtype=obs_dtype, device=self.device)
        self.next_obs = torch.zeros(shape, dtype=obs_dtype, device=self.device)
        self.action = torch.zeros((num_replicas, capacity), dtype=torch.int64, device=self.device)
        self.reward = torch.zeros((num_replicas, capacity), dtype=torch.float32, device=self.device)
        self.terminated = torch.zeros((num_replicas, capacity), dtype=torch.float32, device=self.device)
        self.pos = 0
        self.size = 0
        self._rows = torch.arange(num_replicas, device=self.device).unsqueeze(1)

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray) -> None:
        i = self.pos
        self.obs[:, i] = torch.as_tensor(obs, device=self.device)
        self.next_obs[:, i] = torch.as_tensor(next_obs, device=self.device)
        self.action[:, i] = torch.as_tensor(action, device=self.device)
        self.reward[:, i] = torch.as_tensor(reward, device=self.device)
        self.terminated[:, i] = torch.as_tensor(terminated, device=self.device)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        idx = np.stack([rng.integers(0, self.size, size=batch_size) for rng in self.rngs])
        idx_t = torch.from_numpy(idx).to(self.device)
        rows = self._rows
        return Batch(self.obs[rows, idx_t], self.action[rows, idx_t], self.reward[rows, idx_t],
                     self.next_obs[rows, idx_t], self.terminated[rows, idx_t])

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.obs, self.next_obs, self.action, self.reward,
                                                            self.terminated))

    def state_dict(self) -> dict:
        n = self.size
        return {"obs": self.obs[:, :n].cpu(), "next_obs": self.next_obs[:, :n].cpu(),
                "action": self.action[:, :n].cpu(), "reward": self.reward[:, :n].cpu(),
                "terminated": self.terminated[:, :n].cpu(), "pos": self.pos, "size": self.size,
                "capacity": self.capacity, "rngs": [rng.bit_generator.state for rng in self.rngs]}


# ------------------------------------------------------------------------------------------- helpers


def _rngs(n: int, offset: int = 0) -> list[np.random.Generator]:
    return [numpy_rng(s + offset, "replay") for s in range(n)]


def _assert_same(a: Batch, b: Batch) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        # bytewise, so -0.0 vs 0.0 and NaN payloads count as differences
        assert x.contiguous().view(torch.uint8).equal(y.contiguous().view(torch.uint8)), name


def _assert_same_contents(ref: _ReferenceReplayBuffer, buf: ReplayBuffer) -> None:
    """Every stored transition (not just sampled ones) is identical."""
    assert (ref.pos, ref.size) == (buf.pos, buf.size)
    idx = np.tile(np.arange(ref.size), (ref.num_replicas, 1))
    rows = ref._rows
    _assert_same(Batch(*(getattr(ref, f)[rows, torch.from_numpy(idx)] for f in FIELDS)), buf.gather(idx))


class _Stream:
    """Transitions as the trainer feeds them: ``obs`` is the previous step's ``StepResult.obs`` (the reset
    observation where an episode ended, the true next observation otherwise)."""

    def __init__(self, kind: str, num_replicas: int, seed: int, end_rate: float = 0.1) -> None:
        self.kind, self.R, self.end_rate = kind, num_replicas, end_rate
        self.rs = np.random.default_rng(seed)
        self.shape, self.torch_dtype = {"vector": ((3,), torch.float32), "uint8": ((3, 3, 2), torch.uint8),
                                        "frames": ((4, 3, 3), torch.uint8)}[kind]
        self.obs = self._reset()

    def _frame(self, n: int) -> np.ndarray:
        # binary 3x3 frames: coincidental repeats across steps and episodes are common
        return self.rs.integers(0, 2, (n, *self.shape[1:]), dtype=np.uint8)

    def _reset(self) -> np.ndarray:
        if self.kind == "frames":  # FrameStackObservation(padding_type="reset"): the reset frame, repeated
            return np.repeat(self._frame(self.R)[:, None], self.shape[0], axis=1)
        return self._next_values()

    def _next_values(self) -> np.ndarray:
        if self.kind == "vector":
            # few distinct values, signed zeros and NaN: bytewise comparisons matter
            pool = np.array([0.0, -0.0, 1.5, np.nan, -2.25], dtype=np.float32)
            return pool[self.rs.integers(0, len(pool), (self.R, *self.shape))]
        return self.rs.integers(0, 3, (self.R, *self.shape), dtype=np.uint8)

    def step(self) -> tuple[tuple, np.ndarray]:
        """``(obs, action, reward, next_obs, terminated)`` and ``episode_end``."""
        if self.kind == "frames":
            next_obs = np.concatenate([self.obs[:, 1:], self._frame(self.R)[:, None]], axis=1)
            # now and then a step that is no frame shift, within the episode: frame mode must stay exact
            glitch = self.rs.random(self.R) < 0.03
            next_obs[glitch] = self.rs.integers(0, 2, next_obs[glitch].shape, dtype=np.uint8)
        else:
            next_obs = self._next_values()
        terminated = self.rs.random(self.R) < self.end_rate
        truncated = self.rs.random(self.R) < self.end_rate / 2
        action = self.rs.integers(0, 6, self.R)
        reward = self.rs.standard_normal(self.R).astype(np.float32)
        out = (self.obs, action, reward, next_obs, terminated)
        end = terminated | truncated
        self.obs = next_obs.copy()
        if end.any():
            fresh = self._reset()
            self.obs[end] = fresh[end]
        return out, end


def _pair(stream: _Stream, capacity: int) -> tuple[_ReferenceReplayBuffer, ReplayBuffer]:
    R = stream.R
    ref = _ReferenceReplayBuffer(R, capacity, stream.shape, stream.torch_dtype, _rngs(R))
    buf = ReplayBuffer(R, capacity, stream.shape, stream.torch_dtype, _rngs(R), frame_stack=stream.kind == "frames")
    return ref, buf


# --------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("kind", ["vector", "uint8", "frames"])
@pytest.mark.parametrize("num_replicas", [1, 4])
@pytest.mark.parametrize("capacity", [1, 2, 3, 7, 40])
@pytest.mark.parametrize("with_episode_end", [True, False])
def test_batches_identical_to_reference(kind, num_replicas, capacity, with_episode_end):
    stream = _Stream(kind, num_replicas, seed=1000 * capacity + num_replicas)
    ref, buf = _pair(stream, capacity)
    for t in range(220):  # several wrap-arounds of every capacity, many episode ends
        args, end = stream.step()
        ref.add(*args)
        buf.add(*args, episode_end=end if with_episode_end else None)
        _assert_same(ref.sample(5), buf.sample(5))
        if t % 17 == 0 or t > 200:
            _assert_same_contents(ref, buf)


def test_frame_stacks_with_long_and_short_episodes():
    # episodes from 1 step up to longer than the stack, capacity not a multiple of anything
    stream = _Stream("frames", 3, seed=7, end_rate=0.04)
    ref, buf = _pair(stream, 23)
    for t in range(600):
        args, end = stream.step()
        if t % 50 == 0:  # a one-step episode on replica 1
            end[1] = True
        ref.add(*args)
        buf.add(*args, episode_end=end)
        _assert_same(ref.sample(16), buf.sample(16))
    _assert_same_contents(ref, buf)


def test_fallback_compares_bytes_not_values():
    # next_obs -0.0, next add's obs +0.0: equal as floats, so only a bytewise check keeps the sign
    buf = ReplayBuffer(1, 4, (1,), torch.float32, _rngs(1))
    buf.add(np.array([[1.0]]), np.array([0]), np.array([0.0]), np.array([[-0.0]]), np.array([False]))
    buf.add(np.array([[0.0]]), np.array([0]), np.array([0.0]), np.array([[2.0]]), np.array([False]))
    first = buf.gather(np.array([[0]])).next_obs
    assert torch.signbit(first).item()


def test_old_callers_broadcast_and_cast_like_before():
    # the original accepted any array torch could assign: lists, other dtypes, broadcastable shapes
    ref = _ReferenceReplayBuffer(2, 3, (2,), torch.float32, _rngs(2))
    buf = ReplayBuffer(2, 3, (2,), torch.float32, _rngs(2))
    for t in range(5):
        args = (np.full((2, 2), t / 3.0, dtype=np.float64), [t, 1.7], [True, False], np.array([t, -t]),
                np.array([0, t % 2]))
        ref.add(*args)
        buf.add(*args)
        _assert_same(ref.sample(4), buf.sample(4))


@pytest.mark.parametrize("kind", ["vector", "frames"])
@pytest.mark.parametrize("capacity", [1, 2, 9])
def test_state_roundtrip_through_checkpoint_continues_identically(tmp_path: Path, kind, capacity):
    stream = _Stream(kind, 2, seed=capacity)
    ref, buf = _pair(stream, capacity)
    for t in range(120):
        args, end = stream.step()
        ref.add(*args)
        buf.add(*args, episode_end=end if t % 2 else None)  # both pending kinds get saved
        _assert_same(ref.sample(3), buf.sample(3))
        if t % 13 == 4:
            state = buf.state_dict()
            _assert_data_only(state)
            torch.save({"replay": state}, tmp_path / "c.pt")  # checkpoints load with weights_only=True
            fresh = ReplayBuffer(2, capacity, stream.shape, stream.torch_dtype, _rngs(2, offset=50),
                                 frame_stack=buf.frame_stack)
            if t % 26 == 4:  # loading into a used buffer: nothing of its old contents may leak through
                other = _Stream(kind, 2, seed=99, end_rate=0.3)
                for _ in range(capacity + 5):
                    args2, end2 = other.step()
                    fresh.add(*args2, episode_end=end2)
            fresh.load_state_dict(torch.load(tmp_path / "c.pt", weights_only=True)["replay"])
            assert fresh.nbytes() <= buf.nbytes()
            buf = fresh
            _assert_same_contents(ref, buf)


def test_state_dict_saves_only_the_filled_part():
    buf = ReplayBuffer(1, 10_000, (4, 8, 8), torch.uint8, _rngs(1), frame_stack=True)
    stream = _Stream("frames", 1, seed=3)
    stream.shape = (4, 8, 8)
    stream.obs = np.zeros((1, 4, 8, 8), dtype=np.uint8)
    for _ in range(10):
        args, end = stream.step()
        buf.add(*args, episode_end=end)
    out = io.BytesIO()
    torch.save(buf.state_dict(), out)  # views of the first rows serialize only those rows
    assert len(out.getvalue()) < 20_000 and buf.nbytes() > 900_000


def test_refuses_the_original_state_format():
    stream = _Stream("frames", 2, seed=11)
    ref, _ = _pair(stream, 6)
    for _ in range(15):
        args, _ = stream.step()
        ref.add(*args)
    buf = ReplayBuffer(2, 6, stream.shape, torch.uint8, _rngs(2, offset=9))
    with pytest.raises(ValueError, match="replay state has format None; expected"):
        buf.load_state_dict(ref.state_dict())


def test_state_rejects_a_mismatched_buffer():
    buf = ReplayBuffer(2, 5, (3,), torch.float32, _rngs(2))
    buf.add(np.zeros((2, 3)), np.zeros(2), np.zeros(2), np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(2, 6, (3,), torch.float32, _rngs(2)).load_state_dict(buf.state_dict())
    with pytest.raises(ValueError, match="frame_stack"):
        ReplayBuffer(2, 5, (3,), torch.float32, _rngs(2), frame_stack=True).load_state_dict(buf.state_dict())
    with pytest.raises(ValueError, match="observations"):
        ReplayBuffer(2, 5, (4,), torch.float32, _rngs(2)).load_state_dict(buf.state_dict())


def _assert_data_only(obj) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, str)
            _assert_data_only(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _assert_data_only(v)
    else:
        assert obj is None or isinstance(obj, (torch.Tensor, bool, int, float, str)), type(obj)


def test_memory_obs_dominated_and_frame_stacks():
    # MinAtar-like frames: one copy of each observation instead of two
    minatar_ref = _ReferenceReplayBuffer(2, 500, (10, 10, 4), torch.uint8, _rngs(2))
    minatar = ReplayBuffer(2, 500, (10, 10, 4), torch.uint8, _rngs(2))
    assert minatar_ref.nbytes() == 2 * 500 * (2 * 400 + 16)  # the formula used for Atari below
    assert minatar_ref.nbytes() / minatar.nbytes() > 1.9
    # Atari frame stacks, filled with 150-step episodes: one 84x84 frame per step. The original's bytes
    # by its formula (obs + next_obs + int64 action + float32 reward and terminated), not allocated here.
    atari_ref_nbytes = 2 * 5000 * (2 * 4 * 84 * 84 + 16)
    atari = ReplayBuffer(2, 5000, (4, 84, 84), torch.uint8, _rngs(2), frame_stack=True)
    rs = np.random.default_rng(0)
    obs = np.repeat(rs.integers(0, 255, (2, 1, 84, 84), dtype=np.uint8), 4, axis=1)
    for t in range(1, 900):
        next_obs = np.concatenate([obs[:, 1:], rs.integers(0, 255, (2, 1, 84, 84), dtype=np.uint8)], axis=1)
        end = np.full(2, t % 150 == 0)
        atari.add(obs, np.zeros(2), np.zeros(2), next_obs, end, episode_end=end)
        obs = np.repeat(next_obs[:, -1:], 4, axis=1) if end[0] else next_obs
    assert atari_ref_nbytes / atari.nbytes() > 7.8


@pytest.mark.parametrize(("env_id", "options"), [
    ("ALE/Pong-v5", {"max_episode_steps": 9, "screen_size": 42}),
    ("ALE/Pong-v5", {"max_episode_steps": 30, "grayscale": False, "frame_stack": 2, "screen_size": 21}),
    ("CartPole-v1", {"max_episode_steps": 12}),
])
def test_real_envs_in_the_trainer_loop(env_id, options):
    from suite.envs.replicas import ReplicaEnvs  # noqa: PLC0415 - env stack only for this test

    with ReplicaEnvs(env_id, [0, 1], options=options) as envs:
        torch_dtype = torch.from_numpy(np.zeros(0, dtype=envs.observation_dtype)).dtype
        ref = _ReferenceReplayBuffer(2, 25, envs.observation_shape, torch_dtype, _rngs(2))
        buf = ReplayBuffer(2, 25, envs.observation_shape, torch_dtype, _rngs(2),
                           frame_stack=env_id.startswith("ALE/"))
        rs = np.random.default_rng(0)
        obs = envs.reset()
        for _ in range(70):
            actions = rs.integers(0, envs.num_actions, 2)
            res = envs.step(actions)
            ref.add(obs, actions, res.reward, res.next_obs, res.terminated)
            buf.add(obs, actions, res.reward, res.next_obs, res.terminated, episode_end=res.terminated | res.truncated)
            obs = res.obs
            _assert_same(ref.sample(8), buf.sample(8))
        _assert_same_contents(ref, buf)
