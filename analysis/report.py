"""The full analysis: scores → statistics → figures, tables and ``report.md``.

:func:`build_report` takes the two tables of :func:`analysis.runs.load_experiment`, scores and labels the runs,
and then writes each section of the report in order (:func:`analysis.sections.registered_sections`: the built-in
ones and any added with ``@register_section``): for a section named ``name``

* ``figures/<name>.pdf`` and ``.png`` when it draws a figure;
* ``tables/<name>.md``, ``.tex`` and ``.csv`` for a displayed table, or only ``tables/<name>.csv`` for the data
  behind a figure;
* in ``report.md``: its heading, one paragraph on what it shows, the figure (linked only when written) and the
  table.

The built-in sections write ``aggregates``, ``profiles``, ``poi``, ``sample_efficiency``, ``per_env`` and (for
sweeps with variants that change a knob) ``sensitivity``. Agents are labelled by name, or ``agent/variant`` when an
agent appears with more than one variant.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from analysis import figures, record_names as names, stats, tables
from analysis.normalization import SCORING_RULE, reference_scores, score_runs
from analysis.palette import agent_looks, agent_order
from analysis.section import FigureOptions, ReportContext, Section, score_dict, task_scores
from analysis.sections import AGGREGATE_RULE, curves_frame, registered_sections, sensitivity_frame
from analysis import compute  # noqa: E402, F401 - registers the compute section (after sample_efficiency)

__all__ = ["label_runs", "report_context", "build_report", "write_section", "ReportResult", "score_dict", "task_scores",
           "curves_frame", "sensitivity_frame", "BASELINE", "AGGREGATE_RULE", "ENGINE_TEXT"]

BASELINE = "dqn"

#: what each bootstrap engine is, for the report's text
ENGINE_TEXT = {"fast": "vectorised numpy stratified bootstrap (analysis.stats), rliable's definitions.",
               "rliable": "the rliable library's own stratified bootstrap (get_interval_estimates, "
                          "create_performance_profile) on the same definitions; it draws from numpy's global generator "
                          "(its random_state argument does not reach the draws), seeded here from the seed per agent."}


def label_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Add ``label``: the agent name, or ``agent/variant`` when the agent has several variants here; reference
    runs (column ``reference`` true: stored runs shown next to an experiment's) are always ``agent/variant``."""
    out = runs.copy()
    if "variant" not in out.columns:
        out["variant"] = names.DEFAULT_VARIANT
    n_var = out.groupby("agent")["variant"].transform("nunique")
    ref = out["reference"].fillna(False).astype(bool) if "reference" in out.columns else False
    out["label"] = np.where((n_var > 1) | ref, out["agent"] + "/" + out["variant"].astype(str), out["agent"])
    return out


@dataclass
class ReportResult:
    """What :func:`build_report` wrote: report.md, figure and table files in section order, and the seconds
    each section's computation took (``total``: the whole report)."""

    report: Path
    figures: list[Path] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def report_context(runs: pd.DataFrame, metrics: pd.DataFrame, out_dir: Path, *, reps: int = stats.DEFAULT_REPS,
                   seed: int = 0, pairs: Sequence[tuple[str, str]] = (), baseline: str = BASELINE,
                   curve_reps: int | None = None, refs: pd.DataFrame | None = None, make_figures: bool = True,
                   engine: str = "fast", figure_options: FigureOptions | None = None) -> ReportContext:
    """Score and label ``runs`` and gather what every section reads (:class:`ReportContext`): the one way a
    report, or a single figure (:mod:`analysis.figure_kinds`), is set up. Labels are ordered and coloured by the
    agents' declared facts in ``figure_options.facts`` (:mod:`analysis.palette`)."""
    if engine not in ENGINE_TEXT:
        raise ValueError(f"engine {engine!r} is not valid; allowed: {', '.join(ENGINE_TEXT)}")
    options = figure_options or FigureOptions()
    refs = reference_scores() if refs is None else refs
    scored = label_runs(score_runs(runs, refs))
    order = agent_order(scored["label"].unique(), options.facts, baseline)
    looks = agent_looks(order, options.facts, baseline)
    return ReportContext(scored=scored, metrics=metrics, refs=refs, out_dir=Path(out_dir), order=order,
                         colours={label: look.color for label, look in looks.items()}, reps=reps,
                         curve_reps=curve_reps or min(reps, stats.DEFAULT_REPS), seed=seed, engine=engine,
                         baseline=baseline, pairs=tuple(pairs), make_figures=make_figures, figure_options=options)


def build_report(runs: pd.DataFrame, metrics: pd.DataFrame, out_dir: Path, *, reps: int = stats.DEFAULT_REPS,
                 seed: int = 0, pairs: Sequence[tuple[str, str]] = (), baseline: str = BASELINE,
                 title: str = "TargetBench report", curve_reps: int | None = None,
                 refs: pd.DataFrame | None = None, make_figures: bool = True, engine: str = "fast",
                 sections: Sequence[Section] | None = None, figure_options: FigureOptions | None = None,
                 notes: Sequence[str] = ()) -> ReportResult:
    """Write figures, tables and ``report.md`` under ``out_dir`` (see the module docstring).
    ``make_figures=False`` writes the tables and the report text only (the report then links no figures).
    ``engine``: who computes the bootstrap intervals, ``fast`` or ``rliable`` (:mod:`analysis.stats`); the
    report states it with the repetition counts. ``sections``: the sections to write, in order (default: every
    registered section, :func:`analysis.sections.registered_sections`). ``figure_options``: style, agent facts,
    curve layout and smoothing (:class:`analysis.section.FigureOptions`; default: the report style, fallback
    palette). ``notes``: lines the report states under its header (reference runs shown, mixed protocols allowed,
    runs without a recorded protocol)."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    ctx = report_context(runs, metrics, out_dir, reps=reps, seed=seed, pairs=pairs, baseline=baseline,
                         curve_reps=curve_reps, refs=refs, make_figures=make_figures, engine=engine,
                         figure_options=figure_options)
    scored, order = ctx.scored, ctx.order
    result = ReportResult(report=out_dir / "report.md")
    n_envs, n_seeds = scored["env"].nunique(), scored.groupby(["label", "env"]).size().max() if len(scored) else 0
    lines: list[str] = [f"# {title}", "",
                        f"{len(scored)} runs: {len(order)} agent{'s' if len(order) != 1 else ''} (or agent/variant "
                        f"labels) × {n_envs} environment{'s' if n_envs != 1 else ''}, up to {n_seeds} seeds each. "
                        f"Baseline: `{baseline}`. Bootstrap: {reps:,} repetitions (sample-efficiency curves "
                        f"{ctx.curve_reps:,}), seed {seed}, engine `{engine}`: {ENGINE_TEXT[engine]}", "",
                        "Scoring: " + SCORING_RULE, ""]
    lines += [line for note in notes for line in (note, "")]
    for section in registered_sections() if sections is None else sections:
        lines += write_section(section, ctx, result)
    result.timings["total"] = time.perf_counter() - t0
    lines += ["---", "", "Timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()), ""]
    result.report.parent.mkdir(parents=True, exist_ok=True)
    result.report.write_text("\n".join(lines))
    return result


def write_section(section: Section, ctx: ReportContext, result: ReportResult) -> list[str]:
    """Compute one section (timed into ``result.timings[section.name]``), write its table and figure files
    (recorded in ``result``) and return its lines of report.md; no lines and no files when it has no data.

    The one writer of every section: ``tables/<name>.*`` (:func:`analysis.tables.write_table`, or only the CSV
    when the table has no display form), ``figures/<name>.pdf|png`` (:func:`analysis.figures.save`), and the
    Markdown: heading, paragraph, figure link (only when the figure was written), embedded table."""
    t = time.perf_counter()
    data = section.compute(ctx)
    if data is None:
        return []
    result.timings[section.name] = time.perf_counter() - t
    table = section.table(ctx, data)
    embedded = None
    if table is not None and table.display is not None:
        paths = tables.write_table(table.display, ctx.tab_dir, section.name, title=table.title,
                                   footnote=table.footnote, numbers=table.numbers, latex=table.latex)
        result.tables += paths.values()
        embedded = paths["md"].read_text()
    elif table is not None:
        ctx.tab_dir.mkdir(parents=True, exist_ok=True)
        path = ctx.tab_dir / f"{section.name}.csv"
        table.numbers.to_csv(path, index=False)
        result.tables.append(path)
    fig = section.figure(ctx, data) if ctx.make_figures else None
    fig_paths = figures.save(fig, ctx.fig_dir, section.name) if fig is not None else []
    result.figures += fig_paths
    lines = [f"## {section.heading}", "", section.text(ctx, data), ""]
    if fig_paths:
        lines.append(f"![{section.alt or section.name}]({ctx.rel(ctx.fig_dir / f'{section.name}.png')})")
    lines.append("")
    return lines + ([embedded, ""] if embedded is not None else [])
