"""The recorder: everything between the training loop and its records (MLflow runs and checkpoints).

The loop (:func:`suite.trainer.train`) tells the recorder what happened (an env step with its finished episodes
and update metrics, a log point, an evaluation, a checkpoint point, the end or a failure); the recorder owns the
MLflow runs (:class:`~suite.tracking.RunGroup`), the checkpoint file and their consistency:

* Exactly-once metrics: a checkpoint is written first, then the points it holds are flushed, so every flushed
  point is covered by a checkpoint written before it; a resumed trial (or ``targetbench push``) re-sends the
  kept points and the store ignores those it has.
* Outages: mid-run, a store that is down does not stop training (points stay in memory and in the checkpoint);
  at the end an unreachable store is an :class:`UnpushedError` (everything kept in the final checkpoint).
* Where the checkpoint file is (:mod:`suite.checkpoint_placement`): tied to its tracking store (a checkpoint of
  another store is moved aside, not continued), mirrored to a remote checkpoint store. A checkpoint whose store
  lacks its runs stops the resume with a one-line CheckpointError.
* Progress: a line at every evaluation and at least every ``progress_interval_s`` seconds (step, env steps/s,
  ETA, latest training return), through the ``say`` callback (stderr for ``targetbench run``), or a
  :class:`suite.progress_bar.ProgressBar` on a terminal.
* Start-up: a fresh group's store is opened and its runs created in a thread (``open(background=True)``) while
  the first training steps run; points and tags logged meanwhile wait in the group's buffer with their own
  timestamps, the runs' start time is the moment ``open`` was called, and the first checkpoint (which records
  the run ids) waits for the thread. A store that fails there stops training at the next log point with the same
  one-line error as before.
* Compute: every run records MLflow system metrics (:mod:`suite.system_metrics`), its training wall time at every
  evaluation (``time/wall_s``), and at the end the tags ``wall_s`` and ``seed_steps_per_s``.
"""
from __future__ import annotations

import csv
import io
import math
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import yaml

from analysis import record_names as names
from suite.checkpoint import checkpoint_path, save_checkpoint
from suite.checkpoint_placement import OTHER_STORES, CheckpointPlacement
from suite.checkpoint_store import CheckpointStore, LocalStore, store_key
from suite.errors import CheckpointError, TrackingError, UnpushedError
from suite.metric_sums import MetricSums
from suite.protocol import fingerprint, protocol_of
from suite.provenance import provenance_tags
from suite.system_metrics import SystemSampler
from suite.tracking import RunGroup, check_store, ensure_store, flatten, missing_runs, open_experiment, public_uri
from suite.trial import TrialSpec
from suite.video import video_dir

__all__ = ["Recorder", "SeedResult", "UnpushedError", "OTHER_STORES", "store_key"]


@dataclass
class SeedResult:
    """What ``targetbench run --json`` prints for one seed."""

    run_id: str
    agent: str
    env: str
    seed: int
    steps: int
    final_eval_return: float
    eval_returns: list[list[float]]
    params_sha256: str
    wall_s: float
    sps: float
    trial_hash: str
    status: str
    diverged_step: int | None = None
    parameter_count: int = 0
    target_bytes: int = 0
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        return {**out, **self.extra}


def describe(trial: TrialSpec, seed: int) -> str:
    """The run description the MLflow UI shows (``mlflow.note.content``): what ran, and the agent's config."""
    cfg = trial.train
    agent_cfg = ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                          for k, v in trial.resolved()["agent_config"].items() if v is not None)
    return (f"{trial.agent} on {trial.env} ({trial.family}), seed {seed}: {cfg.steps} env steps, evaluated every "
            f"{cfg.eval_every} steps ({cfg.eval_episodes} episodes); trial {trial.trial_hash(seed)}. "
            f"Agent config: {agent_cfg}")


class Recorder:
    """The records of one trial group: its MLflow runs (one per seed), its checkpoint, its progress lines.

    Use: construct (reads the checkpoint to resume, if any), :meth:`open` (store, experiment and runs; resumes
    the loop's state), then per loop iteration :meth:`stepped`, and on the loop's cadence :meth:`log_point`,
    :meth:`evaluated`, :meth:`checkpoint`; at the end :meth:`finish`, or :meth:`fail` on an exception.
    """

    def __init__(self, trial: TrialSpec, *, tracking_uri: str, experiment: str, results_dir: Path,
                 checkpoint_dir: Path, resume: bool, say: Callable[[str], None],
                 extra_tags: Mapping[str, str] | None = None, adopt_checkpoint: bool = False,
                 progress_interval_s: float = 30.0, checkpoint_store: CheckpointStore | None = None,
                 bar: Any = None) -> None:
        self.trial = trial
        self.bar = bar  # a suite.progress_bar.ProgressBar on a terminal; None: progress lines
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.results_dir = Path(results_dir)
        self.checkpoint_dir = Path(checkpoint_dir)
        self.path = checkpoint_path(trial, self.checkpoint_dir)
        self._say = say
        self._held: list[str] | None = None  # progress messages held while the store opens in the background
        self.extra_tags = dict(extra_tags or {})
        self.progress_interval_s = progress_interval_s
        self.label = f"[{trial.agent} {trial.env} seeds {','.join(map(str, trial.seeds))}]"
        self.runs: RunGroup | None = None
        self._opening: threading.Thread | None = None  # the background open (open(background=True))
        self._open_error: BaseException | None = None
        self.sampler: SystemSampler | None = None
        self._system_step = -1  # the step of the last system metrics logged
        self.videos = video_dir(self.results_dir, trial.group_hash())
        self.acc = MetricSums()
        self.eval_returns: list[list[list[float]]] = [[] for _ in trial.seeds]
        self.diverged: list[int | None] = [None] * len(trial.seeds)
        self.step = 0
        self.elapsed_before = 0.0
        self.saved_step = -1
        self._last_return: list[float | None] = [None] * len(trial.seeds)
        self.resume = resume
        self.placement = CheckpointPlacement(trial, tracking_uri=tracking_uri, experiment=experiment,
                                             checkpoint_dir=self.checkpoint_dir,
                                             store=checkpoint_store or LocalStore(self.checkpoint_dir), say=self.say,
                                             label=self.label)
        self.state = self.placement.resume_state(adopt_checkpoint) if resume else self.placement.fresh()
        # A complete checkpoint (the run ended; only its records may be missing) trains nothing when resumed: it
        # writes the kept points and finishes the runs (that is what `targetbench push` does).
        # (Checkpoints from before the flag was recorded are complete when they are at the last step.)
        self.complete = self.state is not None and bool(
            self.state.get("complete", int(self.state["step"]) >= trial.train.steps))

    def say(self, message: str) -> None:
        """A progress message (held while the store opens in the background, see :meth:`open`)."""
        if self._held is not None:
            self._held.append(message)
        else:
            self._say(message)

    # -- store and runs ----------------------------------------------------------------------------------------
    def open(self, agent: Any, device: torch.device, background: bool = False) -> None:
        """Open the store and the experiment, create the runs (or continue the checkpoint's), and restore the
        recorder's part of a resumed checkpoint (metric sums, evaluations, divergence, kept points), which a
        complete checkpoint writes out now. Raises :class:`UnpushedError` when a complete checkpoint's store is
        unreachable, :class:`CheckpointError` when the store lacks the checkpoint's runs.

        ``background``: for a group that starts fresh (nothing to resume), do it in a thread and return at once;
        :meth:`opened` raises what the thread raised."""
        facts = {"parameter_count": str(agent.parameter_count()), "target_bytes": str(agent.target_bytes()),
                 names.TARGET_RULE: agent.target_rule.name, names.BOOTSTRAP_RULE: agent.bootstrap.name,
                 names.KERNELS: agent.kernels, names.KERNELS_REASON: agent.backend.reason[:500],
                 names.COMPILE: "on" if self.trial.train.compile else "off"}
        self._start_ms = int(time.time() * 1000)
        self.runs = RunGroup.deferred(len(self.trial.seeds))
        if background and self.state is None:
            check_store(self.tracking_uri)  # what fails fast (a server down, a read-only file) fails before training
            self._held = []  # progress waits for the store: a store that fails leaves only its error on stderr
            self._opening = threading.Thread(target=self._open_in_thread, args=(facts, device), daemon=True,
                                             name="targetbench-open-store")
            self._opening.start()
            return
        self._open(facts, device)

    def _open_in_thread(self, facts: dict[str, str], device: torch.device) -> None:
        try:
            self._open(facts, device)
        except BaseException as exc:  # handed to the training thread by opened()
            self._open_error = exc

    def opened(self, wait: bool) -> None:
        """Raise the background open's error, if it failed (``wait``: wait for it to end first; otherwise a
        still running open is left running)."""
        thread = self._opening
        if thread is None or (not wait and thread.is_alive()):
            return
        thread.join()
        self._opening = None
        held, self._held = self._held, None
        if self._open_error is not None:
            error, self._open_error = self._open_error, None
            raise error
        for message in held or ():
            self.say(message)

    def _open(self, facts: dict[str, str], device: torch.device) -> None:
        trial, state = self.trial, self.state
        group = trial.group_hash()
        kept_points = sum(RunGroup.count(state["pending"])) if state is not None else 0
        try:
            ensure_store(self.tracking_uri)
            client, experiment_id = open_experiment(self.tracking_uri, self.experiment, self.results_dir / "artifacts")
            if state is not None:
                self._check_runs_exist(client, list(state["run_ids"]))
            self.placement.settle_files()
        except TrackingError as exc:
            if self.complete:
                raise UnpushedError(self._unpushed_message(exc, kept_points)) from None
            raise
        resolved = trial.resolved()
        protocol = protocol_of(trial)
        params = {**flatten("agent", resolved["agent_config"]), **flatten("env", resolved["env_options"]),
                  **flatten("train", resolved["train"]), "agent_name": trial.agent, "env_id": trial.env,
                  "parameter_count": facts["parameter_count"], "target_bytes": facts["target_bytes"],
                  **flatten("protocol", protocol)}
        provenance = provenance_tags(device)
        base_tags = {names.AGENT: trial.agent, names.ENV: trial.env, names.FAMILY: trial.family,
                     **{k: facts[k] for k in (names.TARGET_RULE, names.BOOTSTRAP_RULE, names.KERNELS,
                                              names.KERNELS_REASON, names.COMPILE)},
                     names.VIDEO_EVERY: str(trial.train.video_every), names.GROUP_HASH: group,
                     names.PROTOCOL: fingerprint(protocol),
                     names.BATCH_SEEDS: ",".join(map(str, trial.seeds)), **provenance, **self.extra_tags,
                     names.MLFLOW_SOURCE_NAME: names.source_name(self.extra_tags.get(names.SUITE)),
                     names.MLFLOW_SOURCE_TYPE: names.SOURCE_TYPE}
        if provenance.get("git_commit", "unknown") != "unknown":
            base_tags[names.MLFLOW_GIT_COMMIT] = provenance["git_commit"]
        if self.resume and state is None:
            self._drop_orphan_runs(client, experiment_id, group)
        try:
            self.runs.create(
                client, experiment_id, run_names=[f"{trial.agent}/{trial.env}/seed{s}" for s in trial.seeds],
                tags=[{**base_tags, names.SEED: str(s), names.TRIAL_HASH: trial.trial_hash(s),
                       names.MLFLOW_NOTE: describe(trial, s)} for s in trial.seeds],
                params=[{**params, "seed": str(s)} for s in trial.seeds],
                run_ids=state["run_ids"] if state is not None else None, start_time=self._start_ms)
        except TrackingError as exc:
            if self.complete:
                raise UnpushedError(self._unpushed_message(exc, kept_points)) from None
            raise
        # What `targetbench push` needs to finish these runs from the checkpoint alone (no secrets in the URI).
        self._push_info = {"trial": {**resolved, "seeds": list(trial.seeds)},
                           "tracking_uri": public_uri(self.tracking_uri), "experiment": self.experiment,
                           "results_dir": str(self.results_dir.resolve()), "extra_tags": self.extra_tags}
        # After the store answered: the monitors come with MLflow, whose import is what the open waited for. A
        # complete checkpoint trains nothing (push, resume): the machine is not sampled for it.
        try:
            self.sampler = None if self.complete else SystemSampler(gpu=device.type == "cuda")
        except Exception as exc:  # records only: never fail a run for them
            self.say(f"{self.label} no system metrics: {type(exc).__name__}: {exc}")
        if state is not None:
            self.step, self.elapsed_before = int(state["step"]), float(state["wall_s"])
            self.saved_step = self.step
            self.eval_returns, self.diverged = state["eval_returns"], state["diverged"]
            self.acc.load_state_dict(state["accumulator"], device)
            self.runs.pending = RunGroup.unpack(state["pending"])
            self.runs.pending_tags = [dict(t) for t in state.get("pending_tags") or self.runs.pending_tags]
            # Idempotent: points already stored are recognised by the store. A complete run must get them out now.
            self._flush(self.complete)
            self.say(f"{self.label} resumed at step {self.step}")

    def _check_runs_exist(self, client: Any, run_ids: list[str]) -> None:
        gone = missing_runs(client, run_ids)
        if gone:
            raise CheckpointError(
                f"checkpoint {self.placement.source} continues run {gone[0]}, which is not an active run of tracking store "
                f"{public_uri(self.tracking_uri)} (deleted, or the runs were recorded in another store): pass "
                f"--tracking-uri with the store its runs live in, or move the checkpoint away to start afresh")

    def _drop_orphan_runs(self, client: Any, experiment_id: str, group: str) -> None:
        """A resume with no checkpoint starts fresh: runs of this group left unfinished by a process killed
        before its first checkpoint can never be continued, so they are soft-deleted (one run per seed stays
        visible)."""
        try:
            stale = client.search_runs([experiment_id], f"tags.{names.GROUP_HASH} = '{group}' and "
                                       "attributes.status != 'FINISHED'", max_results=1000)
            for run in stale:
                client.delete_run(run.info.run_id)
            if stale:
                self.say(f"deleted {len(stale)} unfinished run(s) of this trial that no checkpoint continues")
        except Exception as exc:  # tidying only: never fail a run for it
            self.say(f"could not tidy unfinished runs of this trial: {exc}")

    # -- what the loop reports ---------------------------------------------------------------------------------
    def start_clock(self) -> None:
        """The loop starts now (wall time and rates count from here)."""
        self.started = time.perf_counter()
        self._last_log_time, self._last_log_step = self.started, self.step
        self._last_said, self._first_step = self.started, self.step

    def stepped(self, step: int, metrics: dict[str, torch.Tensor] | None,
                episodes: Sequence[tuple[int, float, int]]) -> None:
        """One env step of every replica: the update metrics (if an update ran) and the finished episodes
        ``(replica, return, length)``."""
        self.step = step
        if metrics is not None:
            self.acc.add(metrics)
        runs = self.runs
        for r, ret, length in episodes:
            runs.log(r, step, {names.EPISODE_RETURN: ret, names.EPISODE_LENGTH: length})
            self._last_return[r] = ret
        if self.progress_interval_s >= 0:
            now = time.perf_counter()
            if now - self._last_said >= self.progress_interval_s:
                self._progress_line(now)

    def log_point(self, step: int, epsilon: float) -> bool:
        """Record the mean update metrics since the last log point, ε and the env steps/s (and the system metrics
        sampled since the last log point); tag replicas that diverged. Returns whether every replica has diverged
        (training stops). Raises the error of a background open that failed."""
        self.opened(wait=False)
        now = time.perf_counter()
        sps = (step - self._last_log_step) / max(now - self._last_log_time, 1e-9)
        self._last_log_time, self._last_log_step = now, step
        means = self.acc.means()
        n = len(self.trial.seeds)
        means[names.EPSILON] = [epsilon] * n
        means[names.SPS] = [sps] * n
        self.runs.log_all(step, {names.train_metric(k): v for k, v in means.items()})
        if self.sampler is not None and self.sampler.due:
            self._log_system(step)
        self._check_divergence(means, step)
        return all(d is not None for d in self.diverged)

    def _log_system(self, step: int) -> None:
        if step == self._system_step:  # the final checkpoint at a log point that just sampled: one point per step
            return
        self._system_step = step
        n = len(self.trial.seeds)
        self.runs.log_all(step, {k: [v] * n for k, v in self.sampler.take().items()})

    def _check_divergence(self, means: dict[str, list[float]], step: int) -> None:
        """Tag replicas whose loss or Q-values became NaN/inf. The other replicas are unaffected (independent)."""
        for r in range(len(self.diverged)):
            values = [means[k][r] for k in ("loss", "q_mean") if k in means]
            if self.diverged[r] is None and any(not math.isfinite(v) for v in values):
                self.diverged[r] = step
                # Buffered, written with the next flush: a store that is down must not fail the trial.
                self.runs.tag(r, {names.OUTCOME: names.OUTCOME_DIVERGED, names.DIVERGED_STEP: str(step)})
                self.say(f"[{self.trial.agent} {self.trial.env}] seed {self.trial.seeds[r]} diverged at step {step}")

    @property
    def evaluations(self) -> int:
        """How many evaluations were recorded (the index of the next one)."""
        return len(self.eval_returns[0])

    def evaluated(self, step: int, scores: np.ndarray) -> None:
        """Record one evaluation (mean return per replica) and say it."""
        for r, score in enumerate(scores):
            self.eval_returns[r].append([step, float(score)])
        wall = self.wall_s()
        self.runs.log_all(step, {names.EVAL_RETURN: scores.tolist(), names.WALL_S: [wall] * len(scores)})
        self.say(f"{self.label} step {step}/{self.trial.train.steps} "
                 f"eval {np.mean(scores):.1f} (min {np.min(scores):.1f}, max {np.max(scores):.1f}) "
                 f"{step * len(self.trial.seeds) / max(wall, 1e-9):.0f} env steps/s")
        self._last_said = time.perf_counter()
        if self.bar is not None and self._held is None:
            self.bar.show(step, self._eval_rate(step), self._latest_return())

    def _progress_line(self, now: float) -> None:
        """``[...] step S/N, X env steps/s, ETA h:mm:ss, train return R`` (the scheduler parses ``step S/N``), or
        the terminal's progress bar brought up to date."""
        self._last_said = now
        step, total, n = self.step, self.trial.train.steps, len(self.trial.seeds)
        rate = (step - self._first_step) / max(now - self.started, 1e-9)  # loop iterations (per replica) per s
        ret = self._latest_return()
        if self.bar is not None:
            if self._held is None:  # like the lines, the bar waits for the store
                self.bar.show(step, rate * n, ret)
            return
        eta = _hms((total - step) / rate) if rate > 0 else "?"
        ret_text = f"; train return {ret:.1f}" if ret is not None else ""
        self.say(f"{self.label} step {step}/{total}, {rate * n:,.0f} env steps/s, ETA {eta}{ret_text}")

    def _latest_return(self) -> float | None:
        returns = [r for r in self._last_return if r is not None]
        return float(np.mean(returns)) if returns else None

    def _eval_rate(self, step: int) -> float:
        return (step - self._first_step) * len(self.trial.seeds) / max(time.perf_counter() - self.started, 1e-9)

    def wall_s(self) -> float:
        """Training wall time so far, over every resumed attempt."""
        return self.elapsed_before + time.perf_counter() - self.started

    def checkpoint(self, step: int, agent: Any, envs: Any, obs: np.ndarray, final: bool) -> None:
        """Checkpoint first, then flush: every flushed point is covered by a checkpoint written before it. Waits
        for a background open (the checkpoint records the run ids)."""
        self.opened(wait=True)
        if final and self.sampler is not None:
            self._log_system(step)  # the last sample, before the checkpoint that covers it
        runs = self.runs
        save_checkpoint(self.path, {
            "trial_hash": self.trial.group_hash(), "agent_name": self.trial.agent, "env": self.trial.env,
            "seeds": list(self.trial.seeds), "step": step, "wall_s": self.wall_s(),
            "agent": agent.state_dict(), "envs": envs.get_state(), "obs": obs,
            "run_ids": runs.run_ids, "eval_returns": self.eval_returns, "diverged": self.diverged,
            "accumulator": self.acc.state_dict(), "pending": RunGroup.pack(runs.pending),
            "pending_tags": runs.pending_tags, "complete": final, **self._push_info})
        self.saved_step = step
        self.placement.upload()
        self._flush(final)

    def _flush(self, final: bool) -> None:
        """Write buffered metrics and tags. Mid-run the write runs in the background (training never waits for
        the store), and a store that is down does not stop training: the points stay in memory and in the
        checkpoint just written, and go out with the next flush. At the end of the run the write is waited
        for, and an unreachable store is an :class:`UnpushedError`; ``targetbench push`` (or ``--resume``)
        writes everything later (re-sent points are recognised by the store)."""
        runs = self.runs
        runs.background = not final
        try:
            runs.flush()
        except TrackingError as exc:
            if final:
                raise UnpushedError(self._unpushed_message(exc, runs.pending_points)) from None
            self.say(f"tracking store unavailable ({exc}); {runs.pending_points} metric points kept in "
                     f"{self.path.name}, retrying at the next checkpoint")

    def _unpushed_message(self, exc: Exception, points: int) -> str:
        return (f"{exc}; training is complete and its {points} unwritten metric points and final records are kept "
                f"in checkpoint {self.placement.source}: once the store is back, run `targetbench push --checkpoint-dir "
                f"{self.placement.source.parent}` (or rerun the same command with --resume)")

    # -- the end -------------------------------------------------------------------------------------------------
    def fail(self, exc: BaseException) -> None:
        """Mark the runs KILLED (Ctrl-C, SIGTERM) or FAILED with the error, as far as the store allows."""
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        if self.sampler is not None:
            self.sampler.close()
        try:
            self.opened(wait=True)  # runs created meanwhile are marked too
        except BaseException:
            pass  # the error being handled is the one to report
        if self.runs is None or not self.runs.run_ids:
            return
        for r in range(len(self.trial.seeds)):
            try:
                self.runs.set_tags(r, {names.ERROR: f"{type(exc).__name__}: {str(exc)[:200]}"})
                self.runs.finish(r, status)
            except Exception:
                pass

    def finish(self, agent: Any, step: int, device: torch.device) -> list[SeedResult]:
        """Artifacts, final tags, FINISHED, and the per-seed results; :class:`UnpushedError` when the store
        cannot be written (the final checkpoint holds all that is still needed to finish the runs)."""
        wall = self.wall_s()
        self.opened(wait=True)
        if self.bar is not None:
            self.bar.close()
        if self.sampler is not None:
            self.sampler.close()
        try:
            return self._finish(agent, step, wall, device)
        except TrackingError as exc:
            raise UnpushedError(self._unpushed_message(exc, self.runs.pending_points)) from None

    def _finish(self, agent: Any, step: int, wall: float, device: torch.device) -> list[SeedResult]:
        """The final tags of all runs go out together in one write (on the SQLite store one transaction:
        per-call commits dominate the end of a run). Runs are marked FINISHED only after everything else is
        stored, so a FINISHED run is a complete one (``targetbench push`` relies on that)."""
        trial, runs = self.trial, self.runs
        hashes = agent.params_sha256()
        results = []
        with tempfile.TemporaryDirectory(dir=self.results_dir) as tmp:
            for r, seed in enumerate(trial.seeds):
                folder = Path(tmp) / str(r)
                folder.mkdir()
                (folder / "config.yaml").write_text(yaml.safe_dump({**trial.resolved(), "seed": seed},
                                                                   sort_keys=False))
                with open(folder / "eval_returns.csv", "w", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(["step", "eval_return_mean"])
                    w.writerows(self.eval_returns[r])
                # Serialised in memory first: torch.save to a path turns a full disk into an opaque RuntimeError,
                # a plain write raises the OSError that the CLI reports as exit 5.
                buffer = io.BytesIO()
                torch.save(agent.replica_params(r), buffer)
                (folder / "final_params.pt").write_bytes(buffer.getvalue())
                runs.log_artifacts(r, folder)  # one call for the three files: per-call store costs dominate here
                if (self.videos / str(r)).is_dir():
                    runs.log_artifacts(r, self.videos / str(r), "videos")
                outcome = names.OUTCOME_DIVERGED if self.diverged[r] is not None else names.OUTCOME_COMPLETED
                learner = getattr(agent, "torch_learner", None)
                runs.tag(r, {names.OUTCOME: outcome, names.PARAMS_SHA256: hashes[r],
                             names.CHECKPOINT: self.path.name, names.WALL_S_TAG: f"{wall:.3f}",
                             names.SEED_STEPS_PER_S: f"{step / max(wall, 1e-9):.1f}",
                             names.COMPILE: learner.compile_status if learner is not None else "off"})
                final = self.eval_returns[r][-1][1] if self.eval_returns[r] else float("nan")
                results.append(SeedResult(
                    run_id=runs.run_ids[r], agent=trial.agent, env=trial.env, seed=seed, steps=step,
                    final_eval_return=final, eval_returns=self.eval_returns[r], params_sha256=hashes[r],
                    wall_s=round(wall, 3), sps=round(step / max(wall, 1e-9), 1), trial_hash=trial.trial_hash(seed),
                    status=outcome, diverged_step=self.diverged[r], parameter_count=agent.replica_parameter_count(r),
                    target_bytes=agent.target_bytes(), device=str(device)))
        runs.background = False
        runs.flush()
        for r in range(len(trial.seeds)):
            runs.finish(r, "FINISHED")
        if self.videos.is_dir():  # logged as artifacts above
            shutil.rmtree(self.videos, ignore_errors=True)
            try:
                self.videos.parent.rmdir()
            except OSError:
                pass  # other groups' videos are still there
        return results


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
