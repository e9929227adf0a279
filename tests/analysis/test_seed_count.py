"""How many seeds (analysis/seed_count.py): widths shrink with the seed count; a clear difference is found with few
seeds, no difference never."""
from __future__ import annotations

import numpy as np

from analysis.seed_count import SEED_COLUMNS, seed_curve, smallest_count


def scores(mean: float, n: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {env: mean + 0.1 * rng.standard_normal(n) for env in ("A", "B")}


def test_a_clear_difference_needs_few_seeds_and_widths_shrink():
    curve = seed_curve(scores(1.0, seed=1), scores(0.5, seed=2), subsets=20, reps=200)
    assert list(curve.columns) == SEED_COLUMNS and list(curve["seeds"]) == list(range(2, 11))
    assert curve["iqm_width"].iloc[-1] < curve["iqm_width"].iloc[0]
    assert curve["subsets"].iloc[-1] == 1  # all ten seeds: one subset
    n = smallest_count(curve)
    assert n is not None and n <= 4 and (curve["poi_mean"] > 0.9).all()


def test_no_difference_cannot_be_told():
    same = scores(1.0, seed=3)
    curve = seed_curve(same, {e: v[::-1].copy() for e, v in same.items()}, subsets=20, reps=200)
    assert smallest_count(curve) is None and curve["excludes_half"].max() < 0.8
    assert seed_curve(same, {"other-env": np.ones(5)}).empty  # no environment in common
