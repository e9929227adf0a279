"""One section of ``report.md``: what a figure or table of the report is, and what it may read.

A section is a small object with one job: from the report's :class:`ReportContext` it computes its data
(:meth:`Section.compute`), and from that data it gives a :class:`Table`, a matplotlib figure and the sentence the
report prints under its heading. It writes nothing itself: :func:`analysis.report.build_report` writes every
section's files (``figures/<name>.pdf|png``, ``tables/<name>.md|tex|csv``) and its Markdown in one place, so
file names, timings and layout are the same for every section.

The ordered list of sections, ``@register_section`` and the built-in sections are :mod:`analysis.sections`.
A new figure is one class there (or in any module imported before the report is built).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["ReportContext", "FigureOptions", "Section", "Table", "task_scores", "score_dict"]


def task_scores(scored: pd.DataFrame, column: str = "score") -> dict[str, dict[str, np.ndarray]]:
    """label → env → array of run scores (NaN = not scored, dropped)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for (label, env), g in scored.groupby(["label", "env"], sort=True):
        vals = g[column].to_numpy(float)
        out.setdefault(label, {})[env] = vals[np.isfinite(vals)]
    return out


def score_dict(scored: pd.DataFrame, order: Sequence[str]) -> dict[str, list[np.ndarray]]:
    """label → one array of run scores per environment (environments A–Z), for every label of ``order``."""
    ts = task_scores(scored)
    return {label: [ts[label][e] for e in sorted(ts.get(label, {}))] for label in order}


@dataclass(frozen=True)
class FigureOptions:
    """How figures are drawn: the same for ``targetbench analyze`` and ``targetbench figure``.

    ``style``: :data:`analysis.styles.STYLES` name; ``facts``: agent name → declared facts (colour, marker, group)
    in display order, passed in by the suite layer (:mod:`analysis.palette`; ``None``: fallback palette);
    ``layout``: learning-curve layout (:data:`analysis.figures.LAYOUTS`); ``smooth``: learning curves averaged
    over this many evaluation points (1 = none; :func:`analysis.sections.smooth_curves`); ``curve_score``:
    ``normalised`` or ``raw`` evaluation return on the curves; ``width``: ``column`` or ``text`` to override the
    figure's own width."""

    style: str = "default"
    facts: Mapping[str, Mapping[str, object]] | None = None
    layout: str = "auto"
    smooth: int = 1
    curve_score: str = "normalised"
    width: str | None = None

    def __post_init__(self) -> None:
        from analysis.styles import LAYOUTS, get_style

        get_style(self.style)
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout {self.layout!r} is not valid; allowed: {', '.join(LAYOUTS)}")
        if not (isinstance(self.smooth, int) and self.smooth >= 1):
            raise ValueError(f"smooth {self.smooth!r} is not valid; allowed: an integer >= 1 (evaluation points)")
        if self.curve_score not in ("normalised", "raw"):
            raise ValueError(f"curve score {self.curve_score!r} is not valid; allowed: normalised, raw")
        if self.width not in (None, "column", "text"):
            raise ValueError(f"width {self.width!r} is not valid; allowed: column, text")


@dataclass
class ReportContext:
    """Everything a section may read: the scored runs, the metric points and the report's settings.

    ``scored`` has one row per run with ``label`` (agent or agent/variant) and the scoring columns of
    :func:`analysis.normalization.score_runs`; ``metrics`` is the long metric table of
    :func:`analysis.runs.load_experiment`. Derived tables are computed on first use and shared by sections."""

    scored: pd.DataFrame
    metrics: pd.DataFrame
    refs: pd.DataFrame
    out_dir: Path
    order: list[str]  # agent labels in figure order (analysis.figures.agent_order)
    colours: dict[str, tuple]  # label → colour, the same in every figure
    reps: int
    curve_reps: int
    seed: int
    engine: str
    baseline: str
    pairs: Sequence[tuple[str, str]] = ()
    make_figures: bool = True
    figure_options: FigureOptions = field(default_factory=FigureOptions)

    @cached_property
    def looks(self) -> dict:
        """Label → :class:`analysis.palette.Look` (colour, marker, group) in :attr:`order`."""
        from analysis.palette import agent_looks

        return agent_looks(self.order, self.figure_options.facts, self.baseline)

    @property
    def fig_dir(self) -> Path:
        return self.out_dir / "figures"

    @property
    def tab_dir(self) -> Path:
        return self.out_dir / "tables"

    @cached_property
    def norm_scored(self) -> pd.DataFrame:
        """The runs on environments with a reference score (the normalised aggregates use only these)."""
        return self.scored[self.scored["normalised"]]

    @cached_property
    def raw_envs(self) -> list[str]:
        """Environments without a reference score, A–Z."""
        return sorted(self.scored.loc[~self.scored["normalised"], "env"].unique())

    @cached_property
    def counts(self) -> pd.DataFrame:
        """Runs per agent label and outcome: agent, completed, diverged, failed, running."""
        from analysis.tables import outcome_counts

        return outcome_counts(self.scored, ["label"]).rename(columns={"label": "agent"})

    @cached_property
    def score_lists(self) -> dict[str, list[np.ndarray]]:
        """label → normalised final scores, one array per environment (:func:`score_dict`)."""
        return score_dict(self.norm_scored, self.order)

    @cached_property
    def task_scores(self) -> dict[str, dict[str, np.ndarray]]:
        """label → env → normalised final scores (:func:`task_scores`)."""
        return task_scores(self.norm_scored)

    def rel(self, path: Path) -> str:
        """``path`` relative to the report's folder, as report.md links it."""
        try:
            return path.relative_to(self.out_dir).as_posix()
        except ValueError:
            return path.as_posix()


@dataclass
class Table:
    """A section's table. With ``display`` it is written as ``<name>.md`` and ``.tex`` (display cells, title,
    footnote) plus ``<name>.csv`` (``numbers`` if given, else the display), and embedded in report.md; with
    ``display=None`` only ``<name>.csv`` of ``numbers`` is written (data behind a figure, not in the text)."""

    display: pd.DataFrame | None
    title: str = ""
    footnote: str = ""
    numbers: pd.DataFrame | None = None
    #: the ``.tex`` to write instead of the display cells' (a paper table: :func:`analysis.tables.latex_interval_table`)
    latex: str | None = None


class Section:
    """One figure and/or table of the report, with its heading and one sentence on what it shows.

    Subclasses set :attr:`name` (the file stem under ``figures/`` and ``tables/`` and the timing key) and
    :attr:`heading`, implement :meth:`compute` and :meth:`text`, and override :meth:`table` and/or
    :meth:`figure`. A section whose :meth:`compute` returns ``None`` is left out (no files, no text)."""

    name: str = ""
    heading: str = ""
    #: alt text of the figure's Markdown image; defaults to :attr:`name`
    alt: str | None = None

    def compute(self, ctx: ReportContext) -> Any | None:
        """The section's data (timed in the report's timings), or ``None`` to leave the section out."""
        raise NotImplementedError

    def table(self, ctx: ReportContext, data: Any) -> Table | None:
        """The table to write, or ``None`` for none."""
        return None

    def figure(self, ctx: ReportContext, data: Any):
        """A :class:`matplotlib.figure.Figure` to save as ``<name>.pdf`` and ``.png``, or ``None`` for none.
        Not called when the report is built without figures."""
        return None

    def text(self, ctx: ReportContext, data: Any) -> str:
        """The paragraph under the heading: what the figure or table shows and how to read it."""
        raise NotImplementedError

    def drawn(self, ctx: ReportContext, data: Any) -> pd.DataFrame | None:
        """The numbers the figure draws, one row per drawn element (``targetbench figure`` writes them as the
        figure's CSV); by default the table's numbers."""
        table = self.table(ctx, data)
        if table is None:
            return None
        return table.numbers if table.numbers is not None else table.display
