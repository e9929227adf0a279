"""Synthetic MLflow stores with known scores, for tests and benchmarks (no training, no agents).

Each run carries the records :mod:`suite.trainer` writes that the analysis reads: tags agent, env, family, seed,
trial_hash, target_rule, outcome (+ diverged_step), variant; params ``agent.*`` / ``train.steps``; metric
histories ``eval/return_mean`` and ``train/episode_return`` against env steps.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable, Mapping

from analysis import record_names as names


__all__ = ["make_store", "FAMILIES"]

FAMILIES = {"CartPole-v1": "classic", "Acrobot-v1": "classic", "MountainCar-v0": "classic"}


def make_store(uri: str, experiment: str, runs: Iterable[Mapping], *, steps: int = 1000, evals: int = 5,
               curve: Callable[[float], float] | None = None) -> list[str]:
    """Create ``experiment`` in ``uri`` with one MLflow run per item of ``runs``.

    Each item: agent, env, seed, final (the final eval return), optional variant, outcome ("completed" |
    "diverged" | "failed" | "running"), params (dict of agent params), episode_returns (list of training episode
    returns, logged at consecutive steps), curve (this run's own ``curve``). Evaluations are logged at
    ``steps/evals`` intervals rising linearly (or by ``curve(fraction)``) to ``final``. Returns the run ids.
    """
    import logging

    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
    ids = []
    now = int(time.time() * 1000)
    for i, r in enumerate(runs):
        outcome = r.get("outcome", names.OUTCOME_COMPLETED)
        tags = {names.AGENT: r["agent"], names.ENV: r["env"],
                names.FAMILY: FAMILIES.get(r["env"], r["env"].split("/")[0].lower()), names.SEED: str(r["seed"]),
                names.TRIAL_HASH: f"h{i:06d}", names.TARGET_RULE: r.get("target_rule", "hard"),
                names.VARIANT: r.get("variant", names.DEFAULT_VARIANT)}
        if outcome in (names.OUTCOME_COMPLETED, names.OUTCOME_DIVERGED):
            tags[names.OUTCOME] = outcome
        if outcome == names.OUTCOME_DIVERGED:
            tags[names.DIVERGED_STEP] = str(r.get("diverged_step", steps // 2))
        run = client.create_run(exp_id, tags=tags, run_name=f"{r['agent']}/{r['env']}/seed{r['seed']}")
        rid = run.info.run_id
        params = {"train.steps": str(r.get("steps", steps)), "seed": str(r["seed"]),
                  **{f"agent.{k}": str(v) for k, v in (r.get("params") or {}).items()}}
        metrics = []
        n_eval = evals if outcome != "failed" else max(1, evals // 2)
        run_steps = int(r.get("steps", steps))
        shape = r.get("curve", curve)
        for k in range(1, n_eval + 1):
            frac = k / evals
            value = r["final"] * (shape(frac) if shape else frac)
            metrics.append(Metric(names.EVAL_RETURN, float(value), now + k, int(run_steps * frac)))
        for j, ret in enumerate(r.get("episode_returns") or []):
            metrics.append(Metric(names.EPISODE_RETURN, float(ret), now + j, j + 1))
        for start in range(0, len(metrics), 1000):
            client.log_batch(rid, metrics=metrics[start:start + 1000],
                             params=[Param(k, v) for k, v in params.items()] if start == 0 else [],
                             tags=[RunTag(names.MLFLOW_RUN_NAME, run.info.run_name)] if start == 0 else [])
        if outcome == "failed":
            client.set_terminated(rid, "FAILED")
        elif outcome != "running":
            client.set_terminated(rid, "FINISHED")
        ids.append(rid)
    return ids
