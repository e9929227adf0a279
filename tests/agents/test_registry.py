"""The agent registry and plugin loading through entry points."""
from importlib import metadata

import pytest

from agents import UnknownAgentError, get_agent, list_agents, register
from agents import registry
from agents.agent import QAgent


def test_unknown_agent_lists_registered_names():
    with pytest.raises(UnknownAgentError) as err:
        get_agent("dqm")
    msg = str(err.value)
    assert "'dqm'" in msg and "dqn" in msg and "double-dqn" in msg and "\n" not in msg


def test_foundation_agents_are_registered_with_descriptions():
    specs = {s.name: s for s in list_agents()}
    for name, rule, bootstrap in [("dqn", "hard", "max"), ("dqn-soft", "soft", "max"),
                                  ("double-dqn", "hard", "double"), ("dqn-no-target", "none", "max")]:
        assert specs[name].description
        assert specs[name].cls.bootstrap_rule == bootstrap


def test_duplicate_name_is_refused():
    class Other(QAgent):
        """x"""
    with pytest.raises(ValueError, match="already registered"):
        register("dqn")(Other)


def test_entry_point_plugins_are_loaded(monkeypatch):
    loaded = []

    class FakeEP:
        def load(self):
            loaded.append(True)

    def fake_entry_points(group):
        assert group == "targetbench.agents"
        return [FakeEP()]
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    registry.load_entry_points()
    assert loaded == [True]


def test_agent_facts_are_declared_with_each_builtin_agent():
    from agents.registry import METHOD_GROUPS, agent_facts

    facts = agent_facts()
    builtin = ["dqn", "double-dqn", "dqn-soft", "dqn-no-target", "agt2-dqn", "sgt2-dqn", "fr-dqn", "isql", "idqn",
               "eaudeqn"]
    assert all(facts[a]["color"] and facts[a]["marker"] and facts[a]["group"] in METHOD_GROUPS for a in builtin)
    assert len({facts[a]["color"] for a in builtin}) == len(builtin)  # one colour per agent
    assert {a for a in builtin if facts[a]["reading"]} == {"agt2-dqn", "sgt2-dqn", "eaudeqn"}
    assert facts["dqn"]["update_cost"] == 1.0 and facts["idqn"]["update_cost"] > 1


def test_register_rejects_an_unknown_group_in_one_line():
    import pytest

    from agents.registry import register

    with pytest.raises(ValueError, match="group='fancy' is not valid; allowed: target-based"):
        register("x-agent", group="fancy")
