"""Cadences of the gradient-trained and iterated target rules: iS-QL's shift period T and i-DQN's sync period D
and window period T (gradient steps, from the first update on), FR-DQN's hard period C / Polyak rate (env
steps), and the per-update steps of AGT2 / SGT2. Driven through ``agent.after_env_step(step)`` (which runs the
update and the rule's ``after_update``, then its ``on_env_step``) or through the rule's ``after_update``."""
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


def update_steps(learning_starts: int, train_frequency: int, last: int) -> list[int]:
    """Env steps (1-based) at which ``after_env_step`` takes a gradient step (replay not empty)."""
    return [s for s in range(1, last + 1) if s >= learning_starts and s % train_frequency == 0]


def record(agent, *kinds: str) -> list[tuple[str, int]]:
    """Wrap the target rule's ``kinds`` methods to log ``(kind, env step)``; the step is read from
    ``agent._step``, which the driving loop sets."""
    log: list[tuple[str, int]] = []
    rule = agent.target_rule
    for kind in kinds:
        orig = getattr(rule, kind)
        setattr(rule, kind, lambda _o=orig, _k=kind: log.append((_k, agent._step)) or _o())
    return log


def drive(agent, last: int) -> None:
    for step in range(1, last + 1):
        agent._step = step
        agent.after_env_step(step)


@pytest.mark.parametrize("period,train_frequency,learning_starts", [(5, 1, 0), (2, 3, 7), (4, 10, 25)])
def test_isql_shifts_every_T_gradient_steps_from_learning_start(period, train_frequency, learning_starts):
    """No shift before learning starts; then one right after every T-th gradient step, whatever the train
    frequency (T counts gradient steps, not env steps)."""
    agent = make_agent("isql", bellman_iterations=2, shift_period=period, train_frequency=train_frequency,
                       learning_starts=learning_starts)
    fill(agent)
    log = record(agent, "shift")
    last = learning_starts + 4 * period * train_frequency + 2
    drive(agent, last)
    updates = update_steps(learning_starts, train_frequency, last)
    assert agent.updates == len(updates)
    expected = [("shift", s) for n, s in enumerate(updates, 1) if n % period == 0]
    assert log == expected and len(expected) == 4
    assert expected[0][1] == updates[period - 1] > learning_starts  # the first follows the T-th gradient step


def test_isql_heads_stay_distinct_until_learning_starts():
    """With learning_starts 10k (CleanRL's) the K+1 independently drawn heads are untouched by the cadence
    before the first update (issue 12: they used to shift from env step 1, all equal w_K when learning began)."""
    agent = make_agent("isql", bellman_iterations=3, shift_period=5, learning_starts=10_000, train_frequency=10)
    fill(agent)
    before = agent.online.head.weight.detach().clone()
    for step in range(1, 10_000):
        agent.after_env_step(step)
    assert agent.updates == 0 and torch.equal(agent.online.head.weight, before)
    a = agent.num_actions
    heads = [before[:, :, h * a:(h + 1) * a] for h in range(4)]
    assert all(not torch.equal(heads[i], heads[j]) for i in range(4) for j in range(i + 1, 4))


@pytest.mark.parametrize("period", [1, 3])
def test_isql_shift_moves_tags_every_T_gradient_steps(period):
    """The rule on its own: each gradient step it is told of counts; every T-th shifts w_k ← w_{k+1}."""
    agent = make_agent("isql", bellman_iterations=2, shift_period=period)
    tags = [0.0, 1.0, 2.0]
    tag_heads(agent, tags)
    for n in range(1, 3 * period + 1):
        agent.target_rule.after_update(None, None)
        if n % period == 0:
            tags = tags[1:] + tags[-1:]
        assert head_tags(agent) == tags, f"gradient step {n}"
    assert tags == [2.0, 2.0, 2.0]


def test_isql_gradient_step_count_survives_state_dict():
    agent = make_agent("isql", bellman_iterations=2, shift_period=3)
    for _ in range(2):
        agent.target_rule.after_update(None, None)
    fresh = make_agent("isql", bellman_iterations=2, shift_period=3)
    fresh.load_state_dict(agent.state_dict())
    log = record(fresh, "shift")
    fresh._step = 0
    fresh.target_rule.after_update(None, None)
    assert log == [("shift", 0)]


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
    """Against a model of the rule, per gradient step n: every D-th θ̄_j ← θ_j (j ≥ 1); every T-th θ̄_j ← θ_{j+1}
    (all j) then θ_i ← θ_{i+1} (i < K), θ_K kept; a roll replaces the sync when both fall on a step."""
    agent = make_agent("idqn", bellman_iterations=k, sync_period=sync, shift_period=shift)
    target = [-1.0 - j for j in range(k)]
    tag_online(agent, target, agent.target_rule.target)
    for n in range(1, 4 * shift + 1):
        online = [100.0 * n + i for i in range(k)]  # fresh values: any copy shows where it came from
        tag_online(agent, online)
        agent.target_rule.after_update(None, None)
        if n % shift == 0:
            target = list(online)
            online = online[1:] + online[-1:]
        elif n % sync == 0:
            target = target[:1] + online[:-1]
        assert slot_tags(agent.online, k) == online, f"online after gradient step {n}"
        assert slot_tags(agent.target_rule.target, k) == target, f"target after gradient step {n}"


def test_idqn_concrete_cadence():
    """K = 3, D = 2, T = 5 gradient steps, spelled out: θ̄_0 moves only at T; θ̄_1, θ̄_2 at every D and at T."""
    agent = make_agent("idqn", bellman_iterations=3, sync_period=2, shift_period=5)
    rule = agent.target_rule
    tag_online(agent, [-1.0, -2.0, -3.0], rule.target)
    tag_online(agent, [1.0, 2.0, 3.0])
    rule.after_update(None, None)
    assert slot_tags(rule.target, 3) == [-1.0, -2.0, -3.0]
    rule.after_update(None, None)  # sync
    assert slot_tags(rule.target, 3) == [-1.0, 1.0, 2.0]
    tag_online(agent, [4.0, 5.0, 6.0])
    rule.after_update(None, None)
    rule.after_update(None, None)  # sync
    assert slot_tags(rule.target, 3) == [-1.0, 4.0, 5.0]
    rule.after_update(None, None)  # roll: θ̄ ← (θ_1, θ_2, θ_3); θ ← (θ_2, θ_3, θ_3)
    assert slot_tags(rule.target, 3) == [4.0, 5.0, 6.0]
    assert slot_tags(agent.online, 3) == [5.0, 6.0, 6.0]


@pytest.mark.parametrize("sync,shift,train_frequency,learning_starts", [(2, 5, 3, 7), (10, 200, 10, 10_000)])
def test_idqn_cadences_count_gradient_steps_from_learning_start(sync, shift, train_frequency, learning_starts):
    """Through the agent loop: nothing before learning starts, then syncs after every D-th and rolls after every
    T-th gradient step. With CleanRL's update every 10 env steps, D = 10 means a sync every 100 env steps (it
    used to be one per update)."""
    agent = make_agent("idqn", bellman_iterations=2, sync_period=sync, shift_period=shift, buffer_size=16,
                       train_frequency=train_frequency, learning_starts=learning_starts)
    fill(agent)
    log = record(agent, "sync", "roll")
    last = learning_starts + (2 * shift + 1) * train_frequency
    drive(agent, last)
    updates = update_steps(learning_starts, train_frequency, last)
    assert agent.updates == len(updates) >= 2 * shift + 1
    expected = [("roll" if n % shift == 0 else "sync", s) for n, s in enumerate(updates, 1)
                if n % shift == 0 or n % sync == 0]
    assert log == expected
    assert log[0] == ("sync", updates[sync - 1]) and ("roll", updates[shift - 1]) in log


def test_idqn_networks_stay_distinct_until_learning_starts():
    agent = make_agent("idqn", bellman_iterations=3, learning_starts=5_000, train_frequency=10)
    fill(agent)
    online, target = params(agent.online), params(agent.target_rule.target)
    for step in range(1, 5_000):
        agent.after_env_step(step)
    assert same(params(agent.online), online) and same(params(agent.target_rule.target), target)
    w = agent.online.head.weight.detach()
    slots = w.view(w.shape[0] // 3, 3, -1)
    assert not torch.equal(slots[:, 0], slots[:, 1]) and not torch.equal(slots[:, 1], slots[:, 2])


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
