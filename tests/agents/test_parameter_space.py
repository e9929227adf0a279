"""The parameter-space readings of AGT2 and SGT2 (``space=parameters``): AGT2 with SGD is Polyak averaging under
another name, SGT2 mutual-tracking adds a proximal term toward θ⁻ (DQN Pro), SGT2 joint-td couples the weights;
the option is neutral for trial identity at its default."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.config import ConfigError
from agents.fields import fields_of, identity_view
from agents.nn.networks import build_q_network
from agents.registry import get_agent
from agents.replay import Batch
from agents.seeding import torch_generator

GAMMA = 0.9


def make_agent(name: str, seeds=(0, 1), kernels: str = "torch", **overrides):
    values = dict(hidden_sizes=(16,), batch_size=16, buffer_size=32, learning_starts=0, train_frequency=1,
                  gamma=GAMMA)
    values.update(overrides)
    spec = get_agent(name)
    cfg = spec.config_cls.for_family("classic", values)
    return spec.cls(cfg, obs_shape=(3,), obs_dtype=np.dtype(np.float32), num_actions=2, seeds=list(seeds),
                    family="classic", total_steps=1000, kernels=kernels)


def make_batch(step: int, replicas: int = 2, batch: int = 16) -> Batch:
    g = np.random.default_rng([5, step])
    f = lambda *shape: torch.from_numpy(g.normal(size=shape).astype(np.float32))  # noqa: E731
    return Batch(f(replicas, batch, 3), torch.from_numpy(g.integers(0, 2, (replicas, batch))), f(replicas, batch),
                 f(replicas, batch, 3), torch.from_numpy((g.random((replicas, batch)) < 0.1).astype(np.float32)))


def params(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def test_agt2_in_parameter_space_with_sgd_is_polyak_averaging():
    """agt2-dqn, space=parameters, SGD of size β, against dqn-soft with τ = β applied once per update
    (soft_every = 1 and one update per env step): the same online and target parameters after 300 updates, to
    float rounding (θ⁻ − β(θ⁻ − θ) and θ⁻ + β(θ − θ⁻) are rounded apart)."""
    beta = 0.05
    agt2 = make_agent("agt2-dqn", space="parameters", target_optimizer="sgd", beta=beta)
    soft = make_agent("dqn-soft", tau=beta, soft_every=1)
    function_space = make_agent("agt2-dqn", target_optimizer="sgd", beta=beta)
    start = params(agt2.online)
    assert all(torch.equal(a, b) for a, b in zip(start, params(soft.online)))  # same initialisation
    for step in range(1, 301):
        for agent in (agt2, soft, function_space):
            agent.update(make_batch(step))
            agent.target_rule.on_env_step(step)
    for net in ("online", "target"):
        a = params(agt2.online if net == "online" else agt2.target_rule.target)
        b = params(soft.online if net == "online" else soft.target_rule.target)
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)
    # not vacuous: the networks moved far beyond the tolerance, θ⁻ lags θ, and the function-space reading differs
    assert min(float((x - s).abs().max()) for x, s in zip(params(agt2.online), start)) > 1e-2
    assert max(float((x - t).abs().max()) for x, t in zip(params(agt2.online), params(agt2.target_rule.target))) > 1e-4
    assert max(float((x - y).abs().max()) for x, y in zip(params(function_space.target_rule.target),
                                                          params(soft.target_rule.target))) > 1e-3


def test_agt2_in_parameter_space_with_adam_takes_normalised_steps():
    """With Adam the tracking step is normalised: its first step moves every weight by β toward θ (sign of the
    gap), whatever the gap's size -- a step Polyak averaging cannot express."""
    beta = 1e-3
    agent = make_agent("agt2-dqn", space="parameters", target_optimizer="adam", beta=beta, target_optimizer_eps=1e-12)
    before = params(agent.target_rule.target)
    agent.update(make_batch(1))
    for t_new, t_old, theta in zip(params(agent.target_rule.target), before, params(agent.online)):
        gap = theta - t_old
        moved = gap.abs() > 1e-6
        assert moved.any()
        torch.testing.assert_close((t_new - t_old)[moved], beta * gap[moved].sign(), rtol=1e-4, atol=0)


def linear_agent(name: str, eta: float, **overrides):
    """One replica, 2 observations, 2 actions, a linear Q-network Q(s) = s W + b online and target (θ⁻ ≠ θ)."""
    agent = make_agent(name, seeds=(0,), eta=eta, target_init="copy", space="parameters", optimizer="sgd",
                       learning_rate=0.1, **overrides)
    agent.obs_shape = (2,)
    agent.use_network(build_q_network("mlp", (2,), 2, [torch_generator(0, "init")], hidden_sizes=()))
    with torch.no_grad():
        agent.online.head.weight[:] = torch.tensor([[[1.0, 2.0], [3.0, -1.0]]])  # W[obs, action]
        agent.online.head.bias[:] = torch.tensor([[[0.5, -0.5]]])
        agent.target_rule.target.head.weight[:] = torch.tensor([[[0.0, 1.0], [4.0, 2.0]]])
        agent.target_rule.target.head.bias[:] = torch.tensor([[[1.0, 0.0]]])
    return agent


S = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, -1.0]])
A = np.array([0, 1, 1, 0])
R = np.array([1.0, -1.0, 0.5, 2.0])
S2 = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, -1.0], [2.0, 0.0]])
D = np.array([0.0, 0.0, 0.0, 1.0])


def linear_batch() -> Batch:
    t = lambda x: torch.tensor(x[None], dtype=torch.float32)  # noqa: E731
    return Batch(t(S), torch.tensor(A[None]), t(R), t(S2), t(D))


def td_gradient(W: np.ndarray, b: np.ndarray, W_boot: np.ndarray, b_boot: np.ndarray) -> tuple[np.ndarray, ...]:
    """∂/∂(W, b) of mean_B (Q_W(s, a) − y)², y = r + γ(1 − d) max_a' Q_boot(s', a'), written out by hand."""
    y = R + GAMMA * (1 - D) * (S2 @ W_boot + b_boot).max(axis=1)
    delta = (S @ W + b)[np.arange(len(A)), A] - y
    gW, gb = np.zeros_like(W), np.zeros_like(b)
    for s, a, d in zip(S, A, delta):
        gW[:, a] += 2 * d * s / len(A)
        gb[a] += 2 * d / len(A)
    return gW, gb


def weights(net) -> tuple[np.ndarray, np.ndarray]:
    return net.head.weight[0].detach().double().numpy(), net.head.bias[0, 0].detach().double().numpy()


def test_sgt2_mutual_tracking_in_parameter_space_adds_a_proximal_term():
    """mutual-tracking, space=parameters, θ⁻ held fixed: the online gradient is the TD loss's (bootstrapping from
    θ⁻) plus η(θ − θ⁻), and θ⁻ gets none from it."""
    eta = 0.7
    agent = linear_agent("sgt2-dqn", eta, form="mutual-tracking")
    (W, b), (Wt, bt) = weights(agent.online), weights(agent.target_rule.target)
    agent.zero_grad()
    loss, _ = agent.loss(linear_batch())
    loss.sum().backward()
    gW, gb = td_gradient(W, b, Wt, bt)
    np.testing.assert_allclose(agent.online.head.weight.grad[0].numpy(), gW + eta * (W - Wt), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(agent.online.head.bias.grad[0, 0].numpy(), gb + eta * (b - bt), rtol=1e-6, atol=1e-6)
    assert all(torch.count_nonzero(p.grad) == 0 for p in agent.target_rule.target.parameters())


def test_sgt2_joint_td_in_parameter_space_couples_the_weights_of_both_networks():
    """joint-td, space=parameters: each network gets its TD gradient (bootstrapping from the other) plus the
    coupling pair's 2η(own − other), as the function-space pair gives the gradient of η(Q_θ − Q_θ⁻)²."""
    eta = 0.3
    agent = linear_agent("sgt2-dqn", eta)
    (W, b), (Wt, bt) = weights(agent.online), weights(agent.target_rule.target)
    agent.zero_grad()
    loss, _ = agent.loss(linear_batch())
    loss.sum().backward()
    gW, gb = td_gradient(W, b, Wt, bt)
    gWt, gbt = td_gradient(Wt, bt, W, b)
    np.testing.assert_allclose(agent.online.head.weight.grad[0].numpy(), gW + 2 * eta * (W - Wt), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(agent.online.head.bias.grad[0, 0].numpy(), gb + 2 * eta * (b - bt), rtol=1e-6, atol=1e-6)
    target = agent.target_rule.target
    np.testing.assert_allclose(target.head.weight.grad[0].numpy(), gWt + 2 * eta * (Wt - W), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(target.head.bias.grad[0, 0].numpy(), gbt + 2 * eta * (bt - b), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["agt2-dqn", "sgt2-dqn"])
def test_space_is_neutral_for_trial_identity_at_function(name):
    cls = get_agent(name).config_cls
    fields = fields_of(cls)
    default = cls.for_family("classic").to_dict()
    assert default["space"] == "function" and "space" not in identity_view(default, fields)
    parameters = cls.for_family("classic", {"space": "parameters"}).to_dict()
    assert identity_view(parameters, fields)["space"] == "parameters"


@pytest.mark.parametrize("name", ["agt2-dqn", "sgt2-dqn"])
def test_track_pair_is_refused_in_parameter_space(name):
    with pytest.raises(ConfigError, match=r"^track='pair' is not valid with space='parameters'.*; allowed: state$"):
        get_agent(name).config_cls.for_family("classic", {"space": "parameters", "track": "pair"})
