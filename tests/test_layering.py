"""Layering of the three packages, checked by parsing their imports with ``ast`` (nothing is imported).

Rules (README, "Layout"):

1. Direction: ``agents/`` imports neither ``suite/`` nor ``analysis/``; ``analysis/`` imports neither ``suite/`` nor
   ``agents/`` (its command line lives in ``suite/``). ``suite/`` may import both. **Every** import statement counts
   here: at module level, inside functions (a lazy import is still a dependency), and under ``if TYPE_CHECKING:``;
   so do ``importlib.import_module("...")`` / ``__import__("...")`` calls with a literal name.
2. No import circles between modules:
   a. among imports that run when a module is first imported (module level, including inside module-level
      ``try``/``if``; ``if TYPE_CHECKING:`` blocks never run and are left out) there is no circle at all;
   b. counting function-level imports too, the only circle allowed is the one listed in :data:`PENDING_CIRCLES`
      (a known circle another part of the same issue removes), and no new one may appear.

An import ``from pkg import name`` is an edge to ``pkg.name`` when that is a module of ours, else to ``pkg``;
``import a.b.c`` is an edge to ``a.b.c``. Importing a submodule also runs its parents' ``__init__``, but that is not
counted as an edge (every submodule would otherwise be in a circle with its package).
"""
from __future__ import annotations

import ast
import errno
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agents", "suite", "analysis")
#: package -> packages it must never import, with the reason shown on failure
FORBIDDEN = {
    "agents": ({"suite", "analysis"}, "agents/ is the bottom layer: it knows nothing of environments' "
                                      "implementations, the scheduler or the analysis"),
    "analysis": ({"suite", "agents"}, "analysis/ reads runs from the tracking store only; its command line "
                                      "lives in suite/"),
}
#: circles through function-level imports that are known and being removed elsewhere; each entry is the set of
#: modules the circle may span (a circle reaching beyond it, or any other circle, fails)
PENDING_CIRCLES: dict[frozenset[str], str] = {}


@dataclass(frozen=True)
class Import:
    """One import statement's edge from ``source`` to ``target`` (both dotted module names of ours)."""

    source: str
    target: str
    file: str
    line: int
    text: str
    scope: str  # "module" (runs on import), "function" (runs when called) or "type-checking" (never runs)

    def where(self) -> str:
        return f"{self.file}:{self.line}: `{self.text}`"


def _modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of the three packages under ``root``."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(root: Path) -> tuple[dict[str, Path], list[Import]]:
    """Every import of one of our modules by one of our modules, with its scope."""
    modules = _modules(root)

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found: list[Import] = []
    for source, path in modules.items():
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
        rel = path.relative_to(root).as_posix()
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        seen: set[tuple[str, int]] = set()

        def add(target: str | None, node: ast.AST, scope: str, source: str = source, rel: str = rel,
                text: str = text, seen: set[tuple[str, int]] = seen) -> None:
            if target and target != source and (target, node.lineno) not in seen:
                seen.add((target, node.lineno))  # `from m import a, b` is one edge, reported once
                segment = " ".join((ast.get_source_segment(text, node) or ast.unparse(node)).split())
                found.append(Import(source, target, rel, node.lineno, segment, scope))

        def visit(node: ast.AST, scope: str, package: str = package) -> None:
            for child in ast.iter_child_nodes(node):
                inner = scope
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and scope == "module":
                    inner = "function"
                if isinstance(child, ast.If) and _is_type_checking(child.test):
                    for stmt in child.body:
                        visit(ast.Module(body=[stmt], type_ignores=[]), "type-checking")
                    for stmt in child.orelse:
                        visit(ast.Module(body=[stmt], type_ignores=[]), scope)
                    continue
                if isinstance(child, ast.Import):
                    for alias in child.names:
                        add(resolve(alias.name), child, scope)
                elif isinstance(child, ast.ImportFrom):
                    if child.level:
                        base = package.split(".")
                        base = base[:len(base) - (child.level - 1)]
                        module = ".".join(base + ([child.module] if child.module else []))
                    else:
                        module = child.module or ""
                    for alias in child.names:
                        full = f"{module}.{alias.name}"
                        add(full if full in modules else resolve(module), child, scope)
                elif (isinstance(child, ast.Call) and child.args and isinstance(child.args[0], ast.Constant)
                      and isinstance(child.args[0].value, str)
                      and ((isinstance(child.func, ast.Attribute) and child.func.attr == "import_module")
                           or (isinstance(child.func, ast.Name) and child.func.id in ("__import__", "import_module")))):
                    add(resolve(child.args[0].value), child, scope)
                visit(child, inner)

        visit(tree, "module")
    return modules, found


def direction_violations(imports: list[Import]) -> list[str]:
    """One line per import that breaks a direction rule."""
    out = []
    for imp in imports:
        src_pkg, dst_pkg = imp.source.split(".")[0], imp.target.split(".")[0]
        banned, why = FORBIDDEN.get(src_pkg, (set(), ""))
        if dst_pkg in banned:
            out.append(f"{imp.where()} ({imp.scope}-level): {src_pkg}/ must not import {dst_pkg}/ ({why})")
    return out


def _circles(edges: dict[str, dict[str, Import]]) -> list[list[Import]]:
    """One shortest circle (as its imports) per strongly connected group of modules, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def strong(v: str) -> None:  # Tarjan; the graphs are small enough for recursion
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    circles = []
    for group in sorted(groups):
        start, members = group[0], set(group)
        parent: dict[str, str | None] = {start: None}
        queue, cycle_end = deque([start]), None
        while queue and cycle_end is None:  # breadth first: the shortest way back to start
            v = queue.popleft()
            for w in sorted(edges.get(v, {})):
                if w == start:
                    cycle_end = v
                    break
                if w in members and w not in parent:
                    parent[w] = v
                    queue.append(w)
        path = [cycle_end]
        while parent[path[-1]] is not None:
            path.append(parent[path[-1]])
        path.reverse()
        hops = path + [start]
        circles.append([edges[a][b] for a, b in zip(hops, hops[1:])])
    return circles


def _describe(circle: list[Import]) -> str:
    names = " -> ".join([circle[0].source] + [imp.target for imp in circle])
    return f"import circle {names}:\n" + "\n".join(f"    {imp.where()} ({imp.scope}-level)" for imp in circle)


def circle_violations(imports: list[Import], scopes: set[str],
                      allowed: dict[frozenset[str], str] | None = None) -> list[str]:
    """One message per import circle among the imports of the given scopes, except those ``allowed`` covers."""
    edges: dict[str, dict[str, Import]] = {}
    for imp in imports:
        if imp.scope in scopes:
            edges.setdefault(imp.source, {}).setdefault(imp.target, imp)
    out = []
    for circle in _circles(edges):
        members = {imp.source for imp in circle}
        if not any(members <= pending for pending in (allowed or {})):
            out.append(_describe(circle))
    return out


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return _imports(ROOT)[1]


def test_packages_import_only_downward(imports):
    bad = direction_violations(imports)
    assert not bad, "layering broken:\n" + "\n".join(bad)


def test_no_import_circle_at_import_time(imports):
    bad = circle_violations(imports, {"module"})
    assert not bad, "\n".join(bad)


def test_no_import_circle_through_function_level_imports(imports):
    bad = circle_violations(imports, {"module", "function"}, PENDING_CIRCLES)
    assert not bad, ("\n".join(bad) + "\n(a function-level import delays the circle but keeps it: move the shared "
                                      "piece to a module both can import)")


def test_the_checker_finds_what_it_should(tmp_path):
    """The checks above on a small fake tree: a forbidden import inside a function, a TYPE_CHECKING-only import
    (ignored for circles), a circle at import time and one through a function-level import."""
    files = {
        "agents/__init__.py": "",
        "agents/a.py": "def f():\n    from suite import s\n",
        "analysis/__init__.py": "",
        "analysis/x.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from analysis import y\n",
        "analysis/y.py": "from . import x\n",
        "suite/__init__.py": "",
        "suite/s.py": "import suite.t\n",
        "suite/t.py": "from suite.s import thing\n",
        "suite/u.py": "def g():\n    from suite import v\n",
        "suite/v.py": "import importlib\nM = importlib.import_module('suite.u')\n",
    }
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    found = _imports(tmp_path)[1]
    assert direction_violations(found) == [
        "agents/a.py:2: `from suite import s` (function-level): agents/ must not import suite/ "
        f"({FORBIDDEN['agents'][1]})"]
    at_import = circle_violations(found, {"module"})
    assert at_import == ["import circle suite.s -> suite.t -> suite.s:\n"
                         "    suite/s.py:1: `import suite.t` (module-level)\n"
                         "    suite/t.py:1: `from suite.s import thing` (module-level)"]
    everywhere = circle_violations(found, {"module", "function"})
    assert len(everywhere) == 2 and "suite.u -> suite.v -> suite.u" in everywhere[1]
    assert circle_violations(found, {"module", "function"}, {frozenset({"suite.u", "suite.v"}): "known"}) \
        == at_import


def test_analysis_write_errnos_match_the_commands():
    """analysis/ cannot import suite.errors, so it names the fixable write errnos itself: the two lists agree."""
    from analysis.experiment import _WRITE_ERRNOS
    from suite.errors import WRITE_ERRNOS

    assert _WRITE_ERRNOS == WRITE_ERRNOS == {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
