"""Paper tables: booktabs LaTeX, estimate and interval in one cell, the best entry marked by the stated rule; they
compile in a minimal document where a LaTeX engine is installed, else their structure is checked."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from analysis.tables import BEST_RULE, best_entries, fmt_ci, latex_interval_table


def _long(rows):
    return pd.DataFrame(rows, columns=["agent", "metric", "estimate", "ci_low", "ci_high"])


def test_best_entry_is_marked_only_where_its_interval_clears_the_runner_up():
    long = _long([
        ("dqn", "IQM", 0.50, 0.40, 0.60), ("isql", "IQM", 0.80, 0.70, 0.90), ("agt2-dqn", "IQM", 0.10, 0.0, 0.2),
        ("dqn", "Mean", 0.50, 0.40, 0.60), ("isql", "Mean", 0.55, 0.45, 0.65), ("agt2-dqn", "Mean", 0.1, 0.0, 0.2),
        ("dqn", "Optimality gap", 0.50, 0.45, 0.55), ("isql", "Optimality gap", 0.20, 0.10, 0.30),
        ("agt2-dqn", "Optimality gap", 0.90, 0.8, 1.0),
        ("dqn", "Median", 0.5, 0.5, 0.5), ("isql", "Median", 0.5, 0.5, 0.5),  # a tie: no mark
        ("dqn", "Alone", 0.5, 0.4, 0.6),  # one entry: nothing to beat
    ])
    assert best_entries(long, lower_is_better={"Optimality gap"}) == {("isql", "IQM"), ("isql", "Optimality gap")}
    # without "lower is better" the gap's best is the highest, agt2-dqn, whose interval clears dqn's
    assert ("agt2-dqn", "Optimality gap") in best_entries(long)
    # touching intervals overlap: not marked
    assert best_entries(_long([("a", "m", 1.0, 0.6, 1.2), ("b", "m", 0.5, 0.3, 0.6)])) == set()
    assert best_entries(_long([("a", "m", np.nan, np.nan, np.nan), ("b", "m", 0.5, 0.3, 0.6)])) == set()


def _table() -> str:
    long = _long([
        ("dqn", "IQM", 0.5, 0.4, 0.6), ("isql_v2", "IQM", 0.8, 0.7, 0.9), ("agt2-dqn", "IQM", np.nan, np.nan, np.nan),
        ("dqn", "Optimality gap", 0.5, 0.45, 0.55), ("isql_v2", "Optimality gap", 0.2, 0.1, 0.3),
        ("agt2-dqn", "Optimality gap", -0.9, -1.0, -0.8),
    ])
    return latex_interval_table(long, columns=["IQM", "Optimality gap"], lower_is_better=("Optimality gap",),
                                title="Aggregate 100 % & more_", note="Scores min–max normalised; ε = 0.05.",
                                label="aggregates")


def test_latex_table_cells_rules_and_note():
    tex = _table()
    lines = tex.splitlines()
    assert [ln for ln in lines if ln in (r"\toprule", r"\midrule", r"\bottomrule")] == [
        r"\toprule", r"\midrule", r"\bottomrule"]
    assert r"\begin{tabular}{lrr}" in tex and r"\label{tab:aggregates}" in tex
    body = lines[lines.index(r"\midrule") + 1:lines.index(r"\bottomrule")]
    assert body == [
        r"dqn & " + fmt_ci(0.5, 0.4, 0.6) + r" & " + fmt_ci(0.5, 0.45, 0.55) + r" \\",
        r"isql\_v2 & \textbf{" + fmt_ci(0.8, 0.7, 0.9) + r"} & " + fmt_ci(0.2, 0.1, 0.3) + r" \\",
        r"agt2-dqn & -- & \textbf{$-$0.90 [$-$1.00, $-$0.80]} \\",
    ]
    assert r"Optimality gap ($\downarrow$)" in lines[lines.index(r"\toprule") + 1]
    assert BEST_RULE.split(":")[0] in tex and r"100 \% \& more\_" in tex


def _structure_ok(tex: str) -> None:
    """Without a LaTeX engine: environments balance, every row has one cell per column, specials are escaped."""
    for env in ("table", "tabular"):
        assert tex.count(rf"\begin{{{env}}}") == tex.count(rf"\end{{{env}}}") == 1
    ncols = len(re.search(r"\\begin\{tabular\}\{([lrc]+)\}", tex).group(1))
    lines = tex.splitlines()
    for ln in lines[lines.index(r"\toprule") + 1:lines.index(r"\bottomrule")]:
        if ln != r"\midrule":
            assert len(re.split(r"(?<!\\)&", ln)) == ncols and ln.endswith(r"\\")
    text = re.sub(r"\\label\{[^}]*\}", "", tex)  # a label may hold "_"
    assert not re.search(r"(?<!\\)[%#_]", text)
    assert not re.search(r"(?<!\\)&", "".join(ln for ln in text.splitlines() if not ln.endswith(r"\\")))
    assert tex.count("{") == tex.count("}")


def _compile(tmp_path, body: str) -> None:
    engine = shutil.which("pdflatex")
    if engine is None:
        pytest.skip("no LaTeX engine installed: structure checked only")
    (tmp_path / "table.tex").write_text(body)
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                                      "\\input{table.tex}\n\\end{document}\n")
    proc = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def test_latex_table_compiles(tmp_path):
    _structure_ok(_table())
    _compile(tmp_path, _table())


def test_report_tables_compile(tmp_path):
    """Every .tex the report writes (paper tables and plain ones) compiles in the minimal document."""
    from analysis.report import build_report
    from analysis.runs import load_experiment
    from analysis.synthetic import make_store

    uri = f"sqlite:///{tmp_path}/m.db"
    rng = np.random.default_rng(1)
    runs = [{"agent": a, "env": env, "seed": s, "final": lo + (hi - lo) * (lvl + rng.normal(0, 0.05))}
            for a, lvl in (("dqn", 0.3), ("isql", 0.9)) for env, (lo, hi) in
            {"CartPole-v1": (22.2, 475), "Acrobot-v1": (-499.09, -100)}.items() for s in range(4)]
    runs += [{"agent": "sgt2-dqn", "variant": f"eta={e}", "env": "CartPole-v1", "seed": s, "final": 100 + 50 * e,
              "params": {"eta": e}} for e in (0.1, 1.0) for s in range(2)]
    make_store(uri, "t", runs, steps=1000, evals=3)
    build_report(*load_experiment(uri, "t", cache_dir=None), tmp_path / "out", reps=200, make_figures=False)
    texs = sorted((tmp_path / "out" / "tables").glob("*.tex"))
    assert [p.stem for p in texs] == ["aggregates", "per_env", "poi", "sensitivity"]
    agg = (tmp_path / "out" / "tables" / "aggregates.tex").read_text()
    assert r"\textbf{" in agg and "Bold: the best estimate" in agg  # isql is clearly best on the IQM
    per_env = (tmp_path / "out" / "tables" / "per_env.tex").read_text()
    assert "Acrobot-v1 & CartPole-v1" in per_env and "$-$" in per_env  # agents × envs, true minus signs
    for p in texs:
        _structure_ok(p.read_text())
    for p in texs:
        d = tmp_path / p.stem
        d.mkdir()
        _compile(d, p.read_text())
