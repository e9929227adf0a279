"""The summary `make faults` writes (tests/fault_summary.py) and the page that shows it: docs/reliability.md's
figures block is exactly docs/fault-summary.md."""
import datetime
from pathlib import Path

import fault_summary

ROOT = Path(__file__).resolve().parents[1]


def test_totals_count_each_fault_once_and_the_header_says_when_and_where():
    lines = [{"kind": "kill", "test": "a", "passed": True, "kills": 3, "points_compared": 100, "points_lost": 0,
              "points_duplicated": 0},
             {"kind": "combined", "test": "b", "passed": True, "faults_injected": 4, "worker_kills": 1, "outages": 1,
              "trials": 8, "points_compared": 50, "points_lost": 1, "points_duplicated": 2},
             {"kind": "outage", "test": "c", "passed": False, "outages": 1, "trials": 4, "points_expected": 30,
              "lost": 0, "duplicated": 0},
             {"kind": "bad_input", "test": "d", "passed": True, "inputs": 1},
             {"kind": "_session", "test": "session", "passed": 3, "failed": 1, "duration_s": 125.4}]
    assert fault_summary.totals(lines) == {"faults": 8, "trials": 12, "points": 180, "lost": 1, "duplicated": 2,
                                           "bad_inputs": 1}
    head = fault_summary.header(lines, when=datetime.date(2027, 1, 2), commit="abc")
    assert head.startswith("`make faults` on 2027-01-02 at commit `abc`")
    assert "3 passed, 1 failed in 2 min 5 s" in head
    assert "8 faults injected over 12 trials; 180 metric points compared, 1 lost, 2 duplicated" in head
    table = fault_summary.table(lines)
    assert "| outage | 0/1 |" in table and "_session" not in table


def test_the_page_shows_the_summary_file():
    doc = (ROOT / "docs" / "reliability.md").read_text()
    summary = (ROOT / "docs" / "fault-summary.md").read_text()
    start, end = doc.index(fault_summary.BEGIN) + len(fault_summary.BEGIN), doc.index(fault_summary.END)
    assert doc[start:end].strip("\n") == summary.strip("\n")
    assert fault_summary.replace_block(doc, summary) == doc
