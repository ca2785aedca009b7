"""Issue 15: norm, cumsum and cumprod: conventions, orders 2-3, and twins that fail on a wrong gradient."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from symgrad.ir.parse import parse


def _status(expr: str, expect: dict, **inputs) -> str:
    return symgrad.check(expr, inputs=inputs, expect=expect).status


@pytest.mark.parametrize("expr, inputs, right, wrong", [
    ("norm(x)", {"x": [0.0, 0.0]}, [0.0, 0.0], [1.0, 0.0]),  # torch.linalg.vector_norm: 0, not 0/0
    ("norm(x, axis=1)", {"x": [[0.0, 0.0], [3.0, 4.0]]}, [[0.0, 0.0], [0.6, 0.8]], [[1.0, 1.0], [0.6, 0.8]]),
    ("cumprod(x)", {"x": [2.0, 0.0, 3.0]}, [1.0, 8.0, 0.0], [1.0, 0.0, 0.0]),  # the products without x_i
    ("cumprod(x)", {"x": [0.0, 0.0, 3.0]}, [1.0, 0.0, 0.0], [1.0, 3.0, 0.0]),
    ("cumsum(x)", {"x": [1.0, 2.0, 3.0]}, [3.0, 2.0, 1.0], [1.0, 2.0, 3.0]),  # reversed cumulative sum of ones
])
def test_conventions_and_their_twins(expr: str, inputs: dict, right: list, wrong: list) -> None:
    assert _status(expr, {"x": right}, **inputs) == "pass"
    assert _status(expr, {"x": wrong}, **inputs) == "fail"


@pytest.mark.parametrize("expr, inputs", [
    ("sum(cumprod(x, axis=-1) * w)", {"x": [[2.0, 0.0, 3.0], [0.0, 0.0, 1.5]], "w": [1.0, -2.0, 0.5]}),
    ("cumsum(x * y, axis=0) * y", {"x": [[0.5, -1.0], [2.0, 0.3], [1.0, 1.0]], "y": [1.5, -0.5]}),
    ("x * norm(x + y, axis=0, keepdims=True)", {"x": [[0.5, -1.0], [2.0, 0.3]], "y": [1.5, -0.5]}),
])
def test_tape_agrees_with_sympy_at_order_3(expr: str, inputs: dict) -> None:
    r = symgrad.check(expr, inputs=inputs, order=3, grad_output="random")
    assert r.status == "pass", r.table()


def _cumprod_by_division(x: symgrad.Tensor) -> symgrad.Tensor:
    """A wrong cumprod: the right value, the gradient as ans / x (nan at a zero, as autograd's prod)."""
    ans = symgrad.cumprod(x.detach())
    g = symgrad.cumsum(symgrad.flip(ans, axis=0), axis=0)  # sum over j >= i of ans_j (g = ones) ...
    return ans + (x - x.detach()) * symgrad.flip(g, axis=0) / x.detach()  # ... divided by x_i


def test_a_cumprod_whose_gradient_divides_by_x_fails_at_zeros_only() -> None:
    ok = symgrad.check_function(_cumprod_by_division, "cumprod(x)", backend="symgrad", x=[2.0, 0.5, 3.0],
                                grad_output=1.0)
    assert ok.status == "pass", ok.table()
    bad = symgrad.check_function(_cumprod_by_division, "cumprod(x)", backend="symgrad", x=[2.0, 0.0, 3.0],
                                 grad_output=1.0)
    assert bad.status == "fail"


def test_a_scan_of_a_matrix_needs_an_axis() -> None:
    r = symgrad.check("cumsum(x)", x=np.ones((2, 3)))
    assert r.status == "error" and "needs axis=" in str(r)
    assert symgrad.check("cumsum(x, axis=1)", x=np.ones((2, 3))).status == "pass"
    with pytest.raises(Exception, match="axis must be an integer"):
        parse("cumsum(x, axis=1.5)")
