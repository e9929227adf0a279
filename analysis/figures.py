"""Figures (matplotlib object API, Agg): each plot takes the tidy frame of exactly the numbers it draws and
returns a :class:`matplotlib.figure.Figure` to save with :func:`save` (PDF with TrueType fonts, and PNG).

Every plot takes ``style`` (:mod:`analysis.styles`: ``default``, ``paper``, ``slides``) and agent colours: a
mapping label → colour or label → :class:`analysis.palette.Look` (:func:`analysis.palette.agent_looks`, from the
facts declared with the agents), so an agent has the same colour and marker in every figure.

Learning curves (:func:`plot_curves`) are small multiples past :data:`OVERLAY_MAX` labels: one panel per agent
(or per method group) with the baseline in grey in every panel; the band is the 95 % interval of the IQM as
rliable draws it (a percentile stratified-bootstrap interval at each evaluation point); no markers past
:data:`DENSE_POINTS` points per line; env steps read 100k / 1M.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.palette import MARKERS, Look, agent_looks, agent_order, agent_style
from analysis.styles import COLUMN_WIDTH, LAYOUTS, TEXT_WIDTH, Style, get_style, new_figure, save, step_formatter

__all__ = ["agent_order", "agent_style", "new_figure", "save", "plot_aggregates", "plot_profiles", "plot_poi",
           "plot_curves", "plot_sample_efficiency", "plot_per_env", "plot_sensitivity", "curve_layout",
           "COLUMN_WIDTH", "TEXT_WIDTH", "MARKERS", "LAYOUTS", "OVERLAY_MAX", "DENSE_POINTS", "BASELINE_GREY"]

NORM_LABEL = "Normalised score (0 = random, 1 = reference)"
#: most labels drawn in one axes by ``layout="auto"``
OVERLAY_MAX = 5
#: lines with more points than this are drawn without markers
DENSE_POINTS = 12
BASELINE_GREY = (0.55, 0.55, 0.55)

Colours = Mapping[str, "tuple | Look"]


def _colour(colours: Colours, label: str):
    c = colours[label]
    return c.color if isinstance(c, Look) else c


def _marker(colours: Colours, label: str, i: int) -> str:
    c = colours.get(label)
    return c.marker if isinstance(c, Look) else MARKERS[i % len(MARKERS)]


def _legend_below(fig: Figure, handles, labels, ncols: int = 2) -> None:
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, frameon=False)


def _legend(fig: Figure, ax, n: int) -> None:
    if n > 4:  # many labels: a legend below the axes keeps the curves readable
        _legend_below(fig, *ax.get_legend_handles_labels())
    else:
        ax.legend(frameon=False)


def _interval_rows(ax, rows: Sequence[tuple[float, float, float, tuple]], height: float, scale: float) -> None:
    """Horizontal interval bars with the estimate as a black tick and dot, one per row: (est, low, high, colour)."""
    for i, (est, lo, hi, colour) in enumerate(rows):
        if not np.isfinite(est):
            continue
        ax.barh(i, hi - lo, left=lo, height=height, color=colour, alpha=0.75)
        ax.plot([est] * 2, [i - height / 2, i + height / 2], color="black", lw=1.2 * scale ** 0.5)
        ax.plot(est, i, marker="o", ms=2.5 * scale, color="black")


def plot_aggregates(long: pd.DataFrame, colours: Colours, x_label: str = NORM_LABEL, *,
                    style: str | Style | None = None) -> Figure:
    """Four panels (IQM, median, mean, optimality gap): point estimate and 95 % interval per agent, full width.
    ``long``: agent, metric, estimate, ci_low, ci_high (:func:`analysis.stats.interval_estimates`)."""
    st = get_style(style)
    metrics = list(dict.fromkeys(long["metric"]))
    agents = [a for a in colours if a in set(long["agent"])] or agent_order(long["agent"].unique())
    fig = new_figure(st.text, (0.6 + 0.22 * len(agents)) * st.scale, st)
    axes = np.atleast_1d(fig.subplots(1, len(metrics), sharey=True))
    for ax, metric in zip(axes, metrics):
        sub = long[long["metric"] == metric].set_index("agent")
        rows = []
        for a in agents:
            ok = a in sub.index and np.isfinite(sub.loc[a, "estimate"])
            r = sub.loc[a] if ok else None
            rows.append((r["estimate"], r["ci_low"], r["ci_high"], _colour(colours, a)) if ok
                        else (np.nan, np.nan, np.nan, (0, 0, 0)))
        _interval_rows(ax, rows, 0.6, st.scale)
        ax.set_title(metric + (" (lower\nis better)" if metric == "Optimality gap" else ""))
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(agents)), agents)
    axes[0].invert_yaxis()
    fig.supxlabel(x_label)
    return fig


def plot_profiles(profiles: pd.DataFrame, colours: Colours, x_label: str = "Normalised score τ", *,
                  style: str | Style | None = None) -> Figure:
    """Score distributions: fraction of runs above τ with 95 % bands, one column wide.
    ``profiles``: agent, tau, fraction, ci_low, ci_high."""
    st = get_style(style)
    labels = agent_order(profiles["agent"].unique()) if not colours else \
        [a for a in colours if a in set(profiles["agent"])]
    n = len(labels)
    fig = new_figure(st.column, (2.6 + (0.18 * ((n + 1) // 2) if n > 4 else 0)) * st.scale, st)
    ax = fig.subplots()
    for a in labels:
        g = profiles[profiles["agent"] == a]
        ax.plot(g["tau"], g["fraction"], color=_colour(colours, a), lw=st.line, label=a)
        ax.fill_between(g["tau"], g["ci_low"], g["ci_high"], color=_colour(colours, a), alpha=0.2, lw=0)
    ax.set_xlabel(x_label)
    ax.set_ylabel("Fraction of runs with score > τ")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    _legend(fig, ax, n)
    return fig


def plot_poi(poi: pd.DataFrame, colours: Colours, *, style: str | Style | None = None) -> Figure:
    """P(X > Y) with 95 % intervals, one row per pair; 0.5 = no difference. ``poi``: x, y, probability, ci_low,
    ci_high; rows are drawn in ``colours`` order of X."""
    st = get_style(style)
    order = [a for a in colours if a in set(poi["x"])] or agent_order(poi["x"].unique())
    poi = poi.assign(_o=poi["x"].map({a: i for i, a in enumerate(order)})).sort_values(["_o", "y"])
    fig = new_figure(st.column, (0.7 + 0.22 * len(poi)) * st.scale, st)
    ax = fig.subplots()
    _interval_rows(ax, [(r.probability, r.ci_low, r.ci_high, _colour(colours, r.x)) for r in poi.itertuples()],
                   0.6, st.scale)
    ax.axvline(0.5, color="grey", ls="--", lw=0.8)
    ax.set_yticks(range(len(poi)), [f"P({r.x} > {r.y})" for r in poi.itertuples()])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("Probability of improvement")
    ax.grid(axis="x", alpha=0.3)
    return fig


def curve_layout(labels: Sequence[str], layout: str = "auto", baseline: str = "dqn") -> str:
    """The layout :func:`plot_curves` draws: ``auto`` is ``overlay`` up to :data:`OVERLAY_MAX` labels, else
    ``agents``; small multiples of a lone baseline are an overlay."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not valid; allowed: {', '.join(LAYOUTS)}")
    if layout == "auto":
        layout = "overlay" if len(labels) <= OVERLAY_MAX else "agents"
    if layout != "overlay" and not [a for a in labels if a != baseline]:
        layout = "overlay"
    return layout


def _line(ax, g: pd.DataFrame, colour, label: str, marker: str, st: Style, *, baseline: bool = False) -> None:
    g = g.sort_values("x")
    sparse = len(g) <= DENSE_POINTS
    ax.fill_between(g["x"], g["ci_low"], g["ci_high"], color=colour, alpha=0.18 if baseline else 0.25, lw=0,
                    zorder=1 if baseline else 2)
    ax.plot(g["x"], g["estimate"], color=colour, lw=st.line * (0.85 if baseline else 1.0), label=label,
            marker=marker if sparse and not baseline else None, ms=3 * st.scale, zorder=3 if baseline else 4)


def plot_curves(curves: pd.DataFrame, looks: Colours | None = None, *, layout: str = "auto", baseline: str = "dqn",
                style: str | Style | None = None, width: str | None = None,
                x_label: str = "Environment steps (per seed)", y_label: str = "IQM normalised score (95 % CI band)",
                note: str = "") -> Figure:
    """Learning curves: estimate against x with its 95 % band, for every label of ``curves``.

    ``curves``: agent, x, estimate, ci_low, ci_high (one row per label and evaluation point; exactly what is
    drawn). ``looks``: label → :class:`Look` or colour (default: :func:`analysis.palette.agent_looks` fallback).
    ``layout`` (:func:`curve_layout`): ``overlay`` (one axes), ``agents`` (a panel per label, ``baseline`` in
    grey in each), ``groups`` (a panel per method group, baseline in grey in each). ``width``: ``column`` or
    ``text`` (default: column for an overlay, text for panels). ``note`` is printed under the x label (the
    smoothing window, when smoothed). x values past 1,000 read as env steps (100k / 1M)."""
    st = get_style(style)
    labels = list(dict.fromkeys(curves["agent"]))
    looks = dict(looks) if looks else {}
    missing = [a for a in labels if a not in looks]
    if missing:
        looks.update(agent_looks(missing))
    labels = [a for a in looks if a in set(labels)]
    layout = curve_layout(labels, layout, baseline)
    by_label = {a: g for a, g in curves.groupby("agent", sort=False)}
    if layout == "overlay":
        panels = [("", labels)]
    elif layout == "agents":
        panels = [(a, [a]) for a in labels if a != baseline]
    else:
        groups: dict[str, list[str]] = {}
        for a in labels:
            grp = looks[a].group if isinstance(looks[a], Look) else "other"
            if a != baseline:
                groups.setdefault(grp, []).append(a)
        panels = list(groups.items())
    w = st.width(width or ("column" if layout == "overlay" else "text"))
    ncols = 1 if layout == "overlay" else min(len(panels), 5 if w >= 6 else 2)
    nrows = int(np.ceil(len(panels) / ncols))
    spare_slot = ncols * nrows > len(panels)
    legend_rows = 0 if layout != "overlay" or len(labels) <= 4 else (len(labels) + 1) // 2
    if layout == "overlay":
        height = (2.4 + 0.18 * legend_rows) * st.scale
    else:
        legend_above = layout == "agents" and not spare_slot
        height = nrows * (0.75 * w / ncols + 0.3 * st.scale) + (0.75 if legend_above else 0.5) * st.scale
    fig = new_figure(w, height, st)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)).ravel()
    steps = len(curves) and float(np.nanmax(curves["x"])) > 1000
    has_base = baseline in by_label and layout != "overlay"
    for ax, (title, members) in zip(axes, panels):
        if has_base:
            _line(ax, by_label[baseline], BASELINE_GREY, f"{baseline} (baseline)", "", st, baseline=True)
        for i, a in enumerate(members):
            _line(ax, by_label[a], _colour(looks, a), a, _marker(looks, a, i), st)
        if title:
            ax.set_title(title, pad=2)
        if layout == "groups":
            ax.legend(frameon=False, fontsize=st.font - 2, handlelength=1.2, borderaxespad=0.2)
        ax.grid(alpha=0.3)
        if steps:
            ax.xaxis.set_major_formatter(step_formatter())
        ax.locator_params(axis="x", nbins=4)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    band = Line2D([], [], color=BASELINE_GREY, lw=6, alpha=0.3)
    # a y label longer than the figure is tall (about 0.6 em per character) puts its parenthesis on a second line
    if len(y_label) * 0.6 * st.font > 0.9 * height * 72 and " (" in y_label:
        y_label = y_label.replace(" (", "\n(", 1)
    if layout == "overlay":
        ax = axes[0]
        ax.set_xlabel(x_label + (f"\n{note}" if note else ""))
        ax.set_ylabel(y_label)
        _legend(fig, ax, len(labels))
    else:
        fig.supxlabel(x_label + (f"\n{note}" if note else ""))
        fig.supylabel(y_label)
        handles = ([Line2D([], [], color=BASELINE_GREY, lw=st.line)] if has_base else []) + [band]
        names = ([f"{baseline} (baseline)"] if has_base else []) + ["95 % CI of the IQM"]
        if layout == "groups":
            pass  # every panel has its legend; the y label states the band
        elif spare_slot:
            axes[-1].set_visible(True)
            axes[-1].axis("off")
            axes[-1].legend(handles, names, loc="center", frameon=False)
        else:  # above the panels: below them is the x label's
            fig.legend(handles, names, loc="outside upper center", ncols=2, frameon=False)
    return fig


def plot_sample_efficiency(curves: pd.DataFrame, colours: Colours, x_label: str,
                           y_label: str = "IQM normalised score", *, style: str | Style | None = None) -> Figure:
    """IQM against training progress with 95 % bands, all labels in one axes (:func:`plot_curves` overlay)."""
    return plot_curves(curves, colours, layout="overlay", style=style, x_label=x_label, y_label=y_label)


def plot_per_env(scored: pd.DataFrame, colours: Colours, *, style: str | Style | None = None) -> Figure:
    """Final raw evaluation return of every run, one panel per environment; open markers = diverged,
    crosses = failed (scored as random). ``scored``: env, label, raw_score, scored_as (one row per run)."""
    st = get_style(style)
    envs = sorted(scored["env"].unique())
    agents = [a for a in colours if a in set(scored["label"])] or agent_order(scored["label"].unique())
    ncols = min(len(envs), 5)
    nrows = int(np.ceil(len(envs) / ncols))
    width = st.text if ncols > 2 else min(st.text, st.column * ncols / 2 + 1.2 * st.scale)
    fig = new_figure(width, (0.5 + nrows * (0.9 + 0.16 * len(agents))) * st.scale, st)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    rng = np.random.default_rng(0)
    s = 10 * st.scale
    for ax, env in zip(axes, envs):
        g = scored[scored["env"] == env]
        for i, a in enumerate(agents):
            ga = g[g["label"] == a]
            y = i + rng.uniform(-0.2, 0.2, len(ga))
            c = _colour(colours, a)
            for kind, marker, face in (("evaluated", "o", True), ("diverged-last-eval", "o", False),
                                       ("failed-as-random", "x", True)):
                m = (ga["scored_as"] == kind).to_numpy()
                if not m.any():
                    continue
                if marker == "x":
                    ax.scatter(ga["raw_score"].to_numpy()[m], y[m], s=1.2 * s, marker="x", linewidths=0.8, color=c)
                else:
                    ax.scatter(ga["raw_score"].to_numpy()[m], y[m], s=s, marker="o", linewidths=0.8,
                               facecolors=c if face else "none", edgecolors=c)
            if len(ga):
                ax.plot([np.nanmean(ga["raw_score"])] * 2, [i - 0.3, i + 0.3], color="black", lw=1)
        ax.set_title(env)
        ax.set_yticks(range(len(agents)), agents if ax in axes[::ncols] else [""] * len(agents))
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[len(envs):]:
        ax.set_visible(False)
    fig.supxlabel("Final evaluation return (raw, per episode)")
    return fig


def plot_sensitivity(sens: pd.DataFrame, colours: Colours, y_label: str = "IQM final normalised score", *,
                     style: str | Style | None = None) -> Figure:
    """Final score against each swept knob: one panel per (agent, knob), IQM with 95 % interval.
    ``sens``: agent, knob, value, estimate, ci_low, ci_high. An agent's colour is its own (``colours`` keyed by
    agent name), else the fallback palette's."""
    st = get_style(style)
    panels = list(sens.groupby(["agent", "knob"], sort=False).groups)
    ncols = min(len(panels), 3)
    nrows = int(np.ceil(len(panels) / ncols))
    fig = new_figure(st.text if ncols > 1 else st.column, (0.4 + 2.0 * nrows) * st.scale, st)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).ravel()
    fallback = agent_style(sorted(sens["agent"].unique()))
    for ax, (agent, knob) in zip(axes, panels):
        g = sens[(sens["agent"] == agent) & (sens["knob"] == knob)].sort_values("value")
        x = g["value"].astype(float).to_numpy()
        c = _colour(colours, agent) if agent in colours else fallback[agent]
        ax.errorbar(x, g["estimate"], yerr=[g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]],
                    color=c, marker="o", ms=3 * st.scale, lw=st.line, capsize=2 * st.scale)
        if len(x) > 1 and np.all(x > 0) and x.max() / x.min() >= 10:
            ax.set_xscale("log")
        ax.set_title(agent)
        ax.set_xlabel(knob + (" (env steps)" if knob.endswith(("period", "every", "starts")) else ""))
        ax.set_ylabel(y_label)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return fig
