"""The full analysis: scores → statistics → figures, tables and ``report.md``.

:func:`build_report` takes the two tables of :func:`analysis.runs.load_experiment` and writes

* ``figures/aggregates``, ``profiles``, ``poi``, ``sample_efficiency``, ``per_env`` and (for sweeps with
  variants that change a knob) ``sensitivity``, each ``.pdf`` and ``.png``;
* ``tables/aggregates``, ``per_env``, ``poi`` (and ``sensitivity``), each ``.md``, ``.tex`` and ``.csv``;
* ``report.md``, which embeds every figure and table with one sentence on what it shows.

Agents are labelled by name, or ``agent/variant`` when an agent appears with more than one variant.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from analysis import figures, stats, tables
from analysis.normalization import SCORING_RULE, reference_scores, score_runs

__all__ = ["label_runs", "build_report", "ReportResult", "score_dict", "task_scores", "curves_frame",
           "sensitivity_frame", "BASELINE"]

BASELINE = "dqn"

#: how the aggregates are defined (rliable's definitions; docs/algorithms.md), for the report's text
AGGREGATE_RULE = ("IQM: mean of the middle 50 % of all runs pooled over environments; median and mean: over "
                  "environments, of each environment's mean score; optimality gap: 1 minus the mean over environments "
                  "of each environment's mean of min(score, 1) (rliable's definitions; with unequal run counts every "
                  "environment still weighs the same in median, mean and gap, while the IQM pools runs).")
#: what each bootstrap engine is, for the report's text
ENGINE_TEXT = {"fast": "vectorised numpy stratified bootstrap (analysis.stats), rliable's definitions.",
               "rliable": "the rliable library's own stratified bootstrap (get_interval_estimates, "
                          "create_performance_profile) on the same definitions; it draws from numpy's global generator "
                          "(its random_state argument does not reach the draws), seeded here from the seed per agent."}


def label_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Add ``label``: the agent name, or ``agent/variant`` when the agent has several variants here."""
    out = runs.copy()
    if "variant" not in out.columns:
        out["variant"] = "default"
    n_var = out.groupby("agent")["variant"].transform("nunique")
    out["label"] = np.where(n_var > 1, out["agent"] + "/" + out["variant"].astype(str), out["agent"])
    return out


def task_scores(scored: pd.DataFrame, column: str = "score") -> dict[str, dict[str, np.ndarray]]:
    """label → env → array of run scores (NaN = not scored, dropped)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for (label, env), g in scored.groupby(["label", "env"], sort=True):
        vals = g[column].to_numpy(float)
        out.setdefault(label, {})[env] = vals[np.isfinite(vals)]
    return out


def score_dict(scored: pd.DataFrame, order: Sequence[str]) -> dict[str, list[np.ndarray]]:
    ts = task_scores(scored)
    return {label: [ts[label][e] for e in sorted(ts.get(label, {}))] for label in order}


def curves_frame(scored: pd.DataFrame, metrics: pd.DataFrame, refs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """One row per (run, evaluation): label, env, seed, x, score (normalised). ``x`` is the env step when every
    run has the same budget, else the fraction of the run's budget (``param.train.steps``) rounded to 0.01."""
    from analysis.normalization import normalise

    ev = metrics[metrics["metric"] == "eval/return_mean"]
    ev = ev.merge(scored[["run_id", "label", "normalised"] + (["param.train.steps"] if "param.train.steps" in scored
                                                                  else [])], on="run_id")
    ev = ev[ev["normalised"]]
    if ev.empty:
        return pd.DataFrame(columns=["agent", "env", "seed", "x", "score"]), "Environment steps (per seed)"
    budgets = pd.to_numeric(ev.get("param.train.steps", pd.Series(np.nan, index=ev.index)), errors="coerce")
    if budgets.nunique(dropna=True) <= 1:
        x, x_label = ev["step"].astype(float), "Environment steps (per seed)"
    else:
        x, x_label = (ev["step"] / budgets).round(2), "Fraction of the training budget (env steps)"
    score = np.concatenate([normalise(env, g["value"].to_numpy(), refs) for env, g in ev.groupby("env", sort=False)])
    index = np.concatenate([g.index.to_numpy() for _, g in ev.groupby("env", sort=False)])
    out = pd.DataFrame({"agent": ev["label"], "env": ev["env"], "seed": ev["seed"], "x": x})
    out.loc[index, "score"] = score
    return out.reset_index(drop=True), x_label


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


@dataclass
class ReportResult:
    report: Path
    figures: list[Path] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _rel(p: Path, base: Path) -> str:
    try:
        return p.relative_to(base).as_posix()
    except ValueError:
        return p.as_posix()


def build_report(runs: pd.DataFrame, metrics: pd.DataFrame, out_dir: Path, *, reps: int = stats.DEFAULT_REPS,
                 seed: int = 0, pairs: Sequence[tuple[str, str]] = (), baseline: str = BASELINE,
                 title: str = "TargetBench report", curve_reps: int | None = None,
                 refs: pd.DataFrame | None = None, make_figures: bool = True, engine: str = "fast") -> ReportResult:
    """Write figures, tables and ``report.md`` under ``out_dir`` (see the module docstring).
    ``make_figures=False`` writes the tables and the report text only (the report then links no figures).
    ``engine``: who computes the bootstrap intervals, ``fast`` or ``rliable`` (:mod:`analysis.stats`); the
    report states it with the repetition counts."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    fig_dir, tab_dir = out_dir / "figures", out_dir / "tables"
    refs = reference_scores() if refs is None else refs
    scored = label_runs(score_runs(runs, refs))
    order = figures.agent_order(scored["label"].unique())
    colours = figures.agent_style(order)
    result = ReportResult(report=out_dir / "report.md")
    timings = result.timings
    norm_scored = scored[scored["normalised"]]
    raw_envs = sorted(scored.loc[~scored["normalised"], "env"].unique())
    curve_reps = curve_reps or min(reps, stats.DEFAULT_REPS)
    n_envs, n_seeds = scored["env"].nunique(), scored.groupby(["label", "env"]).size().max() if len(scored) else 0

    if engine not in ENGINE_TEXT:
        raise ValueError(f"engine {engine!r} is not valid; allowed: {', '.join(ENGINE_TEXT)}")
    engine_txt = ENGINE_TEXT[engine]
    counts = tables.outcome_counts(scored, ["label"]).rename(columns={"label": "agent"})
    footnote = (f"Score: final evaluation return (mean greedy return, ε_eval, of the last evaluation of each run), "
                f"min–max normalised per environment (0 = uniform-random policy, 1 = reference; "
                f"analysis/reference/scores.csv). Intervals: 95 % stratified bootstrap over runs within each "
                f"environment, {reps:,} repetitions, seed {seed}, engine {engine}. {AGGREGATE_RULE} {SCORING_RULE}"
                + (f" Environments without a reference score ({', '.join(raw_envs)}) are left out of the "
                   "normalised aggregates and shown raw in the per-environment table." if raw_envs else ""))
    sections: list[str] = [f"# {title}", "",
                           f"{len(scored)} runs: {len(order)} agent{'s' if len(order) != 1 else ''} (or agent/variant "
                           f"labels) × {n_envs} environment{'s' if n_envs != 1 else ''}, up to {n_seeds} seeds each. Baseline: `{baseline}`. Bootstrap: {reps:,} repetitions (sample-efficiency curves "
                           f"{curve_reps:,}), seed {seed}, engine `{engine}`: {engine_txt}", "",
                           "Scoring: " + SCORING_RULE, ""]

    # aggregates
    t = time.perf_counter()
    sd = score_dict(norm_scored, order)
    long = stats.interval_estimates(sd, reps=reps, seed=seed, engine=engine)
    agg = _wide(long, order)
    timings["aggregates"] = time.perf_counter() - t
    disp = tables.aggregate_display(agg, counts)
    result.tables += tables.write_table(disp, tab_dir, "aggregates", title="Aggregate normalised final score",
                                        footnote=footnote, numbers=agg.merge(counts, on="agent", how="left")).values()
    if long["estimate"].notna().any():
        result.figures += _save(make_figures, lambda: figures.plot_aggregates(long.dropna(subset=["estimate"]), colours),
                                       fig_dir, "aggregates")
    sections += ["## Aggregate scores", "",
                 "IQM, median, mean and optimality gap of the normalised final score per agent, with 95 % "
                 "stratified-bootstrap intervals (non-overlapping intervals suggest a real difference; a lower "
                 f"optimality gap is better). {AGGREGATE_RULE}", "",
                 f"![aggregates]({_rel(fig_dir / 'aggregates.png', out_dir)})", "",
                 (tab_dir / "aggregates.md").read_text(), ""]

    # performance profiles
    t = time.perf_counter()
    finite = norm_scored["score"].dropna()
    if len(finite):
        hi = max(1.2, float(np.nanpercentile(finite, 99)))
        lo = min(0.0, float(finite.min()))
        taus = np.linspace(lo, hi, 101)
        prof = stats.performance_profile(sd, taus, reps=reps, seed=seed, engine=engine)
        timings["profiles"] = time.perf_counter() - t
        result.figures += _save(make_figures, lambda: figures.plot_profiles(prof, colours), fig_dir, "profiles")
        prof.to_csv(_mk(tab_dir) / "profiles.csv", index=False)
        result.tables.append(tab_dir / "profiles.csv")
        sections += ["## Performance profiles", "",
                     "Fraction of runs whose normalised final score exceeds τ (strictly), averaged over "
                     "environments (rliable's score distribution), for every τ, with 95 % bootstrap bands: a curve "
                     "above another everywhere is stochastically dominant.", "",
                     f"![profiles]({_rel(fig_dir / 'profiles.png', out_dir)})", ""]

    # probability of improvement
    t = time.perf_counter()
    ts = task_scores(norm_scored)
    # the baseline: the label itself, else that agent's default variant, else its first variant in label order
    base_labels = [l for l in order if l == baseline or l.startswith(baseline + "/")]
    base = baseline if baseline in order else (f"{baseline}/default" if f"{baseline}/default" in order
                                               else (base_labels[0] if base_labels else None))
    all_pairs = [(x, base) for x in order if base and x != base] + [tuple(p) for p in pairs]
    all_pairs = list(dict.fromkeys(all_pairs))
    if all_pairs:
        poi = stats.poi_table(ts, all_pairs, reps=reps, seed=seed, engine=engine)
        timings["poi"] = time.perf_counter() - t
        poi_disp = pd.DataFrame({"X": poi["x"], "Y": poi["y"], "envs": poi["tasks"],
                                 "P(X > Y) [95% CI]": [tables.fmt_ci(a, b, c) for a, b, c in
                                                      zip(poi["probability"], poi["ci_low"], poi["ci_high"])]})
        result.tables += tables.write_table(
            poi_disp, tab_dir, "poi", title="Probability of improvement",
            footnote=("P(X > Y): probability that a run of X scores higher than a run of Y on the same environment "
                      "(Mann–Whitney, ties count ½), averaged over environments; 95 % stratified-bootstrap "
                      f"intervals, {reps:,} repetitions, engine {engine}. 0.5 = no difference. {SCORING_RULE}"),
            numbers=poi).values()
        if poi["probability"].notna().any():
            result.figures += _save(make_figures, lambda: figures.plot_poi(poi.dropna(subset=["probability"]), colours), fig_dir, "poi")
        sections += ["## Probability of improvement", "",
                     f"Probability that each agent's run beats a `{base}` run on the same environment (and any chosen "
                     "pair), with 95 % intervals: an interval above 0.5 means a reliable improvement.", "",
                     f"![poi]({_rel(fig_dir / 'poi.png', out_dir)})", "", (tab_dir / "poi.md").read_text(), ""]

    # sample-efficiency curves
    t = time.perf_counter()
    curves, x_label = curves_frame(scored, metrics, refs)
    if len(curves):
        eff = stats.sample_efficiency(curves, reps=curve_reps, seed=seed, engine=engine)
        fell_back = int((eff["engine"] != engine).sum())
        timings["sample_efficiency"] = time.perf_counter() - t
        eff.to_csv(_mk(tab_dir) / "sample_efficiency.csv", index=False)
        result.tables.append(tab_dir / "sample_efficiency.csv")
        result.figures += _save(make_figures, lambda: figures.plot_sample_efficiency(eff, colours, x_label), fig_dir,
                                       "sample_efficiency")
        fallback_txt = (f" {fell_back} of {len(eff)} points have unequal run counts per environment (runs that "
                        "stopped early); rliable takes only a runs × environments matrix, so the fast engine computed "
                        "those (column engine of tables/sample_efficiency.csv).") if fell_back else ""
        sections += ["## Sample efficiency", "",
                     "IQM normalised evaluation score against training progress with 95 % stratified-bootstrap "
                     f"bands ({curve_reps:,} repetitions per point, engine {engine}): which agent learns faster, not "
                     f"only which ends higher.{fallback_txt}", "",
                     f"![sample efficiency]({_rel(fig_dir / 'sample_efficiency.png', out_dir)})", ""]

    # per environment
    t = time.perf_counter()
    num, disp = tables.per_env_table(scored, reps=reps, seed=seed)
    timings["per_env"] = time.perf_counter() - t
    result.tables += tables.write_table(
        disp, tab_dir, "per_env", title="Final evaluation return per environment",
        footnote=("Raw final evaluation return over seeds: mean with a 95 % percentile-bootstrap interval over "
                  f"seeds ({reps:,} resamples, always the fast engine: not an rliable aggregate), IQM raw and IQM "
                  f"normalised. {SCORING_RULE}"), numbers=num).values()
    result.figures += _save(make_figures, lambda: figures.plot_per_env(scored, colours), fig_dir, "per_env")
    sections += ["## Per environment", "",
                 "Every run's raw final evaluation return per environment (filled dots completed, open dots "
                 "diverged, crosses failed; bar = mean): where the aggregates come from, outliers included.", "",
                 f"![per environment]({_rel(fig_dir / 'per_env.png', out_dir)})", "",
                 (tab_dir / "per_env.md").read_text(), ""]

    # sensitivity
    t = time.perf_counter()
    sens = sensitivity_frame(norm_scored, reps=reps, seed=seed, engine=engine)
    if len(sens):
        timings["sensitivity"] = time.perf_counter() - t
        sens_disp = pd.DataFrame({"agent": sens["agent"], "knob": sens["knob"],
                                  "value": [f"{v:g}" for v in sens["value"]], "variants": sens["variants"],
                                  "runs": sens["runs"],
                                  "IQM [95% CI]": [tables.fmt_ci(a, b, c) for a, b, c in
                                                   zip(sens["estimate"], sens["ci_low"], sens["ci_high"])]})
        result.tables += tables.write_table(
            sens_disp, tab_dir, "sensitivity", title="Final score against each swept knob",
            footnote=("IQM normalised final score per knob value over environments and seeds; one knob at a time, "
                      f"the agent's other varied knobs at their most common value. {SCORING_RULE}"),
            numbers=sens).values()
        result.figures += _save(make_figures, lambda: figures.plot_sensitivity(sens, colours), fig_dir, "sensitivity")
        spread = sens.groupby(["agent", "knob"])["estimate"].agg(lambda s: s.max() - s.min()).reset_index()
        spread_txt = "; ".join(f"{r.agent} {r.knob}: {r.estimate:.2f}" for r in spread.itertuples())
        sections += ["## Sensitivity", "",
                     "IQM final normalised score against each knob an agent's variants sweep, with 95 % intervals: "
                     f"a flat line means insensitive (max − min IQM over the sweep: {spread_txt}).", "",
                     f"![sensitivity]({_rel(fig_dir / 'sensitivity.png', out_dir)})", "",
                     (tab_dir / "sensitivity.md").read_text(), ""]

    timings["total"] = time.perf_counter() - t0
    sections += ["---", "", "Timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()), ""]
    result.report.parent.mkdir(parents=True, exist_ok=True)
    if not make_figures:
        sections = [line for line in sections if not line.startswith("![")]
    result.report.write_text("\n".join(sections))
    return result


def _save(enabled: bool, fig_factory, out_dir: Path, name: str) -> list[Path]:
    return figures.save(fig_factory(), out_dir, name) if enabled else []


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _wide(long: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    rows = []
    for agent in order:
        sub = long[long["agent"] == agent].set_index("metric")
        if sub.empty:
            continue
        row = {"agent": agent}
        for name in stats.AGGREGATES:
            k = name.lower().replace(" ", "_")
            row[k], row[f"{k}_ci_low"], row[f"{k}_ci_high"] = (sub.loc[name, c] for c in ("estimate", "ci_low", "ci_high"))
        row["runs"], row["tasks"] = sub["runs"].iloc[0], sub["tasks"].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)
