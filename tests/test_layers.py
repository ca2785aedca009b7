"""The import graph of ``symgrad/`` follows the layers of DESIGN.md, read from the source with ``ast``.

Layers, bottom to top (a module may import its own layer and the layers below it, never above):

0. ``symgrad.ir``        op table, IR, parser, limits
1. ``symgrad.tape`` and ``symgrad.symbolic``, which never import each other
2. ``symgrad.backends``  engines (their tapes), over ``ir`` and ``tape``
3. ``symgrad.checking``  compare, reports, case files, runner, suites: it drives the backends
4. the shells: ``symgrad`` itself, ``api``, ``cli``, ``pytest_plugin``, ``fuzzing``, ``plot``,
   and the one-line shims (``symgrad.ops``, ``symgrad.cases``, ``symgrad.runner``)

``backends`` sits under ``checking`` because the runner asks a backend for gradients; a backend
never needs a report or a case.  Every import counts for the layers: module level, inside
functions, under ``if TYPE_CHECKING:``, and a string constant that names a symgrad module
(``importlib.import_module("symgrad.ir.ops")``, the lazy tables of ``symgrad/__init__.py``,
a preload list); the bare string ``"symgrad"`` is a backend's name too and is not counted.
Cycles are looked for among the import statements that run: at module level and inside
functions (a cycle "dodged" by importing inside a function is still a cycle), not those under
``TYPE_CHECKING`` nor module names in strings.  An edge goes to the module named, not to its
parent packages, so a package ``__init__`` importing its own submodules is not a cycle.

An import of a symgrad module inside a function hides the import graph, so it fails the tests
unless :data:`LAZY_ALLOWED` names it with its reason.  (Lazy imports of optional or heavy
third-party packages -- torch, matplotlib, hypothesis, scipy.special, ctypes -- are not symgrad
modules and are not counted; the CLI's deferred modules go through ``symgrad._lazy`` by string.)
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "symgrad"

# (prefix, layer, group): the longest matching prefix wins; a module matching none is a shell.
SYMGRAD_LAYERS = (
    ("ir", 0, "ir"),
    ("tape", 1, "tape"),
    ("symbolic", 1, "symbolic"),
    ("backends", 2, "backends"),
    ("checking", 3, "checking"),
)
SHELL = 4

# Known exceptions, each with its reason; an entry that no longer occurs fails the test, so the
# list only shrinks.
ALLOWED: dict[tuple[str, str], str] = {}

# In-function imports of symgrad modules that are meant, each with its reason; as for ALLOWED, an
# entry that no longer occurs fails the test.
_ADAPTERS = ("symgrad_tape", "torch_backend", "autograd_backend", "jax_backend", "tinygrad_backend", "mygrad_backend")
LAZY_ALLOWED: dict[tuple[str, str], str] = {
    **{("symgrad.backends.registry", f"symgrad.backends.{name}"):
       "each built-in backend's factory imports its adapter when the backend is first asked for: the "
       "optional engines' adapters import torch, jax, ... at module level, and `import symgrad` must not"
       for name in _ADAPTERS},
}


@dataclass(frozen=True)
class Import:
    source: str      # importing module
    target: str      # imported module of the package
    line: int
    kind: str        # "module" (runs when ``source`` is imported), "function", "type_checking" or "string"

    @property
    def eager(self) -> bool:
        return self.kind == "module"


@dataclass
class Graph:
    package: str
    modules: dict[str, Path] = field(default_factory=dict)
    imports: list[Import] = field(default_factory=list)


def module_name(package_dir: Path, path: Path) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Collector(ast.NodeVisitor):
    def __init__(self, graph: Graph, source: str, is_package: bool) -> None:
        self.graph, self.source, self.is_package = graph, source, is_package
        self.functions = 0        # > 0 inside a function (or lambda)
        self.type_checking = 0    # > 0 under ``if TYPE_CHECKING:``
        self.found: list[Import] = []

    def _resolve(self, name: str) -> str | None:
        """The package's module ``name`` refers to (itself or its longest existing parent)."""
        while name:
            if name in self.graph.modules:
                return name
            name = name.rpartition(".")[0]
        return None

    def _add(self, name: str, line: int, kind: str | None = None) -> None:
        if name == self.graph.package or name.startswith(self.graph.package + "."):
            target = self._resolve(name)
            if target is not None and target != self.source:
                if kind is None:
                    kind = "type_checking" if self.type_checking else "function" if self.functions else "module"
                self.found.append(Import(self.source, target, line, kind))

    def _base(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = self.source.split(".")
        keep = len(parts) - node.level + (1 if self.is_package else 0)
        base = ".".join(parts[:keep])
        return f"{base}.{node.module}" if node.module else base

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._base(node)
        for alias in node.names:
            full = f"{base}.{alias.name}"
            self._add(full if full in self.graph.modules else base, node.lineno)

    def visit_Constant(self, node: ast.Constant) -> None:
        # a dotted string naming a module of the package: importlib.import_module("..."), lazy tables
        # (the bare package name is left out: it is also a backend's and the distribution's name)
        if isinstance(node.value, str) and "." in node.value and node.value in self.graph.modules:
            self._add(node.value, node.lineno, kind="string")

    def _nested(self, node: ast.AST) -> None:
        self.functions += 1
        self.generic_visit(node)
        self.functions -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _nested

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.type_checking += 1
            for child in node.body:
                self.visit(child)
            self.type_checking -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)


def import_graph(package_dir: Path) -> Graph:
    graph = Graph(package_dir.name)
    for path in sorted(package_dir.rglob("*.py")):
        graph.modules[module_name(package_dir, path)] = path
    for name, path in graph.modules.items():
        collector = _Collector(graph, name, path.name == "__init__.py")
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        graph.imports.extend(collector.found)
    return graph


def layer_of(package: str, module: str, layers: tuple[tuple[str, int, str], ...]) -> tuple[int, str]:
    rest = module[len(package) + 1:] if module != package else ""
    best: tuple[int, int, str] | None = None
    for prefix, layer, group in layers:
        if (rest == prefix or rest.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), layer, group)
    return (best[1], best[2]) if best else (SHELL, "shell")


def layer_violations(graph: Graph, layers: tuple[tuple[str, int, str], ...],
                     allowed: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    problems = []
    for imp in graph.imports:
        if (imp.source, imp.target) in allowed:
            continue
        (src_layer, src_group), (dst_layer, dst_group) = (
            layer_of(graph.package, imp.source, layers), layer_of(graph.package, imp.target, layers))
        where = f"{graph.modules[imp.source].name}:{imp.line}: {imp.source} imports {imp.target}"
        if dst_layer > src_layer:
            problems.append(f"{where} (upward: {src_group} is layer {src_layer}, {dst_group} layer {dst_layer})")
        elif dst_layer == src_layer and src_group != dst_group:
            problems.append(f"{where} ({src_group} and {dst_group} must not import each other)")
    return problems


def lazy_imports(graph: Graph, allowed: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    """Imports of the package's modules inside functions, but for the ``allowed`` (source, target) pairs."""
    return [f"{graph.modules[i.source].name}:{i.line}: {i.source} imports {i.target} inside a function"
            for i in graph.imports if i.kind == "function" and (i.source, i.target) not in allowed]


def cycles(graph: Graph) -> list[list[str]]:
    """Every strongly connected component of more than one module in the graph of import statements
    that run (module level and inside functions)."""
    edges: dict[str, set[str]] = {name: set() for name in graph.modules}
    for imp in graph.imports:
        if imp.kind in ("module", "function"):
            edges[imp.source].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan; the package is small, recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(edges[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in sorted(edges):
        if name not in index:
            visit(name)
    return found


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(PACKAGE)


def test_the_graph_sees_the_package(graph: Graph) -> None:
    # guards the checker itself: it must find the modules and their imports, not an empty graph
    assert {"symgrad.ir.ops", "symgrad.tape.graph", "symgrad.checking.runner", "symgrad.cli"} <= set(graph.modules)
    pairs = {(i.source, i.target) for i in graph.imports}
    assert ("symgrad.checking.runner", "symgrad.backends") in pairs        # from symgrad import backends
    assert ("symgrad.symbolic.engine", "symgrad.ir.ops") in pairs          # from symgrad.ir import ops
    assert ("symgrad", "symgrad.ir.ops") in pairs                          # importlib.import_module("...")
    assert any(not i.eager for i in graph.imports if i.source == "symgrad.cli")  # imports inside functions


def test_no_upward_import_and_tape_symbolic_apart(graph: Graph) -> None:
    problems = layer_violations(graph, SYMGRAD_LAYERS, frozenset(ALLOWED))
    assert not problems, "\n".join(problems)


def test_every_allowed_exception_still_occurs(graph: Graph) -> None:
    pairs = {(i.source, i.target) for i in graph.imports}
    assert set(ALLOWED) <= pairs, set(ALLOWED) - pairs


def test_no_import_cycle(graph: Graph) -> None:
    found = cycles(graph)
    assert not found, "\n".join(" <-> ".join(c) for c in found)


def test_no_symgrad_import_inside_a_function(graph: Graph) -> None:
    problems = lazy_imports(graph, frozenset(LAZY_ALLOWED))
    assert not problems, "\n".join(problems)


def test_every_allowed_lazy_import_still_occurs(graph: Graph) -> None:
    pairs = {(i.source, i.target) for i in graph.imports if i.kind == "function"}
    assert set(LAZY_ALLOWED) <= pairs, set(LAZY_ALLOWED) - pairs


def test_ir_imports_no_sympy_at_module_level() -> None:
    offenders = []
    for path in sorted((PACKAGE / "ir").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only: a function may import sympy lazily
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}:{node.lineno}" for n in names if n.split(".")[0] == "sympy"]
    assert offenders == []


def _modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(proc.stdout.split())


@pytest.mark.slow
def test_cli_import_leaves_sympy_unloaded() -> None:
    loaded = _modules_after("import symgrad.cli")
    assert "symgrad.cli" in loaded
    assert "sympy" not in loaded
    # the twin: the same probe sees sympy once something does load it
    assert "sympy" in _modules_after("import symgrad.cli, symgrad.symbolic")


@pytest.mark.slow
def test_the_fork_server_can_start_before_numpy_is_loaded() -> None:
    # the CLI starts the fork server first, so that the server's imports overlap with its own
    loaded = _modules_after("import symgrad.checking.workers as w\nw.default_jobs()\nw.context(main=True)")
    assert "symgrad.checking.workers" in loaded and "numpy" not in loaded
    assert "numpy" in _modules_after("import symgrad.checking.suite")  # the twin: the pool itself loads it


# --- twins: the checker on a small package of its own finds what it must -----------------------

TOY_LAYERS = (("low", 0, "low"), ("left", 1, "left"), ("right", 1, "right"), ("high", 2, "high"))


def _toy(tmp_path: Path, files: dict[str, str]) -> Graph:
    root = tmp_path / "toy"
    for rel, text in {"__init__.py": "", "low/__init__.py": "", "left/__init__.py": "",
                      "right/__init__.py": "", "high/__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return import_graph(root)


def test_twin_clean_toy_package_passes(tmp_path: Path) -> None:
    graph = _toy(tmp_path, {"low/a.py": "import os\n", "left/b.py": "from toy.low import a\n",
                            "high/c.py": "from ..left import b\nfrom toy.right import *\n"})
    assert layer_violations(graph, TOY_LAYERS) == [] and cycles(graph) == []
    assert ("toy.high.c", "toy.left.b") in {(i.source, i.target) for i in graph.imports}  # relative import


def test_twin_upward_imports_are_reported(tmp_path: Path) -> None:
    graph = _toy(tmp_path, {
        "low/a.py": "def f():\n    from toy.high import c\n",                   # inside a function
        "low/b.py": "import importlib\nimportlib.import_module('toy.left.d')\n",  # by string
        "low/e.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..right import g\n",
        "high/c.py": "", "left/d.py": "from toy.right import g\n", "right/g.py": "",
    })
    problems = layer_violations(graph, TOY_LAYERS)
    assert len(problems) == 4, problems
    assert any("toy.low.a imports toy.high.c (upward" in p for p in problems)
    assert any("toy.low.b imports toy.left.d (upward" in p for p in problems)
    assert any("toy.low.e imports toy.right.g (upward" in p for p in problems)
    assert any("toy.left.d imports toy.right.g (left and right must not import each other)" in p for p in problems)


def test_twin_cycles_are_reported_even_through_a_function(tmp_path: Path) -> None:
    graph = _toy(tmp_path, {
        "low/a.py": "from toy.low import b\n", "low/b.py": "import toy.low.c\n", "low/c.py": "from . import a\n",
        "low/d.py": "import toy.low.e\n", "low/e.py": "def f():\n    import toy.low.d\n",  # dodged: still a cycle
        "low/f.py": "import toy.low.g\n",  # the twin: neither a TYPE_CHECKING import nor a string closes a cycle
        "low/g.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import toy.low.f\nX = 'toy.low.f'\n",
    })
    assert cycles(graph) == [["toy.low.a", "toy.low.b", "toy.low.c"], ["toy.low.d", "toy.low.e"]]


def test_twin_imports_inside_functions_are_reported_unless_allowed(tmp_path: Path) -> None:
    graph = _toy(tmp_path, {
        "low/a.py": "import json\ndef f():\n    import os\n    from toy.low import b\n",  # os is not the package's
        "low/b.py": "def g():\n    h = lambda: __import__('x')\n    from . import c\n",
        "low/c.py": "from toy.low import b\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n",
    })
    found = lazy_imports(graph)
    assert len(found) == 2 and "toy.low.a imports toy.low.b inside a function" in found[0], found
    assert "toy.low.b imports toy.low.c inside a function" in found[1]
    assert lazy_imports(graph, frozenset({("toy.low.a", "toy.low.b"), ("toy.low.b", "toy.low.c")})) == []
