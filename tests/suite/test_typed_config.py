"""One typed config layer for agent configs, training settings, environment options and suite files: one error
format whatever the source, listings and help texts read from the same fields, one seed parser."""
import json
import subprocess
import sys

import pytest

from agents.fields import fields_of
from suite.envs import get_family, validate_env_options
from suite.errors import UsageError
from suite.scheduler import parse_suite
from suite.scheduler.spec import Resources
from suite.trial import TrainConfig, build_trial, override_keys, parse_seeds

BASE = {"name": "t", "agents": ["dqn"], "envs": ["CartPole-v1"], "seeds": [0], "steps": 100}


@pytest.mark.parametrize("overrides, message", [
    ({"learning_rate": "0"}, "learning_rate=0.0 is out of range; allowed: (0, inf)"),
    ({"train.eval_every": "0"}, "train.eval_every=0 is out of range; allowed: [1, inf)"),
    ({"env.max_episode_steps": "0"}, "env.max_episode_steps=0 is out of range; allowed: [1, inf)"),
    ({"batch_size": "x"}, "batch_size='x' is not valid; allowed: int"),
    ({"train.steps": "x"}, "train.steps='x' is not valid; allowed: int"),
    ({"env.max_episode_steps": "x"}, "env.max_episode_steps='x' is not valid; allowed: int"),
    ({"lr": "1"}, "unknown config key 'lr' for HardTargetConfig; allowed: network, "),
    ({"train.lr": "1"}, "unknown config key 'train.lr' for TrainConfig; allowed: train.steps, "),
    ({"env.lr": "1"}, "unknown config key 'env.lr' for CartPole-v1; allowed: env.max_episode_steps"),
])
def test_every_source_speaks_the_same_format(overrides, message):
    with pytest.raises(UsageError) as err:
        build_trial("dqn", "CartPole-v1", (0,), overrides=overrides)
    assert str(err.value).startswith(message), str(err.value)


def test_env_options_through_set_and_through_the_api_give_the_same_message():
    with pytest.raises(UsageError) as via_set:
        build_trial("dqn", "MinAtar/breakout", (0,), overrides={"env.sticky_action_prob": "1.5"})
    with pytest.raises(ValueError) as via_api:
        validate_env_options("MinAtar/breakout", {"sticky_action_prob": 1.5})
    assert str(via_set.value) == str(via_api.value) == \
        "env.sticky_action_prob=1.5 is out of range; allowed: [0, 1]"
    # an option that allows none can be set to none from the command line
    trial = build_trial("dqn", "ALE/Pong-v5", (0,), overrides={"env.max_episode_steps": "none"})
    assert trial.env_options["max_episode_steps"] is None


def test_suite_numbers_are_judged_by_the_same_fields(tmp_path):
    # the eval shorthand by TrainConfig's fields, resources by Resources' (which also check sweep's flags)
    with pytest.raises(UsageError, match=r"key 'eval\.every' is 0; allowed: an integer >= 1"):
        parse_suite({**BASE, "eval": {"every": 0}})
    assert fields_of(TrainConfig)["eval_every"].bound_text() == "an integer >= 1"
    with pytest.raises(UsageError, match=r"key 'resources\.num_cpus' is 0; allowed: a number > 0"):
        parse_suite({**BASE, "resources": {"num_cpus": 0}})
    res = parse_suite({**BASE, "resources": {"num_cpus": 2, "group_size": 4.0}}).resources
    assert res == Resources(group_size=4, num_cpus=2.0, num_gpus=0.0) and type(res.group_size) is int
    assert parse_suite(BASE).resources == Resources() and parse_suite(BASE).retries == 2


def test_sweep_flags_are_checked_by_the_resources_fields(capsys):
    from suite.cli import main

    for argv, message in ((["--num-cpus", "0"], "--num-cpus 0 is not valid; allowed: a number > 0"),
                          (["--num-gpus", "-1"], "--num-gpus -1 is not valid; allowed: a number >= 0"),
                          (["--group-size", "-2"], "--group-size -2 is not valid; allowed: an integer >= 0")):
        assert main(["sweep", "smoke", "--dry-run", *argv]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("value, seeds", [("0", (0,)), ("0,2", (0, 2)), ("0-2,5", (0, 1, 2, 5)), ([3, 1], (3, 1)),
                                          (4, (4,))])
def test_one_seed_parser(value, seeds):
    assert parse_seeds(value) == seeds


@pytest.mark.parametrize("value", ["a", "1,1", "-1", "", [0, 0], [True], [], True])
def test_one_seed_parser_refuses(value):
    with pytest.raises(UsageError, match=r"^--seeds .* is not valid; allowed: "):
        parse_seeds(value, key="--seeds")


def test_listings_and_help_come_from_the_fields(capsys):
    from suite.cli import main

    keys = override_keys()
    assert "train.FIELD: " + ", ".join(fields_of(TrainConfig)) in keys
    for name in ("classic", "minatar", "atari", "tabular"):
        assert f"{name}: " + ", ".join(get_family(name).options) in keys
    assert main(["envs", "--json"]) == 0
    rows = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    sticky = next(f for f in rows["MinAtar/breakout"]["option_fields"] if f["name"] == "sticky_action_prob")
    assert sticky["allowed"] == "float in [0, 1]" and sticky["default"] == 0.1 and sticky["help"]
    assert main(["agents", "--json"]) == 0
    dqn = next(r for r in map(json.loads, capsys.readouterr().out.splitlines()) if r["name"] == "dqn")
    gamma = next(f for f in dqn["fields"] if f["name"] == "gamma")
    assert gamma["allowed"] == "float in [0, 1)" and gamma["default"] == 0.99
    proc = subprocess.run([sys.executable, "-m", "suite", "run", "--help"], capture_output=True, text=True,
                          timeout=120)
    flat = " ".join(proc.stdout.split())
    assert proc.returncode == 0 and "train.FIELD: steps, eval_every" in flat and "repeat_action_probability" in flat


def test_suite_schema_keys_come_from_the_fields():
    from suite.scheduler import spec
    from suite.scheduler.sweep import add_arguments

    typed = spec.typed_keys()
    assert typed["eval.every"] is fields_of(TrainConfig)["eval_every"]
    assert typed["resources.num_gpus"] is fields_of(Resources)["num_gpus"]
    for key in typed:  # the documented schema names every typed key (its last part under its section)
        assert f"\n    {key.split('.')[0]}:" in spec.__doc__ and f"{key.split('.')[-1]}:" in spec.__doc__, key
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    flat = " ".join(p.format_help().split())
    assert "resources.num_cpus: a number > 0" in flat and "eval.every: an integer >= 1" in flat
