"""What a sweep did: one :class:`TrialRecord` per trial and the :class:`SweepSummary` (``sweep --json``)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from analysis import record_names as names
from suite.scheduler.cost import estimate
from suite.scheduler.plan import Plan

__all__ = ["TrialRecord", "SweepSummary", "summarise", "count", "STATUSES"]

#: every status a trial can end a sweep with (``SweepSummary`` has a count of each)
STATUSES = ("done", "skipped", "failed", "diverged", "unpushed", "planned", "leased", "unstarted")


@dataclass
class TrialRecord:
    """One trial of a sweep: who it is, how it ended (``status``), its run and final evaluation."""

    agent: str
    variant: str
    env: str
    seed: int
    trial_hash: str
    status: str  # done | diverged | failed | skipped | planned | unpushed (trained; records kept in its checkpoint)
    #              | leased (another live sweep on this store holds it: not run here, see scheduler/lease.py)
    #              | unstarted (the tracking store did not answer when its group was to start: nothing ran)
    run_id: str | None = None
    final_eval_return: float | None = None
    error: str | None = None
    attempts: int = 0


@dataclass
class SweepSummary:
    """What a sweep did. ``done``, ``skipped``, ``failed``, ``diverged`` and ``unpushed`` count trials and are
    disjoint (``done`` = completed in this sweep; ``diverged`` = finished in this sweep with outcome diverged;
    ``unpushed`` = trained, but the tracking store was unreachable at the end: ``targetbench push``; ``leased`` =
    left to another sweep running on the same store, which holds their leases; ``unstarted`` = not run because
    the store did not answer when their group was to start: the next sweep runs them)."""

    suite: str
    experiment: str
    tracking_uri: str
    backend: str
    trials: list[TrialRecord] = field(default_factory=list)
    done: int = 0
    skipped: int = 0
    failed: int = 0
    diverged: int = 0
    unpushed: int = 0
    planned: int = 0
    leased: int = 0
    unstarted: int = 0
    lost_attempts: int = 0  # ray: group attempts resubmitted because their node or worker died
    groups: int = 0
    group_size: int = 0
    workers: int = 1
    wall_s: float = 0.0
    estimate: dict[str, float] = field(default_factory=dict)
    dry_run: bool = False
    packing: list[dict[str, Any]] = field(default_factory=list)  # dry run: groups per GPU and memory per config
    nodes: list[dict[str, Any]] = field(default_factory=list)  # dry run: wall time and node-hours per node type

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for t in out["trials"]:
            v = t.get("final_eval_return")
            if isinstance(v, float) and not math.isfinite(v):
                t["final_eval_return"] = None
        return out


def summarise(plan: Plan, suite: str, experiment: str, uri: str, backend: str, workers: int, *,
              dry_run: bool) -> tuple[SweepSummary, dict[str, TrialRecord]]:
    """The summary of a planned sweep, with one record per trial (skipped, leased or planned)."""
    summary = SweepSummary(suite=suite, experiment=experiment, tracking_uri=uri, backend=backend,
                           groups=len(plan.groups), group_size=plan.group_size, workers=workers, dry_run=dry_run,
                           estimate=estimate(plan.groups, workers))
    records: dict[str, TrialRecord] = {}
    for t in plan.trials:
        rec = TrialRecord(t.agent, t.variant, t.env, t.seed, t.trial_hash, "planned")
        if t.trial_hash in plan.finished:
            run = plan.finished[t.trial_hash]
            rec.status, rec.run_id = "skipped", run.info.run_id
            rec.final_eval_return = run.data.metrics.get(names.EVAL_RETURN)
        elif t.trial_hash in plan.held:
            rec.status, rec.error = "leased", f"being run by sweep {plan.held[t.trial_hash]} on this store"
        records[t.trial_hash] = rec
    summary.trials = list(records.values())
    return summary, records


def count(summary: SweepSummary) -> None:
    """Set the summary's count of each status from its trials."""
    for name in STATUSES:
        setattr(summary, name, sum(1 for t in summary.trials if t.status == name))
