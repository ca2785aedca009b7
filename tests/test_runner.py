"""The runner: one case in, one Report out.

Every check that passes on the default backend has a twin that fails on a
deliberately wrong backend (a registered subclass of the symgrad backend whose
``gradients`` perturbs one gradient) or with a wrong ``expect``/``value``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symgrad
import symgrad.checking.runner
import symgrad.symbolic
from symgrad import backends
from symgrad.backends.base import Backend, Unsupported
from symgrad.backends.symgrad_tape import SymgradBackend
from symgrad.checking.cases import Case, case_from_dict, load_cases
from symgrad.checking.report import Report
from symgrad.checking.runner import Options, run_case

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = load_cases(ROOT / "cases")


# ---------------------------------------------------------------- helpers


class WrongBackend(SymgradBackend):
    """symgrad's tape with one gradient tampered with after the fact.

    ``seq`` picks the gradient (default: the first returned), ``index`` the flat
    element (default: all; "first-finite" for the first finite element, since an
    infinite or undefined one cannot be moved), ``rel``/``add`` the perturbation, ``none`` drops the
    gradient (returns None), ``fn`` replaces it wholesale.
    """

    def __init__(self, name: str = "wrong", seq: tuple[str, ...] | None = None, index: int | None = None,
                 rel: float = 0.0, add: float = 0.0, none: bool = False,
                 fn: Callable[[np.ndarray, dict], np.ndarray] | None = None):
        self.name = name
        self.seq, self.index, self.rel, self.add, self.none, self.fn = seq, index, rel, add, none, fn

    def gradients(self, expr, inputs, wrt, order, grad_output):
        value, grads = super().gradients(expr, inputs, wrt, order, grad_output)
        seq = self.seq if self.seq is not None else next(iter(grads))
        if seq not in grads:  # the runner asks for every order 1..k; ``seq`` is of another order
            return value, grads
        if self.none:
            grads[seq] = None
            return value, grads
        g = grads[seq]
        g = np.zeros(np.shape(inputs[seq[-1]])) if g is None else np.array(g, copy=True)
        if self.fn is not None:
            grads[seq] = self.fn(g, dict(inputs=inputs, grad_output=grad_output))
            return value, grads
        flat = g.reshape(-1)
        sel = slice(None) if self.index is None else self.index
        if self.index == "first-finite":
            sel = int(np.flatnonzero(np.isfinite(flat))[0])
        flat[sel] = flat[sel] * (1 + self.rel) + self.add
        grads[seq] = flat.reshape(g.shape)
        return value, grads

    def jvp(self, expr, inputs, wrt, tangents):  # forward mode (mode_ad cases): the JVP tampered alike
        value, jt = super().jvp(expr, inputs, wrt, tangents)
        flat = np.array(jt, copy=True).reshape(-1)
        sel = slice(None) if self.index is None else self.index
        if self.index == "first-finite":
            sel = int(np.flatnonzero(np.isfinite(flat))[0])
        flat[sel] = flat[sel] * (1 + self.rel) + self.add
        return value, flat.reshape(np.shape(jt))


class RaisingBackend(Backend):
    name = "raising"

    def __init__(self, exc: BaseException):
        self.exc = exc

    def gradients(self, expr, inputs, wrt, order, grad_output):
        raise self.exc


def case(**data: Any) -> Case:
    data.setdefault("name", "c")
    return case_from_dict(data)


def by_name(report: Report) -> dict:
    return {c.name: c for c in report.comparisons}


TUTORIAL = dict(expr="3*a**3 - b**2", inputs={"a": [2.0, 3.0], "b": [6.0, 4.0]})


# ---------------------------------------------------------------- shipped cases


def test_shipped_cases_exist():
    names = {c.name for c in SHIPPED}
    assert {"tutorial-Q", "tutorial-loss"} <= names
    assert len(SHIPPED) >= 8


@pytest.mark.parametrize("c", SHIPPED, ids=[c.name for c in SHIPPED])
def test_shipped_case_passes(c):
    report = run_case(c)
    assert report.status == "pass", report.table()
    assert report
    assert report.comparisons and all(comp.passed for comp in report.comparisons)
    assert report.mode in ("elementwise", "expanded")
    assert report.file and report.file.endswith(".yaml")


@pytest.mark.parametrize("c", SHIPPED, ids=[c.name for c in SHIPPED])
def test_shipped_case_fails_on_a_wrong_gradient(c):
    wrong = WrongBackend("wrong-first-element", index="first-finite", add=0.01)
    report = run_case(c, backend=wrong)
    assert report.status == "fail", report.table()
    assert not report
    assert report.backend == "wrong-first-element"
    failed = report.failed_comparisons
    assert failed and all(comp.mismatched == 1 for comp in failed)


def test_tutorial_q_values():
    report = run_case(next(c for c in SHIPPED if c.name == "tutorial-Q"))
    comps = by_name(report)
    assert set(comps) == {"value", "a", "b", "expect a", "expect b"}
    assert comps["a"].formula == "9*a**2" and comps["b"].formula == "-2*b"
    assert "proved equal" in comps["expect a"].note and "proved equal" in comps["expect b"].note


# ---------------------------------------------------------------- statuses


def test_skip_key_gives_skip_without_running():
    r = run_case(case(**TUTORIAL, skip="not today"), backend=RaisingBackend(RuntimeError("must not run")))
    assert r.status == "skip" and r.reason == "not today"
    assert r and r.comparisons == []


def test_xfail_with_a_failing_case_is_xfail():
    c = case(**TUTORIAL, expect={"b": "-3*b"}, xfail="known bad expect")
    r = run_case(c)
    assert r.status == "xfail"
    assert r  # an expected failure is fine
    assert r.reason == "known bad expect"
    assert [comp.name for comp in r.failed_comparisons] == ["expect b"]


def test_xfail_with_a_failing_backend_is_xfail():
    r = run_case(case(**TUTORIAL, xfail="backend bug #1"), backend=WrongBackend(rel=0.5))
    assert r.status == "xfail" and r


def test_xfail_with_a_passing_case_is_xpass_and_falsy():
    r = run_case(case(**TUTORIAL, xfail="known bad"))
    assert r.status == "xpass"
    assert not r
    assert r.reason == "known bad"


def test_unsupported_op_in_backend_is_a_skip():
    r = run_case(case(**TUTORIAL), backend=RaisingBackend(Unsupported("op erf")))
    assert r.status == "skip" and r
    assert "raising" in r.reason and "op erf" in r.reason


# ---------------------------------------------------------------- error isolation


def test_exception_in_backend_is_an_error_with_one_line_reason_and_traceback():
    r = run_case(case(**TUTORIAL), backend=RaisingBackend(RuntimeError("boom\n  second line\n")))
    assert r.status == "error" and not r
    assert r.reason == "RuntimeError: boom second line"
    assert "\n" not in r.reason
    assert r.traceback.startswith("Traceback") and "RuntimeError: boom" in r.traceback
    assert "gradients" in r.traceback  # points into the backend
    # the next case runs normally
    nxt = run_case(case(**TUTORIAL))
    assert nxt.status == "pass", nxt.table()


def test_exception_with_empty_message():
    r = run_case(case(**TUTORIAL), backend=RaisingBackend(KeyError()))
    assert r.status == "error" and r.reason.startswith("KeyError")
    assert "\n" not in r.reason


def test_recursion_error_is_isolated():
    r = run_case(case(**TUTORIAL), backend=RaisingBackend(RecursionError("too deep")))
    assert r.status == "error" and r.reason == "RecursionError: too deep"


def test_exception_in_symbolic_step_is_an_error(monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("sympy fell over\nat line 2")

    monkeypatch.setattr(symgrad.checking.runner, "differentiate", broken)
    r = run_case(case(**TUTORIAL))
    assert r.status == "error" and r.reason == "ZeroDivisionError: sympy fell over at line 2"
    assert "sympy fell over" in r.traceback
    monkeypatch.undo()
    assert run_case(case(**TUTORIAL)).status == "pass"


def test_error_in_a_loop_does_not_stop_the_others():
    registered = "raising-in-loop"
    backends.register(registered, RaisingBackend(ValueError("nope")))
    cs = [case(name="first", **TUTORIAL), case(name="second", **TUTORIAL)]
    reports = [run_case(cs[0], backend=registered), run_case(cs[1])]
    assert [r.status for r in reports] == ["error", "pass"]
    assert "ERROR first: ValueError: nope" in reports[0].table()


def test_xfail_does_not_hide_an_error():
    r = run_case(case(**TUTORIAL, xfail="whatever"), backend=RaisingBackend(RuntimeError("x")))
    assert r.status == "error"


# ---------------------------------------------------------------- expect


def test_expect_expression_proved_equal():
    r = run_case(case(**TUTORIAL, expect={"a": "9*a**2", "b": "-2*b"}))
    assert r.status == "pass", r.table()
    comps = by_name(r)
    assert comps["expect a"].passed and comps["expect a"].note == "proved equal to sympy's derivative"
    assert comps["expect a"].formula == "9*a**2"


def test_expect_expression_proved_equal_in_another_form():
    r = run_case(case(expr="sin(x)**2", inputs={"x": [0.3, 1.1]}, expect={"x": "sin(2*x)"}))
    assert r.status == "pass", r.table()
    assert by_name(r)["expect x"].note == "proved equal to sympy's derivative"


def test_expect_wrong_expression_fails_and_is_proved_different():
    r = run_case(case(**TUTORIAL, expect={"a": "9*a**2", "b": "-3*b"}))
    assert r.status == "fail"
    comps = by_name(r)
    bad = comps["expect b"]
    assert not bad.passed and bad.mismatched == 2
    assert "proved DIFFERENT" in bad.note
    assert comps["expect a"].passed and comps["b"].passed  # the tape itself is right
    assert bad.actual == -12.0 and bad.expected == -18.0


def test_expect_wrong_formula_equal_at_the_inputs_is_flagged():
    # 1.5*a**3 == 3*a**2 at a = 2 only
    r = run_case(case(expr="a**3", inputs={"a": [2.0, 2.0]}, expect={"a": "1.5*a**3"}))
    note = by_name(r)["expect a"].note
    assert "proved DIFFERENT" in note and "equal at these inputs" in note


def test_expect_literal():
    r = run_case(case(**TUTORIAL, expect={"a": [36.0, 81.0], "b": [-12.0, -8.0]}))
    assert r.status == "pass", r.table()
    assert by_name(r)["expect a"].formula == "literal"


def test_expect_wrong_literal_fails():
    r = run_case(case(**TUTORIAL, expect={"a": [36.0, 80.0]}))
    assert r.status == "fail"
    bad = by_name(r)["expect a"]
    assert bad.mismatched == 1 and bad.worst_index == (1,)
    assert bad.actual == 81.0 and bad.expected == 80.0


def test_expect_scalar_literal_broadcasts():
    r = run_case(case(expr="sum(100*x)", inputs={"x": [1.0, 2.0]}, expect={"x": 100}))
    assert r.status == "pass", r.table()
    r = run_case(case(expr="sum(100*x)", inputs={"x": [1.0, 2.0]}, expect={"x": 10}))
    assert r.status == "fail"


def test_expect_catches_a_wrong_backend_even_without_a_symbolic_mismatch_row():
    r = run_case(case(**TUTORIAL, wrt=["a"], expect={"a": "9*a**2"}), backend=WrongBackend(seq=("a",), rel=0.01))
    assert r.status == "fail"
    assert {c.name for c in r.failed_comparisons} == {"a", "expect a"}


def test_expect_with_grad_output_is_checked_at_the_inputs_only():
    c = case(**TUTORIAL, grad_output=[0.5, 2.0], expect={"a": "4.5*a**2 * (a - 1)"})
    # at a = [2, 3]: 4.5*4*1 = 18 = 9*4*0.5 and 4.5*9*2 = 81 != 162 -> fails
    r = run_case(c)
    assert r.status == "fail"
    assert "checked at the inputs" in by_name(r)["expect a"].note
    ok = run_case(case(**TUTORIAL, grad_output=[0.5, 2.0], expect={"a": [18.0, 162.0]}))
    assert ok.status == "pass", ok.table()


def test_expect_formula_of_a_wider_input_for_a_broadcast_input_fails_not_errors():
    r = run_case(case(expr="a*b", inputs={"a": [2.0], "b": [1.0, 2.0]}, expect={"a": "b"}))
    assert r.status == "fail", r.table()
    assert "shape" in by_name(r)["expect a"].note


def test_expect_at_order_two_is_the_first_order_gradient():
    c = case(expr="a**3", inputs={"a": [2.0, 3.0]}, order=2, expect={"a": "3*a**2"})
    r = run_case(c)
    assert r.status == "pass", r.table()
    comps = by_name(r)
    assert "a,a" in comps and comps["a,a"].formula == "6*a"
    assert "first-order" in comps["expect a"].note and "proved equal" in comps["expect a"].note
    wrong = run_case(case(expr="a**3", inputs={"a": [2.0, 3.0]}, order=2, expect={"a": "6*a"}))
    assert wrong.status == "fail"
    assert "proved DIFFERENT" in by_name(wrong)["expect a"].note


def test_expect_in_expanded_mode_says_not_proved():
    r = run_case(case(expr="sum(x*x)", inputs={"x": [1.0, 2.0]}, mode="expanded", expect={"x": "2*x"}))
    assert r.status == "pass" and r.mode == "expanded"
    assert "not proved" in by_name(r)["expect x"].note
    r = run_case(case(expr="sum(x*x)", inputs={"x": [1.0, 2.0]}, mode="expanded", expect={"x": "3*x"}))
    assert r.status == "fail"


# ---------------------------------------------------------------- value


def test_value_literal():
    r = run_case(case(expr="sum(100*x)", inputs={"x": [1.0, 2.0]}, value=300.0))
    assert r.status == "pass", r.table()
    assert by_name(r)["value (expected)"].expected == 300.0


def test_value_literal_wrong_fails():
    r = run_case(case(expr="sum(100*x)", inputs={"x": [1.0, 2.0]}, value=301.0))
    assert r.status == "fail"
    assert [c.name for c in r.failed_comparisons] == ["value (expected)"]


def test_value_expression():
    r = run_case(case(**TUTORIAL, value="3*a**3 - b**2"))
    assert r.status == "pass", r.table()
    r = run_case(case(**TUTORIAL, value="3*a**3 + b**2"))
    assert r.status == "fail"
    bad = by_name(r)["value (expected)"]
    assert bad.mismatched == 2


def test_value_list_literal():
    r = run_case(case(**TUTORIAL, value=[-12.0, 65.0]))
    assert r.status == "pass", r.table()
    r = run_case(case(**TUTORIAL, value=[-12.0, 66.0]))
    assert r.status == "fail"


def test_forward_value_is_compared_with_sympy():
    def wrong_value(expr, inputs, wrt, order, grad_output):
        value, grads = SymgradBackend().gradients(expr, inputs, wrt, order, grad_output)
        return value + 1.0, grads

    b = SymgradBackend()
    b.gradients = wrong_value  # type: ignore[method-assign]
    r = run_case(case(**TUTORIAL), backend=b)
    assert r.status == "fail"
    assert [c.name for c in r.failed_comparisons] == ["value"]


# ---------------------------------------------------------------- grad_output, broadcasting, order 2


def test_grad_output_scales_the_reference():
    c = case(**TUTORIAL, grad_output=[0.5, 2.0])
    r = run_case(c)
    assert r.status == "pass", r.table()
    # a backend that ignores grad_output (backward with ones) must fail
    ignoring = WrongBackend("ignores-grad-output", seq=("a",),
                            fn=lambda g, ctx: 9 * ctx["inputs"]["a"] ** 2)
    bad = run_case(c, backend=ignoring)
    assert bad.status == "fail"
    a = by_name(bad)["a"]
    assert a.mismatched == 2 and a.worst_index == (0,)  # 36 vs 18 is the larger error per tolerance
    assert a.actual == 36.0 and a.expected == 18.0


def test_grad_output_scalar_broadcasts():
    c = case(**TUTORIAL, grad_output=3.0, expect={"a": [108.0, 243.0]})
    assert run_case(c).status == "pass"


def test_broadcast_input_gradient_is_summed_back():
    c = case(expr="a * b", inputs={"a": [[2.0]], "b": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]},
             expect={"a": [[21.0]], "b": 2.0})
    r = run_case(c)
    assert r.status == "pass", r.table()
    comps = by_name(r)
    assert comps["a"].shape == (1, 1) and comps["a"].expected == 21.0
    assert comps["b"].shape == (2, 3)


def test_broadcast_gradient_not_summed_back_fails():
    c = case(expr="a * b", inputs={"a": 2.0, "b": [1.0, 2.0, 3.0]})
    unsummed = WrongBackend("no-unbroadcast", seq=("a",), fn=lambda g, ctx: np.array(ctx["inputs"]["b"]))
    r = run_case(c, backend=unsummed)
    assert r.status == "fail"
    a = by_name(r)["a"]
    assert "shape" in a.note and a.mismatched >= 1


def test_order_two_mixed_partials():
    c = case(expr="a * b * sin(a)", inputs={"a": 0.5, "b": 2.0}, order=2)
    r = run_case(c)
    assert r.status == "pass", r.table()
    comps = by_name(r)
    assert set(comps) == {"value", "a", "b", "a,a", "a,b", "b,a", "b,b"}  # order 2 checks order 1 too
    a, b = 0.5, 2.0
    assert comps["a,b"].expected == pytest.approx(math.sin(a) + a * math.cos(a))
    assert comps["b,a"].expected == pytest.approx(math.sin(a) + a * math.cos(a))
    assert comps["a,a"].expected == pytest.approx(b * (2 * math.cos(a) - a * math.sin(a)))
    assert comps["b,b"].expected == 0.0


def test_order_two_wrong_mixed_partial_fails_alone():
    c = case(expr="a * b * sin(a)", inputs={"a": [0.5, 1.5], "b": [2.0, -1.0]}, order=2)
    r = run_case(c, backend=WrongBackend(seq=("a", "b"), index=1, rel=1e-4))
    assert r.status == "fail"
    assert [x.name for x in r.failed_comparisons] == ["a,b"]
    assert r.failed_comparisons[0].worst_index == (1,)


def test_order_three():
    c = case(expr="x**4", inputs={"x": 2.0}, order=3)
    r = run_case(c)
    assert r.status == "pass", r.table()
    assert by_name(r)["x,x,x"].expected == 48.0
    assert run_case(c, backend=WrongBackend(rel=1e-3)).status == "fail"


def test_wrt_restricts_the_checked_inputs():
    r = run_case(case(**TUTORIAL, wrt=["b"]))
    assert [c.name for c in r.comparisons] == ["value", "b"]
    assert run_case(case(**TUTORIAL, wrt=["b"]), backend=WrongBackend(seq=("b",), add=1.0)).status == "fail"


# ---------------------------------------------------------------- undefined elements


def test_undefined_elements_are_counted_not_failed():
    c = case(expr="sqrt(x)", inputs={"x": [-1.0, 4.0]})
    r = run_case(c)
    assert r.status == "pass", r.table()
    x = by_name(r)["x"]
    assert x.undefined == 1 and x.mismatched == 0 and x.defined == 1
    assert x.worst_index == (1,)
    assert "undefined" in r.table()


def test_undefined_element_perturbed_still_not_compared_but_defined_one_is():
    c = case(expr="sqrt(x)", inputs={"x": [-1.0, 4.0]})
    at_undefined = run_case(c, backend=WrongBackend(seq=("x",), fn=lambda g, ctx: np.array([123.0, g[1]])))
    assert at_undefined.status == "pass"
    assert by_name(at_undefined)["x"].undefined == 1
    at_defined = run_case(c, backend=WrongBackend(seq=("x",), index=1, add=0.1))
    assert at_defined.status == "fail"
    x = by_name(at_defined)["x"]
    assert x.undefined == 1 and x.mismatched == 1


def test_undefined_from_kink_product():
    # d/dx sqrt(abs(x)) at 0 is sign(0) * inf: undefined, while x = 4 is compared
    r = run_case(case(expr="sqrt(abs(x))", inputs={"x": [0.0, 4.0]}))
    assert r.status == "pass", r.table()
    assert by_name(r)["x"].undefined == 1


# ---------------------------------------------------------------- float32 and tolerances


def test_float32_uses_float32_tolerances():
    c = case(**TUTORIAL, dtype="float32")
    r = run_case(c)
    assert r.status == "pass", r.table()
    assert {(x.rtol, x.atol) for x in r.comparisons} == {(1.3e-6, 1e-5)}


def test_float32_tolerance_admits_what_float64_refuses():
    slightly = WrongBackend(seq=("a",), rel=5e-7)
    assert run_case(case(**TUTORIAL, dtype="float32"), backend=slightly).status == "pass"
    assert run_case(case(**TUTORIAL), backend=slightly).status == "fail"
    assert run_case(case(**TUTORIAL, dtype="float32"), backend=WrongBackend(seq=("a",), rel=1e-4)).status == "fail"


def test_float64_default_tolerances():
    r = run_case(case(**TUTORIAL))
    assert {(x.rtol, x.atol) for x in r.comparisons} == {(1e-7, 1e-7)}


def test_options_rtol_override():
    c = case(**TUTORIAL)
    wrong = WrongBackend(seq=("a",), rel=1e-5)
    assert run_case(c, backend=wrong).status == "fail"
    r = run_case(c, options=Options(backend=wrong, rtol=1e-4))
    assert r.status == "pass", r.table()
    assert {x.rtol for x in r.comparisons} == {1e-4}
    # keyword overrides do the same
    assert run_case(c, backend=wrong, rtol=1e-4).status == "pass"


def test_options_atol_override():
    c = case(expr="x - x0", inputs={"x": [0.0, 1.0], "x0": 0.0}, wrt=["x"])
    wrong = WrongBackend(seq=("x",), add=1e-3)
    assert run_case(c, backend=wrong).status == "fail"
    r = run_case(c, options=Options(backend=wrong, atol=1e-2))
    assert r.status == "pass", r.table()
    assert {x.atol for x in r.comparisons} == {1e-2}


def test_options_override_the_case_tolerances():
    c = case(**TUTORIAL, rtol="1e-4")  # YAML 1.1 reads 1e-4 as a string
    wrong = WrongBackend(seq=("a",), rel=1e-5)
    assert run_case(c, backend=wrong).status == "pass"
    assert run_case(c, backend=wrong, rtol=1e-7).status == "fail"


def test_options_dtype_override():
    r = run_case(case(**TUTORIAL), options=Options(dtype="float32"))
    assert r.status == "pass", r.table()
    assert {(x.rtol, x.atol) for x in r.comparisons} == {(1.3e-6, 1e-5)}


# ---------------------------------------------------------------- backend returning None


def test_backend_returning_none_for_an_input_on_the_graph_fails():
    r = run_case(case(**TUTORIAL), backend=WrongBackend("drops-a", seq=("a",), none=True))
    assert r.status == "fail"
    a = by_name(r)["a"]
    assert a.mismatched == 2
    assert a.note == "the backend returned no gradient (None) for an input on the graph"
    assert by_name(r)["b"].passed


def test_none_for_an_input_off_the_graph_is_zero():
    c = case(expr="2*a", inputs={"a": [1.0, 2.0], "b": [3.0, 4.0]})
    r = run_case(c)
    assert r.status == "pass", r.table()
    assert by_name(r)["b"].expected == 0.0
    # forcing None on the unused input changes nothing
    assert run_case(c, backend=WrongBackend(seq=("b",), none=True)).status == "pass"
    # a nonzero gradient for it is wrong
    assert run_case(c, backend=WrongBackend(seq=("b",), add=1.0)).status == "fail"


def test_detach_gives_no_gradient_through_it():
    c = case(expr="x * detach(x)", inputs={"x": [1.0, 2.0, 3.0]}, expect={"x": "x"})
    assert run_case(c).status == "pass"
    doubled = WrongBackend(seq=("x",), fn=lambda g, ctx: 2 * ctx["inputs"]["x"])  # ignores the detach
    r = run_case(c, backend=doubled)
    assert r.status == "fail"
    assert {x.name for x in r.failed_comparisons} == {"x", "expect x"}


# ---------------------------------------------------------------- report fields


def test_report_fields():
    c = case(**TUTORIAL)
    r = run_case(c)
    assert r.name == "c" and r.expr == "3*a**3 - b**2" and r.backend == "symgrad"
    assert r.mode == "elementwise" and r.duration >= 0
    assert run_case(case(expr="sum(x) * x", inputs={"x": [1.0, 2.0]})).mode == "expanded"


def test_registered_backend_by_name():
    backends.register("wrong-b-runner", WrongBackend("wrong-b-runner", seq=("b",), index=1, add=0.5))
    r = run_case(case(**TUTORIAL), backend="wrong-b-runner")
    assert r.status == "fail" and r.backend == "wrong-b-runner"
    assert [x.name for x in r.failed_comparisons] == ["b"]
    assert r.failed_comparisons[0].worst_index == (1,)


def test_unknown_backend_is_an_error():
    r = run_case(case(**TUTORIAL), backend="no-such-backend")
    assert r.status == "error" and "no-such-backend" in r.reason


def test_value_expression_of_the_wrong_shape_fails_not_errors():
    r = run_case(case(expr="sum(100*x)", inputs={"x": [1.0, 2.0]}, value="100*x"))
    assert r.status == "fail", r.table()
    assert "shape" in by_name(r)["value (expected)"].note
    assert run_case(case(expr="sum(100*x)", inputs={"x": [1.0, 2.0]}, value="sum(100*x)")).status == "pass"
