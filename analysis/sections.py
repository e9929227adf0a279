"""The sections of ``report.md`` in order: the registry (``@register_section``) and the built-in sections, one
:class:`analysis.section.Section` class each, registered below in report order.

=================== ============================== ======================================== ======================
section             figure (``figures/``)          table (``tables/``)                      when
=================== ============================== ======================================== ======================
aggregates          aggregates                     aggregates .md .tex .csv                 always
profiles            profiles                       profiles.csv                             normalised scores
poi                 poi                            poi .md .tex .csv                        a baseline or a pair
sample_efficiency   sample_efficiency              sample_efficiency.csv                    normalised eval points
per_env             per_env                        per_env .md .tex .csv                    always
sensitivity         sensitivity                    sensitivity .md .tex .csv                swept numeric knobs
=================== ============================== ======================================== ======================

Statistics are :mod:`analysis.stats` (rliable's definitions; docs/algorithms.md), plots :mod:`analysis.figures`,
table cells :mod:`analysis.tables`. Figures follow the context's :class:`analysis.section.FigureOptions` (style,
agent facts, curve layout and smoothing); ``targetbench figure`` draws one section's figure alone
(:mod:`analysis.figure_kinds`) and writes :meth:`Section.drawn` as its CSV. A new figure is one more class here
with ``@register_section`` (or in any module imported before the report is built; importing this module first
registers the built-in ones).
"""
from __future__ import annotations

from typing import Callable, Sequence, TypeVar

import numpy as np
import pandas as pd

from analysis import figures, record_names, stats, tables
from analysis.normalization import SCORING_RULE
from analysis.section import ReportContext, Section, Table

__all__ = ["register_section", "unregister_section", "registered_sections", "Aggregates", "Profiles",
           "ProbabilityOfImprovement", "SampleEfficiency", "PerEnv", "Sensitivity", "curves_frame", "smooth_curves",
           "sensitivity_frame", "baseline_label", "AGGREGATE_RULE", "BAND_TEXT"]

#: the report's sections, in report order
_SECTIONS: list[Section] = []
S = TypeVar("S", bound=type)


def register_section(cls: S | None = None, *, after: str | None = None) -> S | Callable[[S], S]:
    """Class decorator adding a :class:`Section` subclass to the report: at the end, or right after the
    section named ``after``. ``@register_section`` and ``@register_section(after="per_env")`` both work."""

    def decorate(c: S) -> S:
        if not (isinstance(c, type) and issubclass(c, Section)) or not c.name or not c.heading:
            raise TypeError(f"{getattr(c, '__qualname__', c)!r} is not a Section subclass with a name and a heading")
        names = [s.name for s in _SECTIONS]
        if c.name in names and type(_SECTIONS[names.index(c.name)]) is not c:
            raise ValueError(f"report section {c.name!r} is already registered by "
                             f"{type(_SECTIONS[names.index(c.name)]).__qualname__}")
        if c.name in names:
            return c
        if after is not None and after not in names:
            raise ValueError(f"report section {after!r} (after=) is not registered; registered: {', '.join(names)}")
        _SECTIONS.insert(names.index(after) + 1 if after is not None else len(_SECTIONS), c())
        return c

    return decorate(cls) if cls is not None else decorate


def unregister_section(name: str) -> None:
    """Remove the section ``name`` from the report (tests and notebooks that registered their own)."""
    _SECTIONS[:] = [s for s in _SECTIONS if s.name != name]


def registered_sections() -> list[Section]:
    """The report's sections in order: the built-in ones below, then those registered (or where ``after`` put
    them)."""
    return list(_SECTIONS)


#: how the aggregates are defined (rliable's definitions; docs/algorithms.md), for the report's text
AGGREGATE_RULE = ("IQM: mean of the middle 50 % of all runs pooled over environments; median and mean: over "
                  "environments, of each environment's mean score; optimality gap: 1 minus the mean over environments "
                  "of each environment's mean of min(score, 1) (rliable's definitions; with unequal run counts every "
                  "environment still weighs the same in median, mean and gap, while the IQM pools runs).")


#: what the band of a learning curve is, for axis labels and captions
BAND_TEXT = ("the band is the 95 % percentile stratified-bootstrap interval of the IQM over seeds at each evaluation "
             "point, as rliable draws it")


def _ci_cells(est, low, high) -> list[str]:
    return [tables.fmt_ci(a, b, c) for a, b, c in zip(est, low, high)]


@register_section
class Aggregates(Section):
    """IQM, median, mean and optimality gap per agent label with stratified-bootstrap intervals."""

    name, heading = "aggregates", "Aggregate scores"

    def compute(self, ctx: ReportContext) -> tuple[pd.DataFrame, pd.DataFrame]:
        long = stats.interval_estimates(ctx.score_lists, reps=ctx.reps, seed=ctx.seed, engine=ctx.engine)
        return long, _wide(long, ctx.order)

    def table(self, ctx: ReportContext, data) -> Table:
        _, agg = data
        footnote = (f"Score: final evaluation return (mean greedy return, ε_eval, of the last evaluation of each "
                    f"run), min–max normalised per environment (0 = uniform-random policy, 1 = reference; "
                    f"analysis/reference/scores.csv). Intervals: 95 % stratified bootstrap over runs within each "
                    f"environment, {ctx.reps:,} repetitions, seed {ctx.seed}, engine {ctx.engine}. {AGGREGATE_RULE} "
                    f"{SCORING_RULE}"
                    + (f" Environments without a reference score ({', '.join(ctx.raw_envs)}) are left out of the "
                       "normalised aggregates and shown raw in the per-environment table." if ctx.raw_envs else ""))
        title = "Aggregate normalised final score"
        latex = tables.latex_interval_table(long_in_order(data[0], ctx.order), columns=list(stats.AGGREGATES),
                                            lower_is_better=("Optimality gap",), title=title, note=footnote,
                                            label=self.name)
        return Table(tables.aggregate_display(agg, ctx.counts), title=title, footnote=footnote,
                     numbers=agg.merge(ctx.counts, on="agent", how="left"), latex=latex)

    def figure(self, ctx: ReportContext, data):
        long, _ = data
        if not long["estimate"].notna().any():
            return None
        return figures.plot_aggregates(long.dropna(subset=["estimate"]), ctx.colours,
                                       style=ctx.figure_options.style)

    def drawn(self, ctx: ReportContext, data) -> pd.DataFrame:
        return data[0].dropna(subset=["estimate"])

    def text(self, ctx: ReportContext, data) -> str:
        return ("IQM, median, mean and optimality gap of the normalised final score per agent, with 95 % "
                "stratified-bootstrap intervals (non-overlapping intervals suggest a real difference; a lower "
                f"optimality gap is better). {AGGREGATE_RULE}")


@register_section
class Profiles(Section):
    """Performance profiles (rliable's score distributions) with bootstrap bands."""

    name, heading = "profiles", "Performance profiles"

    def compute(self, ctx: ReportContext) -> pd.DataFrame | None:
        finite = ctx.norm_scored["score"].dropna()
        if not len(finite):
            return None
        hi = max(1.2, float(np.nanpercentile(finite, 99)))
        lo = min(0.0, float(finite.min()))
        taus = np.linspace(lo, hi, 101)
        return stats.performance_profile(ctx.score_lists, taus, reps=ctx.reps, seed=ctx.seed, engine=ctx.engine)

    def table(self, ctx: ReportContext, prof: pd.DataFrame) -> Table:
        return Table(None, numbers=prof)

    def figure(self, ctx: ReportContext, prof: pd.DataFrame):
        return figures.plot_profiles(prof, ctx.colours, style=ctx.figure_options.style)

    def text(self, ctx: ReportContext, prof: pd.DataFrame) -> str:
        return ("Fraction of runs whose normalised final score exceeds τ (strictly), averaged over "
                "environments (rliable's score distribution), for every τ, with 95 % bootstrap bands: a curve "
                "above another everywhere is stochastically dominant.")


def baseline_label(order: Sequence[str], baseline: str) -> str | None:
    """The label the probability of improvement compares to: ``baseline`` itself, else that agent's default
    variant, else its first variant in label order; ``None`` when the agent is absent."""
    base_labels = [label for label in order if label == baseline or label.startswith(baseline + "/")]
    if baseline in order:
        return baseline
    if f"{baseline}/default" in order:
        return f"{baseline}/default"
    return base_labels[0] if base_labels else None


@register_section
class ProbabilityOfImprovement(Section):
    """P(X > Y) of every label against the baseline, and of the chosen pairs."""

    name, heading = "poi", "Probability of improvement"

    def compute(self, ctx: ReportContext) -> tuple[pd.DataFrame, str | None] | None:
        base = baseline_label(ctx.order, ctx.baseline)
        all_pairs = [(x, base) for x in ctx.order if base and x != base] + [tuple(p) for p in ctx.pairs]
        all_pairs = list(dict.fromkeys(all_pairs))
        if not all_pairs:
            return None
        return stats.poi_table(ctx.task_scores, all_pairs, reps=ctx.reps, seed=ctx.seed, engine=ctx.engine), base

    def table(self, ctx: ReportContext, data) -> Table:
        poi, _ = data
        disp = pd.DataFrame({"X": poi["x"], "Y": poi["y"], "envs": poi["tasks"],
                             "P(X > Y) [95% CI]": _ci_cells(poi["probability"], poi["ci_low"], poi["ci_high"])})
        return Table(disp, title="Probability of improvement", numbers=poi, footnote=(
            "P(X > Y): probability that a run of X scores higher than a run of Y on the same environment "
            "(Mann–Whitney, ties count ½), averaged over environments; 95 % stratified-bootstrap "
            f"intervals, {ctx.reps:,} repetitions, engine {ctx.engine}. 0.5 = no difference. {SCORING_RULE}"))

    def figure(self, ctx: ReportContext, data):
        poi, _ = data
        if not poi["probability"].notna().any():
            return None
        return figures.plot_poi(poi.dropna(subset=["probability"]), ctx.colours, style=ctx.figure_options.style)

    def drawn(self, ctx: ReportContext, data) -> pd.DataFrame:
        return data[0].dropna(subset=["probability"])

    def text(self, ctx: ReportContext, data) -> str:
        _, base = data
        return (f"Probability that each agent's run beats a `{base}` run on the same environment (and any chosen "
                "pair), with 95 % intervals: an interval above 0.5 means a reliable improvement.")


def curves_frame(scored: pd.DataFrame, metrics: pd.DataFrame, refs: pd.DataFrame,
                 raw: bool = False) -> tuple[pd.DataFrame, str]:
    """One row per (run, evaluation): label, env, seed, x, score (normalised; with ``raw`` the evaluation return
    itself, every environment kept). ``x`` is the env step when every run has the same budget, else the fraction
    of the run's budget (``param.train.steps``) rounded to 0.01."""
    from analysis.normalization import normalise

    ev = metrics[metrics["metric"] == record_names.EVAL_RETURN]
    ev = ev.merge(scored[["run_id", "label", "normalised"] + (["param.train.steps"] if "param.train.steps" in scored
                                                                  else [])], on="run_id")
    if not raw:
        ev = ev[ev["normalised"]]
    if ev.empty:
        return pd.DataFrame(columns=["agent", "env", "seed", "x", "score"]), "Environment steps (per seed)"
    budgets = pd.to_numeric(ev.get("param.train.steps", pd.Series(np.nan, index=ev.index)), errors="coerce")
    if budgets.nunique(dropna=True) <= 1:
        x, x_label = ev["step"].astype(float), "Environment steps (per seed)"
    else:
        x, x_label = (ev["step"] / budgets).round(2), "Fraction of the training budget (env steps)"
    out = pd.DataFrame({"agent": ev["label"], "env": ev["env"], "seed": ev["seed"], "x": x})
    if raw:
        out["score"] = ev["value"].astype(float)
        return out.reset_index(drop=True), x_label
    score = np.concatenate([normalise(env, g["value"].to_numpy(), refs) for env, g in ev.groupby("env", sort=False)])
    index = np.concatenate([g.index.to_numpy() for _, g in ev.groupby("env", sort=False)])
    out.loc[index, "score"] = score
    return out.reset_index(drop=True), x_label


def smooth_curves(curves: pd.DataFrame, window: int) -> pd.DataFrame:
    """Each run's curve (rows of one agent, env and seed, in x order) replaced by its trailing mean over the last
    ``window`` evaluation points (fewer at the start); ``window=1`` returns ``curves`` unchanged. Smoothing runs
    before the bootstrap, so the band is the interval of the IQM of the smoothed scores."""
    if window <= 1 or curves.empty:
        return curves
    out = curves.sort_values(["agent", "env", "seed", "x"], kind="stable")
    out = out.assign(score=out.groupby(["agent", "env", "seed"], sort=False)["score"]
                     .transform(lambda s: s.rolling(window, min_periods=1).mean()))
    return out.sort_index()


@register_section
class SampleEfficiency(Section):
    """IQM normalised evaluation score against training progress, with bootstrap bands."""

    name, heading, alt = "sample_efficiency", "Sample efficiency", "sample efficiency"

    def compute(self, ctx: ReportContext) -> tuple[pd.DataFrame, str] | None:
        opt = ctx.figure_options
        curves, x_label = curves_frame(ctx.scored, ctx.metrics, ctx.refs, raw=opt.curve_score == "raw")
        if not len(curves):
            return None
        curves = smooth_curves(curves, opt.smooth)
        eff = stats.sample_efficiency(curves, reps=ctx.curve_reps, seed=ctx.seed, engine=ctx.engine)
        return eff.assign(smooth_window=opt.smooth), x_label

    def table(self, ctx: ReportContext, data) -> Table:
        return Table(None, numbers=data[0])

    def figure(self, ctx: ReportContext, data):
        eff, x_label = data
        opt = ctx.figure_options
        what = "IQM evaluation return" if opt.curve_score == "raw" else "IQM normalised score"
        note = f"trailing mean over {opt.smooth} evaluations" if opt.smooth > 1 else ""
        return figures.plot_curves(eff, ctx.looks, layout=opt.layout, baseline=baseline_label(ctx.order, ctx.baseline)
                                   or ctx.baseline, style=opt.style, width=opt.width, x_label=x_label,
                                   y_label=f"{what} (95 % CI band)", note=note)

    def text(self, ctx: ReportContext, data) -> str:
        eff, _ = data
        opt = ctx.figure_options
        layout = figures.curve_layout(list(dict.fromkeys(eff["agent"])), opt.layout,
                                      baseline_label(ctx.order, ctx.baseline) or ctx.baseline)
        grey = f", with `{ctx.baseline}` in grey in every panel."
        panels = {"agents": " One panel per agent" + grey, "groups": " One panel per method group" + grey}.get(layout, "")
        smooth = (f" Each run's curve is smoothed first: the trailing mean of its last {opt.smooth} evaluation "
                  "points (fewer at the start)." if opt.smooth > 1 else " Not smoothed.")
        fell_back = int((eff["engine"] != ctx.engine).sum())
        fallback_txt = (f" {fell_back} of {len(eff)} points have unequal run counts per environment (runs that "
                        "stopped early); rliable takes only a runs × environments matrix, so the fast engine computed "
                        "those (column engine of tables/sample_efficiency.csv).") if fell_back else ""
        what = "evaluation return" if opt.curve_score == "raw" else "normalised evaluation score"
        return (f"IQM {what} against training progress; {BAND_TEXT} ({ctx.curve_reps:,} repetitions per point, "
                f"engine {ctx.engine}): which agent learns faster, not only which ends higher.{panels}{smooth}"
                f"{fallback_txt}")


@register_section
class PerEnv(Section):
    """Every run's raw final return per environment, and the per-environment table."""

    name, heading, alt = "per_env", "Per environment", "per environment"

    def compute(self, ctx: ReportContext) -> tuple[pd.DataFrame, pd.DataFrame]:
        return tables.per_env_table(ctx.scored, reps=ctx.reps, seed=ctx.seed)

    def table(self, ctx: ReportContext, data) -> Table:
        num, disp = data
        title = "Final evaluation return per environment"
        footnote = ("Raw final evaluation return over seeds: mean with a 95 % percentile-bootstrap interval over "
                    f"seeds ({ctx.reps:,} resamples, always the fast engine: not an rliable aggregate), IQM raw and "
                    f"IQM normalised. {SCORING_RULE}")
        long = num.rename(columns={"mean": "estimate", "mean_ci_low": "ci_low", "mean_ci_high": "ci_high"})
        latex = tables.latex_interval_table(long_in_order(long, ctx.order), column="env",
                                            columns=sorted(num["env"].unique()), digits=1, title=title,
                                            note=("Mean raw final evaluation return over seeds with a 95 % "
                                                  f"percentile-bootstrap interval ({ctx.reps:,} resamples). "
                                                  + SCORING_RULE), label=self.name)
        return Table(disp, title=title, numbers=num, footnote=footnote, latex=latex)

    def figure(self, ctx: ReportContext, data):
        return figures.plot_per_env(ctx.scored, ctx.colours, style=ctx.figure_options.style)

    def drawn(self, ctx: ReportContext, data) -> pd.DataFrame:
        runs = ctx.scored[["env", "label", "seed", "raw_score", "scored_as"]].rename(columns={"label": "agent"})
        means = runs.groupby(["env", "agent"])["raw_score"].mean().rename("mean_raw_score").reset_index()
        return runs.merge(means, on=["env", "agent"]).sort_values(["env", "agent", "seed"]).reset_index(drop=True)

    def text(self, ctx: ReportContext, data) -> str:
        return ("Every run's raw final evaluation return per environment (filled dots completed, open dots "
                "diverged, crosses failed; bar = mean): where the aggregates come from, outliers included.")


def sensitivity_frame(scored: pd.DataFrame, reps: int, seed: int, engine: str = "fast") -> pd.DataFrame:
    """For each agent with several variants: each numeric ``param.agent.*`` / ``param.train.*`` knob that differs
    between its runs, IQM final normalised score per knob value with a stratified-bootstrap interval.

    One knob at a time: only runs whose *other* varying knobs sit at their most common value are used, so an
    ablation that changes two knobs together (buffer_size = batch_size = 1) does not leak into either panel."""
    rows = []
    for agent, g in scored.groupby("agent", sort=False):
        if g["variant"].nunique() < 2:
            continue
        knobs = [c for c in g.columns if c.startswith(("param.agent.", "param.train.")) and c != "param.train.steps"
                 and g[c].nunique(dropna=True) > 1]
        modes = {c: g[c].mode(dropna=True).iloc[0] for c in knobs}
        for knob in knobs:
            others = [c for c in knobs if c != knob]
            sub = g[np.logical_and.reduce([g[c] == modes[c] for c in others])] if others else g
            values = pd.to_numeric(sub[knob], errors="coerce")
            if values.isna().any() or values.nunique() < 2:
                continue  # only numeric knobs with two or more values are plotted against their value
            for v, gv in sub.assign(_v=values).groupby("_v", sort=True):
                tasks = [x["score"].to_numpy(float) for _, x in gv.groupby("env")]
                est = stats.interval_estimates({f"{agent}:{knob}={v}": tasks}, {"IQM": stats.IQM}, reps=reps, seed=seed,
                                               engine=engine)
                r = est.iloc[0]
                rows.append({"agent": agent, "knob": knob.split(".", 2)[-1], "value": float(v),
                             "estimate": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                             "runs": int(r["runs"]), "variants": ",".join(sorted(gv["variant"].unique()))})
    return pd.DataFrame(rows, columns=["agent", "knob", "value", "estimate", "ci_low", "ci_high", "runs", "variants"])


@register_section
class Sensitivity(Section):
    """Final score against each knob an agent's variants sweep (sweeps and ablations only)."""

    name, heading = "sensitivity", "Sensitivity"

    def compute(self, ctx: ReportContext) -> pd.DataFrame | None:
        sens = sensitivity_frame(ctx.norm_scored, reps=ctx.reps, seed=ctx.seed, engine=ctx.engine)
        return sens if len(sens) else None

    def table(self, ctx: ReportContext, sens: pd.DataFrame) -> Table:
        disp = pd.DataFrame({"agent": sens["agent"], "knob": sens["knob"],
                             "value": [f"{v:g}" for v in sens["value"]], "variants": sens["variants"],
                             "runs": sens["runs"],
                             "IQM [95% CI]": _ci_cells(sens["estimate"], sens["ci_low"], sens["ci_high"])})
        return Table(disp, title="Final score against each swept knob", numbers=sens, footnote=(
            "IQM normalised final score per knob value over environments and seeds; one knob at a time, "
            f"the agent's other varied knobs at their most common value. {SCORING_RULE}"))

    def figure(self, ctx: ReportContext, sens: pd.DataFrame):
        colours: dict[str, tuple] = {}
        for label, look in ctx.looks.items():  # an agent's first label has the agent's own colour
            colours.setdefault(label.partition("/")[0], look.color)
        return figures.plot_sensitivity(sens, colours, style=ctx.figure_options.style)

    def text(self, ctx: ReportContext, sens: pd.DataFrame) -> str:
        spread = sens.groupby(["agent", "knob"])["estimate"].agg(lambda s: s.max() - s.min()).reset_index()
        spread_txt = "; ".join(f"{r.agent} {r.knob}: {r.estimate:.2f}" for r in spread.itertuples())
        return ("IQM final normalised score against each knob an agent's variants sweep, with 95 % intervals: "
                f"a flat line means insensitive (max − min IQM over the sweep: {spread_txt}).")


def long_in_order(long: pd.DataFrame, order: Sequence[str], column: str = "agent") -> pd.DataFrame:
    """``long`` with its rows in label ``order`` (labels not in it last)."""
    rank = {a: i for i, a in enumerate(order)}
    return long.assign(_o=long[column].map(rank).fillna(len(rank))).sort_values("_o", kind="stable").drop(columns="_o")


def _wide(long: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """The long interval table as one row per agent: ``<aggregate>``, ``_ci_low``, ``_ci_high``, runs, tasks."""
    rows = []
    for agent in order:
        sub = long[long["agent"] == agent].set_index("metric")
        if sub.empty:
            continue
        row = {"agent": agent}
        for name in stats.AGGREGATES:
            k = name.lower().replace(" ", "_")
            row[k], row[f"{k}_ci_low"], row[f"{k}_ci_high"] = (sub.loc[name, c]
                                                                 for c in ("estimate", "ci_low", "ci_high"))
        row["runs"], row["tasks"] = sub["runs"].iloc[0], sub["tasks"].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)
