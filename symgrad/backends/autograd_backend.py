"""The ``autograd`` backend: HIPS autograd, checked against sympy.

HIPS autograd differentiates Python functions, not tapes, so this backend
implements :meth:`Backend.gradients` directly: the IR becomes a function of the
``wrt`` inputs written with ``autograd.numpy`` (the other inputs are constants),
order 1 is its VJP (``make_vjp``) with ``grad_output``, and order k the ``grad``
of the sum of order k - 1, nested as ``grad(grad(f))`` is.

The ops are chosen to give symgrad's conventions at non-differentiable points:
``relu`` is ``where(x > 0, x, 0)`` (0 at 0; ``maximum(x, 0)`` would give 1/2),
``detach`` drops autograd's boxes (``getval``), and autograd's own ``abs``,
``maximum``/``minimum`` (1/2 at ties) and ``max``/``min`` (ties split evenly)
already agree.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

import numpy as np

from symgrad.ir.expr import Const, Expr, Var, evaluate
from symgrad.ir.ops import Op
from symgrad.backends.base import Backend, Grads, Unsupported, install_hint

try:
    import autograd
    import autograd.numpy as anp
    import autograd.scipy.special as asp
    from autograd.tracer import Box, getval
except ImportError:  # pragma: no cover - exercised where autograd is missing
    autograd = None  # type: ignore[assignment]


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def _table() -> dict[str, Callable[..., Any]]:
    table: dict[str, Callable[..., Any]] = {
        "add": anp.add, "sub": anp.subtract, "mul": anp.multiply, "div": anp.true_divide,
        "neg": anp.negative, "pow": anp.power,
        "exp": anp.exp, "expm1": anp.expm1, "log": anp.log, "log2": anp.log2, "log10": anp.log10,
        "log1p": anp.log1p, "sqrt": anp.sqrt, "abs": anp.abs,
        "sin": anp.sin, "cos": anp.cos, "tan": anp.tan, "asin": anp.arcsin, "acos": anp.arccos,
        "atan": anp.arctan, "sinh": anp.sinh, "cosh": anp.cosh, "tanh": anp.tanh,
        "asinh": anp.arcsinh, "acosh": anp.arccosh, "atanh": anp.arctanh,
        "sigmoid": asp.expit,
        "relu": lambda x: anp.where(x > 0, x, 0.0),
        "softplus": lambda x: anp.logaddexp(0.0, x),
        "detach": getval,
        "atan2": anp.arctan2, "hypot": anp.hypot, "maximum": anp.maximum, "minimum": anp.minimum,
        "logaddexp": anp.logaddexp,
        "sum": lambda x, axis=None: anp.sum(x, axis=_axis(axis)),
        "mean": lambda x, axis=None: anp.mean(x, axis=_axis(axis)),
        "prod": lambda x, axis=None: anp.prod(x, axis=_axis(axis)),
        "max": lambda x, axis=None: anp.max(x, axis=_axis(axis)),
        "min": lambda x, axis=None: anp.min(x, axis=_axis(axis)),
        "logsumexp": lambda x, axis=None: asp.logsumexp(x, axis=_axis(axis)),
        "matmul": anp.matmul, "transpose": anp.transpose,
    }
    if hasattr(asp, "erf"):
        table["erf"] = asp.erf
    return table


def _is_value(x: Any) -> bool:
    """An array or a box: something that is not a plain constant."""
    return isinstance(x, (np.ndarray, Box))


class AutogradBackend(Backend):
    name = "autograd"
    tensor_name = "numpy array (or autograd ArrayBox)"

    def __init__(self) -> None:
        if autograd is None:
            raise install_hint("autograd", "autograd")
        self.ops = _table()

    def apply(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        fn = self.ops.get(op.name)
        if fn is None:
            raise Unsupported(f"op {op.name!r}")
        if not any(_is_value(a) for a in args):
            # constants only (e.g. the -0.5 of x**-0.5): fold to a Python float, which
            # numpy treats as a weak scalar and never promotes a float32 array with
            return float(fn(*args, **params))
        return fn(*args, **params)

    def evaluate(self, expr: Expr, leaves: dict[str, Any]) -> Any:
        def leaf(node: Expr) -> Any:
            if isinstance(node, Var):
                return leaves[node.name]
            assert isinstance(node, Const)
            return float(node.value)

        return evaluate(expr, leaf, lambda node, args: self.apply(node.op, args, node.kwargs))

    def is_tensor(self, value: Any) -> bool:
        return isinstance(value, (np.ndarray, np.generic, Box))

    def gradients(self, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str], order: int,
                  grad_output: np.ndarray) -> tuple[np.ndarray, Grads]:
        # inf and nan are results to compare, not warnings; "Output seems independent of
        # input" is autograd's way of returning a zero gradient
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Output seems independent of input")
            return self._gradients(expr, inputs, wrt, order, grad_output)

    def _gradients(self, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str], order: int,
                   grad_output: np.ndarray) -> tuple[np.ndarray, Grads]:
        wrt = list(wrt)
        consts = {n: a for n, a in inputs.items() if n not in wrt}

        def f(w: tuple) -> Any:  # the expression as a function of the wrt inputs
            return self.evaluate(expr, {**consts, **dict(zip(wrt, w))})

        w0 = tuple(inputs[n] for n in wrt)
        seed = np.asarray(grad_output)

        def first(w: tuple) -> tuple:  # order 1: the VJP with grad_output, w.r.t. every wrt input
            vjp, _ = autograd.make_vjp(f)(w)
            return tuple(vjp(seed))

        def nested(prev: Callable[[tuple], tuple], i: int) -> Callable[[tuple], tuple]:
            # order k + 1 from order k: the gradient of the sum of the i-th gradient
            return lambda w: tuple(autograd.grad(lambda v: anp.sum(prev(v)[i]))(w))

        value = np.asarray(getval(f(w0)))
        level: dict[tuple[str, ...], Callable[[tuple], tuple]] = {(): first}
        for _ in range(order - 1):
            level = {prefix + (n,): nested(fn, i) for prefix, fn in level.items() for i, n in enumerate(wrt)}
        result: Grads = {}
        for prefix, fn in level.items():
            grads = fn(w0)
            for n, g in zip(wrt, grads):
                result[prefix + (n,)] = np.asarray(getval(g))
        return value, result
