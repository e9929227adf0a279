"""Tables: builders (DataFrames) and writers (Markdown, LaTeX, CSV) with titles and footnotes.

Every table written by :func:`write_table` goes to ``<dir>/<name>.md``, ``.tex`` and ``.csv`` (the CSV has the
numbers unformatted; Markdown and LaTeX show ``estimate [low, high]`` cells and the footnote). :func:`fmt_ci` is
the one formatter of an estimate with its interval. Paper tables (:func:`latex_interval_table`) are booktabs
``table`` environments with one ``estimate [low, high]`` cell per row and column, the best entry of a column in
bold where its interval does not overlap the runner-up's (:func:`best_entries`, :data:`BEST_RULE`); they need
only ``\\usepackage{booktabs}``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import re
from typing import Collection

import numpy as np
import pandas as pd

from analysis.stats import AGGREGATES

__all__ = ["fmt", "fmt_ci", "aggregate_display", "per_env_table", "write_table", "to_markdown", "to_latex",
           "best_entries", "latex_interval_table", "BEST_RULE"]

#: how :func:`best_entries` marks a column's best entry, for a table's note
BEST_RULE = ("Bold: the best estimate of its column, marked only where its 95 % interval does not overlap the "
             "runner-up's.")


def fmt(x, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{digits}f}"


def fmt_ci(est, lo, hi, digits: int = 2) -> str:
    """``estimate [low, high]`` with ``digits`` decimals; ``–`` for a missing estimate."""
    if est is None or not np.isfinite(est):
        return "–"
    return f"{est:.{digits}f} [{fmt(lo, digits)}, {fmt(hi, digits)}]"


def aggregate_display(agg: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """Display version of :func:`analysis.stats.aggregate_table` joined with run outcome counts."""
    rows = []
    for r in agg.itertuples(index=False):
        row = {"agent": r.agent, "runs": int(r.runs) if np.isfinite(r.runs) else 0,
               "envs": int(r.tasks) if np.isfinite(r.tasks) else 0}
        for name in AGGREGATES:
            k = name.lower().replace(" ", "_")
            row[name] = fmt_ci(getattr(r, k), getattr(r, f"{k}_ci_low"), getattr(r, f"{k}_ci_high"))
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.merge(counts, on="agent", how="left") if len(out) else out


def outcome_counts(scored: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Counts of runs per outcome: completed, diverged, failed, running (per group)."""
    g = scored.groupby(list(by))["scored_as"]
    return pd.DataFrame({
        "completed": g.apply(lambda s: int((s == "evaluated").sum())),
        "diverged": g.apply(lambda s: int((s == "diverged-last-eval").sum())),
        "failed": g.apply(lambda s: int((s == "failed-as-random").sum())),
        "running": g.apply(lambda s: int((s == "running-not-scored").sum())),
    }).reset_index()


def per_env_table(scored: pd.DataFrame, reps: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(numbers, display) per (env, agent): seeds scored, mean raw return with a bootstrap 95 % interval over
    seeds, IQM raw, IQM normalised, and outcome counts."""
    from analysis.stats import agent_rng, iqm

    rows = []
    for (env, label), g in scored.groupby(["env", "label"], sort=True):
        raw = g["raw_score"].dropna().to_numpy(float)
        norm = g["score"].dropna().to_numpy(float) if bool(g["normalised"].all()) else np.array([])
        if len(raw):
            boot = raw[agent_rng(seed, f"{env}/{label}").integers(0, len(raw), (reps, len(raw)))].mean(axis=1)
            lo, hi = np.percentile(boot, [2.5, 97.5])
        else:
            lo = hi = np.nan
        rows.append({"env": env, "agent": label, "seeds_scored": len(raw),
                     "mean": raw.mean() if len(raw) else np.nan, "mean_ci_low": lo, "mean_ci_high": hi,
                     "iqm": float(iqm(raw)) if len(raw) else np.nan,
                     "iqm_normalised": float(iqm(norm)) if len(norm) else np.nan,
                     "completed": int((g["scored_as"] == "evaluated").sum()),
                     "diverged": int((g["scored_as"] == "diverged-last-eval").sum()),
                     "failed": int((g["scored_as"] == "failed-as-random").sum()),
                     "running": int((g["scored_as"] == "running-not-scored").sum())})
    num = pd.DataFrame(rows)
    disp = pd.DataFrame([{"env": r["env"], "agent": r["agent"], "seeds": r["seeds_scored"],
                          "mean return [95% CI]": fmt_ci(r["mean"], r["mean_ci_low"], r["mean_ci_high"], 1),
                          "IQM return": fmt(r["iqm"], 1), "IQM normalised": fmt(r["iqm_normalised"]),
                          "completed": r["completed"], "diverged": r["diverged"], "failed": r["failed"],
                          "running": r["running"]} for r in rows])
    return num, disp


def to_markdown(table: pd.DataFrame, title: str | None = None, footnote: str | None = None) -> str:
    cols = list(table.columns)
    num = [c for c in cols if pd.api.types.is_numeric_dtype(table[c])]
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(str(c) for c in cols) + " |")
    lines.append("|" + "|".join("---:" if c in num else "---" for c in cols) + "|")
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    if footnote:
        lines += ["", footnote]
    return "\n".join(lines) + "\n"


def _cell(v) -> str:
    if isinstance(v, float):
        return fmt(v, 3)
    return str(v).replace("|", "\\|")


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        s = s.replace(a, b)
    return s.replace("≥", r"$\geq$").replace("≤", r"$\leq$").replace("–", "--").replace("×", r"$\times$") \
        .replace("ε", r"$\varepsilon$").replace("τ", r"$\tau$").replace("γ", r"$\gamma$") \
        .replace("↓", r"$\downarrow$")


def to_latex(table: pd.DataFrame, title: str | None = None, footnote: str | None = None, label: str = "") -> str:
    """A booktabs ``table`` environment (no jinja2 needed)."""
    cols = list(table.columns)
    align = "".join("r" if pd.api.types.is_numeric_dtype(table[c]) else "l" for c in cols)
    lines = [r"\begin{table}[t]", r"\centering", r"\small"]
    if title:
        lines.append(rf"\caption{{{_tex_escape(title)}}}")
    if label:
        lines.append(rf"\label{{tab:{label}}}")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(_tex_escape(str(c)) for c in cols) + r" \\",
              r"\midrule"]
    for row in table.itertuples(index=False):
        lines.append(" & ".join(_tex_escape(_cell(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if footnote:
        lines.append(rf"\par\smallskip\footnotesize {_tex_escape(footnote)}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def best_entries(long: pd.DataFrame, *, row: str = "agent", column: str = "metric",
                 lower_is_better: Collection[str] = ()) -> set[tuple[str, str]]:
    """The (row, column) entries to mark: in each column the best finite estimate (highest; lowest for columns
    in ``lower_is_better``) when its interval does not overlap the runner-up's (the entry with the next best
    estimate): its ``ci_low`` above the runner-up's ``ci_high`` (below the ``ci_low`` when lower is better).
    A column with one entry, or a tie for best, has no mark. ``long``: row, column, estimate, ci_low, ci_high."""
    marked = set()
    for col, g in long.groupby(column, sort=False):
        g = g[np.isfinite(g["estimate"].astype(float))]
        if len(g) < 2:
            continue
        low = col in lower_is_better
        g = g.sort_values("estimate", ascending=low, kind="stable")
        best, second = g.iloc[0], g.iloc[1]
        if best["estimate"] == second["estimate"]:
            continue
        separate = best["ci_high"] < second["ci_low"] if low else best["ci_low"] > second["ci_high"]
        if bool(separate):
            marked.add((best[row], col))
    return marked


def _tex_cell(text: str) -> str:
    """A formatted cell in LaTeX: escaped, with a true minus sign on negative numbers."""
    return re.sub(r"(?<![\w.])-(?=\d)", "$-$", _tex_escape(text))


def latex_interval_table(long: pd.DataFrame, *, row: str = "agent", column: str = "metric",
                         rows: Sequence[str] | None = None, columns: Sequence[str] | None = None,
                         lower_is_better: Collection[str] = (), digits: int = 2, title: str | None = None,
                         note: str | None = None, label: str = "", row_header: str | None = None) -> str:
    """A paper table: one row per ``row`` value, one column per ``column`` value, each cell the estimate with its
    95 % interval (:func:`fmt_ci`), the best entry of each column in bold (:func:`best_entries`), booktabs rules
    and a note that states the marking rule (:data:`BEST_RULE`) after ``note``. ``long``: row, column, estimate,
    ci_low, ci_high; ``rows`` / ``columns`` fix their order (default: first appearance)."""
    rows = list(rows) if rows is not None else list(dict.fromkeys(long[row]))
    columns = list(columns) if columns is not None else list(dict.fromkeys(long[column]))
    marked = best_entries(long, row=row, column=column, lower_is_better=lower_is_better)
    cells = {(r[row], r[column]): r for _, r in long.iterrows()}
    lines = [r"\begin{table}[t]", r"\centering", r"\small"]
    if title:
        lines.append(rf"\caption{{{_tex_escape(title)}}}")
    if label:
        lines.append(rf"\label{{tab:{label}}}")
    header = [_tex_escape(row_header or row)] + [
        _tex_escape(str(c)) + (r" ($\downarrow$)" if c in lower_is_better else "") for c in columns]
    lines += [rf"\begin{{tabular}}{{l{'r' * len(columns)}}}", r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
    for r in rows:
        out = [_tex_escape(str(r))]
        for c in columns:
            e = cells.get((r, c))
            text = _tex_cell(fmt_ci(e["estimate"], e["ci_low"], e["ci_high"], digits)) if e is not None else "--"
            out.append(rf"\textbf{{{text}}}" if (r, c) in marked else text)
        lines.append(" & ".join(out) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    rule = BEST_RULE + (" Lower is better where marked ↓." if any(c in lower_is_better for c in columns) else "")
    text = (note.rstrip() + " " if note else "") + "Cells: estimate [95 % interval]. " + rule
    lines.append(rf"\par\smallskip\footnotesize {_tex_escape(text)}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def write_table(display: pd.DataFrame, out_dir: Path, name: str, *, title: str, footnote: str,
                numbers: pd.DataFrame | None = None, latex: str | None = None) -> dict[str, Path]:
    """Write ``name.md`` (display cells), ``name.tex`` (``latex`` if given, else the display cells) and
    ``name.csv`` (``numbers`` if given, else display)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"{name}.{ext}" for ext in ("md", "tex", "csv")}
    paths["md"].write_text(to_markdown(display, title, footnote))
    paths["tex"].write_text(latex if latex is not None else to_latex(display, title, footnote, label=name))
    (numbers if numbers is not None else display).to_csv(paths["csv"], index=False)
    return paths
