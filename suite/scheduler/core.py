"""``run_sweep``: expand a suite, skip what the store already has, run the rest on a backend, report.

Idempotent: a trial (by trial hash) with a FINISHED run in the experiment is skipped, whatever its outcome
(completed or diverged). Resumable: every group attempt trains with ``resume=True``, so an interrupted group
continues from its checkpoint (``<results>/checkpoints``) and its MLflow runs. A group that raises or whose
worker dies is retried up to the suite's ``retries`` times, then its trials are recorded as failed with the
error and the sweep goes on. Divergence is an outcome, not a failure: it is never retried.

Tracking outages: groups keep training while the store is away (the trainer keeps unwritten points in its
checkpoints, and a group starting meanwhile waits for the store; see :mod:`suite.scheduler.worker`). A
group that completed training while the store was unreachable is *unpushed*, not failed: its runs are left
as they are, the sweep tries once more to push it at its end, and if the store is still away the sweep
ends with a :class:`~suite.errors.TrackingError` (exit 3) naming ``targetbench push``.
"""
from __future__ import annotations

import math
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from analysis import record_names as names
from suite.errors import TrackingError, UsageError
from suite.scheduler.backend import BACKENDS, Outcome, Task
from suite.scheduler.cost import estimate
from suite.scheduler.lease import lease_name
from suite.scheduler.matrix import (Group, Trial, auto_group_size, available_gpus, default_workers, expand,
                                    make_groups, memory_group_size)
from suite.scheduler.progress import Progress, format_table
from suite.scheduler.spec import SuiteSpec, load_suite
from suite.scheduler.worker import STORE_WAIT_S

__all__ = ["run_sweep", "plan_sweep", "SweepSummary", "TrialRecord"]


@dataclass
class TrialRecord:
    agent: str
    variant: str
    env: str
    seed: int
    trial_hash: str
    status: str  # done | diverged | failed | skipped | planned | unpushed (trained; records kept in its checkpoint)
    #              | leased (another live sweep on this store holds it: not run here, see scheduler/lease.py)
    run_id: str | None = None
    final_eval_return: float | None = None
    error: str | None = None
    attempts: int = 0


@dataclass
class SweepSummary:
    """What a sweep did. ``done``, ``skipped``, ``failed``, ``diverged`` and ``unpushed`` count trials and are
    disjoint (``done`` = completed in this sweep; ``diverged`` = finished in this sweep with outcome diverged;
    ``unpushed`` = trained, but the tracking store was unreachable at the end: ``targetbench push``; ``leased`` =
    left to another sweep running on the same store, which holds their leases)."""

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


@dataclass
class _Plan:
    suite: SuiteSpec
    trials: list[Trial]
    finished: dict[str, Any]
    pending: list[Trial]
    groups: list[Group]
    group_size: int
    workers: int
    held: dict[str, str] = field(default_factory=dict)  # trial hash -> the live sweep that holds its lease


def _abs_uri(uri: str) -> str:
    """SQLite URIs made absolute, so workers with another cwd (Ray) open the same file."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + Path(uri[len("sqlite:///"):]).resolve().as_posix()
    return uri


def plan_sweep(suite: SuiteSpec, *, workers: int, overrides: Mapping[str, str] | None, steps: int | None,
               finished: dict[str, Any], memory_budget: int | None = None,
               claim: Callable[[list[str]], Mapping[str, str]] | None = None) -> _Plan:
    """Trials still to run, grouped; ``memory_budget`` (bytes of RAM the ``workers`` share) caps the group size
    by the memory estimate (see :func:`suite.scheduler.matrix.memory_group_size`). ``claim`` leases the
    unfinished trials and returns those another live sweep holds (trial hash -> owner): they are left out."""
    _, trials = expand(suite, overrides=overrides, steps=steps)
    pending = [t for t in trials if t.trial_hash not in finished]
    held = claim([t.trial_hash for t in pending]) if claim is not None else {}
    pending = [t for t in pending if t.trial_hash not in held]
    if suite.resources.group_size:
        size = suite.resources.group_size
    else:
        n_configs = len({t.config.key for t in pending})
        most = max((sum(1 for t in pending if t.config.key == k) for k in {t.config.key for t in pending}), default=1)
        size = auto_group_size(n_configs, most, workers, gpus=available_gpus())
    if memory_budget is not None or suite.resources.num_gpus > 0:
        from suite.memory import gpu_memory

        configs = list({t.config.key: t.config for t in pending}.values())
        size = memory_group_size(configs, size, workers, host_bytes=memory_budget,
                                 num_gpus=suite.resources.num_gpus, gpu_bytes=gpu_memory())
    return _Plan(suite, trials, finished, pending, make_groups(pending, size), size, workers, dict(held))


def _store_exists(uri: str) -> bool:
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).exists()
    return True


def run_sweep(suite: str | Path | SuiteSpec, *, backend: str = "local", workers: int | None = None,
              tracking_uri: str | None = None, experiment: str | None = None, results_dir: Path = Path("results"),
              overrides: Mapping[str, str] | None = None, steps: int | None = None, dry_run: bool = False,
              progress: bool = True, ray_address: str | None = None,
              checkpoint_uri: str | None = None) -> SweepSummary:
    """Run every trial of ``suite`` that the tracking store does not have yet; see the module docstring.

    ``workers``: groups running at a time (local: default one per core; ray: CPUs of the local instance it
    starts, default one per core). ``overrides`` (``--set`` strings) apply to every trial on top of the suite's.
    ``steps`` replaces the suite's step budget. ``dry_run`` only plans: trials are ``planned`` (or ``skipped``
    when an existing store already has them) and ``estimate`` says the cost. ``checkpoint_uri``: where the
    groups' checkpoints live (:mod:`suite.checkpoint_store`; default ``RESULTS/checkpoints``, and for the Ray
    backend with an http(s) tracking URI the tracking server's artifact store). With a remote checkpoint store
    on Ray, each worker keeps its files in a folder of its own node (``$TARGETBENCH_NODE_DIR``, default
    ``<tmp>/targetbench-node``): the nodes share nothing but the MLflow server (and the checkpoint store).
    """
    from suite.tracking import default_tracking_uri

    spec = suite if isinstance(suite, SuiteSpec) else load_suite(suite)
    if backend not in BACKENDS:
        raise UsageError(f"--backend {backend!r} is not valid; allowed: {', '.join(BACKENDS)}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise UsageError(f"--workers {workers!r} is not valid; allowed: a positive integer")
    if steps is not None and steps < 1:
        raise UsageError(f"--steps {steps} is not valid; allowed: a positive integer")
    n_workers = workers or default_workers()
    results_dir = Path(results_dir)
    uri = tracking_uri or default_tracking_uri(results_dir)
    experiment = experiment or spec.default_experiment
    t0 = time.perf_counter()
    from suite.checkpoint_store import TRACKING, is_remote_uri, open_checkpoint_store

    if checkpoint_uri is None and backend == "ray" and uri.startswith(("http://", "https://")):
        checkpoint_uri = TRACKING  # a cluster: the MLflow server is the one thing every node reaches
    if is_remote_uri(checkpoint_uri):  # a bad URL is a usage error before anything runs
        open_checkpoint_store(checkpoint_uri, tracking_uri=uri, experiment=experiment,
                              checkpoint_dir=results_dir / "checkpoints")

    # Validate the whole matrix before touching the store.
    expand(spec, overrides=overrides, steps=steps)
    store = leases = None
    if dry_run:
        finished: dict[str, Any] = {}
        if _store_exists(uri):
            try:
                from suite.scheduler.store import StoreView
                from suite.tracking import ensure_store

                if not uri.startswith("sqlite:///"):
                    ensure_store(uri)  # a quick reachability check (no retries) before querying a server
                finished = StoreView(uri, experiment, create=False).finished()
            except Exception:
                finished = {}
    else:
        from suite.scheduler.store import StoreView
        from suite.tracking import ensure_store

        results_dir.mkdir(parents=True, exist_ok=True)
        ensure_store(uri)  # once, before any worker opens it
        store = StoreView(uri, experiment, results_dir / "artifacts")
        finished = store.finished()
        from suite.scheduler.lease import LeaseBook

        try:
            leases = LeaseBook(store.client, store.experiment_id).__enter__()  # left in the `finally` below
        except Exception as exc:  # a store without a model registry: run as before, unprotected
            print(f"[sweep] no trial leases in this store ({str(exc).splitlines()[0][:200]}); another sweep on it "
                  "could run the same trials", file=sys.stderr)
        try:  # what a killed sweep could not settle: each finished trial keeps only its FINISHED run
            # never a run whose trial another live sweep holds
            store.prune_superseded(finished, live=leases.live() if leases is not None else ())
        except Exception as exc:  # bookkeeping must not stop the sweep
            print(f"[sweep] could not soft-delete superseded runs: {exc}", file=sys.stderr)
    from suite.memory import available_memory

    # Ray on a cluster: groups run on other nodes, whose memory each worker checks itself
    budget = None if backend == "ray" and (ray_address or os.environ.get("RAY_ADDRESS")) else available_memory()
    try:
        return _run_planned(spec, backend=backend, n_workers=n_workers, workers=workers, uri=uri,
                            experiment=experiment, results_dir=results_dir, overrides=overrides, steps=steps,
                            dry_run=dry_run, progress=progress, ray_address=ray_address, store=store,
                            finished=finished, budget=budget, leases=leases, t0=t0,
                            checkpoint_uri=checkpoint_uri)
    finally:
        if leases is not None:
            leases.__exit__(None, None, None)


def _run_planned(spec: SuiteSpec, *, backend: str, n_workers: int, workers: int | None, uri: str, experiment: str,
                 results_dir: Path, overrides: Mapping[str, str] | None, steps: int | None, dry_run: bool,
                 progress: bool, ray_address: str | None, store: Any, finished: dict[str, Any],
                 budget: int | None, leases: Any, t0: float, checkpoint_uri: str | None = None) -> SweepSummary:
    """The sweep once the store is open: plan (leasing the trials it runs), run the groups, settle them."""
    plan = plan_sweep(spec, workers=n_workers, overrides=overrides, steps=steps, finished=finished,
                      memory_budget=budget, claim=None if leases is None else (lambda hs: leases.acquire(hs)[1]))
    summary = SweepSummary(suite=spec.name, experiment=experiment, tracking_uri=uri, backend=backend,
                           groups=len(plan.groups), group_size=plan.group_size, workers=n_workers, dry_run=dry_run,
                           estimate=estimate(plan.groups, n_workers))
    records: dict[str, TrialRecord] = {}
    for t in plan.trials:
        if t.trial_hash in finished:
            run = finished[t.trial_hash]
            records[t.trial_hash] = TrialRecord(t.agent, t.variant, t.env, t.seed, t.trial_hash, "skipped",
                                                run_id=run.info.run_id,
                                                final_eval_return=run.data.metrics.get(names.EVAL_RETURN))
        elif t.trial_hash in plan.held:
            records[t.trial_hash] = TrialRecord(t.agent, t.variant, t.env, t.seed, t.trial_hash, "leased",
                                                error=f"being run by sweep {plan.held[t.trial_hash]} on this store")
        else:
            records[t.trial_hash] = TrialRecord(t.agent, t.variant, t.env, t.seed, t.trial_hash, "planned")
    if dry_run and plan.groups:
        from suite.scheduler.cost import gpu_packing, node_estimates

        res = spec.resources
        summary.packing = gpu_packing(plan.groups, res.num_gpus)
        summary.nodes = node_estimates(plan.groups, res.num_cpus, res.num_gpus)
    if dry_run or not plan.groups:
        summary.trials = list(records.values())
        _count(summary)
        summary.wall_s = round(time.perf_counter() - t0, 2)
        return summary

    abs_uri = _abs_uri(uri)
    from suite.checkpoint_store import is_remote_uri

    remote = is_remote_uri(checkpoint_uri)
    checkpoint_dir = Path(checkpoint_uri) if checkpoint_uri and not remote else results_dir / "checkpoints"
    tasks = []
    for g in plan.groups:
        job = {"agent": g.config.agent, "env": g.config.env, "seeds": list(g.seeds), "steps": g.config.steps,
               "overrides": g.config.overrides, "variant": g.config.variant, "suite": spec.name,
               "tracking_uri": abs_uri, "experiment": experiment, "results_dir": str(results_dir.resolve()),
               "checkpoint_dir": str(checkpoint_dir.resolve()), "store_wait_s": STORE_WAIT_S,
               "checkpoint_uri": checkpoint_uri if remote else None, "node_local": remote and backend == "ray",
               "leases": [lease_name(leases.experiment_id, h) for h in g.trial_hashes] if leases else []}
        tasks.append(Task(g, job, spec.retries, spec.resources.num_cpus, spec.resources.num_gpus))

    lock = threading.Lock()
    unpushed: list[Task] = []

    def on_outcome(task: Task, out: Outcome) -> None:
        from suite.scheduler.worker import job_tags

        g = task.group
        tags = job_tags(task.job)
        with lock:
            if not out.ok and (out.error or "").startswith("UnpushedError"):
                # Trained and checkpointed; only the records are missing. Its runs must not be marked failed.
                unpushed.append(task)
                for h in g.trial_hashes:
                    records[h].status, records[h].error, records[h].attempts = "unpushed", out.error, out.attempts
                return
            if not out.ok and (out.error or "").startswith("TrackingError"):
                # This group waited for the store as long as a group waits, in vain: groups starting later
                # should not each wait again (the sweep would take hours to fail).
                for t in tasks:
                    t.job["store_wait_s"] = 0
            try:
                if out.ok:
                    store.settle(g.trial_hashes, [r["run_id"] for r in out.results], {**tags, **_cost_tags(out)})
                else:
                    store.record_failure([{"agent": g.config.agent, "env": g.config.env, "seed": s,
                                           "trial_hash": h} for s, h in zip(g.seeds, g.trial_hashes)],
                                         out.error or "failed", tags)
            except Exception as exc:  # bookkeeping must not stop the sweep
                print(f"[sweep] could not update run tags for {g.label}: {exc}", file=sys.stderr)
            if leases is not None:
                leases.release(g.trial_hashes)  # settled: another sweep may take them (it finds them finished)
            by_hash = {r["trial_hash"]: r for r in out.results}
            for s, h in zip(g.seeds, g.trial_hashes):
                rec = records[h]
                rec.attempts = out.attempts
                if out.ok and h in by_hash:
                    r = by_hash[h]
                    rec.status = "diverged" if r.get("status") == "diverged" else "done"
                    rec.run_id, rec.final_eval_return = r["run_id"], r.get("final_eval_return")
                else:
                    rec.status, rec.error = "failed", out.error

    if progress:
        est = summary.estimate
        print(f"sweep {spec.name}: {len(plan.pending)} trials to run in {len(plan.groups)} groups (<= {plan.group_size}"
              f" seeds each), {len(plan.trials) - len(plan.pending)} already finished; backend {backend}, "
              f"{n_workers} workers; estimated {est['wall_s'] / 60:.1f} min -> {uri} (experiment {experiment})",
              file=sys.stderr, flush=True)
    bar = Progress(plan.groups, enabled=progress)
    try:
        if backend == "local":
            from suite.scheduler.local import LocalBackend

            LocalBackend(n_workers).run(tasks, bar, on_outcome)
        else:
            from suite.scheduler.ray_backend import RayBackend

            ray_backend = RayBackend(workers, ray_address)
            try:
                ray_backend.run(tasks, bar, on_outcome)
            finally:
                summary.lost_attempts = ray_backend.lost
    finally:
        bar.close()
    if unpushed:
        _push_unpushed(unpushed, records, store, progress, uri, experiment)
    summary.trials = list(records.values())
    _count(summary)
    summary.wall_s = round(time.perf_counter() - t0, 2)
    if progress:
        print(format_table(summary.trials), file=sys.stderr)
        print(f"sweep {spec.name}: done {summary.done}, diverged {summary.diverged}, skipped {summary.skipped}, "
              f"failed {summary.failed}, unpushed {summary.unpushed} in {summary.wall_s / 60:.1f} min",
              file=sys.stderr, flush=True)
    if summary.unpushed:
        failed = f"; {summary.failed} other trials failed" if summary.failed else ""
        err = TrackingError(f"{summary.unpushed} trials finished training but the tracking store {uri} was "
                            f"unreachable when they ended{failed}; their records are kept in checkpoints under "
                            f"{results_dir / 'checkpoints'}: once the store is back, run `targetbench push "
                            f"--results {results_dir}` (or rerun the sweep)")
        err.summary = summary  # type: ignore[attr-defined]  (callers that want the table still get it)
        raise err
    return summary


def _cost_tags(out: Outcome) -> dict[str, str]:
    """What the group cost, for the reference-results tables (analysis/classic_tables.py): ``group_wall_s`` (training
    wall time over every resumed attempt) and ``group_cpu_s`` (CPU time of the last attempt's worker process,
    where the backend reports it)."""
    from analysis import record_names as names

    first = out.results[0] if out.results else {}
    tags = {}
    if first.get("wall_s") is not None:
        tags[names.GROUP_WALL_S] = str(first["wall_s"])
    if first.get("group_cpu_s") is not None:
        tags[names.GROUP_CPU_S] = str(first["group_cpu_s"])
    return tags


def _push_unpushed(tasks: list[Task], records: dict[str, TrialRecord], store: Any, progress: bool, uri: str,
                   experiment: str) -> None:
    """One more try, at the end of the sweep, to write the records of groups that finished training while the
    store was away (the outage may be over). Only complete checkpoints are pushed: nothing trains here. A
    remote checkpoint store's checkpoint is fetched into this machine's checkpoint folder first."""
    from suite.checkpoint_store import open_checkpoint_store
    from suite.push import push_checkpoint
    from suite.scheduler.worker import job_tags
    from suite.trainer import checkpoint_path
    from suite.trial import build_trial

    if progress:
        print(f"[sweep] pushing the records of {sum(len(t.group.seeds) for t in tasks)} trials that finished "
              "while the tracking store was unreachable", file=sys.stderr, flush=True)
    for task in tasks:
        job = task.job
        try:
            trial = build_trial(job["agent"], job["env"], job["seeds"], steps=job.get("steps"),
                                overrides=job.get("overrides") or {})
            path = checkpoint_path(trial, Path(job["checkpoint_dir"]))
            if job.get("checkpoint_uri"):
                open_checkpoint_store(job["checkpoint_uri"], tracking_uri=uri, experiment=experiment,
                                      checkpoint_dir=path.parent).fetch(path.name, path)
            results = push_checkpoint(path, results_dir=Path(job["results_dir"]))
        except Exception as exc:  # still unreachable, or anything else: the trials stay unpushed, with the reason
            for h in task.group.trial_hashes:
                records[h].error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"[:500]
            continue
        try:
            store.settle(task.group.trial_hashes, [r.run_id for r in results], job_tags(job))
        except Exception as exc:  # bookkeeping must not stop the sweep
            print(f"[sweep] could not update run tags for {task.group.label}: {exc}", file=sys.stderr)
        for r in results:
            rec = records.get(r.trial_hash)
            if rec is not None:
                rec.status = "diverged" if r.status == "diverged" else "done"
                rec.run_id, rec.final_eval_return, rec.error = r.run_id, r.final_eval_return, None


def _count(summary: SweepSummary) -> None:
    for name in ("done", "skipped", "failed", "diverged", "unpushed", "planned", "leased"):
        setattr(summary, name, sum(1 for t in summary.trials if t.status == name))
