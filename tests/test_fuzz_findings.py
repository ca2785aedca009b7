"""What the issue-18 fuzz runs found in symgrad itself (not in the engines), each with its twin."""

from __future__ import annotations

import perturbed  # noqa: F401  (registers api-wrong-all, the twins' engine)
import pytest

import symgrad
from symgrad.checking.cases import case_from_dict
from symgrad.checking.runner import run_case


def run(data: dict, backend: str = "symgrad"):
    return run_case(case_from_dict({"name": "c", **data}), backend)


# elu, selu and leaky_relu change branch at 0: a float forward rounded onto 0 while the exact value is
# just above it (logit(0.9*sigmoid(0) + 0.05) is 2.3e-16 exactly, 0.0 in float64) is at a kink, not a
# mismatch (the fuzzer's false alarm on mygrad: selu(logit(0.9*sigmoid(x) + 0.05)) at x = 0)
@pytest.mark.parametrize("op", ["selu", "elu", "leaky_relu"])
def test_rounding_onto_a_branch_point_is_a_kink(op):
    r = run({"expr": f"{op}(logit(0.9*sigmoid(x) + 0.05))", "inputs": {"x": [0.0, 1.0]}})
    assert r.status == "pass", r.table()
    (grad,) = [c for c in r.comparisons if c.name == "x"]
    assert grad.at_kink == 1 and grad.mismatched == 0
    # its twin: a wrong expectation at the element off the kink still fails
    bad = run({"expr": f"{op}(logit(0.9*sigmoid(x) + 0.05))", "inputs": {"x": [0.0, 1.0]}, "expect": {"x": [0.0, 0.0]}})
    assert bad.status == "fail"


def test_tinygrad_transposes_a_0d_tensor():
    try:
        symgrad.backends.get("tinygrad")
    except symgrad.backends.BackendUnavailable as exc:
        pytest.skip(str(exc))
    r = run({"expr": "transpose(x) * x", "inputs": {"x": 0.5}}, "tinygrad")
    assert r.status == "pass", r.reason
    assert run({"expr": "transpose(x) * x", "inputs": {"x": 0.5}, "expect": {"x": 0.5}}, "tinygrad").status == "fail"


# symgrad's piecewise-constant functions and detach were sympy functions of unknown reality, so the
# condition of elu's Piecewise around cbrt(exp(floor(x))) (exp(floor_(x)) >= 0) sent sympy's periodicity
# into endless recursion: a RecursionError after 7 s on every backend (fuzz --seed 31 on torch found it)
# (times x: a gradient the tape computes, which the twin's engine can move; of the flat part alone it gives none)
@pytest.mark.parametrize("inner", ["elu(cbrt(exp(floor(x))))", "elu(cbrt(exp(ceil(x))))", "elu(cbrt(exp(round(x))))",
                                   "elu(cbrt(exp(detach(x))))", "sign(sign(sign(elu(cbrt(exp(floor(x)))))))"])
def test_a_piecewise_around_a_flat_function_is_built(inner):
    data = {"expr": f"{inner} * x", "inputs": {"x": [0.0, 0.7, -1.3]}, "grad_output": "random"}
    r = run(data)
    assert r.status == "pass", r.reason or r.table()
    assert r.comparisons and all(c.mismatched == 0 for c in r.comparisons)
    assert run(data, "api-wrong-all").status == "fail"  # the twin: every gradient moved by 1%


# sympy's NumPyPrinter ran simplify_logic on a Piecewise condition holding an ITE (here from minimum's
# tie rule around sign(x)), whose simplify of the relationals raised "TypeError: Invalid NaN comparison";
# symgrad prints the ITE as logic itself (fuzz --seed 31 on torch found it)
HYPOT = "hypot(acos(sign(x)/(abs(sign(x)) + 1.0)*0.9), minimum(x, x/(softplus(transpose(exp(softsign(x)))) + 0.1)))"


def test_a_condition_holding_an_if_then_else_is_printed_without_simplify():
    data = {"expr": HYPOT, "inputs": {"x": [0.3, -0.4, 1.2, 0.0]}, "grad_output": "random"}
    r = run(data)
    assert r.status == "pass", r.reason or r.table()
    assert run(data, "api-wrong-all").status == "fail"
    # the fuzzer's inputs, all at minimum's tie x == x/(...) == 0: classified, not a crash of the printer
    at_tie = run({**data, "inputs": {"x": [0.0, 0.0, 0.0]}})
    assert at_tie.status == "error" and at_tie.reason.startswith("nothing compared: every defined element at a kink")


# std of one element: expanded mode keeps sympy from distributing, so (x - 1) - mean(x - 1) did not cancel and
# std's sqrt of it recursed endlessly (fuzz --seed 32 on autograd: std(x - 1.0) at a scalar x)
@pytest.mark.parametrize(("expr", "x"), [
    ("std(x - 1.0) + x", 0.0), ("std(x - 1.0) + x", [0.0]), ("var(x - 1.0) + x", 0.0),
    ("std(x - 1.0, axis=1) * x", [[0.0], [2.0]]),  # a row of one element each
])
def test_the_deviation_of_one_element_is_zero(expr, x):
    data = {"expr": expr, "inputs": {"x": x}, "grad_output": "random"}
    r = run(data)
    assert r.status == "pass", r.reason or r.table()
    assert run(data, "api-wrong-all").status == "fail"


# no degree of freedom left (ddof = n): the tape divided by a Python 0.0 and raised ZeroDivisionError; it now
# gives inf as numpy and torch do, and the case is classified as every engine's is: nothing defined to compare
@pytest.mark.parametrize("expr", ["std(x, ddof=1)", "var(x - 1.0, ddof=1)"])
def test_no_degree_of_freedom_is_classified_not_a_crash(expr):
    r = run({"expr": expr, "inputs": {"x": [0.5]}})
    assert r.status == "error" and r.reason.startswith("nothing compared"), r.reason


# abs'(0) = 0 (torch's convention) through the chain rule at order 2: sympy turned Abs(x)**2 into x**2, so the
# reference's square(abs(x))'' at 0 was 2 and symgrad's own tape (0, as torch's) FAILed (fuzz --seed 51, order 2:
# square(copysign(x, abs(x) + 0.5))); abs now stays whole in the reference
@pytest.mark.parametrize("expr", ["square(abs(x))", "abs(x)**2", "abs(x)*abs(x)", "square(copysign(x, abs(x) + 0.5))"])
def test_abs_convention_holds_at_order_two(expr):
    data = {"expr": expr, "inputs": {"x": [0.0, 0.5, -0.7]}, "order": 2}
    r = run(data)
    assert r.status == "pass", r.table()
    (second,) = [c for c in r.comparisons if c.name == "x,x"]
    assert second.mismatched == 0 and second.at_kink == 0  # compared at 0, not classified away
    assert run(data, "api-wrong-all").status == "fail"
    # the convention is the one compared: d2/dx2 = 2 at 0 (the limit, which JAX gives) is a mismatch
    assert run({**data, "expect": {"x,x": [2.0, 2.0, 2.0]}}).status == "fail"


def test_abs_convention_at_order_two_on_torch():
    pytest.importorskip("torch")
    assert run({"expr": "square(abs(x))", "inputs": {"x": [0.0, 0.5, -0.7]}, "order": 2}, "torch").status == "pass"
