"""``run_sweep``: expand a suite, skip what the store already has, run the rest on a backend, report.

Idempotent: a trial (by trial hash) with a FINISHED run in the experiment is skipped, whatever its outcome
(completed or diverged). Resumable: every group attempt trains with ``resume=True``, so an interrupted group
continues from its checkpoint (``<results>/checkpoints``) and its MLflow runs. A group that raises or whose
worker dies is retried up to the suite's ``retries`` times, then its trials are recorded as failed with the
error and the sweep goes on. Divergence is an outcome, not a failure: it is never retried.

Tracking outages. Every call the driver makes to the store (reading what is finished, the trial leases and
their heartbeats, pruning, settling groups, the final push) goes through one outage policy
(:class:`suite.store_retry.Outage`): a store that stops answering is retried with backoff for up to
``store_wait_s`` (then calls try once each until it answers again). Groups keep training meanwhile (the trainer
keeps unwritten points in its checkpoints; a group starting meanwhile waits for the store, see
:mod:`suite.scheduler.worker`). How an attempt failed is decided by the exception's type in the worker
(:class:`~suite.scheduler.backend.Failure`):

* a store that is away before any group ran (planning, taking leases): exit 3, one line; nothing ran;
* a group that completed training while the store was away is *unpushed*, not failed: its runs are left as
  they are and its lease kept, the sweep pushes it at its end (after one more wait), and if the store is still
  away the sweep ends with a :class:`~suite.errors.TrackingError` (exit 3, one line) naming ``targetbench
  push``;
* a group that could not start because the store was away is *unstarted* (nothing trained, nothing recorded):
  the next sweep runs it.
"""
from __future__ import annotations

import math
import os
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from analysis import record_names as names
from suite.errors import TrackingError, UsageError
from suite.scheduler.backend import BACKENDS, Failure, Job, Outcome, Task
from suite.scheduler.lease import LeaseBook, lease_name
from suite.scheduler.matrix import Group, default_workers, expand
from suite.scheduler.plan import Plan, plan_sweep
from suite.scheduler.progress import Progress, format_table
from suite.scheduler.spec import SuiteSpec, load_suite
from suite.scheduler.sweep_summary import SweepSummary, TrialRecord, count, summarise
from suite.scheduler.store import StoreView
from suite.store_retry import STORE_WAIT_S, Outage

__all__ = ["run_sweep", "plan_sweep", "SweepSummary", "TrialRecord"]


def _abs_uri(uri: str) -> str:
    """SQLite URIs made absolute, so workers with another cwd (Ray) open the same file."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + Path(uri[len("sqlite:///"):]).resolve().as_posix()
    return uri


def _store_exists(uri: str) -> bool:
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).exists()
    return True


@dataclass(frozen=True)
class _Settings:
    """A sweep's settings, checked."""

    spec: SuiteSpec
    backend: str
    workers: int | None  # as given (ray: CPUs of a local instance; None: one per core)
    n_workers: int
    uri: str
    experiment: str
    results_dir: Path
    overrides: Mapping[str, str] | None
    steps: int | None
    progress: bool
    ray_address: str | None
    checkpoint_uri: str | None
    store_wait_s: float

    @property
    def remote_checkpoints(self) -> bool:
        from suite.checkpoint_store import is_remote_uri

        return is_remote_uri(self.checkpoint_uri)

    @property
    def checkpoint_dir(self) -> Path:
        if self.checkpoint_uri and not self.remote_checkpoints:
            return Path(self.checkpoint_uri)
        return self.results_dir / "checkpoints"


def run_sweep(suite: str | Path | SuiteSpec, *, backend: str = "local", workers: int | None = None,
              tracking_uri: str | None = None, experiment: str | None = None, results_dir: Path = Path("results"),
              overrides: Mapping[str, str] | None = None, steps: int | None = None, dry_run: bool = False,
              progress: bool = True, ray_address: str | None = None,
              checkpoint_uri: str | None = None, store_wait_s: float = STORE_WAIT_S) -> SweepSummary:
    """Run every trial of ``suite`` that the tracking store does not have yet; see the module docstring.

    ``workers``: groups running at a time (local: default one per core; ray: CPUs of the local instance it
    starts, default one per core). ``overrides`` (``--set`` strings) apply to every trial on top of the suite's.
    ``steps`` replaces the suite's step budget. ``dry_run`` only plans: trials are ``planned`` (or ``skipped``
    when an existing store already has them) and ``estimate`` says the cost. ``checkpoint_uri``: where the
    groups' checkpoints live (:mod:`suite.checkpoint_store`; default ``RESULTS/checkpoints``, and for the Ray
    backend with an http(s) tracking URI the tracking server's artifact store). With a remote checkpoint store
    on Ray, each worker keeps its files in a folder of its own node (``$TARGETBENCH_NODE_DIR``, default
    ``<tmp>/targetbench-node``): the nodes share nothing but the MLflow server (and the checkpoint store).
    ``store_wait_s``: how long the sweep (and each group as it starts) waits for a tracking store that stopped
    answering; a store that does not answer the sweep's first request is an error at once (a wrong URI).
    """
    from suite.tracking import default_tracking_uri

    spec = suite if isinstance(suite, SuiteSpec) else load_suite(suite)
    if backend not in BACKENDS:
        raise UsageError(f"--backend {backend!r} is not valid; allowed: {', '.join(BACKENDS)}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise UsageError(f"--workers {workers!r} is not valid; allowed: a positive integer")
    if steps is not None and steps < 1:
        raise UsageError(f"--steps {steps} is not valid; allowed: a positive integer")
    if not (isinstance(store_wait_s, (int, float)) and 0 <= store_wait_s < math.inf):
        raise UsageError(f"--store-wait {store_wait_s!r} is not valid; allowed: seconds >= 0")
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
    expand(spec, overrides=overrides, steps=steps)  # validate the whole matrix before touching the store
    settings = _Settings(spec, backend, workers, workers or default_workers(), uri, experiment, results_dir,
                         overrides, steps, progress, ray_address, checkpoint_uri, float(store_wait_s))
    if dry_run:
        return _dry_run(settings, t0)
    from suite.tracking import ensure_store

    results_dir.mkdir(parents=True, exist_ok=True)
    ensure_store(uri)  # once, before any worker opens it; the first contact is not waited for
    return _Sweep(settings, t0).run()


def _dry_run(s: _Settings, t0: float) -> SweepSummary:
    """Plan only: what would run, what is already finished (when the store answers at once), the cost."""
    finished: dict[str, Any] = {}
    if _store_exists(s.uri):
        try:
            from suite.tracking import ensure_store

            if not s.uri.startswith("sqlite:///"):
                ensure_store(s.uri)  # a quick reachability check (no retries) before querying a server
            finished = StoreView(s.uri, s.experiment, create=False, outage=Outage(s.uri, 0.0)).finished()
        except Exception:
            finished = {}
    plan = plan_sweep(s.spec, workers=s.n_workers, overrides=s.overrides, steps=s.steps, finished=finished,
                      memory_budget=_memory_budget(s))
    summary, _ = summarise(plan, s.spec.name, s.experiment, s.uri, s.backend, s.n_workers, dry_run=True)
    if plan.groups:
        from suite.scheduler.cost import gpu_packing, node_estimates

        res = s.spec.resources
        summary.packing = gpu_packing(plan.groups, res.num_gpus)
        summary.nodes = node_estimates(plan.groups, res.num_cpus, res.num_gpus)
    count(summary)
    summary.wall_s = round(time.perf_counter() - t0, 2)
    return summary


def _memory_budget(s: _Settings) -> int | None:
    """RAM the workers share; None for Ray on a cluster (groups run on other nodes, each checks its own)."""
    from suite.memory import available_memory

    return None if s.backend == "ray" and (s.ray_address or os.environ.get("RAY_ADDRESS")) else available_memory()


def _before_any_ran(exc: TrackingError) -> TrackingError:
    return TrackingError(f"{exc}; nothing has run: rerun the sweep once the store answers")


@contextmanager
def _lease_book(store: StoreView, say: Callable[[str], None]) -> Iterator[LeaseBook | None]:
    """This sweep's trial leases (None for a store without a model registry: the sweep runs unprotected)."""
    with ExitStack() as stack:
        try:
            leases: LeaseBook | None = stack.enter_context(
                LeaseBook(store.client, store.experiment_id, call=store.call))
        except TrackingError:
            raise
        except Exception as exc:
            print(f"[sweep] no trial leases in this store ({str(exc).splitlines()[0][:200]}); another sweep on it "
                  "could run the same trials", file=sys.stderr)
            leases = None
        yield leases


class _Sweep:
    """One sweep once its store answered: plan (leasing the trials it runs), run the groups, settle each as it
    ends, push what finished while the store was away, report."""

    def __init__(self, settings: _Settings, t0: float) -> None:
        self.s, self.t0 = settings, t0
        self.say: Callable[[str], None] = ((lambda m: print(f"[sweep] {m}", file=sys.stderr, flush=True))
                                           if settings.progress else (lambda m: None))
        from suite.tracking import public_uri

        self.outage = Outage(public_uri(settings.uri), settings.store_wait_s, say=self.say)
        self.lock = threading.Lock()
        self.tasks: list[Task] = []
        self.records: dict[str, TrialRecord] = {}
        self.unpushed: list[Task] = []
        self.unsettled: list[tuple[Task, list[str], dict[str, str]]] = []  # store away when the group ended
        self.leases: LeaseBook | None = None
        self.store: StoreView

    def run(self) -> SweepSummary:
        s = self.s
        try:
            self.store = StoreView(s.uri, s.experiment, s.results_dir / "artifacts", outage=self.outage)
            finished = self.store.finished()
        except TrackingError as exc:
            raise _before_any_ran(exc) from None
        with _lease_book(self.store, self.say) as leases:
            self.leases = leases
            try:
                self._tidy(finished)
                plan = plan_sweep(s.spec, workers=s.n_workers, overrides=s.overrides, steps=s.steps,
                                  finished=finished, memory_budget=_memory_budget(s),
                                  claim=None if leases is None else (lambda hs: leases.acquire(hs)[1]))
            except TrackingError as exc:
                raise _before_any_ran(exc) from None
            return self._execute(plan)

    def _tidy(self, finished: dict[str, Any]) -> None:
        """What a killed sweep could not settle: expired leases and records of dead sweeps are deleted, and each
        finished trial keeps only its FINISHED run (never a run whose trial another live sweep holds)."""
        live: Any = ()
        if self.leases is not None:
            try:
                cleared = self.leases.clear_expired()
                if cleared:
                    self.say(f"deleted {cleared} expired trial leases and records of dead sweeps")
            except TrackingError:
                raise
            except Exception as exc:  # bookkeeping must not stop the sweep
                self.say(f"could not clear expired trial leases: {exc}")
            live = self.leases.live()
        try:
            self.store.prune_superseded(finished, live=live)
        except TrackingError:
            raise
        except Exception as exc:  # bookkeeping must not stop the sweep
            self.say(f"could not soft-delete superseded runs: {exc}")

    def _job(self, g: Group) -> Job:
        s = self.s
        remote = s.remote_checkpoints
        return Job(agent=g.config.agent, env=g.config.env, seeds=list(g.seeds), steps=g.config.steps,
                   overrides=dict(g.config.overrides), variant=g.config.variant, suite=s.spec.name,
                   tracking_uri=_abs_uri(s.uri), experiment=s.experiment, results_dir=str(s.results_dir.resolve()),
                   checkpoint_dir=str(s.checkpoint_dir.resolve()), store_wait_s=s.store_wait_s,
                   checkpoint_uri=s.checkpoint_uri if remote else None, node_local=remote and s.backend == "ray",
                   leases=[lease_name(self.leases.experiment_id, h) for h in g.trial_hashes] if self.leases else [])

    def _execute(self, plan: Plan) -> SweepSummary:
        s = self.s
        summary, self.records = summarise(plan, s.spec.name, s.experiment, s.uri, s.backend, s.n_workers,
                                          dry_run=False)
        if plan.groups:
            self.tasks = [Task(g, self._job(g), s.spec.retries, s.spec.resources.num_cpus, s.spec.resources.num_gpus)
                          for g in plan.groups]
            if s.progress:
                est = summary.estimate
                print(f"sweep {s.spec.name}: {len(plan.pending)} trials to run in {len(plan.groups)} groups (<= "
                      f"{plan.group_size} seeds each), {len(plan.trials) - len(plan.pending)} already finished; "
                      f"backend {s.backend}, {s.n_workers} workers; estimated {est['wall_s'] / 60:.1f} min -> "
                      f"{s.uri} (experiment {s.experiment})", file=sys.stderr, flush=True)
            self._run_backend(plan, summary)
            self._last_try()
        summary.trials = list(self.records.values())
        count(summary)
        summary.wall_s = round(time.perf_counter() - self.t0, 2)
        if plan.groups and s.progress:
            print(format_table(summary.trials), file=sys.stderr)
            print(f"sweep {s.spec.name}: done {summary.done}, diverged {summary.diverged}, skipped "
                  f"{summary.skipped}, failed {summary.failed}, unpushed {summary.unpushed} in "
                  f"{summary.wall_s / 60:.1f} min", file=sys.stderr, flush=True)
        self._raise_if_incomplete(summary)
        return summary

    def _run_backend(self, plan: Plan, summary: SweepSummary) -> None:
        bar = Progress(plan.groups, enabled=self.s.progress)
        try:
            if self.s.backend == "local":
                from suite.scheduler.local import LocalBackend

                LocalBackend(self.s.n_workers).run(self.tasks, bar, self._on_outcome)
            else:
                from suite.scheduler.ray_backend import RayBackend

                ray_backend = RayBackend(self.s.workers, self.s.ray_address)
                try:
                    ray_backend.run(self.tasks, bar, self._on_outcome)
                finally:
                    summary.lost_attempts = ray_backend.lost
        finally:
            bar.close()

    # -- a group ended (called from the backend's threads) -------------------------------------------------
    def _on_outcome(self, task: Task, out: Outcome) -> None:
        from suite.scheduler.worker import job_tags

        g, tags = task.group, job_tags(task.job)
        with self.lock:
            if out.ok:
                for t in self.tasks:  # the store answers again: later groups wait for it in full
                    t.job.store_wait_s = self.s.store_wait_s
                self._settle(task, [r["run_id"] for r in out.results], {**tags, **_cost_tags(out)})
                by_hash = {r["trial_hash"]: r for r in out.results}
                for h in g.trial_hashes:
                    rec = self.records[h]
                    rec.attempts = out.attempts
                    r = by_hash.get(h)
                    if r is None:
                        rec.status, rec.error = "failed", "no result"
                        continue
                    rec.status = "diverged" if r.get("status") == "diverged" else "done"
                    rec.run_id, rec.final_eval_return = r["run_id"], r.get("final_eval_return")
                return
            for h in g.trial_hashes:
                self.records[h].attempts, self.records[h].error = out.attempts, out.error
            if out.failure is Failure.UNPUSHED:
                # Trained and checkpointed; only the records are missing: not failed, and its leases are kept
                # until it is pushed (or expire with this sweep).
                self.unpushed.append(task)
                self._mark(g, "unpushed")
                return
            if out.failure is Failure.TRACKING:
                # This group waited for the store as long as a group waits, in vain: groups starting later
                # try once each (the sweep would take hours to fail) until one gets through again.
                for t in self.tasks:
                    t.job.store_wait_s = 0
                self._mark(g, "unstarted")
            else:
                try:
                    self.store.record_failure([{"agent": g.config.agent, "env": g.config.env, "seed": s,
                                                "trial_hash": h} for s, h in zip(g.seeds, g.trial_hashes)],
                                              out.error or "failed", tags)
                except Exception as exc:  # the next sweep reruns them: they have no FINISHED run
                    self.say(f"could not record the failure of {g.label}: {exc}")
                self._mark(g, "failed")
            self._release(g)

    def _mark(self, g: Group, status: str) -> None:
        for h in g.trial_hashes:
            self.records[h].status = status

    def _release(self, g: Group) -> None:
        if self.leases is not None:
            self.leases.release(g.trial_hashes)  # settled: another sweep may take them (it finds them finished)

    def _settle(self, task: Task, keep: list[str], tags: dict[str, str]) -> None:
        """Tag the group's runs and soft-delete earlier attempts; a store away now leaves it for the end."""
        try:
            self.store.settle(task.group.trial_hashes, keep, tags)
        except TrackingError as exc:
            self.say(f"could not settle {task.group.label} now ({exc}); trying again at the end")
            self.unsettled.append((task, keep, tags))
            return
        except Exception as exc:  # bookkeeping must not stop the sweep
            self.say(f"could not update run tags for {task.group.label}: {exc}")
        self._release(task.group)

    # -- the end -------------------------------------------------------------------------------------------
    def _last_try(self) -> None:
        """Push the groups that finished while the store was away, and settle those it could not settle, after
        one more full wait for the store (the outage may be over)."""
        if not (self.unpushed or self.unsettled):
            return
        self.outage.recover()
        unsettled, self.unsettled = self.unsettled, []
        for task, keep, tags in unsettled:
            self._settle(task, keep, tags)
        if self.unpushed:
            self.say(f"pushing the records of {sum(len(t.group.seeds) for t in self.unpushed)} trials that "
                     "finished while the tracking store was unreachable")
        for task in list(self.unpushed):
            try:
                results = self.store.call(lambda: _push_group(task.job), f"pushing {task.group.label}")
            except Exception as exc:  # still unreachable, or anything else: the trials stay unpushed, with why
                for h in task.group.trial_hashes:
                    self.records[h].error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"[:500]
                continue
            self.unpushed.remove(task)
            from suite.scheduler.worker import job_tags

            self._settle(task, [r.run_id for r in results], job_tags(task.job))
            for r in results:
                rec = self.records.get(r.trial_hash)
                if rec is not None:
                    rec.status = "diverged" if r.status == "diverged" else "done"
                    rec.run_id, rec.final_eval_return, rec.error = r.run_id, r.final_eval_return, None

    def _raise_if_incomplete(self, summary: SweepSummary) -> None:
        """Exit 3 with one line when the store kept trials from being recorded, run or settled."""
        s = self.s
        parts = []
        if summary.unpushed:
            parts.append(f"{summary.unpushed} trials finished training but the tracking store {s.uri} was "
                         f"unreachable when they ended; their records are kept in checkpoints under "
                         f"{s.results_dir / 'checkpoints'}: once the store is back, run `targetbench push "
                         f"--results {s.results_dir}` (or rerun the sweep)")
        if summary.unstarted:
            parts.append(f"{summary.unstarted} trials did not start because the tracking store {s.uri} did not "
                         "answer: rerun the sweep once it does")
        if self.unsettled:
            n = sum(len(t.group.seeds) for t, _, _ in self.unsettled)
            parts.append(f"the tags of {n} finished trials and the deletion of their superseded runs are left to "
                         "the next sweep (the tracking store did not answer)")
        if not parts:
            return
        if summary.failed:
            parts.append(f"{summary.failed} other trials failed")
        err = TrackingError("; ".join(parts))
        err.summary = summary  # type: ignore[attr-defined]  (callers that want the table still get it)
        raise err


def _cost_tags(out: Outcome) -> dict[str, str]:
    """What the group cost, for the reference-results tables (analysis/classic_tables.py): ``group_wall_s`` (training
    wall time over every resumed attempt) and ``group_cpu_s`` (CPU time of the last attempt's worker process,
    where the backend reports it)."""
    first = out.results[0] if out.results else {}
    tags = {}
    if first.get("wall_s") is not None:
        tags[names.GROUP_WALL_S] = str(first["wall_s"])
    if first.get("group_cpu_s") is not None:
        tags[names.GROUP_CPU_S] = str(first["group_cpu_s"])
    return tags


def _push_group(job: Job) -> list[Any]:
    """Write the records a group's complete checkpoint kept (nothing trains); a remote checkpoint store's copy
    is fetched into this machine's checkpoint folder first."""
    from suite.checkpoint_store import open_checkpoint_store
    from suite.push import push_checkpoint
    from suite.trainer import checkpoint_path
    from suite.trial import build_trial

    trial = build_trial(job.agent, job.env, job.seeds, steps=job.steps, overrides=job.overrides)
    path = checkpoint_path(trial, Path(job.checkpoint_dir or Path(job.results_dir) / "checkpoints"))
    if job.checkpoint_uri:
        open_checkpoint_store(job.checkpoint_uri, tracking_uri=job.tracking_uri, experiment=job.experiment,
                              checkpoint_dir=path.parent).fetch(path.name, path)
    return push_checkpoint(path, results_dir=Path(job.results_dir))
