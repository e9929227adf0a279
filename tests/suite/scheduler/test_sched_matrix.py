"""Matrix expansion, hashing, grouping, the cost estimate and --dry-run (which touches no store)."""
import argparse
import json

import pytest

from suite.scheduler import parse_suite, run_sweep
from suite.scheduler.cost import estimate
from suite.scheduler.matrix import auto_group_size, expand, make_groups
from suite.trial import build_trial

BASE = {"name": "m", "agents": ["dqn", "dqn-soft"], "envs": ["CartPole-v1", "Acrobot-v1"], "seeds": [0, 1, 2, 3, 4],
        "steps": 1000, "overrides": {"learning_starts": 100}}


def test_expansion_order_and_hashes_match_build_trial():
    suite = parse_suite(BASE)
    configs, trials = expand(suite)
    assert len(configs) == 4 and len(trials) == 20
    assert [(t.agent, t.env) for t in trials[::5]] == [("dqn", "CartPole-v1"), ("dqn", "Acrobot-v1"),
                                                       ("dqn-soft", "CartPole-v1"), ("dqn-soft", "Acrobot-v1")]
    ref = build_trial("dqn", "Acrobot-v1", [3], steps=1000, overrides={"learning_starts": "100"})
    t = next(t for t in trials if (t.agent, t.env, t.seed) == ("dqn", "Acrobot-v1", 3))
    assert t.trial_hash == ref.trial_hash(3)
    # deterministic across expansions, different per seed/config, independent of grouping
    assert [t.trial_hash for t in expand(parse_suite(BASE))[1]] == [t.trial_hash for t in trials]
    assert len({t.trial_hash for t in trials}) == 20
    for size in (1, 2, 5):
        groups = make_groups(trials, size)
        assert sorted(h for g in groups for h in g.trial_hashes) == sorted(t.trial_hash for t in trials)
        for g in groups:
            assert [g.spec.trial_hash(s) for s in g.seeds] == list(g.trial_hashes)
            assert len(g.seeds) <= size
    # a different step budget or override changes the identity
    assert expand(parse_suite(BASE), steps=999)[1][0].trial_hash != trials[0].trial_hash
    assert expand(parse_suite(BASE), overrides={"gamma": "0.9"})[1][0].trial_hash != trials[0].trial_hash


def test_override_precedence():
    suite = parse_suite({**BASE, "agents": {"dqn": {"gamma": 0.95, "learning_starts": 7}},
                         "env_overrides": {"Acrobot-v1": {"gamma": 0.9, "batch_size": 8}},
                         "overrides": {"gamma": 0.5, "batch_size": 16, "learning_starts": 100},
                         "variants": [{"name": "v", "overrides": {"learning_starts": 9}}]})
    configs, _ = expand(suite, overrides={"batch_size": "4"})
    acro = next(c for c in configs if c.env == "Acrobot-v1").spec.agent_config
    cart = next(c for c in configs if c.env == "CartPole-v1").spec.agent_config
    assert (acro.gamma, acro.batch_size, acro.learning_starts) == (0.95, 4, 9)
    assert (cart.gamma, cart.batch_size) == (0.95, 4)


def test_group_packing_and_auto_size():
    _, trials = expand(parse_suite(BASE))
    groups = make_groups(trials, 4)
    assert [len(g.seeds) for g in groups] == [3, 2] * 4  # spread evenly, not 4+1
    assert groups[0].seeds == (0, 1, 2) and groups[1].seeds == (3, 4)
    assert len({g.group_hash for g in groups}) == 8
    assert auto_group_size(n_configs=20, n_seeds=5, workers=2) == 5  # enough configs: all seeds together
    assert auto_group_size(n_configs=1, n_seeds=5, workers=2) == 3  # split to keep both workers busy
    assert auto_group_size(n_configs=1, n_seeds=100, workers=1) == 10  # capped on CPU
    est = estimate(groups, workers=2)
    assert est["groups"] == 8 and est["env_steps"] == 20 * 1000 and est["wall_s"] > 0


def test_dry_run_creates_nothing_and_reports_cost(tmp_path, capsys):
    from suite.scheduler import sweep

    summary = run_sweep("smoke", dry_run=True, results_dir=tmp_path / "r", workers=2)
    assert not (tmp_path / "r").exists()
    assert summary.planned == len(summary.trials) == 4 and summary.done == 0
    assert {t.status for t in summary.trials} == {"planned"}
    assert summary.estimate["env_steps"] == 4 * 600 and summary.groups == 2
    p = argparse.ArgumentParser()
    sweep.add_arguments(p)
    assert sweep.main(p.parse_args(["smoke", "--dry-run", "--results", str(tmp_path / "r")])) == 0
    out = capsys.readouterr().out
    assert "4 trials (4 to run, 0 already finished)" in out and "estimated" in out and "dqn-soft" in out
    assert sweep.main(p.parse_args(["smoke", "--dry-run", "--json", "--results", str(tmp_path / "r")])) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["planned"] == 4 and data["estimate"]["groups"] == 2
    assert sweep.main(p.parse_args(["smoke", "--dry-run", "--json", "--group-size", "1", "--num-gpus", "0.5",
                                    "--results", str(tmp_path / "r")])) == 0
    assert json.loads(capsys.readouterr().out)["groups"] == 4
    assert not (tmp_path / "r").exists()


def test_bad_arguments():
    from suite.errors import UsageError

    with pytest.raises(UsageError, match="--backend 'slurm' is not valid; allowed: local, ray"):
        run_sweep("smoke", backend="slurm", dry_run=True)
    with pytest.raises(UsageError, match="--workers 0 is not valid"):
        run_sweep("smoke", workers=0, dry_run=True)
    with pytest.raises(UsageError, match="unknown config key 'nope'"):
        run_sweep("smoke", overrides={"nope": "1"}, dry_run=True)
