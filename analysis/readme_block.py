"""The top-level README's generated block: headline numbers of docs/results, rendered from its CSVs alone.

The block sits between :data:`README_BEGIN` and :data:`README_END`; ``make results`` rewrites it
(:func:`replace_readme_block`) and a test checks that the README's block equals a fresh rendering and that every
number it quotes is a value of the CSVs (:func:`quoted_numbers`).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import pandas as pd

from analysis import figures, tables
from analysis.classic_tables import BASELINE, labelled
from analysis.result_files import claim_lines, is_smoke_table, reading_mark, reading_note
from analysis.sensitivity_tables import ALL_ENVS

__all__ = ["README_BEGIN", "README_END", "readme_block", "replace_readme_block", "extract_readme_block",
           "quoted_numbers", "QUOTED_CSVS"]

README_BEGIN = "<!-- results:begin (generated from docs/results/*.csv by `make results`; do not edit by hand) -->"
README_END = "<!-- results:end -->"
#: the CSVs whose numbers the block quotes
QUOTED_CSVS = ("classic_control.csv", "sensitivity_share.csv", "improvement.csv", "claim.csv")
_DOCS = "docs/"


def _classic(t: pd.DataFrame, readings: Mapping[str, str | None]) -> list[str]:
    t = labelled(t)
    envs = list(dict.fromkeys(t["env"]))
    steps = sorted({int(s) for s in t["steps"].dropna()})
    lines = [f"Final evaluation return, IQM over seeds [95 % CI], {'/'.join(f'{s:,}' for s in steps)} env steps "
             "([docs/results/classic_control.csv](docs/results/classic_control.csv)):", "",
             "| agent | " + " | ".join(envs) + " |", "|---|" + "---:|" * len(envs)]
    for label in figures.agent_order(t["label"].unique()):
        cells = []
        for env in envs:
            r = t[(t["label"] == label) & (t["env"] == env)]
            cells.append("–" if r.empty else tables.fmt_ci(*r[["iqm", "iqm_ci_low", "iqm_ci_high"]].iloc[0], 1))
        lines.append(f"| {reading_mark(label, readings, _DOCS)} | " + " | ".join(cells) + " |")
    return lines + [""] + reading_note(t["label"], readings, _DOCS)


def _reproduced(out: Path) -> list[str]:
    repro = [p for p in sorted(out.glob("reproduce-*.csv")) if not p.stem.endswith("-quick")]
    lines = []
    for smoke, intro in ((False, "Published tables reproduced, verdicts per row (inside: the published value lies in "
                                 "our 95 % interval):"),
                         (True, "Smoke-level checks (every row \"not comparable\": the budget is far below the "
                                "source's; they show that the pipeline runs, not that the results reproduce):")):
        chosen = [p for p in repro if is_smoke_table(p) == smoke]
        if not chosen:
            continue
        lines += [intro, ""]
        for csv in chosen:
            verdicts = pd.read_csv(csv)["verdict"].value_counts()
            md = csv.with_suffix(".md")
            head = md.read_text().splitlines()[0].removeprefix("### ") if md.exists() else csv.stem
            counts = ", ".join(f"{int(verdicts.get(v, 0))} {v}" for v in ("inside", "outside", "not comparable"))
            lines.append(f"- {head}: {counts} of {int(verdicts.sum())} rows "
                         f"([docs/results/{md.name}](docs/results/{md.name}))")
        lines.append("")
    return lines


def readme_block(out: Path, readings: Mapping[str, str | None] | None = None) -> str:
    """The top-level README's generated block (between the markers), from the CSVs in ``out`` only.
    ``readings``: agent → anchor key of its reading in docs/algorithms.md (rows of those agents are marked)."""
    readings = readings or {}
    classic, share, claim = out / "classic_control.csv", out / "sensitivity_share.csv", out / "claim.csv"
    lines = [README_BEGIN]
    if classic.exists():
        lines += _classic(pd.read_csv(classic), readings)
    improvement = out / "improvement.csv"
    if improvement.exists():
        lines += [f"Does it beat the hard update? P(X > {BASELINE}) over the classic environments [95 % CI], 0.5 = no "
                  "difference ([docs/results/improvement.csv](docs/results/improvement.csv)):", ""]
        lines += [f"- {reading_mark(r.x, readings, _DOCS)}: {tables.fmt_ci(r.probability, r.ci_low, r.ci_high)}"
                  for r in pd.read_csv(improvement).itertuples(index=False)]
        lines.append("")
    if share.exists():
        s = pd.read_csv(share)
        pooled = s[s["env"] == ALL_ENVS] if (s["env"] == ALL_ENVS).any() else s
        lines += ["Share of each target knob's swept range within 10 % of its best IQM [95 % CI] "
                  "([docs/results/sensitivity_share.csv](docs/results/sensitivity_share.csv)):", ""]
        lines += [f"- {r.method} ({r.env}): {tables.fmt_ci(r.share, r.share_ci_low, r.share_ci_high)}"
                  for r in pooled.itertuples(index=False)]
        lines.append("")
        if claim.exists() and len(pd.read_csv(claim)):
            lines += ["\"Tracking removes the need to tune the hard update period\", per reading (rule in "
                      "[docs/results/README.md](docs/results/README.md); "
                      "[docs/results/claim.csv](docs/results/claim.csv)):", ""]
            lines += claim_lines(pd.read_csv(claim, keep_default_na=False, na_values=[""]), s) + [""]
    repro = _reproduced(out)
    lines += repro
    if not classic.exists() and not share.exists() and not repro:
        lines += ["Reference results (`docs/results/`) have not been generated yet: `make results` writes them."]
    lines.append(README_END)
    return "\n".join(lines)


def replace_readme_block(text: str, block: str) -> str:
    """``text`` with its generated block replaced by ``block``; a one-line ``ValueError`` without markers."""
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"README has no generated results block ({README_BEGIN!r} ... {README_END!r})")
    return text[:start] + block + text[end + len(README_END):]


def extract_readme_block(text: str) -> str:
    """The generated block of ``text``, markers included."""
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError("README has no generated results block")
    return text[start:end + len(README_END)]


def quoted_numbers(block: str) -> list[str]:
    """Every decimal number quoted in a generated block (for the check against the CSVs)."""
    body = block.replace(README_BEGIN, "").replace(README_END, "")
    body = re.sub(r"\([^)]*\.(csv|md)(#[^)]*)?\)", "", body)  # links
    return re.findall(r"-?\d+\.\d+", body)
