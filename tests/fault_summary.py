"""Summarise the JSON-lines report written by the fault tests (`make faults`) as Markdown.

Usage: python tests/fault_summary.py results/fault_report.jsonl [--out FILE] [--doc DOC]

Each line of the report is one thing a test tried (the ``fault_log`` fixture in tests/conftest.py), plus one
``_session`` line with the run's outcome counts and duration. The summary says when and at which commit it ran,
gives the totals the reliability page quotes (faults injected, trials, metric points compared, lost and
duplicated) and a table with one row per kind (counters summed, and the tests that recorded it with how many
passed). ``--out`` writes it to a file; ``--doc`` also replaces the block between ``<!-- faults:begin -->`` and
``<!-- faults:end -->`` in that page with it, so the page shows exactly the file's content.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"
#: counters that count injected faults (kills, outages, failed writes, mixed faults of a combined sweep)
FAULT_KEYS = ("kills", "outages", "failed_writes", "faults_injected")
#: per entry, the first of these present is its number of metric points compared (checked one by one)
POINT_KEYS = ("points_compared", "points_expected", "points")
LOST_KEYS = ("points_lost", "lost")
DUPLICATED_KEYS = ("points_duplicated", "duplicated")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _first(entry: dict, keys: tuple[str, ...]) -> float:
    for key in keys:
        if _number(entry.get(key)):
            return entry[key]
    return 0


def totals(lines: list[dict]) -> dict[str, float]:
    """Faults injected, trials, points compared, lost and duplicated, and bad inputs, over every entry."""
    out = {"faults": 0.0, "trials": 0.0, "points": 0.0, "lost": 0.0, "duplicated": 0.0, "bad_inputs": 0.0}
    for e in lines:
        if e.get("kind") == "_session":
            continue
        # a combined sweep counts its faults once, in faults_injected (its per-kind counters break it down)
        out["faults"] += e["faults_injected"] if _number(e.get("faults_injected")) else sum(
            e[k] for k in FAULT_KEYS if _number(e.get(k)))
        out["trials"] += e["trials"] if _number(e.get("trials")) else 0
        out["points"] += _first(e, POINT_KEYS)
        out["lost"] += _first(e, LOST_KEYS)
        out["duplicated"] += _first(e, DUPLICATED_KEYS)
        out["bad_inputs"] += e["inputs"] if _number(e.get("inputs")) else 0
    return out


def table(lines: list[dict]) -> str:
    """Markdown: one row per kind with the summed counters and passed/total tests."""
    by_kind: dict[str, dict] = defaultdict(lambda: {"tests": {}, "counts": defaultdict(float)})
    for entry in lines:
        if entry.get("kind") == "_session":
            continue
        kind = by_kind[entry.get("kind", "other")]
        kind["tests"][entry["test"]] = kind["tests"].get(entry["test"], True) and bool(entry.get("passed"))
        for key, value in entry.items():
            if _number(value) and key not in ("passed",):
                kind["counts"][key] += value
    rows = ["| kind | tests passed | what was tried (summed over entries) |", "|---|---:|---|"]
    for name in sorted(by_kind):
        kind = by_kind[name]
        passed = sum(kind["tests"].values())
        counts = ", ".join(f"{k} = {v:g}" for k, v in sorted(kind["counts"].items()))
        rows.append(f"| {name} | {passed}/{len(kind['tests'])} | {counts} |")
    return "\n".join(rows)


#: the files this script writes: their own changes do not make the tested tree "uncommitted"
GENERATED = ("docs/fault-summary.md", "docs/reliability.md")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def header(lines: list[dict], when: datetime.date | None = None, commit: str | None = None) -> str:
    """When, where and how the run went; the totals."""
    session = next((e for e in reversed(lines) if e.get("kind") == "_session"), {})
    when = when or datetime.datetime.now(datetime.timezone.utc).date()
    if commit is None:
        commit = _git("rev-parse", "--short=12", "HEAD") or "unknown"
        if _git("status", "--porcelain", "--untracked-files=no", "--", ".", *(f":(exclude){g}" for g in GENERATED)):
            commit += " with uncommitted changes"
    minutes, seconds = divmod(int(round(session.get("duration_s", 0))), 60)
    outcome = ", ".join(f"{int(session[k])} {k}" for k in ("passed", "failed", "error", "skipped")
                        if session.get(k)) or "no session line"
    t = totals(lines)
    return (f"`make faults` on {when.isoformat()} at commit `{commit}`, {os.cpu_count()} cores: {outcome} in "
            f"{minutes} min {seconds} s.\n\n"
            f"Totals: {t['faults']:,.0f} faults injected over {t['trials']:,.0f} trials; {t['points']:,.0f} metric "
            f"points compared, {t['lost']:,.0f} lost, {t['duplicated']:,.0f} duplicated; {t['bad_inputs']:,.0f} bad "
            "inputs tried.")


def report(lines: list[dict]) -> str:
    """The whole summary: :func:`header`, then :func:`table`."""
    return header(lines) + "\n\n" + table(lines) + "\n"


def replace_block(doc: str, block: str) -> str:
    """``doc`` with the text between the markers replaced by ``block`` (markers kept)."""
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    return doc[:start] + "\n" + block.rstrip("\n") + "\n" + doc[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="also write the summary here")
    parser.add_argument("--doc", type=Path, default=None, help="and replace the marked block of this page with it")
    args = parser.parse_args(argv)
    if not args.report.exists():
        print(f"fault_summary: no report at {args.report} (did any fault test run?)", file=sys.stderr)
        return 2
    lines = [json.loads(line) for line in args.report.read_text().splitlines() if line.strip()]
    text = report(lines)
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.doc:
        args.doc.write_text(replace_block(args.doc.read_text(), text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
