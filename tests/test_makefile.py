"""The Makefile passes what its comments promise: a comma inside ``$(if ...)`` silently cuts the branch short
(make reads it as the else branch), so `make bench BEFORE=DIR` once ran one contender instead of eight."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _calls(text: str, name: str) -> list[str]:
    """The argument text of every ``$(name ...)`` call in ``text``, nested parentheses balanced."""
    out, start = [], 0
    while (i := text.find(f"$({name} ", start)) >= 0:
        depth, j = 0, i + 1
        while j < len(text):
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            if depth == 0:
                break
            j += 1
        out.append(text[i + len(name) + 3:j])
        start = j
    return out


def _top_level_args(args: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in args:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def test_no_if_call_has_a_literal_comma_in_a_branch():
    text = "\n".join(line for line in (ROOT / "Makefile").read_text().splitlines() if not line.lstrip().startswith("#"))
    calls = _calls(text, "if")
    assert calls, "the Makefile has no $(if ...) calls: the parser above is wrong"
    bad = [c for c in calls if len(_top_level_args(c)) > 3]
    assert not bad, f"$(if ...) with a comma in a branch (put the list in a variable): {bad}"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_bench_before_runs_every_before_after_contender(tmp_path):
    out = subprocess.run(["make", "-n", "bench", f"BEFORE={tmp_path}", f"RESULTS={tmp_path / 'r'}"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if "bench_speed.py" in l)
    assert f"--before {tmp_path} --only ref1,before1,ours1,sb3,refN,sb3N,beforeN,oursN" in line
