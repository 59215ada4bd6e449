"""The package's shape, checked: imports point down only, SurrealDB behind one door.

Layers, top to bottom (a module may import its own folder and any folder below):

    cli → dev → tools → service → capture → reads → pipeline → sink → surreal → config → basics

The basics are the modules directly in ``syncd/`` (errors, keys, durations, ...).
Module size is reported (the largest modules, in the test's output), not failed:
a file is split where it holds two ideas, never to get under a number.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "syncd"
LAYERS = [
    "basics",
    "config",
    "surreal",
    "sink",
    "pipeline",
    "reads",
    "capture",
    "service",
    "tools",
    "dev",
]
LAYERS += ["cli"]
# Entry points that only re-export or forward: allowed to import anything.
ENTRY = {"syncd", "syncd.__main__"}
SDK_ROOTS = ("surrealdb", "surrealdb_embedded", "websockets")
SDK_FOLDERS = ("surreal", "dev")
REPORT_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every module imported anywhere in ``path`` (function-level imports too)."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # ``from syncd.cli import demo`` imports the module syncd.cli.demo
            names.update(
                f"{node.module}.{a.name}"
                for a in node.names
                if f"{node.module}.{a.name}" in MODULES
            )
    return names


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS):
        return parts[1]
    return "basics"


def _internal_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in MODULES.items():
        for imported in _imports(path):
            if imported in MODULES and imported != name:
                edges[name].add(imported)
    return edges


def test_every_import_points_down_or_within_its_folder() -> None:
    wrong = []
    for module, targets in _internal_edges().items():
        if module in ENTRY:
            continue
        for target in targets:
            here, there = LAYERS.index(_layer(module)), LAYERS.index(_layer(target))
            if there > here:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports pointing upwards:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles() -> None:
    edges = _internal_edges()
    # A package's __init__ importing its own modules is not a cycle of ideas.
    for name in list(edges):
        edges[name] = {t for t in edges[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(MODULES):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_sdk_is_imported_only_behind_the_surreal_door() -> None:
    leaks = [
        f"{module} imports {imported}"
        for module, path in MODULES.items()
        if _layer(module) not in SDK_FOLDERS
        for imported in _imports(path)
        if imported.split(".")[0] in SDK_ROOTS
    ]
    assert not leaks, "\n".join(sorted(leaks))


def test_module_sizes_are_reported(capsys: pytest.CaptureFixture[str]) -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    large = sorted(((n, name) for name, n in sizes.items() if n > REPORT_LINES), reverse=True)
    with capsys.disabled():
        for n, name in large:
            print(f"\nlarge module (look for two ideas in it): {name} {n} lines", end="")
    assert sizes and all(n > 0 for n in sizes.values())


@pytest.mark.parametrize("folder", LAYERS[1:])
def test_each_folder_says_its_role_and_what_it_may_import(folder: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text()))
    assert doc, f"syncd/{folder}/__init__.py has no docstring"
    assert "may import" in doc.lower(), (
        f"syncd/{folder}/__init__.py does not say what it may import"
    )


def test_tests_mirror_the_package() -> None:
    tests = Path(__file__).resolve().parent
    for folder in LAYERS[1:]:
        assert (tests / folder).is_dir(), f"tests/{folder}/ is missing"
