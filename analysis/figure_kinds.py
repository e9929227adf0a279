"""One figure at a time: the library behind ``targetbench figure KIND`` and the gallery of every kind.

Each kind is one report section (:mod:`analysis.sections`) drawn alone, by the same code ``targetbench analyze``
uses, on the runs and metric points of :func:`analysis.runs.load_experiment` (plain DataFrames: a notebook, or
per-run data read back from CSV, works the same way):

============ ===================== ===============================================================
kind         section               what is drawn (the CSV's rows)
============ ===================== ===============================================================
aggregates   ``aggregates``        IQM, median, mean, optimality gap per agent with 95 % intervals
curves       ``sample_efficiency`` IQM learning curve per agent with its 95 % band
profiles     ``profiles``          performance profile per agent with its 95 % band
improvement  ``poi``               P(agent > baseline) with 95 % intervals
sensitivity  ``sensitivity``       IQM final score per swept knob value with 95 % intervals
per-env      ``per_env``           every run's final return per environment, and the mean
============ ===================== ===============================================================

:func:`render` writes ``<name>.pdf`` and ``.png`` (the figure), ``<name>.csv`` (exactly the numbers drawn) and
``<name>.txt`` (the caption: what is drawn, the band, the smoothing window, the runs). :func:`write_gallery` draws
every kind once; :func:`gallery_markdown` lists them for a README.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:  # imported where used: the command line reads KINDS without loading pandas
    import pandas as pd

    from analysis.section import FigureOptions

__all__ = ["KINDS", "FigureError", "FigureFiles", "select_runs", "render", "write_gallery", "gallery_markdown"]

#: figure kind → the report section that draws it
KINDS: dict[str, str] = {"aggregates": "aggregates", "curves": "sample_efficiency", "profiles": "profiles",
                         "improvement": "poi", "sensitivity": "sensitivity", "per-env": "per_env"}


class FigureError(ValueError):
    """The figure cannot be drawn as asked (unknown kind, agent or environment, nothing to draw); one line."""


@dataclass
class FigureFiles:
    """What :func:`render` wrote: the figure (PDF, PNG), its numbers (CSV) and its caption (text)."""

    kind: str
    pdf: Path
    png: Path
    csv: Path
    caption: Path

    @property
    def paths(self) -> list[Path]:
        return [self.pdf, self.png, self.csv, self.caption]


def _pick(kind_of: str, asked: Sequence[str] | None, present: Sequence[str]) -> list[str] | None:
    if asked is None:
        return None
    asked = [a for a in dict.fromkeys(asked) if a]
    bad = [a for a in asked if a not in present]
    if bad or not asked:
        raise FigureError(f"{kind_of} {bad[0] if bad else '(none)'!r} is not in these runs; allowed: "
                          + ", ".join(sorted(present)))
    return asked


def select_runs(runs: pd.DataFrame, metrics: pd.DataFrame, *, agents: Sequence[str] | None = None,
                envs: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs (and their metric points) of the given agents and environments; ``None`` keeps all.
    :class:`FigureError` names an agent or environment the runs do not have, and the ones they have."""
    import pandas as pd

    agents = _pick("agent", agents, list(runs["agent"].unique()))
    envs = _pick("env", envs, list(runs["env"].unique()))
    keep = pd.Series(True, index=runs.index)
    if agents is not None:
        keep &= runs["agent"].isin(agents)
    if envs is not None:
        keep &= runs["env"].isin(envs)
    if not keep.any():
        raise FigureError(f"no run of agents {', '.join(agents or [])} on {', '.join(envs or [])}")
    runs = runs[keep]
    return runs, metrics[metrics["run_id"].isin(runs["run_id"])]


def _caption(kind: str, text: str, ctx) -> str:
    n_runs, n_envs = len(ctx.scored), ctx.scored["env"].nunique()
    opt = ctx.figure_options
    return (f"{text}\n\nRuns: {n_runs} ({len(ctx.order)} agent labels × {n_envs} environment"
            f"{'s' if n_envs != 1 else ''}: {', '.join(sorted(ctx.scored['env'].unique()))}). Bootstrap: "
            f"{ctx.reps:,} repetitions ({ctx.curve_reps:,} per curve point), seed {ctx.seed}, engine {ctx.engine}. "
            f"Style {opt.style}" + (f"; curves smoothed over {opt.smooth} evaluation points" if kind == "curves"
                                    and opt.smooth > 1 else "") + ".\n")


def render(kind: str, runs: pd.DataFrame, metrics: pd.DataFrame, out_dir: Path, *, name: str | None = None,
           agents: Sequence[str] | None = None, envs: Sequence[str] | None = None,
           options: FigureOptions | None = None, reps: int | None = None, seed: int = 0,
           engine: str = "fast", baseline: str = "dqn", refs: pd.DataFrame | None = None) -> FigureFiles:
    """Draw the figure ``kind`` (:data:`KINDS`) of ``runs`` / ``metrics`` (the frames of
    :func:`analysis.runs.load_experiment`), restricted to ``agents`` and ``envs`` (:func:`select_runs`), and write
    ``<out_dir>/<name>.pdf|png|csv|txt`` (``name`` defaults to the kind).

    ``options``: :class:`analysis.section.FigureOptions` (style, agents' facts, curve layout, smoothing, score,
    width). For ``curves`` the score is the raw evaluation return when ``options.curve_score`` is ``raw``.
    ``reps``: bootstrap repetitions (default :data:`analysis.stats.DEFAULT_REPS`).
    Raises :class:`FigureError` (one line) for an unknown kind, agent or environment, or nothing to draw."""
    import pandas as pd

    from analysis import figures, stats
    from analysis.report import report_context
    from analysis.section import FigureOptions
    from analysis.sections import registered_sections

    if kind not in KINDS:
        raise FigureError(f"figure kind {kind!r} is not valid; allowed: {', '.join(KINDS)}")
    runs, metrics = select_runs(runs, metrics, agents=agents, envs=envs)
    options = options or FigureOptions()
    ctx = report_context(runs, metrics, Path(out_dir), reps=reps or stats.DEFAULT_REPS, seed=seed,
                         baseline=baseline, refs=refs, engine=engine, figure_options=options)
    section = next((s for s in registered_sections() if s.name == KINDS[kind]), None)
    if section is None:
        raise FigureError(f"figure kind {kind!r}: its report section {KINDS[kind]!r} is not registered")
    data = section.compute(ctx)
    fig = section.figure(ctx, data) if data is not None else None
    if fig is None:
        raise FigureError(f"figure {kind}: nothing to draw in these runs ({_why_empty(kind)})")
    stem = name or kind
    pdf, png = figures.save(fig, Path(out_dir), stem)
    drawn = section.drawn(ctx, data)
    csv = Path(out_dir) / f"{stem}.csv"
    (drawn if drawn is not None else pd.DataFrame()).to_csv(csv, index=False)
    caption = Path(out_dir) / f"{stem}.txt"
    caption.write_text(_caption(kind, section.text(ctx, data), ctx))
    return FigureFiles(kind=kind, pdf=pdf, png=png, csv=csv, caption=caption)


def _why_empty(kind: str) -> str:
    return {"aggregates": "no environment with a reference score",
            "curves": "no evaluation points on an environment with a reference score; try raw scores on one env",
            "profiles": "no environment with a reference score",
            "improvement": "the baseline is not among the agents, or only one agent",
            "sensitivity": "no agent with variants that sweep a numeric knob",
            "per-env": "no scored run"}[kind]


def write_gallery(runs: pd.DataFrame, metrics: pd.DataFrame, out_dir: Path, *,
                  facts: Mapping[str, Mapping[str, object]] | None = None, style: str = "paper", smooth: int = 1,
                  reps: int | None = None, seed: int = 0, baseline: str = "dqn",
                  curve_envs: Sequence[str] | None = None) -> dict[str, FigureFiles]:
    """Every kind of :data:`KINDS` drawn once from ``runs`` / ``metrics`` into ``out_dir`` as
    ``gallery_<kind>.*`` (kinds with nothing to draw are left out). ``curve_envs``: draw the learning curves of
    these environments' raw returns, one ``gallery_curves_<env>`` each, instead of one normalised curve."""
    from analysis.section import FigureOptions

    options = FigureOptions(style=style, facts=facts, smooth=smooth)
    out: dict[str, FigureFiles] = {}
    for kind in KINDS:
        todo = [(f"gallery_{kind}", None, options)]
        if kind == "curves" and curve_envs:
            todo = [(f"gallery_curves_{_slug(env)}", [env], replace(options, curve_score="raw"))
                    for env in curve_envs]
        for stem, envs, opt in todo:
            try:
                out[stem] = render(kind, runs, metrics, out_dir, name=stem, envs=envs, options=opt, reps=reps,
                                   seed=seed, baseline=baseline)
            except FigureError:
                continue
    return out


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def gallery_markdown(files: Mapping[str, FigureFiles], relative_to: Path) -> str:
    """A Markdown list of the gallery: per figure its kind, the PNG, links to its PDF and CSV, and its caption."""
    lines = []
    for stem, f in files.items():
        rel = {k: Path(p).relative_to(relative_to).as_posix() for k, p in
               (("png", f.png), ("pdf", f.pdf), ("csv", f.csv))}
        caption = f.caption.read_text().strip().replace("\n\n", " ")
        lines += [f"### `targetbench figure {f.kind}`" + (f" ({stem})" if stem != f"gallery_{f.kind}" else ""), "",
                  f"![{stem}]({rel['png']})", "", f"[PDF]({rel['pdf']}) · [numbers drawn (CSV)]({rel['csv']}). "
                  + caption, ""]
    return "\n".join(lines)
