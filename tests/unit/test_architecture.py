"""The shape of the code, checked: layers, no import cycle, small folders and modules.

docs/architecture.md draws the layers; these tests keep the drawing true. Imports are read
from the source (function-level ones included, `if TYPE_CHECKING:` blocks left out: those
never run), so a coupling hidden inside a function counts like one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "loadmgr"
MAX_MODULES_PER_FOLDER = 14
MAX_MODULE_LINES = 450
# The plugin is one file that Locust loads by path, with no dependency but Locust itself.
LONG_MODULES_ALLOWED = {"locust/loadmgr_plugin.py"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skipped.update(id(n) for n in ast.walk(inner))
    return skipped


def _imported(name: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    module = node.module or ""
    if node.level:
        base = name.split(".")
        if MODULES[name].name != "__init__.py":
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        module = ".".join([*base, module] if module else base)
    for alias in node.names:
        full = f"{module}.{alias.name}"
        yield full if full in MODULES else module


def _nearest_module(target: str) -> str | None:
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _running_imports(name: str) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of module `name` that run (any depth, not TYPE_CHECKING)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    skipped = _type_checking_only(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped:
            yield node


def imports_of(name: str) -> set[str]:
    """The loadmgr modules `name` imports when it runs."""
    found: set[str] = set()
    for node in _running_imports(name):
        for target in _imported(name, node):
            module = _nearest_module(target)
            # A module's own parent packages run first anyway: not an edge.
            if module and module != name and not name.startswith(module + "."):
                found.add(module)
    return found


def external_imports_of(name: str) -> set[str]:
    """The top-level packages `name` imports by absolute name when it runs."""
    found: set[str] = set()
    for node in _running_imports(name):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif not node.level:
            found.add((node.module or "").split(".")[0])
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def cycles() -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in GRAPH:
        if root in index:
            continue
        work = [(root, iter(sorted(GRAPH[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(GRAPH[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_no_import_cycle_between_modules() -> None:
    assert cycles() == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    saved = dict(GRAPH)
    try:
        GRAPH["loadmgr.models"] = {*GRAPH["loadmgr.models"], "loadmgr.service.context"}
        assert any("loadmgr.models" in group for group in cycles())
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


@pytest.mark.parametrize(
    "folder", sorted({p.parent for p in PACKAGE.rglob("*.py")}), ids=lambda p: str(p.name)
)
def test_no_folder_holds_more_than_14_modules(folder: Path) -> None:
    modules = sorted(p.name for p in folder.glob("*.py"))
    assert len(modules) <= MAX_MODULES_PER_FOLDER, (folder.relative_to(PACKAGE), modules)


def test_no_module_is_over_450_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert set(long) <= LONG_MODULES_ALLOWED, long


def _layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_layers_point_down_only() -> None:
    """cli → service → store / locust → models: nothing below imports what is above it."""
    above = {
        "models": {"cli", "service", "store", "locust", "prometheus"},
        "store": {"cli", "service", "locust", "prometheus"},
        "locust": {"cli", "service", "store", "prometheus"},
        "prometheus": {"cli", "service", "store", "locust"},
        "service": {"cli"},
    }
    wrong = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if _layer(target) in above.get(_layer(name), set())
    )
    assert wrong == []


def test_the_cli_reaches_the_store_and_locust_only_through_the_core() -> None:
    wrong = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if _layer(name) == "cli"
        for target in targets
        if _layer(target) in {"store", "locust", "prometheus"}
    )
    assert wrong == []


@pytest.mark.parametrize(
    ("library", "home"),
    [
        ("pymongo", {"store"}),
        ("requests", {"locust", "prometheus"}),
        ("typer", {"cli"}),
        ("rich", {"cli"}),
    ],
)
def test_each_library_is_imported_by_its_own_layer_only(library: str, home: set[str]) -> None:
    allowed = {f"loadmgr.{layer}" for layer in home}
    if library == "requests":
        allowed.add("loadmgr.webhooks")  # it sends notifications over HTTP, as the client does
    wrong = sorted(
        name
        for name in MODULES
        if library in external_imports_of(name)
        and not any(name == a or name.startswith(a + ".") for a in allowed)
    )
    assert wrong == []
