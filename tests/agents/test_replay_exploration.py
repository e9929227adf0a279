"""Replay ring buffer, ε schedules and per-replica exploration streams."""
import numpy as np
import pytest
import torch

from agents.exploration import EpsilonGreedy, ExponentialGapSchedule, ExponentialSchedule, LinearSchedule
from agents.replay import ReplayBuffer
from agents.seeding import numpy_rng


def test_linear_schedule():
    s = LinearSchedule(1.0, 0.1, 100)
    assert s(0) == 1.0 and s(50) == pytest.approx(0.55) and s(100) == pytest.approx(0.1) and s(10**6) == pytest.approx(0.1)


def test_exponential_schedule_reaches_end_at_duration():
    s = ExponentialSchedule(1.0, 0.01, 100)
    assert s(0) == 1.0 and s(50) == pytest.approx(0.1) and s(100) == 0.01 and s(1000) == 0.01
    assert all(s(t) >= s(t + 1) for t in range(150))


def test_exponential_gap_schedule_is_the_pytorch_tutorials():
    """The PyTorch DQN tutorial's select_action: ε from steps_done (actions taken before this one), then +1."""
    import math
    EPS_START, EPS_END, EPS_DECAY = 0.9, 0.05, 1000
    s = ExponentialGapSchedule(EPS_START, EPS_END, EPS_DECAY)
    steps_done = 0
    for _ in range(5000):
        eps_threshold = EPS_END + (EPS_START - EPS_END) * math.exp(-1. * steps_done / EPS_DECAY)
        assert s(steps_done) == eps_threshold  # bitwise: the same expression
        steps_done += 1
    assert s(0) == 0.9 and s(1000) == pytest.approx(0.05 + 0.85 / math.e) and s(10_000) > 0.05
    # unlike ExponentialSchedule, which reaches its end at the duration
    assert ExponentialSchedule(0.9, 0.05, 1000)(1000) == 0.05


def test_replay_wraps_around_and_keeps_dtype():
    buf = ReplayBuffer(2, 3, (2,), torch.uint8, [numpy_rng(0, "r"), numpy_rng(1, "r")])
    for t in range(5):
        obs = np.full((2, 2), t, dtype=np.uint8)
        buf.add(obs, np.array([t, t]), np.array([t, -t], dtype=np.float32), obs + 1, np.array([False, t == 4]))
    assert buf.size == 3 and buf.pos == 2
    # slots hold steps 3, 4, 2 (positions 0, 1, 2) after wrapping
    slots = buf.gather(np.array([[0, 1, 2], [0, 1, 2]]))
    assert slots.obs[0, :, 0].tolist() == [3, 4, 2] and slots.obs.dtype == torch.uint8
    assert slots.terminated[1].tolist() == [0.0, 1.0, 0.0]
    batch = buf.sample(16)
    assert batch.obs.shape == (2, 16, 2) and set(batch.action[0].tolist()) <= {2, 3, 4}
    # next_obs stays paired with obs after sampling
    assert torch.equal(batch.next_obs.long(), batch.obs.long() + 1)


def test_replay_sampling_per_replica_streams():
    def sample_for(seeds):
        buf = ReplayBuffer(len(seeds), 50, (1,), torch.float32, [numpy_rng(s, "replay") for s in seeds])
        for t in range(50):
            buf.add(np.full((len(seeds), 1), t), np.zeros(len(seeds)), np.zeros(len(seeds)), np.zeros((len(seeds), 1)),
                    np.zeros(len(seeds)))
        return buf.sample(8).obs
    assert torch.equal(sample_for([5])[0], sample_for([1, 5, 9])[1])


def test_replay_state_roundtrip():
    buf = ReplayBuffer(1, 4, (1,), torch.float32, [numpy_rng(0, "r")])
    for t in range(6):
        buf.add(np.array([[t]]), np.array([t]), np.array([t]), np.array([[t]]), np.array([0]))
    other = ReplayBuffer(1, 4, (1,), torch.float32, [numpy_rng(7, "r")])
    other.load_state_dict(buf.state_dict())
    every_slot = np.arange(4)[None]
    assert torch.equal(other.gather(every_slot).obs, buf.gather(every_slot).obs) and other.pos == buf.pos
    assert torch.equal(other.sample(5).obs, buf.sample(5).obs)


def test_epsilon_greedy_streams_are_per_replica():
    alone = EpsilonGreedy([numpy_rng(3, "explore")], 4)
    shared = EpsilonGreedy([numpy_rng(0, "explore"), numpy_rng(3, "explore")], 4)
    for _ in range(3000):  # spans several pre-drawn blocks
        a = alone.select(np.array([1]), 0.5)
        b = shared.select(np.array([2, 1]), 0.5)
        assert a[0] == b[1]


def test_epsilon_greedy_frequencies():
    eg = EpsilonGreedy([numpy_rng(0, "explore")], 4)
    picks = np.array([eg.select(np.array([0]), 0.2)[0] for _ in range(20000)])
    # P(action 0) = 0.8 + 0.2/4
    assert abs(np.mean(picks == 0) - 0.85) < 0.01
    assert np.all(np.array([eg.select(np.array([2]), 0.0)[0] for _ in range(100)]) == 2)
