"""Figure styles (widths, TrueType fonts), agent looks from declared facts, learning-curve layouts, smoothing."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb

from analysis import figures
from analysis.palette import agent_looks, agent_order, label_groups
from analysis.sections import smooth_curves
from analysis.styles import STYLES, format_steps, new_figure, save

FACTS = {  # display order, as the suite passes it (suite.figure.figure_facts)
    "dqn": {"color": "#0173b2", "marker": "o", "group": "target-based"},
    "dqn-soft": {"color": "#029e73", "marker": "^", "group": "target-based"},
    "double-dqn": {"color": "#56b4e9", "marker": "s", "group": "target-based"},
    "dqn-no-target": {"color": "#d55e00", "marker": "v", "group": "target-free"},
    "agt2-dqn": {"color": "#cc78bc", "marker": "D", "group": "gradient tracking"},
    "sgt2-dqn": {"color": "#ca9161", "marker": "P", "group": "gradient tracking"},
    "idqn": {"color": "#1b7837", "marker": "h", "group": "iterated"},
    "isql": {"color": "#7b3294", "marker": "*", "group": "iterated"},
}


def pdf_facts(path) -> tuple[float, float, bytes]:
    """(width, height) in inches of the PDF's page and its raw bytes."""
    data = path.read_bytes()
    w, h = (float(v) for v in re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data).groups())
    return w / 72, h / 72, data


@pytest.mark.parametrize("style", sorted(STYLES))
def test_each_style_has_its_widths_and_embeds_truetype_fonts(tmp_path, style):
    st = STYLES[style]
    for which in ("column", "text"):
        fig = new_figure(st.width(which), 2.0, style)
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], label="dqn")
        ax.set_xlabel("Environment steps τ ≥ 0")
        ax.legend()
        pdf, png = save(fig, tmp_path, f"{style}_{which}")
        w, _, data = pdf_facts(pdf)
        assert w == pytest.approx(st.width(which), abs=0.01)
        assert b"/FontFile2" in data and b"/Type3" not in data  # TrueType (Type 42) embedded, no Type 3
        assert png.stat().st_size > 1000
    assert (STYLES["paper"].column, STYLES["paper"].text) == (3.25, 6.75)
    assert STYLES["slides"].font > STYLES["paper"].font and STYLES["default"].column == figures.COLUMN_WIDTH == 3.4


def test_steps_read_as_100k_and_1m():
    assert [format_steps(x) for x in (0, 500, 100_000, 250_000, 1_000_000, 1_500_000)] == \
        ["0", "500", "100k", "250k", "1M", "1.5M"]


def test_agent_looks_come_from_the_declared_facts_in_every_figure():
    one = agent_looks(["isql", "dqn", "agt2-dqn"], FACTS)
    every = agent_looks(list(FACTS) + ["my-agent"], FACTS)
    for name in ("dqn", "isql", "agt2-dqn"):
        assert one[name].color == every[name].color == to_rgb(FACTS[name]["color"])
        assert one[name].marker == every[name].marker == FACTS[name]["marker"]
        assert one[name].group == FACTS[name]["group"]
    # an undeclared agent: a spare colour that is no declared agent's, the fallback group
    assert every["my-agent"].color not in {to_rgb(f["color"]) for f in FACTS.values()}
    assert every["my-agent"].group == "other"
    # order: baseline, then by group in facts order, undeclared last; without facts: baseline, then as given
    assert agent_order(["isql", "my-agent", "agt2-dqn", "dqn-soft", "dqn"], FACTS) == \
        ["dqn", "dqn-soft", "agt2-dqn", "isql", "my-agent"]
    assert agent_order(["isql", "agt2-dqn", "isql/b", "dqn"]) == ["dqn", "isql", "isql/b", "agt2-dqn"]
    assert list(label_groups(list(FACTS), FACTS)) == ["target-based", "target-free", "gradient tracking", "iterated"]


def test_variants_follow_their_agent_in_numeric_order_with_shades_of_its_colour():
    labels = ["dqn/C=1000", "dqn/C=500", "dqn/default", "isql"]
    assert agent_order(labels, FACTS) == ["dqn/default", "dqn/C=500", "dqn/C=1000", "isql"]
    looks = agent_looks(labels, FACTS)
    colours = [looks[a].color for a in ("dqn/default", "dqn/C=500", "dqn/C=1000")]
    assert colours[0] == to_rgb(FACTS["dqn"]["color"]) and len(set(colours)) == 3
    many = agent_looks([f"dqn/C={c}" for c in range(1, 9)], FACTS)
    assert len({lk.color for lk in many.values()}) == 8


def _curves(agents, points=40, steps=500_000) -> pd.DataFrame:
    x = np.linspace(steps / points, steps, points)
    rows = []
    for i, a in enumerate(agents):
        est = np.tanh(x / steps * (1 + i)) + 0.02 * np.sin(x / 10_000 + i)
        rows.append(pd.DataFrame({"agent": a, "x": x, "estimate": est, "ci_low": est - 0.1, "ci_high": est + 0.1}))
    return pd.concat(rows, ignore_index=True)


def _data_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.lines]


def test_many_agents_are_small_multiples_with_the_baseline_grey_in_every_panel_and_no_markers():
    agents = list(FACTS) + ["fr-dqn", "eaudeqn"]  # ten agents
    looks = agent_looks(agents, FACTS)
    fig = figures.plot_curves(_curves(agents), looks, style="paper")
    panels = _data_axes(fig)
    assert len(panels) == 9 and sorted(ax.get_title() for ax in panels) == sorted(a for a in agents if a != "dqn")
    for ax in panels:
        grey, own = ax.lines[0], ax.lines[1]
        assert to_rgb(grey.get_color()) == figures.BASELINE_GREY and grey.get_label() == "dqn (baseline)"
        assert to_rgb(own.get_color()) == looks[ax.get_title()].color
        assert all(line.get_marker() in (None, "None", "") for line in ax.lines)  # 40 points: dense, no markers
        assert ax.xaxis.get_major_formatter()(500_000, 0) == "500k"
    assert fig.get_size_inches()[0] == pytest.approx(STYLES["paper"].text)
    groups = figures.plot_curves(_curves(agents), looks, layout="groups", style="paper")
    assert sorted(ax.get_title() for ax in _data_axes(groups)) == sorted(
        ["target-based", "target-free", "gradient tracking", "iterated", "other"])


def test_few_agents_overlay_in_one_column_with_markers_only_on_sparse_curves():
    agents = ["dqn", "isql", "agt2-dqn"]
    fig = figures.plot_curves(_curves(agents, points=8), agent_looks(agents, FACTS), style="paper")
    (ax,) = _data_axes(fig)
    assert fig.get_size_inches()[0] == pytest.approx(3.25)
    assert {line.get_marker() for line in ax.lines} == {FACTS[a]["marker"] for a in agents}
    assert "95 % CI" in ax.get_ylabel()
    with pytest.raises(ValueError, match="layout 'grid' is not valid; allowed: auto, overlay, agents, groups"):
        figures.curve_layout(agents, "grid")


def test_smoothing_is_each_runs_trailing_mean_before_the_bootstrap():
    curves = pd.DataFrame({"agent": "dqn", "env": "CartPole-v1", "seed": [0, 0, 0, 0, 1, 1, 1, 1],
                           "x": [1, 2, 3, 4] * 2, "score": [0.0, 3.0, 6.0, 9.0, 1.0, 1.0, 4.0, 4.0]})
    out = smooth_curves(curves.iloc[::-1], 3)  # row order does not matter: each run in x order
    got = out.sort_values(["seed", "x"])["score"].tolist()
    assert got == [0.0, 1.5, 3.0, 6.0, 1.0, 1.0, 2.0, 3.0]  # trailing: the last 3 points, fewer at the start
    assert smooth_curves(curves, 1) is curves
