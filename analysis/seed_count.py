"""How many seeds? Interval widths of IQM and of P(A > B) against the number of seeds, from stored runs.

For each seed count n (2 up to the seeds stored per environment), :func:`seed_curve` draws ``subsets`` random
subsets of n seeds per environment for each agent (without replacement, independently for A and B), computes on
each subset the 95 % stratified-bootstrap interval of A's IQM (normalised final score, environments pooled) and of
P(A > B) (rliable's probability of improvement, averaged over environments), and reports the mean widths and the
share of subsets whose P interval excludes 0.5. :func:`smallest_count` reads off the smallest n at which that
share reaches :data:`POWER` (the P interval excludes 0.5 for most subsets of that size), or None: the stored seeds
cannot tell A from B.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from analysis import stats

__all__ = ["SEED_COLUMNS", "POWER", "seed_curve", "smallest_count"]

SEED_COLUMNS = ["seeds", "subsets", "iqm_width", "poi_width", "poi_mean", "excludes_half"]
#: the share of subsets whose P interval must exclude 0.5 at the reported seed count
POWER = 0.8


def _subset(tasks: Mapping[str, np.ndarray], n: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [v[rng.choice(len(v), n, replace=False)] for _, v in sorted(tasks.items())]


def seed_curve(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], *, subsets: int = 50,
               reps: int = 500, seed: int = 0) -> pd.DataFrame:
    """Interval widths against the seed count (columns :data:`SEED_COLUMNS`). ``a`` and ``b``: environment → the
    normalised final scores of agent A's and of baseline B's runs (only environments both have are used)."""
    envs = sorted(set(a) & set(b))
    a = {e: np.asarray(a[e], float)[np.isfinite(a[e])] for e in envs}
    b = {e: np.asarray(b[e], float)[np.isfinite(b[e])] for e in envs}
    most = min([len(v) for v in a.values()] + [len(v) for v in b.values()]) if envs else 0
    rng = stats.agent_rng(seed, "seeds")
    rows = []
    for n in range(2, most + 1):
        draws = 1 if n == most and all(len(v) == n for v in (*a.values(), *b.values())) else subsets
        iqm_w, poi_w, poi, excl = [], [], [], []
        for k in range(draws):
            sa, sb = _subset(a, n, rng), _subset(b, n, rng)
            lo, hi = stats.percentile_interval(stats.bootstrap_distribution(
                sa, stats.IQM, reps, stats.agent_rng(seed, f"seeds/iqm/{n}/{k}")))
            est, plo, phi = stats.probability_of_improvement(sa, sb, reps=reps, seed=seed, name=f"seeds/{n}/{k}")
            iqm_w.append(float(hi - lo))
            poi_w.append(phi - plo)
            poi.append(est)
            excl.append(plo > 0.5 or phi < 0.5)
        rows.append({"seeds": n, "subsets": draws, "iqm_width": float(np.mean(iqm_w)),
                     "poi_width": float(np.mean(poi_w)), "poi_mean": float(np.mean(poi)),
                     "excludes_half": float(np.mean(excl))})
    return pd.DataFrame(rows, columns=SEED_COLUMNS)


def smallest_count(curve: pd.DataFrame, power: float = POWER) -> int | None:
    """The smallest seed count whose share of subsets with a P interval excluding 0.5 is at least ``power``;
    None when no stored count reaches it."""
    hit = curve[curve["excludes_half"] >= power]
    return int(hit["seeds"].iloc[0]) if len(hit) else None
