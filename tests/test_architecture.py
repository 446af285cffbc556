"""The package's structure: no import circles, imports point down the layers, small modules.

The import graph is read from the source with ``ast`` (nothing is imported), and counts
every import: module level, deferred inside functions, and under ``if TYPE_CHECKING``. A
failure names the circle or the upward import it found. The layers are those of
``docs/architecture.md``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "backtest"

# Bottom to top. A module may import its own layer (acyclically) and the layers below.
LAYERS = (
    ("foundation", ("backtest.errors", "backtest.checks", "backtest.atomic",
                    "backtest.version")),
    ("kernels", ("backtest.kernels",)),
    ("instruments", ("backtest.instruments",)),
    ("data", ("backtest.data",)),
    ("calc", ("backtest.calc",)),
    ("presentation", ("backtest.presentation",)),
    ("results", ("backtest.results",)),
    ("simulation", ("backtest.simulation",)),
    ("sweeps", ("backtest.sweeps",)),
    ("risk", ("backtest.risk",)),
    ("cli", ("backtest.cli",)),
    ("public", ("backtest", "backtest.__main__")),
)
MAX_MODULE_LINES = 400
MAX_TOP_LEVEL_MODULES = 8


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """The package modules ``path`` imports anywhere in its body (relative ones resolved)."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # "from a.b import c": the submodule a.b.c when there is one, else a.b itself.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:   # "import a.b.c" of a name inside a.b
                target = target.rpartition(".")[0]
            if target and target.startswith("backtest") and target != name:
                out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    known = set(modules)
    return {name: imported_modules(path, name, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path ``[a, b, ..., a]``, or None (iterative DFS)."""
    state: dict[str, int] = {}          # 1 = on the current path, 2 = done
    for root in sorted(graph):
        if state.get(root):
            continue
        path = [root]
        stack = [iter(sorted(graph.get(root, ())))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def test_the_package_has_no_import_circle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_reintroduced_circle() -> None:
    graph = import_graph()
    # Reintroduce the old engine <-> rolls circle: the single runner importing the rolls.
    graph["backtest.simulation.single"] = graph["backtest.simulation.single"] | {
        "backtest.simulation.rolls"}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert {"backtest.simulation.single", "backtest.simulation.rolls"} <= set(cycle)


def test_deferred_imports_count(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from backtest.sweeps import api\n")
    found = imported_modules(source, "backtest.results.x",
                             {"backtest.sweeps", "backtest.sweeps.api"})
    assert found == {"backtest.sweeps.api"}


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in package_modules() if layer_of(m) < 0]
    assert not unplaced, f"modules outside every layer of LAYERS: {unplaced}"


def test_imports_point_down_the_layers() -> None:
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
              for m, targets in import_graph().items() for t in sorted(targets)
              if layer_of(t) > layer_of(m)]
    assert not upward, "imports pointing up the layers:\n" + "\n".join(upward)


def test_kernels_import_only_numpy_numba_and_kernels() -> None:
    bad = []
    for path in sorted((PACKAGE / "kernels").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                root = name.split(".")[0]
                if root not in ("numpy", "numba", "math", "__future__") and \
                        not name.startswith("backtest.kernels"):
                    bad.append(f"{path.name}: {name}")
    assert not bad, bad


def test_top_level_holds_only_the_layers_and_a_few_foundation_modules() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


@pytest.mark.parametrize("name", sorted(package_modules()))
def test_module_is_small(name: str) -> None:
    lines = len(package_modules()[name].read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{name} has {lines} lines; split it by responsibility"
