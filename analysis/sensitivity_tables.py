"""The target-knob sensitivity study of docs/results: IQM per knob value, the share of the knob range within
10 % of the best, the best setting per method, and the verdict on "tracking removes the need to tune the hard
update period" per reading.

A *method* is one sweep of one knob of one agent (``dqn C``, ``sgt2-dqn eta-mt``): the runs' ``method``, ``knob``
(the param the sweep varies, e.g. ``agent.target_period``) and ``knob_value`` columns, declared by the suite that
ran them (:mod:`analysis.run_table`), never parsed back out of variant names.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from analysis import stats
from analysis.classic_tables import BASELINE, finished

__all__ = ["SENSITIVITY_COLUMNS", "SHARE_COLUMNS", "CLAIM_COLUMNS", "SHARE_TOLERANCE", "ALL_ENVS", "CLAIM_RULE",
           "sensitivity_cells", "sensitivity_table", "share_within", "sensitivity_share", "best_settings",
           "claim_verdicts"]

SENSITIVITY_COLUMNS = ["method", "agent", "knob", "value", "env", "seeds", "iqm", "iqm_ci_low", "iqm_ci_high"]
SHARE_COLUMNS = ["method", "env", "values", "best_value", "best_iqm", "share", "share_ci_low", "share_ci_high"]
CLAIM_COLUMNS = ["reading", "env", "share", "share_ci_low", "share_ci_high", "best_value", "best_iqm",
                 "best_ci_low", "best_ci_high", "flatter", "as_good", "verdict", "same_as"]
#: "within 10 % of the best IQM": IQM ≥ best − 0.1·|best| (normalised scores)
SHARE_TOLERANCE = 0.10
ALL_ENVS = "all"
#: the rule of :func:`claim_verdicts`, as docs/results states it
CLAIM_RULE = ("A reading supports the claim when its knob is flatter than DQN's hard-update period C (its share "
              "within 10 % has a 95 % interval entirely above dqn C's) and it is as good at its best (the interval "
              "of its best IQM reaches dqn C's best IQM). It does not support the claim when its share interval "
              "lies entirely below dqn C's or its best IQM's interval stays below dqn C's best; otherwise the "
              "data cannot tell (inconclusive). Both environments pooled (`all`).")


def sensitivity_cells(runs: pd.DataFrame) -> pd.DataFrame:
    """The scored runs of declared sweeps (``method`` set, numeric ``knob_value``, a normalised score), with
    ``value`` (the knob's value), ``knob_param`` (the param, ``agent.target_period``) and ``knob`` (its field
name, ``target_period``)."""
    if runs.empty or "method" not in runs.columns:
        return pd.DataFrame()
    scored = finished(runs)
    keep = scored["normalised"] & scored["method"].notna() & pd.to_numeric(scored["knob_value"],
                                                                           errors="coerce").notna()
    cells = scored[keep].copy()
    cells["value"] = cells["knob_value"].astype(float)
    cells["knob_param"] = cells["knob"].astype(str)
    cells["knob"] = cells["knob_param"].str.split(".").str[-1]
    return cells


def sensitivity_table(runs: pd.DataFrame, *, reps: int = stats.DEFAULT_REPS, seed: int = 0) -> pd.DataFrame:
    """Normalised final IQM per (method, env, knob value) with a 95 % bootstrap interval over seeds, plus an
    ``env = "all"`` row per value pooling the environments (stratified bootstrap). Columns
    :data:`SENSITIVITY_COLUMNS`."""
    cells = sensitivity_cells(runs)
    rows = []
    if len(cells):
        for (method, value), g in cells.groupby(["method", "value"], sort=True):
            agent, knob = g["agent"].iloc[0], g["knob"].iloc[0]
            tasks = {env: ge["score"].to_numpy(float) for env, ge in g.groupby("env", sort=True)}
            for env, scores in list(tasks.items()) + ([(ALL_ENVS, None)] if len(tasks) > 1 else []):
                t = list(tasks.values()) if scores is None else [scores]
                est = stats.interval_estimates({f"sens/{method}/{env}/{value:g}": t}, {"IQM": stats.iqm},
                                               reps=reps, seed=seed).iloc[0]
                rows.append({"method": method, "agent": agent, "knob": knob, "value": value, "env": env,
                             "seeds": int(est["runs"]), "iqm": est["estimate"], "iqm_ci_low": est["ci_low"],
                             "iqm_ci_high": est["ci_high"]})
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)


def share_within(x: np.ndarray, y: np.ndarray, tolerance: float = SHARE_TOLERANCE) -> np.ndarray:
    """Share of the knob range (in log10 of the knob) where the IQM is within ``tolerance`` of its best.

    ``x``: knob values (V,), positive, sorted; ``y``: IQMs (V,) or a batch (B, V). The IQM between two swept
    values is read by linear interpolation in log10(knob); the threshold is ``best − tolerance·|best|`` with
    ``best`` the largest swept IQM. Returns the length of the log-range above the threshold over the whole
    log-range (one value per row of ``y``)."""
    lx = np.log10(np.asarray(x, dtype=float))
    y = np.atleast_2d(np.asarray(y, dtype=float))
    if len(lx) < 2:
        return np.ones(len(y))
    best = y.max(axis=1, keepdims=True)
    thr = best - tolerance * np.abs(best)
    a, b = y[:, :-1] - thr, y[:, 1:] - thr  # signed distance above the threshold at each segment's ends
    with np.errstate(divide="ignore", invalid="ignore"):
        # fraction of a segment above: 1 both above, 0 both below, else the part on the upper side of the root
        frac = np.where((a >= 0) & (b >= 0), 1.0, np.where((a < 0) & (b < 0), 0.0,
                        np.where(a >= 0, a / (a - b), b / (b - a))))
    width = np.diff(lx)
    return (frac * width).sum(axis=1) / width.sum()


def _value_tasks(ge: pd.DataFrame, v: float) -> list[np.ndarray]:
    gv = ge[ge["value"] == v]
    return stats.as_task_list([g["score"].to_numpy(float) for _, g in gv.groupby("env", sort=True)])


def sensitivity_share(runs: pd.DataFrame, *, reps: int = stats.DEFAULT_REPS, seed: int = 0,
                      tolerance: float = SHARE_TOLERANCE) -> pd.DataFrame:
    """Per method and environment (and ``all``): :func:`share_within` of the IQM curve, with a 95 % percentile
    bootstrap interval: each repetition resamples the seeds of every (knob value, env) cell independently
    (stratified by environment for ``all``), recomputes every value's IQM, the best and the share. Columns
    :data:`SHARE_COLUMNS`."""
    cells = sensitivity_cells(runs)
    rows = []
    if not len(cells):
        return pd.DataFrame(columns=SHARE_COLUMNS)
    for method, gm in cells.groupby("method", sort=True):
        envs = sorted(gm["env"].unique())
        for env in envs + ([ALL_ENVS] if len(envs) > 1 else []):
            ge = gm if env == ALL_ENVS else gm[gm["env"] == env]
            values = np.array(sorted(ge["value"].unique()), dtype=float)
            if len(values) < 2 or np.any(values <= 0):
                continue
            point = np.empty(len(values))
            boot = np.empty((reps, len(values)))
            for j, v in enumerate(values):
                tasks = _value_tasks(ge, v)
                point[j] = stats.iqm(np.concatenate(tasks)) if tasks else np.nan
                boot[:, j] = stats.bootstrap_distribution(tasks, stats.iqm, reps, stats.agent_rng(
                    seed, f"share/{method}/{env}/{v:g}")) if tasks else np.nan
            keep = np.isfinite(point)
            values, point, boot = values[keep], point[keep], boot[:, keep]
            if len(values) < 2:
                continue
            share = float(share_within(values, point, tolerance)[0])
            lo, hi = np.percentile(share_within(values, boot, tolerance), [2.5, 97.5])
            rows.append({"method": method, "env": env, "values": len(values),
                         "best_value": float(values[int(np.argmax(point))]), "best_iqm": float(point.max()),
                         "share": share, "share_ci_low": float(lo), "share_ci_high": float(hi)})
    return pd.DataFrame(rows, columns=SHARE_COLUMNS)


def best_settings(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method: the knob value with the highest IQM of the normalised final score, the environments pooled
    (a point estimate: no bootstrap, so the same runs always give the same answer). Columns method, agent, knob
    (the param), variant (the variant of that value's runs), best_value, best_iqm; methods A–Z."""
    cells = sensitivity_cells(runs)
    cols = ["method", "agent", "knob", "variant", "best_value", "best_iqm"]
    rows = []
    for method, gm in (cells.groupby("method", sort=True) if len(cells) else ()):
        scores = {v: stats.iqm(np.concatenate(_value_tasks(gm, v))) for v in sorted(gm["value"].unique())}
        best = max(scores, key=lambda v: (scores[v], -v))  # ties: the smaller knob value
        at = gm[gm["value"] == best]
        rows.append({"method": method, "agent": at["agent"].iloc[0], "knob": at["knob_param"].iloc[0],
                     "variant": sorted(at["variant"].unique())[0],
                     "best_value": float(best), "best_iqm": float(scores[best])})
    return pd.DataFrame(rows, columns=cols)


def _pooled(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``all`` rows where a method has them, else its one environment's rows."""
    has_all = frame.groupby("method")["env"].transform(lambda e: (e == ALL_ENVS).any())
    return frame[(frame["env"] == ALL_ENVS) | ~has_all]


def claim_verdicts(share: pd.DataFrame, table: pd.DataFrame, *, baseline: str = f"{BASELINE} C",
                   same_as: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The verdict of :data:`CLAIM_RULE` per reading (every method other than ``baseline``, the hard update's
    period), from :func:`sensitivity_share` and :func:`sensitivity_table`. ``same_as``: method → the existing
    method it is under another name (declared with the study). Columns :data:`CLAIM_COLUMNS`; empty without the
    baseline's sweep."""
    share, table = _pooled(share), _pooled(table)
    if share.empty or baseline not in set(share["method"]):
        return pd.DataFrame(columns=CLAIM_COLUMNS)
    ref = share[share["method"] == baseline].iloc[0]
    rows = []
    for r in share[share["method"] != baseline].itertuples(index=False):
        cell = table[(table["method"] == r.method) & (table["env"] == r.env) & (table["value"] == r.best_value)]
        lo, hi = (float(cell["iqm_ci_low"].iloc[0]), float(cell["iqm_ci_high"].iloc[0])) if len(cell) else (np.nan,) * 2
        flatter = ("yes" if r.share_ci_low > ref["share_ci_high"] else
                   "no" if r.share_ci_high < ref["share_ci_low"] else "unclear")
        as_good = "unclear" if not np.isfinite(hi) else "yes" if hi >= ref["best_iqm"] else "no"
        verdict = ("supports" if flatter == "yes" and as_good == "yes" else
                   "does not support" if "no" in (flatter, as_good) else "inconclusive")
        rows.append({"reading": r.method, "env": r.env, "share": r.share, "share_ci_low": r.share_ci_low,
                     "share_ci_high": r.share_ci_high, "best_value": r.best_value, "best_iqm": r.best_iqm,
                     "best_ci_low": lo, "best_ci_high": hi, "flatter": flatter, "as_good": as_good,
                     "verdict": verdict, "same_as": (same_as or {}).get(r.method, "")})
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)
