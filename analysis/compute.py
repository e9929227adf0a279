"""The report's compute section: what each agent's results cost, and return against wall-clock time.

Read from the run records (:mod:`analysis.record_names`): the tags ``wall_s`` (training wall time of the run's
batched group, over every resumed attempt), ``seed_steps_per_s`` (env steps of the run's seed per second of that
time) and ``torch_device``, and the metric ``time/wall_s`` logged at every evaluation. Runs recorded before these
existed have none of them and are left out of this section (it is left out when no run has them).

Registered after the sample-efficiency section (``@register_section``); importing :mod:`analysis.report` imports
this module.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import figures, record_names as names, tables
from analysis.section import ReportContext, Section, Table
from analysis.sections import register_section

__all__ = ["Compute", "compute_table", "wall_curves"]

_WALL, _SPS, _DEVICE = (f"tag.{names.WALL_S_TAG}", f"tag.{names.SEED_STEPS_PER_S}", f"tag.{names.DEVICE}")


def compute_table(scored: pd.DataFrame) -> pd.DataFrame:
    """Per agent label: runs with compute records, median wall time per run (s), median env steps per second of
    one seed, total seed-hours (the sum over runs of their wall time: a batched group's time is every seed's),
    and the devices used."""
    if _WALL not in scored:
        return pd.DataFrame(columns=["agent", "runs", "wall_s", "seed_steps_per_s", "seed_hours", "device"])
    runs = scored[pd.to_numeric(scored[_WALL], errors="coerce").notna()]
    rows = []
    for label, g in runs.groupby("label", sort=False):
        wall = pd.to_numeric(g[_WALL], errors="coerce")
        sps = pd.to_numeric(g.get(_SPS, pd.Series(np.nan, index=g.index)), errors="coerce")
        devices = sorted(g.get(_DEVICE, pd.Series("?", index=g.index)).fillna("?").astype(str).unique())
        rows.append({"agent": label, "runs": len(g), "wall_s": float(wall.median()),
                     "seed_steps_per_s": float(sps.median()), "seed_hours": float(wall.sum() / 3600.0),
                     "device": ", ".join(devices)})
    return pd.DataFrame(rows)


def wall_curves(scored: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Per (agent label, env, evaluation step): the mean evaluation return over runs and the median training wall
    time at that evaluation (s). Only runs whose evaluations carry ``time/wall_s``."""
    ev = metrics[metrics["metric"] == names.EVAL_RETURN][["run_id", "env", "step", "value"]]
    wall = metrics[metrics["metric"] == names.WALL_S][["run_id", "step", "value"]].rename(columns={"value": "wall_s"})
    joined = ev.merge(wall, on=["run_id", "step"]).merge(scored[["run_id", "label"]], on="run_id")
    if joined.empty:
        return pd.DataFrame(columns=["agent", "env", "step", "return_mean", "wall_s", "runs"])
    out = (joined.groupby(["label", "env", "step"], sort=True)
           .agg(return_mean=("value", "mean"), wall_s=("wall_s", "median"), runs=("run_id", "nunique"))
           .reset_index().rename(columns={"label": "agent"}))
    return out


def plot_wall_curves(curves: pd.DataFrame, colours, order) -> object:
    """One row per environment: mean evaluation return against env steps (left) and against training wall
    time (right, the median over runs at each evaluation)."""
    envs = sorted(curves["env"].unique())
    fig = figures.new_figure(figures.TEXT_WIDTH, 0.5 + 2.0 * len(envs))
    axes = np.atleast_2d(fig.subplots(len(envs), 2, squeeze=False))
    for row, env in enumerate(envs):
        left, right = axes[row]
        sub = curves[curves["env"] == env]
        for agent in [a for a in order if a in set(sub["agent"])]:
            g = sub[sub["agent"] == agent].sort_values("step")
            style = {"color": colours.get(agent), "label": agent, "linewidth": 1.2}
            left.plot(g["step"], g["return_mean"], **style)
            right.plot(g["wall_s"], g["return_mean"], **style)
        left.set_ylabel(f"{env}\nmean eval return")
        for ax in (left, right):
            ax.grid(alpha=0.3)
        if row == len(envs) - 1:
            left.set_xlabel("Environment steps (per seed)")
            right.set_xlabel("Training wall-clock time (s)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:  # constrained layout makes room for a legend placed "outside"
        fig.legend(handles, labels, loc="outside upper center", ncols=min(5, len(labels)), frameon=False)
    return fig


@register_section(after="sample_efficiency")
class Compute(Section):
    """What the results cost (wall time, seed-steps/s, device per agent) and return against wall-clock time."""

    name, heading, alt = "compute", "Compute", "return against env steps and against wall-clock time"

    def compute(self, ctx: ReportContext) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        table = compute_table(ctx.scored)
        curves = wall_curves(ctx.scored, ctx.metrics)
        if table.empty and curves.empty:
            return None
        order = {label: i for i, label in enumerate(ctx.order)}
        table = table.sort_values("agent", key=lambda s: s.map(order).fillna(len(order)), kind="stable")
        return table.reset_index(drop=True), curves

    def table(self, ctx: ReportContext, data) -> Table:
        table, _ = data
        display = pd.DataFrame({
            "agent": table["agent"], "runs": table["runs"].astype(int),
            "wall time per run (s)": [tables.fmt(v, 1) for v in table["wall_s"]],
            "seed-steps/s": [tables.fmt(v, 0) for v in table["seed_steps_per_s"]],
            "seed-hours": [tables.fmt(v, 3) for v in table["seed_hours"]], "device": table["device"]})
        return Table(display, title="Compute per agent (medians over runs)",
                     footnote=("Wall time: training loop of the run's batched group, over every resumed attempt "
                               "(seeds trained together share it); seed-steps/s: env steps of one seed per second of "
                               "it; seed-hours: the sum of the runs' wall times."),
                     numbers=table)

    def figure(self, ctx: ReportContext, data):
        _, curves = data
        if curves.empty:
            return None
        return plot_wall_curves(curves, ctx.colours, ctx.order)

    def text(self, ctx: ReportContext, data) -> str:
        return ("What each agent's results cost, and its mean evaluation return against env steps (left) and "
                "against training wall-clock time (right): an agent that learns in fewer steps but costs more per "
                "step can lose on the right.")
