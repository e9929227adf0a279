"""EauDeQN (agents/catalog/eaudeqn.py): loss-based choice of the target, magnitude pruning to levels 0..K−1,
masks that keep pruned weights at zero through optimizer steps, replica independence, exact resume, the target's
sparsity record and the non-zero parameter count."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from agents.catalog.eaudeqn import keep_counts
from agents.registry import get_agent


def make_agent(seeds=(0, 1), **overrides):
    """A small EauDeQN: observations in R³, 2 actions, hidden layers 8-6, an update at every env step."""
    values = dict(hidden_sizes=(8, 6), optimizer="adam", learning_rate=0.01, batch_size=4, buffer_size=32,
                  learning_starts=0, train_frequency=1, num_online=3, prune_fraction=0.25, target_period=1000)
    values.update(overrides)
    spec = get_agent("eaudeqn")
    cfg = spec.config_cls.for_family("classic", values)
    return spec.cls(cfg, obs_shape=(3,), obs_dtype=np.dtype(np.float32), num_actions=2, seeds=list(seeds),
                    family="classic", total_steps=100)


def stream(seed: int, steps: range):
    """A fixed random transition stream for two replicas: (step, obs, reward, next_obs, done) per env step."""
    g = np.random.default_rng(seed)
    for step in steps:
        obs, next_obs = g.normal(size=(2, 2, 3)).astype(np.float32)
        yield step, obs, g.normal(size=2).astype(np.float32), next_obs, g.random(2) < 0.2


def drive(agent, steps: range, seed: int, replicas=(0, 1), actions=None, on_update=None) -> list[np.ndarray]:
    """Act / observe / learn on ``stream(seed)``; ``replicas`` picks which of the two stream replicas this agent
    sees, ``actions`` (optional) forces the actions taken (to feed a lone agent its pair replica's transitions)."""
    rows = list(replicas)
    taken = []
    for i, (step, obs, reward, next_obs, done) in enumerate(stream(seed, steps)):
        a = agent.act(obs[rows], step - 1)
        taken.append(a)
        if actions is not None:
            a = actions[i]
        agent.observe(obs[rows], a, reward[rows], next_obs[rows], done[rows])
        metrics = agent.after_env_step(step)
        if on_update is not None and metrics is not None:
            on_update(agent, metrics)
    return taken


def slots(agent, t: torch.Tensor) -> torch.Tensor:
    return agent.target_rule.slots(t)


def weight_pairs(agent):
    """(parameter, mask) for each pruned parameter (weights; biases are never pruned)."""
    rule = agent.target_rule
    return [(p, m) for p, m in zip(rule.optimizer.params, rule.masks) if m is not None]


def test_initial_state_is_dense_target_and_pruned_copies():
    agent = make_agent(prune_fraction=0.5)
    rule = agent.target_rule
    for (p, m), t in zip(weight_pairs(agent), [q for n, q in rule.target.named_parameters() if n.endswith("weight")]):
        for r in range(2):
            assert torch.equal(slots(agent, p)[r, 0], t[r])  # network 0 = the dense target
            n = m[0].numel()
            assert [int(slots(agent, m)[r, k].sum()) for k in range(3)] == [n, round(n * 0.5), round(n * 0.25)]
    assert torch.equal(rule.target_sparsity, torch.zeros(2, dtype=torch.float64))


def test_target_is_the_online_network_with_the_smallest_accumulated_loss():
    agent = make_agent(target_period=7)
    rule = agent.target_rule
    drive(agent, range(1, 7), seed=0)  # six updates, no target update yet
    assert (rule.losses > 0).all()
    before = [slots(agent, p.detach()).clone() for p in agent.online.parameters()]
    # hand-made sums: replica 0 → network 1; replica 1 → network 2 (a NaN counts as +inf)
    rule.losses.copy_(torch.tensor([[3.0, 1.0, 2.0], [4.0, float("nan"), 0.5]]))
    assert agent.greedy_actions(np.zeros((2, 3), np.float32)).shape == (2,)
    assert rule.best().tolist() == [1, 2]
    rule.on_env_step(6)  # not a multiple of the period: nothing moves
    assert all(torch.equal(slots(agent, p), b) for p, b in zip(agent.online.parameters(), before))
    rule.on_env_step(7)
    winners = [1, 2]
    for t, o, b in zip(rule.target.parameters(), agent.online.parameters(), before):
        for r, w in enumerate(winners):
            assert torch.equal(t[r], b[r, w])  # the target is the winner itself
            assert torch.equal(slots(agent, o)[r, 0], b[r, w])  # network 0: an unpruned copy of it
    assert torch.equal(rule.losses, torch.zeros_like(rule.losses))
    # equal sums (e.g. before learning starts): the first network, the one at the target's sparsity, is kept
    rule.losses.fill_(1.0)
    assert rule.best().tolist() == [0, 0]


def test_pruned_copies_have_their_levels_by_magnitude():
    delta = 0.3
    agent = make_agent(prune_fraction=delta, target_period=5)
    rule = agent.target_rule
    drive(agent, range(1, 5), seed=1)
    rule.losses.copy_(torch.tensor([[5.0, 4.0, 1.0], [2.0, 1.0, 3.0]]))  # sparse winners: levels 2 and 1
    winners = [2, 1]
    before = {id(p): (slots(agent, p.detach()).clone(), slots(agent, m).clone()) for p, m in weight_pairs(agent)}
    rule.on_env_step(5)
    zeros, total = np.zeros(2), 0
    for p, m in weight_pairs(agent):
        w_before, m_before = before[id(p)]
        total += m[0].numel()
        for r, win in enumerate(winners):
            w_win, alive_win = w_before[r, win].flatten(), m_before[r, win].flatten() > 0
            a = int(alive_win.sum())
            zeros[r] += w_win.numel() - a
            for k in range(3):
                mask = slots(agent, m)[r, k].flatten() > 0
                w = slots(agent, p)[r, k].flatten()
                assert int(mask.sum()) == int(np.floor(a * (1 - delta) ** k + 0.5))
                assert not (mask & ~alive_win).any()  # a pruned weight never comes back
                assert torch.equal(w[mask], w_win[mask]) and (w[~mask] == 0).all()
                dropped = alive_win & ~mask
                if dropped.any() and mask.any():  # magnitude: everything kept is at least as large as the dropped
                    assert w_win[mask].abs().min() >= w_win[dropped].abs().max()
    np.testing.assert_allclose(rule.target_sparsity.numpy(), zeros / total)
    assert (rule.target_sparsity > 0).all()


def test_keep_counts():
    assert keep_counts(torch.tensor([100, 7]), 0.1, 3).tolist() == [[100, 90, 81], [7, 6, 6]]
    assert keep_counts(torch.tensor([10]), 0.0, 2).tolist() == [[10, 10]]


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop-centered", "sgd"])
def test_pruned_weights_stay_exactly_zero_through_optimizer_steps(optimizer):
    agent = make_agent(optimizer=optimizer, target_period=4, max_grad_norm=0.5, prune_fraction=0.4)
    rule = agent.target_rule
    checked = []

    def check(agent, metrics):
        for p, m in weight_pairs(agent):
            assert (p[m == 0] == 0).all()
        for buf in agent.optimizer.buffers.values():
            assert (buf[rule.flat_mask == 0] == 0).all()
        checked.append(1)

    def favour_sparse(agent, metrics):
        check(agent, metrics)
        rule.losses[:, -1] = -1e6  # the sparsest network wins each target update: sparsity keeps growing

    drive(agent, range(1, 25), seed=2, on_update=favour_sparse)
    assert len(checked) == 24
    assert (rule.sparsity()[:, 0] > 0.5).all()
    # and the live weights do move
    for p, m in weight_pairs(agent):
        assert (p[m > 0] != 0).all()


def test_replicas_are_independent():
    """Replica 1 of a (seed 3, seed 7) agent equals a seed-7 agent alone, through selections and pruning."""
    cfg = dict(target_period=3, max_grad_norm=1.0, prune_fraction=0.3)
    pair, alone = make_agent(seeds=(3, 7), **cfg), make_agent(seeds=(7,), **cfg)
    winners = []
    acts_pair = drive(pair, range(1, 16), seed=5, on_update=lambda a, m: winners.append(a.target_rule.best()))
    acts_alone = drive(alone, range(1, 16), seed=5, replicas=(1,), actions=[a[1:] for a in acts_pair])
    assert [a[1] for a in acts_pair] == [a[0] for a in acts_alone]
    k = 3
    for net_p, net_a in ((pair.online, alone.online),):
        for p, q in zip(net_p.parameters(), net_a.parameters()):
            assert torch.equal(p[k:2 * k], q)
    for p, q in zip(pair.target_rule.target.parameters(), alone.target_rule.target.parameters()):
        assert torch.equal(p[1:], q)
    assert torch.equal(pair.target_rule.losses[1:], alone.target_rule.losses)
    assert torch.equal(pair.target_rule.target_sparsity[1:], alone.target_rule.target_sparsity)
    n = pair.target_rule.flat_mask.numel() // 2
    for m_p, m_a in zip(pair.target_rule.masks, alone.target_rule.masks):
        if m_p is not None:
            assert torch.equal(m_p[k:2 * k], m_a)
    assert n > 0 and pair.params_sha256()[1] == alone.params_sha256()[0]


def test_checkpoint_resumes_exactly():
    cfg = dict(target_period=4, prune_fraction=0.3)
    a = make_agent(**cfg)
    drive(a, range(1, 10), seed=1, on_update=lambda ag, m: ag.target_rule.losses[:, -1].fill_(-1e6))
    b = make_agent(seeds=(0, 1), **cfg)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    assert torch.equal(a.target_rule.flat_mask, b.target_rule.flat_mask)
    assert torch.equal(a.target_rule.losses, b.target_rule.losses)
    acts_a = drive(a, range(10, 22), seed=2)
    acts_b = drive(b, range(10, 22), seed=2)
    assert all((x == y).all() for x, y in zip(acts_a, acts_b))
    assert a.params_sha256() == b.params_sha256()
    assert torch.equal(a.target_rule.target_sparsity, b.target_rule.target_sparsity)
    assert torch.equal(a.target_rule.flat_mask, b.target_rule.flat_mask)
    for p, q in zip(a.target_rule.target.parameters(), b.target_rule.target.parameters()):
        assert torch.equal(p, q)
    for p, m in weight_pairs(b):  # the loaded masks are the ones the optimizer steps honour
        assert (p[m == 0] == 0).all()


def test_target_sparsity_is_recorded_and_never_decreases():
    agent = make_agent(target_period=3, prune_fraction=0.2)
    g = np.random.default_rng(0)
    seen = []

    def randomise(agent, metrics):
        seen.append(metrics["target_sparsity"].clone())
        assert metrics["target_sparsity"].shape == (2,)
        assert torch.equal(metrics["target_sparsity"], agent.target_rule.target_sparsity.float())
        agent.target_rule.losses.copy_(torch.from_numpy(g.random((2, 3)).astype(np.float32)))  # any network may win

    drive(agent, range(1, 40), seed=3, on_update=randomise)
    curve = torch.stack(seen)  # [updates, R]
    assert (curve[1:] >= curve[:-1]).all()
    assert (curve[-1] > curve[0]).all()


def test_parameter_count_counts_non_zero_parameters():
    agent = make_agent(prune_fraction=0.5)
    weights = [3 * 8, 8 * 6, 6 * 2]
    biases = 8 + 6 + 2
    kept = sum(n + round(n * 0.5) + round(n * 0.25) for n in weights)  # levels 0, 1, 2
    assert agent.parameter_count() == agent.replica_parameter_count(1) == kept + 3 * biases
    before = agent.replica_parameter_count(0)
    agent.target_rule.losses.copy_(torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))
    agent.target_rule.select()  # replica 0 takes its sparsest network, replica 1 keeps the dense one
    assert agent.replica_parameter_count(0) < before and agent.replica_parameter_count(1) == before
    assert agent.parameter_count() == round((agent.replica_parameter_count(0) + agent.replica_parameter_count(1)) / 2)


def test_config_and_kernels():
    assert make_agent().kernels == "torch" and not make_agent().uses_host_learning()
    spec = get_agent("eaudeqn")
    assert spec.config_cls.for_family("minatar").target_period == 1000
    assert spec.config_cls.for_family("atari").target_period == 40_000
    from agents.config import ConfigError
    with pytest.raises(ConfigError, match="prune_fraction=1.0 is out of range"):
        spec.config_cls.for_family("classic", {"prune_fraction": "1.0"})
    with pytest.raises(ConfigError, match="num_online=0 is out of range"):
        spec.config_cls.for_family("classic", {"num_online": "0"})


def test_trainer_records_target_sparsity_and_non_zero_count_per_seed(tmp_path):
    """Through the trainer: the target's sparsity reaches MLflow per seed and never falls, each seed's result
    records its own non-zero parameter count, and a seed trained alone gets the same numbers as in a batch."""
    import mlflow

    from suite.trainer import train
    from suite.trial import build_trial

    fast = {"learning_starts": "100", "train_frequency": "2", "buffer_size": "500", "batch_size": "16",
            "hidden_sizes": "16", "target_period": "20", "prune_fraction": "0.2", "train.eval_every": "200",
            "train.eval_episodes": "2", "train.log_every": "50", "env.max_episode_steps": "60"}

    def run(folder, seeds):
        trial = build_trial("eaudeqn", "CartPole-v1", seeds, steps=400, overrides=fast)
        uri = f"sqlite:///{tmp_path / folder}/mlflow.db"
        return train(trial, tracking_uri=uri, experiment="t", results_dir=tmp_path / folder,
                     progress=lambda m: None), uri

    batched, uri = run("b", (0, 1))
    (alone,), _ = run("a", (1,))
    assert alone.params_sha256 == batched[1].params_sha256 and alone.eval_returns == batched[1].eval_returns
    assert alone.parameter_count == batched[1].parameter_count
    client = mlflow.MlflowClient(uri)
    dense = 3 * (4 * 16 + 16 + 16 * 2 + 2)
    for res in batched:
        curve = [m.value for m in sorted(client.get_metric_history(res.run_id, "train/target_sparsity"),
                                         key=lambda m: m.step)]
        # interval means of a non-decreasing series, up to float32 rounding of the sums
        assert curve[-1] > 0 and all(b >= a - 1e-6 for a, b in zip(curve, curve[1:]))
        assert 0 < res.parameter_count < dense


def test_minatar_cnn_kernels_are_pruned_and_stay_zero():
    spec = get_agent("eaudeqn")
    from suite.envs import get_family  # the family's record: its agent defaults and facts (the MinAtar CNN)

    minatar = get_family("minatar")
    cfg = minatar.agent_config(spec.config_cls, {"batch_size": "4", "buffer_size": "16", "learning_starts": "0",
                                                 "prune_fraction": "0.5", "target_period": "3",
                                                 "optimizer": "adam", "learning_rate": "0.01"})
    agent = spec.cls(cfg, obs_shape=(4, 10, 10), obs_dtype=np.dtype(np.uint8), num_actions=3, seeds=[0, 1],
                     family=minatar.facts, total_steps=100)
    names = [n for n, _ in agent.online.named_parameters()]
    pruned = [n for n, m in zip(names, agent.target_rule.masks) if m is not None]
    assert pruned == [n for n in names if n.endswith("weight")] and any("conv" in n for n in pruned)
    g = np.random.default_rng(0)
    for step in range(1, 8):
        obs, next_obs = (g.random((2, 4, 10, 10)) < 0.2).astype(np.uint8), (g.random((2, 4, 10, 10)) < 0.2)
        agent.observe(obs, agent.act(obs, step - 1), np.ones(2, np.float32), next_obs.astype(np.uint8),
                      np.zeros(2, bool))
        agent.after_env_step(step)
        agent.target_rule.losses[:, -1] = -1e6
        for p, m in weight_pairs(agent):
            assert (p[m == 0] == 0).all()
    assert (agent.target_rule.target_sparsity > 0.5).all()
