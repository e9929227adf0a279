"""``targetbench push``: write to the tracking store what training kept on disk because the store was down.

A run whose store was unreachable when it ended (``targetbench run`` exits 3, a sweep reports its trials as
unpushed) keeps everything its MLflow runs still need in its final checkpoint: the metric points never
written, and what finishing the runs takes (final tags, artifacts, FINISHED status). ``push`` looks at every
checkpoint in the checkpoint folder and completes the runs of each complete one whose runs are not all
FINISHED in the store the checkpoint names (or ``--tracking-uri``), by resuming it: a complete checkpoint
resumes without training (:func:`suite.trainer.train`). Points the store already has are recognised by it,
so pushing after a partial push, or twice, duplicates nothing; a second push finds nothing to do and says so.

Checkpoints of trials that stopped before their last step are listed and left alone (push never trains:
resume them with ``targetbench run ... --resume`` or by rerunning the sweep).

Trial leases (:mod:`suite.scheduler.lease`): a sweep that ended while its store was away leaves its leases and
its record in the store's model registry (the MLflow UI lists them as registered models). Once their holders
are dead, push deletes them from every store it pushes to, and from ``--tracking-uri`` even when there is
nothing to push: ``targetbench push --tracking-uri URI`` is how a user clears them (any later sweep on the store
clears them too).

Wired into :mod:`suite.cli` like ``convergence``: ``add_arguments(parser)`` and ``main(args) -> int``.
Exit status: 0 when everything that needed pushing was pushed (or nothing needed it), 3 when a tracking store
is unreachable (checked for every store before anything is written: nothing changes) or does not have a
checkpoint's runs, 4 when a checkpoint cannot be read (the others are still pushed in both cases).
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from suite.errors import CheckpointError, TrackingError, UsageError
from suite.store_retry import one_line, retry_store

__all__ = ["add_arguments", "main", "push_checkpoint", "trial_from_checkpoint", "PushReport"]

#: the checkpoint entries push reads (a cheap, memory-mapped look: replay buffers are not read)
_META = ("trial_hash", "agent_name", "env", "seeds", "step", "run_ids", "pending", "complete", "trial",
         "tracking_uri", "experiment", "results_dir", "extra_tags", "format_version")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``push`` command's flags to ``p``."""
    p.add_argument("--results", default=None, help="results folder (default: $TARGETBENCH_RESULTS or results)")
    p.add_argument("--checkpoint-dir", default=None, help="checkpoint folder (default: RESULTS/checkpoints)")
    p.add_argument("--tracking-uri", default=None,
                   help="push into this store instead of the one each checkpoint recorded (credentials from "
                        "$MLFLOW_TRACKING_USERNAME/PASSWORD, never from the checkpoint); also deletes the trial "
                        "leases that dead sweeps left in it, even when there is nothing to push")
    p.add_argument("--checkpoint-uri", default=None,
                   help="first fetch the checkpoints of this remote store (an fsspec URL, mlflow-artifacts:/... or "
                        "'tracking'; see docs/cluster.md) into the checkpoint folder; needs --tracking-uri (the store they "
                        "belong to)")
    p.add_argument("--experiment", default=None,
                   help="with --checkpoint-uri: the experiment of the checkpoints (default: the only experiment "
                        "holding runs in the store)")


@dataclass
class PushReport:
    """What one ``push`` did: counts of trials (seeds) and the per-trial lines it printed."""

    pushed: int = 0
    complete: int = 0
    unfinished: int = 0
    old: int = 0
    unreadable: int = 0
    missing: int = 0
    points: int = 0
    leases_cleared: int = 0
    lines: list[str] = field(default_factory=list)


@dataclass
class _Checkpoint:
    path: Path
    meta: dict[str, Any]

    @property
    def label(self) -> str:
        seeds = ",".join(str(s) for s in self.meta.get("seeds") or [])
        return f"{self.meta.get('agent_name')} {self.meta.get('env')} seeds {seeds}"


def _peek(path: Path) -> dict[str, Any]:
    """The entries of ``_META`` of a checkpoint (a cheap, memory-mapped look)."""
    from suite.checkpoint import peek_checkpoint

    return peek_checkpoint(path, _META)


def trial_from_checkpoint(meta: dict[str, Any]) -> Any:
    """Rebuild the :class:`~suite.trial.TrialSpec` a checkpoint was written for, from its ``trial`` entry (the
    resolved config and the seeds), and check it against the checkpoint's group hash."""
    from agents import get_agent
    from suite.envs import get_family, validate_env_options
    from suite.trial import TrainConfig, TrialSpec

    resolved = meta["trial"]
    try:
        family = resolved["family"]
        trial = TrialSpec(agent=resolved["agent"], env=resolved["env"], family=family,
                          seeds=tuple(int(s) for s in resolved["seeds"]),
                          agent_config=get_family(family).agent_config(get_agent(resolved["agent"]).config_cls,
                                                                       resolved["agent_config"]),
                          env_options=validate_env_options(resolved["env"], dict(resolved["env_options"])),
                          train=TrainConfig.for_family(family, resolved["train"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"the trial recorded in the checkpoint cannot be rebuilt: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if trial.group_hash() != meta.get("trial_hash"):
        raise CheckpointError(f"the trial recorded in the checkpoint rebuilds to group {trial.group_hash()}, not "
                              f"{meta.get('trial_hash')} (another agent or config version)")
    return trial


def _check_store(uri: str) -> None:
    """Raise :class:`TrackingError` unless the store answers. A SQLite store must already exist: push never
    creates one (the runs it completes live in it)."""
    from suite.tracking import ensure_store

    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        raise TrackingError(f"tracking store {uri} does not exist; pass --tracking-uri with the store the runs "
                            "were recorded in")
    ensure_store(uri)


def _statuses(uri: str, run_ids: list[str]) -> list[str | None]:
    """Each run's status in the store (``None``: the store does not have it); a store that stops answering is
    retried with backoff (:mod:`suite.store_retry`), then a :class:`TrackingError`."""
    from suite.store_retry import retry_store
    from suite.tracking import _import_mlflow

    client = _import_mlflow().MlflowClient(uri)
    out: list[str | None] = []
    for rid in run_ids:
        try:
            out.append(retry_store(lambda: client.get_run(rid).info.status, what=f"{uri} read"))
        except TrackingError:
            raise
        except Exception as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise TrackingError(f"tracking store {uri} cannot be read: {one_line(exc)}") from None
            out.append(None)
    return out


def push_checkpoint(path: Path, *, tracking_uri: str | None = None, results_dir: Path | None = None,
                    progress: Callable[[str], None] | None = None) -> list[Any]:
    """Complete the runs of one complete checkpoint in its store (or ``tracking_uri``): write its kept
    points and tags, its artifacts and final tags, and mark the runs FINISHED. Trains nothing; returns the
    per-seed :class:`~suite.trainer.SeedResult`. Raises :class:`CheckpointError` for a checkpoint that is
    not complete or cannot be rebuilt, :class:`TrackingError` when the store cannot be written."""
    from suite.checkpoint import checkpoint_path
    from suite.trainer import train

    path = Path(path)
    meta = _peek(path)
    if "trial" not in meta or "tracking_uri" not in meta:
        raise CheckpointError(f"checkpoint {path} was written before push support; rerun its command with --resume")
    if not meta.get("complete"):
        raise CheckpointError(f"checkpoint {path} is of a run that stopped at step {meta.get('step')}; push "
                              "does not train: resume it with --resume")
    trial = trial_from_checkpoint(meta)
    if checkpoint_path(trial, path.parent) != path:
        expected = checkpoint_path(trial, path.parent).name
        raise CheckpointError(f"checkpoint {path} has been renamed; expected {expected}")
    recorded = Path(meta.get("results_dir") or "")
    results = recorded if meta.get("results_dir") and recorded.is_dir() else Path(results_dir or "results")
    results.mkdir(parents=True, exist_ok=True)  # artifacts are staged in a temporary folder there
    return train(trial, tracking_uri=tracking_uri or meta["tracking_uri"], experiment=meta["experiment"],
                 results_dir=results, checkpoint_dir=path.parent, resume=True,
                 progress=progress or (lambda m: None), extra_tags=meta.get("extra_tags") or {},
                 adopt_checkpoint=tracking_uri is not None)  # --tracking-uri: the same store, another address


def push(checkpoint_dir: Path, *, tracking_uri: str | None = None, results_dir: Path | None = None,
         say: Callable[[str], None] = print) -> PushReport:
    """Push every checkpoint of ``checkpoint_dir`` that needs it; see the module docstring."""
    from suite.tracking import RunGroup

    report = PushReport()

    def line(text: str) -> None:
        report.lines.append(text)
        say(text)

    found: list[_Checkpoint] = []
    for path in sorted(Path(checkpoint_dir).glob("*.pt")) if Path(checkpoint_dir).is_dir() else []:
        try:
            found.append(_Checkpoint(path, _peek(path)))
        except CheckpointError as exc:
            report.unreadable += 1
            line(f"unreadable: {exc}")
    candidates = []
    for ck in found:
        n = len(ck.meta.get("seeds") or [])
        if "trial" not in ck.meta or "tracking_uri" not in ck.meta:
            report.old += n
            line(f"skipped {ck.label}: {ck.path.name} was written before push support; if its runs are not "
                 "finished, rerun its command with --resume")
        elif not ck.meta.get("complete"):
            report.unfinished += n
            line(f"not finished {ck.label}: training stopped at step {ck.meta.get('step')} of "
                 f"{ck.meta['trial']['train']['steps']} (or is running); push does not train: resume it with "
                 "--resume or rerun the sweep")
        else:
            candidates.append(ck)

    # Every store must answer before anything is written: an unreachable one changes nothing anywhere.
    uris = {tracking_uri or ck.meta["tracking_uri"] for ck in candidates} | ({tracking_uri} if tracking_uri else set())
    for uri in sorted(uris):
        _check_store(uri)
    todo = []
    for ck in candidates:
        uri = tracking_uri or ck.meta["tracking_uri"]
        statuses = _statuses(uri, list(ck.meta["run_ids"]))
        if None in statuses:
            report.missing += len(statuses)
            line(f"not in the store {ck.label}: run {ck.meta['run_ids'][statuses.index(None)]} of {ck.path.name} "
                 f"is not in {uri}; pass --tracking-uri with the store its runs were recorded in")
        elif all(s == "FINISHED" for s in statuses):
            report.complete += len(statuses)
        else:
            todo.append(ck)

    for ck in todo:
        pending = RunGroup.count(ck.meta.get("pending") or [])
        # A store that blinks mid-push is tried again: a push repeated writes nothing twice.
        results = retry_store(lambda: push_checkpoint(ck.path, tracking_uri=tracking_uri, results_dir=results_dir),
                              what=f"push of {ck.label}", attempts=4, backoff_s=1.0)
        for r, res in enumerate(results):
            points = pending[r] if r < len(pending) else 0
            report.pushed += 1
            report.points += points
            line(f"pushed {res.agent} {res.env} seed {res.seed}: {points} kept metric points written, artifacts "
                 f"and final tags logged, run {res.run_id} FINISHED ({res.status})")
    for uri in sorted(uris):
        report.leases_cleared += _clear_leases(uri)
    return report


def _clear_leases(uri: str) -> int:
    """Delete the trial leases and sweep records dead sweeps left in the store (see the module docstring);
    tidying only: a store without a model registry, or one that fails now, is left as it is."""
    from suite.scheduler.lease import clear_expired
    from suite.tracking import _import_mlflow

    try:
        return clear_expired(_import_mlflow().MlflowClient(uri))
    except Exception:
        return 0


def _fetch_remote(args: argparse.Namespace, ckdir: Path) -> None:
    """``--checkpoint-uri``: copy every checkpoint of that store into ``ckdir``; a local copy that is further
    along (its upload failed) is kept."""
    from suite.checkpoint_store import is_remote_uri, open_checkpoint_store

    if not is_remote_uri(args.checkpoint_uri):
        raise UsageError(f"--checkpoint-uri {args.checkpoint_uri} is a path; allowed here: a remote store (use "
                         "--checkpoint-dir for a folder)")
    if not args.tracking_uri:
        raise UsageError("--checkpoint-uri needs --tracking-uri (and --experiment where the store holds several): "
                         "the checkpoints of a remote store are kept per tracking store and experiment")
    from suite.experiments import choose_experiment

    experiment = args.experiment or choose_experiment(args.tracking_uri, None, "push")
    store = open_checkpoint_store(args.checkpoint_uri, tracking_uri=args.tracking_uri, experiment=experiment,
                                  checkpoint_dir=ckdir)
    for name in store.names():
        incoming = ckdir / f"{name}.remote"
        if not store.fetch(name, incoming):
            continue
        local = ckdir / name
        if local.exists():
            try:
                if int(_peek(local).get("step", -1)) > int(_peek(incoming).get("step", -1)):
                    incoming.unlink()
                    continue
            except CheckpointError:
                pass  # an unreadable local copy: the store's replaces it
        os.replace(incoming, local)


def main(args: argparse.Namespace) -> int:
    """``targetbench push``: one line per trial pushed or left alone, then a summary line."""
    results = Path(args.results or os.environ.get("TARGETBENCH_RESULTS", "results"))
    ckdir = Path(args.checkpoint_dir) if args.checkpoint_dir else results / "checkpoints"
    if args.checkpoint_dir and not ckdir.is_dir():
        raise UsageError(f"--checkpoint-dir {ckdir} is not a folder")
    if getattr(args, "checkpoint_uri", None):
        _fetch_remote(args, ckdir)
    if not args.checkpoint_dir and not results.is_dir():  # a mistyped --results must not look like success
        raise UsageError(f"results folder {results} does not exist; pass the --results of the runs to push")
    report = push(ckdir, tracking_uri=args.tracking_uri, results_dir=results)
    left = []
    if report.unfinished:
        left.append(f"{report.unfinished} not finished training")
    if report.old:
        left.append(f"{report.old} in older checkpoints")
    if report.unreadable:
        left.append(f"{report.unreadable} unreadable checkpoints")
    if report.missing:
        left.append(f"{report.missing} whose runs are not in the store")
    tail = f"; left alone: {', '.join(left)}" if left else ""
    if report.leases_cleared:
        tail += f"; {report.leases_cleared} expired trial leases deleted"
    if report.pushed:
        print(f"push: {report.pushed} trials pushed ({report.points} kept metric points), "
              f"{report.complete} already complete{tail}")
    else:
        print(f"push: nothing to push in {ckdir}: {report.complete} trials already complete{tail}")
    sys.stdout.flush()
    return 3 if report.missing else 4 if report.unreadable else 0
