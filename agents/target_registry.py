"""The target rules' shared vocabulary: one registry of rule names, their knobs, their deep and tabular forms.

Each rule exists in two forms that run the same maths on different objects:

- the **deep** form, a target-rule object over networks (:mod:`agents.targets`, :mod:`agents.gradient_targets`)
  used by a registered agent (``dqn``, ``agt2-dqn``, ...);
- the **tabular** form, a rule over numpy Q-tables (:mod:`agents.tabular_rules`, ``targetbench convergence``), checked
  against ``Q*`` from value iteration.

What the two forms share is declared once here: the rule's public name (the ``--rules`` values of
``targetbench convergence``), its knobs (same name and meaning in both forms, except the hard period, which the
deep config calls ``target_period``), the choices of the knobs that take a name (:data:`Tracking`,
:data:`TargetInit`), and where the update is written down (``docs/algorithms.md``). What they do not share is
kept apart on purpose: the classes (a tabular rule also makes the online step, which a deep agent's loss and
optimizer make) and the knobs' ranges (the tabular β mixes two tables and must be at most 1; the deep β is an
optimizer's step size). ``tests/agents/test_target_registry.py`` checks every entry against both forms.

Plain Python: no torch, no numpy, so both forms import it freely.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["TargetRuleSpec", "TARGET_RULES", "RULES", "Tracking", "TRACKING", "TargetInit", "TARGET_INITS",
           "target_rule_spec"]

#: the actions a tracking step moves: every action of the visited/sampled state (as the deep tracking loss sums
#: over actions) or the visited pair / taken action only
Tracking = Literal["state", "pair"]
TRACKING: tuple[str, ...] = typing.get_args(Tracking)
#: how SGT2's θ⁻ / Q⁻ starts: an independent random draw, or a copy (which makes joint-td exactly target-free)
TargetInit = Literal["independent", "copy"]
TARGET_INITS: tuple[str, ...] = typing.get_args(TargetInit)


@dataclass(frozen=True)
class TargetRuleSpec:
    """One target rule in both its forms.

    Attributes:
        name: the public name (``targetbench convergence --rules NAME``; the tabular rule's ``name``).
        summary: what the rule does, in one line.
        source: where it comes from (``our reading`` marks rules implemented from a reading, docs/algorithms.md).
        knobs: the tabular form's knobs, in the order ``targetbench convergence --json`` reports them.
        deep_agent: the registered deep agent that runs this rule.
        deep_settings: agent config values that select this rule's form (e.g. SGT2's ``form``).
        deep_rule: the deep target-rule class, ``module:Class``.
        deep_tag: that class's ``name``, recorded as the run's ``target_rule`` tag.
        deep_knobs: tabular knob -> deep config field, where the deep name differs.
        tabular_rule: the tabular class's name in :mod:`agents.tabular_rules`.
        doc: where the update rules are written down.
    """

    name: str
    summary: str
    source: str
    knobs: tuple[str, ...]
    deep_agent: str
    deep_rule: str
    deep_tag: str
    tabular_rule: str
    deep_settings: dict[str, str] = field(default_factory=dict)
    deep_knobs: dict[str, str] = field(default_factory=dict)
    doc: str = "docs/algorithms.md"

    def deep_field(self, knob: str) -> str:
        """The deep config field of the tabular knob ``knob``."""
        return self.deep_knobs.get(knob, knob)


_GT2 = "Park, Lee, Lee 2025 (arXiv 2503.16700), our reading"

TARGET_RULES: dict[str, TargetRuleSpec] = {s.name: s for s in (
    TargetRuleSpec("target-free", "bootstrap from the online values themselves (no target)", "Watkins 1989",
                   knobs=(), deep_agent="dqn-no-target", deep_rule="agents.targets:NoTarget", deep_tag="none",
                   tabular_rule="TabularNoTarget"),
    TargetRuleSpec("hard", "bootstrap from a copy refreshed every C steps", "Mnih et al. 2015",
                   knobs=("period",), deep_agent="dqn", deep_rule="agents.targets:HardUpdate", deep_tag="hard",
                   tabular_rule="TabularHardUpdate", deep_knobs={"period": "target_period"}),
    TargetRuleSpec("soft", "bootstrap from a Polyak average, moved by tau after every step", "Lillicrap et al. 2016",
                   knobs=("tau",), deep_agent="dqn-soft", deep_rule="agents.targets:SoftUpdate", deep_tag="soft",
                   tabular_rule="TabularSoftUpdate"),
    TargetRuleSpec("agt2", "asymmetric gradient target tracking: the target takes a step of size beta toward the "
                   "online values after each online step", _GT2, knobs=("beta", "track"), deep_agent="agt2-dqn",
                   deep_rule="agents.gradient_targets:GradientTrackingTarget", deep_tag="agt2",
                   tabular_rule="TabularAGT2"),
    TargetRuleSpec("sgt2", "symmetric gradient target tracking, joint-td form: both learn TD from each other, "
                   "coupled by eta", _GT2, knobs=("eta", "target_init"), deep_agent="sgt2-dqn",
                   deep_settings={"form": "joint-td"}, deep_rule="agents.gradient_targets:JointTarget",
                   deep_tag="sgt2", tabular_rule="TabularSGT2"),
    TargetRuleSpec("sgt2-mutual", "symmetric gradient target tracking, mutual-tracking form: online TD from the "
                   "target plus the pull eta, the target tracks with beta", _GT2,
                   knobs=("eta", "beta", "track", "target_init"), deep_agent="sgt2-dqn",
                   deep_settings={"form": "mutual-tracking"},
                   deep_rule="agents.gradient_targets:GradientTrackingTarget", deep_tag="agt2",
                   tabular_rule="TabularSGT2Mutual"),
)}
#: the public rule names, in report order
RULES: tuple[str, ...] = tuple(TARGET_RULES)


def target_rule_spec(name: str) -> TargetRuleSpec:
    """The registry entry of rule ``name``.

    Raises:
        ValueError: unknown name (one line listing the allowed rules).
    """
    try:
        return TARGET_RULES[name]
    except KeyError:
        raise ValueError(f"unknown target rule {name!r}, allowed rules: {', '.join(RULES)}") from None
