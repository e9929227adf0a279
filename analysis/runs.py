"""Reading runs back from the tracking store (any MLflow URI) into tidy pandas DataFrames.

The analysis never looks at agent internals: everything it knows comes from the run records.
"""
from __future__ import annotations

import logging
from typing import Sequence

import pandas as pd

__all__ = ["load_runs", "load_metric"]


def _client(uri: str):
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return mlflow.MlflowClient(uri)


def load_runs(uri: str, experiment: str) -> pd.DataFrame:
    """One row per run: run_id, status, agent, env, seed, outcome, final eval return and the run's params.

    An unknown experiment gives a one-line ``ValueError``.
    """
    client = _client(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ValueError(f"experiment {experiment!r} not found in {uri}")
    rows = []
    for run in client.search_runs([exp.experiment_id], max_results=50_000):
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        rows.append({"run_id": run.info.run_id, "status": run.info.status, "agent": tags.get("agent"),
                     "env": tags.get("env"), "seed": int(tags.get("seed", -1)), "outcome": tags.get("outcome"),
                     "trial_hash": tags.get("trial_hash"), "final_eval_return": metrics.get("eval/return_mean"),
                     **{f"param.{k}": v for k, v in params.items()}})
    return pd.DataFrame(rows)


def load_metric(uri: str, run_ids: Sequence[str], key: str) -> pd.DataFrame:
    """Long table (run_id, step, value) of one metric's history for the given runs."""
    client = _client(uri)
    rows = [{"run_id": rid, "step": m.step, "value": m.value}
            for rid in run_ids for m in client.get_metric_history(rid, key)]
    return pd.DataFrame(rows, columns=["run_id", "step", "value"])
