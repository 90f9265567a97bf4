"""Imports point one way (DESIGN.md): cli → lab, ingest, analysis, report; lab → ingest;
ingest and analysis → store; report → analysis. Checked on the source, not by importing it.

Every module under perflab/ is parsed with ``ast``; every import statement counts, at module
level or inside a function, except those under ``if TYPE_CHECKING:`` (they never run).
An edge goes to the module an import names: ``import a.b`` → a.b; ``from a.b import c``
→ a.b.c when that is a module, else a.b. A submodule is not an edge to its parent package
(Python runs the parent's ``__init__`` first, but that is not a dependency the code chose).
``importlib.import_module`` calls are not seen: perflab.__init__'s lazy attributes use
them on purpose, and nothing else should.

A layering rule holds for what a module reaches through other perflab modules too: the
store importing perflab.vocab which imported perflab.ingest would break "the store knows
no formats" as surely as a direct import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "perflab"
MAX_LINES = 600


# -- the graph -------------------------------------------------------------------------------

def module_names(root: Path) -> dict[str, Path]:
    """Dotted name → file, for every .py under ``root`` (a package directory)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except the body of an ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)  # the `else:` of TYPE_CHECKING does run
            continue
        stack.extend(ast.iter_child_nodes(node))


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that the file of module ``name`` imports."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name
                # `import a.b.c` binds a and runs a, a.b, a.b.c; the one named is the dependency.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target:
                    found.add(target)
            continue
        if node.level:  # relative: from . / .. / .x import y
            base = name.split(".") if is_package else name.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        for alias in node.names:
            candidate = f"{origin}.{alias.name}"
            if candidate in modules:
                found.add(candidate)
            elif origin in modules:
                found.add(origin)
    found.discard(name)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    files = module_names(root)
    names = set(files)
    return {name: imported_modules(name, path, names) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first, deterministic order)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(graph: dict[str, set[str]], layer: str, forbidden: tuple[str, ...]) -> list[str]:
    """'a → b → c', shortest, for each module of ``layer`` that reaches a ``forbidden`` module
    directly or through modules outside both (a path through another module of the layer is
    that module's own violation, reported once, from there)."""
    out = []
    for module in sorted(m for m in graph if _within(m, layer)):
        chains = {module: [module]}
        frontier = [module]
        while frontier:
            nxt = []
            for node in frontier:
                for target in sorted(graph.get(node, ())):
                    if target in chains or _within(target, layer):
                        continue
                    chains[target] = chains[node] + [target]
                    if any(_within(target, f) for f in forbidden):
                        out.append(" → ".join(chains[target]))
                    else:
                        nxt.append(target)
            frontier = nxt
    return out


# -- the rules on perflab ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(PACKAGE_DIR)


def test_the_graph_sees_every_module(graph: dict[str, set[str]]) -> None:
    assert {"perflab", "perflab.store", "perflab.cli", "perflab.ingest", "perflab.ingest.k6"} <= set(graph)
    assert "perflab.ingest.k6" in graph["perflab.ingest"]  # imported for its register() call


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


@pytest.mark.parametrize(("layer", "forbidden"), [
    # The store knows tables, not formats, verdicts, pictures, the lab or the CLI.
    ("perflab.store", ("perflab.ingest", "perflab.analysis", "perflab.report", "perflab.lab",
                       "perflab.commands", "perflab.cli", "perflab.api")),
    # A diagnosis works as well on files a user brings: analysis never imports the lab or a reader.
    ("perflab.analysis", ("perflab.ingest", "perflab.lab", "perflab.report", "perflab.commands",
                          "perflab.cli", "perflab.api")),
    # Formats know no verdicts or pictures.
    ("perflab.ingest", ("perflab.analysis", "perflab.report", "perflab.lab", "perflab.commands",
                        "perflab.cli", "perflab.api")),
    # The report layer renders analyses; it reads no files and runs nothing.
    ("perflab.report", ("perflab.ingest", "perflab.lab", "perflab.commands", "perflab.cli", "perflab.api")),
])
def test_imports_point_one_way(graph: dict[str, set[str]], layer: str, forbidden: tuple[str, ...]) -> None:
    found = violations(graph, layer, forbidden)
    assert not found, f"{layer} must not import {', '.join(forbidden)}:\n  " + "\n  ".join(found)


def test_no_module_is_over_600_lines() -> None:
    long = {str(p.relative_to(PACKAGE_DIR.parent)): n for p in sorted(PACKAGE_DIR.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by concern): {long}"


# -- the checker itself, on a package made for it ---------------------------------------------------

def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_checker_sees_function_level_relative_and_from_imports(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "def f():\n    from pkg import b\n",
        "pkg/b.py": "from . import c\nfrom .sub import d\n",
        "pkg/c.py": "import pkg.sub.d as dd\n",
        "pkg/sub/__init__.py": "from ..c import x\n",
        "pkg/sub/d.py": "from pkg.sub import thing\n",
    })
    assert import_graph(root) == {
        "pkg": set(),
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.c", "pkg.sub.d"},
        "pkg.c": {"pkg.sub.d"},
        "pkg.sub": {"pkg.c"},
        "pkg.sub.d": {"pkg.sub"},
    }


def test_checker_skips_type_checking_blocks_but_not_their_else(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": ("import typing\nfrom typing import TYPE_CHECKING\n"
                     "if TYPE_CHECKING:\n    from pkg import b\nelse:\n    from pkg import c\n"
                     "if typing.TYPE_CHECKING:\n    import pkg.d\n"),
        "pkg/b.py": "", "pkg/c.py": "", "pkg/d.py": "",
    })
    assert import_graph(root)["pkg.a"] == {"pkg.c"}


def test_checker_reports_a_cycle_and_a_chain_through_another_module(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/store.py": "from pkg import vocab\n",
        "pkg/vocab.py": "def late():\n    import pkg.ingest.k6\n",
        "pkg/ingest/__init__.py": "",
        "pkg/ingest/k6.py": "from pkg.store import Store\n",
    })
    graph = import_graph(root)
    assert find_cycle(graph) == ["pkg.ingest.k6", "pkg.store", "pkg.vocab", "pkg.ingest.k6"]
    assert violations(graph, "pkg.store", ("pkg.ingest",)) == ["pkg.store → pkg.vocab → pkg.ingest.k6"]
    # A layer's own modules are each checked; a path through one is reported from there.
    layered = {"pkg.lay": set(), "pkg.lay.a": {"pkg.lay.b"}, "pkg.lay.b": {"pkg.bad"}, "pkg.bad": set()}
    assert violations(layered, "pkg.lay", ("pkg.bad",)) == ["pkg.lay.b → pkg.bad"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
