"""Sympy functions that carry PyTorch's conventions at non-differentiable points.

The op table's sympy forms receive this module as their namespace ``s``: any
name not defined here falls through to :mod:`sympy` (``s.sin`` is
``sympy.sin``).  Each function below derives itself the way the tape does, so
sympy's own choices (``Heaviside(0) = 1/2`` for ``Max(0, x)``, ``nan`` for
``0**y * log(0)``) never leak into a reference.  Each carries ``numpy`` and
``mpmath`` implementations for :func:`sympy.lambdify`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import sympy
from sympy import Eq, Function, Heaviside, Piecewise, Rational, S, exp, log
from sympy.core.logic import fuzzy_and

from symgrad.ir import ops

HALF = Rational(1, 2)


def __getattr__(name: str) -> Any:  # the namespace falls through to sympy
    return getattr(sympy, name)


class _Real(Function):
    """A function real at real arguments: sympy's assumptions must know it (``im(minimum(x, -2))`` left
    unevaluated sends ``periodicity``, which a Piecewise's condition calls, into endless recursion; so
    did ``exp(floor_(x)) >= 0``, the condition of ``elu(cbrt(exp(floor(x))))``).  Every function of this
    module but ``power`` (a negative base) is one."""

    def _eval_is_extended_real(self) -> bool | None:
        return fuzzy_and(a.is_extended_real for a in self.args)


class power(Function):
    """x**y for a non-constant exponent: d/dx is 0 where y == 0, d/dy is 0 at x == 0, y >= 0."""

    numpy = staticmethod(np.power)
    mpmath = staticmethod(mpmath.power)

    @classmethod
    def eval(cls, x: Any, y: Any) -> Any:
        if y.is_Number or (x.is_number and x.is_positive):  # e**y, pi**y, 2**y: plain Pow
            return x**y
        return None

    def fdiff(self, argindex: int = 1) -> Any:
        x, y = self.args
        if argindex == 1:
            return Piecewise((0, Eq(y, 0)), (y * power(x, y - 1), True))
        return Piecewise((0, Eq(x, 0) & (y >= 0)), (self * log(x), True))

    def _eval_rewrite_as_Pow(self, x: Any, y: Any, **kwargs: Any) -> Any:
        return x**y


def _mp_sigmoid(x: Any) -> Any:
    return 1 / (1 + mpmath.exp(-x))


class sigmoid(_Real):
    numpy = staticmethod(ops._sigmoid)
    mpmath = staticmethod(_mp_sigmoid)

    def fdiff(self, argindex: int = 1) -> Any:
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, x: Any, **kwargs: Any) -> Any:
        return 1 / (1 + exp(-x))


class abs_(_Real):
    """|x|, kept whole: sympy turns ``Abs(x)**2`` of a real x into ``x**2``, which loses abs'(0) = 0 (torch's
    convention, sign(0)) at order 2, where ``square(abs(x))''(0)`` is then 2 instead of the tape's and
    torch's 0.  Its derivative is sign(x), as Abs's."""

    numpy = staticmethod(np.abs)
    mpmath = staticmethod(mpmath.fabs)

    @classmethod
    def eval(cls, x: Any) -> Any:
        return sympy.Abs(x) if x.is_number else None

    def fdiff(self, argindex: int = 1) -> Any:
        return sympy.sign(self.args[0])

    def _eval_is_nonnegative(self) -> bool | None:
        return True if self.args[0].is_extended_real else None

    def _eval_is_zero(self) -> bool | None:
        return self.args[0].is_zero

    def _eval_rewrite_as_Abs(self, x: Any, **kwargs: Any) -> Any:
        return sympy.Abs(x)


class relu(_Real):
    numpy = staticmethod(lambda x: np.maximum(x, 0))
    mpmath = staticmethod(lambda x: x if x > 0 else mpmath.mpf(0))

    def fdiff(self, argindex: int = 1) -> Any:
        return Heaviside(self.args[0], 0)

    def _eval_rewrite_as_Max(self, x: Any, **kwargs: Any) -> Any:
        return sympy.Max(x, 0)


class softplus(_Real):
    numpy = staticmethod(ops._softplus)
    mpmath = staticmethod(lambda x: mpmath.log1p(mpmath.exp(x)))

    def fdiff(self, argindex: int = 1) -> Any:
        return sigmoid(self.args[0])

    def _eval_rewrite_as_log(self, x: Any, **kwargs: Any) -> Any:
        return log(1 + exp(x))


class maximum(_Real):
    numpy = staticmethod(np.maximum)
    mpmath = staticmethod(lambda x, y: x if x >= y else y)

    def fdiff(self, argindex: int = 1) -> Any:
        x, y = self.args
        return Heaviside(x - y, HALF) if argindex == 1 else Heaviside(y - x, HALF)

    def _eval_rewrite_as_Max(self, x: Any, y: Any, **kwargs: Any) -> Any:
        return sympy.Max(x, y)


class minimum(_Real):
    numpy = staticmethod(np.minimum)
    mpmath = staticmethod(lambda x, y: x if x <= y else y)

    def fdiff(self, argindex: int = 1) -> Any:
        x, y = self.args
        return Heaviside(y - x, HALF) if argindex == 1 else Heaviside(x - y, HALF)

    def _eval_rewrite_as_Min(self, x: Any, y: Any, **kwargs: Any) -> Any:
        return sympy.Min(x, y)


def _np_logaddexp(x: Any, y: Any) -> Any:
    return np.logaddexp(x, y)


def _mp_logaddexp(x: Any, y: Any) -> Any:
    m = x if x >= y else y
    return m + mpmath.log(mpmath.exp(x - m) + mpmath.exp(y - m))


class logaddexp(_Real):
    numpy = staticmethod(_np_logaddexp)
    mpmath = staticmethod(_mp_logaddexp)

    def fdiff(self, argindex: int = 1) -> Any:
        x, y = self.args
        return sigmoid(x - y) if argindex == 1 else sigmoid(y - x)

    def _eval_rewrite_as_log(self, x: Any, y: Any, **kwargs: Any) -> Any:
        return log(exp(x) + exp(y))


class detach(_Real):
    """Stop-gradient: the value of its argument, derivative 0."""

    numpy = staticmethod(lambda x: x)
    mpmath = staticmethod(lambda x: x)

    def fdiff(self, argindex: int = 1) -> Any:
        return S.Zero


# ------------------------------------------------------------ n-ary reductions (expanded mode)


def _np_tie_share(i: Any, m: Any, *xs: Any) -> Any:
    hits = [np.asarray(x == m, dtype=float) for x in xs]
    return hits[int(i)] / np.sum(hits, axis=0)


def _mp_tie_share(i: Any, m: Any, *xs: Any) -> Any:
    return mpmath.mpf(xs[int(i)] == m) / len([x for x in xs if x == m])


class tie_share(_Real):
    """``tie_share(i, m, *xs)``: 1/k if ``xs[i]`` is one of the k elements equal to ``m``, else 0."""

    numpy = staticmethod(_np_tie_share)
    mpmath = staticmethod(_mp_tie_share)

    def fdiff(self, argindex: int = 1) -> Any:
        return S.Zero


def _extremum(
    name: str, pick: Callable[..., Any], np_pick: Callable[..., Any], mp_pick: Callable[..., Any]
) -> type:
    class extremum(_Real):
        numpy = staticmethod(lambda *xs: np_pick.reduce(np.broadcast_arrays(*xs)))  # type: ignore[attr-defined]
        mpmath = staticmethod(lambda *xs: mp_pick(xs))

        @classmethod
        def eval(cls, *args: Any) -> Any:
            return args[0] if len(args) == 1 else None

        def fdiff(self, argindex: int = 1) -> Any:
            return tie_share(argindex - 1, self, *self.args)

        def _eval_rewrite_as_Max(self, *args: Any, **kwargs: Any) -> Any:
            return pick(*args)

        _eval_rewrite_as_Min = _eval_rewrite_as_Max

    extremum.__name__ = extremum.__qualname__ = name
    return extremum


maxn = _extremum("maxn", sympy.Max, np.maximum, lambda xs: max(xs))
minn = _extremum("minn", sympy.Min, np.minimum, lambda xs: min(xs))


def _np_logsumexp(*xs: Any) -> Any:
    arr = np.stack(np.broadcast_arrays(*xs))
    return ops._logsumexp(arr, axis=0)


def _mp_logsumexp(*xs: Any) -> Any:
    m = max(xs)
    return m + mpmath.log(mpmath.fsum(mpmath.exp(x - m) for x in xs))


class logsumexp(_Real):
    numpy = staticmethod(_np_logsumexp)
    mpmath = staticmethod(_mp_logsumexp)

    @classmethod
    def eval(cls, *args: Any) -> Any:
        return args[0] if len(args) == 1 else None

    def fdiff(self, argindex: int = 1) -> Any:
        return exp(self.args[argindex - 1] - self)

    def _eval_rewrite_as_log(self, *args: Any, **kwargs: Any) -> Any:
        return log(sympy.Add(*[exp(a) for a in args]))


def _flat(name: str, np_fn: Callable[..., Any], mp_fn: Callable[..., Any]) -> type:
    """A piecewise-constant function whose derivative is 0 everywhere, jumps included (PyTorch's)."""
    cls = type(name, (_Real,), {
        "numpy": staticmethod(np_fn), "mpmath": staticmethod(mp_fn),
        "fdiff": lambda self, argindex=1: S.Zero,
    })
    return cls


def _mp_round_even(x: Any) -> Any:
    return mpmath.mpf(round(float(x))) if abs(x) < 2**52 else x  # Python's round: half to even


floor_ = _flat("floor_", np.floor, mpmath.floor)
ceil_ = _flat("ceil_", np.ceil, mpmath.ceil)
round_ = _flat("round_", np.round, _mp_round_even)


def _np_recip0(r: Any) -> Any:
    r = np.asarray(r, dtype=float)
    return np.where(r == 0, 0.0, 1.0 / np.where(r == 0, 1.0, r))


class recip0(_Real):
    """1/r, and 0 at r = 0: the masked reciprocal of torch's norm backward (gradient 0 at the zero vector).
    Its derivative -recip0(r)**2 is 0 there too, as the tape's guarded power."""

    numpy = staticmethod(_np_recip0)
    mpmath = staticmethod(lambda r: mpmath.mpf(0) if r == 0 else 1 / r)

    def fdiff(self, argindex: int = 1) -> Any:
        return -recip0(self.args[0]) ** 2


def _np_norm2(*xs: Any) -> Any:
    return np.sqrt(np.sum(np.stack([np.square(x) for x in np.broadcast_arrays(*xs)]), axis=0))


class norm2(_Real):
    """sqrt(x1**2 + ... + xn**2) with torch.linalg.vector_norm's derivative: x_i / norm, 0 at the zero vector."""

    numpy = staticmethod(_np_norm2)
    mpmath = staticmethod(lambda *xs: mpmath.sqrt(mpmath.fsum(x * x for x in xs)))

    def fdiff(self, argindex: int = 1) -> Any:
        return self.args[argindex - 1] * recip0(self)


CUSTOM: tuple[type, ...] = (
    power, abs_, sigmoid, relu, softplus, maximum, minimum, logaddexp, detach,
    tie_share, maxn, minn, logsumexp, floor_, ceil_, round_, recip0, norm2,
)


def namespace(module: str) -> dict[str, Callable[..., Any]]:
    """Implementations of the functions above for ``lambdify(..., modules=[ns, module])``."""
    ns = {f.__name__: getattr(f, module) for f in CUSTOM}
    # d/dx Heaviside and d/dx sign (second derivatives of relu, abs, maximum) are
    # DiracDelta: 0 everywhere, as on the tape (where/sign/step pass no gradient)
    if module == "numpy":
        ns["erf"] = ops._erf
        ns["_power"] = ops.power  # x**3 and x**-2 as the op table computes them (see compile.py)
        # scipy-backed special functions the numpy printer does not know (imported on first call)
        ns["erfc"] = ops._special("erfc")
        ns["erfinv"] = ops._special("erfinv")
        ns["loggamma"] = ops._special("gammaln")
        ns["gamma"] = ops._special("gamma")  # sympy writes loggamma(1 + u) as log(gamma(1 + u)) for some u
        ns["digamma"] = ops._special("psi")
        ns["polygamma"] = lambda n, x: ops._special("polygamma")(int(n), x)
        ns["DiracDelta"] = lambda x, *k: np.zeros(np.shape(x))
    else:
        ns["DiracDelta"] = lambda x, *k: mpmath.mpf(0)
    return ns


def reduce(x: Any, axis: Any, fn: Callable[..., Any], keepdims: bool = False) -> np.ndarray:
    """Reduce an object array of sympy expressions over ``axis`` with the n-ary ``fn`` (the reduced axes
    kept with size 1 when ``keepdims``)."""
    x = np.asarray(x, dtype=object)
    axes = ops.normalize_axes(axis, x.ndim)
    moved = np.moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))
    lead = moved.shape[: x.ndim - len(axes)]
    flat = moved.reshape(lead + (-1,))
    out = np.empty(lead, dtype=object)
    for idx in np.ndindex(*lead):
        out[idx] = fn(*flat[idx])
    return out.reshape(ops._kept_shape(x.shape, axis)) if keepdims else out


def along(x: Any, axis: Any, fn: Callable[..., list]) -> np.ndarray:
    """Map each fibre of an object array over ``axis`` (flattened, for several axes) to as many
    expressions with ``fn(*fibre) -> list`` (softmax, log_softmax); the shape is kept."""
    x = np.asarray(x, dtype=object)
    axes = ops.normalize_axes(axis, x.ndim)
    moved = np.moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))
    lead = moved.shape[: x.ndim - len(axes)]
    flat = moved.reshape(lead + (-1,))
    out = np.empty(flat.shape, dtype=object)
    for idx in np.ndindex(*lead):
        out[idx] = fn(*flat[idx])
    return np.moveaxis(out.reshape(moved.shape), tuple(range(x.ndim - len(axes), x.ndim)), axes)
