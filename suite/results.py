"""``make results``: run the suites behind the reference results, export their runs, derive ``docs/results/``.

Five parts, each runnable alone (``--part``), all by default, in this order:

* ``classic``: ``suite/specs/results-classic.yaml`` (every agent, three classic-control tasks, 500k steps, seeds
  0-9) → ``classic_control.csv``, learning curves, aggregates, P(X > dqn), cost;
* ``sensitivity``: stage 1 from ``suite/specs/sensitivity-classic.yaml``, then stage 2 built from stage 1's
  per-run data (:mod:`suite.result_stages`), into one experiment → ``sensitivity.csv``, ``sensitivity_share.csv``,
  ``claim.csv``, ``sensitivity.png``;
* ``tuned``: each tracking agent's best reading at its best knob value in the sensitivity data, at the classic
  protocol (experiment ``results-tuned``) → its rows in the classic files;
* ``cartpole``: ``targetbench reproduce cartpole_dqn_ablation`` at :data:`CARTPOLE_STEPS` env steps (the suite's
  10 seeds) → ``reproduce-cartpole_dqn_ablation.*``;
* ``minatar``: ``targetbench reproduce minatar_v1_dqn_ablation`` at :data:`MINATAR_STEPS` env steps and
  :data:`MINATAR_SEEDS` (about one CPU-hour; the table title states the budget against the paper's 5M frames).

Each part that runs is exported from the tracking store to ``OUT/runs/<part>.csv.gz`` (per-run data,
:mod:`analysis.run_table`); every derived file and ``OUT/README.md`` (and the generated block of the top-level
``README.md`` when writing to ``docs/results``) is then computed from the per-run files alone. ``--no-run`` trains
nothing and reads no store: it regenerates the files from the per-run data (``--runs``, else ``OUT/runs`` when it
holds any, else the committed ``docs/results/runs``), byte for byte. Resumable: the scheduler skips trials already
finished in the store and resumes interrupted groups from their checkpoints. ``--steps``/``--seeds``/``--agents``/
``--envs`` cut a part down for a smoke run (a changed ``--steps`` records into its own experiment,
``<experiment>-stepsN``, so budgets never mix).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from suite.errors import UsageError, run_resumable_command

__all__ = ["PARTS", "CARTPOLE_STEPS", "MINATAR_STEPS", "MINATAR_SEEDS", "TABLE_BUDGETS", "TUNED_EXPERIMENT", "main",
           "derive", "readings"]

PARTS = ("classic", "sensitivity", "tuned", "cartpole", "minatar")
SUITES = {"classic": "results-classic", "sensitivity": "sensitivity-classic"}
TABLES = {"cartpole": "cartpole_dqn_ablation", "minatar": "minatar_v1_dqn_ablation"}
TUNED_EXPERIMENT = "results-tuned"
#: MinAtar budget for about one CPU-hour: 5 games x 3 variants x 3 seeds x 50k env steps = 2.25M seed-steps of
#: MinAtar DQN (an update every step). Measured on a 2-core machine (2026-12-03, 3 seeds batched, per core):
#: ~700 seed-steps/s on breakout, ~440 on seaquest, so ~1.1 CPU-hours for the two variants with replay and less
#: for no-replay (batch 1); docs/results/README.md states the measured cost once it has run.
MINATAR_STEPS = 50_000
MINATAR_SEEDS = "0-2"
#: CartPole ablation budget: 7 variants x 10 seeds x 100k env steps = 7M seed-steps with an update every step
#: (13 min of summed group time, 7.6 min wall on 2 cores, 2026-12-03; the suite's own 500k reading, 1,000 episodes
#: at CartPole's 500-step cap, is 5x that: `--cartpole-steps 500000`). 100k steps hold 200+ episodes even at the
#: cap, past the lecture's solve points (130-400 episodes); measured, the runs read a median of 986 of the
#: lecture's 1,000 episodes (episodes stay short: no run solves). The table title states that count per run.
CARTPOLE_STEPS = 100_000
#: the reproduced tables' default budgets here: part -> (env steps, seeds; None = the suite's seeds)
TABLE_BUDGETS = {"cartpole": (CARTPOLE_STEPS, None), "minatar": (MINATAR_STEPS, MINATAR_SEEDS)}
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "results"
#: the gallery's folder under the output folder: each figure kind once (PDF, PNG, the CSV drawn, its caption)
GALLERY = "gallery"
TOP_README = ROOT / "README.md"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", default="all", help=f"all or a comma list of: {', '.join(PARTS)}")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: docs/results)")
    p.add_argument("--runs", type=Path, default=None,
                   help="--no-run: the per-run data to derive from (default: OUT/runs when it holds any, else "
                        "docs/results/runs)")
    p.add_argument("--results", type=Path, default=Path("results"), help="store, checkpoints and cache folder")
    p.add_argument("--tracking-uri", default=None, help="default: sqlite:///RESULTS/mlflow.db")
    p.add_argument("--steps", type=int, default=None, help="env steps per seed for every part (smoke runs)")
    p.add_argument("--seeds", default=None, help="seeds for every part, e.g. 0,1 (smoke runs)")
    p.add_argument("--agents", default=None, help="classic/sensitivity/tuned: only these agents (comma list)")
    p.add_argument("--envs", default=None, help="classic/sensitivity/tuned: only these environments (comma list)")
    p.add_argument("--cartpole-steps", type=int, default=None,
                   help=f"CartPole ablation budget (default {CARTPOLE_STEPS:,})")
    p.add_argument("--minatar-steps", type=int, default=None, help=f"MinAtar budget (default {MINATAR_STEPS:,})")
    p.add_argument("--quick", action="store_true", help="cartpole/minatar: reproduce --quick")
    p.add_argument("--workers", type=int, default=None, help="groups at a time (default: one per core)")
    p.add_argument("--no-run", action="store_true", help="train nothing, read no store: regenerate the files from "
                                                         "the per-run data")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap repetitions (default 2,000)")
    p.add_argument("--readme", type=Path, default=None,
                   help="top-level README whose generated block is rewritten (default: README.md when --out is "
                        "docs/results, else none)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p.parse_args(argv)


def _parts(text: str) -> list[str]:
    if text.strip() in ("", "all"):
        return list(PARTS)
    parts = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise UsageError(f"--part {text!r} is not valid; allowed: all or a comma list of {', '.join(PARTS)}")
    return parts


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _suite(part: str, args: argparse.Namespace, filtered: bool = True):
    """The part's suite with the smoke filters applied (``filtered``: only to the parts being run; a part that is
    only read back for the README keeps its whole plan), and its experiment."""
    from suite.scheduler import load_suite
    from suite.trial import parse_seeds

    suite = load_suite(SUITES[part])
    agents, envs = (_names(args.agents), _names(args.envs)) if filtered else (None, None)
    changes: dict = {}
    if args.seeds:
        changes["seeds"] = parse_seeds(args.seeds)
    if agents is not None:
        unknown = [a for a in agents if a not in suite.agents]
        if unknown:
            raise UsageError(f"--agents names {unknown[0]!r}, not an agent of suite {suite.name}; allowed: "
                             + ", ".join(suite.agents))
        changes["agents"] = {a: suite.agents[a] for a in agents}
    if envs is not None:
        unknown = [e for e in envs if e not in suite.envs]
        if unknown:
            raise UsageError(f"--envs names {unknown[0]!r}, not an env of suite {suite.name}; allowed: "
                             + ", ".join(suite.envs))
        changes["envs"] = tuple(envs)
    if changes:
        suite = _restrict(dataclasses.replace(suite, **changes))
    experiment = suite.default_experiment + (f"-steps{args.steps}" if args.steps else "")
    return suite, experiment


def _restrict(suite):
    """``suite`` without the variants (or parts of them) for agents and envs that were cut away."""
    keep = [v for v in suite.variants if (v.agents is None or set(v.agents) & set(suite.agents))
            and (v.envs is None or set(v.envs) & set(suite.envs))]
    return dataclasses.replace(suite, variants=tuple(
        dataclasses.replace(v, agents=None if v.agents is None else tuple(a for a in v.agents if a in suite.agents),
                            envs=None if v.envs is None else tuple(e for e in v.envs if e in suite.envs))
        for v in keep))


def _reproduce_args(part: str, args: argparse.Namespace, uri: str, no_run: bool) -> argparse.Namespace:
    from suite import reproduce

    p = argparse.ArgumentParser()
    reproduce.add_arguments(p)
    argv = [TABLES[part], "--tracking-uri", uri, "--results", str(args.results), "--out", str(args.out),
            "--reps", str(args.reps)]
    default_steps, default_seeds = TABLE_BUDGETS[part]
    steps = args.steps or getattr(args, f"{part}_steps") or default_steps
    if args.quick:
        argv.append("--quick")
        steps = args.steps  # --quick picks its own budget unless --steps says otherwise
    if steps:
        argv += ["--steps", str(steps)]
    seeds = args.seeds or (default_seeds if not args.quick else None)
    if seeds:
        argv += ["--seeds", seeds]
    if args.workers:
        argv += ["--workers", str(args.workers)]
    if no_run:
        argv.append("--no-run")
    if args.quiet:
        argv.append("--quiet")
    return p.parse_args(argv)


def _file(part: str, args: argparse.Namespace) -> str:
    """The per-run file name of ``part`` (the reproduced tables' ``--quick`` smoke runs have their own)."""
    from analysis.run_table import SUFFIX

    return f"{part}{'-quick' if args.quick and part in TABLES else ''}{SUFFIX}"


def readings() -> dict[str, str | None]:
    """Agent → the anchor key of its reading in docs/algorithms.md (None for methods from a paper read in full),
    as the agents declare it: handed to the analysis, which does not import agents."""
    from agents.registry import agent_facts

    return {name: facts["reading"] for name, facts in agent_facts().items()}


# -- running and exporting ------------------------------------------------------------------------------------
def _sweep(suite, experiment: str, uri: str, args: argparse.Namespace, label: str) -> int:
    from suite.scheduler import run_sweep

    summary = run_sweep(suite, workers=args.workers, tracking_uri=uri, experiment=experiment,
                        results_dir=args.results, steps=args.steps, progress=not args.quiet)
    print(f"results: {label}: {summary.done + summary.diverged} trials run, {summary.skipped} already finished "
          f"(skipped), {summary.failed} failed", file=sys.stderr)
    return summary.failed


def _run_part(part: str, args: argparse.Namespace, uri: str, runs_dir: Path) -> int:
    """Train ``part`` (resumably) and export its runs to ``runs_dir``; returns the failed trials."""
    from analysis.run_table import read_run_table, to_frames
    from suite import result_stages as stages
    from suite.run_export import export_run_table

    path = runs_dir / _file(part, args)
    if part in TABLES:
        from suite import reproduce

        spec, suite, steps, _, overrides, experiment = reproduce.plan(_reproduce_args(part, args, uri, False))
        from suite.scheduler import run_sweep

        summary = run_sweep(suite, workers=args.workers, tracking_uri=uri, experiment=experiment,
                            results_dir=args.results, overrides=overrides or None, steps=steps,
                            progress=not args.quiet)
        export_run_table(uri, experiment, args.results, path)
        return summary.failed
    if part == "tuned":
        source = runs_dir / _file("sensitivity", args)
        if not source.exists():
            raise UsageError(f"the tuned part needs the sensitivity study's per-run data ({source.name} in "
                             f"{runs_dir}); allowed: run `make results PART=sensitivity` first")
        sens_suite, _ = _suite("sensitivity", args, filtered=False)
        sens_runs, _ = to_frames(read_run_table(source))
        variants = sens_suite.variants + stages.stage2_variants(sens_runs)
        wanted = [a for a in stages.TUNED_AGENTS if args.agents is None or a in _names(args.agents)]
        if not wanted:
            print("results: tuned: no tracking agent among --agents; nothing to run", file=sys.stderr)
            return 0
        tuned = stages.tuned_variants(sens_runs, variants, wanted)
        classic, _ = _suite("classic", args)
        suite = dataclasses.replace(classic, name=TUNED_EXPERIMENT, experiment=TUNED_EXPERIMENT,
                                    agents={a: {} for a, *_ in tuned}, variants=tuple(v for _, v, *_ in tuned))
        experiment = TUNED_EXPERIMENT + (f"-steps{args.steps}" if args.steps else "")
        failed = _sweep(suite, experiment, uri, args, part)
        export_run_table(uri, experiment, args.results, path,
                         sweeps={(a, v.name): (method, knob) for a, v, method, knob in tuned})
        return failed
    suite, experiment = _suite(part, args)
    failed = _sweep(suite, experiment, uri, args, part)
    sweeps = stages.sweeps_of(suite.variants, list(suite.agents))
    table = export_run_table(uri, experiment, args.results, path, sweeps)
    if part == "sensitivity":
        second = _restrict(dataclasses.replace(suite, variants=stages.stage2_variants(to_frames(table)[0])))
        if second.variants:
            failed += _sweep(second, experiment, uri, args, "sensitivity stage 2")
            export_run_table(uri, experiment, args.results, path,
                             {**sweeps, **stages.sweeps_of(second.variants, list(second.agents))})
    return failed


# -- deriving ---------------------------------------------------------------------------------------------------
def _expected(args: argparse.Namespace):
    """What the classic part plans (its cells, seeds and budget), to mark pending and partial rows."""
    from analysis.classic_tables import Expected
    from suite.scheduler.matrix import expand

    suite, _ = _suite("classic", args)
    configs, _ = expand(suite, steps=args.steps)
    return Expected(cells=tuple(dict.fromkeys((c.agent, c.variant, c.env) for c in configs)),
                    seeds=len(suite.seeds), steps=configs[0].spec.train.steps if configs else None)


def _checked(runs, what: str):
    from analysis.protocol_check import MixedProtocolsError, check_protocols

    try:
        return check_protocols(runs)
    except MixedProtocolsError as exc:
        raise UsageError(f"{what}: {exc}") from None


def derive(args: argparse.Namespace, parts: list[str], runs_dir: Path) -> Path:
    """Write the chosen parts' files and ``OUT/README.md`` from the per-run files in ``runs_dir`` alone (and the
    top-level README's block when writing to docs/results); returns the README's path."""
    import pandas as pd

    from analysis import readme_block as block
    from analysis import result_files as files
    from analysis.figure_kinds import FigureError, gallery_markdown, render, write_gallery
    from analysis.run_table import read_run_table, to_frames
    from analysis.section import FigureOptions
    from suite import reproduce
    from suite.figure import figure_facts
    from suite.result_stages import SAME_AS

    out: Path = args.out
    frames, info = {}, {}
    for part in PARTS:
        path = runs_dir / _file(part, args)
        if not path.exists():
            if part in parts:
                print(f"results: {part}: no per-run data ({path.name} in {runs_dir}); its files are left as they are",
                      file=sys.stderr)
            frames[part] = (pd.DataFrame(columns=["run_id", "env"]), pd.DataFrame())
            info[part] = files.Part(part, frames[part][0])
            continue
        table = read_run_table(path)
        frames[part] = to_frames(table)
        runs = frames[part][0]
        info[part] = files.Part(part, runs, file=path, rows=len(table),
                                experiments=tuple(sorted(runs["experiment"].dropna().astype(str).unique())))
    info["classic"].expected = _expected(args)
    facts = figure_facts()
    gallery: dict = {}
    if {"classic", "tuned"} & set(parts) and len(frames["classic"][0]) + len(frames["tuned"][0]):
        runs = pd.concat([frames[p][0] for p in ("classic", "tuned") if len(frames[p][0])], ignore_index=True)
        metrics = pd.concat([frames[p][1] for p in ("classic", "tuned") if len(frames[p][0])], ignore_index=True)
        info["classic"].notes += _checked(runs, "classic")
        files.write_classic(runs, metrics, out, reps=args.reps, expected=info["classic"].expected, facts=facts)
        if len(frames["classic"][0]):
            gallery.update(write_gallery(*frames["classic"], out / GALLERY, facts=facts, style="paper",
                                         reps=args.reps))
    if "sensitivity" in parts and len(frames["sensitivity"][0]):
        info["sensitivity"].notes += _checked(frames["sensitivity"][0], "sensitivity")
        files.write_sensitivity(frames["sensitivity"][0], out, reps=args.reps, same_as=SAME_AS)
        try:
            gallery["gallery_sensitivity"] = render(
                "sensitivity", *frames["sensitivity"], out / GALLERY, name="gallery_sensitivity", reps=args.reps,
                options=FigureOptions(style="paper", facts=facts))
        except FigureError:  # nothing the sensitivity figure can draw (a smoke run without a sweep)
            pass
    for part in TABLES:
        if part in parts and len(frames[part][0]):
            info[part].notes += _checked(frames[part][0], part)
            reproduce.write_reproduction(reproduce.resolve_table(TABLES[part]), frames[part][0], out, reps=args.reps,
                                         seed=0, quick=args.quick)
    marks = readings()
    shown = {stem: f for stem, f in gallery.items() if f is not None}
    readme = files.write_readme(out, info, readings=marks, gallery=gallery_markdown(shown, out) if shown else "")
    top = args.readme if args.readme is not None else (TOP_README if out.resolve() == DEFAULT_OUT else None)
    if top is not None:
        top.write_text(block.replace_readme_block(top.read_text(), block.readme_block(out, marks)))
        print(f"results: rewrote the generated block of {top}", file=sys.stderr)
    return readme


def _run(args: argparse.Namespace) -> int:
    from analysis.run_table import RUNS_FOLDER, SUFFIX
    from suite.preflight import check_writable
    from suite.tracking import default_tracking_uri

    parts = _parts(args.part)
    if args.reps < 100:
        raise UsageError(f"--reps {args.reps} is not valid; allowed: an integer >= 100")
    for flag in ("steps", "cartpole_steps", "minatar_steps"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} {value} is not valid; allowed: a positive integer")
    check_writable(args.out, "output folder")
    for part in parts:  # the smoke filters name agents and envs of the parts chosen, run or not
        if part in SUITES:
            _suite(part, args)
    t0 = time.perf_counter()
    failed = 0
    runs_dir = args.out / RUNS_FOLDER
    if not args.no_run:
        uri = args.tracking_uri or default_tracking_uri(args.results)
        for part in PARTS:
            if part in parts:
                failed += _run_part(part, args, uri, runs_dir)
    elif args.runs is not None:
        runs_dir = args.runs
    elif not any(runs_dir.glob(f"*{SUFFIX}")):
        runs_dir = DEFAULT_OUT / RUNS_FOLDER
    readme = derive(args, parts, runs_dir)
    print(f"results: wrote {readme} from the per-run data in {runs_dir} in {(time.perf_counter() - t0) / 60:.1f} min",
          file=sys.stderr)
    if failed:
        print(f"results: {failed} trials failed after retries (recorded as failed runs)", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    return run_resumable_command("results", lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
