"""The package's structure, read from its source with ``ast``.

- No import cycle between the package's modules: imports at module level, inside functions
  and under ``TYPE_CHECKING`` all count, and so does the implicit import of a subpackage's
  ``__init__`` when a module outside that subpackage imports one of its modules.
- No comparison with a dialect's name (``"sqlite"``, ``"postgresql"``) outside
  ``sql/dialects/`` and the migrations: which dialect runs is decided in one place.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "agent_pool_store"
DIALECT_NAMES = {"sqlite", "postgresql"}
MAY_NAME_DIALECTS = ("agent_pool_store.sql.dialects", "agent_pool_store.migrations")


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package at ``root``: dotted name -> file."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_package(name: str, known: dict[str, Path]) -> bool:
    return name in known and known[name].name == "__init__.py"


def _imported(module: str, tree: ast.AST, known: dict[str, Path]) -> Iterator[str]:
    """The package modules that ``module``'s import statements name, wherever they are."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module if _is_package(module, known) else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in known else base


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules importing it runs first (see the module docstring)."""
    known = modules(root)
    top = root.name
    graph: dict[str, set[str]] = {name: set() for name in known}
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for target in _imported(module, tree, known):
            if target not in known or target == module:
                continue
            graph[module].add(target)
            parent = target.rpartition(".")[0]
            while parent and parent != top:  # the subpackages' __init__ run first
                if not module.startswith(parent + ".") and parent != module:
                    graph[module].add(parent)
                parent = parent.rpartition(".")[0]
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (its modules in order, the first repeated), or None."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path: list[str] = [start]
        on_path = {start}
        stack = [iter(sorted(graph[start]))]
        while stack:
            following = next(stack[-1], None)
            if following is None:
                stack.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
            elif following in on_path:
                return [*path[path.index(following) :], following]
            elif following not in done:
                path.append(following)
                on_path.add(following)
                stack.append(iter(sorted(graph[following])))
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE)
    assert len(graph) > 40
    assert "agent_pool_store.sql.runner" in graph["agent_pool_store.sql.store"]
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_check_finds_the_cycles_it_is_for(tmp_path: Path) -> None:
    """A package shaped like the cycle this check was written against is caught, whether
    the closing import is a TYPE_CHECKING one or runs through a subpackage's __init__."""
    root = tmp_path / "pkg"
    (root / "sql").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "migrations.py": "from pkg.sql.engine import build\n",
        "sql/__init__.py": "from pkg.sql.store import Store\n",
        "sql/engine.py": "build = 1\n",
        "sql/store.py": "def open():\n    from pkg import migrations\n",
        "sql/admin.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from pkg.sql.follow import Waiter\n"
        ),
        "sql/follow.py": "from . import admin\n",
    }
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    graph = import_graph(root)
    assert find_cycle(graph) is not None
    assert graph["pkg.migrations"] == {"pkg.sql.engine", "pkg.sql"}
    assert graph["pkg.sql.follow"] == {"pkg.sql.admin"}
    assert graph["pkg.sql.admin"] == {"pkg.sql.follow"}
    (root / "sql/__init__.py").write_text("", encoding="utf-8")
    (root / "sql/admin.py").write_text("", encoding="utf-8")
    assert find_cycle(import_graph(root)) is None


def _dialect_name_comparisons(tree: ast.AST) -> Iterator[int]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands: list[ast.expr] = [node.left, *node.comparators]
        for operand in operands:
            constants = (
                operand.elts if isinstance(operand, ast.Tuple | ast.List | ast.Set) else [operand]
            )
            if any(isinstance(c, ast.Constant) and c.value in DIALECT_NAMES for c in constants):
                yield node.lineno


def test_dialect_names_are_compared_only_in_the_dialects_and_migrations() -> None:
    found = []
    for module, path in modules(PACKAGE).items():
        if module.startswith(MAY_NAME_DIALECTS):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [f"{module}:{line}" for line in _dialect_name_comparisons(tree)]
    assert found == []
    caught = 'if engine.dialect.name == "postgresql" or name in ("sqlite", "x"):\n    pass\n'
    assert list(_dialect_name_comparisons(ast.parse(caught))) == [1, 1]
