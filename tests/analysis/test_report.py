"""Figures, tables and report.md from a synthetic store; `analyze` arguments; an end-to-end smoke run → analyze."""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest

from analysis.synthetic import make_store
from suite.analyze import add_arguments, main
from suite.errors import UsageError

FIGURES = ["aggregates", "profiles", "poi", "sample_efficiency", "per_env", "sensitivity"]


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(list(argv))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    uri = f"sqlite:///{tmp}/mlflow.db"
    rng = np.random.default_rng(0)
    runs = []
    for agent, level in (("dqn", 0.5), ("dqn-soft", 0.8)):
        for env, (lo, hi) in {"CartPole-v1": (22.2, 475), "Acrobot-v1": (-499.09, -100)}.items():
            for s in range(3):
                runs.append({"agent": agent, "env": env, "seed": s, "final": lo + (hi - lo) * (level + rng.normal(0, .05)),
                             "outcome": "diverged" if (agent, s) == ("dqn", 2) else "completed"})
    runs.append({"agent": "dqn-soft", "env": "CartPole-v1", "seed": 3, "final": 100.0, "outcome": "failed"})
    for eta in (0.1, 1.0):
        for s in range(2):
            runs.append({"agent": "sgt2-dqn", "variant": f"eta={eta}", "env": "CartPole-v1", "seed": s,
                         "final": 200 + 100 * eta, "params": {"eta": eta}})
    make_store(uri, "synthetic", runs, steps=1000, evals=4)
    return uri, tmp


def test_report_files_tables_and_text(store):
    uri, tmp = store
    out = tmp / "out"
    assert main(_args("--tracking-uri", uri, "--experiment", "synthetic", "--results", str(tmp), "--out", str(out),
                      "--reps", "300", "--pair", "dqn-soft:sgt2-dqn/eta=1.0")) == 0
    for name in FIGURES:
        for ext in ("pdf", "png"):
            assert (out / "figures" / f"{name}.{ext}").stat().st_size > 1000
    for name in ("aggregates", "per_env", "poi", "sensitivity"):
        for ext in ("md", "tex", "csv"):
            assert (out / "tables" / f"{name}.{ext}").stat().st_size > 0
    agg = pd.read_csv(out / "tables" / "aggregates.csv")
    assert list(agg["agent"]) == ["dqn", "dqn-soft", "sgt2-dqn/eta=0.1", "sgt2-dqn/eta=1.0"]
    assert {"iqm", "iqm_ci_low", "iqm_ci_high", "median", "mean", "optimality_gap", "completed", "diverged",
            "failed", "running"} <= set(agg.columns)
    row = agg.set_index("agent").loc["dqn-soft"]
    assert (row["failed"], row["runs"]) == (1, 7)  # the failed run is counted and scored, not dropped
    assert agg.set_index("agent").loc["dqn", "diverged"] == 2  # seed 2 on both envs
    per_env = pd.read_csv(out / "tables" / "per_env.csv")
    assert {"env", "agent", "seeds_scored", "mean", "mean_ci_low", "mean_ci_high", "iqm", "iqm_normalised",
            "diverged", "failed"} <= set(per_env.columns)
    poi = pd.read_csv(out / "tables" / "poi.csv")
    assert ("dqn-soft", "dqn") in set(zip(poi["x"], poi["y"])) and ("dqn-soft", "sgt2-dqn/eta=1.0") in set(zip(poi["x"], poi["y"]))
    assert poi.set_index(["x", "y"]).loc[("dqn-soft", "dqn"), "probability"] > 0.8
    sens = pd.read_csv(out / "tables" / "sensitivity.csv")
    assert set(sens["knob"]) == {"eta"} and list(sens["value"]) == [0.1, 1.0]
    report = (out / "report.md").read_text()
    for name in FIGURES:
        assert f"figures/{name}.png" in report
    assert "scored as the uniform-random policy" in report and "300 repetitions" in report
    assert "\\begin{tabular}" in (out / "tables" / "aggregates.tex").read_text()


def test_same_seed_same_tables(store):
    uri, tmp = store
    for d in ("a", "b"):
        main(_args("--tracking-uri", uri, "--experiment", "synthetic", "--results", str(tmp), "--out", str(tmp / d),
                   "--reps", "200", "--seed", "5", "--no-figures"))
    for name in ("aggregates.csv", "poi.csv", "profiles.csv", "sample_efficiency.csv", "per_env.csv"):
        assert (tmp / "a" / "tables" / name).read_text() == (tmp / "b" / "tables" / name).read_text()
    assert not (tmp / "a" / "figures").exists() and "![" not in (tmp / "a" / "report.md").read_text()


def test_bad_input_is_usage_error(store, tmp_path):
    uri, tmp = store
    with pytest.raises(UsageError, match="'nope' has no runs in .*; experiments holding runs: synthetic$"):
        main(_args("--tracking-uri", uri, "--experiment", "nope", "--results", str(tmp)))
    with pytest.raises(UsageError, match="--reps"):
        main(_args("--tracking-uri", uri, "--experiment", "synthetic", "--reps", "5"))
    with pytest.raises(UsageError, match="--pair"):
        main(_args("--tracking-uri", uri, "--experiment", "synthetic", "--pair", "dqn"))
    with pytest.raises(UsageError, match="does not exist"):
        main(_args("--results", str(tmp_path / "empty")))
    from suite.errors import TrackingError

    with pytest.raises(TrackingError, match="unreachable"):
        main(_args("--tracking-uri", "http://127.0.0.1:9", "--experiment", "x"))


def test_engine_flag_and_ragged_scores(store):
    assert _args().engine == "fast" and _args("--engine", "rliable").engine == "rliable"
    uri, tmp = store  # dqn-soft has 3 scored runs on Acrobot-v1 and 4 on CartPole-v1: no runs x tasks matrix
    with pytest.raises(UsageError, match=r"^--engine rliable: rliable needs the same number of scored runs .*"
                                         r"'dqn-soft' has \[3, 4\] runs .*use --engine fast$"):
        main(_args("--tracking-uri", uri, "--experiment", "synthetic", "--results", str(tmp), "--out",
                   str(tmp / "rl"), "--reps", "100", "--no-figures", "--engine", "rliable"))


def test_engines_agree_and_median_is_rliables(tmp_path):
    """A rectangular store (2 agents x 3 envs x 4 seeds): both engines give the same point estimates, the median
    is rliable's (median over envs of each env's mean normalised score), intervals agree within Monte-Carlo error,
    and the report names the engine and the repetitions."""
    from rliable import metrics

    from analysis.synthetic import make_store

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    refs = {"CartPole-v1": (22.2, 475), "Acrobot-v1": (-499.09, -100), "MountainCar-v0": (-200.0, -110)}
    rng = np.random.default_rng(3)
    norm = {a: rng.lognormal(-0.7 + 0.4 * i, 0.35, size=(4, 3)) for i, a in enumerate(("dqn", "dqn-soft"))}
    runs = [{"agent": a, "env": env, "seed": s, "final": lo + (hi - lo) * norm[a][s, j]}
            for a in norm for j, (env, (lo, hi)) in enumerate(sorted(refs.items())) for s in range(4)]
    make_store(uri, "rect", runs, steps=1000, evals=2)
    tabs = {}
    for engine, reps in (("fast", 4000), ("rliable", 400)):
        out = tmp_path / engine
        assert main(_args("--tracking-uri", uri, "--experiment", "rect", "--results", str(tmp_path), "--out", str(out),
                          "--reps", str(reps), "--no-figures", "--engine", engine)) == 0
        tabs[engine] = pd.read_csv(out / "tables" / "aggregates.csv").set_index("agent")
        text = (out / "report.md").read_text()
        assert f"engine `{engine}`" in text and f"Bootstrap: {reps:,} repetitions" in text
    fast, slow = tabs["fast"], tabs["rliable"]
    for a, x in norm.items():
        assert fast.loc[a, "median"] == pytest.approx(metrics.aggregate_median(x), rel=1e-9)
        assert fast.loc[a, "median"] != pytest.approx(np.median(x), rel=1e-3)  # not the pooled median
        for col, f in (("iqm", metrics.aggregate_iqm), ("mean", metrics.aggregate_mean),
                       ("optimality_gap", metrics.aggregate_optimality_gap)):
            assert fast.loc[a, col] == pytest.approx(f(x), rel=1e-9)
    for col in ("iqm", "median", "mean", "optimality_gap"):
        np.testing.assert_allclose(fast[col], slow[col], rtol=1e-12)
        width = (fast[f"{col}_ci_high"] - fast[f"{col}_ci_low"]).to_numpy()
        for end in ("ci_low", "ci_high"):  # 12 runs, 400 rliable repetitions: a generous Monte-Carlo bound
            assert (np.abs(fast[f"{col}_{end}"] - slow[f"{col}_{end}"]).to_numpy() <= 0.25 * width).all()


def test_end_to_end_smoke_run_then_analyze(tmp_path):
    from suite.cli import main as cli

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    for agent in ("dqn", "dqn-soft"):
        assert cli(["run", "--agent", agent, "--env", "CartPole-v1", "--seed", "0,1", "--steps", "300",
                    "--set", "learning_starts=50", "--set", "buffer_size=200", "--set", "batch_size=8",
                    "--set", "hidden_sizes=16", "--set", "train.eval_every=150", "--set", "train.eval_episodes=1",
                    "--tracking-uri", uri, "--experiment", "smoke", "--results", str(tmp_path), "--quiet"]) == 0
    assert main(_args("--tracking-uri", uri, "--experiment", "smoke", "--results", str(tmp_path), "--reps", "200")) == 0
    assert (tmp_path / "report.md").exists() and (tmp_path / "figures" / "aggregates.png").stat().st_size > 0
    agg = pd.read_csv(tmp_path / "tables" / "aggregates.csv")
    assert list(agg["agent"]) == ["dqn", "dqn-soft"] and list(agg["runs"]) == [2, 2]
    eff = pd.read_csv(tmp_path / "tables" / "sample_efficiency.csv")
    assert sorted(eff["x"].unique()) == [150.0, 300.0]
    assert list((tmp_path / "cache").glob("smoke-*"))  # the run tables were cached under results/cache


def test_every_linked_figure_exists_and_no_reference_means_no_figure_link(store, tmp_path):
    """No environment has a reference score: no normalised aggregate, so the aggregates and probability-of-
    improvement figures are not drawn and report.md links neither (nor any missing file)."""
    import re

    from analysis.normalization import reference_scores
    from analysis.report import build_report
    from analysis.runs import load_experiment

    uri, _ = store
    runs, metrics = load_experiment(uri, "synthetic", cache_dir=None)
    res = build_report(runs, metrics, tmp_path / "out", reps=100, refs=reference_scores().iloc[:0])
    report = res.report.read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", report)
    assert links == ["figures/per_env.png"] and (tmp_path / "out" / links[0]).stat().st_size > 1000
    assert sorted(p.name for p in res.figures) == ["per_env.pdf", "per_env.png"]
    assert "## Aggregate scores" in report and "## Probability of improvement" in report  # tables still there
    assert "Environments without a reference score (Acrobot-v1, CartPole-v1)" in report
    for absent in ("## Performance profiles", "## Sample efficiency", "## Sensitivity"):
        assert absent not in report


def test_section_registry_order_and_bad_sections():
    from analysis.section import Section
    from analysis.sections import PerEnv, register_section, registered_sections, unregister_section

    names = [s.name for s in registered_sections()]
    assert [n for n in names if n != "compute"][:6] == FIGURES and names.index("compute") == names.index("sample_efficiency") + 1
    assert register_section(PerEnv) is PerEnv and [s.name for s in registered_sections()] == names  # idempotent

    class Extra(Section):
        name, heading = "extra", "Extra"

    class Clash(Section):
        name, heading = "per_env", "Clash"

    class Nameless(Section):
        heading = "No name"

    with pytest.raises(ValueError, match=r"^report section 'per_env' is already registered by PerEnv$"):
        register_section(Clash)
    with pytest.raises(TypeError, match="not a Section subclass with a name and a heading"):
        register_section(Nameless)
    with pytest.raises(TypeError, match="not a Section subclass"):
        register_section(dict)
    with pytest.raises(ValueError, match=r"^report section 'nope' \(after=\) is not registered; registered: aggre"):
        register_section(after="nope")(Extra)
    try:
        register_section(after="aggregates")(Extra)
        assert [s.name for s in registered_sections()] == [names[0], "extra"] + names[1:]
    finally:
        unregister_section("extra")
    assert [s.name for s in registered_sections()] == names
