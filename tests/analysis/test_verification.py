"""A rerun against the shipped data (analysis/verification.py): identical, the largest difference and where, and
the likely cause named from what both record."""
from __future__ import annotations

import pandas as pd

from analysis.verification import compare_run, equivalence, likely_cause

SHIPPED = pd.DataFrame({"agent": "dqn", "env": "Acrobot-v1", "seed": 3, "trial_hash": "h3", "params_sha256": "abc",
                        "step": [10000, 20000, 30000], "eval_return": [-500.0, -200.0, -90.5]})


def test_identical_and_different_runs():
    same = compare_run(SHIPPED, [[10000, -500.0], [20000, -200.0], [30000, -90.5]], "abc")
    assert same.identical and same.line() == ("dqn Acrobot-v1 seed 3: identical (params_sha256 and 3/3 evaluation "
                                              "points)")
    off = compare_run(SHIPPED, [[10000, -500.0], [20000, -201.5], [30000, -90.0]], "abd", cause="torch 2 vs 1")
    assert not off.identical and not off.params_equal and off.points_equal == 1
    assert (off.max_diff, off.max_diff_step) == (1.5, 20000)
    assert off.line().endswith("largest difference 1.5 at step 20,000; likely cause: torch 2 vs 1")
    short = compare_run(SHIPPED, [[10000, -500.0]], "abc")
    assert not short.identical and short.missing_steps == [20000, 30000]


def test_likely_cause_names_what_differs():
    recorded = {"commit": "1234567890abcdef", "tag.version.torch": "2.13.0", "tag.version.numpy": "2.4.6",
                "tag.cpu_model": "Intel Xeon 8481C", "tag.blas_kernel": "SkylakeX", "tag.platform": "Linux",
                "tag.torch_device": "cpu", "tag.git_dirty": "false"}
    here = {"version.torch": "2.13.0", "version.numpy": "2.4.6", "cpu_model": "Intel Xeon 8481C",
            "blas_kernel": "SkylakeX", "platform": "Linux", "torch_device": "cpu"}
    assert likely_cause(recorded, here, "1234567890abcdef").startswith("none of the recorded")
    cause = likely_cause(recorded, {**here, "version.numpy": "2.5.0", "cpu_model": "AMD EPYC 9654"}, "ffff")
    assert cause == ("numpy 2.5.0 here vs 2.4.6 recorded; processor AMD EPYC 9654 here vs Intel Xeon 8481C recorded; "
                     "code at commit ffff here vs 1234567890ab recorded")
    older = {k: v for k, v in recorded.items() if k not in ("tag.cpu_model", "tag.blas_kernel")}
    assert "processor, BLAS kernel not recorded by the run" in likely_cause(older, here, "1234567890abcdef")


def test_equivalence_of_final_returns():
    shipped = pd.DataFrame({"agent": "dqn", "env": "A", "final": [1.0, 2.0, 3.0, 4.0]})
    eq = equivalence(shipped, shipped.assign(final=[1.5, 2.5, 2.0, 3.5]), reps=300)
    assert bool(eq["consistent"].iloc[0]) and eq["runs"].iloc[0] == 4
    far = equivalence(shipped, shipped.assign(final=[10.0, 11, 12, 13]), reps=300)
    assert not bool(far["consistent"].iloc[0]) and far["probability"].iloc[0] == 1.0
