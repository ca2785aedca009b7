"""The tape's speed work must not change a value: in-place accumulation never writes into an array a user holds,
and the engine's lazily computed node names are torch's."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as torch
from symgrad.ir import ops
from symgrad.tape import graph


def _held_function() -> tuple[type, torch.Tensor]:
    held = torch.tensor([2.0, 3.0])

    class ReturnsHeld(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def]
            return x * 2

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            return held  # an array the user keeps: the tape must not add into it

    return ReturnsHeld, held


def _twice(fn: type) -> torch.Tensor:
    x = torch.tensor([1.0, 1.0], requires_grad=True)
    (fn.apply(x) + fn.apply(x)).sum().backward()
    return x


def test_a_custom_functions_gradient_is_never_accumulated_into_in_place() -> None:
    fn, held = _held_function()
    x = _twice(fn)
    assert x.grad.tolist() == [4.0, 6.0]
    assert held.tolist() == [2.0, 3.0]
    x.grad = None  # the leaf's .grad is not the held array either
    x = _twice(fn)
    x.grad._data += 1.0
    assert held.tolist() == [2.0, 3.0]


def test_twin_an_engine_that_trusts_the_users_vjp_overwrites_the_held_tensor(monkeypatch: pytest.MonkeyPatch) -> None:
    fn, held = _held_function()
    _twice(fn)  # creates the Function's op
    monkeypatch.setitem(ops.OPS, fn._op.name, fn._op)  # as if its VJP were the table's: results taken as fresh
    _twice(fn)
    assert held.tolist() != [2.0, 3.0]


def _backward_twice() -> tuple[list[float], list[float], torch.Tensor, torch.Tensor, list[float]]:
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    seed = torch.tensor([1.0, 1.0])
    y = x * x
    y.retain_grad()
    (y * 3.0).backward(seed, retain_graph=True)
    first, kept = x.grad, y.grad
    (y * 3.0).backward(seed)
    return first.tolist(), kept.tolist(), x, y, seed.tolist()


def test_a_retained_grad_and_a_seed_handed_out_before_keep_their_values_as_in_torch() -> None:
    first, kept, x, y, seed = _backward_twice()
    # torch 2.13: a leaf's .grad is the same tensor, accumulated; a retained grad is a new tensor each time
    assert first == [12.0, 24.0] and x.grad.tolist() == [12.0, 24.0]
    assert kept == [3.0, 3.0] and y.grad.tolist() == [6.0, 6.0]
    assert seed == [1.0, 1.0]


def test_twin_accumulating_a_retained_grad_into_the_old_tensor_changes_what_the_user_holds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def into_the_old(t: torch.Tensor, g: np.ndarray, owned: bool, create_graph: bool) -> None:
        if t._grad is None:
            t._grad = torch.Tensor._make(np.array(g, copy=True))
        else:
            t._grad._data = t._grad._data + g  # the retained grad's old tensor changes

    monkeypatch.setattr(graph, "_deposit", into_the_old)
    _, kept, _, _, _ = _backward_twice()
    assert kept != [3.0, 3.0]


@pytest.mark.parametrize(("make", "name", "slots"), [
    (lambda x: x * 2, "MulBackward0", 2),
    (lambda x: 2 * x, "MulBackward0", 2),
    (lambda x: x ** 2, "PowBackward0", 1),
    (lambda x: 2 ** x, "PowBackward2", 1),
    (lambda x: 1 - x, "RsubBackward1", 1),
    (lambda x: x.sum(), "SumBackward0", 1),
    (lambda x: x @ x, "DotBackward0", 2),
])
def test_node_names_worked_out_lazily_are_torchs_even_after_the_graph_is_freed(make, name, slots) -> None:  # type: ignore[no-untyped-def]
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    out = make(x)
    node = out.grad_fn
    out.sum().backward()  # frees the saved tensors: the name is worked out from what is left
    assert node.name() == name
    assert len(node.next_functions) == slots


def _special_values(dtype: type) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(0, 3, 200), [0.0, -0.0, np.inf, -np.inf, np.nan, 1e300, -1e-300, 1e-320]])
    g = rng.normal(0, 2, x.size)
    with np.errstate(over="ignore"):  # 1e300 is inf in float32
        return x.astype(dtype), g.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("y", [2, 2.0])
def test_the_square_s_vjp_gives_bit_for_bit_what_the_general_power_rule_gives(dtype: type, y: float) -> None:
    x, g = _special_values(dtype)
    with np.errstate(all="ignore"):
        general = g * y * x ** (y - 1)
        np.testing.assert_array_equal(ops.pow.vjps[0](g, None, x, y), general, strict=True)


def test_twin_a_rewrite_that_rounds_differently_is_caught() -> None:
    x, g = _special_values(np.float64)
    with np.errstate(all="ignore"), pytest.raises(AssertionError):
        np.testing.assert_array_equal(g * 3 * x * x, g * 3 * x ** 2, strict=True)


def test_the_square_s_second_derivative_is_unchanged() -> None:
    x = torch.tensor([-1.5, 0.0, 2.0, 3.25], requires_grad=True)
    (gx,) = torch.autograd.grad((x ** 2 * torch.sin(x)).sum(), x, create_graph=True)
    (gxx,) = torch.autograd.grad(gx.sum(), x)
    v = x.detach().numpy()
    np.testing.assert_allclose(gxx.numpy(), 2 * np.sin(v) + 4 * v * np.cos(v) - v**2 * np.sin(v), rtol=1e-14)
