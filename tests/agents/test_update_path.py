"""The one update path (``QAgent.update``): every agent learns through it, so a setting of the path -- gradient
clipping by value and by norm -- takes effect for every agent, and how it applies to a trained target is the one
rule ``agents.targets.TrainedTarget`` states: clipped with θ when θ⁻ is trained by the agent's loss (SGT2
joint-td), never when θ⁻ steps on a loss of its own (AGT2, SGT2 mutual-tracking)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from agents.agent import QAgent
from agents.gradient_targets import tracking_loss
from agents.registry import get_agent, list_agents
from agents.replay import Batch

DEEP_AGENTS = [s.name for s in list_agents() if issubclass(s.cls, QAgent)]


def make_agent(name: str, **overrides) -> QAgent:
    values = dict(hidden_sizes=(8,), optimizer="sgd", learning_rate=0.1, batch_size=8, buffer_size=16,
                  learning_starts=0, train_frequency=1)
    values.update(overrides)
    spec = get_agent(name)
    cfg = spec.config_cls.for_family("classic", values)
    return spec.cls(cfg, obs_shape=(3,), obs_dtype=np.dtype(np.float32), num_actions=2, seeds=[0, 1],
                    family="classic", total_steps=100)


def make_batch(seed: int = 0) -> Batch:
    g = np.random.default_rng(seed)
    f = lambda *shape: torch.from_numpy(g.normal(size=shape).astype(np.float32))  # noqa: E731
    return Batch(10 * f(2, 8, 3), torch.from_numpy(g.integers(0, 2, (2, 8))), 10 * f(2, 8), 10 * f(2, 8, 3),
                 torch.zeros(2, 8))


def stepped_gradients(agent: QAgent) -> dict[str, list[list[torch.Tensor]]]:
    """Record, at every optimizer step of the agent, the gradients the step applies: ``"online"`` steps, and the
    steps of θ⁻'s own optimizer where the target rule has one (``"target"``)."""
    seen: dict[str, list[list[torch.Tensor]]] = {"online": [], "target": []}
    optimizers = {"online": agent.optimizer, "target": getattr(agent.target_rule, "optimizer", None)}
    for key, opt in optimizers.items():
        if opt is None or (key == "target" and opt is agent.optimizer):
            continue
        step = opt.step

        def recording(opt=opt, step=step, key=key):
            seen[key].append([p.grad.detach().clone() for p in opt.params])
            step()
        opt.step = recording
    return seen


def test_every_agent_learns_through_the_one_update():
    for name in DEEP_AGENTS:
        cls = get_agent(name).cls
        owners = [k.__name__ for k in cls.__mro__ if "update" in vars(k)]
        assert owners == ["QAgent"], f"{name}: update redefined by {owners[:-1]}"


@pytest.mark.parametrize("name", DEEP_AGENTS)
def test_max_grad_value_takes_effect_for_every_agent(name):
    """With ``max_grad_value`` every gradient the clip covers (θ's, and θ⁻'s under a joint objective) is within
    [−v, v] when its step is applied, and some element sits at the bound; without it the same updates apply larger
    elements, so the setting is what bounds them."""
    assert "max_grad_value" in get_agent(name).config_cls.field_names()
    v = 1e-3
    bound = float(np.float32(v))
    largest = {}
    for setting in (None, v):
        agent = make_agent(name, max_grad_value=setting)
        seen = stepped_gradients(agent)
        for i in range(3):
            agent.update(make_batch(i))
        clipped = seen["online"] + (seen["target"] if agent.target_rule.trainable_parameters() else [])
        assert len(clipped) >= 3
        largest[setting] = max(float(g.abs().max()) for step in clipped for g in step)
    assert largest[v] == bound
    assert largest[None] > 10 * v


def test_joint_target_gradient_is_clipped_with_the_online_one():
    """SGT2 joint-td: one objective, one clip: each replica's norm over θ's and θ⁻'s gradients together is at most
    ``max_grad_norm`` when the steps are applied, and ``grad_norm`` reports that joint norm."""
    max_norm = 1e-3
    agent = make_agent("sgt2-dqn", max_grad_norm=max_norm)
    seen = stepped_gradients(agent)
    unclipped = make_agent("sgt2-dqn")
    loss, _ = unclipped.loss(make_batch())
    unclipped.zero_grad()
    loss.sum().backward()
    raw = torch.stack([sum(p.grad[r].square().sum() for p in unclipped.trainable_parameters()) for r in range(2)])
    metrics = agent.update(make_batch())
    (online,), (target,) = seen["online"], seen["target"]
    joint = torch.stack([sum(g[r].square().sum() for g in online + target) for r in range(2)]).sqrt()
    torch.testing.assert_close(joint, torch.full((2,), max_norm), rtol=1e-4, atol=0)
    torch.testing.assert_close(metrics["grad_norm"], raw.sqrt(), rtol=1e-5, atol=0)
    alone = torch.stack([sum(g[r].square().sum() for g in online) for r in range(2)]).sqrt()
    assert (alone < max_norm * (1 - 1e-3)).all()  # θ's share: the norm is not per network


@pytest.mark.parametrize("name, overrides", [("agt2-dqn", {}), ("sgt2-dqn", {"form": "mutual-tracking"})])
def test_tracking_step_is_never_clipped(name, overrides):
    """AGT2 / mutual-tracking: the clip settings bound the TD gradient only; θ⁻'s tracking step is the plain SGD
    step of size β on the tracking loss with the updated θ, however small the clip bounds are."""
    beta = 0.5
    agent = make_agent(name, beta=beta, max_grad_norm=1e-6, max_grad_value=1e-7, **overrides)
    with torch.no_grad():
        for p in agent.target_rule.target.parameters():
            p.add_(0.3)
    before = copy.deepcopy(agent.target_rule.target)
    b = make_batch(3)
    agent.update(b)
    with torch.no_grad():
        q_online = agent.online(b.obs)
    loss = tracking_loss(q_online, before(b.obs))
    grads = torch.autograd.grad(loss.sum(), list(before.parameters()))
    assert max(float(g.abs().max()) for g in grads) > 1e-3  # a clip at 1e-7 / 1e-6 would have changed the step
    for p, p0, g in zip(agent.target_rule.target.parameters(), before.parameters(), grads):
        torch.testing.assert_close(p, p0 - beta * g, rtol=1e-5, atol=1e-6)
