"""The layout of engine/sindy: small modules, no import cycle, no private name shared.

Every import counts, the deferred ones inside functions too (``ast.walk`` over each module):
a function-level import hides a cycle from Python but not from the reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers.process import ROOT

PACKAGE = "engine.sindy"
SINDY = ROOT / "engine" / "sindy"
MAX_LINES = 450


def _module_name(path: Path) -> str:
    return PACKAGE if path.stem == "__init__" else f"{PACKAGE}.{path.stem}"


def _imports(name: str, source: str) -> list[tuple[str, list[str]]]:
    """``(imported module, names taken from it)`` for every import in ``source``, nested ones too."""
    pkg = PACKAGE if name == PACKAGE else name.rsplit(".", 1)[0]
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.append((mod, [a.name for a in node.names]))
    return out


def _graph(sources: dict[str, str]) -> tuple[dict[str, set[str]], list[str]]:
    """Import edges between the given modules, and the private names one takes from another."""
    edges: dict[str, set[str]] = {m: set() for m in sources}
    private: list[str] = []
    for name, src in sources.items():
        for mod, names in _imports(name, src):
            for n in names:  # `from . import model` names a module, `from .model import x` a name
                if f"{mod}.{n}" in sources:
                    edges[name].add(f"{mod}.{n}")
                elif mod in sources and n.startswith("_") and not n.startswith("__") and mod != name:
                    private.append(f"{name} imports {n} from {mod}")
            if mod in sources and mod != name and not (mod == PACKAGE and all(f"{mod}.{n}" in sources for n in names)):
                edges[name].add(mod)
    return edges, private


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges[v]:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _sources() -> dict[str, str]:
    return {_module_name(p): p.read_text() for p in sorted(SINDY.glob("*.py"))}


def test_the_checker_sees_a_deferred_cycle_and_a_private_import():
    fake = {
        PACKAGE: "",
        f"{PACKAGE}.a": "from .b import f\n",
        f"{PACKAGE}.b": "def g():\n    from .a import _helper\n",
        f"{PACKAGE}.c": "from engine.sindy import a\n",
    }
    edges, private = _graph(fake)
    assert _cycles(edges) == [[f"{PACKAGE}.a", f"{PACKAGE}.b"]]
    assert private == [f"{PACKAGE}.b imports _helper from {PACKAGE}.a"]
    assert edges[f"{PACKAGE}.c"] == {f"{PACKAGE}.a"}


def test_no_import_cycle_inside_engine_sindy():
    edges, _ = _graph(_sources())
    assert f"{PACKAGE}.sweep" in edges[f"{PACKAGE}.bagging"] or f"{PACKAGE}.model" in edges[f"{PACKAGE}.bagging"]
    assert _cycles(edges) == []


def test_no_module_takes_a_private_name_from_another():
    _, private = _graph(_sources())
    assert private == []


def test_modules_are_small():
    sizes = {p.name: len(p.read_text().splitlines()) for p in SINDY.glob("*.py")}
    assert len(sizes) > 10
    assert {n: s for n, s in sizes.items() if s > MAX_LINES} == {}


def test_no_module_shadows_a_name_the_package_exports():
    # `engine.sindy.stlsq` was both a module and the function: after `import engine.sindy.stlsq`
    # anywhere, `from engine.sindy import stlsq` gave the module
    import engine.sindy as sindy

    modules = {p.stem for p in SINDY.glob("*.py")}
    assert modules & set(sindy.__all__) == set()
    for name in ("stlsq", "simulate", "ensemble"):
        assert callable(getattr(sindy, name)) and not isinstance(getattr(sindy, name), type(sindy))
