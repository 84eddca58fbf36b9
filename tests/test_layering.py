"""The house's floors: which package may import which, and no import circles.

listformat is the ground floor (the list formats every package shares), zoned stands on
it alone, the publisher and the client on both; read from the source with ``ast``, so
an import inside a function counts as much as one at the top of a module.  The rule
(README "Packages", docs/architecture.md):

- listformat imports no package of the house;
- zoned imports neither client nor publisher;
- client does not import publisher.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("listformat", "zoned", "publisher", "client", "twisted/plugins")

FORBIDDEN: Mapping[str, frozenset[str]] = {
    "listformat": frozenset({"zoned", "publisher", "client", "twisted"}),
    "zoned": frozenset({"client", "publisher"}),
    "client": frozenset({"publisher"}),
}

# The house has no import circles: none among the modules that run, and none that
# typing-only imports (under ``if TYPE_CHECKING:``) would close.  A new one fails the test.
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()
KNOWN_TYPING_CYCLES: frozenset[frozenset[str]] = frozenset()


@dataclass(frozen=True)
class Import:
    """One import statement's house module, where it stands, and whether it is typing-only."""

    importer: str
    line: int
    target: str
    typing_only: bool


def module_name(path: Path, root: Path) -> str:
    """``zoned/config.py`` -> ``zoned.config``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def house_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Every module of the house's packages under ``root``, by dotted name."""
    return {
        module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
    }


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.AST, typing_only: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node under ``tree``, with whether it sits in an ``if TYPE_CHECKING:`` body."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for node in child.body:
                yield node, True
                yield from _statements(node, True)
            for node in child.orelse:
                yield node, typing_only
                yield from _statements(node, typing_only)
            continue
        yield child, typing_only
        yield from _statements(child, typing_only)


def _resolve(name: str, modules: Set[str]) -> str | None:
    """The house module ``name`` loads: itself, or the nearest enclosing module."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: Set[str]) -> list[Import]:
    """The house modules ``module`` imports, at any depth of its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []
    for node, typing_only in _statements(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import mod`` loads pkg.mod; ``from mod import name`` loads mod.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                found.append(Import(module, node.lineno, target, typing_only))
    return found


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, list[Import]]:
    modules = house_modules(root, packages)
    return {name: imports_of(name, path, modules.keys()) for name, path in modules.items()}


def cycles(edges: Mapping[str, Set[str]]) -> frozenset[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return frozenset(found)


def edges_of(graph: Mapping[str, list[Import]], *, typing: bool) -> dict[str, set[str]]:
    """Who imports whom; ``typing=False`` leaves out the ``if TYPE_CHECKING:`` imports."""
    return {
        name: {imp.target for imp in found if typing or not imp.typing_only}
        for name, found in graph.items()
    }


@pytest.fixture(scope="module")
def graph() -> dict[str, list[Import]]:
    return import_graph(REPO)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_only_the_floors_below_it(
    graph: dict[str, list[Import]], package: str
) -> None:
    broken = [
        f"{imp.importer}:{imp.line} imports {imp.target}"
        for name, found in graph.items()
        if name.split(".")[0] == package
        for imp in found
        if imp.target.split(".")[0] in FORBIDDEN[package]
    ]
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize(("typing", "known"), [(False, KNOWN_CYCLES), (True, KNOWN_TYPING_CYCLES)])
def test_the_import_circles_are_the_known_ones(
    graph: dict[str, list[Import]], typing: bool, known: frozenset[frozenset[str]]
) -> None:
    found = cycles(edges_of(graph, typing=typing))
    new = sorted(sorted(c) for c in found - known)
    gone = sorted(sorted(c) for c in known - found)
    assert not new, f"new import circles: {new}"
    assert not gone, f"circles no longer there (take them out of the known ones): {gone}"


def test_the_graph_holds_every_package_and_its_modules(graph: dict[str, list[Import]]) -> None:
    """The checks above see the whole house: a wrong root would pass them vacuously."""
    assert {"listformat.names", "zoned.store", "publisher.sync", "client.plan"} <= graph.keys()
    assert "twisted.plugins.zoned_plugin" in graph
    assert any(imp.target == "listformat.hashing" for imp in graph["listformat.names"])


def test_the_checker_sees_function_imports_relative_ones_and_skips_typing_only(
    tmp_path: Path,
) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from pkg import c\n"
        "def f() -> None:\n"
        "    from pkg.b import thing\n"
    )
    (pkg / "b.py").write_text("from . import a\nthing = 1\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    found = import_graph(tmp_path, ("pkg",))
    assert {(i.target, i.typing_only) for i in found["pkg.a"]} == {
        ("pkg.c", True), ("pkg.b", False),
    }
    assert [i.target for i in found["pkg.b"]] == ["pkg.a"]
    # a -> b -> a is a circle; c -> a -> c only through a typing-only import is not.
    assert cycles(edges_of(found, typing=False)) == {frozenset({"pkg.a", "pkg.b"})}
    assert cycles(edges_of(found, typing=True)) == {frozenset({"pkg.a", "pkg.b", "pkg.c"})}


def test_cycles_finds_each_strongly_connected_component() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert cycles(edges) == {frozenset("abc"), frozenset("de")}
    assert cycles({"a": {"b"}, "b": set()}) == frozenset()
