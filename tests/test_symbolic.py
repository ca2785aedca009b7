"""The symbolic engine: sympy derivatives of the IR evaluated at the inputs.

Each expected value is a hand formula or plain numpy math; most tests also
check that a plausible wrong answer would *not* match (the "twin"), so a
broken engine cannot pass by accident.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy

from symgrad import ops
from symgrad.ir.expr import Const, Var
from symgrad.ir.limits import LimitExceeded, Limits
from symgrad.symbolic import (
    Derivative,
    SymbolicResult,
    choose_mode,
    differentiate,
    prove_equal,
    to_sympy,
)
from symgrad.symbolic.engine import _elementwise_plan

a, b, x, y, z = (Var(n) for n in "abxyz")
A, B = Var("A"), Var("B")


def grad(result: SymbolicResult, *names: str) -> np.ndarray:
    return result.derivatives[tuple(names)].value


def differs(actual: np.ndarray, wrong: np.ndarray) -> bool:
    return not np.allclose(actual, wrong, equal_nan=True)


# ---------------------------------------------------------------- tutorial and basics


def test_tutorial_q() -> None:
    r = differentiate(3 * a**3 - b**2, {"a": [2.0, 3.0], "b": [6.0, 4.0]}, ["a", "b"])
    assert r.mode == "elementwise"
    np.testing.assert_array_equal(r.value, [-12.0, 65.0])
    np.testing.assert_array_equal(grad(r, "a"), [36.0, 81.0])
    np.testing.assert_array_equal(grad(r, "b"), [-12.0, -8.0])
    assert r.derivatives[("a",)].formula == "9*a**2"
    assert r.derivatives[("b",)].formula == "-2*b"
    assert isinstance(r.derivatives[("a",)], Derivative)
    assert r.derivatives[("a",)].sympy_expr == 9 * sympy.Symbol("a", real=True) ** 2
    # twins: the wrong formulas 3*a**2 and -b give other values
    assert differs(grad(r, "a"), 3 * np.array([2.0, 3.0]) ** 2)
    assert differs(grad(r, "b"), -np.array([6.0, 4.0]))


def test_sum_of_scaled_input() -> None:
    r = differentiate(ops.sum(100 * x), {"x": [1.0, 2.0]}, ["x"])
    assert r.mode == "elementwise" and r.value.shape == ()
    assert float(r.value) == 300.0
    np.testing.assert_array_equal(grad(r, "x"), [100.0, 100.0])
    assert differs(grad(r, "x"), [1.0, 2.0])


def test_grad_output_multiplies() -> None:
    g = np.array([0.1, 1.0, 0.0001])
    r = differentiate(x * 2, {"x": [1.0, 2.0, 3.0]}, ["x"], grad_output=g)
    np.testing.assert_allclose(grad(r, "x"), 2 * g)
    assert differs(grad(r, "x"), [2.0, 2.0, 2.0])


def test_grad_output_in_expanded_mode() -> None:
    zv = np.array([0.3, -1.2, 2.0, 0.5])
    g = np.array([1.0, -2.0, 0.5, 3.0])
    r = differentiate(ops.exp(z) / ops.sum(ops.exp(z)), {"z": zv}, ["z"], grad_output=g)
    assert r.mode == "expanded"
    s = np.exp(zv) / np.exp(zv).sum()
    np.testing.assert_allclose(r.value, s)
    np.testing.assert_allclose(grad(r, "z"), s * (g - (g * s).sum()))  # softmax VJP
    assert differs(grad(r, "z"), s * (1 - s) * g)  # the diagonal of the Jacobian only


def test_broadcast_input_summed_back() -> None:
    xv = np.arange(12.0).reshape(3, 4)
    yv = np.array([1.0, -2.0, 0.5, 3.0])
    r = differentiate(x * y, {"x": xv, "y": yv}, ["x", "y"])
    assert grad(r, "y").shape == (4,) and grad(r, "x").shape == (3, 4)
    np.testing.assert_array_equal(grad(r, "y"), xv.sum(axis=0))
    np.testing.assert_array_equal(grad(r, "x"), np.broadcast_to(yv, (3, 4)))
    assert differs(grad(r, "y"), xv[0])


def test_broadcast_keepdim_axis_summed_back() -> None:
    xv = np.arange(6.0).reshape(2, 3)
    yv = np.array([[2.0], [3.0]])
    r = differentiate(x**2 * y, {"x": xv, "y": yv}, ["y"])
    np.testing.assert_array_equal(grad(r, "y"), (xv**2).sum(axis=1, keepdims=True))


def test_constant_derivatives_are_full_shaped() -> None:
    r = differentiate(2 * x + y, {"x": np.ones((2, 3)), "y": np.ones(3)}, ["x", "y"])
    np.testing.assert_array_equal(grad(r, "x"), np.full((2, 3), 2.0))
    np.testing.assert_array_equal(grad(r, "y"), np.full(3, 2.0))  # summed over 2 rows
    r = differentiate(Const(3.0) + 0 * y, {"x": np.ones(4), "y": np.ones(2)}, ["x"])
    np.testing.assert_array_equal(grad(r, "x"), np.zeros(4))  # x is not in the expression


def test_detach_has_zero_derivative() -> None:
    r = differentiate(ops.detach(x) * x, {"x": [2.0, -3.0]}, ["x"])
    np.testing.assert_array_equal(grad(r, "x"), [2.0, -3.0])
    assert differs(grad(r, "x"), [4.0, -6.0])  # 2*x if detach were ignored
    r = differentiate(ops.sum(ops.detach(x) * x, axis=0), {"x": [2.0, -3.0]}, ["x"])
    assert r.mode == "expanded"
    np.testing.assert_array_equal(grad(r, "x"), [2.0, -3.0])


def test_float_constants_are_exact() -> None:
    r = differentiate(x * (1 / 3), {"x": [1.0, 2.0]}, ["x"])
    assert grad(r, "x")[0] == 1 / 3  # not 0.333333333333333 (sympy prints 15 digits)


# ---------------------------------------------------------------- conventions at kinks


def test_relu_and_abs_at_zero() -> None:
    xv = [-1.0, 0.0, 2.0]
    r = differentiate(ops.relu(x), {"x": xv}, ["x"])
    np.testing.assert_array_equal(grad(r, "x"), [0.0, 0.0, 1.0])
    assert differs(grad(r, "x"), [0.0, 0.5, 1.0])  # sympy's Heaviside(0) = 1/2 must not leak
    r = differentiate(ops.abs(x), {"x": xv}, ["x"])
    np.testing.assert_array_equal(grad(r, "x"), [-1.0, 0.0, 1.0])
    assert differs(grad(r, "x"), [-1.0, 1.0, 1.0])


def test_second_derivative_of_kinks_is_zero() -> None:
    r = differentiate(ops.relu(x) + ops.abs(x) * 3, {"x": [-1.0, 0.0, 2.0]}, ["x"], order=2)
    np.testing.assert_array_equal(grad(r, "x", "x"), [0.0, 0.0, 0.0])
    assert "DiracDelta" not in r.derivatives[("x", "x")].formula


def test_maximum_minimum_tie_half() -> None:
    r = differentiate(ops.maximum(x, y), {"x": [1.0, 2.0, 0.0], "y": [1.0, 1.0, 5.0]}, ["x", "y"])
    np.testing.assert_array_equal(grad(r, "x"), [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(grad(r, "y"), [0.5, 0.0, 1.0])
    assert differs(grad(r, "x"), [1.0, 1.0, 0.0])
    r = differentiate(ops.minimum(x, y), {"x": [1.0, 2.0], "y": [1.0, 1.0]}, ["x"])
    np.testing.assert_array_equal(grad(r, "x"), [0.5, 0.0])


def test_max_reduction_three_way_tie() -> None:
    r = differentiate(ops.max(x), {"x": [1.0, 3.0, 3.0, 3.0]}, ["x"])
    assert r.mode == "expanded" and float(r.value) == 3.0
    np.testing.assert_allclose(grad(r, "x"), [0.0, 1 / 3, 1 / 3, 1 / 3])
    assert differs(grad(r, "x"), [0.0, 1.0, 0.0, 0.0])  # all to the first maximum
    r = differentiate(ops.min(x, axis=1), {"x": [[1.0, 1.0], [0.0, 2.0]]}, ["x"])
    np.testing.assert_allclose(grad(r, "x"), [[0.5, 0.5], [1.0, 0.0]])


def test_sqrt_at_zero_is_infinite_not_undefined() -> None:
    r = differentiate(ops.sqrt(x), {"x": [0.0, 4.0]}, ["x"])
    d = r.derivatives[("x",)]
    assert d.value[0] == np.inf and d.value[1] == 0.25
    assert not d.undefined.any()
    r = differentiate(ops.sqrt(x), {"x": [0.0, 4.0]}, ["x"], exact=True)  # mpmath raises at 0
    assert grad(r, "x")[0] == np.inf and not r.derivatives[("x",)].undefined.any()


def test_power_zero_exponent() -> None:
    r = differentiate(x**0, {"x": [0.0, 2.0]}, ["x"])
    np.testing.assert_array_equal(grad(r, "x"), [0.0, 0.0])
    r = differentiate(x**y, {"x": [0.0, 2.0], "y": [0.0, 0.0]}, ["x"])
    np.testing.assert_array_equal(grad(r, "x"), [0.0, 0.0])
    # the naive y*x**(y-1) is nan at x = 0
    with np.errstate(all="ignore"):
        assert differs(grad(r, "x"), 0.0 * np.array([0.0, 2.0]) ** -1.0)


def test_power_derivative_wrt_exponent_at_zero_base() -> None:
    r = differentiate(x**y, {"x": [0.0, 0.0, 2.0], "y": [2.0, 0.0, 3.0]}, ["y"])
    np.testing.assert_allclose(grad(r, "y"), [0.0, 0.0, 8.0 * math.log(2.0)])
    assert not r.derivatives[("y",)].undefined.any()
    with np.errstate(all="ignore"):  # the naive x**y*log(x) is nan at x = 0
        assert differs(grad(r, "y"), np.array([0.0, 0.0, 2.0]) ** [2.0, 0.0, 3.0] * np.log([0.0, 0.0, 2.0]))


def test_zero_over_zero_is_undefined() -> None:
    r = differentiate(ops.sin(x) / x, {"x": [0.0, 1.0]}, ["x"])
    d = r.derivatives[("x",)]
    assert d.undefined.tolist() == [True, False]
    assert d.value[1] == pytest.approx(math.cos(1.0) - math.sin(1.0))
    # x*log(x) at 0 is 0 * -inf as written: undefined, though sympy's log(x) + 1 is -inf there
    r = differentiate(x * ops.log(x), {"x": [0.0, 1.0]}, ["x"])
    assert r.derivatives[("x",)].undefined.tolist() == [True, False] and np.isnan(r.value[0])
    assert grad(r, "x")[1] == 1.0
    r = differentiate(x * ops.log(x + 1), {"x": [0.0, 1.0]}, ["x"])  # defined at 0: a value
    assert grad(r, "x")[0] == 0.0 and not r.derivatives[("x",)].undefined.any()


# ---------------------------------------------------------------- higher orders


def test_order_two_mixed_partials() -> None:
    av, bv = np.array([0.5, 2.0]), np.array([3.0, -1.0])
    r = differentiate(a * b * ops.sin(a), {"a": av, "b": bv}, ["a", "b"], order=2)
    assert set(r.derivatives) == {("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")}
    mixed = np.sin(av) + av * np.cos(av)
    np.testing.assert_allclose(grad(r, "a", "b"), mixed)
    np.testing.assert_allclose(grad(r, "b", "a"), mixed)
    np.testing.assert_allclose(grad(r, "a", "a"), bv * (2 * np.cos(av) - av * np.sin(av)))
    np.testing.assert_array_equal(grad(r, "b", "b"), [0.0, 0.0])
    assert differs(grad(r, "a", "b"), np.sin(av))


def test_order_two_of_broadcast_follows_the_tape() -> None:
    # d/dy of sum(d/dx (x*y)) where y is broadcast over x's rows: sum(ones) per column of y
    r = differentiate(x * y, {"x": np.ones((3, 2)), "y": np.array([2.0, 5.0])}, ["x", "y"], order=2)
    np.testing.assert_array_equal(grad(r, "x", "y"), [3.0, 3.0])
    np.testing.assert_array_equal(grad(r, "y", "x"), np.ones((3, 2)))


def test_order_three() -> None:
    r = differentiate(x**4, {"x": [1.0, 2.0]}, ["x"], order=3)
    np.testing.assert_array_equal(grad(r, "x", "x", "x"), [24.0, 48.0])
    assert differs(grad(r, "x", "x", "x"), [12.0, 48.0])


def test_expanded_order_two_matches_elementwise() -> None:
    inputs = {"x": np.array([0.5, -1.5, 2.0]), "y": np.array([1.5, 0.25, -2.0])}
    e = x**3 * ops.sin(y)
    ew = differentiate(ops.sum(e), inputs, ["x", "y"], order=2)
    ex = differentiate(ops.sum(e), inputs, ["x", "y"], order=2, mode="expanded")
    assert (ew.mode, ex.mode) == ("elementwise", "expanded")
    for key in ew.derivatives:
        np.testing.assert_allclose(ex.derivatives[key].value, ew.derivatives[key].value, rtol=1e-12)


# ---------------------------------------------------------------- expanded mode


def test_mean_centering() -> None:
    xv = np.random.default_rng(1).normal(size=64)
    r = differentiate(ops.sum((x - ops.mean(x)) ** 2), {"x": xv}, ["x"])
    assert r.mode == "expanded"
    assert float(r.value) == pytest.approx(((xv - xv.mean()) ** 2).sum())
    np.testing.assert_allclose(grad(r, "x"), 2 * (xv - xv.mean()), atol=1e-12)
    assert differs(grad(r, "x"), 2 * xv)  # as if the mean did not depend on x


def test_matmul_tanh() -> None:
    rng = np.random.default_rng(2)
    av, bv = rng.normal(size=(8, 8)), rng.normal(size=(8, 8))
    r = differentiate(ops.sum(ops.tanh(A @ B)), {"A": av, "B": bv}, ["A", "B"])
    t = np.tanh(av @ bv)
    assert r.mode == "expanded" and float(r.value) == pytest.approx(t.sum())
    np.testing.assert_allclose(grad(r, "A"), (1 - t**2) @ bv.T, rtol=1e-10)
    np.testing.assert_allclose(grad(r, "B"), av.T @ (1 - t**2), rtol=1e-10)
    assert differs(grad(r, "A"), (1 - t**2) @ bv)  # a missing transpose


def test_matmul_vector_and_transpose() -> None:
    mv, vv = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.array([0.5, -1.0])
    r = differentiate(ops.transpose(A) @ (A @ x), {"A": mv, "x": vv}, ["x"])
    np.testing.assert_allclose(r.value, mv.T @ mv @ vv)
    np.testing.assert_allclose(grad(r, "x"), mv.T @ mv @ np.ones(2))


@pytest.mark.parametrize("form", ["logsumexp", "log-softmax"])
@pytest.mark.slow
def test_softmax_cross_entropy(form: str) -> None:
    rng = np.random.default_rng(3)
    zv, yv = rng.normal(size=32), np.eye(32)[7]
    if form == "logsumexp":
        e = ops.logsumexp(z) - ops.sum(y * z)
    else:
        e = -ops.sum(y * ops.log(ops.exp(z) / ops.sum(ops.exp(z))))
    r = differentiate(e, {"z": zv, "y": yv}, ["z"])
    softmax = np.exp(zv) / np.exp(zv).sum()
    assert r.mode == "expanded"
    assert float(r.value) == pytest.approx(-np.log(softmax[7]))
    np.testing.assert_allclose(grad(r, "z"), softmax - yv, atol=1e-14)
    assert differs(grad(r, "z"), softmax)
    assert ("y",) not in r.derivatives


def test_reduction_with_axis_and_mean_of_axis() -> None:
    xv = np.arange(6.0).reshape(2, 3)
    r = differentiate(ops.mean(x, axis=1) ** 2, {"x": xv}, ["x"], grad_output=np.array([1.0, -1.0]))
    m = xv.mean(axis=1)
    np.testing.assert_allclose(grad(r, "x"), np.repeat((2 * m * [1.0, -1.0] / 3)[:, None], 3, axis=1))


def test_prod_and_logsumexp_axis() -> None:
    xv = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
    r = differentiate(ops.prod(x, axis=1), {"x": xv}, ["x"])
    np.testing.assert_allclose(grad(r, "x"), xv.prod(axis=1, keepdims=True) / xv)
    r = differentiate(ops.logsumexp(x, axis=0), {"x": xv}, ["x"])
    np.testing.assert_allclose(grad(r, "x"), np.exp(xv) / np.exp(xv).sum(axis=0))


# ---------------------------------------------------------------- root reductions in elementwise mode


def test_root_mean_divides_by_broadcast_count() -> None:
    xv, yv = np.arange(1.0, 7.0).reshape(2, 3), np.array([1.0, 2.0, 3.0])
    r = differentiate(ops.mean(x * y), {"x": xv, "y": yv}, ["y"], grad_output=np.array(2.0))
    assert r.mode == "elementwise"
    assert float(r.value) == pytest.approx((xv * yv).mean())
    np.testing.assert_allclose(grad(r, "y"), 2 * xv.sum(axis=0) / 6)
    assert differs(grad(r, "y"), 2 * xv.sum(axis=0) / 3)  # divided by y's own size
    assert r.derivatives[("y",)].sympy_expr == sympy.Symbol("x", real=True) / 6


def test_root_chain_matches_expanded() -> None:
    inputs = {"x": np.array([0.2, 0.7, 1.3])}
    e = ops.sum(ops.mean(ops.sin(x) * x))
    ew = differentiate(e, inputs, ["x"])
    ex = differentiate(e, inputs, ["x"], mode="expanded")
    assert (ew.mode, ex.mode) == ("elementwise", "expanded")
    np.testing.assert_allclose(ew.value, ex.value)
    np.testing.assert_allclose(grad(ew, "x"), grad(ex, "x"))


# ---------------------------------------------------------------- exact reference


def _round_to(v: mpmath.mpf, prec: int) -> float:
    with mpmath.workprec(prec):
        return float(+v)


def test_exact_float32_is_correctly_rounded() -> None:
    xv = np.linspace(0.1, 3.0, 200, dtype=np.float32)
    r = differentiate(ops.exp(x) / 3, {"x": xv}, ["x"], exact=True, dtype=np.float32)
    d = grad(r, "x")
    assert d.dtype == np.float32 and r.value.dtype == np.float32
    with mpmath.workdps(50):
        expected = np.array([_round_to(mpmath.exp(mpmath.mpf(float(v))) / 3, 24) for v in xv], dtype=np.float32)
    np.testing.assert_array_equal(d, expected)
    np.testing.assert_array_equal(r.value, expected)
    # twin: float32 arithmetic misses the correctly rounded value somewhere
    naive = np.exp(xv) / np.float32(3)
    assert (naive != expected).any()


def test_exact_float64_matches_mpmath() -> None:
    xv = np.array([0.3, 1.7, 2.9])
    r = differentiate(ops.sin(x) * ops.exp(x), {"x": xv}, ["x"], exact=True)
    with mpmath.workdps(50):
        expected = [
            _round_to(mpmath.exp(mpmath.mpf(v)) * (mpmath.sin(mpmath.mpf(v)) + mpmath.cos(mpmath.mpf(v))), 53)
            for v in xv
        ]
    np.testing.assert_array_equal(grad(r, "x"), expected)


def test_exact_expanded_mode() -> None:
    zv = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    r = differentiate(ops.logsumexp(z), {"z": zv}, ["z"], exact=True, dtype=np.float32)
    with mpmath.workdps(50):
        zs = [mpmath.mpf(float(v)) for v in zv]
        total = mpmath.fsum(mpmath.exp(v) for v in zs)
        expected = [_round_to(mpmath.exp(v) / total, 24) for v in zs]
        value = _round_to(mpmath.log(total), 24)
    np.testing.assert_array_equal(grad(r, "z"), np.array(expected, dtype=np.float32))
    assert r.value == np.float32(value)


def test_float32_inputs_are_rounded_first() -> None:
    r = differentiate(x * 1, {"x": [0.1]}, ["x"], dtype=np.float32)
    assert r.value[0] == np.float32(0.1) and r.value.dtype == np.float32


# ---------------------------------------------------------------- modes, limits, errors


def test_choose_mode() -> None:
    assert choose_mode(3 * a**3 - b**2) == "elementwise"
    assert choose_mode(ops.mean(ops.sum(ops.relu(x)))) == "elementwise"
    assert choose_mode(ops.sum(x, axis=0)) == "expanded"
    assert choose_mode(ops.sum(x) + 1) == "expanded"  # reduction not at the root
    assert choose_mode(ops.sum(A @ B)) == "expanded"
    assert choose_mode(ops.max(x)) == "expanded"
    assert choose_mode(x * 2, "expanded") == "expanded"
    with pytest.raises(ValueError, match="elementwise.*matmul"):
        choose_mode(ops.sum(A @ B), "elementwise")
    with pytest.raises(ValueError, match="unknown mode"):
        choose_mode(x, "fast")


def test_explicit_elementwise_refused_for_matmul() -> None:
    with pytest.raises(ValueError, match="expanded"):
        differentiate(A @ B, {"A": np.eye(2), "B": np.eye(2)}, ["A"], mode="elementwise")


def test_max_symbols_refused() -> None:
    with pytest.raises(LimitExceeded, match="max_symbols") as info:
        differentiate(ops.sum(x, axis=0), {"x": np.ones(10)}, ["x"], limits=Limits(max_symbols=9))
    assert isinstance(info.value, ValueError)
    r = differentiate(ops.sum(x, axis=0), {"x": np.ones(10)}, ["x"], limits=Limits(max_symbols=10))
    np.testing.assert_array_equal(grad(r, "x"), np.ones(10))
    # elementwise mode has no such limit
    differentiate(ops.sum(x), {"x": np.ones(10)}, ["x"], limits=Limits(max_symbols=1))


def test_missing_input_and_bad_order() -> None:
    with pytest.raises(ValueError, match="y"):
        differentiate(x * y, {"x": [1.0]}, ["x"])
    with pytest.raises(ValueError, match="order"):
        differentiate(x, {"x": [1.0]}, ["x"], order=0)


def test_plans_are_cached() -> None:
    before = _elementwise_plan.cache_info().hits
    for _ in range(2):
        differentiate(ops.cos(x) * 7, {"x": [1.0, 2.0]}, ["x"])
    assert _elementwise_plan.cache_info().hits > before


# ---------------------------------------------------------------- to_sympy and prove_equal


def test_to_sympy() -> None:
    xs = sympy.Symbol("x", real=True)
    assert to_sympy(x * Const(math.pi, "pi") + Const(math.e, "e")) == xs * sympy.pi + sympy.E
    assert to_sympy(x**2.0) == xs**2 and isinstance(to_sympy(Const(2.0)), sympy.Integer)
    assert to_sympy(Const(0.5) * x) == sympy.Float(0.5) * xs
    assert to_sympy(ops.sin(x)).free_symbols == {xs} and xs.is_real
    custom = sympy.Symbol("q")
    assert to_sympy(x + 1, {"x": custom}) == custom + 1
    with pytest.raises(ValueError, match="sum"):
        to_sympy(ops.sum(x))


def test_prove_equal() -> None:
    xs = sympy.Symbol("x", real=True)
    assert prove_equal(sympy.sin(xs) ** 2 + sympy.cos(xs) ** 2, sympy.Integer(1)) is True
    assert prove_equal(2 * xs, xs + xs) is True
    assert prove_equal(xs, xs + sympy.Float(1e-3)) is False
    assert prove_equal(sympy.exp(xs), xs) is False
    d = differentiate(ops.sigmoid(x), {"x": [0.0]}, ["x"]).derivatives[("x",)].sympy_expr
    assert prove_equal(d, sympy.exp(-xs) / (1 + sympy.exp(-xs)) ** 2) is True


# ---------------------------------------------------------------- large and expanded inputs
# (their speed is measured in tests/benchmarks/, not here)


def test_elementwise_million_elements() -> None:
    e = ops.sin(x) * ops.exp(y) + ops.relu(x - y) + ops.sqrt(ops.abs(x))
    inputs = {"x": np.random.default_rng(0).normal(size=(1000, 1000)), "y": np.linspace(-1, 1, 1000)}
    r = differentiate(e, inputs, ["x", "y"])
    assert grad(r, "x").shape == (1000, 1000) and grad(r, "y").shape == (1000,)
    xv, yv = inputs["x"], inputs["y"]
    dx = np.cos(xv) * np.exp(yv) + (xv - yv > 0) + np.sign(xv) / (2 * np.sqrt(np.abs(xv)))
    assert np.allclose(grad(r, "x"), dx)


@pytest.mark.slow
def test_expanded_examples_run() -> None:
    rng = np.random.default_rng(4)
    r = differentiate(ops.sum((x - ops.mean(x)) ** 2), {"x": (xv := rng.normal(size=65))}, ["x"])
    assert r.mode == "expanded" and np.allclose(grad(r, "x"), 2 * (xv - xv.mean()))
    r = differentiate(ops.sum(ops.tanh(A @ B)), {"A": rng.normal(size=(8, 9)), "B": rng.normal(size=(9, 8))},
                      ["A", "B"])
    assert grad(r, "A").shape == (8, 9) and grad(r, "B").shape == (9, 8)
