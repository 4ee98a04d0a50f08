"""Data flows one way (docs/architecture.md): a package imports only from its own floor and the floors below it.

catalog -> specs -> workload -> memory -> compute -> search -> usecases -> render -> cli. The check reads every
module's imports (at the top and inside functions alike); imports under ``if TYPE_CHECKING:`` are annotations'
vocabulary, never executed, and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "llmsizer"

#: the floors, ground first; a package may import from any floor at or below its own
FLOORS = [
    {"units", "errors", "explain", "record"},
    {"specs"},
    {"workload"},
    {"data"},
    {"catalog"},
    {"memory"},
    {"compute"},
    {"search"},
    {"usecases"},
    {"render"},
    {"cli"},
]
FLOOR = {pkg: i for i, floor in enumerate(FLOORS) for pkg in floor}


def _floor(module: str) -> int | None:
    """The floor of ``llmsizer.<pkg>...``; None for the package facade and ``__main__`` (above every floor)."""
    parts = module.split(".")
    return FLOOR.get(parts[1]) if parts[0] == "llmsizer" and len(parts) > 1 else None


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if _floor(name) is not None:
            out.append((name, path))
    return out


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skip |= {id(n) for n in ast.walk(node)}
    return skip


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_blocks(tree)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "llmsizer":  # ``from llmsizer import data``: the names are modules (or __version__)
                out += [(f"llmsizer.{a.name}", node.lineno) for a in node.names]
            else:
                out.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
    return out


MODULES = _modules()


def test_every_package_has_a_floor():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in SRC.glob("*.py")} - {"__init__", "__main__"}
    assert packages | modules == set(FLOOR)


@pytest.mark.parametrize(("name", "path"), MODULES, ids=[n for n, _ in MODULES])
def test_imports_point_down(name, path):
    mine = _floor(name)
    up = [f"{target} (line {line})" for target, line in _imports(path)
          if (f := _floor(target)) is not None and f > mine]
    assert up == [], f"{name} (floor {mine}) imports from above: {up}"


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from llmsizer.cli import app\n"
                   "def f():\n    from llmsizer.search import plan\n", encoding="utf-8")
    assert [t for t, _ in _imports(bad)] == ["typing", "llmsizer.search"]
