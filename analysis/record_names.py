"""Names of what TargetBench records in MLflow: run tags, metric keys and the MLflow system tags it sets.

One place for the writer (:mod:`suite.recorder`, push, the scheduler) and the reader (:mod:`analysis.runs`); it lives
in ``analysis`` because the reader defines what it reads and ``analysis`` may import nothing from ``suite``. The names are
public (users filter runs by them, e.g. ``tags.agent = 'dqn'``): add names, never rename one.
"""
from __future__ import annotations

# -- run tags: identity (set when the runs are created) -------------------------------------------------------
AGENT = "agent"
ENV = "env"
FAMILY = "family"
SEED = "seed"
TRIAL_HASH = "trial_hash"
GROUP_HASH = "group_hash"
BATCH_SEEDS = "batch_seeds"
TARGET_RULE = "target_rule"
BOOTSTRAP_RULE = "bootstrap_rule"
KERNELS = "kernels"
KERNELS_REASON = "kernels_reason"  # why that backend (agents/learners.py declarations)
#: how the torch learner ran under ``train.compile``: ``off``, ``on``, or ``fallback (REASON)`` (compiling failed)
COMPILE = "compile"
#: ``train.video_every`` (evaluation videos are artifacts under ``videos/``; 0: none)
VIDEO_EVERY = "video_every"
#: the evaluation protocol's fingerprint (suite/protocol.py); its fields are the ``protocol.*`` params
PROTOCOL = "protocol"
PROTOCOL_PARAM_PREFIX = "protocol."
#: the protocol field ``score_kind``: how a run is scored (analysis/protocol_scores.py computes each kind)
SCORE_FINAL_EVALUATION = "final evaluation"
SCORE_PER_ITERATION = "training returns per iteration"  # with the field score_iteration_steps
SCORE_LAST_EPISODES = "training returns, last episodes"  # with the field score_last_episodes
#: set by the scheduler for every run of a sweep
VARIANT = "variant"
SUITE = "suite"
#: the variant of a run without a ``variant`` tag
DEFAULT_VARIANT = "default"
#: set by the scheduler when a group ends: the group's training wall time over every resumed attempt (s) and the
#: CPU time of its last attempt's worker process (s; where the backend reports it); docs/results reads them
GROUP_WALL_S = "group_wall_s"
GROUP_CPU_S = "group_cpu_s"

# -- run tags: outcome (set at the end, or when a replica diverges) ------------------------------------------
OUTCOME = "outcome"
OUTCOME_COMPLETED = "completed"
OUTCOME_DIVERGED = "diverged"
DIVERGED_STEP = "diverged_step"
PARAMS_SHA256 = "params_sha256"
#: what the run cost: training wall time over every resumed attempt (s), and env steps of this seed per second
#: of it (the device is the ``torch_device`` tag)
WALL_S_TAG = "wall_s"
SEED_STEPS_PER_S = "seed_steps_per_s"
DEVICE = "torch_device"
CHECKPOINT = "checkpoint"
ERROR = "error"
#: the ``error`` of an earlier failed attempt, kept when a later attempt of the same run finished
RETRIED_AFTER_ERROR = "retried_after_error"

# -- MLflow system tags (the MLflow UI shows them: run name, Source column, description) ---------------------
MLFLOW_RUN_NAME = "mlflow.runName"
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
MLFLOW_SOURCE_NAME = "mlflow.source.name"
MLFLOW_SOURCE_TYPE = "mlflow.source.type"
MLFLOW_NOTE = "mlflow.note.content"
#: ``mlflow.source.type`` of every run: started from a local command
SOURCE_TYPE = "LOCAL"

# -- metrics ---------------------------------------------------------------------------------------------------
EPISODE_RETURN = "train/episode_return"
EPISODE_LENGTH = "train/episode_length"
EPSILON = "train/epsilon"
SPS = "train/sps"
#: prefix of the agent's update metrics (``loss`` is recorded as ``train/loss``)
TRAIN_PREFIX = "train/"
EVAL_RETURN = "eval/return_mean"
#: training wall time (s, over every resumed attempt) at each evaluation: return against wall-clock time
WALL_S = "time/wall_s"
#: metrics whose values measure the machine, not the learning: two runs of one trial log them at the same steps
#: with other values
WALL_CLOCK_METRICS = (SPS, WALL_S)
#: prefix of the MLflow system metrics (CPU, memory, disk, network, GPU): sampled on a timer, so even how many
#: points a run gets depends on its wall time
SYSTEM_PREFIX = "system/"
#: EauDeQN: share of the target network's weights at zero (``train/`` + the agent's ``target_sparsity``)
TARGET_SPARSITY = "train/target_sparsity"


def source_name(suite: str | None = None) -> str:
    """``mlflow.source.name`` of a run: the command that made it."""
    return f"targetbench sweep {suite}" if suite else "targetbench run"


def train_metric(name: str) -> str:
    """The recorded key of an agent update metric (``loss`` -> ``train/loss``; a key with a ``/`` is kept)."""
    return name if "/" in name else TRAIN_PREFIX + name
