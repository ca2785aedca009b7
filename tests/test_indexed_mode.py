"""Issue 15: mode auto stays elementwise for an elementwise expression of indexed inputs (``sin(x[1:3]) * y[0]``):
each piece x[key] is differentiated as an input of its own and scattered back, as the tape's backward does."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from symgrad.ir.parse import parse
from symgrad.symbolic.engine import choose_mode, differentiate

X = {"x": [0.1, 0.5, 1.0, 2.0], "y": [1.5, 2.0]}


@pytest.mark.parametrize("text, mode", [
    ("sin(x[1:3]) * y[0]", "elementwise"),
    ("sum(x[::2] * x[1::2] + exp(x[0]))", "elementwise"),
    ("where(x[0] > 0, x[1:3] ** 2, y)", "elementwise"),
    ("sin(x)[1:3] * y[0]", "expanded"),  # an index of a computed value: not rearranged
    ("sum(x)[()] * y", "expanded"),
])
def test_mode_auto_with_indices(text: str, mode: str) -> None:
    assert choose_mode(parse(text)) == mode


@pytest.mark.parametrize("backend", ["symgrad", "torch"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_indexed_elementwise_checks_pass_at_orders_1_to_3(backend: str, order: int) -> None:
    pytest.importorskip({"symgrad": "numpy"}.get(backend, backend))
    for text, inputs in [("sin(x[1:3]) * y[0]", X), ("sum(x[::2] * x[1::2] + exp(x[0]))", X),
                         ("x[:, 0] * y + x[..., -1] * y[0]", {"x": np.arange(6.0).reshape(3, 2) * 0.2,
                                                          "y": [1.0, 2.0, 3.0]}),
                         ("where(x[0] > 0.3, x[1:3] ** 2, y)", X)]:
        r = symgrad.check(text, inputs=inputs, order=order, backend=backend,
                          grad_output="random" if order == 1 else None)
        assert r.status == "pass" and r.mode == "elementwise", r.table()


def test_the_reference_equals_expanded_mode_elementwise_and_a_wrong_gradient_fails() -> None:
    e = parse("sin(x[1:3]) * y[0] + x[::-1][0:2] * 0 + cos(x[0])")  # x[::-1][0:2]: expanded, index of index
    arrays = {k: np.asarray(v) for k, v in X.items()}
    g = np.array([0.3, -1.2])
    for order in (1, 2):
        a = differentiate(parse("sin(x[1:3]) * y[0] + cos(x[0])"), arrays, ["x", "y"], order=order, grad_output=g)
        b = differentiate(e, arrays, ["x", "y"], order=order, grad_output=g, mode="expanded")
        assert a.mode == "elementwise" and b.mode == "expanded"
        for seq in a.derivatives:
            np.testing.assert_allclose(a.derivatives[seq].value, b.derivatives[seq].value, rtol=1e-12, atol=1e-15)
    # d/dx with g = ones: cos(x[0]) is broadcast over both outputs; the twin puts x[1]'s gradient in x[0]
    right = [-2 * np.sin(0.1), 1.5 * np.cos(0.5), 1.5 * np.cos(1.0), 0.0]
    wrong = [1.5 * np.cos(0.5) - 2 * np.sin(0.1), 0.0, 1.5 * np.cos(1.0), 0.0]
    expr = "sin(x[1:3]) * y[0] + cos(x[0])"
    assert symgrad.check(expr, inputs=X, wrt=["x"], expect={"x": right}).status == "pass"
    assert symgrad.check(expr, inputs=X, wrt=["x"], expect={"x": wrong}).status == "fail"


def test_a_function_that_scatters_into_the_wrong_slot_fails() -> None:
    def shifted(x: symgrad.Tensor, y: symgrad.Tensor) -> symgrad.Tensor:  # the right value, x[0:2]'s gradient
        return (symgrad.sin(x[1:3]) * y[0]).detach() + (symgrad.sin(x[0:2]) - symgrad.sin(x[0:2]).detach()) * 0 + (
            x[0:2] - x[0:2].detach()) * (symgrad.cos(x[1:3]) * y[0]).detach()

    assert symgrad.check_function(lambda x, y: symgrad.sin(x[1:3]) * y[0], "sin(x[1:3]) * y[0]", backend="symgrad",
                                  inputs=X).status == "pass"
    r = symgrad.check_function(shifted, "sin(x[1:3]) * y[0]", backend="symgrad", inputs=X)
    assert r.status == "fail" and r.mode == "elementwise"
