"""Scores that a named protocol reads from training episodes, computed from the run records.

Most protocols score a run by its final evaluation (``final_eval_return``). Two Atari protocols score training
instead (see docs/protocols.md), and both are computable from the ``train/episode_return`` points every run
records (one point per finished training episode, at the env step it ended):

* ``dopamine``: per iteration of ``score_iteration_steps`` env steps (250,000 agent steps), the mean return of
  the training episodes that end in it — iteration ``k`` (0-based) holds the episodes ending at steps
  ``k·L < s <= (k+1)·L``. Dopamine itself runs the episode that straddles an iteration's end to completion
  inside that iteration and starts the next one afresh; ours continues it, so it counts where it ends.
* ``machado-2018``: the mean return of the last ``score_last_episodes`` (100) training episodes.

The protocol's parameters come from the run's ``protocol.*`` params (recorded with every run);
:func:`score_points` gives every run's score curve as its protocol defines it, whichever that is.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import record_names as names

__all__ = ["iteration_returns", "last_episodes_mean", "run_iterations", "score_points"]


def iteration_returns(steps: np.ndarray, returns: np.ndarray, iteration_steps: int, last_step: int) -> pd.DataFrame:
    """Per iteration of ``iteration_steps`` env steps up to ``last_step`` (the run's last step): ``iteration``
    (0-based), ``step`` (its end, ``(iteration + 1) · iteration_steps``), ``mean_return`` of the episodes that
    ended in it (NaN when none did), ``episodes``, and ``coverage``: the fraction of the iteration the run
    reached (1.0 for a complete iteration; the last one may be partial)."""
    steps = np.asarray(steps, dtype=np.int64)
    returns = np.asarray(returns, dtype=float)
    L = int(iteration_steps)
    count = -(-int(last_step) // L) if last_step > 0 else 0  # iterations the run entered
    which = (steps - 1) // L
    rows = []
    for k in range(count):
        r = returns[which == k]
        rows.append({"iteration": k, "step": (k + 1) * L, "mean_return": float(r.mean()) if len(r) else np.nan,
                     "episodes": len(r), "coverage": min(1.0, (int(last_step) - k * L) / L)})
    return pd.DataFrame(rows, columns=["iteration", "step", "mean_return", "episodes", "coverage"])


def last_episodes_mean(returns: np.ndarray, n: int) -> float:
    """Mean of the last ``n`` training-episode returns (all of them when fewer; NaN when none)."""
    r = np.asarray(returns, dtype=float)
    return float(r[-int(n):].mean()) if len(r) else float("nan")


def run_iterations(runs: pd.DataFrame, metrics: pd.DataFrame, iteration_steps: int) -> pd.DataFrame:
    """:func:`iteration_returns` of every run in ``runs`` (long: run_id, env, seed, iteration, step, mean_return,
    episodes, coverage). A run's last step is its last evaluation's (every run evaluates at its end)."""
    ep = metrics[metrics["metric"] == names.EPISODE_RETURN]
    ev = metrics[metrics["metric"] == names.EVAL_RETURN]
    last = ev.groupby("run_id")["step"].max()
    out = []
    for _, run in runs.iterrows():
        rid = run["run_id"]
        points = ep[ep["run_id"] == rid].sort_values("step")
        end = int(last.get(rid, points["step"].max() if len(points) else 0))
        table = iteration_returns(points["step"].to_numpy(), points["value"].to_numpy(), iteration_steps, end)
        out.append(table.assign(run_id=rid, env=run["env"], seed=run["seed"]))
    cols = ["run_id", "env", "seed", "iteration", "step", "mean_return", "episodes", "coverage"]
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)


def score_points(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Every run's score curve as its protocol defines it (run_id, step, score): the evaluation returns
    (``eval/return_mean``) by default; the iteration means (:func:`run_iterations`, complete iterations only) under
    a per-iteration protocol; the mean of the last ``protocol.score_last_episodes`` training episodes up to each
    evaluation step under a last-episodes protocol. The protocol comes from the run's ``param.protocol.*``."""
    kind = runs.get("param.protocol.score_kind", pd.Series(index=runs.index, dtype=object))
    out = []
    for i, run in runs.iterrows():
        rid, k = run["run_id"], kind.get(i)
        ev = metrics[(metrics["run_id"] == rid) & (metrics["metric"] == names.EVAL_RETURN)].sort_values("step")
        if k == names.SCORE_PER_ITERATION:
            its = run_iterations(runs.loc[[i]], metrics, int(run["param.protocol.score_iteration_steps"]))
            its = its[its["coverage"] >= 1.0]
            out.append(pd.DataFrame({"run_id": rid, "step": its["step"], "score": its["mean_return"]}))
        elif k == names.SCORE_LAST_EPISODES:
            n = int(run["param.protocol.score_last_episodes"])
            ep = metrics[(metrics["run_id"] == rid) & (metrics["metric"] == names.EPISODE_RETURN)].sort_values("step")
            steps, values = ep["step"].to_numpy(), ep["value"].to_numpy()
            scores = [last_episodes_mean(values[steps <= s], n) for s in ev["step"]]
            out.append(pd.DataFrame({"run_id": rid, "step": ev["step"].to_numpy(), "score": scores}))
        else:
            out.append(pd.DataFrame({"run_id": rid, "step": ev["step"].to_numpy(), "score": ev["value"].to_numpy()}))
    cols = ["run_id", "step", "score"]
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)
