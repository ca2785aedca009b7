"""The tape behaves as PyTorch's autograd (DESIGN.md, "The tape (PyTorch semantics)").

Each behaviour is tested together with a failing twin: the opposite case, or
the error PyTorch raises, so that a tape that ignored the behaviour altogether
could not pass.  Every op of the table is also checked against central finite
differences, to first and second order.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import symgrad as torch
from symgrad import ops
from symgrad.tape import AccumulateGrad, Tensor

BACKWARD_TWICE = "Trying to backward through the graph a second time"
NOT_SCALAR = "grad can be implicitly created only for scalar outputs"
NO_GRAD = "element 0 of tensors does not require grad and does not have a grad_fn"
UNUSED = (  # torch 2.13's words, for the input at index 1
    "The differentiated Tensor at index 1 appears to not have been used in the graph. "
    "Set allow_unused=True if this is the desired behavior."
)
NON_LEAF_GRAD = "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed"


def values(t: Tensor) -> np.ndarray:
    return t.detach().numpy()


def leaf(data: Any, dtype: Any = None) -> Tensor:
    return torch.tensor(data, requires_grad=True, dtype=dtype)


# ---------------------------------------------------------------- requires_grad, leaves, .grad


def test_requires_grad_propagates_to_results() -> None:
    x = leaf([1.0, 2.0])
    y = x * 3
    assert x.requires_grad and x.is_leaf and x.grad_fn is None
    assert y.requires_grad and not y.is_leaf and y.grad_fn is not None


def test_no_requires_grad_records_nothing() -> None:
    x = torch.tensor([1.0, 2.0])
    y = x * 3
    assert not x.requires_grad and not y.requires_grad
    assert y.grad_fn is None and y.is_leaf
    with pytest.raises(RuntimeError, match=NO_GRAD):
        y.sum().backward()


def test_requires_grad_only_for_floats() -> None:
    with pytest.raises(RuntimeError, match="Only Tensors of floating point"):
        torch.tensor([1, 2], requires_grad=True)


def test_requires_grad_of_a_non_leaf_cannot_be_switched_off() -> None:
    y = leaf([1.0]) * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
        y.requires_grad = False


def test_grad_is_none_before_backward() -> None:
    x = leaf([1.0, 2.0])
    assert x.grad is None
    (100 * x).sum().backward()
    assert x.grad is not None
    np.testing.assert_array_equal(values(x.grad), [100.0, 100.0])
    assert not x.grad.requires_grad and x.grad.grad_fn is None


def test_constant_leaf_gets_no_grad() -> None:
    x, c = leaf([1.0, 2.0]), torch.tensor([3.0, 4.0])
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(values(x.grad), [3.0, 4.0])


# ---------------------------------------------------------------- accumulation


def test_gradients_accumulate_until_zeroed() -> None:
    x = leaf([1.0, 2.0])
    for expected in ([2.0, 4.0], [4.0, 8.0], [6.0, 12.0]):
        (x * x).sum().backward()
        np.testing.assert_array_equal(values(x.grad), expected)
    x.grad = None  # what zero_grad(set_to_none=True) does
    (x * x).sum().backward()
    np.testing.assert_array_equal(values(x.grad), [2.0, 4.0])


def test_zero_in_place_then_accumulate() -> None:
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    g = x.grad
    g.zero_()
    (x * x).sum().backward()
    assert x.grad is g  # accumulated into the same tensor, as PyTorch does
    np.testing.assert_array_equal(values(x.grad), [2.0, 4.0])


def test_a_tensor_used_twice_gets_the_sum_of_both_paths() -> None:
    x = leaf(3.0)
    (x * x + 2 * x).backward()
    assert x.grad.item() == 8.0


# ---------------------------------------------------------------- backward on non-scalars


def test_backward_on_a_vector_needs_a_gradient() -> None:
    q = leaf([2.0, 3.0]) ** 3
    with pytest.raises(RuntimeError, match=NOT_SCALAR):
        q.backward()


def test_backward_on_a_vector_with_a_gradient() -> None:
    a = leaf([2.0, 3.0])
    (3 * a**3).backward(gradient=torch.tensor([1.0, 0.5]))
    np.testing.assert_array_equal(values(a.grad), [36.0, 40.5])


def test_gradient_of_the_wrong_shape_is_refused() -> None:
    q = leaf([2.0, 3.0]) * 2
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        q.backward(gradient=torch.tensor([1.0, 1.0, 1.0]))


def test_one_element_tensor_is_a_scalar_output() -> None:
    x = leaf([2.0])
    (x * x).backward()  # shape (1,): PyTorch creates the gradient implicitly
    assert x.grad.item() == 4.0


# ---------------------------------------------------------------- freed graphs


def test_backward_twice_through_saved_tensors_fails() -> None:
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()  # MulBackward0 saves both inputs
    loss.backward()
    with pytest.raises(RuntimeError, match=BACKWARD_TWICE) as err:
        loss.backward()
    assert "retain_graph=True" in str(err.value)


def test_retain_graph_allows_backward_twice() -> None:
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(values(x.grad), [4.0, 8.0])


def test_a_graph_without_saved_tensors_can_be_walked_twice() -> None:
    # as torch 2.13: adding a number saves nothing, so k's node can be walked again
    t = leaf(1.0)
    k = t + 2
    (2 * k).backward()
    (3 * k).backward()
    assert t.grad.item() == 5.0


def test_scaling_by_a_number_saves_it_so_a_second_walk_fails() -> None:
    # torch 2.13 wraps the 2 in a tensor MulBackward0 saves (tests/test_torch_surface.py checks against torch)
    t = leaf(1.0)
    k = 2 * t
    (2 * k).backward()
    with pytest.raises(RuntimeError, match=BACKWARD_TWICE):
        (3 * k).backward()


def test_autograd_grad_frees_the_graph_too() -> None:
    x = leaf(2.0)
    y = torch.exp(x)
    torch.autograd.grad(y, x)
    with pytest.raises(RuntimeError, match=BACKWARD_TWICE):
        torch.autograd.grad(y, x)


# ---------------------------------------------------------------- non-leaves, retain_grad


def test_non_leaf_grad_is_none_with_a_warning() -> None:
    x = leaf([1.0, 2.0])
    y = x * 2
    y.sum().backward()
    with pytest.warns(UserWarning, match=NON_LEAF_GRAD):
        assert y.grad is None


def test_leaf_grad_gives_no_warning() -> None:
    x = leaf([1.0, 2.0])
    (x * 2).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.grad is not None


def test_retain_grad_keeps_a_non_leaf_gradient() -> None:
    x = leaf([1.0, 2.0])
    y = x * 2
    y.retain_grad()
    (y * y).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(values(y.grad), [4.0, 8.0])
    assert y.retains_grad
    np.testing.assert_array_equal(values(x.grad), [8.0, 16.0])


# ---------------------------------------------------------------- detach, clone


def test_detach_cuts_the_graph() -> None:
    x = leaf([1.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    (x * 2 + d * 3).sum().backward()
    np.testing.assert_array_equal(values(x.grad), [2.0, 2.0])


def test_without_detach_both_paths_count() -> None:
    x = leaf([1.0, 2.0])
    (x * 2 + x * 3).sum().backward()
    np.testing.assert_array_equal(values(x.grad), [5.0, 5.0])


def test_detach_shares_the_data() -> None:
    x = leaf([1.0, 2.0])
    with torch.no_grad():
        x.detach().zero_()
    np.testing.assert_array_equal(values(x), [0.0, 0.0])


def test_detach_op_gives_no_gradient() -> None:
    x = leaf([1.0, 2.0])
    y = torch.detach(x)
    assert not y.requires_grad and y.grad_fn is None
    (x * 2 + torch.detach(x) * x).sum().backward()
    np.testing.assert_array_equal(values(x.grad), [3.0, 4.0])  # 2 + detach(x): nothing flows through


def test_clone_keeps_the_graph() -> None:
    x = leaf([1.0, 2.0])
    c = x.clone()
    assert c.grad_fn.name() == "CloneBackward0" and not c.is_leaf
    (c * 3).sum().backward()
    np.testing.assert_array_equal(values(x.grad), [3.0, 3.0])


def test_clone_of_a_detached_tensor_has_no_graph() -> None:
    # the tutorial's `pred = pred.clone().detach()`: the model gradients will be None
    x = leaf([1.0, 2.0])
    c = (x * 2).clone().detach()
    assert c.grad_fn is None and not c.requires_grad
    with pytest.raises(RuntimeError, match=NO_GRAD):
        c.sum().backward()
    assert x.grad is None


# ---------------------------------------------------------------- broadcasting


def test_broadcast_gradients_are_summed_back() -> None:
    a = leaf([[1.0], [2.0], [3.0]])  # (3, 1)
    b = leaf([10.0, 20.0, 30.0, 40.0])  # (4,)
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_array_equal(values(a.grad), [[100.0], [100.0], [100.0]])
    np.testing.assert_array_equal(values(b.grad), [6.0, 6.0, 6.0, 6.0])


def test_broadcast_of_a_zero_dim_tensor_and_a_python_number() -> None:
    s = leaf(2.0)
    m = leaf(np.ones((2, 3)))
    (s * m + 1.0).sum().backward()
    assert s.grad.shape == () and s.grad.item() == 6.0
    np.testing.assert_array_equal(values(m.grad), np.full((2, 3), 2.0))


def test_broadcast_with_a_gradient_argument() -> None:
    a = leaf([[1.0], [2.0]])  # (2, 1)
    b = leaf([1.0, 2.0, 3.0])  # (3,)
    (a + b).backward(gradient=torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    np.testing.assert_array_equal(values(a.grad), [[6.0], [15.0]])
    np.testing.assert_array_equal(values(b.grad), [5.0, 7.0, 9.0])


def test_shapes_that_do_not_broadcast_are_refused() -> None:
    with pytest.raises(ValueError):
        leaf([1.0, 2.0, 3.0]) * leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"size of tensor a \(3\) must match the size of tensor b \(2\)"):
        leaf([1.0, 2.0, 3.0]) * leaf([1.0, 2.0])  # torch's words (test_torch_surface compares them with torch)


# ---------------------------------------------------------------- grad_fn and next_functions


X = [1.0, 2.0]
M = [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda x, m: 100 * x, "MulBackward0"),
        (lambda x, m: x * x, "MulBackward0"),
        (lambda x, m: x - 1, "SubBackward0"),
        (lambda x, m: x - x, "SubBackward0"),
        (lambda x, m: 1 - x, "RsubBackward1"),  # rsub.Scalar
        (lambda x, m: x + 1, "AddBackward0"),
        (lambda x, m: 1 + x, "AddBackward0"),
        (lambda x, m: x / 2, "DivBackward0"),
        (lambda x, m: -x, "NegBackward0"),
        (lambda x, m: x**3, "PowBackward0"),  # pow.Tensor_Scalar
        (lambda x, m: x**x, "PowBackward1"),  # pow.Tensor_Tensor
        (lambda x, m: 2**x, "PowBackward2"),  # pow.Scalar
        (lambda x, m: x.sum(), "SumBackward0"),
        (lambda x, m: m.sum(0), "SumBackward1"),
        (lambda x, m: x.mean(), "MeanBackward0"),
        (lambda x, m: m.mean(axis=1), "MeanBackward1"),
        (lambda x, m: x.prod(), "ProdBackward0"),
        (lambda x, m: x.max(), "MaxBackward1"),  # max(Tensor) comes after max.dim
        (lambda x, m: m.max(0).values, "MaxBackward0"),  # max.dim: (values, indices), as torch
        (lambda x, m: x.min(), "MinBackward1"),
        (lambda x, m: torch.logsumexp(m, axis=1), "LogsumexpBackward0"),
        (lambda x, m: torch.exp(x), "ExpBackward0"),
        (lambda x, m: torch.log1p(x), "Log1PBackward0"),
        (lambda x, m: torch.sqrt(x), "SqrtBackward0"),
        (lambda x, m: torch.sigmoid(x), "SigmoidBackward0"),
        (lambda x, m: torch.relu(x), "ReluBackward0"),
        (lambda x, m: torch.maximum(x, x), "MaximumBackward0"),
        (lambda x, m: torch.atan2(x, x), "Atan2Backward0"),
        (lambda x, m: x.clone(), "CloneBackward0"),
        (lambda x, m: m @ m, "MmBackward0"),
        (lambda x, m: m @ x, "MvBackward0"),
        (lambda x, m: x @ x, "DotBackward0"),
        (lambda x, m: m.T, "PermuteBackward0"),
    ],
)
def test_grad_fn_names(make: Callable[[Tensor, Tensor], Tensor], name: str) -> None:
    y = make(leaf(X), leaf(M))
    assert y.grad_fn.name() == name
    assert repr(y.grad_fn).startswith(f"<{name} object at 0x")
    assert f"grad_fn=<{name}>" in repr(y)


def test_next_functions_end_in_accumulate_grad() -> None:
    x, w = leaf(X), leaf([3.0, 4.0])
    loss = (x * w).sum()
    (mul, zero), = loss.grad_fn.next_functions
    assert mul.name() == "MulBackward0" and zero == 0
    (acc_x, _), (acc_w, _) = mul.next_functions
    assert isinstance(acc_x, AccumulateGrad) and acc_x.variable is x and acc_w.variable is w
    assert acc_x.name() == "torch::autograd::AccumulateGrad" and acc_x.next_functions == ()
    assert x.grad_fn is None  # a leaf has no grad_fn; its AccumulateGrad is reached from its users
    assert (x * 2).grad_fn.next_functions[0][0] is acc_x  # one AccumulateGrad per leaf


def test_next_functions_of_constants_and_scalars() -> None:
    x = leaf(X)
    assert (x * torch.tensor([1.0, 1.0])).grad_fn.next_functions[1] == (None, 0)  # constant tensor
    assert (100 * x).grad_fn.next_functions[1] == (None, 0)  # a wrapped Python number keeps its slot
    assert len((x**2).grad_fn.next_functions) == 1  # a Scalar exponent is no input of PowBackward0
    assert len((1 - x).grad_fn.next_functions) == 1


# ---------------------------------------------------------------- no_grad


def test_no_grad_context_manager() -> None:
    x = leaf(X)
    with torch.no_grad():
        y = x * 2
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    z = x * 2  # and outside the block the graph is recorded again
    assert z.requires_grad and z.grad_fn is not None


@pytest.mark.parametrize("decorator", [torch.no_grad(), torch.no_grad], ids=["called", "bare"])
def test_no_grad_decorator(decorator: Any) -> None:
    @decorator
    def double(t: Tensor) -> Tensor:
        """Twice t."""
        return t * 2

    y = double(leaf(X))
    assert not y.requires_grad and y.grad_fn is None
    assert double.__name__ == "double" and double.__doc__ == "Twice t."
    assert torch.is_grad_enabled()


def test_no_grad_restores_the_mode_after_an_exception() -> None:
    with pytest.raises(ZeroDivisionError), torch.no_grad():
        1 / 0
    assert torch.is_grad_enabled()


def test_enable_grad_inside_no_grad() -> None:
    x = leaf(X)
    with torch.no_grad():
        with torch.enable_grad():
            y = x * 2
        z = x * 2
    assert y.requires_grad and not z.requires_grad


# ---------------------------------------------------------------- autograd.grad and higher orders


def test_autograd_grad_to_third_order() -> None:
    x = leaf(2.0)
    (d1,) = torch.autograd.grad(x**3, x, create_graph=True)
    (d2,) = torch.autograd.grad(d1, x, create_graph=True)
    (d3,) = torch.autograd.grad(d2, x)
    assert (d1.item(), d2.item(), d3.item()) == (12.0, 12.0, 6.0)  # 3x^2, 6x, 6
    assert d1.grad_fn is not None and d2.grad_fn is not None
    assert d3.grad_fn is None and not d3.requires_grad
    assert x.grad is None  # autograd.grad leaves .grad alone


def test_autograd_grad_without_create_graph_cannot_go_further() -> None:
    x = leaf(2.0)
    (d1,) = torch.autograd.grad(x**3, x)
    assert d1.item() == 12.0 and d1.grad_fn is None
    with pytest.raises(RuntimeError, match=NO_GRAD):
        torch.autograd.grad(d1, x)


def test_backward_with_create_graph_gives_a_differentiable_grad() -> None:
    x = leaf(3.0)
    (x**3).backward(create_graph=True)
    assert x.grad.item() == 27.0 and x.grad.grad_fn is not None
    (d2,) = torch.autograd.grad(x.grad, x)
    assert d2.item() == 18.0


def test_mixed_partials() -> None:
    x, y = leaf(2.0), leaf(3.0)
    f = x**2 * y**3  # f_xy = 6 x y^2 = 108, f_xx = 2 y^3 = 54, f_yy = 6 x^2 y = 72
    fx, fy = torch.autograd.grad(f, (x, y), create_graph=True)
    assert (fx.item(), fy.item()) == (108.0, 108.0)  # 2xy^3, 3x^2y^2
    fxx, fxy = torch.autograd.grad(fx, (x, y), retain_graph=True)
    fyx, fyy = torch.autograd.grad(fy, (x, y))
    assert (fxx.item(), fxy.item(), fyx.item(), fyy.item()) == (54.0, 108.0, 108.0, 72.0)


def test_autograd_grad_with_grad_outputs() -> None:
    x = leaf([1.0, 2.0])
    (g,) = torch.autograd.grad(x * x, x, grad_outputs=torch.tensor([1.0, 10.0]))
    np.testing.assert_array_equal(values(g), [2.0, 40.0])
    with pytest.raises(RuntimeError, match=NOT_SCALAR):
        torch.autograd.grad(x * x, x)


def test_unused_input_is_an_error() -> None:
    x, y = leaf(1.0), leaf(2.0)
    with pytest.raises(RuntimeError) as err:
        torch.autograd.grad(x * 2, (x, y))
    assert str(err.value) == UNUSED


def test_unused_input_allowed_gives_none() -> None:
    x, y = leaf(1.0), leaf(2.0)
    gx, gy = torch.autograd.grad(x * 2, (x, y), allow_unused=True)
    assert gx.item() == 2.0 and gy is None


def test_input_that_does_not_require_grad_is_an_error() -> None:
    x, c = leaf(1.0), torch.tensor(2.0)
    with pytest.raises(RuntimeError, match="One of the differentiated Tensors does not require grad"):
        torch.autograd.grad(x * c, (x, c))


def test_autograd_grad_with_respect_to_a_non_leaf() -> None:
    x = leaf(3.0)
    h = x * x
    (g,) = torch.autograd.grad(torch.sin(h), h)
    assert g.item() == pytest.approx(math.cos(9.0), rel=1e-15)


# ---------------------------------------------------------------- optim.SGD


def test_sgd_step_and_zero_grad() -> None:
    x = leaf([1.0, 2.0])
    opt = torch.optim.SGD([x], lr=0.1)
    (x * x).sum().backward()
    opt.step()
    np.testing.assert_allclose(values(x), [0.8, 1.6], rtol=0, atol=1e-15)
    assert x.is_leaf and x.requires_grad  # updated in place: still the same parameter
    opt.zero_grad()
    assert x.grad is None  # set_to_none=True is the default


def test_sgd_zero_grad_without_set_to_none_keeps_zeros() -> None:
    x = leaf([1.0, 2.0])
    opt = torch.optim.SGD([x], lr=0.1)
    (x * x).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(values(x.grad), [0.0, 0.0])


def test_sgd_without_zero_grad_accumulates() -> None:
    x = leaf(1.0)
    opt = torch.optim.SGD([x], lr=0.1)
    for _ in range(2):
        (x * x).backward()
        opt.step()
    # step 1: g = 2, x = 0.8; step 2: g = 2 + 1.6 (not zeroed), x = 0.8 - 0.36
    assert x.item() == pytest.approx(0.44, abs=1e-15)


@pytest.mark.parametrize(
    "momentum, trajectory",
    [
        # loss = p*p from p = 1, lr = 0.1.  buf_1 = g_1; buf_t = momentum * buf_{t-1} + g_t; p -= lr * buf
        (0.0, [0.8, 0.64, 0.512]),
        # g = 2 -> buf 2, p 0.8; g = 1.6 -> buf 3.4, p 0.46; g = 0.92 -> buf 3.98, p 0.062
        (0.9, [0.8, 0.46, 0.062]),
    ],
)
def test_sgd_momentum_against_hand_computed_values(momentum: float, trajectory: list[float]) -> None:
    p = leaf(1.0)
    opt = torch.optim.SGD([p], lr=0.1, momentum=momentum)
    got = []
    for _ in trajectory:
        opt.zero_grad()
        (p * p).backward()
        opt.step()
        got.append(p.item())
    np.testing.assert_allclose(got, trajectory, rtol=0, atol=1e-14)


def test_sgd_skips_parameters_without_grad_and_refuses_bad_lr() -> None:
    x = leaf([1.0])
    torch.optim.SGD([x], lr=0.1).step()
    assert x.item() == 1.0
    with pytest.raises(ValueError, match="Invalid learning rate"):
        torch.optim.SGD([x], lr=-1.0)


# ---------------------------------------------------------------- float32 stays float32


FLOAT32_CASES = {
    "scalar mul": lambda x: x * 2.5,
    "scalar rdiv": lambda x: 1.5 / x,
    "scalar pow": lambda x: x**2.5,
    "scalar base pow": lambda x: 2.0**x,
    "tensor pow": lambda x: x**x,
    "x**0": lambda x: x**0,
    "relu (where)": lambda x: torch.relu(x - 1.5),
    "abs (sign)": lambda x: torch.abs(x - 1.5),
    "maximum (step)": lambda x: torch.maximum(x, 1.5),
    "max (tie share)": lambda x: torch.max(x),
    "mean": lambda x: x.mean(),
    "log2": lambda x: torch.log2(x),
    "erf": lambda x: torch.erf(x),
    "logsumexp": lambda x: torch.logsumexp(x, axis=0),
    "matmul": lambda x: x @ x,
    "numpy scalar": lambda x: x * np.float64(3.0),
}


@pytest.mark.parametrize("make", FLOAT32_CASES.values(), ids=FLOAT32_CASES.keys())
def test_float32_through_forward_and_backward(make: Callable[[Tensor], Tensor]) -> None:
    x = leaf([1.0, 2.0, 3.0], dtype=torch.float32)
    y = make(x)
    assert y.dtype == torch.float32
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)  # no cast on the way: see each VJP's dtype
    assert g.dtype == torch.float32
    if g.requires_grad:
        (h,) = torch.autograd.grad(g.sum(), x, allow_unused=True, retain_graph=True)  # keeps y's graph
        assert h is None or h.dtype == torch.float32
    y.sum().backward()
    assert x.grad.dtype == torch.float32


@pytest.mark.parametrize("op", [op for op in ops.public_ops() if op.differentiable], ids=lambda op: op.name)
def test_float32_every_op(op: ops.Op) -> None:
    args = [leaf(a, dtype=torch.float32) if v is not None else a.astype(np.float32)
            for a, v in zip(_sample(op, np.random.default_rng(1)), op.vjps)]
    y = op(*args, **_params(op))
    assert y.dtype == torch.float32
    grads = torch.autograd.grad(y.sum(), [a for a, v in zip(args, op.vjps) if v is not None])
    assert all(g.dtype == torch.float32 for g in grads)


def test_float64_beats_float32_between_tensors() -> None:
    x = leaf([1.0, 2.0], dtype=torch.float32)
    y = x * torch.tensor([1.0, 2.0])  # float64 default: promotion as between two real tensors
    assert y.dtype == torch.float64
    y.sum().backward()
    assert x.grad.dtype == torch.float32  # a leaf's grad has the leaf's dtype


def test_float64_gradient_for_a_float32_output_is_cast() -> None:
    x = leaf([1.0, 2.0], dtype=torch.float32)
    (g,) = torch.autograd.grad(x * x, x, grad_outputs=torch.tensor([1.0, 1.0]))
    assert g.dtype == torch.float32


# ---------------------------------------------------------------- every op against finite differences


def _spread(rng: np.random.Generator, shape: tuple[int, ...], lo: float, hi: float) -> np.ndarray:
    """Uniform values in [lo, hi]: inside an op's domain."""
    return rng.uniform(lo, hi, size=shape)


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(0.4, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def _distinct(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """No ties and gaps of at least 0.1: max/min pick the same element under a finite-difference step."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.1 - 1.0).reshape(shape)


DOMAINS: dict[str, Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]] = {
    "log": lambda r, s: _spread(r, s, 0.5, 2.0),
    "log2": lambda r, s: _spread(r, s, 0.5, 2.0),
    "log10": lambda r, s: _spread(r, s, 0.5, 2.0),
    "sqrt": lambda r, s: _spread(r, s, 0.5, 2.0),
    "log1p": lambda r, s: _spread(r, s, -0.5, 2.0),
    "asin": lambda r, s: _spread(r, s, -0.8, 0.8),
    "acos": lambda r, s: _spread(r, s, -0.8, 0.8),
    "atanh": lambda r, s: _spread(r, s, -0.8, 0.8),
    "acosh": lambda r, s: _spread(r, s, 1.2, 3.0),
    "tan": lambda r, s: _spread(r, s, -1.0, 1.0),
    "abs": _away_from_zero,
    "relu": _away_from_zero,
    "div": _away_from_zero,
    "prod": _away_from_zero,
    "atan2": _away_from_zero,
    "hypot": _away_from_zero,
    "max": _distinct,
    "min": _distinct,
}

UNARY_SHAPE, BINARY_SHAPES = (5,), ((3, 1), (4,))  # binary ops are checked broadcasting
TERNARY_SHAPES = ((3, 1), (4,), (3, 4))


def _sample(op: ops.Op, rng: np.random.Generator, shapes: Any = None) -> list[np.ndarray]:
    if op.name == "pow":  # positive base, any exponent
        x0, y0 = shapes or BINARY_SHAPES
        return [rng.uniform(0.5, 2.0, size=x0), rng.uniform(-1.5, 1.5, size=y0)]
    if op.name in ("maximum", "minimum"):  # no ties: |x - y| >= 0.2
        x = rng.uniform(-2.0, 2.0, size=(3, 1))
        return [x, x + _spread(rng, (4,), 0.2, 1.0) * rng.choice([-1.0, 1.0], size=(3, 4))]
    if op.name == "matmul":
        a0, b0 = shapes or ((3, 4), (4, 2))
        return [rng.normal(size=a0), rng.normal(size=b0)]
    if op.name == "transpose":
        return [rng.normal(size=shapes[0] if shapes else (3, 4))]
    if op.samples:  # shapes and indexing: the op's first example
        return [rng.uniform(-2.0, 2.0, size=s) for s in op.samples[0][0]]
    draw = DOMAINS.get(op.name, lambda r, s: r.uniform(-2.0, 2.0, size=s))
    if op.kind == ops.REDUCTION:
        return [draw(rng, shapes[0] if shapes else (3, 4))]
    # an op not listed above draws each argument from its own domain (the default where unrestricted)
    per_arg = [draw if op.name in DOMAINS or d.joint or d is ops.Domain.REAL else d.draw for d in op.domain]
    per_arg += [per_arg[-1]] * (op.arity - len(per_arg))
    arg_shapes = (UNARY_SHAPE,) if op.arity == 1 else BINARY_SHAPES if op.arity == 2 else TERNARY_SHAPES
    return [f(rng, s) for f, s in zip(per_arg, arg_shapes)]


def _params(op: ops.Op, axis: Any = None) -> dict[str, Any]:
    if op.samples:
        return dict(op.samples[0][1])
    return {"axis": axis} if op.kind == ops.REDUCTION else {}


def _loss(op: ops.Op, params: dict[str, Any], weights: np.ndarray) -> Callable[..., Tensor]:
    """sum(w * op(args)): a scalar whose gradient exercises every output element differently."""
    return lambda *args: (op(*args, **params) * weights).sum()


def _finite_difference(f: Callable[[list[np.ndarray]], float], xs: list[np.ndarray], h: float) -> list[np.ndarray]:
    grads = []
    for i, x in enumerate(xs):
        g = np.zeros_like(x)
        for k in np.ndindex(x.shape):
            up, down = [a.copy() for a in xs], [a.copy() for a in xs]
            up[i][k] += h
            down[i][k] -= h
            g[k] = (f(up) - f(down)) / (2 * h)
        grads.append(g)
    return grads


def _tape_grads(loss: Callable[..., Tensor], xs: list[np.ndarray]) -> list[np.ndarray]:
    args = [leaf(x) for x in xs]
    return [values(g) for g in torch.autograd.grad(loss(*args), args)]


def _value(loss: Callable[..., Tensor], xs: list[np.ndarray]) -> float:
    with torch.no_grad():
        return loss(*(torch.tensor(x) for x in xs)).item()


FD_CASES: list[tuple[ops.Op, Any, Any]] = []  # (op, axis, shapes)
for _op in ops.public_ops():
    if not _op.differentiable:
        continue
    if _op.kind == ops.REDUCTION:
        for _axis in (None, 0, 1, -1, (0, 1)):
            FD_CASES.append((_op, _axis, None))
        FD_CASES.append((_op, 0, ((5,),)))
    elif _op.name == "matmul":
        for _shapes in (((3, 4), (4, 2)), ((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 2))):
            FD_CASES.append((_op, None, _shapes))
    elif _op.name == "transpose":
        FD_CASES += [(_op, None, ((3, 4),)), (_op, None, ((4,),))]
    else:
        FD_CASES.append((_op, None, None))
FD_IDS = [
    f"{op.name}" + (f"-axis{axis}" if axis is not None else "") + (f"-{shapes}" if shapes else "")
    for op, axis, shapes in FD_CASES
]


def _case(op: ops.Op, axis: Any, shapes: Any, seed: int = 0) -> tuple[list[np.ndarray], Callable[..., Tensor]]:
    rng = np.random.default_rng(seed)
    xs = _sample(op, rng, shapes)
    params = _params(op, axis)
    with torch.no_grad():
        out_shape = op(*(torch.tensor(x) for x in xs), **params).shape
    loss = _loss(op, params, rng.uniform(0.5, 1.5, size=out_shape))
    if all(v is not None for v in op.vjps):
        return xs, loss
    # arguments without a gradient (where's condition, copysign's y) are constants
    live = [i for i, v in enumerate(op.vjps) if v is not None]

    def partial(*args: Any) -> Tensor:
        full = list(xs)
        for i, a in zip(live, args):
            full[i] = a
        return loss(*full)

    return [xs[i] for i in live], partial


def test_every_differentiable_op_is_covered() -> None:
    names = {op.name for op, _, _ in FD_CASES}
    flat = ["sign", "floor", "ceil", "round", "detach"]  # derivative 0 everywhere: no VJP
    conditions = {op.name for op in ops.public_ops() if op.kind == ops.CONDITION}  # booleans: tests/test_conditions.py
    assert names == {op.name for op in ops.public_ops()} - set(flat) - conditions
    assert sorted(op.name for op in ops.public_ops() if not op.differentiable) == sorted([*flat, *conditions])


@pytest.mark.parametrize("op, axis, shapes", FD_CASES, ids=FD_IDS)
def test_gradient_matches_finite_differences(op: ops.Op, axis: Any, shapes: Any) -> None:
    xs, loss = _case(op, axis, shapes)
    tape = _tape_grads(loss, xs)
    fd = _finite_difference(lambda zs: _value(loss, zs), xs, h=1e-6)
    for t, f, x in zip(tape, fd, xs):
        assert t.shape == x.shape
        np.testing.assert_allclose(t, f, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op, axis, shapes", FD_CASES, ids=FD_IDS)
def test_second_derivative_matches_finite_differences_of_the_first(op: ops.Op, axis: Any, shapes: Any) -> None:
    """d/dx (v . grad L(x)) from create_graph, against central differences of the tape's own gradient."""
    xs, loss = _case(op, axis, shapes)
    vs = [np.random.default_rng(7).uniform(-1.0, 1.0, size=x.shape) for x in xs]

    def directional(zs: list[np.ndarray]) -> float:
        return float(sum(np.sum(g * v) for g, v in zip(_tape_grads(loss, zs), vs)))

    args = [leaf(x) for x in xs]
    first = torch.autograd.grad(loss(*args), args, create_graph=True)
    s = sum(((g * torch.tensor(v)).sum() for g, v in zip(first, vs)), torch.tensor(0.0))
    if s.requires_grad:
        second = [
            np.zeros(x.shape) if g is None else values(g)
            for g, x in zip(torch.autograd.grad(s, args, allow_unused=True), xs)
        ]
    else:  # the first derivative does not depend on the inputs (linear ops, relu, abs, max ...)
        second = [np.zeros(x.shape) for x in xs]
    fd = _finite_difference(directional, xs, h=1e-5)
    for t, f in zip(second, fd):
        np.testing.assert_allclose(t, f, rtol=1e-5, atol=1e-5)


def test_finite_differences_do_catch_a_wrong_gradient() -> None:
    # the twin of the sweep above: the same check rejects sin's gradient put on cos
    xs, loss = _case(ops.sin, None, None)
    wrong = _tape_grads(_loss(ops.cos, {}, np.ones(5)), xs)
    fd = _finite_difference(lambda zs: _value(_loss(ops.sin, {}, np.ones(5)), zs), xs, h=1e-6)
    assert not np.allclose(wrong[0], fd[0], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- conventions at kinks (PyTorch's)


def _grad_at(f: Callable[..., Tensor], *points: Any) -> list[Any]:
    args = [leaf(p) for p in points]
    f(*args).sum().backward()
    return [values(a.grad).tolist() for a in args]


@pytest.mark.parametrize(
    "f, points, expected",
    [
        (torch.relu, [[0.0, 0.5, -0.5]], [[0.0, 1.0, 0.0]]),  # relu'(0) = 0
        (torch.abs, [[0.0, 0.5, -0.5]], [[0.0, 1.0, -1.0]]),  # abs'(0) = 0
        (torch.maximum, [[1.0, 2.0, 0.0], [1.0, 1.0, 1.0]], [[0.5, 1.0, 0.0], [0.5, 0.0, 1.0]]),  # ties 1/2
        (torch.minimum, [[1.0, 2.0, 0.0], [1.0, 1.0, 1.0]], [[0.5, 0.0, 1.0], [0.5, 1.0, 0.0]]),
        (torch.sqrt, [[0.0, 4.0]], [[math.inf, 0.25]]),  # sqrt'(0) = +inf
        (lambda x: x**0, [[0.0, 2.0]], [[0.0, 0.0]]),  # d/dx x**0 = 0, even at 0
        (lambda x: x**1, [[0.0, 2.0]], [[1.0, 1.0]]),
        (lambda x, y: x**y, [[0.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, math.log(2.0)]]),  # tensor exponent 0
        (lambda x, y: x**y, [[0.0, 2.0], [2.0, 2.0]], [[0.0, 4.0], [0.0, 4.0 * math.log(2.0)]]),  # d/dy at x=0: 0
    ],
    ids=["relu", "abs", "maximum", "minimum", "sqrt", "pow0", "pow1", "pow-y0", "pow-dy-at-0"],
)
def test_kink_conventions(f: Callable[..., Tensor], points: list[Any], expected: list[Any]) -> None:
    assert _grad_at(f, *points) == expected


@pytest.mark.parametrize("reduce", [torch.max, torch.min])
def test_max_min_reduction_split_ties_evenly(reduce: Any) -> None:
    data = [5.0, 5.0, 5.0] if reduce is torch.max else [1.0, 1.0, 1.0]
    x = leaf([3.0] + data + [3.0])
    reduce(x).backward()
    np.testing.assert_allclose(values(x.grad), [0.0, 1 / 3, 1 / 3, 1 / 3, 0.0], rtol=0, atol=1e-16)


@pytest.mark.parametrize("reduce", [torch.max, torch.min])
def test_max_min_reduction_without_ties_is_one_hot(reduce: Any) -> None:
    x = leaf([3.0, 5.0, 1.0, 4.0])
    reduce(x).backward()
    assert values(x.grad).tolist() == ([0.0, 1.0, 0.0, 0.0] if reduce is torch.max else [0.0, 0.0, 1.0, 0.0])


def test_max_reduction_over_an_axis_splits_ties_per_row() -> None:
    # DESIGN's convention (ties split evenly); PyTorch's max(dim) would pick one index
    x = leaf([[1.0, 1.0], [0.0, 2.0]])
    torch.max(x, axis=1).sum().backward()
    assert values(x.grad).tolist() == [[0.5, 0.5], [0.0, 1.0]]


def test_pow_with_exponent_two_at_zero_base_has_zero_exponent_gradient() -> None:
    # without the convention x**y * log(x) is 0 * -inf = nan
    x, y = leaf(0.0), leaf(2.0)
    (x**y).backward()
    assert y.grad.item() == 0.0 and not math.isnan(y.grad.item())
    assert x.grad.item() == 0.0


def test_scalar_base_pow_gradient() -> None:
    x = leaf([0.0, 1.0])
    (2.0**x).sum().backward()
    np.testing.assert_allclose(values(x.grad), [math.log(2.0), 2 * math.log(2.0)], rtol=1e-15)
    y = leaf([1.0, 2.0])
    (0.0**y).sum().backward()  # d/dy 0**y for y > 0: the convention, not nan
    assert values(y.grad).tolist() == [0.0, 0.0]


# ---------------------------------------------------------------- Tensor basics used by the tutorial


def test_tensor_attributes() -> None:
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.shape == (2, 3) and repr(x.shape) == "torch.Size([2, 3])"
    assert x.T.shape == (3, 2) and x.dtype == torch.float64
    assert x.sum().item() == 21.0
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad"):
        x.numpy()
    assert torch.tensor([1, 2]).dtype == torch.int64
    assert torch.tensor([1.0, 2.0], dtype=torch.float32).dtype == torch.float32


def test_comparisons_record_nothing() -> None:
    a = leaf([2.0, 3.0])
    eq = 9 * a**2 == torch.tensor([36.0, 81.0])
    assert eq.dtype == torch.bool and not eq.requires_grad
    assert repr(eq) == "tensor([True, True])"


@pytest.mark.parametrize("size", [1, 1000, ops._ERF_BY_ELEMENT + 1])  # math.erf per element, then scipy's ufunc
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_erf_is_within_two_ulp_of_the_true_value_at_any_size(size: int, dtype: Any) -> None:
    import mpmath

    x = np.linspace(-4.0, 4.0, size).astype(dtype)
    y = ops._erf(x)
    assert y.dtype == dtype and y.shape == x.shape
    picks = np.unique(np.linspace(0, size - 1, 200).astype(int))
    true = np.array([float(mpmath.erf(mpmath.mpf(float(v)))) for v in x[picks]]).astype(dtype)
    ulps = np.abs(y[picks].astype(np.float64) - true) / np.spacing(np.abs(true).astype(dtype)).astype(np.float64)
    assert ulps.max() <= 2
    wrong = y[picks] * (1 + 8 * np.finfo(dtype).eps)  # the twin: off by 8 ULP is caught
    assert (np.abs(wrong.astype(np.float64) - true) / np.spacing(np.abs(true).astype(dtype))).max() > 2


@pytest.mark.slow
def test_a_small_erf_does_not_import_scipy() -> None:
    import subprocess
    import sys

    code = ("import sys, numpy as np\nfrom symgrad import ops\nops._erf(np.linspace(-1, 1, 100))\n"
            "print('scipy.special' in sys.modules)\nops._erf(np.zeros(ops._ERF_BY_ELEMENT + 1))\n"
            "print('scipy.special' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.split()
    assert out == ["False", "True"]
