"""Agent looks: every agent label's colour, marker and method group, and the order labels are shown in.

The facts are declared with each agent (``@register(name, color=, marker=, group=)``) and reach the analysis as
plain data: a mapping ``name → {"color", "marker", "group", ...}`` in display order, which the suite layer builds
from the agent registry and passes in (this package never imports ``agents``). With facts, an agent has the same
colour and marker in every figure; without them (a notebook on a bare DataFrame) a fallback palette colours the
labels present, baseline first and the rest in the order given.

Labels are agent names, or ``agent/variant`` when an agent appears with several variants. An agent's first label
keeps its colour; up to :data:`MAX_SHADES` further variants are lighter and darker shades of it, more take
distinct spare colours.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import seaborn as sns
from matplotlib.colors import to_rgb

__all__ = ["Look", "AgentFacts", "agent_order", "agent_looks", "agent_style", "label_groups", "BASELINE",
           "FALLBACK_GROUP", "MARKERS", "MAX_SHADES"]

#: name → declared facts (``color``, ``marker``, ``group``; extra keys ignored), in display order
AgentFacts = Mapping[str, Mapping[str, object]]
BASELINE = "dqn"
#: the group of a label whose agent has no declared group
FALLBACK_GROUP = "other"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")
#: the most variants of one agent drawn as shades of its colour; past that they take distinct colours
MAX_SHADES = 4
_KNOB = re.compile(r"^(?P<knob>.*?)=(?P<value>[-+0-9.eE]+)$")


@dataclass(frozen=True)
class Look:
    """How one label is drawn: RGB colour, marker and method group."""

    color: tuple[float, float, float]
    marker: str
    group: str


def _variant_key(variant: str) -> tuple:
    """The default variant first, then ``KNOB=VALUE`` variants by knob and numeric value, then the rest A–Z."""
    if variant in ("", "default"):
        return (0, "", 0.0, "")
    m = _KNOB.match(variant)
    if m:
        try:
            return (1, m["knob"], float(m["value"]), variant)
        except ValueError:
            pass
    return (2, variant, 0.0, variant)


def agent_order(labels: Sequence[str], facts: AgentFacts | None = None, baseline: str = BASELINE) -> list[str]:
    """Labels in display order: the baseline agent first; with ``facts`` the declared agents by group (groups in
    the order they first appear in ``facts``) and within a group in ``facts`` order, then undeclared agents A–Z;
    without facts the other agents in the order they first appear in ``labels``. Variants follow their agent
    (:func:`_variant_key`)."""
    names = list(facts or {})
    groups = list(dict.fromkeys(str(f.get("group") or FALLBACK_GROUP) for f in (facts or {}).values()))
    seen = list(dict.fromkeys(label.partition("/")[0] for label in labels))

    def key(label: str):
        base, _, variant = label.partition("/")
        if base == baseline:
            rank = (0, 0, 0, "")
        elif facts and base in facts:
            group = str(facts[base].get("group") or FALLBACK_GROUP)
            rank = (1, groups.index(group), names.index(base), "")
        elif facts:
            rank = (2, 0, 0, base)
        else:
            rank = (2, 0, seen.index(base), "")
        return rank + _variant_key(variant)

    return sorted(dict.fromkeys(labels), key=key)


def _shades(rgb: tuple[float, float, float], n: int) -> list[tuple[float, float, float]]:
    """``n`` shades of ``rgb``: the colour itself first, then alternately darker and lighter."""
    c = np.asarray(rgb, dtype=float)
    out = [tuple(c)]
    for i in range(1, n):
        t = 0.25 * ((i + 1) // 2)  # 0.25, 0.25, 0.5, 0.5 ...
        mixed = c * (1 - t) if i % 2 else c + (1 - c) * t
        out.append(tuple(float(v) for v in mixed))
    return out


def agent_looks(labels: Sequence[str], facts: AgentFacts | None = None,
                baseline: str = BASELINE) -> dict[str, Look]:
    """Label → :class:`Look` for every label, in :func:`agent_order`. Declared colours and markers come from
    ``facts``; an agent without them takes the next spare colour (seaborn's colour-blind palette, then its dark
    and muted versions, skipping declared colours) and the next unused marker."""
    facts = facts or {}
    ordered = agent_order(labels, facts, baseline)
    declared = {to_rgb(str(f["color"])) for f in facts.values() if f.get("color")}
    palette = [tuple(float(v) for v in c) for c in sns.color_palette("colorblind", 10) + sns.color_palette("dark", 10)
               + sns.color_palette("muted", 10)]
    spare = iter([c for c in palette if all(np.abs(np.subtract(c, d)).max() > 0.05 for d in declared)] * 4)
    used_markers = {str(f["marker"]) for f in facts.values() if f.get("marker")}
    spare_markers = [m for m in MARKERS if m not in used_markers] or list(MARKERS)
    by_agent: dict[str, list[str]] = {}
    for label in ordered:
        by_agent.setdefault(label.partition("/")[0], []).append(label)
    looks: dict[str, Look] = {}
    n_spare_marker = 0
    for agent, group_labels in by_agent.items():
        f = facts.get(agent, {})
        colour = to_rgb(str(f["color"])) if f.get("color") else next(spare)
        if f.get("marker"):
            marker = str(f["marker"])
        else:
            marker = spare_markers[n_spare_marker % len(spare_markers)]
            n_spare_marker += 1
        group = str(f.get("group") or FALLBACK_GROUP)
        n = len(group_labels)
        colours = _shades(colour, n) if n <= MAX_SHADES else [colour] + [next(spare) for _ in range(n - 1)]
        for i, (label, c) in enumerate(zip(group_labels, colours)):
            m = marker if n <= MAX_SHADES or i == 0 else MARKERS[i % len(MARKERS)]
            looks[label] = Look(color=tuple(float(v) for v in c), marker=m, group=group)
    return looks


def agent_style(labels: Sequence[str], facts: AgentFacts | None = None, baseline: str = BASELINE
                ) -> dict[str, tuple]:
    """Label → RGB colour (:func:`agent_looks`), for plots that only need colours."""
    return {label: look.color for label, look in agent_looks(labels, facts, baseline).items()}


def label_groups(labels: Sequence[str], facts: AgentFacts | None = None,
                 baseline: str = BASELINE) -> dict[str, list[str]]:
    """Method group → its labels, groups and labels in display order (:func:`agent_order`)."""
    looks = agent_looks(labels, facts, baseline)
    out: dict[str, list[str]] = {}
    for label, look in looks.items():
        out.setdefault(look.group, []).append(label)
    return out
