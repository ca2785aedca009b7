"""Thin shells (issue 13, part 3): one runner call per check, one numpy evaluator of the IR,
traced and fuzzed IR checked as built (never printed and parsed again), no private imports.

Each check that passes has a twin that fails on a backend with a wrong gradient.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from perturbed import PerturbB

import symgrad
from symgrad import backends, ops, plot
from symgrad.api import make_case
from symgrad.backends.symgrad_tape import SymgradBackend
from symgrad.checking import runner
from symgrad.checking.cases import CaseError, case_from_dict, schema
from symgrad.checking.runner import Options, run_case
from symgrad.cli import main
from symgrad.ir.expr import Const, Var, numpy_eval
from symgrad.ir.limits import DEFAULT, LimitExceeded, Limits
from symgrad.ir.parse import ParseError, check_ir, parse

ROOT = Path(__file__).resolve().parents[1]
Q = "3*a**3 - b**2"
AB = {"a": [2.0, 3.0], "b": [6.0, 4.0]}
WRONG = "shells-wrong-b"


class WrongB(PerturbB):
    """symgrad's tape with d/db off by 0.5 at element 1 (a wrong VJP, as far as a check can tell)."""

    name = WRONG


class Counting(SymgradBackend):
    name = "shells-counting"
    calls = 0

    def gradients(self, expr, inputs, wrt, order, grad_output):
        type(self).calls += 1
        return super().gradients(expr, inputs, wrt, order, grad_output)


class WrongSin(SymgradBackend):
    """symgrad's tape with d/dx sin(x) = 1.01 cos(x) (a private variant of the op, not the table's)."""

    name = "shells-wrong-sin"
    _sin = dataclasses.replace(ops.sin, vjps=(lambda g, ans, x: 1.01 * g * ops.cos(x),))

    def apply(self, op, args, params):
        return super().apply(self._sin if op is ops.sin else op, args, params)


backends.register(WRONG, WrongB())
backends.register("shells-wrong-sin", WrongSin())
backends.register("shells-counting", Counting())


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# ---------------------------------------------------------------- the one numpy evaluator


def test_numpy_eval_literals_are_floats_and_warnings_silent():
    x = np.array([1, 2], dtype=np.int64)
    assert numpy_eval(parse("x * 2**64"), {"x": x}).tolist() == [2.0**64, 2.0**65]  # no int64 wrap-around
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = numpy_eval(parse("x/x + log(x - 5)"), {"x": np.array([0.0, 6.0])})
    assert np.isnan(out[0]) and out[1] == 1.0
    f32 = numpy_eval(parse("x * 0.1"), {"x": np.array([1.0], dtype=np.float32)})
    assert f32.dtype == np.float32  # the inputs' dtype is kept ...
    assert numpy_eval(parse("x * 0.1"), {"x": np.array([1.0], dtype=np.float32)}, np.float64).dtype == np.float64


def test_numpy_eval_every_node():
    ir = parse("relu(x - y) * 2")
    values = numpy_eval(ir, {"x": np.array([1.0, 3.0]), "y": np.array(2.0)}, values=True)
    diff = ir.args[0].args[0]
    assert values[id(diff)].tolist() == [-1.0, 1.0]
    assert values[id(ir)].tolist() == [0.0, 2.0]
    assert len(values) == len(list(ir.walk()))


def test_no_other_numpy_walk_of_the_ir():
    """The op table's numpy forwards run in the evaluator, the tape, and on single applications only:
    sympy's constant folding, the parser's constant-size estimate, the mutation tester's equivalence probe,
    the kink classifier moving a 0/1 mask as a transpose or an index moves values."""
    assert not hasattr(runner, "_numpy_value") and not hasattr(plot, "_values")
    callers = {str(p.relative_to(ROOT / "symgrad")) for p in (ROOT / "symgrad").rglob("*.py")
               if ".forward(" in p.read_text()}
    assert callers == {"ir/ops.py", "ir/expr.py", "tape/graph.py", "symbolic/forms.py", "ir/parse.py",
                       "mutation.py", "backends/base.py",  # base.py: the walker folds a constant-only application
                       "symbolic/kinks.py"}


# ---------------------------------------------------------------- the Report carries the numbers


def test_report_carries_value_formulas_and_both_arrays():
    report = run_case(make_case(Q, **AB))
    assert report
    assert report.value.tolist() == [-12.0, 65.0] and report.reference_value.tolist() == [-12.0, 65.0]
    assert list(report.gradients) == [("a",), ("b",)]
    da = report.gradients[("a",)]
    assert da.formula == "9*a**2" and da.reference.tolist() == [36.0, 81.0] and da.tape.tolist() == [36.0, 81.0]
    assert not da.undefined.any()


def test_report_arrays_show_a_wrong_gradient():
    report = run_case(make_case(Q, **AB), backend=WRONG)
    assert not report
    db = report.gradients[("b",)]
    assert db.reference.tolist() == [-12.0, -8.0] and db.tape.tolist() == [-12.0, -7.5]


def test_report_marks_undefined_elements():
    report = run_case(make_case("sqrt(x) * log(x)", x=[-1.0, 1.0]))
    assert report.gradients[("x",)].undefined.tolist() == [True, False]


def test_arrays_stay_out_of_to_dict_and_can_be_turned_off():
    report = run_case(make_case(Q, **AB), backend=WRONG)
    d = report.to_dict()
    json.dumps(d, allow_nan=False)
    assert not {"value", "reference_value", "gradients"} & set(d)
    assert symgrad.Report.from_dict(d).gradients == {}
    lean = run_case(make_case(Q, **AB), options=Options(backend=WRONG, arrays=False))
    assert not lean and lean.value is None and lean.gradients == {}
    assert lean.to_dict()["comparisons"] == d["comparisons"]


# ---------------------------------------------------------------- grad and plot: one runner call


@pytest.fixture
def count_engines(monkeypatch):
    """How often the runner, sympy's differentiation and the backend run during a command."""
    counts = {"run_case": 0, "differentiate": 0}
    real_run, real_diff = runner.run_case, symgrad.symbolic.differentiate

    def run(*a, **k):
        counts["run_case"] += 1
        return real_run(*a, **k)

    def diff(*a, **k):
        counts["differentiate"] += 1
        return real_diff(*a, **k)

    monkeypatch.setattr(runner, "run_case", run)
    monkeypatch.setattr(plot, "run_case", run)  # imported by name at module level
    monkeypatch.setattr(symgrad.checking.runner, "differentiate", diff)
    Counting.calls = 0
    return counts


def test_grad_runs_each_engine_once(count_engines):
    res = invoke("grad", Q, "--at", "a=2,3", "--at", "b=6,4", "--backend", "shells-counting")
    assert res.exit_code == 0, res.output
    assert count_engines == {"run_case": 1, "differentiate": 1} and Counting.calls == 1
    assert res.output.splitlines()[-1] == "PASS (elementwise, shells-counting)"


def test_grad_prints_the_wrong_tape_and_fails():
    res = invoke("grad", Q, "--at", "a=2,3", "--at", "b=6,4", "--backend", WRONG)
    assert res.exit_code == 1, res.output
    lines = res.output.splitlines()
    assert lines[5:7] == ["           sympy: [-12.  -8.]", "           tape:  [-12.   -7.5]"]
    assert any(line.startswith(f"FAIL check [{WRONG}]") for line in lines)


def test_grad_prints_none_for_a_gradient_the_backend_did_not_return():
    res = invoke("grad", "x * y", "--at", "x=1,2", "--at", "y=3,4", "--order", "2")
    assert res.exit_code == 0, res.output
    assert "tape:  None" in res.output  # d/dx d/dx of x*y: nothing flowed


def test_grad_of_an_op_the_backend_lacks_is_an_error_not_a_crash():
    class NoSin(SymgradBackend):
        name = "shells-no-sin"

        def apply(self, op, args, params):
            if op is ops.sin:
                raise backends.Unsupported("sin")
            return super().apply(op, args, params)

    backends.register("shells-no-sin", NoSin())
    res = invoke("grad", "sin(x)", "--at", "x=1", "--backend", "shells-no-sin")
    assert res.exit_code == 2 and "lacks sin" in res.output
    assert invoke("grad", "cos(x)", "--at", "x=1", "--backend", "shells-no-sin").exit_code == 0


def test_plot_data_from_one_runner_call(count_engines):
    data = plot.compute("relu(x) * y", "x", -1, 1, {"y": 2.0}, points=11, backend="shells-counting")
    assert count_engines == {"run_case": 1, "differentiate": 1} and Counting.calls == 1
    assert data.verdict == "PASS" and [name for _, name in data.kinks] == ["relu"]
    assert data.tape.tolist() == data.sym.tolist() == [0.0] * 6 + [2.0] * 5  # y * relu'(x), relu'(0) = 0


def test_plot_data_shows_a_wrong_gradient():
    data = plot.compute("x * b", "b", -1, 1, {"x": 2.0}, points=5, backend=WRONG)
    assert data.verdict.startswith("FAIL") and data.tape[1] == data.sym[1] + 0.5
    assert np.nanmax(data.ulp) > 1e6


# ---------------------------------------------------------------- traced IR goes to the runner as built


def test_traced_ir_is_checked_as_built(monkeypatch):
    def f(x):
        y = x * x  # one node, used twice: the tape sees it once
        return y * y

    def no_parsing(*a, **k):
        raise AssertionError("a traced function was parsed")

    monkeypatch.setattr(schema, "parse", no_parsing)
    case = make_case(f, x=[0.5, 2.0])
    assert case.expr == "x*x*(x*x)" and case.ir.args[0] is case.ir.args[1]
    assert symgrad.check(f, x=[0.5, 2.0])
    assert not symgrad.check(lambda a, b: a * a * b, **AB, backend=WRONG)


def test_check_function_with_a_traced_reference():
    report = symgrad.check_function(lambda x: symgrad.sin(x) * x, lambda x: symgrad.sin(x) * x, backend="symgrad",
                                    x=[0.5, 1.0])
    assert report, report.table()
    wrong = symgrad.check_function(lambda x: symgrad.sin(x) * x, lambda x: symgrad.cos(x) * x, backend="symgrad",
                                   x=[0.5, 1.0])
    assert not wrong


def _nest(n):
    def f(x):
        for _ in range(n):
            x = symgrad.sin(x)
        return x

    return f


def _squarings(n):
    def f(x):
        for _ in range(n):
            x = x * x
        return x

    return f


@pytest.mark.parametrize("fn, limit", [
    (_nest(70), "max_depth"),
    (_squarings(100), "max_nodes"),  # 2**100 leaves once printed: refused before printing
    (lambda x: x * 10**40, "max_int_digits"),
    (lambda x: x + Const(10.0) ** Const(400.0), "max_const_digits"),
    (lambda x: symgrad.sum(x, axis=9), "max_ndim"),
])
def test_traced_ir_keeps_the_parsers_limits(fn, limit):
    with pytest.raises(CaseError, match=f"expr is refused: .*{limit}"):
        make_case(fn, x=[1.0, 2.0])


@pytest.mark.parametrize("fn", [_nest(60), _squarings(9), lambda x: x * 10**20,
                                lambda x: x + Const(10.0) ** Const(200.0), lambda x: symgrad.sum(x, axis=0)])
def test_traced_ir_within_the_limits_is_accepted(fn):
    assert make_case(fn, x=[1.0, 2.0]).ir is not None


@pytest.mark.parametrize("fn, message", [
    (lambda e: e**2, "shadows the constant 'e'"),
    (lambda sin: sin * 2, "shadows the function 'sin'"),
    (lambda x: symgrad.sum(x, bogus=1), "unknown keyword 'bogus'"),
    (lambda x: symgrad.sum(x, axis=(0, 0)), "repeated axis"),
])
def test_traced_ir_keeps_the_parsers_rules(fn, message):
    names = list(inspect.signature(fn).parameters)
    with pytest.raises(CaseError, match=message):
        make_case(fn, inputs={n: [1.0, 2.0] for n in names})


def _balanced(k: int) -> str:
    return "x" if k == 0 else f"({_balanced(k - 1)})*({_balanced(k - 1)})"


@pytest.mark.parametrize("text, limit", [
    ("sqrt(10**200)**10000", "max_const_digits"),
    ("sin(" * 70 + "x" + ")" * 70, "max_depth"),
    (_balanced(10), "max_nodes"),  # 2047 nodes, depth 11
    ("x * 1234567890123456789012345678901", "max_int_digits"),
    ("sum(x, axis=8)", "max_ndim"),
])
def test_check_ir_refuses_what_parse_refuses(text, limit):
    with pytest.raises(ParseError, match=limit):
        parse(text)
    big = Limits(max_depth=500, max_nodes=10_000, max_int_digits=100, max_const_digits=10**9, max_ndim=32,
                 max_length=100_000)
    ir = parse(text, limits=big)
    with pytest.raises(LimitExceeded) as info:
        check_ir(ir, limits=DEFAULT)
    assert info.value.limit == limit
    assert repr(parse(check_ir(ir, limits=big), limits=big)) == repr(ir)  # accepted under the limits it parsed under


def test_check_ir_round_trips_what_it_accepts():
    for text in ("3*a**3 - b**2", "sum((x - mean(x))**2, axis=0)", "-x**2 + pi*e", "a @ transpose(b)"):
        ir = parse(text, names=["a", "b", "x"])
        assert parse(check_ir(ir, names=["a", "b", "x"])).__repr__() == ir.__repr__()
    with pytest.raises(ParseError, match="no input given for 'z'"):
        check_ir(Var("z") * 2, names=["x"])


def test_case_from_dict_with_ir_fills_in_the_text():
    ir = parse("x**2")
    case = case_from_dict({"name": "c", "inputs": {"x": [1.0]}}, ir=ir)
    assert case.ir is ir and case.expr == "x**2"
    assert run_case(case)
    with pytest.raises(CaseError, match="not declared|no input given"):
        case_from_dict({"name": "c", "inputs": {"y": [1.0]}}, ir=ir)


# ---------------------------------------------------------------- fuzzed IR goes to the runner as built


def test_fuzzed_ir_is_checked_as_built(monkeypatch, tmp_path):
    pytest.importorskip("hypothesis")
    from symgrad.fuzzing import fuzz

    def no_parsing(*a, **k):
        raise AssertionError("a fuzzed expression was parsed")

    monkeypatch.setattr(schema, "parse", no_parsing)
    clean = fuzz(count=20, seed=1, max_depth=3, out_dir=None)
    assert clean and clean.checked == 20, clean.summary()
    found = fuzz(count=20, seed=1, max_depth=2, ops="sin,mul", out_dir=None, backend="shells-wrong-sin",
                 max_failures=1)
    assert not found and found.failures, found.summary()


# ---------------------------------------------------------------- shells import no private helpers


SHELLS = ("api.py", "cli.py", "plot.py", "fuzzing.py", "pytest_plugin.py")


SHELL_HELPERS = ("symgrad._lazy",)  # the shells' own deferred-import helper, at their layer


def _private_imports(source: str, module: str) -> list[str]:
    """``from symgrad.x import _name`` (or ``import symgrad.x._y``) of another module in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("symgrad") and node.module != module
                and node.module not in SHELL_HELPERS):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            found += [node.module] if any(p.startswith("_") for p in node.module.split(".")) else []
    return found


@pytest.mark.parametrize("shell", SHELLS)
def test_shells_import_no_private_helpers(shell):
    path = ROOT / "symgrad" / shell
    module = "symgrad." + shell[:-3]
    assert _private_imports(path.read_text(), module) == []


def test_the_private_import_check_catches_one():
    bad = "def f():\n    from symgrad.checking.runner import _numpy_value\n"
    assert _private_imports(bad, "symgrad.cli") == ["symgrad.checking.runner._numpy_value"]
