"""numpy kernels of the MLP agents (agents/nn/host_qnet.py): same gradients as torch autograd to float32 rounding,
bitwise replica independence, live parameter views, and which agents use them. (Thread-count independence is the
trainer's thread setup's guarantee: tests/suite/test_threads.py.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import agents.catalog  # noqa: F401 - registers the agents
from agents.agent import QAgent
from agents.replay import Batch
from agents.registry import get_agent, list_agents
from suite.envs import get_family

B, OBS, A = 16, 3, 2


def make_agent(name: str, seeds=(0, 1, 2), kernels: str = "auto", **overrides):
    values = dict(hidden_sizes=(7, 5), batch_size=B, buffer_size=64, learning_starts=0, train_frequency=1,
                  learning_rate=1e-2, gamma=0.9)
    values.update(overrides)
    spec = get_agent(name)
    cfg = spec.config_cls.for_family("classic", values)
    return spec.cls(cfg, obs_shape=(OBS,), obs_dtype=np.dtype(np.float32), num_actions=A, seeds=list(seeds),
                    family="classic", total_steps=100, kernels=kernels)


def make_batch(replicas: int, seed: int = 0, batch: int = B) -> Batch:
    """A minibatch per replica where replica r's rows depend on r only (so replica slices can be compared)."""
    rows = []
    for r in range(replicas):
        g = np.random.default_rng([seed, r])
        rows.append((g.normal(size=(batch, OBS)).astype(np.float32), g.integers(0, A, batch),
                     g.normal(size=batch).astype(np.float32), g.normal(size=(batch, OBS)).astype(np.float32),
                     (g.random(batch) < 0.2).astype(np.float32)))
    cols = [np.stack(c) for c in zip(*rows)]
    return Batch(*(torch.from_numpy(c) for c in cols))


def grads(agent) -> list[np.ndarray]:
    return [p.grad.detach().numpy().copy() for p in agent.trainable_parameters()]


@pytest.mark.parametrize("name", ["dqn", "dqn-soft", "double-dqn", "dqn-no-target"])
@pytest.mark.parametrize("loss", ["mse", "huber"])
def test_gradients_and_update_match_torch_autograd(name, loss):
    fast, slow = make_agent(name, loss=loss), make_agent(name, loss=loss, kernels="torch")
    assert fast.kernels == "numpy" and slow.kernels == "torch"
    # move the target away from the online net so the bootstrap network matters
    for agent in (fast, slow):
        if agent.target_rule.target is not None:
            with torch.no_grad():
                for p in agent.target_rule.target.parameters():
                    p.mul_(0.5)
    for step in range(3):
        batch = make_batch(3, seed=step)
        m_fast, m_slow = fast.update(batch), slow.update(batch)
        for key in ("loss", "q_mean"):
            np.testing.assert_allclose(m_fast[key].numpy(), m_slow[key].numpy(), rtol=1e-5, atol=1e-6)
        for gf, gs in zip(grads(fast), grads(slow)):
            np.testing.assert_allclose(gf, gs, rtol=1e-4, atol=1e-6)
    for pf, ps in zip(fast.online.parameters(), slow.online.parameters()):
        np.testing.assert_allclose(pf.detach().numpy(), ps.detach().numpy(), rtol=1e-5, atol=1e-6)
    # the update really moved the parameters (the comparison above is not of two untouched networks)
    fresh = make_agent(name, loss=loss)
    assert any(not torch.equal(p, q) for p, q in zip(fast.online.parameters(), fresh.online.parameters()))


def test_replica_alone_or_among_others_is_bitwise_identical():
    together, alone = make_agent("double-dqn", seeds=(4, 5, 6, 7)), make_agent("double-dqn", seeds=(6,))
    batch = make_batch(4)
    one = Batch(*(t[2:3] for t in (batch.obs, batch.action, batch.reward, batch.next_obs, batch.terminated)))
    for _ in range(3):
        m_all, m_one = together.update(batch), alone.update(one)
        assert m_all["loss"][2].item() == m_one["loss"][0].item()
        for g_all, g_one in zip(grads(together), grads(alone)):
            assert np.array_equal(g_all[2], g_one[0])
    obs = np.random.default_rng(1).normal(size=(4, OBS)).astype(np.float32)
    q_all = together._host_actor.q_values(obs[:, None])
    q_one = alone._host_actor.q_values(obs[2:3, None])
    assert np.array_equal(q_all[2], q_one[0])


def test_greedy_actions_follow_live_parameters():
    agent = make_agent("dqn")
    obs = np.random.default_rng(2).normal(size=(3, OBS)).astype(np.float32)

    def torch_q():
        return agent.online.act_values(torch.from_numpy(obs).unsqueeze(1))[:, 0].numpy()

    np.testing.assert_allclose(agent._host_actor.q_values(obs[:, None])[:, 0], torch_q(), rtol=1e-6, atol=1e-6)
    agent.update(make_batch(3))  # in-place optimizer step
    np.testing.assert_allclose(agent._host_actor.q_values(obs[:, None])[:, 0], torch_q(), rtol=1e-6, atol=1e-6)
    other = make_agent("dqn", seeds=(9, 8, 7))
    agent.load_state_dict(other.state_dict())  # in-place copies
    np.testing.assert_allclose(agent._host_actor.q_values(obs[:, None])[:, 0], torch_q(), rtol=1e-6, atol=1e-6)
    q = torch_q()
    clear = np.abs(q[:, 0] - q[:, 1]) > 1e-4  # argmax ties within rounding may go either way
    assert np.array_equal(agent.greedy_actions(obs)[clear], q.argmax(axis=-1)[clear])


def test_which_agents_use_the_numpy_kernels():
    expected = {"dqn": "numpy", "dqn-soft": "numpy", "double-dqn": "numpy", "dqn-no-target": "numpy",
                "agt2-dqn": "numpy-act", "sgt2-dqn": "numpy-act", "fr-dqn": "numpy-act", "isql": "torch",
                "idqn": "torch", "eaudeqn": "torch"}
    deep = [s.name for s in list_agents() if issubclass(s.cls, QAgent)]
    assert sorted(deep) == sorted(expected), "a new deep agent: add it here with the kernels it should get"
    for name in deep:
        assert make_agent(name).kernels == expected[name], name
        assert make_agent(name, kernels="torch").kernels == "torch"
    with pytest.raises(ValueError, match="unknown kernels 'jax'; allowed: auto, torch"):
        make_agent("dqn", kernels="jax")


def make_minatar_agent(name="dqn", seeds=(0, 1), kernels="auto", **overrides):
    spec = get_agent(name)
    values = dict(batch_size=8, buffer_size=16, learning_rate=1e-3, **overrides)
    minatar = get_family("minatar")
    cfg = minatar.agent_config(spec.config_cls, values)
    return spec.cls(cfg, obs_shape=(4, 10, 10), obs_dtype=np.dtype(np.uint8), num_actions=3, seeds=list(seeds),
                    family=minatar.facts, total_steps=100, kernels=kernels)


def minatar_batch(replicas: int, seed: int = 0) -> Batch:
    rows = []
    for r in range(replicas):
        g = np.random.default_rng([seed, r])
        rows.append(((g.random((8, 4, 10, 10)) < 0.1).astype(np.uint8), g.integers(0, 3, 8),
                     g.normal(size=8).astype(np.float32), (g.random((8, 4, 10, 10)) < 0.1).astype(np.uint8),
                     (g.random(8) < 0.2).astype(np.float32)))
    return Batch(*(torch.from_numpy(np.stack(c)) for c in zip(*rows)))


@pytest.mark.parametrize("name", ["dqn", "double-dqn"])
def test_minatar_cnn_gradients_match_torch_autograd(name):
    """The convolution's im2col layout and its weight gradient (the first layer: no input gradient needed)."""
    fast, slow = make_minatar_agent(name, loss="huber"), make_minatar_agent(name, loss="huber", kernels="torch")
    assert fast.kernels == "numpy" and slow.kernels == "torch"
    for step in range(2):
        batch = minatar_batch(2, seed=step)
        m_fast, m_slow = fast.update(batch), slow.update(batch)
        np.testing.assert_allclose(m_fast["loss"].numpy(), m_slow["loss"].numpy(), rtol=1e-5, atol=1e-6)
        for gf, gs in zip(grads(fast), grads(slow)):
            np.testing.assert_allclose(gf, gs, rtol=1e-4, atol=1e-6)
            assert np.abs(gs).max() > 0
    obs = (np.random.default_rng(3).random((2, 4, 10, 10)) < 0.1).astype(np.uint8)
    q_torch = slow.online.act_values(torch.from_numpy(obs).unsqueeze(1))[:, 0].numpy()
    np.testing.assert_allclose(fast._host_actor.q_values(obs[:, None])[:, 0], q_torch, rtol=1e-5, atol=1e-6)


def test_minatar_cnn_replica_alone_or_among_others_is_bitwise_identical():
    together, alone = make_minatar_agent(seeds=(4, 5, 6)), make_minatar_agent(seeds=(5,))
    batch = minatar_batch(3)
    one = Batch(*(t[1:2] for t in (batch.obs, batch.action, batch.reward, batch.next_obs, batch.terminated)))
    for _ in range(2):
        together.update(batch), alone.update(one)
        for g_all, g_one in zip(grads(together), grads(alone)):
            assert np.array_equal(g_all[1], g_one[0])


def test_atari_network_stays_on_torch():
    spec = get_agent("dqn")
    atari = get_family("atari")
    cfg = atari.agent_config(spec.config_cls, {"batch_size": 4, "buffer_size": 16})
    agent = spec.cls(cfg, obs_shape=(4, 84, 84), obs_dtype=np.dtype(np.uint8), num_actions=6, seeds=[0],
                     family=atari.facts, total_steps=100)
    assert agent.online.architecture == "nature-cnn" and agent.replay.frame_stack
    assert agent.kernels == "torch"
