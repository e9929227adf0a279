"""The training loop: R seeds of one (agent, env, config) trained together, one MLflow run per seed.

Reads top to bottom: act, step the envs, store, update on the agent's cadence, then hand what happened to the
recorder (:class:`suite.recorder.Recorder`: log points, evaluations, checkpoints, progress lines, the end),
which alone deals with the tracking store and the checkpoint file.
Step counts are env steps per replica; every replica steps once per loop iteration.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from agents import get_agent
from agents.exploration import EpsilonGreedy
from agents.learners import TorchOptions
from agents.seeding import derive_seed, numpy_rng
from suite import progress_bar, video
from suite.checkpoint import checkpoint_path
from suite.envs import ReplicaEnvs, get_family
from suite.errors import UsageError
from suite.provenance import apply_cpu_threads, replica_threads, resolve_device
from suite.recorder import Recorder, SeedResult, UnpushedError
from suite.tracking import public_uri
from suite.trial import TrialSpec

__all__ = ["SeedResult", "UnpushedError", "train", "evaluate", "public_uri", "checkpoint_path"]


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


def train(trial: TrialSpec, *, tracking_uri: str, experiment: str, results_dir: Path,
          checkpoint_dir: Path | None = None, resume: bool = False,
          progress: Callable[[str], None] | None = None,
          extra_tags: Mapping[str, str] | None = None, adopt_checkpoint: bool = False,
          progress_interval_s: float = 30.0, checkpoint_store: Any = None) -> list[SeedResult]:
    """Train ``trial``'s seeds together and record one MLflow run per seed. Returns one result per seed.

    ``extra_tags`` are added to every run (the scheduler records ``variant`` and ``suite`` this way). Progress
    lines (at every evaluation, and at least every ``progress_interval_s`` seconds; negative: only at
    evaluations) have the stable forms ``[...] step S/N ...`` and ``[...] resumed at step S`` (the scheduler
    parses them). ``adopt_checkpoint``: resume the checkpoint even if it records another tracking store
    (``targetbench push --tracking-uri``: the same store under another address). ``checkpoint_store``
    (:class:`suite.checkpoint_store.CheckpointStore`): a remote store the checkpoints are mirrored to and
    resumed from (default: the checkpoint folder alone). Without ``progress``, progress goes to stderr: a
    progress bar on a terminal, the lines otherwise.

    A fresh group's tracking store is opened in the background while training starts (see
    :class:`suite.recorder.Recorder`); what it records is the same.
    """
    cfg = trial.train
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    device = resolve_device(cfg.device)
    options = TorchOptions(cfg.amp, cfg.compile, warn=lambda msg: say(f"[{trial.agent} {trial.env}] {msg}"))
    refusal = options.refusal(device)
    if refusal:
        raise UsageError(refusal)
    if cfg.video_every:
        video.check_video_support(trial.env, trial.env_options)
    spec = get_agent(trial.agent)
    bar = None
    if progress is None and progress_interval_s >= 0 and progress_bar.wanted():
        bar = progress_bar.ProgressBar(f"{trial.agent} {trial.env} seeds {','.join(map(str, trial.seeds))}",
                                       cfg.steps)
        say, progress_interval_s = bar.write, progress_bar.ProgressBar.INTERVAL_S
    recorder = Recorder(trial, tracking_uri=tracking_uri, experiment=experiment, results_dir=results_dir,
                        checkpoint_dir=checkpoint_dir or results_dir / "checkpoints", resume=resume, say=say,
                        extra_tags=extra_tags, adopt_checkpoint=adopt_checkpoint,
                        progress_interval_s=progress_interval_s, checkpoint_store=checkpoint_store, bar=bar)

    envs = ReplicaEnvs(trial.env, [derive_seed(s, "env") for s in trial.seeds], options=trial.env_options)
    agent = spec.cls(trial.agent_config, obs_shape=envs.observation_shape, obs_dtype=envs.observation_dtype,
                     num_actions=envs.num_actions, seeds=trial.seeds, family=get_family(trial.family).facts,
                     total_steps=cfg.steps, device=device, kernels=cfg.kernels,
                     threads=replica_threads(cfg.threads))
    if options.active:
        agent.use_torch_options(options)
    apply_cpu_threads(cfg.threads, agent)  # numpy kernels: split replicas over cores; torch: 1 unless told

    try:
        state = recorder.state
        if state is not None:
            agent.load_state_dict(state["agent"])
            envs.set_state(state["envs"])
            obs = np.asarray(state["obs"])
        else:
            obs = envs.reset()
        # the store and the runs (a fresh group: in the background, while training starts); a resumed checkpoint's
        # kept points go out
        recorder.open(agent, device, background=True)
    except BaseException:
        envs.close()
        raise

    checkpoint_every = cfg.checkpoint_every or cfg.eval_every
    step = recorder.step
    recorder.start_clock()
    try:
        while step < cfg.steps and not recorder.complete:
            actions = agent.act(obs, step)
            res = envs.step(actions)
            agent.observe(obs, actions, res.reward, res.next_obs, res.terminated, res.truncated)
            obs = res.obs
            step += 1
            recorder.stepped(step, agent.after_env_step(step), res.episodes)

            if step % cfg.log_every == 0 or step == cfg.steps:
                if recorder.log_point(step, agent.epsilon(step)):
                    break  # every replica diverged
            if step % cfg.eval_every == 0 or step == cfg.steps:
                recorder.evaluated(step, evaluate(agent, trial, recorder.evaluations))
                if video.due(cfg.video_every, recorder.evaluations):
                    video.record_videos(agent, trial, recorder.evaluations - 1, step, recorder.videos)
            if step % checkpoint_every == 0 or step == cfg.steps:
                recorder.checkpoint(step, agent, envs, obs, final=step == cfg.steps)
        if recorder.saved_step != step:  # every replica diverged: the loop stopped before the final checkpoint
            recorder.checkpoint(step, agent, envs, obs, final=True)
    except UnpushedError:
        raise  # training is complete and checkpointed: the runs are not failed, only not yet written
    except BaseException as exc:
        recorder.fail(exc)
        raise
    finally:
        envs.close()
    return recorder.finish(agent, step, device)
