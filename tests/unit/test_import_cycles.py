"""No import cycles among the modules of ``ceso`` and ``workers``.

The graph is read from the source with :mod:`ast`, nothing is imported. The rule:

* A module depends on every module of ``ceso``/``workers`` it imports anywhere in its source:
  at the top, inside a function or method, under ``try``/``if``/``with``. An import deferred
  into a function still runs, and still ties the two modules together; deferring it only
  hides a cycle from the interpreter, not from the reader.
* Imports under ``if TYPE_CHECKING:`` are left out: they never run, and only name a type for
  an annotation (a helper naming the class that owns it).
* ``from package import name`` depends on ``package.name`` when that is a module, else on
  ``package``. Importing a submodule does not count as depending on its parent package.

A cycle is a strongly connected component of that graph with more than one module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("ceso", "workers")


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> source file, for every ``.py`` file under ``root/<package>``."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of the module except those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))
    return found


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, set[str]]:
    """Module -> the modules of ``packages`` it depends on, by the rule of this file's docstring."""
    files = module_files(root, packages)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        deps: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names if alias.name in files)
                continue
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                here = here[: len(here) - (node.level - 1)]
                base = ".".join([*here, *([node.module] if node.module else [])])
            for alias in node.names:
                if f"{base}.{alias.name}" in files:
                    deps.add(f"{base}.{alias.name}")
                elif base in files:
                    deps.add(base)
        deps.discard(name)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, deps = work[-1]
            dep = next(deps, None)
            if dep is not None:
                if dep not in index:
                    index[dep] = low[dep] = len(index)
                    stack.append(dep)
                    on_stack.add(dep)
                    work.append((dep, iter(sorted(graph[dep]))))
                elif dep in on_stack:
                    low[node] = min(low[node], index[dep])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.add(frozenset(component))
    return found


def _describe(graph: dict[str, set[str]], component: frozenset[str]) -> str:
    edges = [f"{a} -> {b}" for a in sorted(component) for b in sorted(graph[a] & component)]
    return "; ".join(edges)


def test_no_import_cycles() -> None:
    graph = import_graph(REPO, PACKAGES)
    assert "ceso.jobs.runner" in graph and "workers.tasks" in graph  # the walk found the packages
    found = cycles(graph)
    new = sorted(_describe(graph, c) for c in found)
    assert new == [], "import cycles (break them):\n" + "\n".join(new)


def test_the_rule_counts_deferred_imports_and_leaves_out_type_checking(tmp_path: Path) -> None:
    pkg = tmp_path / "ceso"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from ceso.sub.a import thing\n")
    (pkg / "sub" / "a.py").write_text("from . import b\nthing = 1\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ceso.sub import a\n")  # deferred: counts
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import ceso.d\n")
    (pkg / "d.py").write_text("import ceso.c\n")  # c imports d only for the type checker
    graph = import_graph(tmp_path, ["ceso"])
    assert graph["ceso.sub"] == {"ceso.sub.a"}
    assert graph["ceso.sub.a"] == {"ceso.sub.b"}
    assert graph["ceso.sub.b"] == {"ceso.sub.a"}
    assert graph["ceso.c"] == set() and graph["ceso.d"] == {"ceso.c"}
    assert cycles(graph) == {frozenset({"ceso.sub.a", "ceso.sub.b"})}
