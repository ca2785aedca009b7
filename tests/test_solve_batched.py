"""Issue 15: solve on stacks, b read as numpy 2 reads it (a 1-D b is one vector, every other b a stack
of matrices (..., n, k)), with twins that fail on a wrong gradient or torch's own reading of b."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from symgrad.ir import ops

RNG = np.random.default_rng(4)
A = RNG.uniform(-0.5, 0.5, (2, 3, 3)) + 4.0 * np.eye(3)

SHAPES = [((2, 3, 3), (3,)), ((2, 3, 3), (2, 3, 2)), ((2, 3, 3), (3, 2)), ((3, 3), (2, 3, 1)), ((2, 2, 2), (2, 2))]


def _pair(a_shape: tuple, b_shape: tuple) -> dict[str, np.ndarray]:
    n = a_shape[-1]
    return {"a": RNG.uniform(-0.5, 0.5, a_shape) + 4.0 * np.eye(n), "b": RNG.normal(size=b_shape)}


@pytest.mark.parametrize("a_shape, b_shape", SHAPES)
def test_forward_is_numpy_2s_solve(a_shape: tuple, b_shape: tuple) -> None:
    xs = _pair(a_shape, b_shape)
    np.testing.assert_allclose(ops.solve(xs["a"], xs["b"]), np.linalg.solve(xs["a"], xs["b"]), rtol=1e-12)


@pytest.mark.slow  # expanded mode over stacks at order 2: ~10 s each on a busy machine
@pytest.mark.parametrize("backend", ["symgrad", "torch"])
@pytest.mark.parametrize("a_shape, b_shape", SHAPES)
def test_stacks_pass_at_order_2(backend: str, a_shape: tuple, b_shape: tuple) -> None:
    pytest.importorskip({"symgrad": "numpy"}.get(backend, backend))
    r = symgrad.check("sum(sin(solve(a, b)))", inputs=_pair(a_shape, b_shape), order=2, backend=backend)
    assert r.status == "pass" and r.mode == "expanded", r.table()


def test_the_gradient_of_b_is_a_inverse_transposed_and_its_twin() -> None:
    b = np.array([1.0, -2.0, 0.5])
    right = np.einsum("bji,bj->i", np.linalg.inv(A), np.ones((2, 3)))  # sum over the stack of A^-T 1
    wrong = np.einsum("bij,bj->i", np.linalg.inv(A), np.ones((2, 3)))  # the transpose forgotten
    case = {"inputs": {"a": A, "b": b}, "wrt": ["b"]}
    assert symgrad.check("sum(solve(a, b))", expect={"b": right.tolist()}, **case).status == "pass"
    assert symgrad.check("sum(solve(a, b))", expect={"b": wrong.tolist()}, **case).status == "fail"


def test_a_two_dimensional_b_is_a_matrix_as_numpy_2_reads_it_not_vectors_as_torch() -> None:
    torch = pytest.importorskip("torch")
    a, b = RNG.uniform(-0.5, 0.5, (3, 3, 3)) + 4.0 * np.eye(3), RNG.normal(size=(3, 3))
    assert ops.solve(a, b).shape == np.linalg.solve(a, b).shape == (3, 3, 3)
    assert torch.linalg.solve(torch.tensor(a), torch.tensor(b)).shape == (3, 3)  # torch alone: a stack of vectors
    r = symgrad.check("solve(a, b)", inputs={"a": a, "b": b}, backend="torch", grad_output="random")
    assert r.status == "pass", r.table()  # the adapter makes torch read b as numpy does


@pytest.mark.parametrize("b_shape", [(2,), (2, 3), (3, 3, 1)])
def test_a_b_that_does_not_fit_is_a_clear_error(b_shape: tuple) -> None:
    r = symgrad.check("solve(a, b)", inputs={"a": A, "b": np.ones(b_shape)})
    assert r.status == "error" and ("does not fit" in str(r) or "broadcast" in str(r)), str(r)


def test_autograd_skips_the_forms_its_solve_gets_wrong_with_the_reason() -> None:
    pytest.importorskip("autograd")
    r = symgrad.check("solve(a, b)", inputs=_pair((2, 3, 3), (3, 2)), backend="autograd")
    assert r.status == "skip" and "broadcast" in str(r), str(r)
    assert symgrad.check("solve(a, b)", inputs=_pair((2, 3, 3), (2, 3, 2)), backend="autograd").status == "pass"
