"""Honest verdicts (issue 14, items 1, 2, 7, 9, 10): no false PASS, no false FAIL.

Every check that passes has a twin that fails (or errors) on a deliberately wrong gradient.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import symgrad
from symgrad.backends.symgrad_tape import SymgradBackend
from symgrad.checking.cases import CaseError, case_from_dict, load_cases
from symgrad.checking.report import Report
from symgrad.checking.runner import run_case

Tamper = Callable[[tuple, np.ndarray, dict], np.ndarray]


class Tampered(SymgradBackend):
    """symgrad's tape with ``fn(seq, gradient, inputs)`` applied to every gradient it returns."""

    def __init__(self, fn: Tamper):
        self.name, self.fn = "tampered", fn

    def gradients(self, expr, inputs, wrt, order, grad_output):
        value, grads = super().gradients(expr, inputs, wrt, order, grad_output)
        return value, {seq: g if g is None else self.fn(seq, np.array(g, copy=True), inputs)
                       for seq, g in grads.items()}


def scale_order_one(factor: float) -> Tampered:
    """First derivatives scaled; higher orders left right (what a wrong backward gives at order 2)."""
    return Tampered(lambda seq, g, _: g * factor if len(seq) == 1 else g)


def case(**data: Any):
    data.setdefault("name", "c")
    return case_from_dict(data)


def by_name(report: Report) -> dict:
    return {c.name: c for c in report.comparisons}


# ---------------------------------------------------------------- 1. order k checks orders 1..k


torch = pytest.importorskip("torch")


def _softplus(backward: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    class Softplus(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.log1p(torch.exp(x))

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return backward(g, x)

    return Softplus.apply


X = {"uniform": [-5, 5], "shape": [20]}


def test_check_function_order_2_fails_a_wrong_first_derivative_with_a_right_second():
    wrong = _softplus(lambda g, x: g * (torch.sigmoid(x) + 1))  # derivative of sigmoid(x) + 1 is right
    r = symgrad.check_function(wrong, "log(1 + exp(x))", backend="torch", order=2, x=X)
    assert r.status == "fail", r.table()
    assert [c.name for c in r.failed_comparisons] == ["x"]
    assert "x" in r.summary_line() and "x,x" not in r.summary_line()


def test_check_function_order_2_twin_with_the_right_backward_passes():
    right = _softplus(lambda g, x: g * torch.sigmoid(x))
    r = symgrad.check_function(right, "log(1 + exp(x))", backend="torch", order=2, x=X)
    assert r.status == "pass", r.table()
    assert {"x", "x,x"} <= set(by_name(r))


@pytest.mark.parametrize("order", [2, 3])
def test_api_order_k_checks_every_lower_order(order):
    r = symgrad.check("x**4 + 3*x", x=[0.5, 2.0], order=order, backend=scale_order_one(1.001))
    assert r.status == "fail" and [c.name for c in r.failed_comparisons] == ["x"]
    good = symgrad.check("x**4 + 3*x", x=[0.5, 2.0], order=order)
    assert good.status == "pass"
    assert [c.name for c in good.comparisons] == ["value"] + [",".join("x" * j) for j in range(1, order + 1)]


def test_case_file_order_2_checks_order_1(tmp_path):
    path = tmp_path / "orders.yaml"
    path.write_text("cases:\n  - name: two\n    expr: a * sin(b)\n    inputs: {a: [0.5, 1.5], b: [2.0, -1.0]}\n"
                    "    order: 2\n")
    [c] = load_cases(path)
    assert run_case(c).status == "pass"
    r = run_case(c, backend=Tampered(lambda seq, g, _: g + 0.5 if seq == ("b",) else g))
    assert r.status == "fail" and [x.name for x in r.failed_comparisons] == ["b"]


# ---------------------------------------------------------------- 2. nothing compared is not a pass


def test_all_undefined_is_an_error_naming_the_op():
    r = symgrad.check("log(x)", x=[-1.0, -2.0])
    assert r.status == "error" and not r
    assert "all 2 elements undefined" in r.reason and "domain of log" in r.reason


def test_partly_undefined_passes_and_shows_the_count():
    r = symgrad.check("log(x)", x=[-1.0, 2.0])
    assert r.status == "pass", r.table()
    assert by_name(r)["x"].undefined == 1
    assert "undefined" in r.summary_line() and "x 1/2" in r.summary_line()
    assert "1/2" in r.table()
    # the twin: the one defined element is really compared
    wrong = Tampered(lambda seq, g, _: g * 1.01)
    assert symgrad.check("log(x)", x=[-1.0, 2.0], backend=wrong).status == "fail"


def test_all_nan_inputs_are_an_error():
    r = symgrad.check("x * 2", x=[math.nan, math.nan])
    assert r.status == "error" and "nan" in r.reason and "nothing compared" in r.reason


def test_forward_non_finite_everywhere_is_an_error():
    r = symgrad.check("exp(x)", x=[1000.0, 2000.0])
    assert r.status == "error" and "non-finite" in r.reason
    assert symgrad.check("exp(x)", x=[1000.0, 1.0]).status == "pass"  # one finite element is enough


@pytest.mark.parametrize("key, value", [("expect", {"x": [1.0, math.nan]}), ("expect", {"x": math.nan}),
                                        ("value", [math.nan, 2.0]), ("value", math.nan)])
def test_a_literal_nan_expectation_is_refused_at_load(key, value):
    with pytest.raises(CaseError, match="nan"):
        case(expr="x * 1", inputs={"x": [1.0, 2.0]}, **{key: value})


@pytest.mark.parametrize("line", ["value: .nan", "expect: {x: [1.0, .nan]}"])
def test_a_yaml_nan_expectation_is_refused_at_load(tmp_path, line):
    path = tmp_path / "nan.yaml"
    path.write_text(f"cases:\n  - name: n\n    expr: x * 1\n    inputs: {{x: [1.0, 2.0]}}\n    {line}\n")
    with pytest.raises(CaseError, match="nan"):
        load_cases(path)


def test_an_expect_expression_that_is_nan_where_the_derivative_is_defined_fails():
    assert symgrad.check("x * 1", x=[1.0, 2.0], expect={"x": "x / x"}).status == "pass"
    r = symgrad.check("x * 1", x=[1.0, 2.0], expect={"x": "sqrt(-x)"})  # nan: never matches
    assert r.status == "fail" and [c.name for c in r.failed_comparisons] == ["expect x"]


def test_a_value_expression_that_is_nan_where_the_forward_is_defined_fails():
    assert symgrad.check("x * 1", x=[1.0, 2.0], value="x").status == "pass"
    assert symgrad.check("x * 1", x=[1.0, 2.0], value="log(-x)").status == "fail"


def test_one_gradient_with_nothing_compared_makes_the_case_an_error():
    # (-1)**2 is defined, d/dy = x**y * log(x) is not: value and x are compared, y is not
    r = symgrad.check("x**y", x=[-1.0, -2.0], y=[2.0, 2.0])
    assert r.status == "error" and "nothing compared" in r.reason and "in y:" in r.reason
    assert by_name(r)["x"].passed and by_name(r)["x"].undefined == 0


def test_a_failure_beside_nothing_compared_stays_a_failure():
    wrong = Tampered(lambda seq, g, _: g + 1.0 if seq == ("x",) else g)
    r = symgrad.check("x**y", x=[-1.0, -2.0], y=[2.0, 2.0], backend=wrong)
    assert r.status == "fail" and [c.name for c in r.failed_comparisons] == ["x"]
    assert "nothing compared" in r.reason and "nothing compared" in r.table()


# ---------------------------------------------------------------- 7. constants the reference got wrong


@pytest.mark.parametrize("mode", ["elementwise", "expanded"])
def test_atan2_of_negative_zero_follows_numpy(mode):
    r = symgrad.check("x * atan2(-0.0, -1.0)", x=[1.0, 2.0], mode=mode)
    assert r.status == "pass", r.table()
    assert by_name(r)["x"].expected == np.arctan2(-0.0, -1.0)  # -pi, as the tape computes it
    assert symgrad.check("x * atan2(-0.0, -1.0)", x=[1.0, 2.0], mode=mode,
                         backend=Tampered(lambda seq, g, _: -g)).status == "fail"


def test_zoo_constant_is_undefined_not_a_number():
    with np.errstate(divide="ignore"):  # the tape's own forward of 0**-1
        r = symgrad.check("x + 0**-1", x=[1.0, 2.0])
    assert r.status == "error" and "undefined" in r.reason


def test_constants_beyond_float_range_overflow_like_numpy():
    r = symgrad.check("x*1e200*1e200", x=[1e-300, -3e-299])
    assert r.status == "pass", r.table()
    assert by_name(r)["value"].expected == pytest.approx(1e-300 * 1e200 * 1e200)
    assert by_name(r)["x"].expected == math.inf  # the true derivative, 1e400, overflows
    r = symgrad.check("x*1e200*1e200", x=[1.0, 2.0])
    assert r.status == "error" and "non-finite" in r.reason  # no OverflowError
    assert symgrad.check("x*1e-200*1e-200", x=[1e300]).status == "pass"  # 1e-400 underflows: 0, as numpy
    assert symgrad.check("x*1e-200*1e-200", x=[1e300], backend=Tampered(lambda s, g, _: g + 1e-3)).status == "fail"


def test_inputs_named_like_numpy_functions():
    expr = "relu(x) * select + maximum(signbit, less) * equal + abs(nonzero)"
    inputs = dict(x=[1.0, -1.0], select=[2.0, 3.0], signbit=[0.5, 4.0], less=[1.0, 1.0], equal=[3.0, -2.0],
                  nonzero=[-1.5, 2.0])
    for exact in (False, True):
        r = symgrad.check(expr, inputs=inputs, exact=exact)
        assert r.status == "pass", r.table()
    wrong = Tampered(lambda seq, g, _: g * 1.01 if seq == ("select",) else g)
    assert symgrad.check(expr, inputs=inputs, backend=wrong).status == "fail"


@pytest.mark.parametrize("spec", [[], [[], []], {"uniform": [0, 1], "shape": [3, 0]}, {"linspace": [0, 1, 0]}])
def test_empty_inputs_are_refused_at_load(spec):
    with pytest.raises(CaseError, match="empty"):
        case(expr="sum(x) * y", inputs={"x": spec, "y": 1.0})


@pytest.mark.parametrize("order", [3.0, True, "3", 2.5])
def test_order_must_be_an_int(order):
    with pytest.raises(CaseError, match="order"):
        case(expr="x**3", inputs={"x": 1.0}, order=order)
    assert case(expr="x**3", inputs={"x": 1.0}, order=3).order == 3


def test_order_float_in_a_case_file_is_refused_at_load(tmp_path):
    path = tmp_path / "o.yaml"
    path.write_text("cases:\n  - name: o\n    expr: x**3\n    inputs: {x: 1.0}\n    order: 3.0\n")
    with pytest.raises(CaseError, match="order"):
        load_cases(path)


# ---------------------------------------------------------------- 9. failures that explain themselves


def test_table_shows_grad_output_source_and_value_at_the_worst_element():
    wrong = Tampered(lambda seq, g, _: g + np.array([0.0, 1.0]))
    r = symgrad.check("x**2", x=[1.0, 2.0], grad_output=[2.0, -3.0], backend=wrong)
    c = by_name(r)["x"]
    assert r.status == "fail" and c.worst_index == (1,)
    assert c.grad_output == "literal" and c.grad_output_value == -3.0
    assert "grad_output" in r.table() and "literal: -3.0" in r.table()
    plain = symgrad.check("x**2", x=[1.0, 2.0], backend=wrong)
    assert "grad_output" not in plain.table()  # ones: nothing to explain


def test_errors_at_the_worst_element_beside_the_maxima():
    # element 0: a large absolute error within tolerance (|g| = 2000); element 1 fails with a small one
    wrong = Tampered(lambda seq, g, _: g + np.array([1.5e-4, 1e-5]))
    r = symgrad.check("x**2", x=[1000.0, 1.0], backend=wrong)
    c = by_name(r)["x"]
    assert r.status == "fail" and c.worst_index == (1,) and c.mismatched == 1
    assert c.abs_err == pytest.approx(1e-5, rel=1e-6) and c.rel_err == pytest.approx(0.5e-5, rel=1e-6)
    assert c.max_abs == pytest.approx(1.5e-4, rel=1e-6)
    table = r.table()
    assert "abs err" in table and "max abs err" in table and "1.00e-05" in table and "1.50e-04" in table
    d = json.loads(json.dumps(r.to_dict()))["comparisons"][1]
    assert d["abs_err"] == pytest.approx(1e-5, rel=1e-6) and d["max_abs"] == pytest.approx(1.5e-4, rel=1e-6)
    back = Report.from_dict(r.to_dict())
    assert by_name(back)["x"].abs_err == c.abs_err and by_name(back)["x"].ulp == c.ulp


def test_json_carries_grad_output():
    wrong = Tampered(lambda seq, g, _: g * 2)
    r = symgrad.check("x**2", x=[1.0, 2.0], grad_output=[0.5, 4.0], backend=wrong)
    d = json.loads(json.dumps(r.to_dict()))["comparisons"][1]
    assert d["grad_output"] == "literal" and d["grad_output_value"] == 4.0


# ---------------------------------------------------------------- 10. expect at higher orders


def test_expect_second_derivative_proved():
    r = symgrad.check("x**3 * y", x=[1.0, 2.0], y=[3.0, -1.0], order=2,
                      expect={"x,x": "6*x*y", "x,y": "3*x**2", "y,y": 0})
    assert r.status == "pass", r.table()
    assert "proved equal" in by_name(r)["expect x,x"].note
    assert "proved equal" in by_name(r)["expect x,y"].note


def test_expect_second_derivative_wrong_fails_and_is_proved_different():
    r = symgrad.check("x**3 * y", x=[1.0, 2.0], y=[3.0, -1.0], order=2, expect={"x,x": "6*x", "y,y": 1})
    assert r.status == "fail"
    assert {c.name for c in r.failed_comparisons} == {"expect x,x", "expect y,y"}
    assert "proved DIFFERENT" in by_name(r)["expect x,x"].note


def test_expect_second_derivative_is_compared_with_the_tape():
    wrong = Tampered(lambda seq, g, _: g + 1.0 if seq == ("x", "x") else g)
    r = symgrad.check("x**3", x=[1.0, 2.0], order=2, expect={"x,x": "6*x"}, backend=wrong)
    assert {c.name for c in r.failed_comparisons} == {"x,x", "expect x,x"}


def test_expect_third_derivative():
    assert symgrad.check("x**4", x=[1.0, 2.0], order=3, expect={"x,x,x": "24*x", "x": "4*x**3"}).status == "pass"
    assert symgrad.check("x**4", x=[1.0, 2.0], order=3, expect={"x,x,x": "24"}).status == "fail"


@pytest.mark.parametrize("expect, match", [({"x,z": 0}, "not differentiated"), ({"x,x": 6}, "order"),
                                           ({"x,": 0}, "not differentiated")])
def test_expect_keys_are_validated_at_load(expect, match):
    with pytest.raises(CaseError, match=match):
        case(expr="x**3 * z", inputs={"x": 1.0, "z": 2.0}, wrt=["x"], order=1, expect=expect)
