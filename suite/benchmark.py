"""``make benchmark``: run a suite (default: ``suite/specs/default.yaml``) through the scheduler into the
embedded store, then summarise it with the analysis package.

The scheduler batches each (agent, env)'s seeds in one worker process (one torch thread) and runs
``--workers`` of them at a time (one per core by default); trials already finished in the store are skipped
and interrupted ones resume from their checkpoints, so rerunning ``make benchmark`` continues where it stopped.
``--backend ray`` runs the groups as Ray tasks (``make benchmark SUITE=atari BACKEND=ray`` on a GPU cluster).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from suite.errors import run_resumable_command

DEFAULT_SUITE = "default"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", "--spec", dest="suite", default=DEFAULT_SUITE,
                   help="built-in suite name or suite .yaml path (default: default)")
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--seeds", default=None, help="override the suite's seeds, e.g. 0,1,2 or 0-9")
    p.add_argument("--steps", type=int, default=None, help="override the suite's env steps per seed")
    p.add_argument("--workers", type=int, default=None, help="groups at a time (default: one per core)")
    p.add_argument("--backend", default="local", choices=["local", "ray"])
    p.add_argument("--tracking-uri", default=None, help="default: sqlite:///RESULTS/mlflow.db")
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: the suite's)")
    p.add_argument("--checkpoint-uri", default=None, help="where checkpoints live (see `targetbench sweep -h`)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--no-figures", action="store_true", help="only results/benchmark.md, not the full analysis")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    return run_resumable_command("benchmark", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    """Sweep the suite, write ``benchmark.md``, then the full analysis; 1 if any trial failed after retries."""
    from suite.scheduler import load_suite, run_sweep
    from suite.tracking import default_tracking_uri
    from suite.trial import parse_seeds

    suite = load_suite(args.suite)
    if args.seeds:
        suite = dataclasses.replace(suite, seeds=parse_seeds(args.seeds, key="--seeds"))
    uri = args.tracking_uri or default_tracking_uri(args.results)
    # A changed budget gets its own experiment, so the summary never mixes runs of different budgets
    # (a different seed set only adds or skips trials of the same budget).
    experiment = args.experiment or (suite.default_experiment + (f"-steps{args.steps}" if args.steps else ""))
    summary = run_sweep(suite, backend=args.backend, workers=args.workers, tracking_uri=uri, experiment=experiment,
                        results_dir=args.results, steps=args.steps, progress=not args.quiet,
                        checkpoint_uri=args.checkpoint_uri)

    from analysis.runs import load_runs
    from analysis.summary import summarise, to_markdown

    steps = args.steps or suite.steps
    title = (f"{experiment}: {', '.join(suite.envs)}, {steps if steps else 'family-default'} env steps per seed, "
             f"seeds {','.join(map(str, suite.seeds))}")
    text = to_markdown(summarise(load_runs(uri, experiment)), title)
    text += (f"\nWall time of this run of the benchmark: {summary.wall_s / 60:.1f} min with {summary.workers} "
             f"workers ({args.backend} backend; {summary.done} trials completed, {summary.diverged} diverged, "
             f"{summary.skipped} already finished, {summary.failed} failed).\n")
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / "benchmark.md"
    out.write_text(text)
    print(text)
    print(f"wrote {out}")
    code = 0 if args.no_figures else _full_analysis(uri, experiment, args.results)
    if summary.failed:
        print(f"benchmark: {summary.failed} trials failed after retries (recorded as failed runs)", file=sys.stderr)
        return 1
    return code


def _full_analysis(uri: str, experiment: str, results: Path) -> int:
    """Figures, tables and report.md under ``results``, as ``targetbench analyze`` writes them."""
    from analysis.section import FigureOptions
    from suite.analyze import analyze
    from suite.envs.families import reference_files
    from suite.figure import figure_facts

    res = analyze(uri=uri, experiment=experiment, out=results, results=results, reps=2000,
                  reference_files=reference_files(), figure_options=FigureOptions(facts=figure_facts()))
    print(f"wrote {res.report} (figures and tables under {results})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
