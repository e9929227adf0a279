"""What the scheduler reads from and writes to the tracking store (besides what the trainer records).

- finished trials: runs with status FINISHED and a ``trial_hash`` tag (completed *or* diverged: both are real
  outcomes, neither is re-run);
- after a group ends: the ``variant``/``suite`` tags on its runs; for a group that failed for good, its runs are
  left FAILED with an ``error`` tag (a trial that never got a run gets a FAILED run of its own so the analysis
  counts it); superseded attempts of a trial (not FINISHED, not the latest attempt) are soft-deleted
  (MLflow lifecycle ``deleted``, restorable) so that each trial has one run in the experiment;
- when a sweep starts: unfinished runs of trials that already have a FINISHED run are soft-deleted too. A
  sweep killed between a trial's end and that bookkeeping leaves them behind, and the next sweep skips the
  trial, so it would never clean them up otherwise. Runs of trials another live sweep holds a lease on are
  never pruned (``lease.py``: two sweeps on one store).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from analysis import record_names as names
from suite.store_retry import Outage

__all__ = ["StoreView"]


def _client(uri: str) -> Any:
    from suite.tracking import _import_mlflow

    return _import_mlflow().MlflowClient(uri)


class StoreView:
    """The scheduler's handle on one experiment of one tracking store. Every call goes through ``outage``
    (:class:`~suite.store_retry.Outage`; default: a fresh one for ``uri``): a store that stops answering is
    retried with backoff, then a :class:`~suite.errors.TrackingError`."""

    def __init__(self, uri: str, experiment: str, artifact_root: Path | None = None, *, create: bool = True,
                 outage: Outage | None = None) -> None:
        self.uri, self.experiment = uri, experiment
        self.outage = outage or Outage(uri)
        self.client = _client(uri)
        self.experiment_id: str | None = None
        if create:
            from suite.tracking import open_experiment

            self.client, self.experiment_id = self.call(lambda: open_experiment(uri, experiment, artifact_root),
                                                        f"opening experiment {experiment!r}")
        else:
            exp = self.call(lambda: self.client.get_experiment_by_name(experiment), "reading the experiment")
            self.experiment_id = exp.experiment_id if exp is not None else None

    def call(self, fn: Callable[[], Any], what: str) -> Any:
        """``fn()`` under this store's outage policy."""
        return self.outage.call(fn, what)

    def _search(self, filter_string: str) -> list[Any]:
        if self.experiment_id is None:
            return []
        runs, token = [], None
        while True:
            page = self.call(lambda: self.client.search_runs([self.experiment_id], filter_string=filter_string,
                                                             max_results=5000, page_token=token), "reading runs")
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def finished(self) -> dict[str, Any]:
        """trial_hash -> a FINISHED run of it (the latest)."""
        out: dict[str, Any] = {}
        for run in sorted(self._search("attributes.status = 'FINISHED'"), key=lambda r: r.info.start_time or 0):
            h = run.data.tags.get(names.TRIAL_HASH)
            if h:
                out[h] = run
        return out

    def prune_superseded(self, finished: Mapping[str, Any], live: Iterable[str] = ()) -> int:
        """Soft-delete the unfinished runs of trials in ``finished`` (trial_hash -> its FINISHED run): attempts
        left behind by a sweep killed before it could settle them. Trials in ``live`` (their lease is held by a
        live sweep, see ``suite/scheduler/lease.py``) are left alone: their runs may still be training.
        Returns how many were deleted."""
        live = set(live)
        stale = [r.info.run_id for r in self._search("attributes.status != 'FINISHED'")
                 if r.data.tags.get(names.TRIAL_HASH) in finished and r.data.tags.get(names.TRIAL_HASH) not in live]
        for rid in stale:
            self.call(lambda: self.client.delete_run(rid), "deleting superseded runs")
        return len(stale)

    def runs_of(self, trial_hash: str) -> list[Any]:
        """Every active run of one trial, oldest first."""
        runs = self._search(f"tags.{names.TRIAL_HASH} = '{trial_hash}'")
        return sorted(runs, key=lambda r: r.info.start_time or 0)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        for k, v in tags.items():
            self.call(lambda: self.client.set_tag(run_id, k, str(v)), "tagging runs")

    def settle(self, trial_hashes: Sequence[str], keep: Iterable[str], tags: Mapping[str, str]) -> None:
        """After a successful group: tag the kept runs; soft-delete earlier unfinished attempts of the trials."""
        keep = set(keep)
        for rid in keep:
            self.set_tags(rid, tags)
            run = self.call(lambda: self.client.get_run(rid), "reading runs")
            if names.ERROR in run.data.tags:  # an earlier attempt failed and this one resumed the same run
                self.set_tags(rid, {names.RETRIED_AFTER_ERROR: run.data.tags[names.ERROR]})
                self.call(lambda: self.client.delete_tag(rid, names.ERROR), "tagging runs")
        for h in trial_hashes:
            for run in self.runs_of(h):
                if run.info.run_id not in keep and run.info.status != "FINISHED":
                    self.call(lambda: self.client.delete_run(run.info.run_id), "deleting superseded runs")

    def record_failure(self, trials: Sequence[Mapping[str, Any]], error: str, tags: Mapping[str, str]) -> dict[str, str]:
        """After a group failed for good: one FAILED run per trial, with ``error``; returns trial_hash -> run_id.

        The latest attempt's run of a trial is kept (marked FAILED if the worker died before it could say so);
        a trial without any run gets a new FAILED run carrying its identity tags."""
        out = {}
        for t in trials:
            runs = [r for r in self.runs_of(t["trial_hash"]) if r.info.status != "FINISHED"]
            if runs:
                latest = runs[-1]
                rid = latest.info.run_id
                run_tags = dict(tags)
                if names.ERROR not in latest.data.tags or latest.info.status == "RUNNING":
                    run_tags[names.ERROR] = error[:500]
                self.set_tags(rid, run_tags)
                if latest.info.status != "FAILED":
                    self.call(lambda: self.client.set_terminated(rid, status="FAILED"), "recording failures")
                for old in runs[:-1]:
                    self.call(lambda: self.client.delete_run(old.info.run_id), "deleting superseded runs")
            else:
                name = f"{t['agent']}/{t['env']}/seed{t['seed']}"
                run = self.call(lambda: self.client.create_run(self.experiment_id, run_name=name, tags={
                    names.AGENT: t["agent"], names.ENV: t["env"], names.SEED: str(t["seed"]),
                    names.TRIAL_HASH: t["trial_hash"], names.ERROR: error[:500], names.MLFLOW_RUN_NAME: name, **tags}),
                    "recording failures")
                rid = run.info.run_id
                self.call(lambda: self.client.set_terminated(rid, status="FAILED"), "recording failures")
            out[t["trial_hash"]] = rid
        return out
