"""Backends: the interface, the torch and HIPS autograd adapters, selection and registration."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from perturbed import PerturbAll  # noqa: F401  (importing it registers api-wrong-all)

import symgrad
from symgrad import backends, ops
from symgrad.backends import registry
from symgrad.backends.base import Backend, BackendUnavailable, TapeBackend, Unsupported, gradients_by_tape
from symgrad.backends.symgrad_tape import SymgradBackend
from symgrad.checking.cases import collect
from symgrad.cli import main
from symgrad.ir.parse import parse

ROOT = Path(__file__).resolve().parent.parent
# every valid case of cases/ (an invalid file is the case-file tests' business, not a reason to
# lose every backend test at collection)
CASES = collect([ROOT / "cases"])[0]
TUTORIAL = symgrad.load_cases(ROOT / "cases" / "tutorial.yaml")[0]
ENGINES = {"torch": "torch", "autograd": "autograd", "jax": "jax", "tinygrad": "tinygrad", "mygrad": "mygrad"}


def engine(name: str) -> str:
    """Skip unless the backend's package is installed."""
    if name in ENGINES:
        pytest.importorskip(ENGINES[name])
    return name


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test do not leak into the others."""
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))
    monkeypatch.setattr(registry, "_INSTANCES", dict(registry._INSTANCES))


# ---------------------------------------------------------------- the interface


def test_symgrad_backend_is_the_default_and_a_tape_backend() -> None:
    b = backends.get("symgrad")
    assert isinstance(b, TapeBackend) and b.name == "symgrad"
    assert backends.get(b) is b
    report = symgrad.check("3*a**3 - b**2", a=[2.0, 3.0], b=[6.0, 4.0])
    assert report.backend == "symgrad" and report


def test_gradients_returns_numpy_value_and_grads_per_sequence() -> None:
    expr = parse("a * b * sin(a)", ["a", "b"])
    inputs = {"a": np.array([0.5, 1.5]), "b": np.array([2.0, -1.0])}
    value, grads = gradients_by_tape(SymgradBackend(), expr, inputs, ["a", "b"], 2, np.ones(2))
    a, b = inputs["a"], inputs["b"]
    np.testing.assert_allclose(value, a * b * np.sin(a))
    assert set(grads) == {("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")}
    np.testing.assert_allclose(grads[("a", "b")], np.sin(a) + a * np.cos(a))
    assert grads[("b", "b")] is None or np.all(grads[("b", "b")] == 0)


@pytest.mark.parametrize("name", ["symgrad", "torch", "autograd", "jax", "tinygrad", "mygrad"])
@pytest.mark.slow
def test_backend_hands_back_numpy_in_the_input_dtype(name: str) -> None:
    b = backends.get(engine(name))
    expr = parse("x * y", ["x", "y"])
    inputs = {"x": np.array([1.0, 2.0], dtype=np.float32), "y": np.array([3.0, 4.0], dtype=np.float32)}
    value, grads = b.gradients(expr, inputs, ["x"], 1, np.array([1.0, 0.5], dtype=np.float32))
    assert isinstance(value, np.ndarray) and value.dtype == np.float32
    assert grads[("x",)].dtype == np.float32
    np.testing.assert_allclose(grads[("x",)], [3.0, 2.0])
    assert set(grads) == {("x",)}  # y is a constant


@pytest.mark.parametrize("name", ["torch", "autograd"])
def test_every_op_of_the_table_is_mapped(name: str) -> None:
    b = backends.get(engine(name))
    missing = {op.name for op in ops.public_ops() if op not in b.ops and op.composite is None}
    assert not missing


# ---------------------------------------------------------------- every case file, every backend


@pytest.mark.parametrize("backend", ["symgrad", "torch", "autograd", "jax", "tinygrad", "mygrad"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.slow
def test_case_files_pass_on_every_backend(case: Any, backend: str) -> None:
    report = symgrad.run_case(case, backend=engine(backend))
    assert report.backend == backend
    assert report.status in ("pass", "skip", "xfail"), report.table()
    if report.status == "skip":
        assert report.reason
    if backend == "symgrad":  # the twin: on a tape whose every gradient is off, the same case fails
        assert not symgrad.run_case(case, backend="api-wrong-all")


# ---------------------------------------------------------------- op by op, against sympy

POS = {"uniform": [0.2, 0.9], "shape": [5]}
WIDE = {"uniform": [-2.0, 2.0], "shape": [5]}
BIG = {"uniform": [1.2, 3.0], "shape": [5]}
MAT = {"normal": [0.0, 1.0], "shape": [3, 4]}
OPS = [
    ("exp(x)", dict(x=WIDE)), ("expm1(x)", dict(x=WIDE)), ("log(x)", dict(x=POS)),
    ("log2(x)", dict(x=POS)), ("log10(x)", dict(x=POS)), ("log1p(x)", dict(x=POS)),
    ("sqrt(x)", dict(x=POS)), ("abs(x)", dict(x=[-1.0, 0.0, 2.0])), ("sin(x)", dict(x=WIDE)),
    ("cos(x)", dict(x=WIDE)), ("tan(x)", dict(x=POS)), ("asin(x)", dict(x=POS)),
    ("acos(x)", dict(x=POS)), ("atan(x)", dict(x=WIDE)), ("sinh(x)", dict(x=WIDE)),
    ("cosh(x)", dict(x=WIDE)), ("tanh(x)", dict(x=WIDE)), ("asinh(x)", dict(x=WIDE)),
    ("acosh(x)", dict(x=BIG)), ("atanh(x)", dict(x=POS)), ("sigmoid(x)", dict(x=WIDE)),
    ("relu(x)", dict(x=[-1.0, 0.0, 2.0])), ("softplus(x)", dict(x=[-30.0, -1.0, 0.0, 2.0, 25.0])),
    ("erf(x)", dict(x=WIDE)), ("x**y", dict(x=POS, y=WIDE)), ("x**0", dict(x=[0.0, 1.0, -2.0])),
    ("2**x + x**-0.5 - 3/x", dict(x=POS)), ("sqrt(x)", dict(x=[0.0, 1.0])),
    ("atan2(x, y)", dict(x=WIDE, y=BIG)), ("hypot(x, y)", dict(x=WIDE, y=BIG)),
    ("maximum(x, y)", dict(x=[1.0, 2.0, 3.0], y=[3.0, 2.0, 1.0])),
    ("minimum(x, y)", dict(x=[1.0, 2.0, 3.0], y=[3.0, 2.0, 1.0])),
    ("logaddexp(x, y)", dict(x=WIDE, y=WIDE)), ("x * detach(x)", dict(x=WIDE)),
    ("sum(x*x, axis=0)", dict(x=MAT)), ("sum(x, axis=(0, 1))", dict(x=MAT)),
    ("mean(x**3, axis=1)", dict(x=MAT)), ("prod(x, axis=0)", dict(x=MAT)), ("prod(x)", dict(x=MAT)),
    ("max(x, axis=1)", dict(x=MAT)), ("min(x)", dict(x=MAT)),
    ("logsumexp(x, axis=0)", dict(x=MAT)), ("logsumexp(x)", dict(x=MAT)),
    ("sum(tanh(A @ B))", dict(A=MAT, B={"normal": [0.0, 1.0], "shape": [4, 2]})),
    ("a @ b", dict(a=[1.0, 2.0], b=[3.0, 4.0])),
    ("sum(transpose(A) * B)", dict(A=MAT, B={"normal": [0.0, 1.0], "shape": [4, 3]})),
]


@pytest.mark.parametrize("backend", ["symgrad", "torch", "autograd"])
@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("expr,inputs", OPS, ids=[e for e, _ in OPS])
def test_op_matches_sympy(backend: str, order: int, expr: str, inputs: dict) -> None:
    report = symgrad.check(expr, backend=engine(backend), order=order, inputs=inputs)
    assert report.status == "pass", report.table()


@pytest.mark.parametrize("backend", ["torch", "autograd"])
def test_float32_cases(backend: str) -> None:
    for expr, inputs in OPS[:24]:
        report = symgrad.check(expr, backend=engine(backend), dtype="float32", inputs=inputs)
        assert report.status == "pass", report.table()


@pytest.mark.parametrize("backend", ["symgrad", "torch", "autograd"])
def test_reduction_ties_split_evenly(backend: str) -> None:
    # torch.amax / autograd's max split the gradient among ties; torch.max(x, dim) would not
    report = symgrad.check("max(x) + sum(min(x, axis=0))", backend=engine(backend),
                           x=[[3.0, 1.0], [3.0, 1.0]], expect={"x": [[0.5 + 0.5, 0.5], [0.5 + 0.5, 0.5]]})
    assert report.status == "pass", report.table()


@pytest.mark.parametrize("backend", ["symgrad", "torch", "autograd"])
def test_transpose_of_a_scalar(backend: str) -> None:
    # numpy's transpose of a 0-d array is the array; torch's permute() needs the (empty) dims
    report = symgrad.check("transpose(x)*3", backend=engine(backend), x=2.0, expect={"x": 3.0})
    assert report.status == "pass", report.table()
    wrong = symgrad.check("transpose(x)*3", backend=engine(backend), x=2.0, expect={"x": 2.0})
    assert wrong.status == "fail"


def test_torch_second_derivative_of_pow_at_zero_base_is_nan() -> None:
    """A real torch behaviour symgrad reports: d2/dy2 x**y at x = 0 is nan (the where() trap); sympy says 0."""
    pytest.importorskip("torch")
    report = symgrad.check("x**y", backend="torch", order=2, x=[0.0, 0.0], y=[1.0, 2.5])
    assert report.status == "fail"
    bad = {c.name for c in report.comparisons if not c.passed}
    assert bad == {"y,x", "y,y"}
    assert symgrad.check("x**y", backend="autograd" if _has("autograd") else "symgrad", order=2,
                         x=[0.0, 0.0], y=[1.0, 2.5]).status == "pass"


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------- unsupported ops skip, never fail


class NoErf(SymgradBackend):
    """An engine without erf."""

    name = "no-erf"

    def apply(self, op: Any, args: list, params: dict) -> Any:
        if op.name == "erf":
            raise Unsupported(f"op {op.name!r}")
        return super().apply(op, args, params)


def test_unsupported_op_skips_with_the_reason() -> None:
    report = symgrad.check("erf(x) + x", backend=NoErf(), x=[0.5, 1.0])
    assert report.status == "skip"
    assert report.reason == "backend 'no-erf' lacks op 'erf'"
    assert symgrad.check("sin(x)", backend=NoErf(), x=[0.5]).status == "pass"


def test_autograd_without_an_op_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    b = backends.get(engine("autograd"))
    monkeypatch.delitem(b.ops, ops.erf)
    report = symgrad.check("erf(x)", backend="autograd", x=[0.5])
    assert report.status == "skip" and "lacks op 'erf'" in report.reason


# ---------------------------------------------------------------- a gradient that never came


class Forgetful(SymgradBackend):
    name = "forgetful"

    def grad(self, output: Any, inputs: list, grad_output: np.ndarray | None, create_graph: bool) -> list:
        grads = super().grad(output, inputs, grad_output, create_graph)
        return [None] + grads[1:]


def test_none_gradient_for_an_input_on_the_graph_fails() -> None:
    report = symgrad.check("x * y", backend=Forgetful(), x=[1.0, 2.0], y=[3.0, 4.0])
    assert report.status == "fail"
    (bad,) = [c for c in report.comparisons if not c.passed]
    assert bad.name == "x" and "no gradient (None)" in bad.note


# ---------------------------------------------------------------- missing packages


@pytest.mark.parametrize("name,module,attr", [("torch", "torch_backend", "torch"),
                                               ("autograd", "autograd_backend", "autograd")])
def test_missing_package_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, clean_registry: None,
                                           name: str, module: str, attr: str) -> None:
    import importlib

    mod = importlib.import_module(f"symgrad.backends.{module}")
    monkeypatch.setattr(mod, attr, None)  # as if the import had failed
    registry._INSTANCES.pop(name, None)
    with pytest.raises(BackendUnavailable, match=rf"^backend '{name}' needs: pip install symgrad\[{name}\]$"):
        backends.get(name)
    report = symgrad.run_case(TUTORIAL, backend=name)
    assert report.status == "error"
    assert report.reason == f"BackendUnavailable: backend '{name}' needs: pip install symgrad[{name}]"


@pytest.mark.slow
def test_cli_without_torch_prints_lines_not_a_traceback(tmp_path: Path) -> None:
    # a torch that cannot be imported, first on the path of the CLI and of any worker it starts
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError(\"No module named 'torch'\")\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", "from symgrad.cli import main; main()", "check", "--backend",
                           "torch", "cases/tutorial.yaml"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    assert "backend 'torch' needs: pip install symgrad[torch]" in out


def test_unknown_backend_names_the_available_ones() -> None:
    with pytest.raises(BackendUnavailable, match="unknown backend 'nope'.*symgrad"):
        backends.get("nope")


@pytest.mark.slow
def test_import_symgrad_does_not_import_torch() -> None:
    code = "import sys, symgrad, symgrad.backends; symgrad.check('sin(x)', x=[1.0]); print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip() == "False", proc.stderr


# ---------------------------------------------------------------- selection


@pytest.mark.slow
def test_cli_checks_each_case_per_backend() -> None:
    engine("torch")
    n = len(symgrad.load_cases(ROOT / "cases" / "tutorial.yaml"))
    # in process (click's CliRunner): what is counted is the CLI's business, not the interpreter's
    res = CliRunner().invoke(main, ["check", "--backend", "torch", "--backend", "symgrad",
                                    str(ROOT / "cases" / "tutorial.yaml")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert f"{2 * n} passed" in res.output
    wrong = CliRunner().invoke(main, ["check", "--backend", "torch", "--backend", "api-wrong-all", "--timeout", "0",
                                      str(ROOT / "cases" / "tutorial.yaml")], catch_exceptions=False)
    assert wrong.exit_code == 1 and f"{n} passed, {n} failed" in wrong.output, wrong.output


@pytest.mark.parametrize("backend", ["torch", "autograd"])
def test_backend_keyword_in_the_api(backend: str) -> None:
    engine(backend)
    assert symgrad.check("sin(x)*y", backend=backend, x=[0.1, 0.2], y=[1.0, 2.0], order=2).backend == backend
    symgrad.assert_gradients("3*a**3 - b**2", backend=backend, a=[2.0, 3.0], b=[6.0, 4.0],
                             expect={"a": "9*a**2", "b": "-2*b"})
    assert symgrad.run_case(TUTORIAL, backend=backend).backend == backend


# ---------------------------------------------------------------- third-party registration


class Wrapped(SymgradBackend):
    """A third party's engine (here: symgrad's tape under another name)."""

    name = "wrapped"


def test_register_an_instance(clean_registry: None) -> None:
    mine = Wrapped()
    backends.register("mine", mine)
    assert backends.get("mine") is mine
    assert "mine" in backends.available()
    report = symgrad.check("sin(x)", backend="mine", x=[0.5, 1.0])
    assert report and report.backend == "mine"


def test_register_a_factory(clean_registry: None) -> None:
    calls = []

    def factory() -> Backend:
        calls.append(1)
        return Wrapped()

    backends.register("lazy", factory)
    assert not calls  # built on first use, once
    assert backends.get("lazy") is backends.get("lazy")
    assert len(calls) == 1
    backends.register("cls", Wrapped)
    assert isinstance(backends.get("cls"), Wrapped)


class FakeEntryPoint:
    def __init__(self, name: str, obj: Any):
        self.name, self.value, self.obj = name, f"fake:{name}", obj
        self.group = "symgrad.backends"

    def load(self) -> Any:
        return self.obj


def test_entry_point_group(monkeypatch: pytest.MonkeyPatch, clean_registry: None) -> None:
    seen = []

    def entry_points(**kwargs: Any) -> list:
        seen.append(kwargs)
        if kwargs.get("group") != "symgrad.backends":
            return []
        return [FakeEntryPoint("plugged", Wrapped), FakeEntryPoint("broken", object)]

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    assert {"plugged", "broken"} <= set(backends.available())
    assert {"group": "symgrad.backends"} in seen
    b = backends.get("plugged")
    assert isinstance(b, Wrapped)
    assert symgrad.check("x**2", backend="plugged", x=[3.0]).status == "pass"
    with pytest.raises(TypeError, match="not a symgrad.backends.Backend"):
        backends.get("broken")
    report = symgrad.check("x**2", backend="broken", x=[3.0])
    assert report.status == "error" and "not a symgrad.backends.Backend" in report.reason


def test_register_wins_over_an_entry_point(monkeypatch: pytest.MonkeyPatch, clean_registry: None) -> None:
    monkeypatch.setattr(metadata, "entry_points", lambda **kw: [FakeEntryPoint("dup", NoErf)])
    mine = Wrapped()
    backends.register("dup", mine)
    assert backends.get("dup") is mine


def test_backend_interface_is_small_and_documented() -> None:
    for cls, methods in ((Backend, ["gradients", "evaluate", "is_tensor"]),
                         (TapeBackend, ["leaf", "apply", "grad", "sum", "to_numpy", "constant"])):
        for m in methods:
            assert getattr(cls, m).__doc__, f"{cls.__name__}.{m} lacks a docstring"
    assert Backend.__doc__ and "grad_output" in Backend.__doc__
