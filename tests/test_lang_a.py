"""Issue 15, part A: conventions of the new ops, each with a twin that fails on a wrong value."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from symgrad.ir import ops


def _status(expr: str, expect: dict, **inputs) -> str:
    return symgrad.check(expr, inputs=inputs, expect=expect).status


@pytest.mark.parametrize("expr, inputs, right, wrong", [
    ("prod(x)", {"x": [0.0, 2.0, 3.0]}, [6.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
    ("prod(x)", {"x": [0.0, 2.0, 0.0, 5.0]}, [0.0] * 4, [0.0, 0.0, 0.0, 1.0]),
    ("clip(x, -1, 1)", {"x": [-1.0, 1.0, 2.0]}, [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]),  # inclusive
    ("hardtanh(x)", {"x": [-1.0, 1.0, 0.0]}, [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]),  # exclusive
    ("leaky_relu(x, negative_slope=0.2)", {"x": [0.0]}, [0.2], [1.0]),
    ("elu(x, alpha=2.0)", {"x": [0.0]}, [2.0], [1.0]),
    ("round(x) + floor(x) + ceil(x) + sign(x) + x", {"x": [0.5, 0.0]}, [1.0, 1.0], [2.0, 1.0]),
])
def test_kink_conventions_and_their_twins(expr: str, inputs: dict, right: list, wrong: list) -> None:
    assert _status(expr, {"x": right}, **inputs) == "pass"
    assert _status(expr, {"x": wrong}, **inputs) == "fail"


def test_prod_with_zeros_at_order_2_matches_sympy_on_the_tape() -> None:
    for x in ([0.0, 2.0, 3.0], [0.0, 2.0, 0.0, 5.0]):
        r = symgrad.check("prod(x)", x=x, order=2)
        assert r.status == "pass", r.table()
    # d2/dx0 dx2 prod([0, 2, 0, 5]) = 10: a VJP with 0 there would fail
    t = symgrad.tensor([0.0, 2.0, 0.0, 5.0], requires_grad=True)
    (g,) = symgrad.autograd.grad(t.prod(), t, create_graph=True)
    (h,) = symgrad.autograd.grad((g * symgrad.tensor([1.0, 0.0, 0.0, 0.0])).sum(), t)
    assert np.asarray(h).tolist() == [0.0, 0.0, 10.0, 0.0]


def test_where_in_expanded_mode_differentiates_through_bound_symbols() -> None:
    inputs = {"m": [[1.0, 0.0]], "x": [[0.5, -1.0]], "w": [[1.0, 2.0], [3.0, -1.0]]}
    r = symgrad.check("sum(where(m, x @ w, 0.0))", inputs=inputs, wrt=["x", "w"])
    assert r.status == "pass" and r.mode == "expanded", r.table()
    # d/dx = w[:, 0] (only the first column is kept): a reference of 0 (the old bug) fails
    assert symgrad.check("sum(where(m, x @ w, 0.0))", inputs=inputs, wrt=["x"],
                         expect={"x": [[1.0, 3.0]]}).status == "pass"
    assert symgrad.check("sum(where(m, x @ w, 0.0))", inputs=inputs, wrt=["x"],
                         expect={"x": [[0.0, 0.0]]}).status == "fail"


def test_where_value_is_the_chosen_branch_in_the_reference() -> None:
    # a Symbol branch is a sympy Boolean too: it must not be compiled as a truth value
    r = symgrad.check("where(c, x, y)", inputs={"c": [1.0, 0.0, 0.5], "x": [2.5, 3.0, -1.0],
                                                 "y": [7.0, -4.0, 0.0]}, wrt=["x", "y"])
    assert r.status == "pass", r.table()
    from symgrad.ir.parse import parse
    from symgrad.symbolic.engine import differentiate

    arrays = {"c": np.array([1.0, 0.0, 0.5]), "x": np.array([2.5, 3.0, -1.0]), "y": np.array([7.0, -4.0, 0.0])}
    ref = differentiate(parse("where(c, x, y)"), arrays, wrt=["x"])
    assert np.asarray(ref.value, dtype=float).tolist() == [2.5, -4.0, -1.0]
    assert ref.derivatives[("x",)].value.tolist() == [1.0, 0.0, 1.0]


def test_keyword_parameters_reach_forward_vjp_and_reference() -> None:
    for expr in ("celu(x, alpha=0.5)", "elu(x, alpha=3.0)", "hardtanh(x, min_val=-0.5, max_val=0.25)",
                 "var(x, ddof=1)", "std(x, axis=-1, ddof=1, keepdims=True)"):
        for order in (1, 2):
            r = symgrad.check(expr, x=[[-1.0, 0.3], [0.1, -0.2]], order=order)
            assert r.status == "pass", r.table()
    # a reduction with keepdims at the root: the output (and grad_output) keeps the reduced axis
    r = symgrad.check("max(x, axis=-1, keepdims=True)", x=[[-1.0, 0.3], [0.1, -0.2]],
                      expect={"x": [[0.0, 1.0], [1.0, 0.0]]})
    assert r.status == "pass", r.table()
    assert symgrad.check("max(x, axis=-1, keepdims=True)", x=[[-1.0, 0.3], [0.1, -0.2]],
                         expect={"x": [[1.0, 0.0], [1.0, 0.0]]}).status == "fail"
    assert ops.lookup("clamp") is ops.clip
