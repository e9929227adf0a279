"""Per-run data: one gzip CSV row per (run, evaluation point), the format docs/results/runs/ ships.

Everything in docs/results is derived from these files alone, and ``targetbench analyze --reference``,
``targetbench seeds`` and ``targetbench verify`` read them back; published runs of other sources (Dopamine) are
converted into the same format. The columns start with exactly :data:`REQUIRED_COLUMNS` (the only ones a
converted source must have); the suite's own exports add the run-level columns of :data:`RUN_COLUMNS`, then the
run's tags as ``tag.<name>`` (:data:`TAGS` and ``version.*``) and its params as ``param.<name>`` (the resolved
config, enough to rebuild the trial). Run-level values repeat on every row of the run (gzip folds them away).
:data:`COLUMN_DOCS` says what each column holds; docs/results/README.md prints it as the data dictionary.
"""
from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from analysis import record_names as names

__all__ = ["REQUIRED_COLUMNS", "RUN_COLUMNS", "TAGS", "COLUMN_DOCS", "from_frames", "to_frames", "write_run_table", "read_reference",
           "read_run_table", "read_run_folder", "RUNS_FOLDER", "SUFFIX"]

REQUIRED_COLUMNS = ["experiment", "agent", "variant", "env", "seed", "step", "eval_return", "status", "trial_hash",
                    "protocol", "params_sha256", "commit"]
RUN_COLUMNS = ["run_id", "outcome", "diverged_step", "family", "start_time", "end_time", "target_sparsity",
               "train_episodes", "train_return_last100", "solve_episode", "method", "knob", "knob_value"]
#: the tags kept (``tag.<name>``): batching and cost, the learner, provenance. Not kept: the host name, error
#: texts and checkpoint locations (they can name paths of the machine), MLflow's own tags.
TAGS = (names.GROUP_HASH, names.BATCH_SEEDS, names.GROUP_WALL_S, names.GROUP_CPU_S, names.SUITE, names.TARGET_RULE,
        names.BOOTSTRAP_RULE, names.KERNELS, "git_dirty", "platform", "cpu_count", "cpu_model", "blas_kernel",
        "torch_device", "gpu", "torch_threads", "blas_threads", "threads_resolved", "cpu_flush_denormal")
#: what each column holds (the data dictionary of docs/results/README.md)
COLUMN_DOCS = {
    "experiment": "the MLflow experiment the run was recorded in (one per reference part and budget)",
    "agent": "registered agent name", "variant": "the suite variant (`default` when none)",
    "env": "environment id", "seed": "the seed",
    "step": "env steps (per seed) at the evaluation; empty for a run that never evaluated",
    "eval_return": "mean greedy return of the evaluation's episodes (ε_eval); empty for a run that never evaluated",
    "status": "MLflow run status: FINISHED, FAILED, KILLED or RUNNING",
    "trial_hash": "the trial's identity (resolved config + seed), the key runs are matched by",
    "protocol": "fingerprint of the evaluation protocol; its fields are the `param.protocol.*` columns",
    "params_sha256": "SHA-256 of the final parameters (what `targetbench run --json` prints)",
    "commit": "git commit of the code that trained the run (`tag.git_dirty` = true: the tree had uncommitted "
              "changes)",
    "run_id": "MLflow run id", "outcome": "completed, diverged (loss or Q-values became NaN/inf), failed or running",
    "diverged_step": "env step at which the run diverged", "family": "environment family",
    "start_time": "run start, ms since the epoch", "end_time": "run end, ms since the epoch",
    "target_sparsity": "last `train/target_sparsity` (share of the target's weights at zero; EauDeQN)",
    "train_episodes": "training episodes recorded",
    "train_return_last100": "mean return of the last 100 training episodes",
    "solve_episode": "training episode at which the 100-episode moving average of training returns first reached "
                     "475 (CartPole-v1's solve threshold); empty if never",
    "method": "sensitivity studies: agent and sweep, e.g. `dqn C` (declared by the suite)",
    "knob": "sensitivity studies: the param the sweep varies, e.g. `agent.target_period` (declared by the suite)",
    "knob_value": "the value of `knob` in this run",
    "tag.*": "run tags: batching and cost (`group_hash`, `batch_seeds`, `group_wall_s`, `group_cpu_s`), learner "
             "(`target_rule`, `kernels`), provenance (`git_dirty`, `platform`, `cpu_count`, `cpu_model`, "
             "`blas_kernel`, `torch_device`, `gpu`, thread counts, `version.<package>`)",
    "param.*": "run params: the resolved config (`agent.*`, `env.*`, `train.*`), the protocol's fields "
               "(`protocol.*`), `parameter_count`, `target_bytes`",
}
#: the folder of per-run files inside a results folder, and their suffix
RUNS_FOLDER, SUFFIX = "runs", ".csv.gz"
_NUMERIC = ("seed", "step", "eval_return", "diverged_step", "start_time", "end_time", "target_sparsity",
            "train_episodes", "train_return_last100", "solve_episode", "knob_value")
#: counts and times, written without a decimal point whatever dtype they arrive in
_INTEGER = ("seed", "step", "diverged_step", "start_time", "end_time", "train_episodes", "solve_episode")
#: tags whose values are the required columns' (kept once, under the required name)
_REQUIRED_TAGS = {"protocol": names.PROTOCOL, "params_sha256": names.PARAMS_SHA256, "commit": "git_commit"}


def _kept_tag(tag: str) -> bool:
    return tag in TAGS or tag.startswith("version.")


def _episode_summaries(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per run: train_episodes, train_return_last100, solve_episode (from ``train/episode_return``)."""
    from analysis.reproduction import SOLVE_WINDOW, episodes_to_solve, final_moving_average

    ep = metrics[metrics["metric"] == names.EPISODE_RETURN].sort_values(["run_id", "step"], kind="stable")
    rows = []
    for rid, g in ep.groupby("run_id", sort=False):
        r = g["value"].to_numpy(float)
        at, solved = episodes_to_solve(r)
        rows.append({"run_id": rid, "train_episodes": float(len(r)),
                     "train_return_last100": final_moving_average(r, SOLVE_WINDOW),
                     "solve_episode": at if solved else np.nan})
    return pd.DataFrame(rows, columns=["run_id", "train_episodes", "train_return_last100", "solve_episode"])


def from_frames(runs: pd.DataFrame, metrics: pd.DataFrame, experiment: str, *,
                sweeps: Mapping[tuple[str, str], tuple[str, str]] | None = None) -> pd.DataFrame:
    """The per-run table of one experiment from :func:`analysis.runs.load_experiment`'s ``(runs, metrics)``.

    ``metrics`` should hold ``eval/return_mean`` (the rows), and ``train/episode_return`` and
    ``train/target_sparsity`` where the derived files need them. ``sweeps``: (agent, variant) → (method, knob)
    for the runs of a sensitivity study, as the suite declares them (``knob`` is the param name, e.g.
    ``agent.target_period``; its value is read from the run's ``param.<knob>``). Rows are sorted by agent,
    variant, env, seed, run and step."""
    if runs.empty:
        return pd.DataFrame(columns=REQUIRED_COLUMNS + RUN_COLUMNS)
    run = pd.DataFrame({
        "experiment": experiment, "agent": runs["agent"], "variant": runs["variant"], "env": runs["env"],
        "seed": runs["seed"].astype(int), "status": runs["status"], "trial_hash": runs["trial_hash"],
        **{col: runs.get(f"tag.{tag}", pd.Series(np.nan, index=runs.index)) for col, tag in _REQUIRED_TAGS.items()},
        "run_id": runs["run_id"], "outcome": runs["outcome"], "diverged_step": runs["diverged_step"],
        "family": runs["family"], "start_time": runs["start_time"], "end_time": runs["end_time"]})
    sparsity = metrics[metrics["metric"] == names.TARGET_SPARSITY].sort_values("step", kind="stable")
    run["target_sparsity"] = run["run_id"].map(sparsity.groupby("run_id")["value"].last())
    declared = [(sweeps or {}).get((a, v), (None, None)) for a, v in zip(runs["agent"], runs["variant"])]
    run["method"] = [m for m, _ in declared]
    run["knob"] = [k for _, k in declared]
    run["knob_value"] = [float(pd.to_numeric(runs[f"param.{k}"].iloc[i], errors="coerce"))
                         if k and f"param.{k}" in runs.columns else np.nan for i, (_, k) in enumerate(declared)]
    run = run.reset_index(drop=True).merge(_episode_summaries(metrics), on="run_id", how="left")
    tags = sorted(c for c in runs.columns if c.startswith("tag.") and _kept_tag(c[4:]))
    params = sorted(c for c in runs.columns if c.startswith("param."))
    run = pd.concat([run.reset_index(drop=True), runs[tags + params].reset_index(drop=True)], axis=1)
    ev = metrics[metrics["metric"] == names.EVAL_RETURN][["run_id", "step", "value"]]
    ev = ev.rename(columns={"value": "eval_return"})
    table = run.merge(ev, on="run_id", how="left")
    table = table.sort_values(["agent", "variant", "env", "seed", "run_id", "step"], kind="stable")
    return table[REQUIRED_COLUMNS + RUN_COLUMNS + tags + params].reset_index(drop=True)


def to_frames(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(runs, metrics)`` in the shape of :func:`analysis.runs.load_experiment` (one row per run with ``tag.*`` and
    ``param.*`` columns, ``final_eval_return`` and ``final_step`` from the last evaluation; the long table of
    ``eval/return_mean`` points), plus the run-level columns of the table. Works on the required columns alone
    (converted sources): a missing run id is made from experiment and trial, a missing outcome follows the
    status."""
    t = table.copy()
    for col in REQUIRED_COLUMNS + RUN_COLUMNS:
        if col not in t.columns:
            t[col] = np.nan
    missing_id = t["run_id"].isna()
    t.loc[missing_id, "run_id"] = (t["experiment"].astype(str) + "/" + t["agent"].astype(str) + "/"
                                   + t["variant"].astype(str) + "/" + t["env"].astype(str) + "/"
                                   + t["seed"].astype(str) + "/" + t["trial_hash"].astype(str))[missing_id]
    status_outcome = t["status"].map({"FINISHED": names.OUTCOME_COMPLETED, "RUNNING": "running"}).fillna("failed")
    t["outcome"] = t["outcome"].where(t["outcome"].notna(), status_outcome)
    points = t.dropna(subset=["step"])
    last = points.sort_values("step", kind="stable").groupby("run_id").tail(1).set_index("run_id")
    first = t.drop_duplicates("run_id", keep="first").copy()
    first["final_eval_return"] = first["run_id"].map(last["eval_return"]).astype(float)
    first["final_step"] = first["run_id"].map(last["step"]).astype(float)
    first["seed"] = first["seed"].astype(int)
    first["target_rule"] = first.get(f"tag.{names.TARGET_RULE}", pd.Series(np.nan, index=first.index))
    for col, tag in _REQUIRED_TAGS.items():
        first[f"tag.{tag}"] = first[col]
    runs = first.drop(columns=["step", "eval_return"]).reset_index(drop=True)
    metrics = pd.DataFrame({"run_id": points["run_id"], "agent": points["agent"], "variant": points["variant"],
                            "env": points["env"], "seed": points["seed"].astype(int), "status": points["status"],
                            "outcome": points["run_id"].map(runs.set_index("run_id")["outcome"]),
                            "step": points["step"].astype(np.int64), "metric": names.EVAL_RETURN,
                            "value": points["eval_return"].astype(float)}).reset_index(drop=True)
    return runs, metrics


def write_run_table(table: pd.DataFrame, path: Path) -> Path:
    """Write ``table`` as gzip CSV at ``path``, byte-for-byte the same for the same table (no time stamp or
    file name in the gzip header), through a temporary file so that a failed write leaves the old file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = table.copy()
    for col in _INTEGER:
        if col in table.columns:
            table[col] = pd.to_numeric(table[col], errors="coerce").round().astype("Int64")
    text = table.to_csv(index=False, lineterminator="\n")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode())
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    return path


def read_run_table(path: Path) -> pd.DataFrame:
    """A per-run file back as a table: text columns as strings (params and tags exactly as recorded), the
    numeric columns as floats parsed to the last bit (``round_trip``), ``seed`` as int. A file without the
    required columns is a one-line ``ValueError`` naming the first missing one."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], compression="gzip")
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{Path(path).name} is not a per-run file: column {missing[0]!r} is missing; required: "
                         + ", ".join(REQUIRED_COLUMNS))
    for col in _NUMERIC:
        if col in table.columns:
            table[col] = pd.to_numeric(table[col].map(lambda v: float(v) if isinstance(v, str) else np.nan))
    table["seed"] = table["seed"].astype(int)
    return table


def read_run_folder(folder: Path) -> dict[str, pd.DataFrame]:
    """Part name (file stem) → table, for every ``*.csv.gz`` of ``folder`` (A–Z); empty when there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {p.name[:-len(SUFFIX)]: read_run_table(p) for p in sorted(folder.glob(f"*{SUFFIX}"))}


def read_reference(folder: Path) -> dict[str, pd.DataFrame]:
    """The per-run tables of a results folder given as ``--reference`` (``folder/runs/*.csv.gz``). Raises a
    one-line ValueError naming the folder when a file is unreadable or there is none."""
    try:
        tables = read_run_folder(Path(folder) / RUNS_FOLDER)
    except ValueError as exc:
        raise ValueError(f"--reference {folder}: {exc}") from None
    if not tables:
        raise ValueError(f"--reference {folder} has no per-run data ({RUNS_FOLDER}/*{SUFFIX}); allowed: a results "
                         "folder such as docs/results")
    return tables
