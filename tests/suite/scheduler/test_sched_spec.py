"""Suite files: every built-in suite loads; the schema's forms; bad files give one-line errors that name the
file, the key and what is allowed."""
from pathlib import Path

import pytest
import yaml

from suite.errors import UsageError
from suite.scheduler import builtin_suites, load_suite, parse_suite
from suite.scheduler.matrix import expand

BASE = {"name": "t", "agents": ["dqn"], "envs": ["CartPole-v1"], "seeds": [0], "steps": 100}


def write(tmp_path: Path, data, name="suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_builtin_suites_load_and_expand():
    names = builtin_suites()
    for required in ("smoke", "default", "classic", "minatar", "atari", "sensitivity-classic"):
        assert required in names
    from agents import list_agents
    every = {a.name for a in list_agents()}
    for name in names:
        suite = load_suite(name)
        configs, trials = expand(suite)
        assert trials and len({t.trial_hash for t in trials}) == len(trials)
        if name in ("classic", "minatar", "atari", "default"):
            assert set(suite.agents) == every
    assert load_suite("classic").envs == ("CartPole-v1", "Acrobot-v1", "MountainCar-v0")
    assert len(load_suite("classic").seeds) >= 5
    assert len(load_suite("minatar").envs) == 5


def test_schema_forms(tmp_path):
    s = parse_suite({**BASE, "agents": {"dqn": {"target_period": 100}, "dqn-soft": None}, "seeds": 3,
                     "eval": {"every": 50, "episodes": 2}, "overrides": {"hidden_sizes": [8, 8]},
                     "env_overrides": {"CartPole-v1": {"learning_starts": 10}}})
    assert s.agents == {"dqn": {"target_period": "100"}, "dqn-soft": {}}
    assert s.seeds == (0, 1, 2)
    assert s.overrides == {"train.eval_every": "50", "train.eval_episodes": "2", "hidden_sizes": "8,8"}
    assert [v.name for v in s.variants] == ["default"]
    assert parse_suite({**BASE, "seeds": "0-2,5"}).seeds == (0, 1, 2, 5)
    assert parse_suite({**BASE, "agents": "all"}).agents.keys() == parse_suite({**BASE, "agents": ["all"]}).agents.keys()

    grid = parse_suite({**BASE, "agents": ["dqn", "dqn-soft"], "variants": [
        {"name": "C={target_period}", "agents": ["dqn"], "grid": {"target_period": [10, 20]}},
        {"agents": ["dqn-soft"], "grid": {"tau": [0.1], "soft_every": [1, 2]}},
        {"name": "plain"}]})
    assert [v.name for v in grid.variants] == ["C=10", "C=20", "tau=0.1,soft_every=1", "tau=0.1,soft_every=2", "plain"]
    assert grid.variants[0].overrides == {"target_period": "10"} and grid.variants[0].agents == ("dqn",)
    _, trials = expand(grid)
    assert [(t.variant, t.agent) for t in trials] == [("C=10", "dqn"), ("C=20", "dqn"), ("tau=0.1,soft_every=1", "dqn-soft"),
                                                      ("tau=0.1,soft_every=2", "dqn-soft"), ("plain", "dqn"),
                                                      ("plain", "dqn-soft")]
    mapping = parse_suite({**BASE, "variants": {"big": {"overrides": {"target_period": 900}}}, "include_default": True})
    assert [v.name for v in mapping.variants] == ["default", "big"]


@pytest.mark.parametrize("data, key, allowed", [
    ({**BASE, "bogus": 1}, "'bogus'", "allowed:"),
    ({k: v for k, v in BASE.items() if k != "agents"}, "'agents'", "required keys"),
    ({**BASE, "agents": ["dqn", "nope"]}, "'agents'", "dqn-soft"),
    ({**BASE, "envs": ["CartPole-v9"]}, "'envs'", "targetbench envs"),
    ({**BASE, "seeds": [0, 0]}, "'seeds'", "distinct"),
    ({**BASE, "seeds": -1}, "'seeds'", "non-negative"),
    ({**BASE, "steps": 0}, "'steps'", "an integer >= 1"),
    ({**BASE, "name": "a b"}, "'name'", "letters"),
    ({**BASE, "eval": {"often": 3}}, "'eval.often'", "every"),
    ({**BASE, "overrides": {"learning_rate": {"a": 1}}}, "'overrides.learning_rate'", "a scalar"),
    ({**BASE, "variants": [{"overrides": {"target_period": 5}}]}, "'variants[0].name'", "a name"),
    ({**BASE, "variants": [{"name": "x", "agents": ["dqn-soft"]}]}, "'variants[0].agents'", "the suite's agents"),
    ({**BASE, "variants": [{"name": "x", "grid": {"tau": 0.1}}]}, "'variants[0].grid.tau'", "[value, ...]"),
    ({**BASE, "variants": [{"name": "x y"}]}, "'variants[0].name'", "without spaces"),
    ({**BASE, "resources": {"num_gpus": -1}}, "'resources.num_gpus'", ">= 0"),
    ({**BASE, "retries": 1.5}, "'retries'", "an integer"),
    ({**BASE, "include_default": "yes"}, "'include_default'", "true or false"),
    ({**BASE, "env_overrides": {"Acrobot-v1": {}}}, "'env_overrides.Acrobot-v1'", "CartPole-v1"),
    ([1, 2], "must be a mapping", "allowed keys"),
])
def test_bad_suite_files_are_one_line_errors(tmp_path, data, key, allowed):
    path = write(tmp_path, data)
    with pytest.raises(UsageError) as info:
        load_suite(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and key in msg and allowed in msg, msg


def test_bad_values_and_yaml_and_names(tmp_path):
    # a value only the agent config can judge: reported with the file, variant, agent and env
    path = write(tmp_path, {**BASE, "overrides": {"learning_rate": -1}})
    with pytest.raises(UsageError, match=r"suite file .*suite.yaml: variant 'default', agent dqn, env CartPole-v1: .*learning_rate"):
        expand(load_suite(path))
    path = write(tmp_path, {**BASE, "overrides": {"tau": 0.1}})
    with pytest.raises(UsageError, match="unknown config key 'tau'"):
        expand(load_suite(path))
    # two variants with the same resolved config
    path = write(tmp_path, {**BASE, "variants": [{"name": "a", "overrides": {"target_period": 500}}, {"name": "b"}]})
    with pytest.raises(UsageError, match="variants 'a' and 'b' of agent dqn on CartPole-v1 resolve to the same config"):
        expand(load_suite(path))
    bad = write(tmp_path, "name: [unclosed\n", "bad.yaml")
    with pytest.raises(UsageError, match=r"suite file .*bad.yaml is not valid YAML"):
        load_suite(bad)
    with pytest.raises(UsageError, match="unknown suite 'no-such-suite'; allowed: a built-in suite"):
        load_suite("no-such-suite")
    with pytest.raises(UsageError, match="cannot be read"):
        load_suite(tmp_path / "missing.yaml")
