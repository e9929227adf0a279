"""``targetbench figure KIND``: one figure per command, PDF + PNG + the CSV of the numbers drawn + a caption, in the
chosen style; the same numbers ``targetbench analyze`` draws; bad input is one line and exit 2."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from analysis.figure_kinds import KINDS
from analysis.synthetic import make_store
from suite.cli import main
from suite.figure import figure_facts

AGENTS = ("dqn", "isql", "agt2-dqn", "dqn-soft")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("figure")
    uri = f"sqlite:///{tmp}/mlflow.db"
    rng = np.random.default_rng(0)
    runs = []
    for i, agent in enumerate(AGENTS):
        for env, (lo, hi) in {"CartPole-v1": (22.2, 475), "Acrobot-v1": (-499.09, -100)}.items():
            for s in range(3):
                runs.append({"agent": agent, "env": env, "seed": s,
                             "final": lo + (hi - lo) * (0.4 + 0.15 * i + rng.normal(0, 0.05)),
                             "curve": lambda f, k=i + s: f ** (1 + k % 3)})
    runs += [{"agent": "sgt2-dqn", "variant": f"eta={e}", "env": "CartPole-v1", "seed": s, "final": 100 + 200 * e,
              "params": {"eta": e}} for e in (0.1, 1.0) for s in range(2)]
    make_store(uri, "e", runs, steps=200_000, evals=20)
    return uri, tmp


def _run(store, *argv):
    uri, tmp = store
    return main(["figure", *argv, "--experiment", "e", "--tracking-uri", uri, "--results", str(tmp), "--reps", "200"])


def _width_in(pdf) -> float:
    return float(re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+)", pdf.read_bytes()).group(1)) / 72


def test_curves_of_three_agents_in_paper_style_is_one_column_with_its_csv_and_caption(store, tmp_path):
    assert _run(store, "curves", "--agents", "dqn,isql,agt2-dqn", "--style", "paper", "--out", str(tmp_path)) == 0
    assert _width_in(tmp_path / "curves.pdf") == pytest.approx(3.25, abs=0.01)
    assert b"/FontFile2" in (tmp_path / "curves.pdf").read_bytes()
    assert (tmp_path / "curves.png").stat().st_size > 1000
    drawn = pd.read_csv(tmp_path / "curves.csv")
    assert set(drawn["agent"]) == {"dqn", "isql", "agt2-dqn"} and len(drawn) == 3 * 20  # every point drawn
    assert {"x", "estimate", "ci_low", "ci_high", "runs", "smooth_window"} <= set(drawn.columns)
    assert (drawn["ci_low"] <= drawn["estimate"]).all() and (drawn["estimate"] <= drawn["ci_high"]).all()
    caption = (tmp_path / "curves.txt").read_text()
    assert "95 % percentile stratified-bootstrap interval of the IQM" in caption and "Not smoothed" in caption


def test_smoothing_window_is_stated_and_raw_score_on_one_env(store, tmp_path):
    assert _run(store, "curves", "--envs", "Acrobot-v1", "--smooth", "5", "--out", str(tmp_path)) == 0
    caption = (tmp_path / "curves.txt").read_text()
    assert "last 5 evaluation points" in caption and "IQM evaluation return" in caption
    drawn = pd.read_csv(tmp_path / "curves.csv")
    assert set(drawn["smooth_window"]) == {5} and drawn["estimate"].max() < 0  # Acrobot's raw returns
    assert sorted(drawn["agent"].unique()) == sorted(AGENTS)  # sgt2-dqn ran on CartPole only


def test_every_kind_writes_pdf_png_csv_and_caption(store, tmp_path):
    for kind in KINDS:
        assert _run(store, kind, "--out", str(tmp_path), "--style", "slides") == 0, kind
        for ext in ("pdf", "png", "csv", "txt"):
            assert (tmp_path / f"{kind}.{ext}").stat().st_size > 0, (kind, ext)
    per_env = pd.read_csv(tmp_path / "per-env.csv")
    assert len(per_env) == len(AGENTS) * 2 * 3 + 4  # one row per run: every dot drawn
    assert set(pd.read_csv(tmp_path / "improvement.csv")["y"]) == {"dqn"}


def test_figure_draws_what_analyze_draws(store, tmp_path):
    """`figure curves` and `analyze` go through the same section: the same curve numbers."""
    uri, tmp = store
    assert _run(store, "curves", "--score", "normalised", "--out", str(tmp_path / "fig")) == 0
    assert main(["analyze", "--experiment", "e", "--tracking-uri", uri, "--results", str(tmp), "--reps", "200",
                 "--out", str(tmp_path / "rep"), "--no-figures"]) == 0
    fig = pd.read_csv(tmp_path / "fig" / "curves.csv")
    rep = pd.read_csv(tmp_path / "rep" / "tables" / "sample_efficiency.csv")
    pd.testing.assert_frame_equal(fig, rep)


@pytest.mark.parametrize("argv, message", [
    (["timeline"], r"argument KIND: invalid choice: 'timeline'"),
    (["curves", "--agents", "dqn,rainbow"], r"agent 'rainbow' is not in these runs; allowed: agt2-dqn, dqn, "),
    (["per-env", "--envs", "Pong"], r"env 'Pong' is not in these runs; allowed: Acrobot-v1, CartPole-v1$"),
    (["curves", "--smooth", "0"], r"--smooth 0 is not valid; allowed: an integer >= 1"),
    (["curves", "--score", "raw"], r"--score raw needs one environment"),
    (["sensitivity", "--agents", "dqn"], r"figure sensitivity: nothing to draw"),
    (["aggregates", "--style", "poster"], r"argument --style: invalid choice: 'poster'"),
])
def test_bad_input_is_one_line_and_exit_2(store, tmp_path, capsys, argv, message):
    assert _run(store, *argv, "--out", str(tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not list(tmp_path.iterdir())  # nothing written


def test_figure_facts_are_in_method_group_order():
    facts = figure_facts()
    groups = [f["group"] for f in facts.values()]
    assert groups == sorted(groups, key=["target-based", "target-free", "gradient tracking", "iterated",
                                         "other"].index)
    assert next(iter(facts)) == "dqn" and all(f["color"] for f in facts.values())


def test_analyze_takes_the_style_flags_and_states_the_smoothing(store, tmp_path, capsys):
    uri, tmp = store
    base = ["analyze", "--experiment", "e", "--tracking-uri", uri, "--results", str(tmp), "--reps", "200"]
    assert main(base + ["--out", str(tmp_path), "--no-figures", "--smooth", "4", "--style", "paper"]) == 0
    assert "trailing mean of its last 4 evaluation points" in (tmp_path / "report.md").read_text()
    assert main(base + ["--out", str(tmp_path / "bad"), "--smooth", "0"]) == 2
    assert "--smooth 0 is not valid" in capsys.readouterr().err


def test_the_suite_draws_with_the_declared_looks_and_the_gallery_has_every_kind(store, tmp_path):
    from matplotlib.colors import to_rgb

    from analysis.figure_kinds import gallery_markdown, write_gallery
    from analysis.report import report_context
    from analysis.runs import load_experiment
    from analysis.section import FigureOptions

    uri, _ = store
    runs, metrics = load_experiment(uri, "e", cache_dir=None)
    facts = figure_facts()
    ctx = report_context(runs, metrics, tmp_path, reps=100, figure_options=FigureOptions(facts=facts))
    assert ctx.order[:4] == ["dqn", "dqn-soft", "agt2-dqn", "sgt2-dqn/eta=0.1"]  # by method group
    assert all(ctx.colours[a] == to_rgb(facts[a]["color"]) for a in AGENTS)
    files = write_gallery(runs, metrics, tmp_path / "gallery", facts=facts, reps=100, curve_envs=["Acrobot-v1"])
    assert list(files) == ["gallery_aggregates", "gallery_curves_acrobot_v1", "gallery_profiles",
                           "gallery_improvement", "gallery_sensitivity", "gallery_per-env"]
    md = gallery_markdown(files, tmp_path)
    for stem in files:
        assert f"![{stem}](gallery/{stem}.png)" in md and f"(gallery/{stem}.csv)" in md
    assert _width_in(files["gallery_aggregates"].pdf) == pytest.approx(6.75, abs=0.01)
