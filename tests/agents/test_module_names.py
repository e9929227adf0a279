"""No module of agents/ shares its file name with another module of the repository (one name, one place)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: clashes known and left open, with the reason (a clash not listed here fails)
PENDING: dict[str, str] = {}


def test_agent_modules_have_names_of_their_own():
    modules = [p for pkg in ("agents", "suite", "analysis", "benchmarks") for p in (ROOT / pkg).rglob("*.py")
               if p.name != "__init__.py"]
    counts = Counter(p.name for p in modules)
    ours = {p.name for p in modules if p.relative_to(ROOT).parts[0] == "agents"}
    clashes = sorted(str(p.relative_to(ROOT)) for p in modules
                     if p.name in ours and counts[p.name] > 1 and p.name not in PENDING)
    assert not clashes, f"agents/ modules sharing a file name: {clashes}"
