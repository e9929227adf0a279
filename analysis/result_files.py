"""Writing docs/results: each part's CSVs and figures, and the folder's README, from the per-run data alone.

What it writes, per part (the runs come from :func:`analysis.run_table.to_frames` of ``runs/<part>.csv.gz``):

* classic control (+ the ``tuned`` readings): ``classic_control.csv`` (:data:`CLASSIC_COLUMNS`),
  ``curves.csv`` + ``curves_<env>.png``, ``aggregate.csv`` + ``aggregate.png``, ``improvement.csv`` (P(X > dqn)),
  ``cost.csv`` (parameters, target bytes, wall time, throughput, device, EauDeQN's sparsity) and, with tuned runs,
  ``tuned.csv`` (which setting each tuned row runs);
* the sensitivity study: ``sensitivity.csv``, ``sensitivity_share.csv``, ``claim.csv`` (the verdict per reading)
  and ``sensitivity.png``;
* ``README.md``: provenance, cost, the tables, figures, reproduced tables, the data dictionary of ``runs/`` and
  what ``targetbench verify`` guarantees.

Unfinished work never crashes a table: an expected cell without finished seeds gets a row with ``seeds = 0`` and
empty numbers, and the README marks rows with fewer seeds than planned as partial. Methods implemented from a
reading of a paper carry a mark linking to docs/algorithms.md (``readings``: agent → anchor key, handed in by the
suite layer).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import pandas as pd

from analysis import stats, tables
from analysis.classic_tables import (BASELINE, CLASSIC_COLUMNS, COST_COLUMNS, IMPROVEMENT_COLUMNS, Expected,
                                     aggregate_estimates, classic_table, cost_table, improvement_over, labelled,
                                     learning_curves, run_costs)
from analysis.normalization import SCORING_RULE
from analysis.palette import agent_looks
from analysis.result_plots import aggregate_figure, curves_figure, sensitivity_figure
from analysis.run_table import COLUMN_DOCS, REQUIRED_COLUMNS
from analysis.sensitivity_tables import (CLAIM_RULE, claim_verdicts, sensitivity_share, sensitivity_table)

__all__ = ["Part", "write_classic", "write_sensitivity", "write_readme", "provenance", "reading_mark",
           "is_smoke_table", "TUNED_COLUMNS", "CLASSIC_COLUMNS", "COST_COLUMNS", "IMPROVEMENT_COLUMNS"]

TUNED_COLUMNS = ["agent", "method", "knob", "value", "runs"]
READING_MARK = "†"
#: numbers in the derived CSVs carry 10 significant digits: far below any interval's width, and a last-bit
#: difference of a reduction on another processor does not change the file
FLOAT_FORMAT = "%.10g"


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False, lineterminator="\n", float_format=FLOAT_FORMAT)
    return path


@dataclass
class Part:
    """One part of the reference results as the README describes it: its per-run file and runs."""

    name: str
    runs: pd.DataFrame
    file: Path | None = None
    rows: int = 0
    experiments: tuple[str, ...] = ()
    expected: Expected | None = None
    notes: list[str] = field(default_factory=list)


def _slug(env: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", env.lower()).strip("_")


def reading_mark(label: str, readings: Mapping[str, str | None], docs: str) -> str:
    """``label`` with a † linking to its reading in ``docs``algorithms.md when its agent was implemented from a
    reading of a paper (``readings``: agent → anchor key); ``label`` unchanged otherwise."""
    key = readings.get(label.split("/")[0])
    return f"{label} [{READING_MARK}]({docs}algorithms.md#reading-{key})" if key else label


def reading_note(labels, readings: Mapping[str, str | None], docs: str) -> list[str]:
    """The footnote under a table with marked rows (none without)."""
    if not any(readings.get(str(label).split("/")[0]) for label in labels):
        return []
    return [f"{READING_MARK} implemented from our reading of a paper that could not be read in full; what we read "
            f"and how is in [docs/algorithms.md]({docs}algorithms.md).", ""]


def is_smoke_table(csv: Path) -> bool:
    """A reproduced table whose every row is "not comparable": a smoke-level check, not a reproduction."""
    verdicts = pd.read_csv(csv)["verdict"]
    return bool(len(verdicts)) and bool((verdicts == "not comparable").all())


# -- writers --------------------------------------------------------------------------------------------------
def write_classic(runs: pd.DataFrame, metrics: pd.DataFrame, out: Path, *, reps: int = stats.DEFAULT_REPS,
                  seed: int = 0, expected: Expected | None = None,
                  facts: Mapping[str, Mapping[str, object]] | None = None) -> dict[str, Path]:
    """The classic part's files (module docstring) into ``out``; returns name → path of what was written.
    ``facts``: the agents' declared looks (colour, marker, group), as the suite hands them in."""
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def csv(name: str, frame: pd.DataFrame) -> None:
        paths[name] = _write_csv(frame, out / name)

    table = classic_table(runs, reps=reps, seed=seed, expected=expected)
    csv("classic_control.csv", table)
    looks = agent_looks(list(labelled(table)["label"].unique()), facts) if len(table) else {}
    colours = {label: look.color for label, look in looks.items()}
    curves = learning_curves(runs, metrics, reps=min(reps, stats.DEFAULT_REPS), seed=seed)
    if len(curves):
        csv("curves.csv", curves)
        for env, g in curves.groupby("env", sort=True):
            name = f"curves_{_slug(env)}.png"
            curves_figure(g, env, looks).savefig(out / name)
            paths[name] = out / name
    if len(runs):
        csv("improvement.csv", improvement_over(runs, reps=reps, seed=seed))
        csv("cost.csv", cost_table(runs))
        long = aggregate_estimates(runs, reps=reps, seed=seed)
        csv("aggregate.csv", long)
        if long["estimate"].notna().any():
            aggregate_figure(long, colours).savefig(out / "aggregate.png")
            paths["aggregate.png"] = out / "aggregate.png"
        tuned = labelled(runs)
        tuned = tuned[(tuned["label"] != tuned["agent"]) & tuned["method"].notna()] if "method" in tuned else \
            tuned.iloc[:0]
        if len(tuned):
            csv("tuned.csv", pd.DataFrame(
                [{"agent": label, "method": g["method"].iloc[0], "knob": g["knob"].iloc[0],
                  "value": float(g["knob_value"].iloc[0]), "runs": len(g)}
                 for label, g in tuned.groupby("label", sort=True)], columns=TUNED_COLUMNS))
    return paths


def write_sensitivity(runs: pd.DataFrame, out: Path, *, reps: int = stats.DEFAULT_REPS, seed: int = 0,
                      same_as: Mapping[str, str] | None = None) -> dict[str, Path]:
    """``sensitivity.csv``, ``sensitivity_share.csv``, ``claim.csv`` and ``sensitivity.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    table = sensitivity_table(runs, reps=reps, seed=seed)
    share = sensitivity_share(runs, reps=reps, seed=seed)
    claim = claim_verdicts(share, table, same_as=same_as)
    paths = {}
    for name, frame in (("sensitivity.csv", table), ("sensitivity_share.csv", share), ("claim.csv", claim)):
        paths[name] = _write_csv(frame, out / name)
    if len(table):
        sensitivity_figure(table).savefig(out / "sensitivity.png")
        paths["sensitivity.png"] = out / "sensitivity.png"
    return paths


# -- README of the folder -------------------------------------------------------------------------------------
def provenance(runs: pd.DataFrame) -> dict[str, str]:
    """Commits (flagged "(dirty)" where the tree had uncommitted changes), machines (platform, processor, BLAS
    kernel, cores, device) and package versions recorded by the runs, as display strings."""
    def values(col: str) -> list[str]:
        return sorted(runs[col].dropna().astype(str).unique()) if col in runs else []

    commits = []
    if "tag.git_commit" in runs:
        for c, g in runs.groupby(runs["tag.git_commit"].fillna("unknown")):
            dirty = (g.get("tag.git_dirty", pd.Series(dtype=str)).astype(str) == "true").any()
            commits.append(f"{c[:12]}{' (dirty)' if dirty else ''} ({len(g)} runs)")
    machines = []
    cols = ["tag.platform", "tag.cpu_model", "tag.blas_kernel", "tag.cpu_count", "tag.torch_device", "tag.gpu"]
    present = [c for c in cols if c in runs]
    if present:
        for key, g in runs.groupby([runs[c].fillna("–").astype(str) for c in present]):
            d = dict(zip(present, key if isinstance(key, tuple) else (key,)))
            gpu = d.get("tag.gpu", "–")
            device = d.get("tag.torch_device", "?") + ("" if gpu == "–" else f" ({gpu})")
            cpu = "" if d.get("tag.cpu_model", "–") == "–" else f", {d['tag.cpu_model']}"
            blas = "" if d.get("tag.blas_kernel", "–") == "–" else f", BLAS {d['tag.blas_kernel']}"
            machines.append(f"{d.get('tag.platform', '?')}{cpu}{blas}, {d.get('tag.cpu_count', '?')} cores, "
                            f"device {device} ({len(g)} runs)")
    versions = [f"{c.split('.', 2)[-1]} {', '.join(values(c))}" for c in sorted(runs.columns)
                if c.startswith("tag.version.") and values(c)]
    dirty = int((runs.get("tag.git_dirty", pd.Series(dtype=str)).astype(str) == "true").sum())
    return {"commits": "; ".join(commits) or "not recorded", "machines": "; ".join(machines) or "not recorded",
            "versions": ", ".join(versions) or "not recorded", "dirty": str(dirty)}


def _classic_markdown(table: pd.DataFrame, expected_seeds: int, readings: Mapping[str, str | None]) -> list[str]:
    lines = ["| agent | env | steps | seeds | mean ± std | IQM [95 % CI] | status |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r, label in zip(table.itertuples(index=False), labelled(table)["label"] if len(table) else []):
        status = ("pending" if r.seeds == 0 else
                  f"partial ({r.seeds}/{expected_seeds} seeds)" if expected_seeds and r.seeds < expected_seeds
                  else "complete")
        steps = "–" if pd.isna(r.steps) else f"{int(r.steps):,}"
        lines.append(f"| {reading_mark(label, readings, '../')} | {r.env} | {steps} | {r.seeds} | "
                     f"{tables.fmt(r.mean, 1)} ± {tables.fmt(r.std, 1)} | "
                     f"{tables.fmt_ci(r.iqm, r.iqm_ci_low, r.iqm_ci_high, 1)} | {status} |")
    return lines + [""] + reading_note(labelled(table)["label"] if len(table) else [], readings, "../")


def _share_markdown(share: pd.DataFrame) -> list[str]:
    lines = ["| method | env | values | best value | best IQM | share within 10 % [95 % CI] |",
             "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r.method} | {r.env} | {r.values} | {r.best_value:g} | {tables.fmt(r.best_iqm, 2)} | "
              f"{tables.fmt_ci(r.share, r.share_ci_low, r.share_ci_high, 2)} |" for r in share.itertuples(index=False)]
    return lines + [""]


def claim_lines(claim: pd.DataFrame, share: pd.DataFrame) -> list[str]:
    """One bullet per reading: its verdict, share and best IQM with intervals, and the existing method it is."""
    ref = share[(share["method"] == f"{BASELINE} C")]
    ref = ref[ref["env"] == "all"] if (ref["env"] == "all").any() else ref
    base = (f" (dqn C: share {tables.fmt_ci(ref['share'].iloc[0], ref['share_ci_low'].iloc[0], ref['share_ci_high'].iloc[0])}"
            f", best IQM {tables.fmt(ref['best_iqm'].iloc[0])})") if len(ref) else ""
    out = []
    supports = [r.reading for r in claim.itertuples(index=False) if r.verdict == "supports"]
    for r in claim.itertuples(index=False):
        alias = f"; this reading is {r.same_as}" if isinstance(r.same_as, str) and r.same_as else ""
        out.append(f"- {r.reading}: **{r.verdict}**: share within 10 % "
                   f"{tables.fmt_ci(r.share, r.share_ci_low, r.share_ci_high)}, flatter than dqn C: {r.flatter}; best "
                   f"IQM {tables.fmt_ci(r.best_iqm, r.best_ci_low, r.best_ci_high)} at {r.best_value:g}, as good as dqn "
                   f"C's best: {r.as_good}{alias}")
    if len(claim):
        out.append(f"- supported by: {', '.join(supports)}" if supports else "- supported by: no reading")
    return ([f"Baseline{base}.", ""] if base else []) + out


def _improvement_markdown(table: pd.DataFrame, readings: Mapping[str, str | None]) -> list[str]:
    lines = [f"| X | P(X > {BASELINE}) [95 % CI] | environments |", "|---|---:|---:|"]
    lines += [f"| {reading_mark(r.x, readings, '../')} | {tables.fmt_ci(r.probability, r.ci_low, r.ci_high)} | "
              f"{r.tasks} |" for r in table.itertuples(index=False)]
    return lines + [""]


def _span(lo, hi) -> str:
    if pd.isna(lo):
        return "–"
    return f"{int(lo):,}" if lo == hi else f"{int(lo):,}–{int(hi):,}"


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 60 else \
        f"{seconds:.0f} s"


def _cost_markdown(table: pd.DataFrame, readings: Mapping[str, str | None]) -> list[str]:
    lines = ["| agent | parameters | target bytes | wall time | seed-steps/s | device | final target sparsity |",
             "|---|---:|---:|---:|---:|---|---:|"]
    for r in table.itertuples(index=False):
        rate = "–" if pd.isna(r.seed_steps_per_s) else f"{r.seed_steps_per_s:,.0f}"
        lines.append(f"| {reading_mark(r.agent, readings, '../')} | {_span(r.parameters_min, r.parameters_max)} | "
                     f"{_span(r.target_bytes_min, r.target_bytes_max)} | {_duration(r.wall_s)} | {rate} | {r.device} | "
                     f"{tables.fmt(r.target_sparsity_final, 3)} |")
    return lines + [""]


def _cost_line(part: Part) -> str:
    cost = run_costs(part.runs)
    if not cost["groups"]:
        return f"- {part.name}: no runs yet"
    name = f"{part.name} (experiment {', '.join(f'`{e}`' for e in part.experiments)})"
    cpu = (f"{cost['cpu_s']:,.0f} CPU-s" + (f" (recorded for {cost['groups_with_cpu']} of {cost['groups']} groups)"
                                           if cost["groups_with_cpu"] < cost["groups"] else "")
           if cost["groups_with_cpu"] else "CPU-s not recorded")
    rate = cost["seed_steps"] / cost["wall_s"] if cost["wall_s"] else float("nan")
    return (f"- {name}: {cost['groups']} groups, {cost['seed_steps']:,} seed-steps, {_duration(cost['wall_s'])} "
            f"summed group training time ({rate:,.0f} seed-steps/s per group), {cpu}")


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _runs_dictionary(parts: Mapping[str, Part]) -> list[str]:
    lines = ["## Per-run data (`runs/`)", "",
             "Every file above is generated from the per-run files in [runs/](runs/) and nothing else: gzip CSV, one "
             "row per (run, evaluation point), run-level values repeated on each row of the run "
             "(`analysis/run_table.py` reads and writes them). `make results NO_RUN=1 OUT=DIR` regenerates every "
             "CSV and Markdown file here from them, byte for byte, without a tracking store.", ""]
    files = [p for p in parts.values() if p.file is not None and p.file.exists()]
    for p in files:
        lines.append(f"- [runs/{p.file.name}](runs/{p.file.name}): {p.runs['run_id'].nunique():,} runs, {p.rows:,} "
                     f"rows, {_size(p.file.stat().st_size)}")
    if files:
        total = sum(p.file.stat().st_size for p in files)
        lines += [f"- in all: {sum(p.runs['run_id'].nunique() for p in files):,} runs, {_size(total)}", ""]
    lines += ["| column | what it holds |", "|---|---|"]
    lines += [f"| `{c}`{' (required)' if c in REQUIRED_COLUMNS else ''} | {text} |" for c, text in COLUMN_DOCS.items()]
    return lines + [""]


VERIFY_TEXT = [
    "## Verifying by rerunning", "",
    "`targetbench verify [--agent A] [--env E] [--sample N]` reruns reference runs from the config they recorded "
    "(`param.*`; seeds of one config batched as they were recorded; a seed's result does not depend on its batch) "
    "and reports per run whether `params_sha256` and every evaluation point match the data here; where they "
    "differ, the largest difference and the likely cause from what both record (package versions, processor "
    "`tag.cpu_model`, BLAS kernel `tag.blas_kernel`, the code's commit).", "",
    "What is guaranteed: bitwise identical runs on the same processor kind with the same package versions and "
    "code (the commit of the run). Elsewhere, different floating-point kernels change the last bits, and the "
    "runs drift apart over training: they are then statistically equivalent, not identical. To check that, verify "
    "a sample and read its equivalence line: per (agent, environment) P(rerun > shipped) over the final returns "
    "with a 95 % bootstrap interval, which should contain 0.5.", ""]


def write_readme(out: Path, parts: Mapping[str, Part], *, readings: Mapping[str, str | None] | None = None,
                 command: str = "make results", gallery: str = "") -> Path:
    """``out/README.md`` from the files in ``out`` (CSVs, PNGs, reproduced tables) and ``parts``; a part without
    runs is marked as not run; ``gallery``: the Markdown of the figure gallery
    (:func:`analysis.figure_kinds.gallery_markdown`). Deterministic: the same inputs give the same bytes."""
    readings = readings or {}
    lines = ["# TargetBench reference results", "",
             "Generated by `analysis/result_files.py` from the per-run data in [runs/](runs/); do not edit by hand. "
             f"`{command}` runs what is missing (resumable: finished trials are skipped), exports the runs from the "
             f"tracking store to `runs/` and regenerates everything; `{command} NO_RUN=1` regenerates the files from "
             "`runs/` alone; one part with `PART=classic|tuned|sensitivity|cartpole|minatar`.", ""]
    all_runs = [p.runs for p in parts.values() if len(p.runs)]
    lines += ["## Provenance", ""]
    if all_runs:
        prov = provenance(pd.concat(all_runs, ignore_index=True))
        lines += [f"- commits: {prov['commits']}", f"- machines: {prov['machines']}",
                  f"- packages: {prov['versions']}"]
        if prov["dirty"] != "0":
            lines.append(f"- **{prov['dirty']} runs were trained from a dirty tree** (uncommitted changes): their "
                         "commit does not reproduce them exactly")
    else:
        lines.append("- no runs yet")
    lines += [""] + [_cost_line(p) for p in parts.values()]
    lines += ["", "Training time: per batched group, the training loop's wall time over every resumed attempt (tag "
              "`group_wall_s`, process start-up not included; the span of the runs' start and end times where that "
              "tag is missing), summed over groups: groups that ran side by side are counted each. CPU-seconds: "
              "user + system time of each group's worker process, start-up included (tag `group_cpu_s`, the last "
              "attempt's process only). Both are as measured on the machine that trained the group, under whatever else "
              "ran there at the time (its load is not recorded): compare them across agents only for groups that ran "
              "under the same conditions; the learning results do not depend on load (the thread guarantee of "
              "docs/reliability.md).", ""]
    for part in parts.values():
        lines += [f"- {part.name}: {note}" for note in part.notes]
    lines += ["## Classic control", ""]
    classic = out / "classic_control.csv"
    if classic.exists():
        table = pd.read_csv(classic)
        exp = parts["classic"].expected if "classic" in parts else None
        lines += ["Final evaluation return (mean greedy return of the last evaluation, ε_eval = 0.001) over seeds; "
                  f"IQM with its 95 % stratified-bootstrap interval over seeds. {SCORING_RULE} Rows `X/tuned` run "
                  "X's best reading at its best knob value from the sensitivity study ([tuned.csv](tuned.csv)). "
                  "Data: [classic_control.csv](classic_control.csv).", ""]
        lines += _classic_markdown(table, exp.seeds if exp else 0, readings)
        if (out / "tuned.csv").exists():
            lines += [f"- {r.agent}: {r.method} at {r.knob.split('.')[-1]} = {r.value:g} ({r.runs} runs)"
                      for r in pd.read_csv(out / "tuned.csv").itertuples(index=False)] + [""]
        lines += [line for png in sorted(out.glob("curves_*.png")) for line in (f"![{png.stem}]({png.name})", "")]
        if (out / "aggregate.png").exists():
            lines += ["Aggregate over the environments (normalised: 0 = uniform-random policy, 1 = the environment's "
                      "gymnasium reward threshold; IQM, median, mean, optimality gap with 95 % stratified-bootstrap "
                      "intervals; [aggregate.csv](aggregate.csv)):", "", "![aggregate](aggregate.png)", ""]
        if (out / "improvement.csv").exists():
            lines += [f"Probability of improvement over `{BASELINE}` (hard target update): P(X > {BASELINE}), the "
                      f"chance that a run of X beats a run of {BASELINE} on the same environment, averaged over the "
                      "environments, with its 95 % stratified-bootstrap interval; 0.5 = no difference "
                      "([improvement.csv](improvement.csv)).", ""]
            lines += _improvement_markdown(pd.read_csv(out / "improvement.csv"), readings)
        if (out / "cost.csv").exists():
            lines += ["Compute per agent: trainable parameters and target-copy bytes per seed (min–max over the "
                      "environments), summed group wall time, training throughput (seed-steps per second of one "
                      "batched group: the seeds of one (agent, environment) trained together in one process, groups "
                      "side by side as the scheduler ran them), the device, and for EauDeQN the share of its "
                      "target's weights at zero when training ended ([cost.csv](cost.csv)).", ""]
            lines += _cost_markdown(pd.read_csv(out / "cost.csv", keep_default_na=False, na_values=[""]), readings)
    else:
        lines += ["Not run yet.", ""]
    lines += ["## Target-knob sensitivity", ""]
    share = out / "sensitivity_share.csv"
    if share.exists():
        share_t = pd.read_csv(share)
        lines += ["Normalised final IQM against each method's own target knob (the sweep and its knob are declared "
                  "by the suite), with 95 % bootstrap intervals over seeds ([sensitivity.csv](sensitivity.csv)); "
                  "`all` pools both environments (stratified bootstrap). Share within 10 %: the part of the swept "
                  "knob range, measured in log10 of the knob with the IQM interpolated linearly between swept values, "
                  "where the IQM is at least best − 0.1·|best|; its interval is the 2.5–97.5 % percentile of the "
                  "share over bootstrap repetitions that resample the seeds of every (value, environment) cell "
                  "([sensitivity_share.csv](sensitivity_share.csv)).", ""]
        lines += _share_markdown(share_t)
        if (out / "sensitivity.png").exists():
            lines += ["![sensitivity](sensitivity.png)", ""]
        if (out / "claim.csv").exists():
            lines += ["### Does tracking remove the need to tune the hard update period?", "", CLAIM_RULE + " "
                      "([claim.csv](claim.csv))", ""]
            lines += claim_lines(pd.read_csv(out / "claim.csv", keep_default_na=False, na_values=[""]), share_t) + [""]
    else:
        lines += ["Not run yet.", ""]
    repro = sorted(p for p in out.glob("reproduce-*.csv") if p.with_suffix(".md").exists())
    reproduced, smoke = [p for p in repro if not is_smoke_table(p)], [p for p in repro if is_smoke_table(p)]
    lines += ["## Published tables reproduced", ""]
    lines += [line for p in reproduced for line in (p.with_suffix(".md").read_text().rstrip(), "")]
    if not reproduced:
        lines += ["None: every table run so far is a smoke-level check (below)." if smoke else "Not run yet.", ""]
    if smoke:
        lines += ["## Smoke-level checks", "",
                  "Every row of these tables is \"not comparable\" (the budget is far below the source's): they check "
                  "that the pipeline runs, not that the results reproduce.", ""]
        lines += [line for p in smoke for line in (p.with_suffix(".md").read_text().rstrip(), "")]
    if gallery:
        lines += ["## Gallery: each figure kind once", "",
                  "Each kind of `targetbench figure KIND` drawn once from the per-run data, in the paper style, with "
                  "the numbers drawn as CSV and the caption beside it (the classic part; sensitivity from its "
                  "study).", "", gallery.rstrip(), ""]
    lines += _runs_dictionary(parts) + VERIFY_TEXT
    path = out / "README.md"
    path.write_text("\n".join(lines))
    return path
