"""The target-rule registry against both forms it names: every entry's tabular class and deep agent exist, take the
same knobs (by name, with the documented renames) and the same named choices, and point at each other."""
from __future__ import annotations

import importlib
import inspect
import typing

import numpy as np
import pytest

from agents import get_agent
from agents import tabular_rules as tabular
from agents.tabular_settings import TabularSettings
from agents.target_registry import (RULES, TARGET_INITS, TARGET_RULES, TRACKING, TargetInit, Tracking,
                                    target_rule_spec)


def _deep_rule_class(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def test_registry_names_are_the_public_rule_names():
    # `targetbench convergence --rules` values: public, kept in this order
    assert RULES == ("target-free", "hard", "soft", "agt2", "sgt2", "sgt2-mutual")
    assert TRACKING == ("state", "pair") and TARGET_INITS == ("independent", "copy")
    with pytest.raises(ValueError, match=r"^unknown target rule 'polyak', allowed rules: target-free, hard, soft, "
                                         r"agt2, sgt2, sgt2-mutual$"):
        target_rule_spec("polyak")


@pytest.mark.parametrize("name", RULES)
def test_tabular_form_has_the_registered_name_and_knobs(name):
    spec = TARGET_RULES[name]
    cls = getattr(tabular, spec.tabular_rule)
    assert cls.name == name and issubclass(cls, tabular.TabularRule)
    assert tuple(inspect.signature(cls).parameters) == spec.knobs
    assert type(tabular.make_rule(name)) is cls
    # the tabular class names its deep form, and the deep class names its tabular form
    assert f"agent ``{spec.deep_agent}``" in cls.__doc__
    assert f"``{name}``" in _deep_rule_class(spec.deep_rule).__doc__


@pytest.mark.parametrize("name", RULES)
def test_deep_form_runs_the_registered_rule_with_the_same_knobs(name):
    spec = TARGET_RULES[name]
    agent_spec = get_agent(spec.deep_agent)
    hints = typing.get_type_hints(agent_spec.config_cls)
    for knob in spec.knobs:
        assert spec.deep_field(knob) in hints, f"{spec.deep_agent} has no field {spec.deep_field(knob)}"
    # the named choices are the registry's, on both sides
    if "track" in spec.knobs:
        assert hints["track"] == Tracking
    if "target_init" in spec.knobs:
        assert hints["target_init"] == TargetInit
    # defaults of the named choices agree (numeric defaults are each form's own: budgets and units differ)
    tabular_defaults = TabularSettings()
    for knob in ("track", "target_init"):
        if knob in spec.knobs:
            field = agent_spec.config_cls.__dataclass_fields__[knob]
            assert field.default == getattr(tabular_defaults, knob)
    cfg = agent_spec.config_cls.for_family("classic", dict(spec.deep_settings))
    agent = agent_spec.cls(cfg, obs_shape=(2,), obs_dtype=np.float32, num_actions=2, seeds=[0], family="classic",
                           total_steps=100)
    rule = agent.target_rule
    assert type(rule) is _deep_rule_class(spec.deep_rule)
    assert rule.name == spec.deep_tag
