"""``targetbench verify``: rerun reference runs from their recorded configs and compare with the shipped data.

Reads the per-run data of a results folder (``--reference``, default ``docs/results``: ``runs/*.csv.gz``), picks
the runs (``--agent``, ``--env``, ``--sample N`` drawn with ``--seed``), rebuilds each run's trial from its
``param.*`` columns (refused, in the report, when the rebuilt trial hash is not the recorded one: the code's
defaults changed since the run), and retrains the seeds of one recorded group together in one process, as they
were recorded (a seed's result does not depend on its batch). Per run it prints whether ``params_sha256`` and
every evaluation point match, else the largest difference and the likely cause (:mod:`analysis.verification`);
where runs differ, P(rerun > shipped) per (agent, environment), the check for statistical equivalence.

Guarantee (docs/results/README.md): bitwise identical on the same processor kind with the same package versions
and code; statistically equivalent elsewhere. Exit 0 when every rerun is identical, :data:`DIFFERS_EXIT` when
one differs, 2 for bad input. The reruns are recorded in a temporary store, or under ``--results`` if given.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from suite.errors import UsageError

__all__ = ["add_arguments", "main", "DIFFERS_EXIT", "overrides_of"]

#: exit status when a rerun differs from the shipped data
DIFFERS_EXIT = 6
DEFAULT_REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "results"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``verify`` command's flags to ``p``."""
    p.add_argument("--agent", action="append", default=[], help="only this agent's runs (repeatable)")
    p.add_argument("--env", action="append", default=[], help="only this environment's runs (repeatable)")
    p.add_argument("--sample", type=int, default=None, help="rerun N of the chosen runs, drawn at random")
    p.add_argument("--seed", type=int, default=0, help="the draw of --sample (default 0)")
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE,
                   help="results folder whose runs/ are verified (default: docs/results)")
    p.add_argument("--results", type=Path, default=None,
                   help="record the reruns in RESULTS/mlflow.db, experiment verify (default: a temporary store)")
    p.add_argument("--json", action="store_true", help="one JSON object per run, then one for the summary")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def overrides_of(row) -> dict[str, str]:
    """The ``--set`` overrides that rebuild a run's trial from its recorded params (``param.agent.*`` as agent
    fields, ``param.env.*`` and ``param.train.*`` as they are)."""
    out = {}
    for col, value in row.items():
        if not isinstance(col, str) or not col.startswith("param.") or not isinstance(value, str):
            continue
        key = col[len("param."):]
        if key.startswith("agent."):
            out[key[len("agent."):]] = value
        elif key.startswith(("env.", "train.")):
            out[key] = value
    return out


def _choose(table, args: argparse.Namespace):
    """The runs to verify (one row per run), after the filters and the draw."""
    import numpy as np

    runs = table.drop_duplicates(["experiment", "run_id"] if "run_id" in table else ["experiment", "trial_hash"])
    for flag, col in (("agent", "agent"), ("env", "env")):
        wanted = getattr(args, flag)
        known = sorted(runs[col].astype(str).unique())
        bad = [w for w in wanted if w not in known]
        if bad:
            raise UsageError(f"--{flag} {bad[0]!r} has no runs in {args.reference}; allowed: {', '.join(known)}")
        if wanted:
            runs = runs[runs[col].isin(wanted)]
    runs = runs[runs["status"] == "FINISHED"]
    if args.sample is not None:
        if args.sample < 1:
            raise UsageError(f"--sample {args.sample} is not valid; allowed: a positive integer")
        if args.sample < len(runs):
            pick = np.random.default_rng(args.seed).choice(len(runs), args.sample, replace=False)
            runs = runs.iloc[np.sort(pick)]
    return runs


def _here() -> tuple[dict[str, str], str]:
    import torch

    from suite.provenance import git_state, provenance_tags

    return provenance_tags(torch.device("cpu")), git_state()[0]


def main(args: argparse.Namespace) -> int:
    """Run ``targetbench verify``; returns 0 (all identical), :data:`DIFFERS_EXIT` or raises a one-line error."""
    import pandas as pd

    from analysis.run_table import read_reference
    from analysis.verification import compare_run, equivalence, likely_cause
    from suite.trainer import train
    from suite.trial import build_trial

    try:
        tables = read_reference(args.reference)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    table = pd.concat(tables.values(), ignore_index=True)
    chosen = _choose(table, args)
    if chosen.empty:
        raise UsageError("no finished run matches --agent/--env; nothing to verify")
    here, commit = _here()
    say = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    key = "run_id" if "run_id" in table else "trial_hash"
    checks, finals, not_rerun = [], [], 0
    with tempfile.TemporaryDirectory(prefix="targetbench-verify-") as tmp:
        results = args.results or Path(tmp)
        uri = f"sqlite:///{results.as_posix()}/mlflow.db"
        group_col = "tag.group_hash" if "tag.group_hash" in chosen else key
        for _, group in chosen.groupby([chosen["experiment"], chosen[group_col].fillna(chosen[key])], sort=True):
            first = group.iloc[0]
            seeds = tuple(int(s) for s in group["seed"])
            label = f"{first['agent']} {first['env']} seeds {','.join(map(str, seeds))}"
            trial = build_trial(str(first["agent"]), str(first["env"]), seeds, overrides=overrides_of(first))
            rebuilt = {int(s): trial.trial_hash(int(s)) for s in seeds}
            wrong = [r for r in group.itertuples(index=False) if rebuilt[int(r.seed)] != r.trial_hash]
            if wrong:
                not_rerun += len(group)
                print(f"{label}: NOT RERUN: the rebuilt trial hash {rebuilt[int(wrong[0].seed)]} is not the recorded "
                      f"{wrong[0].trial_hash} (this code resolves the recorded config differently: verify from the "
                      f"run's commit {str(first['commit'])[:12]})")
                continue
            say(f"verify: rerunning {label} ({trial.train.steps:,} env steps)")
            for res in train(trial, tracking_uri=uri, experiment="verify", results_dir=results, progress=say):
                shipped = table[(table["experiment"] == first["experiment"]) & (table["trial_hash"] == res.trial_hash)]
                check = compare_run(shipped, res.eval_returns, res.params_sha256,
                                    cause=likely_cause(shipped.iloc[0].to_dict(), here, commit))
                checks.append(check)
                finals.append({"agent": check.agent, "env": check.env, "rerun": res.final_eval_return,
                               "shipped": float(shipped.dropna(subset=["step"]).sort_values("step")["eval_return"]
                                                .iloc[-1]) if shipped["step"].notna().any() else float("nan")})
                print(json.dumps(check.to_json()) if args.json else check.line(), flush=True)
    same = sum(c.identical for c in checks)
    summary = {"runs": len(checks), "identical": same, "differ": len(checks) - same, "not_rerun": not_rerun}
    if checks and same < len(checks):
        f = pd.DataFrame(finals)
        eq = equivalence(f.rename(columns={"shipped": "final"}), f.rename(columns={"rerun": "final"}))
        summary["equivalence"] = eq.to_dict(orient="records")
        if not args.json:
            for r in eq.itertuples(index=False):
                print(f"equivalence {r.agent} {r.env}: P(rerun > shipped) = {r.probability:.2f} "
                      f"[{r.ci_low:.2f}, {r.ci_high:.2f}] over {r.runs} runs: "
                      + ("consistent (0.5 inside)" if r.consistent else "NOT consistent (0.5 outside)"))
    print(json.dumps(summary) if args.json else
          f"verify: {same} of {len(checks)} reruns identical to the shipped data ({args.reference})"
          + (f"; {not_rerun} runs not rerun (their config no longer rebuilds)" if not_rerun else ""))
    return 0 if same == len(checks) and not not_rerun else DIFFERS_EXIT
