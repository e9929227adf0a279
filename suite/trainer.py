"""The training loop: R seeds of one (agent, env, config) trained together, one MLflow run per seed.

Reads top to bottom: act, step the envs, store, update on the agent's cadence, log, evaluate, checkpoint.
Step counts are env steps per replica; every replica steps once per loop iteration.
"""
from __future__ import annotations

import csv
import io
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import torch
import yaml

from agents import get_agent
from agents.exploration import EpsilonGreedy
from agents.seeding import derive_seed, numpy_rng
from suite.checkpoint import load_checkpoint, save_checkpoint
from suite.envs import ReplicaEnvs, get_family
from suite.provenance import provenance_tags, resolve_device, set_cpu_threads
from suite.errors import TrackingError
from suite.tracking import RunGroup, ensure_store, flatten, open_experiment
from suite.trial import TrialSpec

__all__ = ["SeedResult", "UnpushedError", "train", "evaluate", "public_uri", "checkpoint_path"]


class UnpushedError(TrackingError):
    """Training is complete but its records could not all be written: the tracking store was unreachable at
    the end. Everything is kept in the final checkpoint; ``targetbench push`` (or ``--resume``) writes it."""


def public_uri(uri: str) -> str:
    """``uri`` as it may be written to disk: without ``user:password@`` (credentials come from the
    environment, e.g. ``MLFLOW_TRACKING_USERNAME``), and a relative SQLite path made absolute so that
    ``targetbench push`` finds the store from any folder."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + Path(uri[len("sqlite:///"):]).resolve().as_posix()
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


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


def evaluate(agent: Any, trial: TrialSpec, index: int) -> np.ndarray:
    """Mean return ``[R]`` of ``eval_episodes`` episodes per replica with the ε_eval-greedy policy.

    Evaluation number ``index`` uses fresh env instances seeded from (seed, index) and its own ε stream, so it
    consumes nothing from the training streams and needs no state in checkpoints.
    """
    cfg = trial.train
    eval_seeds = [derive_seed(s, f"eval/{index}") for s in trial.seeds]
    envs = ReplicaEnvs(trial.env, eval_seeds, eval=True, options=trial.env_options)
    explorer = EpsilonGreedy([numpy_rng(s, f"eval-explore/{index}") for s in trial.seeds], envs.num_actions)
    returns: list[list[float]] = [[] for _ in trial.seeds]
    running = np.zeros(len(trial.seeds))
    length = np.zeros(len(trial.seeds), dtype=np.int64)
    capped = np.zeros(len(trial.seeds), dtype=bool)
    obs = envs.reset()
    try:
        while any(len(r) < cfg.eval_episodes and not c for r, c in zip(returns, capped)):
            actions = explorer.select(agent.greedy_actions(obs), agent.config.eval_epsilon)
            res = envs.step(actions)
            obs = res.obs
            running += res.reward
            length += 1
            for r, ret, _ in res.episodes:
                if len(returns[r]) < cfg.eval_episodes and not capped[r]:
                    returns[r].append(ret)
            done = res.terminated | res.truncated
            running[done], length[done] = 0.0, 0
            # A policy that never ends an episode: score the capped episode and stop evaluating that replica.
            for r in np.flatnonzero(length >= cfg.eval_max_steps):
                if not capped[r] and len(returns[r]) < cfg.eval_episodes:
                    returns[r].append(float(running[r]))
                    capped[r] = True
    finally:
        envs.close()
    return np.array([float(np.mean(r)) for r in returns])


class _Accumulator:
    """Per-replica running sums of update metrics between log points (no host sync in the hot loop)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        for k, v in metrics.items():
            self.sums[k] = self.sums[k] + v.detach() if k in self.sums else v.detach().clone()
        self.count += 1

    def means(self) -> dict[str, list[float]]:
        out = {k: (v / self.count).tolist() for k, v in self.sums.items()} if self.count else {}
        self.sums, self.count = {}, 0
        return out

    def state_dict(self) -> dict:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "count": self.count}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.sums = {k: v.to(device) for k, v in state["sums"].items()}
        self.count = int(state["count"])


def train(trial: TrialSpec, *, tracking_uri: str, experiment: str, results_dir: Path,
          checkpoint_dir: Path | None = None, resume: bool = False,
          progress: Callable[[str], None] | None = None,
          extra_tags: Mapping[str, str] | None = None) -> list[SeedResult]:
    """Train ``trial``'s seeds together and record one MLflow run per seed. Returns one result per seed.

    ``extra_tags`` are added to every run (the scheduler records ``variant`` and ``suite`` this way). Progress
    lines have the stable forms ``[...] step S/N ...`` and ``[...] resumed at step S`` (the scheduler parses them).
    """
    cfg = trial.train
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    device = resolve_device(cfg.device)
    spec = get_agent(trial.agent)
    group = trial.group_hash()
    ckpt_path = checkpoint_path(trial, checkpoint_dir or results_dir / "checkpoints")
    state = load_checkpoint(ckpt_path, group) if resume and ckpt_path.exists() else None
    if resume and state is None:
        say(f"[{trial.agent} {trial.env}] no checkpoint {ckpt_path.name} to resume from; starting fresh")
    # A complete checkpoint (the run ended; only its records may be missing) trains nothing when resumed: it
    # writes the kept points and finishes the runs (that is what `targetbench push` does).
    # (Checkpoints from before the flag was recorded are complete when they are at the last step.)
    complete = state is not None and bool(state.get("complete", int(state["step"]) >= cfg.steps))

    envs = ReplicaEnvs(trial.env, [derive_seed(s, "env") for s in trial.seeds], options=trial.env_options)
    agent = spec.cls(trial.agent_config, obs_shape=envs.observation_shape, obs_dtype=envs.observation_dtype,
                     num_actions=envs.num_actions, seeds=trial.seeds, family=get_family(trial.family).facts,
                     total_steps=cfg.steps, device=device, kernels=cfg.kernels,
                     threads=cfg.threads or os.cpu_count() or 1)
    # numpy-kernel agents split their replicas over `threads` themselves; their torch ops (optimizer, copies) and
    # BLAS calls are small and run fastest on one thread each (2 torch threads made 16 CartPole seeds 2x slower)
    set_cpu_threads(1 if agent.kernels == "numpy" else cfg.threads, 1 if cfg.threads else 0)
    target_rule = agent.target_rule.name

    try:
        ensure_store(tracking_uri)
        client, experiment_id = open_experiment(tracking_uri, experiment, results_dir / "artifacts")
    except TrackingError as exc:
        envs.close()
        if complete:
            raise UnpushedError(_unpushed_message(exc, sum(RunGroup.count(state["pending"])), ckpt_path)) from None
        raise
    resolved = trial.resolved()
    params = {**flatten("agent", resolved["agent_config"]), **flatten("env", resolved["env_options"]),
              **flatten("train", resolved["train"]), "agent_name": trial.agent, "env_id": trial.env,
              "parameter_count": str(agent.parameter_count()), "target_bytes": str(agent.target_bytes())}
    base_tags = {"agent": trial.agent, "env": trial.env, "family": trial.family, "target_rule": target_rule,
                 "bootstrap_rule": agent.bootstrap.name, "kernels": agent.kernels, "group_hash": group, "batch_seeds": ",".join(map(str, trial.seeds)),
                 **provenance_tags(device), **(extra_tags or {})}
    if resume and state is None:
        _drop_orphan_runs(client, experiment_id, group, say)
    try:
        runs = RunGroup(client, experiment_id,
                        run_names=[f"{trial.agent}/{trial.env}/seed{s}" for s in trial.seeds],
                        tags=[{**base_tags, "seed": str(s), "trial_hash": trial.trial_hash(s)} for s in trial.seeds],
                        params=[{**params, "seed": str(s)} for s in trial.seeds],
                        run_ids=state["run_ids"] if state else None)
    except TrackingError as exc:
        envs.close()
        if complete:
            raise UnpushedError(_unpushed_message(exc, sum(RunGroup.count(state["pending"])), ckpt_path)) from None
        raise
    # What `targetbench push` needs to finish these runs from the checkpoint alone (no secrets in the URI).
    push_info = {"trial": {**resolved, "seeds": list(trial.seeds)}, "tracking_uri": public_uri(tracking_uri),
                 "experiment": experiment, "results_dir": str(Path(results_dir).resolve()),
                 "extra_tags": dict(extra_tags or {})}

    acc = _Accumulator()
    eval_returns: list[list[list[float]]] = [[] for _ in trial.seeds]
    diverged: list[int | None] = [None] * len(trial.seeds)
    step, elapsed_before = 0, 0.0
    if state is not None:
        agent.load_state_dict(state["agent"])
        envs.set_state(state["envs"])
        obs = np.asarray(state["obs"])
        step, elapsed_before = int(state["step"]), float(state["wall_s"])
        eval_returns, diverged = state["eval_returns"], state["diverged"]
        acc.load_state_dict(state["accumulator"], device)
        runs.pending = RunGroup.unpack(state["pending"])
        runs.pending_tags = [dict(t) for t in state.get("pending_tags") or runs.pending_tags]
        # Idempotent: points already stored are recognised by the store. A complete run must get them out now.
        try:
            _flush_or_keep(runs, complete, ckpt_path, say)
        except BaseException:
            envs.close()
            raise
        say(f"[{trial.agent} {trial.env} seeds {','.join(map(str, trial.seeds))}] resumed at step {step}")
    else:
        obs = envs.reset()

    checkpoint_every = cfg.checkpoint_every or cfg.eval_every
    started = time.perf_counter()
    last_log_time, last_log_step = started, step
    saved_step = step if state is not None else -1

    def checkpoint(final: bool) -> None:
        """Checkpoint first, then flush: every flushed point is covered by a checkpoint written before it."""
        nonlocal saved_step
        save_checkpoint(ckpt_path, {
            "trial_hash": group, "agent_name": trial.agent, "env": trial.env, "seeds": list(trial.seeds),
            "step": step, "wall_s": elapsed_before + time.perf_counter() - started,
            "agent": agent.state_dict(), "envs": envs.get_state(), "obs": obs,
            "run_ids": runs.run_ids, "eval_returns": eval_returns, "diverged": diverged,
            "accumulator": acc.state_dict(), "pending": RunGroup.pack(runs.pending), "pending_tags": runs.pending_tags,
            "complete": final, **push_info})
        saved_step = step
        _flush_or_keep(runs, final, ckpt_path, say)

    try:
        while step < cfg.steps and not complete:
            actions = agent.act(obs, step)
            res = envs.step(actions)
            agent.observe(obs, actions, res.reward, res.next_obs, res.terminated, res.truncated)
            obs = res.obs
            step += 1
            metrics = agent.after_env_step(step)
            if metrics is not None:
                acc.add(metrics)
            for r, ret, length in res.episodes:
                runs.log(r, step, {"train/episode_return": ret, "train/episode_length": length})

            if step % cfg.log_every == 0 or step == cfg.steps:
                now = time.perf_counter()
                sps = (step - last_log_step) / max(now - last_log_time, 1e-9)
                last_log_time, last_log_step = now, step
                means = acc.means()
                means["train/epsilon"] = [agent.epsilon(step)] * len(trial.seeds)
                means["train/sps"] = [sps] * len(trial.seeds)
                runs.log_all(step, {k if "/" in k else f"train/{k}": v for k, v in means.items()})
                _check_divergence(means, step, diverged, runs, say, trial)
                if all(d is not None for d in diverged):
                    break

            if step % cfg.eval_every == 0 or step == cfg.steps:
                index = len(eval_returns[0])
                scores = evaluate(agent, trial, index)
                for r, score in enumerate(scores):
                    eval_returns[r].append([step, float(score)])
                runs.log_all(step, {"eval/return_mean": scores.tolist()})
                wall = elapsed_before + time.perf_counter() - started
                say(f"[{trial.agent} {trial.env} seeds {','.join(map(str, trial.seeds))}] step {step}/{cfg.steps} "
                    f"eval {np.mean(scores):.1f} (min {np.min(scores):.1f}, max {np.max(scores):.1f}) "
                    f"{step * len(trial.seeds) / max(wall, 1e-9):.0f} env steps/s")

            if step % checkpoint_every == 0 or step == cfg.steps:
                checkpoint(final=step == cfg.steps)
        if saved_step != step:  # every replica diverged: the loop stopped before the final checkpoint
            checkpoint(final=True)
    except UnpushedError:
        raise  # training is complete and checkpointed: the runs are not failed, only not yet written
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        for r in range(len(trial.seeds)):
            try:
                runs.set_tags(r, {"error": f"{type(exc).__name__}: {str(exc)[:200]}"})
                runs.finish(r, status)
            except Exception:
                pass
        raise
    finally:
        envs.close()

    wall = elapsed_before + time.perf_counter() - started
    try:
        return _finish(trial, agent, runs, eval_returns, diverged, step, wall, device, results_dir, ckpt_path)
    except TrackingError as exc:  # the final checkpoint holds all that is still needed to finish the runs
        raise UnpushedError(_unpushed_message(exc, runs.pending_points, ckpt_path)) from None


def _drop_orphan_runs(client: Any, experiment_id: str, group: str, say: Callable[[str], None]) -> None:
    """A resume with no checkpoint starts fresh: runs of this group left unfinished by a process killed before
    its first checkpoint can never be continued, so they are soft-deleted (one run per seed stays visible)."""
    try:
        stale = client.search_runs([experiment_id], f"tags.group_hash = '{group}' and attributes.status != 'FINISHED'",
                                   max_results=1000)
        for run in stale:
            client.delete_run(run.info.run_id)
        if stale:
            say(f"deleted {len(stale)} unfinished run(s) of this trial that no checkpoint continues")
    except Exception as exc:  # tidying only: never fail a run for it
        say(f"could not tidy unfinished runs of this trial: {exc}")


def checkpoint_path(trial: TrialSpec, checkpoint_dir: Path) -> Path:
    """Where the checkpoint of ``trial``'s group lives in ``checkpoint_dir``."""
    name = trial.env.replace("/", "_").replace(":", "_")
    return Path(checkpoint_dir) / f"{trial.agent}-{name}-{trial.group_hash()}.pt"


def _flush_or_keep(runs: RunGroup, final: bool, ckpt_path: Path, say: Callable[[str], None]) -> None:
    """Write buffered metrics and tags. Mid-run the write runs in the background (training never waits for
    the store), and a store that is down does not stop training: the points stay in memory and in the
    checkpoint just written, and go out with the next flush. At the end of the run the write is waited for,
    and an unreachable store is an :class:`UnpushedError`; ``targetbench push`` (or ``--resume``) writes
    everything later (re-sent points are recognised by the store)."""
    runs.background = not final
    try:
        runs.flush()
    except TrackingError as exc:
        if final:
            raise UnpushedError(_unpushed_message(exc, runs.pending_points, ckpt_path)) from None
        say(f"tracking store unavailable ({exc}); {runs.pending_points} metric points kept in {ckpt_path.name}, "
            "retrying at the next checkpoint")


def _unpushed_message(exc: Exception, points: int, ckpt_path: Path) -> str:
    return (f"{exc}; training is complete and its {points} unwritten metric points and final records are kept in "
            f"checkpoint {ckpt_path}: once the store is back, run `targetbench push --checkpoint-dir "
            f"{ckpt_path.parent}` (or rerun the same command with --resume)")


def _check_divergence(means: dict[str, list[float]], step: int, diverged: list[int | None], runs: RunGroup,
                      say: Callable[[str], None], trial: TrialSpec) -> None:
    """Tag replicas whose loss or Q-values became NaN/inf. The other replicas are unaffected (independent)."""
    for r in range(len(diverged)):
        values = [means[k][r] for k in ("loss", "q_mean") if k in means]
        if diverged[r] is None and any(not math.isfinite(v) for v in values):
            diverged[r] = step
            # Buffered, written with the next flush: a store that is down must not fail the trial.
            runs.tag(r, {"outcome": "diverged", "diverged_step": str(step)})
            say(f"[{trial.agent} {trial.env}] seed {trial.seeds[r]} diverged at step {step}")


def _finish(trial: TrialSpec, agent: Any, runs: RunGroup, eval_returns: list, diverged: list, step: int,
            wall: float, device: torch.device, results_dir: Path, ckpt_path: Path) -> list[SeedResult]:
    """Artifacts, final tags, FINISHED, and the per-seed results.

    The final tags of all runs go out together in one write (on the SQLite store one transaction: per-call
    commits dominate the end of a run). Runs are marked FINISHED only after everything else is stored, so a
    FINISHED run is a complete one (``targetbench push`` relies on that)."""
    hashes = agent.params_sha256()
    results = []
    with tempfile.TemporaryDirectory(dir=results_dir) as tmp:
        for r, seed in enumerate(trial.seeds):
            folder = Path(tmp) / str(r)
            folder.mkdir()
            (folder / "config.yaml").write_text(yaml.safe_dump({**trial.resolved(), "seed": seed}, sort_keys=False))
            with open(folder / "eval_returns.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["step", "eval_return_mean"])
                w.writerows(eval_returns[r])
            # Serialised in memory first: torch.save to a path turns a full disk into an opaque RuntimeError,
            # a plain write raises the OSError that the CLI reports as exit 5.
            buffer = io.BytesIO()
            torch.save(agent.replica_params(r), buffer)
            (folder / "final_params.pt").write_bytes(buffer.getvalue())
            runs.log_artifacts(r, folder)  # one call for the three files: per-call store costs dominate here
            outcome = "diverged" if diverged[r] is not None else "completed"
            runs.tag(r, {"outcome": outcome, "params_sha256": hashes[r], "checkpoint": ckpt_path.name})
            final = eval_returns[r][-1][1] if eval_returns[r] else float("nan")
            results.append(SeedResult(
                run_id=runs.run_ids[r], agent=trial.agent, env=trial.env, seed=seed, steps=step,
                final_eval_return=final, eval_returns=eval_returns[r], params_sha256=hashes[r], wall_s=round(wall, 3),
                sps=round(step / max(wall, 1e-9), 1), trial_hash=trial.trial_hash(seed), status=outcome,
                diverged_step=diverged[r], parameter_count=agent.replica_parameter_count(r),
                target_bytes=agent.target_bytes(), device=str(device)))
    runs.background = False
    runs.flush()
    for r in range(len(trial.seeds)):
        runs.finish(r, "FINISHED")
    return results
