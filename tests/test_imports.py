"""The package's modules import one way: each imports alone, and no import cycle exists."""

from __future__ import annotations

import ast
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import enkash_async

PACKAGE = Path(enkash_async.__file__).parent
# ``__main__`` modules run a program when imported; they are entry points, not layers.
MODULES = [
    "enkash_async",
    *sorted(
        info.name
        for info in pkgutil.walk_packages([str(PACKAGE)], prefix="enkash_async.")
        if not info.name.endswith(".__main__")
    ),
]


def imports_of(module: str) -> set[str]:
    """The package's modules ``module`` names in an import statement, anywhere in its code
    (a function-level import is an edge too: a lazy import hides a cycle, it does not end it)."""
    path = PACKAGE.joinpath(*module.split(".")[1:])
    source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    is_package = source.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                base = ".".join(parts[: len(parts) - node.level + is_package])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for alias in node.names:
                # ``from package import module`` imports the module, else a name of target.
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in MODULES else target)
    return {name for name in found if name in MODULES and name != module}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph`` as the list of modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_import_graph_has_no_cycle() -> None:
    graph = {module: imports_of(module) for module in MODULES}
    assert find_cycle(graph) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.slow
def test_each_module_imports_alone_in_a_fresh_interpreter() -> None:
    # Fresh interpreters, one per core, each given every n-th module; before each module,
    # every module of the package is forgotten, so each is imported first, alone, as a
    # user's first import would be. Run together: re-importing the package is the cost.
    share = max(2, min(4, os.cpu_count() or 1))
    script = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] == 'enkash_async']:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, *MODULES[part::share]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for part in range(share)
    ]
    failures = []
    for child in children:
        _, errors = child.communicate(timeout=240)
        if child.returncode != 0:
            failures.append(errors[-2000:])
    assert failures == []
