"""The library API: check, assert_gradients, make_case, load_cases/run_case, GradientMismatch.

Each passing check has a twin that fails, on a deliberately wrong backend
(registered with ``symgrad.backends.register``) or with a wrong ``expect``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from perturbed import PerturbB  # importing it registers api-wrong-b and api-wrong-all

import symgrad
from symgrad.backends.symgrad_tape import SymgradBackend
from symgrad.checking.cases import collect
from symgrad.checking.report import Report

ROOT = Path(__file__).resolve().parents[1]
Q = "3*a**3 - b**2"
AB = dict(a=[2.0, 3.0], b=[6.0, 4.0])


def comparisons(report: Report) -> dict:
    return {c.name: c for c in report.comparisons}


def essence(report: Report) -> dict:
    """What a report says, without timing."""
    d = report.to_dict()
    d.pop("duration")
    return d


# ---------------------------------------------------------------- check


def test_check_returns_a_truthy_report():
    report = symgrad.check(Q, a=[2.0, 3.0], b=[6.0, 4.0])
    assert isinstance(report, symgrad.Report)
    assert report and report.passed
    assert report.status == "pass"
    assert report.mode == "elementwise"
    assert report.expr == Q and report.backend == "symgrad"
    comps = comparisons(report)
    assert list(comps) == ["value", "a", "b"]
    assert comps["a"].formula == "9*a**2" and comps["b"].formula == "-2*b"


def test_check_wrong_backend_is_falsy_and_names_the_input():
    report = symgrad.check(Q, a=[2.0, 3.0], b=[6.0, 4.0], backend="api-wrong-b")
    assert not report
    assert report.status == "fail" and report.backend == "api-wrong-b"
    assert [c.name for c in report.failed_comparisons] == ["b"]
    bad = report.failed_comparisons[0]
    assert bad.worst_index == (1,) and bad.actual == -7.5 and bad.expected == -8.0
    table = report.table()
    assert "FAIL" in table and "-2*b" in table and "1/2" in table and "(1,)" in table
    assert report.summary_line().endswith("mismatched b 1/2")


def test_check_accepts_a_backend_instance():
    assert symgrad.check(Q, **AB, backend=SymgradBackend())
    assert not symgrad.check(Q, **AB, backend=PerturbB())


def test_check_accepts_numpy_and_tensor_inputs():
    assert symgrad.check(Q, a=np.array([2.0, 3.0]), b=symgrad.tensor([6.0, 4.0]))
    assert not symgrad.check(Q, a=np.array([2.0, 3.0]), b=symgrad.tensor([6.0, 4.0]), backend="api-wrong-b")


def test_check_scalar_inputs():
    report = symgrad.check("x**2", x=3.0)
    assert report and comparisons(report)["x"].expected == 6.0
    assert not symgrad.check("x**2", x=3.0, backend="api-wrong-all")


# ---------------------------------------------------------------- assert_gradients


def test_assert_gradients_with_correct_expect_passes():
    report = symgrad.assert_gradients(Q, **AB, expect={"a": "9*a**2", "b": "-2*b"})
    assert report and report.status == "pass"
    comps = comparisons(report)
    assert comps["expect a"].note == "proved equal to sympy's derivative"
    assert comps["expect b"].passed


def test_assert_gradients_with_wrong_expect_raises_gradient_mismatch():
    with pytest.raises(symgrad.GradientMismatch) as info:
        symgrad.assert_gradients(Q, **AB, expect={"a": "9*a**2", "b": "-3*b"})
    exc = info.value
    assert isinstance(exc, AssertionError)
    assert issubclass(symgrad.GradientMismatch, AssertionError)
    report = exc.report
    assert report.status == "fail"
    assert str(exc) == report.table()  # the CLI's table
    text = str(exc)
    assert "expect b" in text and "-3*b" in text  # the formula
    assert "(0,)" in text  # the worst element's index
    assert "-12.0" in text and "-18.0" in text  # both values
    assert "2/2" in text and "proved DIFFERENT" in text


def test_assert_gradients_is_an_assertion_error_for_pytest():
    with pytest.raises(AssertionError):
        symgrad.assert_gradients(Q, **AB, expect={"b": [-12.0, -9.0]})


def test_assert_gradients_catches_a_wrong_backend():
    symgrad.assert_gradients(Q, **AB)
    with pytest.raises(symgrad.GradientMismatch) as info:
        symgrad.assert_gradients(Q, **AB, backend="api-wrong-b")
    assert str(info.value) == info.value.report.table()
    assert "api-wrong-b" in str(info.value) and "-2*b" in str(info.value)


def test_gradient_mismatch_for_an_error_carries_the_reason():
    with pytest.raises(symgrad.GradientMismatch) as info:
        symgrad.assert_gradients("log(x)", x=[-1.0, -2.0])
    assert info.value.report.status == "error"
    assert "outside the domain of log" in str(info.value)


# ---------------------------------------------------------------- traced functions


def test_traced_lambda_equals_the_string():
    traced = symgrad.check(lambda a, b: 3 * a**3 - b**2, **AB)
    text = symgrad.check(Q, **AB)
    assert traced and traced.mode == "elementwise"
    assert essence(traced) == essence(text)


def test_traced_lambda_fails_on_a_wrong_backend_like_the_string():
    traced = symgrad.check(lambda a, b: 3 * a**3 - b**2, **AB, backend="api-wrong-b")
    text = symgrad.check(Q, **AB, backend="api-wrong-b")
    assert not traced
    assert essence(traced) == essence(text)


def test_traced_op_function():
    traced = symgrad.check(symgrad.sin, x=[0.5, 1.0, 2.0])
    text = symgrad.check("sin(x)", x=[0.5, 1.0, 2.0])
    assert traced and essence(traced) == essence(text)
    assert comparisons(traced)["x"].formula == "cos(x)"
    assert not symgrad.check(symgrad.sin, x=[0.5, 1.0, 2.0], backend="api-wrong-all")


def test_traced_function_with_symgrad_ops_and_assert_gradients():
    def softplus(x):
        return symgrad.log(1 + symgrad.exp(x))

    symgrad.assert_gradients(softplus, x=[-1.0, 0.0, 2.0], expect={"x": "sigmoid(x)"})
    with pytest.raises(symgrad.GradientMismatch):
        symgrad.assert_gradients(softplus, x=[-1.0, 0.0, 2.0], expect={"x": "exp(x)"})


# ---------------------------------------------------------------- case keys as keywords


def test_order_and_wrt_keywords():
    report = symgrad.check("a * b * sin(a)", a=[0.5, 1.5], b=[2.0, -1.0], order=2, wrt=["a"])
    assert report, report.table()
    assert [c.name for c in report.comparisons] == ["value", "a", "a,a"]  # order 2 checks order 1 too
    assert not symgrad.check("a * b * sin(a)", a=[0.5, 1.5], b=[2.0, -1.0], order=2, wrt=["a"],
                             backend="api-wrong-all")


def test_grad_output_keyword():
    report = symgrad.check(Q, **AB, grad_output=[0.5, 2.0], expect={"a": [18.0, 162.0]})
    assert report, report.table()
    assert not symgrad.check(Q, **AB, grad_output=[0.5, 2.0], expect={"a": [36.0, 81.0]})
    assert symgrad.check(Q, **AB, grad_output=np.array([0.5, 2.0]))


def test_dtype_keyword():
    report = symgrad.check(Q, **AB, dtype="float32")
    assert report
    assert {(c.rtol, c.atol) for c in report.comparisons} == {(1.3e-6, 1e-5)}
    assert not symgrad.check(Q, **AB, dtype="float32", backend="api-wrong-b")


def test_rtol_atol_keywords():
    # a 1% error passes only with a loose rtol
    assert not symgrad.check(Q, **AB, backend="api-wrong-all")
    loose = symgrad.check(Q, **AB, backend="api-wrong-all", rtol=0.02, atol=0.0)
    assert loose, loose.table()
    assert {(c.rtol, c.atol) for c in loose.comparisons} == {(0.02, 0.0)}
    assert not symgrad.check(Q, **AB, backend="api-wrong-all", rtol="5e-3", atol=0.0)


def test_seed_keyword_makes_random_inputs_reproducible():
    spec = {"uniform": [0.5, 2.0], "shape": [5]}
    r1 = symgrad.check("log(x) * x", x=spec, seed=3)
    r2 = symgrad.check("log(x) * x", x=spec, seed=3)
    r3 = symgrad.check("log(x) * x", x=spec, seed=4)
    assert r1 and r3
    assert essence(r1) == essence(r2)
    assert comparisons(r1)["x"].to_dict() != comparisons(r3)["x"].to_dict()
    assert not symgrad.check("log(x) * x", x=spec, seed=3, backend="api-wrong-all")


def test_mode_expanded_keyword():
    report = symgrad.check(Q, **AB, mode="expanded")
    assert report and report.mode == "expanded"
    assert not symgrad.check(Q, **AB, mode="expanded", backend="api-wrong-b")


def test_reductions_pick_expanded_automatically():
    report = symgrad.check("sum((x - mean(x))**2)", x=[1.0, 2.0, 4.0])
    assert report and report.mode == "expanded"
    assert not symgrad.check("sum((x - mean(x))**2)", x=[1.0, 2.0, 4.0], backend="api-wrong-all")


def test_value_keyword():
    assert symgrad.check("sum(100*x)", x=[1.0, 2.0], value=300.0)
    assert symgrad.check(Q, **AB, value="3*a**3 - b**2")
    bad = symgrad.check("sum(100*x)", x=[1.0, 2.0], value=299.0)
    assert not bad and [c.name for c in bad.failed_comparisons] == ["value (expected)"]


def test_name_keyword_names_the_report():
    assert symgrad.check(Q, **AB, name="my-q").name == "my-q"


def test_inputs_mapping_for_a_name_that_is_a_case_key():
    report = symgrad.check("order * x**2", inputs={"order": [1.0, 2.0]}, x=[3.0, 4.0], order=2)
    assert report, report.table()
    comps = comparisons(report)
    assert {"x,x", "x,order", "order,x", "order,order"} <= set(comps)
    assert comps["x,order"].expected == 6.0  # d/dorder of sum(2*order*x) = 2x; first element x = 3
    with pytest.raises(symgrad.CaseError):  # without inputs=, `order` is the case key
        symgrad.check("order * x**2", order=[1.0, 2.0], x=[3.0, 4.0])
    assert not symgrad.check("order * x**2", inputs={"order": [1.0, 2.0]}, x=[3.0, 4.0], order=2,
                             backend="api-wrong-all")


def test_inputs_mapping_alone():
    assert symgrad.check(Q, inputs={"a": [2.0, 3.0], "b": [6.0, 4.0]})
    assert not symgrad.check(Q, inputs={"a": [2.0, 3.0], "b": [6.0, 4.0]}, backend="api-wrong-b")


def test_skip_and_xfail_keywords():
    assert symgrad.check(Q, **AB, skip="later").status == "skip"
    r = symgrad.check(Q, **AB, xfail="known", backend="api-wrong-b")
    assert r.status == "xfail" and r
    r = symgrad.check(Q, **AB, xfail="known")
    assert r.status == "xpass" and not r
    with pytest.raises(symgrad.GradientMismatch):
        symgrad.assert_gradients(Q, **AB, xfail="known")


def test_make_case_builds_a_validated_case():
    from symgrad.api import make_case

    c = make_case(Q, a=[2.0, 3.0], b=np.array([6.0, 4.0]), order=2, name="mc")
    assert c.name == "mc" and c.order == 2 and c.ir is not None
    assert c.inputs["a"] == [2.0, 3.0] and np.array_equal(c.inputs["b"], [6.0, 4.0])  # arrays pass as they are
    assert symgrad.run_case(c)


# ---------------------------------------------------------------- errors


def test_invalid_expression_raises_case_error_with_column():
    with pytest.raises(symgrad.CaseError) as info:
        symgrad.check("a +* b", a=1.0, b=2.0)
    assert "column 4" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_refused_expression_names_the_token_and_column():
    with pytest.raises(symgrad.CaseError) as info:
        symgrad.assert_gradients("a + b.real", a=1.0, b=2.0)
    text = str(info.value)
    assert "b.real" in text and "column 5" in text


def test_undeclared_name_is_a_case_error():
    with pytest.raises(symgrad.CaseError) as info:
        symgrad.check("a + c", a=1.0)
    assert "c" in str(info.value)


# ---------------------------------------------------------------- serialisation, cases


def test_report_to_dict_is_json_serialisable():
    for report in (symgrad.check(Q, **AB), symgrad.check(Q, **AB, backend="api-wrong-b"),
                   symgrad.check("sqrt(x)", x=[-1.0, 4.0]),
                   symgrad.check("log(x)", x=[-1.0, -2.0])):
        d = report.to_dict()
        text = json.dumps(d)
        back = json.loads(text)
        assert back["status"] == report.status
        assert Report.from_dict(back).table() == report.table()


def test_load_cases_and_run_case(monkeypatch):
    # load_cases on a folder and run_case on what it returns; that every shipped case passes on symgrad
    # and fails on api-wrong-all is test_backends.py's sweep of cases/ (the same two calls, case by case)
    monkeypatch.chdir(ROOT)
    cases = symgrad.load_cases("cases/")
    assert len(cases) >= 8
    assert [c.name for c in cases] == [c.name for c in collect([ROOT / "cases"])[0]]
    tutorial = [c for c in cases if Path(c.file).name == "tutorial.yaml"]
    assert tutorial
    reports = [symgrad.run_case(c) for c in tutorial]
    assert all(reports), "\n\n".join(r.table() for r in reports if not r)
    assert [r.name for r in reports] == [c.name for c in tutorial]
    wrong = [symgrad.run_case(c, backend="api-wrong-all") for c in tutorial]
    assert not any(wrong)
