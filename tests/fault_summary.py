"""Summarise the JSON-lines report written by the fault tests (`make faults`) as a Markdown table.

Usage: python tests/fault_summary.py results/fault_report.jsonl [--out FILE]
Each line is one thing a test tried (see the ``fault_log`` fixture in tests/conftest.py); numeric fields are
summed per kind, and the tests that recorded each kind are counted with how many passed.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def summarise(lines: list[dict]) -> str:
    """Markdown: one row per kind with the summed counters and passed/total tests."""
    by_kind: dict[str, dict] = defaultdict(lambda: {"tests": {}, "counts": defaultdict(float)})
    for entry in lines:
        kind = by_kind[entry.get("kind", "other")]
        kind["tests"][entry["test"]] = kind["tests"].get(entry["test"], True) and bool(entry.get("passed"))
        for key, value in entry.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("passed",):
                kind["counts"][key] += value
    rows = ["| kind | tests passed | what was tried (summed over entries) |", "|---|---:|---|"]
    for name in sorted(by_kind):
        kind = by_kind[name]
        passed = sum(kind["tests"].values())
        counts = ", ".join(f"{k} = {v:g}" for k, v in sorted(kind["counts"].items()))
        rows.append(f"| {name} | {passed}/{len(kind['tests'])} | {counts} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    if not args.report.exists():
        print(f"fault_summary: no report at {args.report} (did any fault test run?)", file=sys.stderr)
        return 2
    lines = [json.loads(line) for line in args.report.read_text().splitlines() if line.strip()]
    table = summarise(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
