"""``targetbench figure KIND``: one figure of one experiment, for one set of agents and environments.

The command line of :mod:`analysis.figure_kinds` (the same sections ``targetbench analyze`` draws): it reads the
experiment back from the tracking store, draws ``KIND`` in the chosen style and writes ``<out>/<name>.pdf``,
``.png``, ``.csv`` (exactly the numbers drawn) and ``.txt`` (the caption). Also home of :func:`figure_facts`, the
agents' declared looks in display order that every figure of the suite is drawn with.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Mapping

from suite.errors import TrackingError, UsageError, WriteError
from suite.preflight import check_writable

__all__ = ["add_arguments", "main", "figure_facts", "add_style_arguments", "figure_options"]


def figure_facts() -> dict[str, Mapping[str, object]]:
    """Every registered agent's declared facts (colour, marker, group, ...; :func:`agents.registry.agent_facts`),
    ordered by method group (:data:`agents.registry.METHOD_GROUPS`) and within a group by registration: the order
    and looks :mod:`analysis.palette` draws agents in."""
    from agents.registry import METHOD_GROUPS, agent_facts

    facts = agent_facts()
    names = list(facts)
    rank = {g: i for i, g in enumerate(METHOD_GROUPS)}
    return {n: facts[n] for n in sorted(names, key=lambda n: (rank.get(str(facts[n]["group"]), len(rank)),
                                                              names.index(n)))}


def add_style_arguments(p: argparse.ArgumentParser, default_style: str = "default") -> None:
    """The flags that set how figures look (``figure`` and ``analyze``): style, curve layout, smoothing."""
    from analysis.styles import LAYOUTS, STYLES

    p.add_argument("--style", choices=tuple(STYLES), default=default_style,
                   help="figure sizes and fonts: default (the report's), paper (3.25 in one column / 6.75 in two "
                        "columns), slides (larger)")
    p.add_argument("--layout", choices=LAYOUTS, default="auto",
                   help="learning curves: overlay (one axes), agents (a panel per agent) or groups (a panel per "
                        "method group), with the baseline in grey in every panel; auto: overlay up to 5 agents")
    p.add_argument("--smooth", type=int, default=1, metavar="N",
                   help="learning curves: each run's trailing mean over its last N evaluation points before the "
                        "IQM and its band (default 1: none); the window is stated with the figure")


def figure_options(args: argparse.Namespace, **extra):
    """:class:`analysis.section.FigureOptions` from the style flags and the agents' facts; bad values are a
    one-line :class:`UsageError`."""
    from analysis.section import FigureOptions

    if args.smooth < 1:
        raise UsageError(f"--smooth {args.smooth} is not valid; allowed: an integer >= 1 (evaluation points)")
    try:
        return FigureOptions(style=args.style, layout=args.layout, smooth=args.smooth, facts=figure_facts(), **extra)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``figure`` command's arguments to ``p``."""
    from analysis.figure_kinds import KINDS

    p.add_argument("kind", metavar="KIND", choices=tuple(KINDS), help="one of: " + ", ".join(KINDS))
    p.add_argument("--experiment", default=None,
                   help="MLflow experiment (default: the only experiment holding runs in the store)")
    p.add_argument("--agents", default=None, help="comma list of agents to draw (default: all in the experiment)")
    p.add_argument("--envs", default=None, help="comma list of environments (default: all in the experiment)")
    p.add_argument("--out", default=None, help="output folder (default: RESULTS/figures)")
    p.add_argument("--name", default=None, help="file stem of the outputs (default: KIND)")
    add_style_arguments(p)
    p.add_argument("--width", choices=("column", "text"), default=None,
                   help="one-column or full text width (default: the figure's own)")
    p.add_argument("--score", choices=("auto", "normalised", "raw"), default="auto",
                   help="learning curves: normalised score, or the raw evaluation return (one environment only); "
                        "auto: raw for one environment, normalised for several")
    p.add_argument("--baseline", default="dqn", help="agent drawn in grey and compared with (default dqn)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///results/mlflow.db)")
    p.add_argument("--results", default=None, help="results folder (default: $TARGETBENCH_RESULTS or results)")
    p.add_argument("--reps", type=int, default=None, help="bootstrap repetitions (default 2,000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--engine", choices=("fast", "rliable"), default="fast", help="bootstrap engine (as analyze)")
    p.add_argument("--refresh", action="store_true", help="ignore the cached run tables and read the store again")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache under results/cache")


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def main(args: argparse.Namespace) -> int:
    """Run ``targetbench figure``; returns 0. Bad input raises a one-line :mod:`suite.errors` error."""
    from analysis.experiment import NothingToAnalyse, OutputNotWritten, StoreUnreadable, load_checked
    from analysis.figure_kinds import FigureError, render
    from analysis.normalization import reference_scores
    from analysis.stats import DEFAULT_REPS, RaggedScoresError
    from suite.envs.families import reference_files

    results = Path(args.results or os.environ.get("TARGETBENCH_RESULTS", "results"))
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{results.as_posix()}/mlflow.db"
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        raise UsageError(f"tracking store {uri} does not exist; run some trials first or pass --tracking-uri")
    reps = args.reps if args.reps is not None else DEFAULT_REPS
    if reps < 100:
        raise UsageError(f"--reps {reps} is not valid; allowed: an integer >= 100")
    agents, envs = _names(args.agents), _names(args.envs)
    out = Path(args.out) if args.out else results / "figures"
    check_writable(out, "output folder")
    if uri.startswith(("http://", "https://")):
        from suite.tracking import ensure_store

        ensure_store(uri)
    from suite.experiments import choose_experiment

    chosen: list[str] = []  # said after the figure is written: an error stays the only line on stderr
    experiment = choose_experiment(uri, args.experiment, "figure", say=chosen.append)
    try:
        runs, metrics = load_checked(uri, experiment, results, cache=not args.no_cache,
                                     refresh=args.refresh)
    except NothingToAnalyse as exc:
        raise UsageError(str(exc)) from None
    except StoreUnreadable as exc:
        raise TrackingError(str(exc)) from None
    except OutputNotWritten as exc:
        raise WriteError(f"{exc} (free space, or pass --no-cache)") from exc.__cause__
    n_envs = len(envs) if envs is not None else runs["env"].nunique()
    score = args.score if args.score != "auto" else ("raw" if n_envs == 1 else "normalised")
    if args.kind == "curves" and score == "raw" and n_envs != 1:
        raise UsageError(f"--score raw needs one environment (raw returns of different environments do not "
                         f"average); these runs have {n_envs}: pass --envs ENV")
    options = figure_options(args, width=args.width, curve_score=score)
    refs = reference_scores(extra=reference_files()) if reference_files() else None
    try:
        files = render(args.kind, runs, metrics, out, name=args.name, agents=agents, envs=envs, options=options,
                       reps=reps, seed=args.seed, engine=args.engine, baseline=args.baseline, refs=refs)
    except FigureError as exc:
        raise UsageError(str(exc)) from None
    except RaggedScoresError as exc:
        raise UsageError(f"--engine rliable: {exc}; use --engine fast") from None
    except OSError as exc:
        raise WriteError(f"cannot write the figure under {out}: {exc.strerror or exc}") from exc
    for line in chosen:
        print(line, file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in files.paths)}", file=sys.stderr)
    return 0
