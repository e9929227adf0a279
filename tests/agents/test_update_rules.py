"""One update of each bootstrap and target rule on a linear Q-function over 2 one-hot states × 2 actions,
against values computed by hand: Q(s, a) = W[s, a] + b[a]."""
import numpy as np
import pytest
import torch

from agents import get_agent
from agents.replay import Batch

GAMMA = 0.9
LR = 0.1
S0, S1 = [1.0, 0.0], [0.0, 1.0]


def make_agent(name, seeds=(0,), **overrides):
    spec = get_agent(name)
    base = {"optimizer": "sgd", "learning_rate": str(LR), "gamma": str(GAMMA), "buffer_size": "8",
            "batch_size": "1", "learning_starts": "0", "train_frequency": "1"}
    cfg = spec.config_cls.for_family("classic", {**base, **overrides})
    agent = spec.cls(cfg, obs_shape=(2,), obs_dtype=np.float32, num_actions=2, seeds=list(seeds),
                     family="classic", total_steps=100)
    return agent


def linear(agent):
    """Replace the MLP by a linear map (no hidden layer) with chosen weights, online and target."""
    from agents.nn import build_q_network
    from agents.seeding import torch_generator
    net = build_q_network("mlp", (2,), 2, [torch_generator(s, "init") for s in agent.seeds], hidden_sizes=())
    agent.online = net
    agent.target_rule = agent.make_target_rule(net)
    agent.optimizer = agent.make_optimizer(agent.trainable_parameters())
    with torch.no_grad():
        net.head.weight[:] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])   # W[s, a]
        net.head.bias[:] = torch.tensor([[0.0, 0.0]])
        if agent.target_rule.target is not None:
            agent.target_rule.target.head.weight[:] = torch.tensor([[0.5, 0.0], [5.0, -1.0]])
            agent.target_rule.target.head.bias[:] = torch.tensor([[0.0, 0.0]])
    return net


def batch(s, a, r, s2, d):
    return Batch(torch.tensor([[s]]), torch.tensor([[a]]), torch.tensor([[r]]), torch.tensor([[s2]]),
                 torch.tensor([[d]]))


def weights(net):
    return net.head.weight[0].detach().clone(), net.head.bias[0, 0].detach().clone()


@pytest.mark.parametrize("name, next_value", [
    ("dqn", 5.0),            # max_a' Q⁻(s1, a') = max(5, -1)
    ("double-dqn", -1.0),    # Q⁻(s1, argmax_a' Q(s1, a')) = Q⁻(s1, 1) since Q(s1) = (3, 4)
    ("dqn-soft", 5.0),
    ("dqn-no-target", 4.0),  # max_a' sg Q(s1, a') = max(3, 4)
])
def test_one_update_matches_hand_computation(name, next_value):
    agent = make_agent(name)
    net = linear(agent)
    target_before = [p.clone() for p in agent.target_rule.target.parameters()] if agent.target_rule.target else []
    # transition (s0, a=1, r=1, s1, not terminal): Q(s0,1) = 2; y = 1 + 0.9 * next_value
    y = 1.0 + GAMMA * next_value
    td = 2.0 - y
    agent.update(batch(S0, 1, 1.0, S1, 0.0))
    w, b = weights(net)
    # MSE gradient 2(Q − y) on W[0, 1] and b[1] only; the s1 row and action 0 are untouched.
    assert w[0, 1].item() == pytest.approx(2.0 - LR * 2 * td, abs=1e-6)
    assert b[1].item() == pytest.approx(-LR * 2 * td, abs=1e-6)
    assert w[0, 0].item() == 1.0 and w[1].tolist() == [3.0, 4.0] and b[0].item() == 0.0
    for before, after in zip(target_before, agent.target_rule.target.parameters() if target_before else []):
        assert torch.equal(before, after)  # the target receives no gradient and no optimizer step
        assert after.grad is None


def test_terminal_transition_does_not_bootstrap_and_huber_clips():
    agent = make_agent("dqn", loss="huber")
    net = linear(agent)
    agent.update(batch(S0, 0, 10.0, S1, 1.0))  # y = 10, Q(s0,0) = 1, |td| = 9 > 1: Huber gradient is -1
    w, b = weights(net)
    assert w[0, 0].item() == pytest.approx(1.0 + LR, abs=1e-6)
    assert b[0].item() == pytest.approx(LR, abs=1e-6)


def test_hard_update_copies_only_at_multiples_of_period():
    agent = make_agent("dqn", target_period="3")
    net = linear(agent)
    target = agent.target_rule.target
    for step in (1, 2):
        agent.target_rule.on_env_step(step)
        assert not torch.equal(target.head.weight, net.head.weight)
    agent.target_rule.on_env_step(3)
    assert all(torch.equal(t, o) for t, o in zip(target.parameters(), net.parameters()))


def test_soft_update_is_polyak_average():
    agent = make_agent("dqn-soft", tau="0.25", soft_every="2")
    linear(agent)
    target = agent.target_rule.target
    agent.target_rule.on_env_step(1)  # not a multiple of soft_every: no move
    assert target.head.weight[0].tolist() == [[0.5, 0.0], [5.0, -1.0]]
    agent.target_rule.on_env_step(2)
    expected = 0.75 * np.array([[0.5, 0.0], [5.0, -1.0]]) + 0.25 * np.array([[1.0, 2.0], [3.0, 4.0]])
    assert np.allclose(target.head.weight[0].numpy(), expected, atol=1e-7)


def test_target_bytes_and_parameter_count():
    hard, free = make_agent("dqn"), make_agent("dqn-no-target")
    assert hard.parameter_count() == free.parameter_count() == 2 * 120 + 120 + 120 * 84 + 84 + 84 * 2 + 2
    assert hard.target_bytes() == 4 * hard.parameter_count()
    assert free.target_bytes() == 0


def test_per_replica_gradient_clipping():
    agent = make_agent("dqn", seeds=(0, 1), max_grad_norm="0.5")
    linear(agent)
    obs = torch.tensor([[S0], [S0]])
    b = Batch(obs, torch.tensor([[1], [1]]), torch.tensor([[100.0], [2.0]]), torch.tensor([[S1], [S1]]),
              torch.tensor([[1.0], [1.0]]))
    metrics = agent.update(b)
    # replica 0: td = 2 - 100, grad (W01, b1) = 2·(−98)·(1, 1), norm 98·2·√2 → clipped to 0.5
    assert metrics["grad_norm"][0].item() == pytest.approx(196 * 2 ** 0.5, rel=1e-5)
    # replica 1: td = 0 → no gradient, unaffected by replica 0's clipping
    assert metrics["grad_norm"][1].item() == pytest.approx(0.0, abs=1e-6)
    w = agent.online.head.weight
    step0 = 2.0 - w[0, 0, 1].item()
    assert step0 == pytest.approx(-LR * 0.5 / 2 ** 0.5, rel=1e-4)
    assert w[1, 0, 1].item() == pytest.approx(2.0, abs=1e-7)
