"""The optimizers the agents use update each replica exactly as if it were alone.

A replica's slice must not depend on how many replicas share the parameter tensor. The fused CPU Adam breaks
this (it treats the SIMD tail of a tensor differently), which is why the agents use the foreach kernels.
"""
import pytest
import torch

SHAPES = [(1, 2), (1, 6), (4, 120), (120, 84), (1, 84), (84, 2), (1, 1)]


def final_slice(optimizer: str, kwargs: dict, replicas: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    params = [torch.nn.Parameter(torch.zeros(replicas, *s)) for s in SHAPES]
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=1e-3, **kwargs)
    elif optimizer == "rmsprop":
        opt = torch.optim.RMSprop(params, lr=2.5e-4, alpha=0.95, eps=0.01, centered=True, **kwargs)
    else:
        opt = torch.optim.SGD(params, lr=1e-2, **kwargs)
    base = [torch.randn(6, *s, generator=g) for s in SHAPES]
    for t in range(300):
        for p, b in zip(params, base):
            p.grad = (b[:replicas] * (1 + 0.3 * torch.sin(torch.tensor(float(t)))) + 0.01 * t).clone()
        opt.step()
    return [p.detach()[0].clone() for p in params]


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_foreach_optimizers_are_replica_independent(optimizer):
    alone = final_slice(optimizer, {"foreach": True}, 1)
    for replicas in (2, 3, 6):
        shared = final_slice(optimizer, {"foreach": True}, replicas)
        assert all(torch.equal(a, b) for a, b in zip(alone, shared)), replicas


def test_agents_use_foreach_kernels():
    import numpy as np
    from agents import get_agent
    for opt in ("adam", "rmsprop-centered", "sgd"):
        spec = get_agent("dqn")
        cfg = spec.config_cls.for_family("classic", {"optimizer": opt})
        agent = spec.cls(cfg, obs_shape=(4,), obs_dtype=np.float32, num_actions=2, seeds=[0], family="classic",
                         total_steps=10)
        defaults = agent.optimizer.defaults
        assert defaults.get("foreach") is True and not defaults.get("fused"), opt
