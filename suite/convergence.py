"""``targetbench convergence``: tabular target rules against value iteration on a finite MDP.

Runs tabular Q-learning with each chosen target rule (:mod:`agents.tabular`; the rule names and their knobs
come from :mod:`agents.target_registry`, shared with the deep agents) on an MDP given by a spec
(:func:`suite.envs.mdp.parse_mdp_spec`) and reports ``||Q_t - Q*||_inf`` of the online and the target
table, with ``Q*`` from value iteration to 1e-10. A rule converges when both final errors, worst over
runs, are below 1 % of ``||Q*||_inf``. Rules: target-free, hard, soft, agt2, sgt2 (SGT2's joint-td form) and
sgt2-mutual (SGT2's mutual-tracking form); the rules are described in ``docs/algorithms.md``.

Output: ``--json`` prints one JSON object per rule per line; otherwise ``<out>/convergence.png`` and
``.pdf`` (error against step, log-log, median line and min..max band over runs) and
``<out>/convergence.md`` (summary table) are written and the table and paths printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from agents.finite_mdp import FiniteMDP, value_iteration
from agents.tabular import TabularResult, check_settings, run_tabular
from agents.tabular_settings import SAMPLING_MODES, STEP_SIZES, TabularSettings
from agents.target_registry import RULES, TARGET_INITS, TARGET_RULES, TRACKING
from suite.envs.mdp import SPEC_FORMS, parse_mdp_spec
from suite.errors import WriteError

__all__ = ["DEFAULT_STEPS", "TOLERANCE", "DEFAULT_OUT", "add_arguments", "parse_rules", "main"]

# Sync iterations after which every rule, with the default knobs, is below 1 % relative error on
# small dense random MDPs (measured on S in 5..30, A in 2..4; the slowest, soft with tau = 0.01, is
# at about 0.5 % here, agt2 / sgt2 / sgt2-mutual below 0.1 %); see the module tests for the held-out check.
DEFAULT_STEPS = 200_000
TOLERANCE = 0.01
DEFAULT_OUT = "results/convergence"
# Smallest error drawn on the log axis, so exact zeros do not vanish from the plot.
_PLOT_FLOOR = 1e-12
_LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``convergence`` command's flags to ``parser``."""
    parser.add_argument("--mdp", required=True, metavar="SPEC", help=f"the MDP: {SPEC_FORMS}")
    parser.add_argument(
        "--rules", default="all", help=f"'all' or a comma-separated subset of: {', '.join(RULES)} (default all)"
    )
    parser.add_argument("--sampling", choices=SAMPLING_MODES, default="sync", help="sync (every pair each step) "
                        "or trajectory (epsilon-greedy behaviour with restarts); default sync")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"steps per run (sync: sweeps over all pairs); default {DEFAULT_STEPS}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling streams (default 0)")
    parser.add_argument("--runs", type=int, default=5, help="independent runs per rule (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per rule per line, write no files")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"directory for convergence.png/.pdf/.md (default {DEFAULT_OUT})")
    parser.add_argument("--step-size", choices=STEP_SIZES, default="rescaled-linear",
                        help="step-size schedule (default rescaled-linear 1/(1+(1-gamma)n))")
    parser.add_argument("--omega", type=float, default=0.8, help="exponent of the polynomial step size (default 0.8)")
    parser.add_argument("--alpha", type=float, default=0.1, help="the constant step size (default 0.1)")
    parser.add_argument("--period", type=int, default=100, help="hard target period C in steps (default 100)")
    parser.add_argument("--tau", type=float, default=0.01, help="soft target rate (default 0.01)")
    parser.add_argument("--beta", type=float, default=0.1,
                        help="target step size of agt2 and sgt2-mutual (default 0.1)")
    parser.add_argument("--eta", type=float, default=0.5, help="coupling of sgt2 and sgt2-mutual (default 0.5)")
    parser.add_argument("--track", choices=TRACKING, default="state",
                        help="target entries the tracking step of agt2 and sgt2-mutual moves: every action of the "
                        "visited state or the visited pair only (the deep agents' track field); default state")
    parser.add_argument("--target-init", choices=TARGET_INITS, default="independent",
                        help="target table start of sgt2 and sgt2-mutual: an independent random draw (as the deep "
                        "sgt2-dqn) or a copy of the online table; default independent")
    parser.add_argument("--epsilon", type=float, default=0.1,
                        help="trajectory exploration rate, 1 = uniform random (default 0.1)")
    parser.add_argument("--restart-prob", type=float, default=0.01,
                        help="trajectory restart probability per step (default 0.01)")


def parse_rules(text: str) -> list[str]:
    """The rules named by ``--rules``: ``all`` or a comma-separated subset of :data:`RULES`, in order.

    Raises:
        ValueError: empty list or unknown rule (the message lists the allowed rules).
    """
    if text.strip() == "all":
        return list(RULES)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in RULES]
    if unknown or not names:
        what = f"unknown rule(s) {', '.join(map(repr, unknown))}" if unknown else "no rule given"
        raise ValueError(f"--rules: {what}; allowed: all or a comma-separated subset of {', '.join(RULES)}")
    return list(dict.fromkeys(names))


def _settings(args: argparse.Namespace) -> TabularSettings:
    """The :func:`agents.tabular.run_tabular` settings given by the flags (checked: one-line error if bad)."""
    return TabularSettings(
        steps=args.steps, runs=args.runs, sampling=args.sampling, step_size=args.step_size, omega=args.omega,
        alpha=args.alpha, period=args.period, tau=args.tau, beta=args.beta, eta=args.eta, track=args.track,
        target_init=args.target_init, epsilon=args.epsilon, restart_prob=args.restart_prob)


def _knobs(rule: str, args: argparse.Namespace) -> dict[str, Any]:
    """The knobs that shape ``rule`` (for the report): its registry entry's, each flag named like the knob."""
    return {knob: getattr(args, knob) for knob in TARGET_RULES[rule].knobs}


def _summary(result: TabularResult, mdp: FiniteMDP, q_star_norm: float, args: argparse.Namespace,
             wall_s: float) -> dict[str, Any]:
    """One rule's report: final and logged errors, worst over runs."""
    online, target = result.err_online.max(axis=0), result.err_target.max(axis=0)
    final_online, final_target = float(online[-1]), float(target[-1])
    worst = max(final_online, final_target)
    # Q* = 0 only when every reward is 0; the error is then reported as is.
    relative = worst / q_star_norm if q_star_norm > 0 else worst
    return {
        "rule": result.rule,
        "knobs": _knobs(result.rule, args),
        "mdp": mdp.name,
        "num_states": mdp.num_states,
        "num_actions": mdp.num_actions,
        "gamma": mdp.gamma,
        "sampling": result.sampling,
        "step_size": args.step_size,
        "steps": int(args.steps),
        "runs": int(args.runs),
        "seed": int(args.seed),
        "final_error_online": final_online,
        "final_error_target": final_target,
        "q_star_norm": q_star_norm,
        "relative_error": relative,
        "tolerance": TOLERANCE,
        "converged": bool(relative < TOLERANCE),
        "errors": [[int(s), float(o), float(t)] for s, o, t in zip(result.steps, online, target)],
        "wall_s": round(wall_s, 3),
    }


def _prepare_out(out: str) -> Path:
    """The output directory, created if missing; never replaces a file."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {out!r} exists and is not a directory; pass a directory path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--out {out!r}: cannot create the directory ({exc.strerror or exc})") from None
    return path


def _markdown(summaries: list[dict[str, Any]], mdp: FiniteMDP, args: argparse.Namespace) -> str:
    """The summary table as markdown, with a one-line header naming the setting."""
    lines = [
        f"Convergence on {mdp.name} (S={mdp.num_states}, A={mdp.num_actions}, gamma={mdp.gamma}): "
        f"{args.sampling} sampling, {args.step_size} step size, {args.steps} steps, {args.runs} runs, "
        f"seed {args.seed}; errors are ||.-Q*||_inf worst over runs, relative to ||Q*||_inf = "
        f"{summaries[0]['q_star_norm']:.4g}, converged when < {TOLERANCE:.0%}.",
        "",
        "| rule | final online error | final target error | relative error | converged |",
        "|---|---:|---:|---:|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {s['rule']} | {s['final_error_online']:.3e} | {s['final_error_target']:.3e} | "
            f"{s['relative_error']:.3%} | {'yes' if s['converged'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def _plot(results: list[TabularResult], q_star_norm: float, mdp: FiniteMDP, args: argparse.Namespace,
          out: Path) -> list[Path]:
    """Relative error against step (log-log), online and target panels; returns the written paths."""
    # Figure + Agg canvas directly: no pyplot global state and no backend switch in the caller's process.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    scale = q_star_norm if q_star_norm > 0 else 1.0
    for ax, table, attr in ((axes[0], "online table Q", "err_online"), (axes[1], "target table Q⁻", "err_target")):
        for i, result in enumerate(results):
            rel = np.maximum(getattr(result, attr) / scale, _PLOT_FLOOR)
            color = f"C{i}"
            # Distinct dashes too: rules with identical curves (e.g. sgt2 with --target-init copy is target-free,
            # agt2 equals soft in sync mode) stay visible.
            ax.plot(result.steps, np.median(rel, axis=0), color=color, linestyle=_LINESTYLES[i % len(_LINESTYLES)],
                    label=result.rule)
            ax.fill_between(result.steps, rel.min(axis=0), rel.max(axis=0), color=color, alpha=0.2, linewidth=0)
        ax.axhline(TOLERANCE, color="0.4", linestyle="--", linewidth=1, label=f"{TOLERANCE:.0%} tolerance")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"step ({args.sampling})")
        ax.set_title(table)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("‖Q_t − Q*‖∞ / ‖Q*‖∞")
    axes[1].legend(loc="lower left", fontsize="small")
    fig.suptitle(f"{mdp.name} (γ = {mdp.gamma}), {args.step_size} step size: median over {args.runs} runs, "
                 "band = min..max")
    paths = [out / "convergence.png", out / "convergence.pdf"]
    for path in paths:
        fig.savefig(path, dpi=120)
    return paths


def main(args: argparse.Namespace) -> int:
    """Run the ``convergence`` command; returns the exit status (0).

    Raises:
        ValueError: one-line message for any bad flag, spec or output path (the CLI prints it).
        WriteError: the output files could not be written (disk full, ...).
    """
    rules = parse_rules(args.rules)
    mdp = parse_mdp_spec(args.mdp)
    settings = _settings(args)  # every knob checked before the first rule spends its budget
    for rule in rules:
        check_settings(rule, settings, mdp.gamma)
    # Fail on a bad output path before spending the run time.
    out = None if args.json else _prepare_out(args.out)
    q_star = value_iteration(mdp)
    q_star_norm = float(np.max(np.abs(q_star)))
    results, summaries = [], []
    for rule in rules:
        start = time.perf_counter()
        result = run_tabular(mdp.P, mdp.R, mdp.gamma, rule, settings, seed=args.seed, q_star=q_star)
        summary = _summary(result, mdp, q_star_norm, args, time.perf_counter() - start)
        if args.json:
            print(json.dumps(_nan_to_none(summary), allow_nan=False), flush=True)
        results.append(result)
        summaries.append(summary)
    if out is not None:
        table = _markdown(summaries, mdp, args)
        md_path = out / "convergence.md"
        try:
            md_path.write_text(table, encoding="utf-8")
            paths = _plot(results, q_star_norm, mdp, args, out) + [md_path]
        except OSError as exc:  # disk full or the like: the user's to fix, named in one line
            raise WriteError(f"cannot write {out}: {exc.strerror or exc}") from exc
        print(table, end="")
        for path in paths:
            print(f"wrote {os.fspath(path)}")
    return 0


def _nan_to_none(summary: dict[str, Any]) -> dict[str, Any]:
    """Non-finite errors (a diverged run, e.g. SGT2 with a large eta) as null: each line stays strict JSON."""
    def clean(v: Any) -> Any:
        return None if isinstance(v, float) and not math.isfinite(v) else v
    fixed = {k: clean(v) for k, v in summary.items()}
    fixed["errors"] = [[clean(v) for v in row] for row in summary["errors"]]
    return fixed
