"""The import graph of genrecraft's packages: no circle, no import up the layers (README, "Architecture").

Every ``import`` statement is read, including those inside functions, so a circle cannot hide behind a deferred
import. Layers, lowest first (a module may import its own layer or any layer below):

0. ``genrecraft.core``: compat, paths, atomic writes, audio I/O and manifests, names, errors;
1. ``lora``, ``dataset_builder`` (and its labellers), ``genrecraft.synth`` (the demo's corpus);
2. ``genrecraft.builders``, ``hf``, ``models``, ``codec``, ``export``: building, naming, loading and exporting models;
3. ``eval``, training (``genrecraft.solvers``, ``train``, ``experiments``, ``curves``), ``scripts.listening``;
4. applications: ``genrecraft.cli`` and every command (``__main__`` modules, ``demo``, ``report``, ``generate``,
   ``app``, ``standin_hub``, ``scripts.*``).
"""

from __future__ import annotations

import ast
import typing as tp
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("genrecraft", "lora", "dataset_builder", "eval", "scripts")

LAYER_RULES: tp.Tuple[tp.Tuple[str, int], ...] = (
    # (module name or prefix ending in ".", layer); the first match wins, so specific names come first.
    ("genrecraft.core.", 0), ("genrecraft", 0),
    ("genrecraft.synth", 1),
    ("genrecraft.builders", 2), ("genrecraft.hf", 2), ("genrecraft.models", 2), ("genrecraft.spectral_codec", 2),
    ("genrecraft.export", 2),
    ("genrecraft.solvers", 3), ("genrecraft.train", 3), ("genrecraft.experiments", 3), ("genrecraft.curves", 3),
    ("scripts.listening.", 3), ("scripts.listening", 3),
    ("genrecraft.", 4), ("scripts.", 4), ("scripts", 4),
    ("lora", 1), ("lora.", 1), ("dataset_builder", 1), ("dataset_builder.", 1),
    ("eval", 3), ("eval.", 3),
)


def module_files() -> tp.Dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def layer(module: str) -> int:
    if module.endswith(".__main__"):
        return 4
    for rule, value in LAYER_RULES:
        if module == rule or (rule.endswith(".") and module.startswith(rule)):
            return value
    raise AssertionError(f"{module} has no layer: add it to LAYER_RULES and to the README's architecture section")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str, path: Path, modules: tp.Mapping[str, Path]) -> tp.Dict[str, int]:
    """Our modules that ``module`` imports, each with the line of its first import."""
    is_package = path.name == "__init__.py"
    found: tp.Dict[str, int] = {}

    def add(name: str, line: int) -> None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.setdefault(name, line)

    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node.test)
                   for stmt in node.body for inner in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue  # ``if TYPE_CHECKING:`` imports never run
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                add(candidate if candidate in modules else target, node.lineno)
    return found


@pytest.fixture(scope="module")
def graph() -> tp.Dict[str, tp.Dict[str, int]]:
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_every_module_has_a_layer(graph):
    for module in graph:
        layer(module)


def test_no_import_runs_up_the_layers(graph):
    upward = [f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)}) at line {line}"
              for module, targets in graph.items() for target, line in targets.items()
              if layer(target) > layer(module)]
    assert not upward, "imports up the layers:\n" + "\n".join(upward)


def test_no_import_circle(graph):
    """Tarjan's strongly connected components over every import, deferred ones included."""
    index: tp.Dict[str, int] = {}
    low: tp.Dict[str, int] = {}
    stack: tp.List[str] = []
    on_stack: tp.Set[str] = set()
    circles: tp.List[tp.List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_the_checker_sees_deferred_and_relative_imports(tmp_path):
    """The graph reader itself: an import inside a function and a relative one are edges; a typing-only one is not."""
    modules = {"lora.a": tmp_path / "a.py", "lora.b": tmp_path / "b.py", "genrecraft.models": tmp_path / "m.py",
               "eval.report": tmp_path / "r.py"}
    modules["lora.a"].write_text("import typing as tp\nif tp.TYPE_CHECKING:\n    from eval import report\n"
                                 "def f():\n    from genrecraft.models import load_model\n    from . import b\n")
    assert imports_of("lora.a", modules["lora.a"], modules) == {"genrecraft.models": 5, "lora.b": 6}
    assert layer("genrecraft.models") > layer("lora.a")
