"""The shortcuts that cut the tape's fixed cost per op and per check keep every result: one numpy error state
for a whole walk, dtype comparisons without ``np.dtype()``, the cached 16-bit test of ``check_gradients``, the
checking backend's leaves and ``apply``.  Each is checked against the plain path, with a twin showing the check
catches a wrong result."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import symgrad as torch
from symgrad.backends import base
from symgrad.backends.symgrad_tape import SymgradBackend
from symgrad.ir import ops
from symgrad.ir.parse import parse
from symgrad.tape import dtypes, graph


def _state() -> dict[str, str]:
    return dict(np.geterr())


def test_quiet_inside_quiet_sets_nothing_and_the_outer_state_comes_back() -> None:
    with np.errstate(divide="raise", over="warn"):
        before = _state()
        outer = graph._quiet()
        assert outer is not None and _state()["divide"] == "ignore"
        assert graph._quiet() is None  # already ignoring: nothing to set, nothing to reset
        graph._loud(None)
        assert _state()["divide"] == "ignore"
        graph._loud(outer)
        assert _state() == before


def test_an_op_outside_a_walk_still_silences_numpy_and_restores_the_callers_state() -> None:
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    with np.errstate(all="raise"):
        y = torch.log(x)  # log(0): numpy would raise under the caller's state, the op ignores it
        assert np.isneginf(y.detach().numpy()[0])
        with pytest.raises(FloatingPointError):  # twin: the caller's "raise" is back after the op
            np.log(np.array([0.0]))


def test_the_checking_walk_ignores_numpy_errors_and_restores_the_callers_state() -> None:
    be = SymgradBackend()
    expr = parse("log(a) + 1/b")
    leaves = {"a": be.leaf(np.array([0.0, 2.0]), True), "b": be.leaf(np.array([0.0, 4.0]), True)}
    with np.errstate(all="raise"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = be.walk(expr, leaves)
        assert np.isnan(out.detach().numpy()[0]) or np.isinf(out.detach().numpy()[0])
        assert out.detach().numpy()[1] == np.log(2.0) + 0.25
        with pytest.raises(FloatingPointError):  # twin: the walk left the caller's state as it was
            np.divide(np.array([1.0]), np.array([0.0]))


def test_the_checking_walk_gives_the_tapes_own_values_and_gradients() -> None:
    be = SymgradBackend()
    rng = np.random.default_rng(1)
    A, B = rng.uniform(0.5, 2, 50), rng.uniform(0.5, 2, 50)
    expr = parse("3*a**3 - b**2 + sin(a)*exp(-b) + tanh(a*b) + log(a+b)")
    value, grads = be.gradients(expr, {"a": A, "b": B}, ["a", "b"], 1, np.ones(50))
    a, b = torch.tensor(A, requires_grad=True), torch.tensor(B, requires_grad=True)
    y = 3 * a**3 - b**2 + torch.sin(a) * torch.exp(-b) + torch.tanh(a * b) + torch.log(a + b)
    y.sum().backward()
    assert np.array_equal(value, y.detach().numpy())
    assert np.array_equal(grads[("a",)], a.grad.numpy()) and np.array_equal(grads[("b",)], b.grad.numpy())
    assert grads[("a",)] is not A and not np.shares_memory(grads[("a",)], A)
    wrong = parse("3*a**3 - b**2 + sin(a)*exp(-b) + tanh(a*b) + log(a-b)")  # twin: another expression differs
    value2, _ = be.gradients(wrong, {"a": A, "b": B}, ["a", "b"], 1, np.ones(50))
    assert not np.array_equal(value, value2)


def test_the_checking_backends_apply_is_the_tables_apply() -> None:
    be = SymgradBackend()
    x = torch.tensor([1.0, 4.0], requires_grad=True)
    assert be.apply(ops.std, [x], {}).item() == np.std([1.0, 4.0])  # the table's ddof 0, not torch.std's 1
    assert torch.std(x).item() != np.std([1.0, 4.0])  # twin: torch's spelling is another number
    assert be.apply(ops.add, [1.0, 2.0], {}) == 3.0  # no tensor among the arguments: the plain forward


@pytest.mark.parametrize("a, b", [(dtypes.float64, dtypes.float64), (dtypes.float32, np.dtype("float32")),
                                  (dtypes.int64, np.int64), (dtypes.float64, "float64")])
def test_dtype_equality_without_conversion_agrees_with_numpys(a: dtypes.dtype, b: object) -> None:
    assert a == b and b == a  # both ways round: the reflected comparison too
    assert np.dtype(a.dtype) == np.dtype(b)  # type: ignore[call-overload]


@pytest.mark.parametrize("a, b", [(dtypes.float64, dtypes.float32), (dtypes.float32, np.dtype("float64")),
                                  (dtypes.int64, np.float64), (dtypes.bool_, "int64")])
def test_dtype_inequality_without_conversion_agrees_with_numpys(a: dtypes.dtype, b: object) -> None:
    assert a != b and b != a
    assert np.dtype(a.dtype) != np.dtype(b)  # type: ignore[call-overload]


def test_dtype_compares_unequal_to_what_is_no_dtype() -> None:
    assert dtypes.float64 != object() and dtypes.float64 != [1]


def test_tensor_keeps_float32_and_widens_nothing_else() -> None:
    assert torch.tensor(np.ones(2, np.float32)).dtype == torch.float32
    assert torch.tensor(np.ones(2)).dtype == torch.float64
    assert torch.tensor(np.ones(2, np.int32)).dtype == torch.int64
    assert torch.tensor(np.ones(2, np.float32)).dtype != torch.float64  # twin


def test_the_cached_16_bit_test_is_numpys_name() -> None:
    for d in (np.dtype("float16"), np.dtype("float32"), np.dtype("float64"), np.dtype("int64")):
        assert base._narrow(d) == (d.name in ("float16", "bfloat16"))
        assert base._narrow(d) == base._narrow.__wrapped__(d)


def test_a_wider_value_for_16_bit_inputs_is_still_an_engine_error() -> None:
    inputs = {"a": np.ones(3, np.float16)}
    base._check_narrow_value(SymgradBackend(), np.ones(3, np.float16), inputs)  # the case's format: fine
    with pytest.raises(base.BackendError, match="float32 forward value for float16 inputs"):
        base._check_narrow_value(SymgradBackend(), np.ones(3, np.float32), inputs)


def test_a_gradient_in_another_dtype_is_still_named() -> None:
    inputs = {"a": np.ones(3), "h": np.ones(3, np.float16)}
    base.check_gradients(SymgradBackend(), np.ones(3), {("a",): np.ones(3)}, {"a": np.ones(3)})
    with pytest.raises(base.BackendError, match=r"float32 gradient d/da for the float64 input 'a'"):
        base.check_gradients(SymgradBackend(), np.ones(3), {("a",): np.ones(3, np.float32)}, {"a": inputs["a"]})
    with pytest.raises(base.BackendError, match=r"gradient d\^2/da dh for the float16 input 'h'"):
        base.check_gradients(SymgradBackend(), np.ones(3, np.float16), {("a", "h"): np.ones(3)}, inputs)
