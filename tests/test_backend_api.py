"""The backend API for both kinds of engine: the public walker (constant folding, constant-first calls,
wrapping), declared capabilities (skipped with the reason), the gradient dtype check naming the engine,
and FunctionalBackend with check_function.  Each passing check has a twin that fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import symgrad
from symgrad.backends.base import Backend, Capabilities, FunctionalBackend
from symgrad.backends.symgrad_tape import SymgradBackend
from symgrad.ir import ops
from symgrad.ir.parse import parse

autograd = pytest.importorskip("autograd")
import autograd.numpy as anp


class Recorder(Backend):
    """Records what the walker hands to ``apply``; computes with numpy."""

    name = "recorder"

    def __init__(self, wrap: bool = False) -> None:
        self.calls: list[tuple[str, list[Any]]] = []
        self.capabilities = Capabilities(wrap_constants=wrap)

    def wrap(self, value: Any, like: Any) -> Any:
        return ("wrapped", value)

    def apply(self, op: Any, args: list, params: dict) -> Any:
        self.calls.append((op.name, list(args)))
        return op.forward(*(a[1] if isinstance(a, tuple) else a for a in args), **params)


def test_constant_only_subtrees_are_folded_in_the_walker() -> None:
    b = Recorder()
    x = np.array([4.0])
    out = b.walk(parse("x ** -0.5 + exp(1.0 + 2.0) * x"), {"x": x})
    np.testing.assert_allclose(out, x ** -0.5 + np.exp(3.0) * x)
    assert [name for name, _ in b.calls] == ["pow", "mul", "add"]  # neg, add of constants, exp: folded
    pow_args = b.calls[0][1]
    assert pow_args[1] == -0.5 and isinstance(pow_args[1], float)
    # twin: with no constant subtree, every op reaches apply
    b2 = Recorder()
    b2.walk(parse("exp(x + x)"), {"x": x})
    assert [name for name, _ in b2.calls] == ["add", "exp"]


def test_constant_first_calls_get_a_float_or_the_wrapped_constant() -> None:
    x = np.array([0.5, 2.0])
    plain, wrapped = Recorder(), Recorder(wrap=True)
    np.testing.assert_allclose(plain.walk(parse("maximum(1.0, x)"), {"x": x}), [1.0, 2.0])
    assert plain.calls == [("maximum", [1.0, x])]
    wrapped.walk(parse("maximum(1.0, x)"), {"x": x})
    assert wrapped.calls[0][1][0] == ("wrapped", 1.0)


class Declared(SymgradBackend):
    def __init__(self, **caps: Any) -> None:
        self.name = "declared"
        self.capabilities = Capabilities(**caps)


def test_declared_capabilities_skip_with_the_engine_and_what_it_lacks() -> None:
    no_erf = Declared(ops=frozenset(op for op in ops.engine_ops() if op is not ops.erf))
    r = symgrad.check("erf(x) + x", backend=no_erf, x=[0.5])
    assert r.status == "skip" and r.reason == "backend 'declared' lacks op 'erf'"
    assert symgrad.check("sin(x) + x", backend=no_erf, x=[0.5]).status == "pass"  # twin: declared ops run
    first = Declared(max_order=1)
    r = symgrad.check("sin(x)", backend=first, order=2, x=[0.5])
    assert r.status == "skip" and r.reason == "backend 'declared' lacks order 2 (it differentiates up to order 1)"
    assert symgrad.check("sin(x)", backend=first, order=1, x=[0.5]).status == "pass"
    f64 = Declared(dtypes=("float64",))
    r = symgrad.check("sin(x)", backend=f64, dtype="float32", x=[0.5])
    assert r.status == "skip" and "lacks dtype float32 (it computes in float64)" in r.reason
    assert symgrad.check("sin(x)", backend=f64, x=[0.5]).status == "pass"


class AutogradVjp(FunctionalBackend):
    """The smallest functional engine: HIPS autograd's make_vjp behind FunctionalBackend."""

    name = "agvjp"

    def __init__(self, cast: str | None = None) -> None:
        self.cast = cast

    def array(self, array: np.ndarray) -> Any:
        return np.array(array)

    def apply(self, op: Any, args: list, params: dict) -> Any:
        fn = {"sin": anp.sin, "mul": lambda a, b: a * b, "add": lambda a, b: a + b, "exp": anp.exp,
              "pow": lambda a, b: a ** b}[op.name]
        return fn(*args, **params)

    def vjp(self, fn: Callable[..., Any], inputs: list, grad_output: Any) -> tuple[Any, list]:
        def f(w: tuple) -> Any:
            return fn(*w)

        pull, out = autograd.make_vjp(f)(tuple(inputs))
        seed = anp.ones(anp.shape(out)) if grad_output is None else grad_output
        grads = list(pull(seed))
        if self.cast:
            grads = [anp.asarray(g).astype(self.cast) for g in grads]
        return out, grads

    def sum(self, value: Any) -> Any:
        return anp.sum(value)

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value)


def test_a_functional_backend_checks_ir_and_higher_orders() -> None:
    b = AutogradVjp()
    assert symgrad.check("sin(x) * y + exp(x)", backend=b, order=3, x=[0.3, 1.2], y=[2.0, -1.0]).status == "pass"


def test_check_function_on_a_functional_backend() -> None:
    b = AutogradVjp()
    good = symgrad.check_function(lambda x: anp.sin(x) * x, "sin(x) * x", backend=b, order=2, x=[0.3, 1.2])
    assert good.status == "pass", good.table()
    wrong = symgrad.check_function(lambda x: anp.sin(x) * x, "cos(x) * x", backend=b, x=[0.3, 1.2])
    assert wrong.status == "fail"


def test_a_gradient_in_the_wrong_dtype_is_an_error_naming_the_engine() -> None:
    r = symgrad.check("sin(x)", backend=AutogradVjp(cast="float32"), x=[0.3])
    assert r.status == "error"
    assert "backend 'agvjp' returned a float32 gradient d/dx for the float64 input 'x'" in r.reason
    assert symgrad.check("sin(x)", backend=AutogradVjp(cast="float64"), x=[0.3]).status == "pass"


def test_check_function_on_a_tape_subclass_that_overrides_gradients() -> None:
    """A backend that subclasses TapeBackend for its walker but drives its own gradients: the user's
    function replaces the forward pass of that driver (no bare NotImplementedError from ``leaf``)."""

    class OwnDriver(SymgradBackend):
        name = "own"

        def gradients(self, expr, inputs, wrt, order, grad_output):  # type: ignore[no-untyped-def]
            return super().gradients(expr, inputs, wrt, order, grad_output)

    good = symgrad.check_function(lambda x: symgrad.sin(x), "sin(x)", backend=OwnDriver(), x=[0.3])
    assert good.status == "pass", good.table()
    assert symgrad.check_function(lambda x: symgrad.cos(x), "sin(x)", backend=OwnDriver(), x=[0.3]).status == "fail"


def test_per_backend_xfail_and_skip_maps(tmp_path: Any) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("cases:\n"
                 "  - name: wrong-on-declared\n    expr: sin(x)\n    inputs: {x: [0.5]}\n"
                 "    expect: {x: 2.0}\n    xfail: {declared: 'a known difference'}\n"
                 "  - name: skipped-on-declared\n    expr: sin(x)\n    inputs: {x: [0.5]}\n"
                 "    skip: {declared: 'not here'}\n")
    cases = symgrad.load_cases(f)
    on = [symgrad.run_case(c, backend=Declared()) for c in cases]
    assert [r.status for r in on] == ["xfail", "skip"] and on[1].reason == "not here"
    off = [symgrad.run_case(c, backend="symgrad") for c in cases]
    assert [r.status for r in off] == ["fail", "pass"]  # the maps name another backend: they do not apply
