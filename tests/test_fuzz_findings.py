"""What fuzz runs found in symgrad itself (not in the engines), each with its twin: issue 18's runs, and
the twin fuzzer's (tests/benchmarks/fuzz_twins.py: a passing case must fail once a gradient element moves)."""

from __future__ import annotations

import numpy as np
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


class _OffAt(symgrad.backends.symgrad_tape.SymgradBackend):
    """symgrad's tape with every gradient moved by ``by`` times (1 + |g|) where the input ``at`` equals ``value``
    (as tinygrad's elu'(0) = 0 is wrong only at 0), right everywhere else (inputs of one shape)."""

    name = "off-at"

    def __init__(self, at: str = "x", by: float = 0.01, value: float = 0.0):
        super().__init__()
        self.at, self.by, self.value = at, by, value

    def gradients(self, expr, inputs, wrt, order, grad_output):
        value, grads = super().gradients(expr, inputs, wrt, order, grad_output)
        there = np.asarray(inputs[self.at]) == self.value
        return value, {k: None if g is None else np.where(there, g + self.by * (1 + np.abs(g)), g) for k, g in grads.items()}


# a transpose (any op that only moves values) of a libm value made every element uncertain, so elu's branch
# point at the exact mish(0) = 0 was set aside as "at a kink" wherever a transpose stood above it: an engine
# wrong only there passed (fuzz twins in float32: elu(transpose(mish(transpose(x)))) at zeros); the marks now
# move with the values, and the zeros are compared as without the transpose
@pytest.mark.parametrize("expr", ["elu(transpose(mish(transpose(x))))", "elu(transpose(mish(x)))",
                                  "elu(flip(sin(x), axis=0))", "elu(reshape(mish(x), shape=(3, 2)))"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_moved_values_keep_their_own_kink_marks(expr, dtype):
    data = {"expr": expr, "inputs": {"x": [[0.0, -1.75, 0.0], [0.0, -1.75, 1.0]]}, "dtype": dtype,
            "grad_output": "random"}
    r = run(data)
    assert r.status == "pass", r.table()
    (grad,) = [c for c in r.comparisons if c.name == "x"]
    assert grad.at_kink == 0 and grad.mismatched == 0
    assert run(data, _OffAt()).status == "fail"  # the twin: wrong at the zeros alone


# float32's conditioning slack samples the formula at inputs moved by a rounding error; moving an exact 0 to a
# subnormal flipped sign(y), a change below the 1% that counts as a jump, and the slack it measured let a
# gradient 3e-5 off pass (float32 fuzz twins: expm1(sign(y)@transpose(y)@hypot(atan(x), logsigmoid(y))), widened
# 3070x); an engine given y = 0 never sees that jump, so a move across a kink or jump no longer counts
@pytest.mark.parametrize(("expr", "inputs", "wrt"), [
    ("exp(x*(3.0 + 0.001*sign(y)))", {"x": [1.5, 0.4], "y": [0.0, 0.5]}, "x"),  # elementwise, a jump
    ("exp(3.0*x)*(1.0 + 0.001*relu(y)) + y", {"x": [0.4, 0.4], "y": [0.0, 0.5]}, "y"),  # a kink
    ("expm1(sign(y)@transpose(y)@hypot(atan(x), logsigmoid(y)))",  # expanded, the fuzzer's
     {"y": [[0.25, -2.0, -2.75], [-1.0, 2.25, 0.0]], "x": [[-1.5, 1.5, -2.031384352898356], [-1.75, 3.0, -0.838055030697586]]},
     "x"),
])
def test_a_slack_sample_across_a_jump_does_not_widen(expr, inputs, wrt):
    data = {"expr": expr, "inputs": inputs, "dtype": "float32", "grad_output": "random", "wrt": [wrt]}
    r = run(data)
    assert r.status == "pass", r.table()
    # the twin: 3e-5 off (some 250 float32 ulps, 23 rtols) only where y = 0, where the slack had widened
    assert run(data, _OffAt("y", 3e-5)).status == "fail"


# square and reciprocal were not marked correctly rounded, so a tie with their result (maximum(1/0.5, x) at
# x = 2, maximum(y*y, x) at y = 1.5, x = 2.25) counted as a libm value's and was set aside as at a kink;
# they are one IEEE multiplication or division in every engine, and such ties are compared (MyGrad's
# maximum, which gives a tie no gradient, now fails there: docs/engine-bugs.md)
@pytest.mark.parametrize(("expr", "inputs"), [
    ("maximum(reciprocal(abs(detach(0.0)) + 0.5), x) + 1.0", {"x": [0.0, 2.0, 0.0]}),
    ("maximum(square(y), x)", {"x": [0.0, 2.25, 0.0], "y": [1.0, 1.5, -1.0]}),
])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_tie_with_a_square_or_reciprocal_is_compared(expr, inputs, dtype):
    data = {"expr": expr, "inputs": inputs, "dtype": dtype, "grad_output": "random"}
    r = run(data)
    assert r.status == "pass", r.table()
    assert all(c.at_kink == 0 and c.mismatched == 0 for c in r.comparisons)
    assert run(data, _OffAt("x", value=inputs["x"][1])).status == "fail"  # the twin: wrong at the tie alone


# a selection (maximum, minimum, relu, hardtanh, where) was as uncertain as any of its arguments, so the exact
# value it returned away from its kink (x + 1 = 0 at x = -1, beside a libm sin(x) or exp(x)) counted as a libm
# value, and the kink above it (abs, relu) was set aside there: an engine wrong only at that kink passed.  A
# selection is now as certain as the argument it returns, away from its own kink (or its condition's jump)
_M = "minimum(logaddexp(x, lgamma(5.3264)), floor(x)*hardtanh(-1.3358))"  # returns an exact -0.0 at x = 0


@pytest.mark.parametrize(("expr", "inputs", "at"), [
    ("abs(where(x > 0, sin(x), x + 1.0))", {"x": [-1.0, 0.5, -2.0]}, -1.0),
    ("abs(minimum(exp(x), x + 1.0))", {"x": [-1.0, 0.5, -2.0]}, -1.0),
    ("relu(maximum(sin(x) - 3.0, x + 1.0))", {"x": [-1.0, 0.5, -2.0]}, -1.0),
    ("abs(relu(sin(x)) + x + 1.0)", {"x": [-1.0, 0.5, -2.0]}, -1.0),  # relu's constant 0
    ("abs(hardtanh(exp(x)) + x - 2.0)", {"x": [1.0, 0.5, -2.0]}, 1.0),  # hardtanh's bound 1
    (f"acos({_M}/(abs({_M}) + 1.0)*0.9)", {"x": [0.0, -1.34, 0.0]}, 0.0),  # the twin fuzzer's, float32
])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_selection_returning_an_exact_value_is_compared(expr, inputs, at, dtype):
    data = {"expr": expr, "inputs": inputs, "dtype": dtype, "grad_output": "random"}
    r = run(data)
    assert r.status == "pass", r.table()
    assert all(c.at_kink == 0 and c.mismatched == 0 for c in r.comparisons), r.table()
    assert run(data, _OffAt(value=at, by=1e-3)).status == "fail"  # the twin: wrong at that kink alone


# near its own kink a selection stays uncertain: another libm's sin(1.0) may be an ulp above numpy's, and
# maximum(sin(x) - sin(1.0), 0.0) at x = 1 then returns it, so sign's jump there is still set aside; the
# elements far from the tie, where the exact 0 is returned, are compared (they were set aside too).  A
# number as where's condition is true where it is not 0: another libm may flip it at x = 1, so the exact
# x - 1 = 0 that where returns there is as uncertain as the condition
_NEAR_TIE = "sign(maximum(sin(x) - sin(1.0), 0.0))*x + relu(sin(x) - sin(1.0))"
_NUMBER_CONDITION = "abs(where(sin(x) - sin(1.0), x + 1.0, x - 1.0))"


@pytest.mark.parametrize(("expr", "dtype"), [(_NEAR_TIE, "float64"), (_NEAR_TIE, "float32"),
                                             (_NUMBER_CONDITION, "float64")])  # float32: see below
def test_a_selection_near_a_libm_tie_stays_at_a_kink(expr, dtype):
    data = {"expr": expr, "inputs": {"x": [1.0, 0.5, -2.0]}, "dtype": dtype, "grad_output": "random"}
    r = run(data)
    assert r.status == "pass", r.table()
    (grad,) = [c for c in r.comparisons if c.name == "x"]
    assert grad.at_kink == 1 and grad.mismatched == 0  # x = 1 alone
    assert run(data, _OffAt(value=0.5, by=1e-3)).status == "fail"


# a number as where's condition is a jump at 0 (its truth, c != 0, which the parser and tracing write as a
# not_equal node).  Before, where had no jump of its own there: in float32 the forward's sin(x) - sin(1.0) at
# x = 1 is an ulp from 0 (the literal folded from float64's sin(1.0)) while the exact value is 0, so the tape took
# the other branch and its value was compared, a false FAIL.  Now that value is at a kink; the other elements,
# on either branch, are compared, and a gradient wrong there fails
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("written", ["where(sin(x) - sin(1.0), x + 1.0, x - 1.0)",
                                     "where(~(sin(x) - sin(1.0)) | (x < -3.0), x - 1.0, x + 1.0)"])
def test_a_number_as_where_condition_rounded_across_zero_is_at_a_kink(written, dtype):
    data = {"expr": written, "inputs": {"x": [1.0, 0.5, -2.0]}, "dtype": dtype}
    r = run(data)
    assert r.status == "pass", r.table()
    value = [c for c in r.comparisons if c.name == "value"]
    assert all(c.mismatched == 0 for c in r.comparisons), r.table()
    assert not value or value[0].at_kink <= 1, r.table()  # x = 1 at most
    assert run(data, _OffAt(value=0.5, by=1e-3)).status == "fail"
    assert run(data, _OffAt(value=-2.0, by=1e-3)).status == "fail"


def test_a_number_as_condition_is_its_truth_in_the_ir():
    from symgrad.ir.expr import trace
    from symgrad.ir.parse import parse

    assert str(parse("where(sin(x) - 1.0, x, y)")) == "where(sin(x) - 1.0 != 0.0, x, y)"
    assert str(parse("where(c & (x > 0), x, y)")) == "where(c & (x > 0), x, y)"  # an input is exact: as written
    traced = trace(lambda x, y: symgrad.where(symgrad.sin(x), x, y))
    assert str(traced) == "where(sin(x) != 0.0, x, y)"


# a product with an exact 0 (relu(x)*sin(y + 1) at x < 0, xlogy(0, y)) was as uncertain as its other factor, so
# the kink above it was set aside where another term added an exact 0: an engine wrong only at that kink passed
# (the twin fuzzer: ceil(relu(relu(x)*c)) on torch float32, abs(cbrt(c)*maximum(z, log10(z*z + 1))) on MyGrad)
@pytest.mark.parametrize(("expr", "inputs"), [
    ("abs(relu(x)*sin(y + 1.0) + y)", {"x": [-1.0, 0.5, -2.0], "y": [0.0, 0.3, 0.7]}),
    ("abs(xlogy(x, sin(y + 1.0) + 2.0) + y)", {"x": [0.0, 0.5, 1.5], "y": [0.0, 0.3, -0.7]}),
    ("relu(cbrt(y - 2.0)*maximum(x, 0.0) + y)", {"x": [-1.0, 0.5, -2.0], "y": [0.0, 0.3, 0.7]}),
])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_product_with_an_exact_zero_is_compared(expr, inputs, dtype):
    data = {"expr": expr, "inputs": inputs, "dtype": dtype, "grad_output": "random"}
    r = run(data)
    assert r.status == "pass", r.table()
    assert all(c.at_kink == 0 and c.mismatched == 0 for c in r.comparisons), r.table()
    assert run(data, _OffAt("y", 1e-3)).status == "fail"  # the twin: wrong at that kink alone


# the 0 must be certain itself: sin(y) - sin(1.0) at y = 1 is a libm tie, an ulp from 0 in another engine
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_product_with_a_libm_zero_stays_at_a_kink(dtype):
    data = {"expr": "relu((sin(y) - sin(1.0))*exp(x))", "inputs": {"x": [0.5, 0.5, 1.0], "y": [1.0, 0.5, -2.0]},
            "dtype": dtype, "grad_output": "random"}
    r = run(data)
    assert r.status == "pass", r.table()
    assert [c.at_kink for c in r.comparisons if c.name != "value"] == [1, 1], r.table()  # y = 1 alone, x and y
    assert run(data, _OffAt("y", 1e-3, 0.5)).status == "fail"
