"""The figures of docs/results, drawn with :mod:`analysis.figures` from the tables of :mod:`analysis.classic_tables`
and :mod:`analysis.sensitivity_tables` (each function returns a matplotlib figure; :mod:`analysis.result_files`
saves it)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns

from analysis import figures
from analysis.sensitivity_tables import ALL_ENVS

__all__ = ["curves_figure", "aggregate_figure", "sensitivity_figure"]


def curves_figure(curves: pd.DataFrame, env: str, looks: dict):
    """IQM evaluation return against env steps with 95 % bands for one environment (rows of
    :func:`analysis.classic_tables.learning_curves` of ``env``), in the paper style: one panel per agent with the
    baseline in grey in each (an overlay for a few agents), each agent in its declared colour."""
    fig = figures.plot_curves(curves, looks, style="paper", y_label="IQM evaluation return (95 % CI band)")
    fig.suptitle(env)
    return fig


def aggregate_figure(long: pd.DataFrame, colours: dict):
    """The four aggregates with intervals per label (:func:`analysis.classic_tables.aggregate_estimates`)."""
    return figures.plot_aggregates(long.dropna(subset=["estimate"]), colours)


def sensitivity_figure(table: pd.DataFrame):
    """One panel per environment: normalised final IQM with 95 % intervals against each method's knob divided by
    the geometric centre of its swept range (log axis), so methods with different knobs share an axis."""
    envs = [e for e in sorted(table["env"].unique()) if e != ALL_ENVS]
    methods = sorted(table["method"].unique())
    colours = dict(zip(methods, sns.color_palette("colorblind", max(len(methods), 1))))
    fig = figures.new_figure(figures.TEXT_WIDTH, 2.9)
    axes = np.atleast_1d(fig.subplots(1, max(len(envs), 1), sharey=True, squeeze=False)).ravel()
    for ax, env in zip(axes, envs):
        for i, m in enumerate(methods):
            g = table[(table["method"] == m) & (table["env"] == env)].sort_values("value")
            if g.empty:
                continue
            allv = table.loc[table["method"] == m, "value"].astype(float)
            centre = float(np.sqrt(allv.min() * allv.max()))
            x = g["value"].astype(float).to_numpy() / centre
            ax.errorbar(x, g["iqm"], yerr=[g["iqm"] - g["iqm_ci_low"], g["iqm_ci_high"] - g["iqm"]],
                        color=colours[m], marker=figures.MARKERS[i % len(figures.MARKERS)], ms=3, lw=1.1, capsize=2,
                        label=f"{m} ({allv.min():g}–{allv.max():g})")
        ax.set_xscale("log")
        ax.set_title(env)
        ax.set_xlabel("knob ÷ geometric centre of its swept range")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("IQM final normalised score")
    if envs:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3, frameon=False)
    return fig
