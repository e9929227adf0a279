"""A rerun against the shipped per-run data (``targetbench verify``): identical, or how far apart and why.

:func:`compare_run` sets one rerun beside its shipped run: ``params_sha256`` equal or not, every evaluation point
equal or not, the largest difference and where. :func:`likely_cause` names what differs between the machine of
the rerun and the one recorded with the run (package versions, processor, BLAS kernel, the code's commit), the
usual reasons for bits to differ. :func:`equivalence` is the check where runs are not bitwise identical: per
(agent, environment), P(rerun > shipped) over final returns with a bootstrap interval (0.5 inside it: no
detectable difference).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from analysis import stats

__all__ = ["RunCheck", "compare_run", "likely_cause", "equivalence", "PROVENANCE_KEYS"]

#: what both the shipped run and the rerun record that decides the bits: shown name → tag (``tag.<name>``)
PROVENANCE_KEYS = {"processor": "cpu_model", "BLAS kernel": "blas_kernel", "platform": "platform",
                   "device": "torch_device"}


@dataclass
class RunCheck:
    """One rerun against its shipped run."""

    agent: str
    env: str
    seed: int
    trial_hash: str
    params_equal: bool
    points: int
    points_equal: int
    max_diff: float = 0.0
    max_diff_step: int | None = None
    missing_steps: list[int] = field(default_factory=list)
    cause: str = ""

    @property
    def identical(self) -> bool:
        return self.params_equal and self.points_equal == self.points and not self.missing_steps

    def line(self) -> str:
        head = f"{self.agent} {self.env} seed {self.seed}"
        if self.identical:
            return f"{head}: identical (params_sha256 and {self.points}/{self.points} evaluation points)"
        parts = [f"params_sha256 {'equal' if self.params_equal else 'differs'}",
                 f"{self.points_equal}/{self.points} evaluation points equal"]
        if self.max_diff_step is not None and self.max_diff > 0:
            parts.append(f"largest difference {self.max_diff:.4g} at step {self.max_diff_step:,}")
        if self.missing_steps:
            parts.append(f"{len(self.missing_steps)} shipped points not produced (first at step "
                         f"{self.missing_steps[0]:,})")
        return f"{head}: DIFFERS: {'; '.join(parts)}; likely cause: {self.cause}"

    def to_json(self) -> dict:
        return {"agent": self.agent, "env": self.env, "seed": self.seed, "trial_hash": self.trial_hash,
                "identical": self.identical, "params_equal": self.params_equal, "points": self.points,
                "points_equal": self.points_equal, "max_diff": self.max_diff, "max_diff_step": self.max_diff_step,
                "missing_steps": self.missing_steps, "likely_cause": self.cause}


def compare_run(shipped: pd.DataFrame, rerun_points: Sequence[Sequence[float]], rerun_sha: str, *,
                cause: str = "") -> RunCheck:
    """``shipped``: the run's rows of the per-run data; ``rerun_points``: ``[step, value]`` of the rerun."""
    first = shipped.iloc[0]
    ship = shipped.dropna(subset=["step"]).set_index(shipped.dropna(subset=["step"])["step"].astype(int))["eval_return"]
    mine = {int(s): float(v) for s, v in rerun_points}
    diffs = {s: abs(float(v) - mine[s]) if s in mine else np.nan for s, v in ship.items()}
    equal = sum(1 for s, d in diffs.items() if d == 0.0 or (np.isnan(ship[s]) and np.isnan(mine.get(s, 0.0))))
    present = {s: d for s, d in diffs.items() if np.isfinite(d)}
    worst = max(present, key=lambda s: (present[s], -s)) if present else None
    return RunCheck(agent=str(first["agent"]), env=str(first["env"]), seed=int(first["seed"]),
                    trial_hash=str(first["trial_hash"]), params_equal=str(first["params_sha256"]) == rerun_sha,
                    points=len(ship), points_equal=equal, max_diff=float(present[worst]) if worst is not None else 0.0,
                    max_diff_step=worst, missing_steps=sorted(s for s in diffs if s not in mine), cause=cause)


def likely_cause(recorded: Mapping[str, object], here: Mapping[str, str], commit_here: str) -> str:
    """What differs between the run's record (its per-run row: ``commit``, ``tag.*``) and this machine
    (``here``: tag name → value, as a run would record it; ``commit_here``: the code's commit now)."""
    def val(v: object) -> str | None:
        return None if v is None or (isinstance(v, float) and np.isnan(v)) or str(v) == "" else str(v)

    found, unknown = [], []
    versions = sorted({k[len("tag.version."):] for k in recorded if str(k).startswith("tag.version.")}
                      | {k[len("version."):] for k in here if k.startswith("version.")})
    for pkg in versions:
        a, b = val(recorded.get(f"tag.version.{pkg}")), val(here.get(f"version.{pkg}"))
        if a is not None and b is not None and a != b:
            found.append(f"{pkg} {b} here vs {a} recorded")
    for shown, tag in PROVENANCE_KEYS.items():
        a, b = val(recorded.get(f"tag.{tag}")), val(here.get(tag))
        if a is None:
            unknown.append(shown)
        elif b is not None and a != b:
            found.append(f"{shown} {b} here vs {a} recorded")
    commit = val(recorded.get("commit"))
    if commit and commit_here and commit != commit_here:
        found.append(f"code at commit {commit_here[:12]} here vs {commit[:12]} recorded")
    if str(recorded.get("tag.git_dirty")) == "true":
        found.append("the run was trained from a dirty tree (uncommitted changes)")
    if found:
        return "; ".join(found)
    if unknown:
        return (f"not found in what both record ({', '.join(unknown)} not recorded by the run): a different "
                "processor or BLAS kernel is the usual cause")
    return ("none of the recorded packages, processor, BLAS kernel or commit differ: a change not captured by "
            "them, or nondeterminism (please report it)")


def equivalence(shipped: pd.DataFrame, rerun: pd.DataFrame, *, reps: int = stats.DEFAULT_REPS,
                seed: int = 0) -> pd.DataFrame:
    """Per (agent, env): P(rerun > shipped) over the final evaluation returns, with a 95 % bootstrap interval.
    ``shipped`` and ``rerun``: columns agent, env, final. Columns agent, env, runs, probability, ci_low, ci_high,
    consistent (0.5 lies in the interval)."""
    rows = []
    for (agent, env), g in rerun.groupby(["agent", "env"], sort=True):
        ship = shipped[(shipped["agent"] == agent) & (shipped["env"] == env)]["final"].to_numpy(float)
        est, lo, hi = stats.probability_of_improvement([g["final"].to_numpy(float)], [ship], reps=reps, seed=seed,
                                                       name=f"verify/{agent}/{env}")
        rows.append({"agent": agent, "env": env, "runs": len(g), "probability": est, "ci_low": lo, "ci_high": hi,
                     "consistent": bool(np.isfinite(lo) and lo <= 0.5 <= hi)})
    return pd.DataFrame(rows, columns=["agent", "env", "runs", "probability", "ci_low", "ci_high", "consistent"])
