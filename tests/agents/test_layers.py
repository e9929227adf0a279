"""Replica-stacked layers: each replica computes exactly what it would alone."""
import pytest
import torch

from agents.nn import BatchedConv2d, BatchedLinear, build_q_network
from agents.seeding import torch_generator


def gens(seeds):
    return [torch_generator(s, "init") for s in seeds]


def test_linear_matches_plain_matmul_per_replica():
    layer = BatchedLinear(3, 5, gens([0, 1]))
    x = torch.randn(2, 7, 3)
    out = layer(x)
    for r in range(2):
        expected = x[r] @ layer.weight[r] + layer.bias[r]
        assert torch.allclose(out[r], expected, atol=1e-6)


def test_init_depends_only_on_own_seed():
    a = BatchedLinear(4, 6, gens([3]))
    b = BatchedLinear(4, 6, gens([0, 1, 2, 3]))
    assert torch.equal(a.weight[0], b.weight[3]) and torch.equal(a.bias[0], b.bias[3])
    assert not torch.equal(b.weight[0], b.weight[1])


def test_conv_matches_torch_conv2d():
    conv = BatchedConv2d(2, 3, 3, 2, gens([0, 1]))
    x = torch.randn(2, 4, 2, 9, 9)
    out = conv(x)
    assert out.shape == (2, 4, 3, 4, 4)
    for r in range(2):
        w = conv.weight[r].T.reshape(3, 2, 3, 3)
        expected = torch.nn.functional.conv2d(x[r], w, conv.bias[r, 0], stride=2)
        assert torch.allclose(out[r], expected, atol=1e-5)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_forward_and_gradients_bitwise_independent_of_batch(layer_norm):
    """Replica 2 among four gives the same output and gradients, bit for bit, as replica 2 alone (with and
    without LayerNorm).

    Holds with one intra-op thread (the trainer's CPU default); with more, MKL may split a one-replica
    product along its inner dimension and change the last bits."""
    torch.set_num_threads(1)
    for arch, shape in (("mlp", (4,)), ("minatar-cnn", (4, 10, 10)), ("nature-cnn", (4, 84, 84))):
        big = build_q_network(arch, shape, 3, gens([0, 1, 2, 3]), layer_norm=layer_norm)
        small = build_q_network(arch, shape, 3, gens([2]), layer_norm=layer_norm)
        if layer_norm:  # scale / shift away from 1 / 0, replica 2's the same in both
            with torch.no_grad():
                for pb, ps in zip(big.parameters(), small.parameters()):
                    if pb.dim() == 2:
                        pb.add_(torch.rand(pb.shape, generator=torch.Generator().manual_seed(pb.shape[-1])))
                        ps.copy_(pb[2:3])
        obs = torch.rand(4, 8, *shape)
        q_big, q_small = big(obs), small(obs[2:3])
        assert torch.equal(q_big[2], q_small[0]), arch
        q_big.square().mean(dim=(1, 2)).sum().backward()
        q_small.square().mean(dim=(1, 2)).sum().backward()
        for pb, ps in zip(big.parameters(), small.parameters()):
            assert torch.equal(pb.grad[2], ps.grad[0]), arch


def test_heads_layout():
    net = build_q_network("mlp", (2,), 3, gens([0, 1]), hidden_sizes=(4,), num_heads=2)
    obs = torch.rand(2, 5, 2)
    heads = net.all_heads(obs)
    assert heads.shape == (2, 5, 2, 3)
    feats = net.features(obs)
    w, b = net.head.weight, net.head.bias
    for h in range(2):
        expected = feats @ w[:, :, h * 3:(h + 1) * 3] + b[:, :, h * 3:(h + 1) * 3]
        assert torch.allclose(heads[:, :, h], expected, atol=1e-6)
    assert torch.equal(net(obs), heads[:, :, -1])
