"""Reference scores (shipped with sources) and the scoring rule for diverged / failed / running runs."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.normalization import REFERENCE_FILE, SCORING_RULE, normalise, reference_scores, score_runs


def test_reference_table_has_sources_for_every_family():
    refs = reference_scores()
    assert {"env", "random", "reference", "kind", "source"} <= set(refs.columns)
    assert refs["source"].str.len().min() > 10
    envs = set(refs["env"])
    assert {"CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MinAtar/breakout", "ALE/Pong-v5"} <= envs
    assert (refs["reference"] != refs["random"]).all()
    assert REFERENCE_FILE.read_text().startswith("#")  # the comment block documents the sources
    pong = refs.set_index("env").loc["ALE/Pong-v5"]
    assert (pong["random"], pong["reference"]) == (-20.7, 14.6)


def test_normalise_min_max():
    refs = pd.DataFrame({"env": ["E"], "random": [10.0], "reference": [110.0]})
    np.testing.assert_allclose(normalise("E", [10, 60, 110, 210], refs), [0, 0.5, 1, 2])
    assert np.isnan(normalise("unknown", 5.0, refs))


def test_scoring_rule():
    refs = pd.DataFrame({"env": ["E"], "random": [10.0], "reference": [110.0]})
    runs = pd.DataFrame({"env": ["E"] * 4, "final_eval_return": [60.0, 35.0, np.nan, 80.0],
                         "status": ["FINISHED", "FINISHED", "FAILED", "RUNNING"],
                         "outcome": ["completed", "diverged", "failed", "running"]})
    s = score_runs(runs, refs)
    assert list(s["scored_as"]) == ["evaluated", "diverged-last-eval", "failed-as-random", "running-not-scored"]
    np.testing.assert_allclose(s["score"].to_numpy()[:3], [0.5, 0.25, 0.0])
    assert np.isnan(s["score"].iloc[3])
    assert "Diverged" in SCORING_RULE and "failed" in SCORING_RULE


def test_atari_human_normalised_scores_cover_57_games_as_dqn_zoo_lists_them():
    refs = reference_scores().set_index("env")
    atari = refs[refs.index.str.startswith("ALE/")]
    assert len(atari) == 57 and (atari["kind"] == "human").all()
    # (random, human) copied from google-deepmind/dqn_zoo dqn_zoo/atari_data.py, commit 359945d
    expected = {"ALE/Alien-v5": (227.8, 7127.7), "ALE/MontezumaRevenge-v5": (0.0, 4753.3),
                "ALE/Skiing-v5": (-17098.1, -4336.9), "ALE/VideoPinball-v5": (16256.9, 17667.9),
                "ALE/Surround-v5": (-10.0, 6.5), "ALE/YarsRevenge-v5": (3092.9, 54576.9)}
    for env, (random, human) in expected.items():
        assert (atari.loc[env, "random"], atari.loc[env, "reference"]) == (random, human), env
