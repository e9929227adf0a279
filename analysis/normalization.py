"""Score normalisation: min–max against per-environment reference scores shipped as data.

``normalised = (raw − random) / (reference − random)``: 0 is the uniform-random policy, 1 the reference.
The table ``analysis/reference/scores.csv`` (comment lines give the sources) holds, per environment:

* classic control: ``random`` measured by ``python -m suite.measure_random 1000`` (uniform-random policy,
  1,000 episodes, seed 0); ``reference`` = the environment's registered gymnasium ``reward_threshold`` (the
  "solved" score: CartPole-v1 475, Acrobot-v1 −100, MountainCar-v0 −110);
* MinAtar: ``random`` measured the same way (MinAtar defaults, sticky actions 0.1); ``reference`` = DQN's final
  return in the MinAtar v1 paper (Young & Tian 2019, read off its figure; ``analysis/published/``);
* Atari: the published random and human scores (DQN Zoo ``atari_data.py``; human-normalised).

Scoring rule for runs that did not end normally (stated in every table footnote, see :data:`SCORING_RULE`):
diverged runs keep their last evaluation (what the diverged policy actually scored); failed or killed runs are
scored as the random policy (normalised 0, raw = the ``random`` reference); runs still running are counted and
not scored.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from analysis import record_names as names

__all__ = ["REFERENCE_FILE", "reference_scores", "normalise", "score_runs", "SCORING_RULE"]

REFERENCE_FILE = Path(__file__).parent / "reference" / "scores.csv"

SCORING_RULE = ("Diverged runs (loss or Q-values became NaN/inf) are kept and scored by their last evaluation; "
                "failed or killed runs are scored as the uniform-random policy (normalised score 0); runs still "
                "running are counted but not scored. Nothing is dropped silently: the counts are in the table.")


@lru_cache(maxsize=4)
def _read(path: str) -> pd.DataFrame:
    return pd.read_csv(path, comment="#")


def reference_scores(path: Path | str = REFERENCE_FILE, extra: Sequence[Path | str] = ()) -> pd.DataFrame:
    """The reference table: env, random, reference, kind, source (one row per environment).

    ``extra`` are more tables of the same columns (an environment family's ``reference_scores`` file); an env
    already in an earlier table keeps its earlier row."""
    tables = [_read(str(p)) for p in (path, *extra)]
    if len(tables) == 1:
        return tables[0].copy()
    merged = pd.concat(tables, ignore_index=True)
    return merged.drop_duplicates(subset="env", keep="first").reset_index(drop=True)


def normalise(env: str, raw, refs: pd.DataFrame | None = None):
    """Min–max normalise ``raw`` (scalar or array) for ``env``; NaN when the env has no reference."""
    refs = reference_scores() if refs is None else refs
    row = refs[refs["env"] == env]
    raw = np.asarray(raw, dtype=float)
    if row.empty:
        return np.full_like(raw, np.nan)
    lo, hi = float(row["random"].iloc[0]), float(row["reference"].iloc[0])
    return (raw - lo) / (hi - lo)


def score_runs(runs: pd.DataFrame, refs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Add ``raw_score``, ``score`` (normalised; raw when the env has no reference: ``normalised`` says which)
    and ``scored_as`` (evaluated | diverged-last-eval | failed-as-random | running-not-scored) to ``runs``."""
    refs = reference_scores() if refs is None else refs
    out = runs.copy()
    random = out["env"].map(refs.set_index("env")["random"])
    raw = out["final_eval_return"].astype(float)
    status, outcome = out["status"].astype(str), out["outcome"].astype(str)
    failed = status.isin(["FAILED", "KILLED"]) | outcome.eq("failed")
    running = status.eq("RUNNING") | outcome.eq("running")
    diverged = outcome.eq(names.OUTCOME_DIVERGED) & ~failed
    scored_as = np.where(failed, "failed-as-random", np.where(running, "running-not-scored",
                         np.where(diverged, "diverged-last-eval", "evaluated")))
    raw = raw.where(~failed, random)
    raw = raw.where(~running, np.nan)
    out["raw_score"] = raw
    out["scored_as"] = scored_as
    norm = np.array([normalise(e, r, refs) for e, r in zip(out["env"], out["raw_score"])], dtype=float)
    has_ref = out["env"].isin(refs["env"])
    out["normalised"] = has_ref
    out["score"] = np.where(has_ref, norm, out["raw_score"])
    return out
