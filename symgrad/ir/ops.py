"""The op table: every op symgrad knows, each registered once.

An entry holds the op's name and aliases, its numpy forward, one VJP per
argument, its sympy form and its convention at non-differentiable points.

VJPs are written with the table's own functions (``cos(x)``, ``where(...)``)
and operators, as HIPS autograd writes its VJPs with ``autograd.numpy``.  Each
function dispatches on its arguments: on IR nodes it builds the expression
tree, on tape tensors it records a node, on numpy arrays it just computes.  So
a tape that records a VJP can differentiate it again (``create_graph=True``).

A VJP is ``vjp(g, ans, *args, **params) -> gradient`` in the broadcast shape of
the output; the tape sums it back to the argument's shape.  ``None`` in place
of a VJP means no gradient flows through that argument.

Sympy forms are ``form(s, *args, **params)`` where ``s`` is the namespace of
:mod:`symgrad.sympy_functions` (sympy plus symgrad's own functions that carry
the conventions).  Elementwise forms take sympy scalars; the others take numpy
object arrays of sympy expressions (expanded mode).
"""

from __future__ import annotations

import builtins
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

ELEMENTWISE = "elementwise"
REDUCTION = "reduction"
LINALG = "linalg"  # matmul, transpose: not elementwise, no axis
INTERNAL = "internal"  # used by VJPs only, not part of the expression language

Vjp = Optional[Callable[..., Any]]


@dataclass(frozen=True, eq=False)
class Op:
    name: str
    arity: int
    forward: Callable[..., Any]
    vjps: tuple[Vjp, ...]
    sympy: Optional[Callable[..., Any]] = None
    kind: str = ELEMENTWISE
    aliases: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    kink: str = ""
    domain: str = ""
    backward_name: str = ""
    infix: Optional[str] = None

    def __call__(self, *args: Any, **params: Any) -> Any:
        return apply(self, args, params)

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    def __reduce__(self) -> tuple:  # pickled by name: IR and cases travel to worker processes
        return (_by_name, (self.name,))

    @property
    def public(self) -> bool:
        return self.kind != INTERNAL

    @property
    def differentiable(self) -> bool:
        return any(v is not None for v in self.vjps)

    def grad_fn_name(self, params: dict[str, Any]) -> str:
        """PyTorch's name for the backward node, e.g. ``SumBackward1`` for a sum over an axis."""
        base = self.backward_name or self.name.capitalize() + "Backward0"
        if self.kind == REDUCTION and params.get("axis") is not None:
            return base[:-1] + "1"
        return base


OPS: dict[str, Op] = {}  # by name and by alias


def _by_name(name: str) -> Op:
    return OPS[name]


def apply(op: Op, args: tuple, params: dict[str, Any]) -> Any:
    """Dispatch ``op`` to the first argument that knows how to take it (IR node, tensor), else numpy."""
    for a in args:
        hook = getattr(a, "__symgrad_apply__", None)
        if hook is not None:
            return hook(op, args, params)
    return op.forward(*args, **params)


def defop(name: str, forward: Callable[..., Any], *vjps: Vjp, **fields: Any) -> Op:
    """Register one op under its name and aliases; return it (it is also its own function)."""
    op = Op(name, len(vjps), forward, tuple(vjps), **fields)
    for key in (name, *op.aliases):
        if key in OPS:
            raise ValueError(f"op {key!r} registered twice")
        OPS[key] = op
    return op


def lookup(name: str) -> Optional[Op]:
    op = OPS.get(name)
    return op if op is not None and op.public else None


def public_ops() -> list[Op]:
    """Every op of the expression language once, in registration order."""
    seen: dict[int, Op] = {}
    for op in OPS.values():
        if op.public:
            seen.setdefault(id(op), op)
    return list(seen.values())


# ---------------------------------------------------------------- shape helpers


def normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for ax in axes:
        if not -builtins.max(ndim, 1) <= ax < builtins.max(ndim, 1):
            raise ValueError(f"axis {ax} is out of bounds for an array of dimension {ndim}")
        out.append(ax % ndim if ndim else 0)
    return tuple(sorted(set(out)))


def _kept_shape(shape: tuple[int, ...], axis: Any) -> tuple[int, ...]:
    axes = normalize_axes(axis, len(shape))
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def unbroadcast(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast array back to ``shape`` (numpy only)."""
    x = np.asarray(x)
    if x.shape == tuple(shape):
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and x.shape[i + lead] != 1
    )
    out = x.sum(axis=axes, keepdims=True) if axes else x
    return out.reshape(shape)


def expand(g: Any, shape: tuple[int, ...], axis: Any) -> Any:
    """The inverse of a reduction over ``axis``: broadcast ``g`` back to ``shape``."""
    return broadcast_to(reshape(g, shape=_kept_shape(shape, axis)), shape=tuple(shape))


def _count(shape: tuple[int, ...], axis: Any) -> int:
    return math.prod(shape[i] for i in normalize_axes(axis, len(shape)))


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(np.shape(x))


# ---------------------------------------------------------------- internal ops


def _as2d(x: Any, row: bool) -> Any:
    """View a 1-D matmul operand as a matrix: a row for the left, a column for the right."""
    if len(_shape(x)) == 2:
        return x
    n = _shape(x)[0]
    return reshape(x, shape=(1, n) if row else (n, 1))


reshape = defop(
    "reshape",
    lambda x, shape: np.reshape(x, shape),
    lambda g, ans, x, shape: reshape(g, shape=_shape(x)),
    kind=INTERNAL, params=("shape",), backward_name="ViewBackward0",
)
broadcast_to = defop(
    "broadcast_to",
    lambda x, shape: np.broadcast_to(x, shape),
    lambda g, ans, x, shape: sum_to(g, shape=_shape(x)),
    kind=INTERNAL, params=("shape",), backward_name="ExpandBackward0",
)
sum_to = defop(
    "sum_to",
    unbroadcast,
    lambda g, ans, x, shape: broadcast_to(g, shape=_shape(x)),
    kind=INTERNAL, params=("shape",), backward_name="SumBackward1",
)
where = defop(
    "where",
    np.where,
    None,
    lambda g, ans, c, x, y: where(c, g, 0.0),
    lambda g, ans, c, x, y: where(c, 0.0, g),
    kind=INTERNAL,
)
sign = defop("sign", np.sign, None, kind=INTERNAL)
# the derivative of maximum: 1 where x > 0, 1/2 where x == 0, 0 elsewhere
step = defop("step", lambda x: np.heaviside(x, 0.5), None, kind=INTERNAL)
clone = defop("clone", lambda x: np.array(x, copy=True), lambda g, ans, x: g, kind=INTERNAL)

# ---------------------------------------------------------------- arithmetic

add = defop(
    "add", np.add,
    lambda g, ans, x, y: g,
    lambda g, ans, x, y: g,
    sympy=lambda s, x, y: x + y, infix="+",
)
sub = defop(
    "sub", np.subtract,
    lambda g, ans, x, y: g,
    lambda g, ans, x, y: -g,
    sympy=lambda s, x, y: x - y, infix="-", aliases=("subtract",),
)
mul = defop(
    "mul", np.multiply,
    lambda g, ans, x, y: g * y,
    lambda g, ans, x, y: g * x,
    sympy=lambda s, x, y: x * y, infix="*", aliases=("multiply",),
)
div = defop(
    "div", np.true_divide,
    lambda g, ans, x, y: g / y,
    lambda g, ans, x, y: -g * x / (y * y),
    sympy=lambda s, x, y: x / y, infix="/", aliases=("divide", "true_divide"),
)
neg = defop(
    "neg", np.negative,
    lambda g, ans, x: -g,
    sympy=lambda s, x: -x, infix="-", aliases=("negative",),
)


def _pow_dx(g: Any, ans: Any, x: Any, y: Any) -> Any:
    # d/dx x**c is 0 when c == 0, at every x (PyTorch's convention)
    if isinstance(y, (int, float)):
        return g * 0.0 if y == 0 else g * y * x ** (y - 1)
    # the unused branch gets a harmless exponent, so differentiating this again gives no 0 * inf
    return where(y == 0, 0.0, g * y * x ** where(y == 0, 1.0, y - 1))


def _pow_dy(g: Any, ans: Any, x: Any, y: Any) -> Any:
    # d/dy x**y is 0 at x == 0, y >= 0, where x**y * log(x) would be nan
    at_zero = (x == 0) & (y >= 0)
    safe = where(at_zero, 1.0, x)  # keeps log(0) out of the graph that create_graph records
    return where(at_zero, 0.0, g * safe**y * log(safe))


pow = defop(
    "pow", np.power, _pow_dx, _pow_dy,
    sympy=lambda s, x, y: s.power(x, y), infix="**", aliases=("power",),
    kink="d/dx x**0 = 0 at every x; d/dy x**y = 0 at x = 0, y >= 0",
    domain="x > 0 for non-integer y",
)

# ---------------------------------------------------------------- elementwise, one argument

exp = defop("exp", np.exp, lambda g, ans, x: g * ans, sympy=lambda s, x: s.exp(x))
expm1 = defop(
    "expm1", np.expm1, lambda g, ans, x: g * (ans + 1.0), sympy=lambda s, x: s.exp(x) - 1
)
log = defop(
    "log", np.log, lambda g, ans, x: g / x, sympy=lambda s, x: s.log(x), domain="x > 0"
)
log2 = defop(
    "log2", np.log2, lambda g, ans, x: g / (x * math.log(2.0)),
    sympy=lambda s, x: s.log(x, 2), domain="x > 0",
)
log10 = defop(
    "log10", np.log10, lambda g, ans, x: g / (x * math.log(10.0)),
    sympy=lambda s, x: s.log(x, 10), domain="x > 0",
)
log1p = defop(
    "log1p", np.log1p, lambda g, ans, x: g / (x + 1.0),
    sympy=lambda s, x: s.log(x + 1), domain="x > -1", backward_name="Log1PBackward0",
)
sqrt = defop(
    # g * 0.5 * ans**-1, not g / (2 * ans): differentiating a division again multiplies by the
    # zero denominator (inf * 0 = nan at x = 0), a constant power only gives more infinities, so
    # sqrt's derivatives at 0 are +inf, -inf, +inf at orders 1, 2, 3 on the tape as in sympy
    "sqrt", np.sqrt, lambda g, ans, x: g * (0.5 * ans**-1.0),
    sympy=lambda s, x: s.sqrt(x), domain="x >= 0", kink="sqrt'(0) = +inf",
)
abs = defop(
    "abs", np.abs, lambda g, ans, x: g * sign(x),
    sympy=lambda s, x: s.Abs(x), aliases=("absolute",), kink="abs'(0) = 0",
)
sin = defop("sin", np.sin, lambda g, ans, x: g * cos(x), sympy=lambda s, x: s.sin(x))
cos = defop("cos", np.cos, lambda g, ans, x: -g * sin(x), sympy=lambda s, x: s.cos(x))
tan = defop(
    "tan", np.tan, lambda g, ans, x: g * (1.0 + ans * ans), sympy=lambda s, x: s.tan(x)
)
asin = defop(
    "asin", np.arcsin, lambda g, ans, x: g / sqrt(1.0 - x * x),
    sympy=lambda s, x: s.asin(x), aliases=("arcsin",), domain="-1 <= x <= 1",
)
acos = defop(
    "acos", np.arccos, lambda g, ans, x: -g / sqrt(1.0 - x * x),
    sympy=lambda s, x: s.acos(x), aliases=("arccos",), domain="-1 <= x <= 1",
)
atan = defop(
    "atan", np.arctan, lambda g, ans, x: g / (1.0 + x * x),
    sympy=lambda s, x: s.atan(x), aliases=("arctan",),
)
sinh = defop("sinh", np.sinh, lambda g, ans, x: g * cosh(x), sympy=lambda s, x: s.sinh(x))
cosh = defop("cosh", np.cosh, lambda g, ans, x: g * sinh(x), sympy=lambda s, x: s.cosh(x))
tanh = defop(
    "tanh", np.tanh, lambda g, ans, x: g * (1.0 - ans * ans), sympy=lambda s, x: s.tanh(x)
)
asinh = defop(
    "asinh", np.arcsinh, lambda g, ans, x: g / sqrt(x * x + 1.0),
    sympy=lambda s, x: s.asinh(x), aliases=("arcsinh",),
)
acosh = defop(
    "acosh", np.arccosh, lambda g, ans, x: g / sqrt(x * x - 1.0),
    sympy=lambda s, x: s.acosh(x), aliases=("arccosh",), domain="x >= 1",
)
atanh = defop(
    "atanh", np.arctanh, lambda g, ans, x: g / (1.0 - x * x),
    sympy=lambda s, x: s.atanh(x), aliases=("arctanh",), domain="-1 < x < 1",
)


def _sigmoid(x: Any) -> Any:
    # exp(-|x|) never overflows; the two branches agree where both are finite
    z = np.exp(-np.abs(x))
    return np.where(np.asarray(x) >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def _softplus(x: Any) -> Any:
    return np.logaddexp(0.0, x)


_ERF_BY_ELEMENT = 1 << 16  # up to this many elements, math.erf per element (at most ~6 ms) beats importing scipy
_math_erf = np.frompyfunc(math.erf, 1, 1)


def _erf(x: Any) -> Any:
    """erf elementwise: the C library's (``math.erf``) on arrays up to 65 536 elements, scipy's ufunc on larger
    ones (6x faster per element, but importing ``scipy.special`` takes about 0.15 s, more than a small check)."""
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    if x.size > _ERF_BY_ELEMENT:
        from scipy.special import erf

        return erf(x.astype(dtype, copy=False))
    return np.asarray(_math_erf(x), dtype=dtype)


sigmoid = defop(
    "sigmoid", _sigmoid, lambda g, ans, x: g * ans * (1.0 - ans),
    sympy=lambda s, x: s.sigmoid(x), aliases=("expit",),
)
relu = defop(
    "relu", lambda x: np.maximum(x, 0), lambda g, ans, x: where(x > 0, g, 0.0),
    sympy=lambda s, x: s.relu(x), kink="relu'(0) = 0",
)
softplus = defop(
    "softplus", _softplus, lambda g, ans, x: g * sigmoid(x),
    sympy=lambda s, x: s.softplus(x),
)
erf = defop(
    "erf", _erf, lambda g, ans, x: g * (2.0 / math.sqrt(math.pi)) * exp(-(x * x)),
    sympy=lambda s, x: s.erf(x),
)
detach = defop(
    "detach", lambda x: np.array(x, copy=True), None,
    sympy=lambda s, x: s.detach(x), aliases=("stop_gradient",),
    kink="stop-gradient: derivative 0 everywhere",
)

# ---------------------------------------------------------------- elementwise, two arguments

atan2 = defop(
    "atan2", np.arctan2,
    lambda g, ans, y, x: g * x / (x * x + y * y),
    lambda g, ans, y, x: -g * y / (x * x + y * y),
    sympy=lambda s, y, x: s.atan2(y, x), aliases=("arctan2",),
    domain="(y, x) != (0, 0)",
)
hypot = defop(
    "hypot", np.hypot,
    lambda g, ans, x, y: g * x / ans,
    lambda g, ans, x, y: g * y / ans,
    sympy=lambda s, x, y: s.sqrt(x**2 + y**2), domain="(x, y) != (0, 0)",
)
maximum = defop(
    "maximum", np.maximum,
    lambda g, ans, x, y: g * step(x - y),
    lambda g, ans, x, y: g * step(y - x),
    sympy=lambda s, x, y: s.maximum(x, y), kink="ties: 1/2 to each argument",
)
minimum = defop(
    "minimum", np.minimum,
    lambda g, ans, x, y: g * step(y - x),
    lambda g, ans, x, y: g * step(x - y),
    sympy=lambda s, x, y: s.minimum(x, y), kink="ties: 1/2 to each argument",
)
logaddexp = defop(
    "logaddexp", np.logaddexp,
    lambda g, ans, x, y: g * sigmoid(x - y),
    lambda g, ans, x, y: g * sigmoid(y - x),
    sympy=lambda s, x, y: s.logaddexp(x, y),
)

# ---------------------------------------------------------------- reductions


def _tie_share(x: Any, ans: Any, axis: Any) -> Any:
    """1/k on each of the k elements equal to the extremum, 0 elsewhere (no gradient)."""
    hit = where(x == expand(ans, _shape(x), axis), 1.0, 0.0)
    return hit / expand(sum(hit, axis=axis), _shape(x), axis)


sum = defop(
    "sum", lambda x, axis=None: np.sum(x, axis=axis),
    lambda g, ans, x, axis=None: expand(g, _shape(x), axis),
    sympy=lambda s, x, axis=None: s.reduce(x, axis, s.Add),
    kind=REDUCTION, params=("axis",),
)
mean = defop(
    "mean", lambda x, axis=None: np.mean(x, axis=axis),
    lambda g, ans, x, axis=None: expand(g, _shape(x), axis) / float(_count(_shape(x), axis)),
    sympy=lambda s, x, axis=None: s.reduce(x, axis, lambda *v: s.Add(*v) / len(v)),
    kind=REDUCTION, params=("axis",),
)
prod = defop(
    "prod", lambda x, axis=None: np.prod(x, axis=axis),
    lambda g, ans, x, axis=None: expand(g * ans, _shape(x), axis) / x,
    sympy=lambda s, x, axis=None: s.reduce(x, axis, s.Mul),
    kind=REDUCTION, params=("axis",), domain="no zero elements (the VJP divides by x)",
)
max = defop(
    "max", lambda x, axis=None: np.max(x, axis=axis),
    lambda g, ans, x, axis=None: expand(g, _shape(x), axis) * _tie_share(x, ans, axis),
    sympy=lambda s, x, axis=None: s.reduce(x, axis, s.maxn),
    kind=REDUCTION, params=("axis",), aliases=("amax",),
    kink="ties: split evenly among the tied elements",
)
min = defop(
    "min", lambda x, axis=None: np.min(x, axis=axis),
    lambda g, ans, x, axis=None: expand(g, _shape(x), axis) * _tie_share(x, ans, axis),
    sympy=lambda s, x, axis=None: s.reduce(x, axis, s.minn),
    kind=REDUCTION, params=("axis",), aliases=("amin",),
    kink="ties: split evenly among the tied elements",
)


def _logsumexp(x: Any, axis: Any = None) -> Any:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out.reshape(np.sum(np.asarray(x), axis=axis).shape)


logsumexp = defop(
    "logsumexp", _logsumexp,
    lambda g, ans, x, axis=None: expand(g, _shape(x), axis)
    * exp(x - expand(ans, _shape(x), axis)),
    sympy=lambda s, x, axis=None: s.reduce(x, axis, s.logsumexp),
    kind=REDUCTION, params=("axis",),
)

# ---------------------------------------------------------------- linear algebra


def _matmul_vjp(left: bool) -> Callable[..., Any]:
    def vjp(g: Any, ans: Any, a: Any, b: Any) -> Any:
        a2, b2 = _as2d(a, row=True), _as2d(b, row=False)
        g2 = reshape(g, shape=(_shape(a2)[0], _shape(b2)[1]))
        if left:
            return reshape(matmul(g2, transpose(b2)), shape=_shape(a))
        return reshape(matmul(transpose(a2), g2), shape=_shape(b))

    return vjp


matmul = defop(
    "matmul", np.matmul, _matmul_vjp(True), _matmul_vjp(False),
    sympy=lambda s, a, b: np.matmul(a, b), kind=LINALG, infix="@",
    domain="1-D or 2-D operands", backward_name="MmBackward0",
)
transpose = defop(
    "transpose", np.transpose, lambda g, ans, x: transpose(g),
    sympy=lambda s, x: np.transpose(x), kind=LINALG, backward_name="PermuteBackward0",
)

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
