"""Cadences of the gradient-trained and iterated target rules, counted in env steps: iS-QL's shift period T,
i-DQN's sync period D and window period T, FR-DQN's hard period C / Polyak rate, and the per-update steps of
AGT2 / SGT2. Driven through ``agent.after_env_step(step)`` (which calls the rule's ``on_env_step``)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.registry import get_agent


def make_agent(name: str, seeds=(0, 1), **overrides):
    values = dict(hidden_sizes=(3,), optimizer="sgd", learning_rate=0.1, gamma=0.9, batch_size=4, buffer_size=16,
                  learning_starts=0, train_frequency=1)
    values.update(overrides)
    spec = get_agent(name)
    cfg = spec.config_cls.for_family("classic", values)
    return spec.cls(cfg, obs_shape=(2,), obs_dtype=np.dtype(np.float32), num_actions=2, seeds=list(seeds),
                    family="classic", total_steps=100)


def fill(agent, n: int = 8, seed: int = 0) -> None:
    """Put ``n`` random transitions in the replay without running any cadence."""
    g = np.random.default_rng(seed)
    r = agent.num_replicas
    for _ in range(n):
        agent.observe(g.normal(size=(r, 2)).astype(np.float32), g.integers(0, 2, size=r),
                      g.normal(size=r).astype(np.float32), g.normal(size=(r, 2)).astype(np.float32),
                      np.zeros(r, bool))


def params(module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


# -- iS-QL --------------------------------------------------------------------------------------------------
def head_tags(agent) -> list[float]:
    """The value every entry of each head's bias holds (replica 0), as set by ``tag_heads``."""
    a = agent.num_actions
    bias = agent.online.head.bias.detach()[0, 0]
    return [float(bias[h * a]) for h in range(agent.online.num_heads)]


def tag_heads(agent, tags: list[float]) -> None:
    a = agent.num_actions
    with torch.no_grad():
        for h, t in enumerate(tags):
            agent.online.head.bias[:, :, h * a:(h + 1) * a] = t


@pytest.mark.parametrize("period,train_frequency", [(5, 1), (7, 3)])
def test_isql_shifts_every_T_env_steps(period, train_frequency):
    """Shifts land on multiples of T env steps, whether or not an update falls there."""
    agent = make_agent("isql", bellman_iterations=2, shift_period=period, train_frequency=train_frequency,
                       learning_starts=10_000)  # no updates: only the cadence moves the heads
    tags = [0.0, 1.0, 2.0]
    tag_heads(agent, tags)
    for step in range(1, 3 * period + 1):
        agent.after_env_step(step)
        if step % period == 0:
            tags = tags[1:] + tags[-1:]
        assert head_tags(agent) == tags, f"step {step}"
    assert tags == [2.0, 2.0, 2.0]


def test_isql_shift_with_learning_keeps_head0_as_last_shifted_head():
    agent = make_agent("isql", bellman_iterations=2, shift_period=4)
    fill(agent)
    a = agent.num_actions
    for step in range(1, 9):
        if step % 4 == 0:
            before = agent.online.head.weight[:, :, a:2 * a].detach().clone()
        head0 = agent.online.head.weight[:, :, :a].detach().clone()
        agent.after_env_step(step)
        if step % 4 == 0:
            # update first (head 1 moves), then the shift copies the updated head 1 into head 0
            assert not torch.equal(agent.online.head.weight[:, :, :a], head0)
            assert not torch.equal(agent.online.head.weight[:, :, :a], before)
        else:
            assert torch.equal(agent.online.head.weight[:, :, :a], head0)


# -- i-DQN --------------------------------------------------------------------------------------------------
def tag_online(agent, tags: list[float], network=None) -> None:
    """Fill slot i of every replica of the online network (θ_{i+1}) or of ``network`` with the value tags[i]."""
    k = agent.config.bellman_iterations
    with torch.no_grad():
        for p in (network or agent.online).parameters():
            view = p.view(p.shape[0] // k, k, -1)
            for i, t in enumerate(tags):
                view[:, i] = t


def slot_tags(network, k: int) -> list[float]:
    p = next(network.parameters()).detach()
    view = p.view(p.shape[0] // k, k, -1)
    assert torch.all(view == view[:, :, :1]), "a slot holds one tag"
    assert torch.all(view[0] == view[1]), "replicas follow the same cadence"
    return [float(view[0, i, 0]) for i in range(k)]


@pytest.mark.parametrize("k,sync,shift", [(3, 2, 5), (2, 3, 6), (1, 2, 4)])
def test_idqn_sync_every_D_and_roll_every_T(k, sync, shift):
    """Against a model of the rule: every D env steps θ̄_j ← θ_j (j ≥ 1); every T env steps θ̄_j ← θ_{j+1}
    (all j) then θ_i ← θ_{i+1} (i < K), θ_K kept; a roll replaces the sync when both fall on a step."""
    agent = make_agent("idqn", bellman_iterations=k, sync_period=sync, shift_period=shift, learning_starts=10_000)
    target = [-1.0 - j for j in range(k)]
    tag_online(agent, target, agent.target_rule.target)
    for step in range(1, 4 * shift + 1):
        online = [100.0 * step + i for i in range(k)]  # fresh values: any copy shows where it came from
        tag_online(agent, online)
        agent.after_env_step(step)
        if step % shift == 0:
            target = list(online)
            online = online[1:] + online[-1:]
        elif step % sync == 0:
            target = target[:1] + online[:-1]
        assert slot_tags(agent.online, k) == online, f"online after step {step}"
        assert slot_tags(agent.target_rule.target, k) == target, f"target after step {step}"


def test_idqn_concrete_cadence():
    """K = 3, D = 2, T = 5, spelled out: θ̄_0 moves only at T; θ̄_1, θ̄_2 at every D and at T."""
    agent = make_agent("idqn", bellman_iterations=3, sync_period=2, shift_period=5, learning_starts=10_000)
    tag_online(agent, [-1.0, -2.0, -3.0], agent.target_rule.target)
    tag_online(agent, [1.0, 2.0, 3.0])
    agent.after_env_step(1)
    assert slot_tags(agent.target_rule.target, 3) == [-1.0, -2.0, -3.0]
    agent.after_env_step(2)  # sync
    assert slot_tags(agent.target_rule.target, 3) == [-1.0, 1.0, 2.0]
    tag_online(agent, [4.0, 5.0, 6.0])
    agent.after_env_step(3)
    agent.after_env_step(4)  # sync
    assert slot_tags(agent.target_rule.target, 3) == [-1.0, 4.0, 5.0]
    agent.after_env_step(5)  # roll: θ̄ ← (θ_1, θ_2, θ_3); θ ← (θ_2, θ_3, θ_3)
    assert slot_tags(agent.target_rule.target, 3) == [4.0, 5.0, 6.0]
    assert slot_tags(agent.online, 3) == [5.0, 6.0, 6.0]


# -- FR-DQN -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("period,train_frequency", [(4, 1), (4, 3)])
def test_fr_hard_copy_every_C_env_steps(period, train_frequency):
    agent = make_agent("fr-dqn", target_period=period, train_frequency=train_frequency)
    fill(agent)
    for step in range(1, 3 * period + 1):
        target_before = params(agent.target_rule.target)
        agent.after_env_step(step)
        target_after = params(agent.target_rule.target)
        if step % period == 0:
            assert same(target_after, params(agent.online)), f"step {step}"
        else:
            assert same(target_after, target_before), f"step {step}"


def test_fr_soft_update_every_env_step():
    tau = 0.25
    agent = make_agent("fr-dqn", fr_target="soft", tau=tau, train_frequency=2)
    fill(agent)
    for step in range(1, 6):
        target_before = params(agent.target_rule.target)
        agent.after_env_step(step)
        for t, b, o in zip(agent.target_rule.target.parameters(), target_before, agent.online.parameters()):
            torch.testing.assert_close(t, b + tau * (o - b), atol=1e-6, rtol=0)


# -- AGT2 / SGT2 --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["agt2-dqn", "sgt2-dqn"])
def test_gradient_targets_move_only_on_update_steps(name):
    agent = make_agent(name, train_frequency=3, learning_starts=4)
    fill(agent)
    for step in range(1, 13):
        target_before = params(agent.target_rule.target)
        metrics = agent.after_env_step(step)
        moved = not same(params(agent.target_rule.target), target_before)
        updated = step >= 4 and step % 3 == 0
        assert moved == updated, f"step {step}"
        assert (metrics is not None) == updated
    assert agent.updates == 3
