"""Reading runs back from the tracking store (any MLflow URI) into tidy pandas DataFrames.

The analysis never looks at agent internals: everything it knows comes from the run records (tags, params,
metric histories). Two tables come back:

* ``load_runs``: one row per run (run_id, status, agent, variant, env, family, seed, outcome, trial_hash,
  diverged_step, final_eval_return, the run's tags as ``tag.*`` and params as ``param.*``);
* ``load_metrics``: the long, tidy table (run_id, agent, variant, env, seed, status, outcome, step, metric,
  value) of the chosen metric histories.

``load_experiment`` returns both and caches them under ``results/cache/`` (Parquet when pyarrow is present,
CSV otherwise). The cache is keyed by the tracking URI and experiment and checked against a fingerprint of the
run listing (run ids, statuses, end times): one cheap listing query, and the metric histories (the slow part)
are read again only when a run changed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from analysis import record_names as names

__all__ = ["load_runs", "load_metric", "load_metrics", "load_experiment", "DEFAULT_METRICS", "RUN_COLUMNS"]

#: metric histories read by default: evaluation returns (scores, curves), training episode returns
#: (episodes-to-solve for the CartPole ablation) and the wall time at each evaluation (the compute section)
DEFAULT_METRICS = (names.EVAL_RETURN, names.EPISODE_RETURN, names.WALL_S)
RUN_COLUMNS = ["run_id", "status", "agent", "variant", "env", "family", "seed", "outcome", "trial_hash",
               "diverged_step", "target_rule", "final_eval_return", "final_step", "start_time", "end_time"]
_KEYS = ["run_id", "agent", "variant", "env", "seed", "status", "outcome"]


def _client(uri: str):
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return mlflow.MlflowClient(uri)


def _experiment_id(client, uri: str, experiment: str) -> str:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ValueError(f"experiment {experiment!r} not found in {uri}")
    return exp.experiment_id


def _search_all(client, experiment_id: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=5000, page_token=token)
        runs.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return runs


def _run_row(run) -> dict:
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    outcome = tags.get(names.OUTCOME)
    if outcome is None:  # a run that never reached its end: its MLflow status says why
        outcome = {"FINISHED": names.OUTCOME_COMPLETED, "RUNNING": "running"}.get(run.info.status, "failed")
    div = tags.get(names.DIVERGED_STEP)
    return {"run_id": run.info.run_id, "status": run.info.status, "agent": tags.get(names.AGENT),
            "variant": tags.get(names.VARIANT) or names.DEFAULT_VARIANT, "env": tags.get(names.ENV),
            "family": tags.get(names.FAMILY), "seed": int(tags.get(names.SEED, -1)), "outcome": outcome,
            "trial_hash": tags.get(names.TRIAL_HASH), "diverged_step": float(div) if div not in (None, "") else np.nan,
            "target_rule": tags.get(names.TARGET_RULE),
            "final_eval_return": metrics.get(names.EVAL_RETURN, np.nan),
            "final_step": np.nan, "start_time": run.info.start_time, "end_time": run.info.end_time,
            **{f"tag.{k}": v for k, v in tags.items() if not k.startswith("mlflow.")},
            **{f"param.{k}": v for k, v in params.items()}}


def load_runs(uri: str, experiment: str) -> pd.DataFrame:
    """One row per run (see the module docstring). An unknown experiment gives a one-line ``ValueError``.

    ``variant`` is the MLflow tag ``variant`` ("default" when absent). ``outcome`` is the run's tag
    (completed | diverged) or, for a run without one, "running" / "failed" from its MLflow status.
    """
    client = _client(uri)
    runs = _search_all(client, _experiment_id(client, uri, experiment))
    df = pd.DataFrame([_run_row(r) for r in runs])
    if df.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    return df.sort_values(["agent", "variant", "env", "seed", "run_id"], kind="stable").reset_index(drop=True)


def load_metric(uri: str, run_ids: Sequence[str], key: str) -> pd.DataFrame:
    """Long table (run_id, step, value) of one metric's history for the given runs."""
    client = _client(uri)
    rows = [(rid, m.step, m.value) for rid in run_ids for m in client.get_metric_history(rid, key)]
    return pd.DataFrame(rows, columns=["run_id", "step", "value"])


def load_metrics(uri: str, runs: pd.DataFrame, metrics: Iterable[str] = DEFAULT_METRICS) -> pd.DataFrame:
    """The tidy long table of ``metrics`` for every run in ``runs``: run_id, agent, variant, env, seed, status,
    outcome, step, metric, value (sorted by run, metric, step; one point per (run, metric, step), the last)."""
    client = _client(uri)
    rows = []
    for rid in runs["run_id"]:
        for key in metrics:
            rows.extend((rid, key, m.step, m.timestamp, m.value) for m in client.get_metric_history(rid, key))
    long = pd.DataFrame(rows, columns=["run_id", "metric", "step", "timestamp", "value"])
    long = (long.sort_values(["run_id", "metric", "step", "timestamp"], kind="stable")
            .drop_duplicates(["run_id", "metric", "step"], keep="last").drop(columns="timestamp"))
    meta = runs[[c for c in _KEYS if c in runs.columns]]
    out = meta.merge(long, on="run_id", how="inner")
    out["step"] = out["step"].astype(np.int64)
    out["value"] = out["value"].astype(float)
    return out[_KEYS + ["step", "metric", "value"]].reset_index(drop=True)


# -- cache ------------------------------------------------------------------------------------------------
def _slug(uri: str, experiment: str) -> str:
    digest = hashlib.sha256(f"{uri}\n{experiment}".encode()).hexdigest()[:12]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', experiment)[:60]}-{digest}"


def _fingerprint(runs: pd.DataFrame, metrics: Sequence[str]) -> str:
    cols = ["run_id", "status", "end_time", "outcome"]
    payload = runs[cols].astype(str).sort_values("run_id").to_csv(index=False) + "\n" + ",".join(metrics)
    return hashlib.sha256(payload.encode()).hexdigest()


def _write(df: pd.DataFrame, base: Path) -> Path:
    try:
        import pyarrow  # noqa: F401

        path = base.with_suffix(".parquet")
        df.to_parquet(path, index=False)
    except ImportError:
        path = base.with_suffix(".csv")
        df.to_csv(path, index=False)
    return path


def _read(base: Path) -> pd.DataFrame | None:
    for suffix, reader in ((".parquet", pd.read_parquet), (".csv", pd.read_csv)):
        path = base.with_suffix(suffix)
        if path.exists():
            try:
                return reader(path)
            except Exception:  # a broken cache file is rebuilt, never trusted
                return None
    return None


def load_experiment(uri: str, experiment: str, *, cache_dir: Path | str | None = Path("results/cache"),
                    metrics: Sequence[str] = DEFAULT_METRICS, refresh: bool = False
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(runs, metrics)`` for ``experiment``, through the cache in ``cache_dir`` (``None`` = no cache).

    The run listing is always read (one query) to check the cache's fingerprint; metric histories are read
    from the store only when the fingerprint changed or ``refresh`` is set. ``final_step`` in ``runs`` is the
    last evaluation step of each run.
    """
    metrics = tuple(metrics)
    runs = load_runs(uri, experiment)
    fp = _fingerprint(runs, metrics) if len(runs) else "empty"
    long = None
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        base = cache_dir / _slug(uri, experiment)
        meta_path = base.with_suffix(".json")
        if not refresh and meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                meta = {}
            if meta.get("fingerprint") == fp:
                long = _read(base.with_name(base.name + "-metrics"))
    if long is None:
        long = load_metrics(uri, runs, metrics) if len(runs) else pd.DataFrame(columns=_KEYS + ["step", "metric", "value"])
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            path = _write(long, base.with_name(base.name + "-metrics"))
            meta_path.write_text(json.dumps({"uri": uri, "experiment": experiment, "fingerprint": fp,
                                             "metrics": list(metrics), "file": path.name, "runs": len(runs)}))
    if len(runs):
        ev = long[long["metric"] == names.EVAL_RETURN]
        last = ev.sort_values("step").groupby("run_id")["step"].last()
        runs["final_step"] = runs["run_id"].map(last).astype(float)
    return runs, long
