"""The ``layer_norm`` network option: replica-batched LayerNorm between every hidden layer and its ReLU (where the
iS-QL authors' networks put it), available to every deep agent, on torch kernels only, and with no trace in
networks built without it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import agents.catalog  # noqa: F401 - registers the agents
from agents.agent import QAgent
from agents.nn.host_qnet import HostQNet
from agents.nn.layers import BatchedLayerNorm
from agents.nn.networks import build_q_network
from agents.registry import get_agent, list_agents
from agents.seeding import torch_generator

EPS = 1e-6  # Flax nn.LayerNorm's default, as in the authors' networks


def gens(seeds):
    return [torch_generator(s, "init") for s in seeds]


def randomise(module: torch.nn.Module, seed: int = 0) -> None:
    """Random values in every parameter (so scale / shift are not the identity at init)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g))


def test_dense_layer_norm_matches_torch_per_replica():
    norm = BatchedLayerNorm(5, gens([0, 1, 2]))
    assert norm.weight.shape == norm.bias.shape == (3, 5)
    assert torch.equal(norm.weight, torch.ones(3, 5)) and torch.equal(norm.bias, torch.zeros(3, 5))
    randomise(norm)
    x = torch.randn(3, 7, 5)
    out = norm(x)
    for r in range(3):
        expected = F.layer_norm(x[r], (5,), norm.weight[r], norm.bias[r], eps=EPS)
        torch.testing.assert_close(out[r], expected, atol=1e-6, rtol=0)


def test_conv_layer_norm_normalises_channels_at_each_position():
    """After a convolution (``[R, B, C, H, W]``): statistics over the C channels of each (h, w), as Flax's
    LayerNorm on the authors' NHWC feature maps."""
    norm = BatchedLayerNorm(4, gens([0, 1]), dim=2)
    randomise(norm)
    x = torch.randn(2, 3, 4, 5, 6)
    out = norm(x)
    assert out.shape == x.shape
    for r in range(2):
        nhwc = x[r].permute(0, 2, 3, 1)
        expected = F.layer_norm(nhwc, (4,), norm.weight[r], norm.bias[r], eps=EPS).permute(0, 3, 1, 2)
        torch.testing.assert_close(out[r], expected, atol=1e-6, rtol=0)


def test_mlp_places_layer_norm_before_each_hidden_relu_and_not_after_the_head():
    net = build_q_network("mlp", (3,), 2, gens([0, 1]), hidden_sizes=(6, 4), num_heads=2, layer_norm=True)
    randomise(net)
    x = torch.randn(2, 5, 3)
    q = net.all_heads(x)
    (l0, l1), (n0, n1) = net.trunk.layers, net.trunk.norms
    for r in range(2):
        h = torch.relu(F.layer_norm(x[r] @ l0.weight[r] + l0.bias[r], (6,), n0.weight[r], n0.bias[r], eps=EPS))
        h = torch.relu(F.layer_norm(h @ l1.weight[r] + l1.bias[r], (4,), n1.weight[r], n1.bias[r], eps=EPS))
        expected = (h @ net.head.weight[r] + net.head.bias[r]).view(5, 2, 2)
        torch.testing.assert_close(q[r], expected, atol=1e-5, rtol=0)


def test_cnn_places_layer_norm_after_each_conv_and_the_hidden_dense_layer():
    net = build_q_network("minatar-cnn", (2, 6, 6), 3, gens([0]), layer_norm=True)
    randomise(net)
    x = torch.rand(1, 4, 2, 6, 6)
    (conv,), (cnorm,) = net.trunk.convs, net.trunk.conv_norms
    w = conv.weight[0].T.reshape(16, 2, 3, 3)
    h = F.conv2d(x[0], w, conv.bias[0, 0])  # [B, 16, 4, 4]
    h = F.layer_norm(h.permute(0, 2, 3, 1), (16,), cnorm.weight[0], cnorm.bias[0], eps=EPS).permute(0, 3, 1, 2)
    h = torch.relu(h).flatten(1)
    fc, fnorm = net.trunk.fc, net.trunk.fc_norm
    h = torch.relu(F.layer_norm(h @ fc.weight[0] + fc.bias[0], (128,), fnorm.weight[0], fnorm.bias[0], eps=EPS))
    expected = h @ net.head.weight[0] + net.head.bias[0]
    torch.testing.assert_close(net(x)[0], expected, atol=1e-4, rtol=0)
    nature = build_q_network("nature-cnn", (4, 84, 84), 3, gens([0]), layer_norm=True)
    assert [n.num_features for n in nature.trunk.conv_norms] == [32, 64, 64] and nature.trunk.fc_norm.num_features == 512


@pytest.mark.parametrize("arch,shape", [("mlp", (4,)), ("minatar-cnn", (4, 10, 10)), ("nature-cnn", (4, 84, 84))])
def test_layer_norm_adds_parameters_and_leaves_the_rest_untouched(arch, shape):
    """LayerNorm draws nothing from the replica generators (scale 1, shift 0), so every other parameter is
    initialised as without it; without it, no norm module, parameter or state-dict key exists at all."""
    plain = build_q_network(arch, shape, 3, gens([0, 1]))
    normed = build_q_network(arch, shape, 3, gens([0, 1]), layer_norm=True)
    assert not plain.layer_norm and normed.layer_norm
    assert not any("norm" in k for k in plain.state_dict())
    normed_state = normed.state_dict()
    for k, v in plain.state_dict().items():
        assert torch.equal(normed_state[k], v), k
    extra = [k for k in normed_state if k not in plain.state_dict()]
    assert extra and all("norm" in k for k in extra)


def test_host_kernels_refuse_layer_norm_networks():
    plain = build_q_network("mlp", (4,), 2, gens([0]))
    normed = build_q_network("mlp", (4,), 2, gens([0]), layer_norm=True)
    assert HostQNet.supports(plain) and not HostQNet.supports(normed)
    assert not HostQNet.supports(build_q_network("minatar-cnn", (4, 10, 10), 2, gens([0]), layer_norm=True))
    with pytest.raises(ValueError):
        HostQNet(normed)


def make_agent(name: str, **overrides):
    values = dict(hidden_sizes=(7, 5), batch_size=8, buffer_size=32, learning_starts=0, train_frequency=1,
                  learning_rate=1e-2, gamma=0.9)
    values.update(overrides)
    spec = get_agent(name)
    cfg = spec.config_cls.for_family("classic", values)
    return spec.cls(cfg, obs_shape=(3,), obs_dtype=np.dtype(np.float32), num_actions=2, seeds=[0, 1],
                    family="classic", total_steps=100)


DEEP_AGENTS = sorted(s.name for s in list_agents() if issubclass(s.cls, QAgent))


@pytest.mark.parametrize("name", DEEP_AGENTS)
def test_every_agent_learns_with_layer_norm_on_torch_kernels(name):
    """``--set layer_norm=true`` (the string form) works for every registered deep agent: its networks carry
    LayerNorm, it runs on torch kernels, and a few updates train the norms' scales."""
    agent = make_agent(name, layer_norm="true")
    assert agent.config.layer_norm is True and agent.online.layer_norm
    if agent.target_rule.target is not None:
        assert agent.target_rule.target.layer_norm
    assert agent.kernels == "torch"
    g = np.random.default_rng(0)
    for _ in range(16):
        agent.observe(g.normal(size=(2, 3)).astype(np.float32), g.integers(0, 2, size=2),
                      g.normal(size=2).astype(np.float32), g.normal(size=(2, 3)).astype(np.float32),
                      np.zeros(2, bool))
    scales = [m.weight.detach().clone() for m in agent.online.modules() if isinstance(m, BatchedLayerNorm)]
    assert scales
    for step in range(1, 4):
        metrics = agent.after_env_step(step)
        assert metrics is not None and torch.isfinite(metrics["loss"]).all()
    after = [m.weight for m in agent.online.modules() if isinstance(m, BatchedLayerNorm)]
    assert any(not torch.equal(a, b) for a, b in zip(after, scales))
    assert isinstance(agent.greedy_actions(np.zeros((2, 3), np.float32)), np.ndarray)


@pytest.mark.parametrize("name", DEEP_AGENTS)
def test_layer_norm_defaults(name):
    """On for iS-QL in every family (the authors' networks); off for every other agent (i-DQN's authors' network
    has none; the DQN baselines keep their published networks)."""
    for family in ("classic", "minatar", "atari", "tabular"):
        cfg = get_agent(name).config_cls.for_family(family)
        assert cfg.layer_norm is (name == "isql"), (name, family)
    assert make_agent(name, layer_norm=False).online.layer_norm is False
