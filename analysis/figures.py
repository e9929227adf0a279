"""Figures (matplotlib object API, Agg; seaborn's colour-blind palette), each saved as PDF and PNG.

Agent colours and order are fixed across figures by :func:`agent_style`: the baseline ``dqn`` first, then the
known agents in a fixed order, then any other label alphabetically; a label keeps its colour in every figure.
Sizes suit a column (3.4 in) or the full text width (7 in) at 8-pt fonts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["agent_order", "agent_style", "new_figure", "save", "plot_aggregates", "plot_profiles", "plot_poi",
           "plot_sample_efficiency", "plot_per_env", "plot_sensitivity", "COLUMN_WIDTH", "TEXT_WIDTH"]

COLUMN_WIDTH, TEXT_WIDTH = 3.4, 7.0
KNOWN_AGENTS = ["dqn", "double-dqn", "dqn-soft", "dqn-no-target", "agt2-dqn", "sgt2-dqn", "fr-dqn", "isql", "idqn",
                "eaudeqn"]
_RC = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
       "legend.fontsize": 7, "axes.spines.top": False, "axes.spines.right": False, "pdf.fonttype": 42,
       "savefig.dpi": 200}
NORM_LABEL = "Normalised score (0 = random, 1 = reference)"


def agent_order(labels: Sequence[str]) -> list[str]:
    """Baseline first, known agents in a fixed order (variants right after their agent), others A–Z."""
    def key(label: str):
        base, _, variant = label.partition("/")
        rank = KNOWN_AGENTS.index(base) if base in KNOWN_AGENTS else len(KNOWN_AGENTS)
        return (rank, base if rank == len(KNOWN_AGENTS) else "", variant != "" , variant)
    return sorted(dict.fromkeys(labels), key=key)


def agent_style(labels: Sequence[str]) -> dict[str, tuple]:
    """Label → colour (seaborn "colorblind"). Without variants each known agent owns a palette slot, so it has
    the same colour in every figure and every report. With agent/variant labels (ablations, sweeps) the labels
    take distinct colours in label order, the same in every figure of the report. Past ten labels the palette's
    dark and muted versions follow."""
    base_pal = sns.color_palette("colorblind", 10)
    spare = sns.color_palette("dark", 10) + sns.color_palette("muted", 10)
    ordered = agent_order(labels)
    if any("/" in label for label in ordered):
        pal = base_pal + spare
        return {label: tuple(float(c) for c in pal[i % len(pal)]) for i, label in enumerate(ordered)}
    colours: dict[str, tuple] = {}
    free = [base_pal[9]] + spare
    used = 0
    for label in ordered:
        if label in KNOWN_AGENTS:
            colours[label] = base_pal[KNOWN_AGENTS.index(label)]
        else:
            colours[label] = free[used % len(free)]
            used += 1
    return colours


MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "*"]


def _legend(fig: Figure, ax, n: int) -> None:
    if n > 4:  # many labels: a legend below the axes keeps the curves readable
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, frameon=False)
    else:
        ax.legend(frameon=False)


def new_figure(width: float, height: float) -> Figure:
    """An empty figure in the house style (8-pt fonts, no top/right spines, constrained layout), ``width`` ×
    ``height`` inches: :data:`COLUMN_WIDTH` or :data:`TEXT_WIDTH` wide. Every report figure starts here."""
    matplotlib.rcParams.update(_RC)
    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """Write ``name.pdf`` and ``name.png`` into ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.pdf", out_dir / f"{name}.png"]
    for p in paths:
        fig.savefig(p)
    return paths


def plot_aggregates(long: pd.DataFrame, colours: Mapping[str, tuple], x_label: str = NORM_LABEL) -> Figure:
    """Four panels (IQM, median, mean, optimality gap): point estimate and 95 % interval per agent."""
    metrics = list(dict.fromkeys(long["metric"]))
    agents = agent_order(long["agent"].unique())
    fig = new_figure(TEXT_WIDTH, 0.6 + 0.22 * len(agents))
    axes = fig.subplots(1, len(metrics), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, metric in zip(axes, metrics):
        sub = long[long["metric"] == metric].set_index("agent")
        for i, a in enumerate(agents):
            if a not in sub.index or not np.isfinite(sub.loc[a, "estimate"]):
                continue
            r = sub.loc[a]
            ax.barh(i, r["ci_high"] - r["ci_low"], left=r["ci_low"], height=0.6, color=colours[a], alpha=0.75)
            ax.plot([r["estimate"]] * 2, [i - 0.3, i + 0.3], color="black", lw=1.2)
            ax.plot(r["estimate"], i, marker="o", ms=2.5, color="black")
        ax.set_title(metric + (" (lower\nis better)" if metric == "Optimality gap" else ""))
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(agents)), agents)
    axes[0].invert_yaxis()
    fig.supxlabel(x_label, fontsize=8)
    return fig


def plot_profiles(profiles: pd.DataFrame, colours: Mapping[str, tuple], x_label: str = "Normalised score τ") -> Figure:
    """Score distributions: fraction of runs above τ with 95 % bands."""
    n = profiles["agent"].nunique()
    fig = new_figure(COLUMN_WIDTH, 2.6 + (0.18 * ((n + 1) // 2) if n > 4 else 0))
    ax = fig.subplots()
    for a in agent_order(profiles["agent"].unique()):
        g = profiles[profiles["agent"] == a]
        ax.plot(g["tau"], g["fraction"], color=colours[a], lw=1.2, label=a)
        ax.fill_between(g["tau"], g["ci_low"], g["ci_high"], color=colours[a], alpha=0.2, lw=0)
    ax.set_xlabel(x_label)
    ax.set_ylabel("Fraction of runs with score > τ")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    _legend(fig, ax, profiles["agent"].nunique())
    return fig


def plot_poi(poi: pd.DataFrame, colours: Mapping[str, tuple]) -> Figure:
    """P(X > Y) with 95 % intervals, one row per pair; 0.5 = no difference."""
    order = agent_order(poi["x"].unique())
    poi = poi.assign(_o=poi["x"].map({a: i for i, a in enumerate(order)})).sort_values(["_o", "y"])
    fig = new_figure(COLUMN_WIDTH, 0.7 + 0.22 * len(poi))
    ax = fig.subplots()
    for i, r in enumerate(poi.itertuples()):
        ax.barh(i, r.ci_high - r.ci_low, left=r.ci_low, height=0.6, color=colours[r.x], alpha=0.75)
        ax.plot([r.probability] * 2, [i - 0.3, i + 0.3], color="black", lw=1.2)
        ax.plot(r.probability, i, marker="o", ms=2.5, color="black")
    ax.axvline(0.5, color="grey", ls="--", lw=0.8)
    ax.set_yticks(range(len(poi)), [f"P({r.x} > {r.y})" for r in poi.itertuples()])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("Probability of improvement")
    ax.grid(axis="x", alpha=0.3)
    return fig


def plot_sample_efficiency(curves: pd.DataFrame, colours: Mapping[str, tuple], x_label: str,
                           y_label: str = "IQM normalised score") -> Figure:
    """IQM against training progress with 95 % bands."""
    n = curves["agent"].nunique()
    fig = new_figure(COLUMN_WIDTH, 2.6 + (0.18 * ((n + 1) // 2) if n > 4 else 0))
    ax = fig.subplots()
    for i, a in enumerate(agent_order(curves["agent"].unique())):
        g = curves[curves["agent"] == a].sort_values("x")
        ax.plot(g["x"], g["estimate"], color=colours[a], lw=1.2, label=a, marker=MARKERS[i % len(MARKERS)], ms=3)
        ax.fill_between(g["x"], g["ci_low"], g["ci_high"], color=colours[a], alpha=0.2, lw=0)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(alpha=0.3)
    _legend(fig, ax, n)
    return fig


def plot_per_env(scored: pd.DataFrame, colours: Mapping[str, tuple]) -> Figure:
    """Final raw evaluation return of every run, one panel per environment; open markers = diverged,
    crosses = failed (scored as random)."""
    envs = sorted(scored["env"].unique())
    agents = agent_order(scored["label"].unique())
    ncols = min(len(envs), 5)
    nrows = int(np.ceil(len(envs) / ncols))
    fig = new_figure(TEXT_WIDTH if ncols > 2 else COLUMN_WIDTH * ncols / 2 + 1.2,
                  0.5 + nrows * (0.9 + 0.16 * len(agents)))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    rng = np.random.default_rng(0)
    for ax, env in zip(axes, envs):
        g = scored[scored["env"] == env]
        for i, a in enumerate(agents):
            ga = g[g["label"] == a]
            y = i + rng.uniform(-0.2, 0.2, len(ga))
            for kind, marker, face in (("evaluated", "o", True), ("diverged-last-eval", "o", False),
                                       ("failed-as-random", "x", True)):
                m = (ga["scored_as"] == kind).to_numpy()
                if not m.any():
                    continue
                if marker == "x":
                    ax.scatter(ga["raw_score"].to_numpy()[m], y[m], s=12, marker="x", linewidths=0.8, color=colours[a])
                else:
                    ax.scatter(ga["raw_score"].to_numpy()[m], y[m], s=10, marker="o", linewidths=0.8,
                               facecolors=colours[a] if face else "none", edgecolors=colours[a])
            if len(ga):
                ax.plot([np.nanmean(ga["raw_score"])] * 2, [i - 0.3, i + 0.3], color="black", lw=1)
        ax.set_title(env)
        ax.set_yticks(range(len(agents)), agents if ax in axes[::ncols] else [""] * len(agents))
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[len(envs):]:
        ax.set_visible(False)
    fig.supxlabel("Final evaluation return (raw, per episode)", fontsize=8)
    return fig


def plot_sensitivity(sens: pd.DataFrame, colours: Mapping[str, tuple], y_label: str = "IQM final normalised score"
                     ) -> Figure:
    """Final score against each swept knob: one panel per (agent, knob), IQM with 95 % interval."""
    panels = list(sens.groupby(["agent", "knob"], sort=False).groups)
    ncols = min(len(panels), 3)
    nrows = int(np.ceil(len(panels) / ncols))
    fig = new_figure(TEXT_WIDTH if ncols > 1 else COLUMN_WIDTH, 0.4 + 2.0 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).ravel()
    base_colours = agent_style(sorted(sens["agent"].unique()))
    for ax, (agent, knob) in zip(axes, panels):
        g = sens[(sens["agent"] == agent) & (sens["knob"] == knob)].sort_values("value")
        x = g["value"].astype(float).to_numpy()
        ax.errorbar(x, g["estimate"], yerr=[g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]],
                    color=colours.get(agent, base_colours[agent]), marker="o", ms=3, lw=1.2, capsize=2)
        if len(x) > 1 and np.all(x > 0) and x.max() / x.min() >= 10:
            ax.set_xscale("log")
        ax.set_title(agent)
        ax.set_xlabel(knob + (" (env steps)" if knob.endswith(("period", "every", "starts")) else ""))
        ax.set_ylabel(y_label)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return fig
