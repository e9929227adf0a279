"""Stable trial identity: the trial hashes of every built-in suite are pinned, and an option added at its
neutral value leaves every hash as it was."""
import dataclasses
import json
from pathlib import Path

import pytest

from agents.fields import fields_of, spec
from suite.scheduler.matrix import expand
from suite.scheduler.spec import builtin_suites, load_suite
from suite.trial import build_trial

PINNED = json.loads((Path(__file__).parent / "data" / "trial_hashes.json").read_text())


@pytest.mark.parametrize("name", sorted(PINNED))
def test_builtin_suite_trial_hashes_are_pinned(name):
    _, trials = expand(load_suite(name))
    got = {f"{t.variant}|{t.agent}|{t.env}|{t.seed}": t.trial_hash for t in trials}
    assert got == PINNED[name]


def test_every_builtin_suite_is_pinned():
    assert sorted(builtin_suites()) == sorted(PINNED)


def test_neutral_option_is_left_out_of_identity_only_at_its_neutral_value():
    trial = build_trial("dqn", "CartPole-v1", (0,))

    @dataclasses.dataclass(frozen=True)
    class Grown(type(trial.agent_config)):
        new_knob: float = spec(0.0, "a knob added later; 0 keeps the old math", neutral=0.0)

    old = trial.agent_config
    at_neutral = dataclasses.replace(trial, agent_config=Grown(**{k: getattr(old, k) for k in fields_of(type(old))}))
    assert at_neutral.trial_hash(0) == trial.trial_hash(0)
    assert "new_knob" in at_neutral.resolved()["agent_config"]  # still recorded with the run
    moved = dataclasses.replace(at_neutral, agent_config=dataclasses.replace(at_neutral.agent_config, new_knob=0.5))
    assert moved.trial_hash(0) != trial.trial_hash(0)


def test_how_settings_are_recorded_as_tags_not_identity():
    a = build_trial("dqn", "CartPole-v1", (0,), overrides={"train.threads": "2", "train.device": "cpu"})
    b = build_trial("dqn", "CartPole-v1", (0,))
    assert a.trial_hash(0) == b.trial_hash(0)
    assert "threads" not in a.resolved()["train"]
