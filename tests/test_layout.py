"""bookgen's modules form layers: no import circle, and no import hidden inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "bookgen"
# ``bookgen`` answers --help and typos without importing what its subcommands use (Snakemake's
# CLI alone takes 0.7 s): its subcommands import their modules themselves. No circle involved.
LAZY = {"bookgen.cli"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports(tree: ast.Module, modules: set[str]) -> tuple[set[str], set[str]]:
    """The bookgen modules a module imports when it runs: at its top level, and inside its
    functions (``if TYPE_CHECKING:`` blocks do not run)."""
    top: set[str] = set()
    inner: set[str] = set()

    def named(node: ast.Import | ast.ImportFrom) -> set[str]:
        if isinstance(node, ast.Import):
            return {a.name for a in node.names if a.name in modules}
        base = node.module or ""
        found = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules}
        return found or ({base} if base in modules else set())

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and is_type_checking(child):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                (inner if in_function else top).update(named(child))
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(tree, False)
    return top, inner


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    runtime: dict[str, set[str]] = {}
    hidden: dict[str, set[str]] = {}
    for name, path in files.items():
        top, inner = imports(ast.parse(path.read_text()), set(files))
        runtime[name] = (top | inner) - {name}
        hidden[name] = inner
    return runtime, hidden


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, each as the path round it (one per strongly connected group)."""
    found, state = [], dict.fromkeys(edges, 0)  # 0 new, 1 on the path, 2 done

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, set())):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif state.get(nxt) == 0:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if state[node] == 0:
            walk(node, [node])
    return found


def test_the_modules_import_one_another_without_a_circle() -> None:
    runtime, _ = graph()
    assert len(runtime) > 40
    assert cycles(runtime) == []


def test_no_module_hides_an_import_of_bookgen_inside_a_function() -> None:
    _, hidden = graph()
    assert {name: sorted(mods) for name, mods in hidden.items() if mods and name not in LAZY} == {}


def test_a_circle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from x import y\n"
        "def f():\n    from x import z\n"
    )
    assert imports(tree, {"x.y", "x.z", "x"}) == (set(), {"x.z"})
