"""Exactness of the gradient-trained and iterated target rules (agt2-dqn, sgt2-dqn in both forms, isql, idqn, fr-dqn).

Each update of a tiny agent (MLP 2 → 3 → heads, 2 actions, SGD) on a hand-built batch is compared with an
independent per-replica computation written here in plain float64 torch autograd: which parameters move, by how
much, and which get no gradient. Also: replicas are independent, checkpoints resume exactly, and the parameter /
target-memory records are right.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from agents.registry import get_agent
from agents.replay import Batch

GAMMA, LR = 0.9, 0.1
ATOL = 1e-6


# -- helpers ------------------------------------------------------------------------------------------------
def make_agent(name: str, seeds=(0, 1), **overrides):
    """A tiny agent: observations in R², 2 actions, one hidden layer of 3, SGD, an update at every env step.
    ``name`` may carry a ``/case`` suffix (a case of the AGENTS table), ignored here."""
    values = dict(hidden_sizes=(3,), optimizer="sgd", learning_rate=LR, gamma=GAMMA, batch_size=4, buffer_size=16,
                  learning_starts=0, train_frequency=1)
    values.update(overrides)
    spec = get_agent(name.split("/")[0])
    cfg = spec.config_cls.for_family("classic", values)
    return spec.cls(cfg, obs_shape=(2,), obs_dtype=np.dtype(np.float32), num_actions=2, seeds=list(seeds),
                    family="classic", total_steps=100)


def make_batch(num_replicas: int = 2, batch: int = 4, seed: int = 0) -> Batch:
    """A fixed minibatch ``[R, B, ...]`` with both actions and one terminal transition per replica."""
    g = np.random.default_rng(seed)
    obs = g.normal(size=(num_replicas, batch, 2)).astype(np.float32)
    next_obs = g.normal(size=(num_replicas, batch, 2)).astype(np.float32)
    action = np.tile(np.arange(batch) % 2, (num_replicas, 1))
    reward = g.normal(size=(num_replicas, batch)).astype(np.float32)
    terminated = np.zeros((num_replicas, batch), np.float32)
    terminated[:, -1] = 1.0
    return Batch(torch.from_numpy(obs), torch.from_numpy(action), torch.from_numpy(reward),
                 torch.from_numpy(next_obs), torch.from_numpy(terminated))


def replica(network: torch.nn.Module, r: int, slot: int | None = None, slots: int = 1) -> list[torch.Tensor]:
    """Replica r's parameters (of slot ``slot`` when replicas hold ``slots`` stacked networks) as float64 leaves."""
    index = r if slot is None else r * slots + slot
    return [p[index].detach().double().clone().requires_grad_(True) for p in network.parameters()]


def mlp(params: list[torch.Tensor], x: torch.Tensor, heads: int = 1, layer_norm: bool = False) -> torch.Tensor:
    """Plain MLP forward: ReLU hidden layers (with ``layer_norm``: LayerNorm, eps 1e-6, between each and its
    ReLU; parameters ordered dense layers, norms, head), linear output, grouped by head: ``[B, heads, A]``."""
    h = x.double()
    pairs = list(zip(params[0::2], params[1::2]))
    hidden = (len(pairs) - 1) // 2 if layer_norm else len(pairs) - 1
    norms = pairs[hidden:2 * hidden] if layer_norm else [None] * hidden
    for (w, b), norm in zip(pairs[:hidden], norms):
        h = h @ w + b
        if norm is not None:
            mean = h.mean(dim=-1, keepdim=True)
            var = (h - mean).square().mean(dim=-1, keepdim=True)
            h = (h - mean) / torch.sqrt(var + 1e-6) * norm[0] + norm[1]
        h = torch.relu(h)
    w, b = pairs[-1]
    out = h @ w + b
    return out.view(out.shape[0], heads, -1)


def sgd(params: list[torch.Tensor], loss: torch.Tensor, lr: float = LR) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, params)
    return [(p - lr * g).detach() for p, g in zip(params, grads)]


def assert_replica(network: torch.nn.Module, r: int, expected: list[torch.Tensor], slot: int | None = None,
                   slots: int = 1) -> None:
    index = r if slot is None else r * slots + slot
    for p, e in zip(network.parameters(), expected):
        torch.testing.assert_close(p[index].detach().double(), e, atol=ATOL, rtol=0)


def td_target(b: Batch, r: int, v_next: torch.Tensor) -> torch.Tensor:
    return b.reward[r].double() + GAMMA * (1.0 - b.terminated[r].double()) * v_next


def q_taken(q: torch.Tensor, b: Batch, r: int) -> torch.Tensor:
    """Q(s, a) ``[B]`` from ``[B, A]``."""
    return q.gather(-1, b.action[r].unsqueeze(-1)).squeeze(-1)


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


# -- AGT2 ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("track", ["state", "pair"])
def test_agt2_online_step_then_tracking_step(track):
    beta = 0.3
    agent = make_agent("agt2-dqn", beta=beta, track=track)
    online, target = agent.online, agent.target_rule.target
    # a target that differs from θ, so the tracking step has something to pull
    with torch.no_grad():
        for p in target.parameters():
            p.add_(0.05 * torch.arange(p.numel(), dtype=p.dtype).view_as(p).sin())
    b = make_batch()
    expected = []
    for r in range(2):
        th, tb = replica(online, r), replica(target, r)
        y = td_target(b, r, mlp(tb, b.next_obs[r])[:, 0].max(dim=-1).values.detach())
        th_new = sgd(th, (y - q_taken(mlp(th, b.obs[r])[:, 0], b, r)).square().mean())
        # tracking step with the *updated* θ, summed over actions (state) or at the taken one (pair), ½, batch mean
        gap = (mlp(th_new, b.obs[r])[:, 0] - mlp(tb, b.obs[r])[:, 0]).square()
        track_loss = 0.5 * (gap.sum(dim=-1) if track == "state" else q_taken(gap, b, r)).mean()
        expected.append((th_new, sgd(tb, track_loss, lr=beta), track_loss.item()))
    metrics = agent.update(b)
    for r, (th_new, tb_new, track_loss) in enumerate(expected):
        assert_replica(online, r, th_new)
        assert_replica(target, r, tb_new)
        assert metrics["track_loss"][r].item() == pytest.approx(track_loss, abs=ATOL)


def no_gradient(params) -> bool:
    """Whether ``params`` got no gradient (a flat optimizer's gradient views stay at zero)."""
    return all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in params)


def test_agt2_online_loss_gives_target_no_gradient():
    agent = make_agent("agt2-dqn")
    agent.zero_grad()
    loss, _ = agent.loss(make_batch())
    loss.sum().backward()
    assert no_gradient(agent.target_rule.target.parameters())
    assert not any(no_gradient([p]) for p in agent.online.parameters())


@pytest.mark.parametrize("name, overrides", [
    ("agt2-dqn", {"target_optimizer": "adam", "beta": 0.01}),
    ("sgt2-dqn", {"form": "mutual-tracking", "target_optimizer": "rmsprop-centered", "beta": 0.01}),
    ("sgt2-dqn", {"optimizer": "adam"}),  # joint-td: θ⁻'s optimizer has the online one's settings
])
def test_trained_target_optimizer_state_is_checkpointed(name, overrides):
    """θ⁻'s optimizer is a FlatOptimizer of the configured kind; its moments travel with the rule's state, so a
    restored agent continues exactly (a restart without them would not)."""
    agent = make_agent(name, **overrides)
    kind = overrides.get("target_optimizer", overrides.get("optimizer"))
    assert agent.target_rule.optimizer.kind == kind
    for i in range(3):
        agent.update(make_batch(seed=i))
    state = copy.deepcopy(agent.state_dict())
    assert state["target_rule"]["optimizer"]["steps"] == 3
    restored, fresh = make_agent(name, **overrides), make_agent(name, **overrides)
    restored.load_state_dict(state)
    without_moments = copy.deepcopy(state)
    without_moments["target_rule"]["optimizer"] = fresh.target_rule.optimizer.state_dict()
    fresh.load_state_dict(without_moments)
    for a in (agent, restored, fresh):
        a.update(make_batch(seed=9))
    assert all(torch.equal(p, q) for p, q in zip(agent.target_rule.target.parameters(),
                                                  restored.target_rule.target.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(agent.target_rule.target.parameters(),
                                                      fresh.target_rule.target.parameters()))


# -- SGT2 ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss_kind", ["mse", "huber"])
def test_sgt2_joint_symmetric_step(loss_kind):
    eta = 0.7
    agent = make_agent("sgt2-dqn", eta=eta, loss=loss_kind)
    online, target = agent.online, agent.target_rule.target
    b = make_batch(seed=3)

    def ell(pred, y):
        if loss_kind == "mse":
            return (pred - y).square().mean()
        return torch.nn.functional.huber_loss(pred, y, delta=1.0)

    expected = []
    for r in range(2):
        th, tb = replica(online, r), replica(target, r)
        y_th = td_target(b, r, mlp(tb, b.next_obs[r])[:, 0].max(dim=-1).values.detach())
        y_tb = td_target(b, r, mlp(th, b.next_obs[r])[:, 0].max(dim=-1).values.detach())
        q, qb = q_taken(mlp(th, b.obs[r])[:, 0], b, r), q_taken(mlp(tb, b.obs[r])[:, 0], b, r)
        loss_th = ell(q, y_th) + eta / 2 * (q - qb).square().mean()  # coupling not detached
        loss_tb = ell(qb, y_tb) + eta / 2 * (qb - q).square().mean()
        new = sgd(th + tb, loss_th + loss_tb)
        expected.append((new[:len(th)], new[len(th):]))
    agent.update(b)
    for r, (th_new, tb_new) in enumerate(expected):
        assert_replica(online, r, th_new)
        assert_replica(target, r, tb_new)


def test_sgt2_target_is_trained_and_independently_initialised():
    agent = make_agent("sgt2-dqn")
    target_params = list(agent.target_rule.target.parameters())
    assert all(p.requires_grad for p in target_params)
    trained = {id(p) for p in agent.trainable_parameters()}  # θ⁻'s gradient comes from the agent's loss
    assert all(id(p) in trained for p in target_params)
    assert agent.target_rule.optimizer.params == target_params  # ... and its own optimizer applies it
    # θ⁻ is not a copy of θ (a copy would stay equal to θ forever)
    assert not torch.equal(agent.online.head.weight, agent.target_rule.target.head.weight)
    copied = make_agent("sgt2-dqn", target_init="copy")
    copied.update(make_batch())
    for p, q in zip(copied.online.parameters(), copied.target_rule.target.parameters()):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize("loss_kind", ["mse", "huber"])
def test_sgt2_mutual_tracking_step(loss_kind):
    """θ: one step on ℓ(y − Q_θ) + (η/2)(Q_θ − sg Q_θ⁻)² with y from sg θ⁻; then θ⁻: one SGD step of size β on
    ½ mean_B Σ_a (sg Q_θ_new − Q_θ⁻)² (all actions), as AGT2's target."""
    eta, beta = 0.7, 0.3
    agent = make_agent("sgt2-dqn", form="mutual-tracking", eta=eta, beta=beta, loss=loss_kind)
    online, target = agent.online, agent.target_rule.target
    assert not torch.equal(online.head.weight, target.head.weight)  # independent θ⁻ by default, as joint-td
    b = make_batch(seed=5)

    def ell(pred, y):
        if loss_kind == "mse":
            return (pred - y).square().mean()
        return torch.nn.functional.huber_loss(pred, y, delta=1.0)

    expected = []
    for r in range(2):
        th, tb = replica(online, r), replica(target, r)
        y = td_target(b, r, mlp(tb, b.next_obs[r])[:, 0].max(dim=-1).values.detach())
        q = q_taken(mlp(th, b.obs[r])[:, 0], b, r)
        q_bar = q_taken(mlp(tb, b.obs[r])[:, 0], b, r).detach()
        th_new = sgd(th, ell(q, y) + eta / 2 * (q - q_bar).square().mean())
        track = 0.5 * (mlp(th_new, b.obs[r])[:, 0] - mlp(tb, b.obs[r])[:, 0]).square().sum(dim=-1).mean()
        expected.append((th_new, sgd(tb, track, lr=beta), track.item()))
    metrics = agent.update(b)
    for r, (th_new, tb_new, track) in enumerate(expected):
        assert_replica(online, r, th_new)
        assert_replica(target, r, tb_new)
        assert metrics["track_loss"][r].item() == pytest.approx(track, abs=ATOL)


def test_sgt2_mutual_tracking_online_loss_gives_target_no_gradient():
    agent = make_agent("sgt2-dqn", form="mutual-tracking")
    assert agent.target_rule.trainable_parameters() == []  # θ⁻ steps on its own loss, not the agent's
    agent.zero_grad()
    loss, _ = agent.loss(make_batch())
    loss.sum().backward()
    assert no_gradient(agent.target_rule.target.parameters())
    assert not any(no_gradient([p]) for p in agent.online.parameters())


@pytest.mark.parametrize(("target_optimizer", "track"), [("sgd", "state"), ("adam", "state"), ("sgd", "pair")])
def test_sgt2_mutual_tracking_with_eta_zero_and_copied_target_is_agt2(target_optimizer, track):
    """AGT2 is mutual-tracking with η = 0 and θ⁻ a copy of θ: same actions and parameters, bit for bit."""
    common = dict(optimizer="adam", learning_rate=0.01, beta=0.05, target_optimizer=target_optimizer, track=track)
    sgt2 = make_agent("sgt2-dqn", form="mutual-tracking", eta=0.0, target_init="copy", **common)
    agt2 = make_agent("agt2-dqn", **common)
    acts_sgt2, acts_agt2 = drive(sgt2, range(1, 15), seed=3), drive(agt2, range(1, 15), seed=3)
    assert all((x == y).all() for x, y in zip(acts_sgt2, acts_agt2))
    for net in ("online", "target"):
        a = getattr(sgt2, net) if net == "online" else sgt2.target_rule.target
        b = getattr(agt2, net) if net == "online" else agt2.target_rule.target
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    # with η > 0 the pull changes θ: the two forms are different algorithms
    pulled = make_agent("sgt2-dqn", form="mutual-tracking", eta=0.5, target_init="copy", **common)
    drive(pulled, range(1, 15), seed=3)
    assert not torch.equal(pulled.online.head.weight, agt2.online.head.weight)


# -- iS-QL --------------------------------------------------------------------------------------------------
def isql_reference(agent, b: Batch, r: int, k: int) -> list[torch.Tensor]:
    """One SGD step on Σ_{k=1..K} mean_B (r + γ(1−d) max sg Q_{k−1}(s') − Q_k(s,a))², current trunk for all."""
    params = replica(agent.online, r)
    ln = agent.config.layer_norm
    q = mlp(params, b.obs[r], heads=k + 1, layer_norm=ln)
    q_next = mlp(params, b.next_obs[r], heads=k + 1, layer_norm=ln).detach()
    loss = 0.0
    for h in range(1, k + 1):
        y = td_target(b, r, q_next[:, h - 1].max(dim=-1).values)
        loss = loss + (y - q_taken(q[:, h], b, r)).square().mean()
    return sgd(params, loss)


@pytest.mark.parametrize("k,layer_norm", [(1, False), (3, False), (1, True), (3, True)])
def test_isql_step_matches_reference_and_head0_gets_no_gradient(k, layer_norm):
    agent = make_agent("isql", bellman_iterations=k, layer_norm=layer_norm)
    assert agent.online.layer_norm == layer_norm
    b = make_batch(seed=1)
    expected = [isql_reference(agent, b, r, k) for r in range(2)]
    head0_w = agent.online.head.weight[:, :, :2].detach().clone()
    head0_b = agent.online.head.bias[:, :, :2].detach().clone()
    loss, _ = agent.loss(b)
    agent.optimizer.zero_grad()
    loss.sum().backward()
    assert torch.count_nonzero(agent.online.head.weight.grad[:, :, :2]) == 0
    assert torch.count_nonzero(agent.online.head.bias.grad[:, :, :2]) == 0
    assert torch.count_nonzero(agent.online.head.weight.grad[:, :, 2:]) > 0
    agent.optimizer.zero_grad()
    agent.update(b)
    for r in range(2):
        assert_replica(agent.online, r, expected[r])
    assert torch.equal(agent.online.head.weight[:, :, :2], head0_w)
    assert torch.equal(agent.online.head.bias[:, :, :2], head0_b)


def test_isql_head0_frozen_under_adam_and_clipping():
    agent = make_agent("isql", bellman_iterations=2, optimizer="adam", learning_rate=0.01, max_grad_norm=0.5)
    head0 = agent.online.head.weight[:, :, :2].detach().clone()
    for i in range(5):
        agent.update(make_batch(seed=i))
    assert torch.equal(agent.online.head.weight[:, :, :2], head0)
    agent.target_rule.shift()  # head 0 ← head 1; then stays put under further Adam steps
    head0 = agent.online.head.weight[:, :, :2].detach().clone()
    for i in range(5):
        agent.update(make_batch(seed=10 + i))
    assert torch.equal(agent.online.head.weight[:, :, :2], head0)


@pytest.mark.parametrize("k", [1, 3])
def test_isql_head_shift(k):
    agent = make_agent("isql", bellman_iterations=k)
    agent.update(make_batch())  # heads differ
    a = agent.num_actions
    w, bias = agent.online.head.weight.detach().clone(), agent.online.head.bias.detach().clone()
    trunk = snapshot(agent.online.trunk)
    agent.target_rule.shift()
    new_w, new_b = agent.online.head.weight, agent.online.head.bias
    for h in range(k):  # heads 0..K−1 ← old heads 1..K
        assert torch.equal(new_w[:, :, h * a:(h + 1) * a], w[:, :, (h + 1) * a:(h + 2) * a])
        assert torch.equal(new_b[:, :, h * a:(h + 1) * a], bias[:, :, (h + 1) * a:(h + 2) * a])
    assert torch.equal(new_w[:, :, k * a:], w[:, :, k * a:])  # head K kept
    assert torch.equal(new_b[:, :, k * a:], bias[:, :, k * a:])
    assert all(torch.equal(p, q) for p, q in zip(agent.online.trunk.parameters(), trunk))


def test_isql_acting_draws_a_head_per_replica_or_uses_the_mean():
    agent = make_agent("isql", bellman_iterations=3, epsilon_start=0.0, epsilon_end=0.0)
    obs = np.random.default_rng(0).normal(size=(2, 2)).astype(np.float32)
    mirror = [np.random.Generator(np.random.PCG64()) for _ in range(2)]
    for m, rng in zip(mirror, agent.act_sampler.rngs):
        m.bit_generator.state = rng.bit_generator.state
    with torch.no_grad():
        q = agent.online.all_heads(torch.from_numpy(obs).unsqueeze(1))[:, 0]  # [R, K+1, A]
    for step in range(20):
        heads = [1 + int(m.integers(3)) for m in mirror]
        expected = [int(q[r, heads[r]].argmax()) for r in range(2)]
        assert list(agent.act(obs, step)) == expected
    mean_agent = make_agent("isql", bellman_iterations=3, act_head="mean", epsilon_start=0.0, epsilon_end=0.0)
    with torch.no_grad():
        q = mean_agent.online.all_heads(torch.from_numpy(obs).unsqueeze(1))[:, 0, 1:].mean(dim=1)
    assert list(mean_agent.act(obs, 0)) == list(q.argmax(dim=-1).numpy())
    # evaluation draws from its own stream: acting's stream is untouched by greedy_actions
    before = [rng.bit_generator.state for rng in agent.act_sampler.rngs]
    agent.greedy_actions(obs)
    assert [rng.bit_generator.state for rng in agent.act_sampler.rngs] == before


# -- i-DQN --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3])
def test_idqn_step_matches_reference(k):
    agent = make_agent("idqn", bellman_iterations=k)
    online, target = agent.online, agent.target_rule.target
    # distinct targets: θ̄_j = θ_{j+1} + offset, so that a wrong pairing would show
    with torch.no_grad():
        for p in target.parameters():
            p.add_(0.1 * torch.arange(p.shape[0], dtype=p.dtype).view(-1, *[1] * (p.dim() - 1)))
    target_before = snapshot(target)
    b = make_batch(seed=2)
    expected = []
    for r in range(2):
        nets = [replica(online, r, i, k) for i in range(k)]
        tgts = [replica(target, r, j, k) for j in range(k)]
        loss = 0.0
        for i in range(k):  # θ_{i+1} bootstraps from θ̄_i
            y = td_target(b, r, mlp(tgts[i], b.next_obs[r])[:, 0].max(dim=-1).values.detach())
            loss = loss + (y - q_taken(mlp(nets[i], b.obs[r])[:, 0], b, r)).square().mean()
        flat = sgd([p for n in nets for p in n], loss)
        n_p = len(nets[0])
        expected.append([flat[i * n_p:(i + 1) * n_p] for i in range(k)])
    agent.update(b)
    for r in range(2):
        for i in range(k):
            assert_replica(online, r, expected[r][i], slot=i, slots=k)
    assert all(torch.equal(p, q) for p, q in zip(target.parameters(), target_before))


def test_idqn_initial_targets_and_networks():
    k = 3
    agent = make_agent("idqn", bellman_iterations=k)
    online, target = agent.online, agent.target_rule.target
    for p, t in zip(online.parameters(), target.parameters()):
        o, tg = p.view(2, k, *p.shape[1:]), t.view(2, k, *t.shape[1:])
        assert torch.equal(tg[:, 0], o[:, 0])  # θ̄_0 = θ_1
        assert torch.equal(tg[:, 1:], o[:, :-1])  # θ̄_j = θ_j
        assert not torch.equal(o[:, 0], o[:, 1])  # K independently initialised networks
    assert not any(p.requires_grad for p in target.parameters())
    # θ_1 starts where DQN's θ starts for the same seed
    dqn = make_agent("dqn")
    for p, q in zip(online.parameters(), dqn.online.parameters()):
        assert torch.equal(p.view(2, k, *p.shape[1:])[:, 0], q)


def test_idqn_gradient_clipping_is_per_replica_over_all_networks():
    k, max_norm = 2, 1e-3
    agent = make_agent("idqn", bellman_iterations=k, max_grad_norm=max_norm)
    b = make_batch()
    before = snapshot(agent.online)
    metrics = agent.update(b)
    for r in range(2):
        delta_sq = sum((p.view(2, k, -1)[r] - q.view(2, k, -1)[r]).double().square().sum()
                       for p, q in zip(agent.online.parameters(), before))
        # SGD moves by lr · clipped gradient: its norm over the replica's K networks is max_norm
        assert delta_sq.sqrt().item() == pytest.approx(LR * max_norm, rel=1e-3)
        assert metrics["grad_norm"][r] > max_norm


# -- FR-DQN -------------------------------------------------------------------------------------------------
def test_fr_dqn_step_matches_reference():
    kappa = 0.6
    agent = make_agent("fr-dqn", kappa=kappa)
    online, target = agent.online, agent.target_rule.target
    with torch.no_grad():
        for p in target.parameters():
            p.mul_(0.5)
    target_before = snapshot(target)
    b = make_batch(seed=4)
    expected = []
    for r in range(2):
        th, tb = replica(online, r), replica(target, r)
        y = td_target(b, r, mlp(th, b.next_obs[r])[:, 0].max(dim=-1).values.detach())  # bootstrap from sg θ
        q = q_taken(mlp(th, b.obs[r])[:, 0], b, r)
        q_prior = q_taken(mlp(tb, b.obs[r])[:, 0], b, r).detach()
        expected.append(sgd(th, (y - q).square().mean() + kappa * (q - q_prior).square().mean()))
    loss, _ = agent.loss(b)
    loss.sum().backward()
    assert all(p.grad is None for p in target.parameters())
    agent.optimizer.zero_grad(set_to_none=True)
    agent.update(b)
    for r in range(2):
        assert_replica(online, r, expected[r])
    assert all(torch.equal(p, q) for p, q in zip(target.parameters(), target_before))


# -- every agent --------------------------------------------------------------------------------------------
AGENTS = {"agt2-dqn": {}, "sgt2-dqn": {}, "isql": {"bellman_iterations": 2, "shift_period": 3},
          "idqn": {"bellman_iterations": 2, "sync_period": 2, "shift_period": 3},
          "fr-dqn": {"target_period": 3}, "sgt2-dqn/mutual-tracking": {"form": "mutual-tracking", "eta": 0.3}}


def drive(agent, steps: range, seed: int, replicas: list[int] | None = None) -> list[np.ndarray]:
    """Act / observe / learn for ``steps`` on a fixed random transition stream; returns the actions taken.
    ``replicas`` picks which replicas of a 2-replica stream this agent sees (a 1-replica agent sees one)."""
    g = np.random.default_rng(seed)
    replicas = replicas or list(range(agent.num_replicas))
    actions = []
    for step in steps:
        obs, next_obs = g.normal(size=(2, 2, 2)).astype(np.float32)
        reward, done = g.normal(size=2).astype(np.float32), g.random(2) < 0.2
        a = agent.act(obs[replicas], step - 1)
        actions.append(a)
        agent.observe(obs[replicas], a, reward[replicas], next_obs[replicas], done[replicas])
        agent.after_env_step(step)
    return actions


def replica_state(agent, r: int, k: int = 1) -> list[torch.Tensor]:
    nets = [agent.online] + ([agent.target_rule.target] if agent.target_rule.target is not None else [])
    return [p[r * k:(r + 1) * k].detach().clone() for n in nets for p in n.parameters()]


@pytest.mark.parametrize("name", list(AGENTS))
def test_replicas_are_independent(name):
    """Replica 1 of a (seed 3, seed 7) agent equals a seed-7 agent alone, with learning, shifts and syncs."""
    # Gradient clipping is on for every agent: it sums each replica's rows in a fixed order, so it is exact.
    pair = make_agent(name, seeds=(3, 7), optimizer="adam", learning_rate=0.01, max_grad_norm=1.0,
                      **AGENTS[name])
    alone = make_agent(name, seeds=(7,), optimizer="adam", learning_rate=0.01, max_grad_norm=1.0,
                       **AGENTS[name])
    # the replay streams differ per seed, so feed the seed-7 agent the seed-7 replica's transitions
    acts_pair = drive(pair, range(1, 13), seed=5)
    acts_alone = []
    g = np.random.default_rng(5)
    for step in range(1, 13):
        obs, next_obs = g.normal(size=(2, 2, 2)).astype(np.float32)
        reward, done = g.normal(size=2).astype(np.float32), g.random(2) < 0.2
        a = alone.act(obs[1:], step - 1)
        acts_alone.append(a)
        # replica 1 of the pair took its own action; give the lone agent the same transition
        alone.observe(obs[1:], acts_pair[step - 1][1:], reward[1:], next_obs[1:], done[1:])
        alone.after_env_step(step)
    assert [a[1] for a in acts_pair] == [a[0] for a in acts_alone]
    k = pair.config.bellman_iterations if name == "idqn" else 1
    for p, q in zip(replica_state(pair, 1, k), replica_state(alone, 0, k)):
        assert torch.equal(p, q)


@pytest.mark.parametrize("name", list(AGENTS))
def test_checkpoint_resumes_exactly(name):
    # an Adam target optimizer, so that its moments must be checkpointed too
    extra = {"target_optimizer": "adam"} if name in ("agt2-dqn", "sgt2-dqn/mutual-tracking") else {}
    cfg = dict(optimizer="adam", learning_rate=0.01, **AGENTS[name], **extra)
    a = make_agent(name, **cfg)
    drive(a, range(1, 8), seed=1)
    b = make_agent(name, seeds=(0, 1), **cfg)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    acts_a = drive(a, range(8, 16), seed=2)
    acts_b = drive(b, range(8, 16), seed=2)
    assert all((x == y).all() for x, y in zip(acts_a, acts_b))
    assert a.params_sha256() == b.params_sha256()
    if a.target_rule.target is not None:
        assert all(torch.equal(p, q) for p, q in zip(a.target_rule.target.parameters(),
                                                      b.target_rule.target.parameters()))


def test_parameter_count_and_target_bytes():
    net = 2 * 3 + 3 + 3 * 2 + 2  # one MLP 2-3-2: 17 parameters
    trunk, head = 2 * 3 + 3, 3 * 2 + 2
    assert make_agent("fr-dqn").parameter_count() == net
    assert make_agent("fr-dqn").target_bytes() == 4 * net
    assert make_agent("agt2-dqn").parameter_count() == 2 * net  # θ⁻ is trained by gradient
    assert make_agent("agt2-dqn").target_bytes() == 4 * net
    assert make_agent("sgt2-dqn").parameter_count() == 2 * net
    assert make_agent("sgt2-dqn").target_bytes() == 4 * net
    assert make_agent("sgt2-dqn", form="mutual-tracking").parameter_count() == 2 * net
    assert make_agent("sgt2-dqn", form="mutual-tracking").target_bytes() == 4 * net
    isql = make_agent("isql", bellman_iterations=3, layer_norm=False)
    assert isql.parameter_count() == trunk + 3 * head  # heads 1..K
    assert isql.target_bytes() == 4 * head  # head 0 only: far less than a copy
    isql_ln = make_agent("isql", bellman_iterations=3)  # LayerNorm on by default: scale and shift of width 3
    assert isql_ln.parameter_count() == trunk + 2 * 3 + 3 * head
    idqn = make_agent("idqn", bellman_iterations=3)
    assert idqn.parameter_count() == 3 * net
    assert idqn.target_bytes() == 3 * 4 * net
    assert len(idqn.params_sha256()) == 2 and idqn.params_sha256()[0] != idqn.params_sha256()[1]


def test_idqn_replica_params_are_one_replicas_k_networks():
    k = 3
    agent = make_agent("idqn", seeds=(4, 9), bellman_iterations=k)
    alone = make_agent("idqn", seeds=(9,), bellman_iterations=k)
    got, want = agent.replica_params(1), alone.replica_params(0)
    for part in ("online", "target"):
        assert got[part].keys() == want[part].keys()
        for name in got[part]:
            assert got[part][name].shape[0] == k
            assert torch.equal(got[part][name], want[part][name])
