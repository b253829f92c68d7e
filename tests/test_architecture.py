"""The house's floor plan, checked: every import arrow of fer_edge points down a floor (or stays on
its floor without a circle). Imports inside functions count: a lazy arrow up is still an arrow up.

Floors, bottom to top (one table, FLOORS; a new module must be placed on a floor or this test fails):
  0 core     errors, version, labels, preprocess, spec, metadata, formats, data, outputs, ...
  1 runtime  fer_edge.runtime.* (detect, track, backends, recognizer, ...) and the package facade
  2 training fer_edge.training.* (Keras models, the Keras/TF backends, train)
  3 export   fer_edge.export.*
  4 apps     bench, explain, evaluate, demo, detect_bench: they use every floor below
  5 cli      fer_edge.cli.*, __main__
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fer_edge

ROOT = Path(fer_edge.__file__).parent

#: (module prefix, floor); the longest matching prefix wins
FLOORS: tuple[tuple[str, int], ...] = (
    ("fer_edge.errors", 0), ("fer_edge.version", 0), ("fer_edge.labels", 0), ("fer_edge.preprocess", 0),
    ("fer_edge.spec", 0), ("fer_edge.metadata", 0), ("fer_edge.formats", 0), ("fer_edge.data", 0),
    ("fer_edge.outputs", 0), ("fer_edge.signals", 0), ("fer_edge.sysinfo", 0), ("fer_edge.timing", 0),
    ("fer_edge.defaults", 0), ("fer_edge._optional", 0), ("fer_edge.keras_backends", 0), ("fer_edge.metrics", 0),
    ("fer_edge.rundir", 0), ("fer_edge.runstatus", 0), ("fer_edge.machine", 0), ("fer_edge.status", 0),
    ("fer_edge.runtime", 1), ("fer_edge", 1),  # the package root re-exports EmotionRecognizer
    ("fer_edge.training", 2),
    ("fer_edge.export", 3),
    ("fer_edge.bench", 4), ("fer_edge.explain", 4), ("fer_edge.evaluate", 4), ("fer_edge.demo", 4),
    ("fer_edge.detect_bench", 4),
    ("fer_edge.cli", 5), ("fer_edge.__main__", 5),
)

#: circles allowed: the model registry imports its model modules lazily to fill itself, and each model
#: module registers itself on import (timm's register_model pattern)
ALLOWED_CYCLES = ({"fer_edge.training.registry", "fer_edge.training.models"},)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor(module: str) -> int:
    best = max((p for p, _ in FLOORS if module == p or module.startswith(p + ".")), key=len, default=None)
    if best is None:
        raise AssertionError(f"{module} is on no floor: add it to FLOORS in {__file__}")
    return dict(FLOORS)[best]


def import_graph() -> dict[str, set[str]]:
    """module -> the fer_edge modules it imports (module level and inside functions)."""
    graph: dict[str, set[str]] = {}
    for f in ROOT.rglob("*.py"):
        name = module_name(f)
        pkg = name if f.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.split(".")[0] == "fer_edge"}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                if mod.split(".")[0] != "fer_edge":
                    continue
                for a in node.names:  # `from fer_edge.cli import bench` imports the submodule
                    sub = f"{mod}.{a.name}"
                    targets.add(sub if (ROOT.parent / sub.replace(".", "/")).with_suffix(".py").is_file()
                                or (ROOT.parent / sub.replace(".", "/")).is_dir() else mod)
        graph[name] = targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _allowed(comp: set[str]) -> bool:
    return any(all(any(m == p or m.startswith(p + ".") for p in allowed) for m in comp) for allowed in ALLOWED_CYCLES)


def test_every_arrow_points_down():
    graph = import_graph()
    up = [f"{a} (floor {floor(a)}) -> {b} (floor {floor(b)})"
          for a, targets in sorted(graph.items()) for b in sorted(targets) if floor(b) > floor(a)]
    assert not up, "imports that run back up:\n" + "\n".join(up)


def test_no_import_circles_outside_the_registry():
    bad = [sorted(c) for c in cycles(import_graph()) if not _allowed(c)]
    assert not bad, f"import circles: {bad}"


def test_the_checks_can_fail():
    """The graph tools see a planted arrow up and a planted circle."""
    g = {"fer_edge.runtime.x": {"fer_edge.training.y"}, "fer_edge.training.y": {"fer_edge.runtime.x"}}
    assert floor("fer_edge.training.y") > floor("fer_edge.runtime.x")
    assert cycles(g) == [{"fer_edge.runtime.x", "fer_edge.training.y"}]
    assert not _allowed(cycles(g)[0])
    assert _allowed({"fer_edge.training.registry", "fer_edge.training.models.edge"})
    with pytest.raises(AssertionError, match="on no floor"):
        floor("elsewhere.module")
