"""Issue 15: det and inv on stacks (..., n, n), with twins that fail on a wrong gradient."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad

A = np.array([[[2.0, 0.5, -0.3], [0.1, 1.5, 0.2], [-0.4, 0.3, 2.5]], [[1.0, 2.0, 0.0], [0.5, -1.0, 1.0], [0.0, 0.3, 3.0]]])


@pytest.mark.parametrize("backend", ["symgrad", "torch", "autograd"])
@pytest.mark.parametrize("expr", ["det(a)", "inv(a)", "sum(inv(a) * det(a[1]))"])
def test_stacks_pass_at_order_2(backend: str, expr: str) -> None:
    pytest.importorskip({"symgrad": "numpy"}.get(backend, backend))
    r = symgrad.check(expr, inputs={"a": A}, order=2, backend=backend)
    assert r.status == "pass" and r.mode == "expanded", r.table()


def test_the_det_gradient_of_a_stack_is_det_times_the_inverse_transposed_and_its_twin() -> None:
    right = np.linalg.det(A)[:, None, None] * np.linalg.inv(A).transpose(0, 2, 1)
    wrong = np.linalg.det(A)[:, None, None] * np.linalg.inv(A)  # the transpose forgotten
    assert symgrad.check("det(a)", inputs={"a": A}, expect={"a": right.tolist()}).status == "pass"
    assert symgrad.check("det(a)", inputs={"a": A}, expect={"a": wrong.tolist()}).status == "fail"


def test_a_stack_whose_matrices_are_not_square_is_an_error() -> None:
    r = symgrad.check("det(a)", inputs={"a": np.ones((2, 3, 2))})
    assert r.status == "error" and "(..., n, n)" in str(r)
