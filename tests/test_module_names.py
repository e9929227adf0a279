"""One name, one place: no two modules of the repository share a file name, and no module grows past about 500
lines (a module that does one job reads in one sitting)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agents", "suite", "analysis", "benchmarks")
MAX_LINES = 520


def _modules() -> list[Path]:
    return [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if p.name != "__init__.py"]


def test_no_two_modules_share_a_name():
    counts = Counter(p.name for p in _modules())
    clashes = sorted(str(p.relative_to(ROOT)) for p in _modules() if counts[p.name] > 1)
    assert not clashes, f"modules sharing a file name: {clashes}"


def test_modules_stay_short():
    long = {str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"
