"""The ``autograd`` backend: HIPS autograd, checked against sympy.

HIPS autograd differentiates Python functions, not tapes, so this backend
implements :meth:`Backend.gradients` directly: the IR becomes a function of the
``wrt`` inputs written with ``autograd.numpy`` (the other inputs are constants),
order 1 is its VJP (``make_vjp``) with ``grad_output``, and order k the ``grad``
of the sum of order k - 1, nested as ``grad(grad(f))`` is.

Each op is autograd's function of its name or an alias (``autograd.numpy``,
``autograd.scipy.special``) unless the map below says otherwise; an op autograd
lacks runs as its composite of other ops, where that agrees with it.  The map
gives symgrad's conventions at non-differentiable points:
``relu`` is ``where(x > 0, x, 0)`` (0 at 0; ``maximum(x, 0)`` would give 1/2),
``detach`` drops autograd's boxes (``getval``), and autograd's own ``abs``,
``maximum``/``minimum`` (1/2 at ties) and ``max``/``min`` (ties split evenly)
already agree.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from symgrad.backends.base import Backend, Capabilities, Grads, Unsupported, adapter_table, install_hint
from symgrad.ir import ops
from symgrad.ir.expr import Expr, Var, as_expr
from symgrad.ir.ops import Op

try:
    import autograd
    import autograd.numpy as anp
    import autograd.scipy.special as asp
    from autograd.core import VJPNode, primitive_vjps
    from autograd.tracer import Box, getval, notrace_primitives
except ImportError:  # pragma: no cover - exercised where autograd is missing
    autograd = None


# the map to autograd, keyed by the table's ops: only where autograd has no function of the op's
# name (or an alias), or its convention differs; every other op is found by name (see `resolve`)
def _mapped() -> dict[Op, Callable[..., Any]]:
    return {
        ops.relu: lambda x: anp.where(x > 0, x, 0.0),  # relu'(0) = 0; maximum(x, 0) would give 1/2
        ops.softplus: lambda x: anp.logaddexp(0.0, x),
        ops.detach: getval,
        ops.where: _where,
        ops.prod: _prod,
        ops.softmax: lambda x, axis=-1: anp.exp(x - asp.logsumexp(x, axis=axis, keepdims=True)),
        ops.log_softmax: lambda x, axis=-1: x - asp.logsumexp(x, axis=axis, keepdims=True),
        # issue 15, part A: autograd lacks these; written with autograd's `where`, the branch
        # torch's backward takes at a kink is the one the condition picks
        ops.elu: lambda x, alpha=1.0: _where(x > 0, x, alpha * (anp.exp(_neg(x)) - 1.0)),
        ops.celu: lambda x, alpha=1.0: _where(x > 0, x, alpha * (anp.exp(_neg(x) / alpha) - 1.0)),
        ops.selu: lambda x: ops._SELU_SCALE * _where(x > 0, x, ops._SELU_ALPHA * (anp.exp(_neg(x)) - 1.0)),
        ops.leaky_relu: lambda x, negative_slope=0.01: _where(x > 0, x, negative_slope * x),
        ops.hardtanh: lambda x, min_val=-1.0, max_val=1.0: _where(
            x <= min_val, min_val, _where(x >= max_val, max_val, x)),
        ops.clip: lambda x, lo, hi: _where((x > hi) | (lo > hi), hi, _where(x < lo, lo, x)),
        ops.xlogy: lambda x, y: x * anp.log(y),  # inside its domain y > 0
        ops.copysign: lambda x, y: anp.abs(x) * np.where(np.signbit(getval(y)), -1.0, 1.0),
        # shapes and indexing (issue 15, part B)
        ops.index: lambda x, key: x[ops.decode_key(key)],
        ops.reshape: lambda x, shape: anp.reshape(x, shape),
        # autograd's broadcast_to cannot add leading dimensions: adding zeros broadcasts as well
        ops.broadcast_to: lambda x, shape: x + anp.zeros(shape),
        ops.transpose: lambda x, axes=None: anp.transpose(x, axes),
        ops.expand_dims: _expand_dims,
        ops.squeeze: lambda x, axis=None: anp.squeeze(x, axis),
        ops.flip: _flip,
        ops.concatenate: lambda x, y, axis=0: anp.concatenate((x, y), axis=axis),
        ops.stack: lambda x, y, axis=0: anp.stack((x, y), axis=axis),
        # linear algebra (issue 15, part B)
        ops.einsum: _einsum,
        ops.det: anp.linalg.det, ops.inv: anp.linalg.inv, ops.solve: _solve,
        # norm and scans (issue 15)
        ops.norm: _norm, ops.cumprod: _cumprod, ops.eq: anp.equal,
        ops.cumsum: lambda x, axis=None: anp.cumsum(x, axis=0 if axis is None else axis),
    }


def _einsum(a: Any, b: Any, subscripts: str) -> Any:
    if ops.einsum_repeats(subscripts):
        raise Unsupported("op 'einsum' with an index repeated in one operand (a diagonal or a trace): "
                          "HIPS autograd's einsum VJP refuses it")
    return anp.einsum(subscripts, a, b)


def _solve(a: Any, b: Any) -> Any:
    if np.ndim(a) > 2 and np.ndim(b) == 1:
        raise Unsupported("op 'solve' of a stack with one vector b: HIPS autograd's solve reads b as numpy 1 did")
    if np.ndim(b) >= 2 and np.shape(b)[:-2] != np.shape(a)[:-2]:
        raise Unsupported("op 'solve' with batch dimensions that broadcast: HIPS autograd's solve VJP "
                          "gives a and b gradients of the broadcast shape")
    return anp.linalg.solve(a, b)


def _norm(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    # autograd's norm divides by the norm (nan at the zero vector): the table's gradient 0 there, with
    # a where whose unused branch stays finite
    s = anp.sum(x * x, axis=None if axis is None else tuple(ops.normalize_axes(axis, anp.ndim(x))),
                keepdims=keepdims)
    return _where(s == 0, 0.0, anp.sqrt(_where(s == 0, 1.0, s)))


def _cumprod(x: Any, axis: Any = None) -> Any:
    # autograd has no cumprod VJP: a chain of products, exact at zeros (no division)
    a = ops.normalize_axes(0 if axis is None else axis, anp.ndim(x))[0]
    n = anp.shape(x)[a]

    def take(k: int) -> Any:
        return x[(slice(None),) * a + (k,)]

    parts = [take(0)]
    for k in range(1, n):
        parts.append(parts[-1] * take(k))
    return anp.stack(parts, axis=a)


def _prod(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    if np.any(getval(x) == 0):
        raise Unsupported("op 'prod' at a zero element: autograd's VJP divides by x (nan there)")
    return anp.prod(x, axis=axis, keepdims=keepdims)


def _neg(x: Any) -> Any:
    return _where(x > 0, 0.0, x)  # the negative branch's argument: exp of it never overflows


def _expand_dims(x: Any, axis: Any) -> Any:
    # autograd's expand_dims takes one axis
    for d in ops.normalize_axes(axis, anp.ndim(x) + (len(axis) if isinstance(axis, tuple) else 1)):
        x = anp.expand_dims(x, d)
    return x


def _flip(x: Any, axis: Any = None) -> Any:
    # autograd has no flip: a reversing slice along each axis
    axes = ops.normalize_axes(axis, anp.ndim(x))
    return x[tuple(slice(None, None, -1) if d in axes else slice(None) for d in range(anp.ndim(x)))]


def _where(c: Any, x: Any, y: Any) -> Any:
    # autograd's where does not sum a broadcast gradient back to x's shape: broadcast before it
    # (zeros of the branches' dtype: float64 zeros would turn a float32 case's branches into float64)
    typed = [a.dtype for a in (x, y) if hasattr(a, "dtype")]
    zero = anp.zeros(np.broadcast_shapes(anp.shape(c), anp.shape(x), anp.shape(y)),
                     dtype=np.result_type(*typed) if typed else np.float64)
    return anp.where(c, x + zero, y + zero)


def _differentiable(fn: Any) -> bool:
    """Not an autograd primitive that has no VJP (``autograd.numpy.cbrt`` exists but cannot be differentiated)."""
    if not getattr(fn, "_is_autograd_primitive", False):
        return True  # a Python function of primitives, or a wrapper
    return fn in primitive_vjps or fn in notrace_primitives[VJPNode]


# ops autograd cannot run, with the reason (none today): the case is skipped and says why
UNSUPPORTED: dict[Op, str] = {}


def resolve(op: Op, mapped: dict[Op, Callable[..., Any]]) -> Callable[..., Any] | None:
    """autograd's function for ``op``: mapped, else ``autograd.numpy`` or ``autograd.scipy.special`` by its
    name or an alias (``arcsin`` for asin, ``expit`` for sigmoid), if autograd can differentiate it."""
    fn = mapped.get(op)
    if fn is not None:
        return fn
    for name in (op.name, *op.aliases):
        for space in (anp, asp):
            fn = getattr(space, name, None)
            if callable(fn) and _differentiable(fn):
                return fn
    return None


def _is_value(x: Any) -> bool:
    """An array or a box: something that is not a plain constant."""
    return isinstance(x, (np.ndarray, Box))


class AutogradBackend(Backend):
    name = "autograd"
    tensor_name = "numpy array (or autograd ArrayBox)"

    def __init__(self) -> None:
        if autograd is None:
            raise install_hint("autograd", "autograd")
        self.ops, runnable = adapter_table(resolve, _mapped(), UNSUPPORTED)
        self.capabilities = Capabilities(ops=runnable, forward=True,
                                         forward_note="autograd.make_jvp: autograd's forward mode")

    def apply(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        fn = self.ops.get(op)
        if fn is None:
            return self._composite(op, args, params)
        if not any(_is_value(a) for a in args):
            # constants only (e.g. the -0.5 of x**-0.5): fold to a Python float, which
            # numpy treats as a weak scalar and never promotes a float32 array with
            return float(fn(*args, **params))
        return fn(*args, **params)

    def _composite(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        """``op`` as its composite of other ops of the table, where that agrees with it (inside its domain)."""
        if op.composite is None:
            reason = UNSUPPORTED.get(op)
            raise Unsupported(f"op {op.name!r}" + (f" ({reason})" if reason else ""))
        if not np.all(op.inside(*(getval(a) for a in args))):
            raise Unsupported(f"op {op.name!r} where its derivatives are not all finite ({op.domain_text}): "
                              "autograd lacks it, and its composite may differ from its convention there")
        expr = as_expr(op.composite(*(Var(n) for n in op.args), **params))
        return self.walk(expr, dict(zip(op.args, args)))

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

    def jvp(self, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str],
            tangents: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        wrt = list(wrt)
        consts = {n: a for n, a in inputs.items() if n not in wrt}

        def f(*w: Any) -> Any:
            return self.evaluate(expr, {**consts, **dict(zip(wrt, w))})

        w0 = tuple(inputs[n] for n in wrt)
        seeds = tuple(np.asarray(tangents[n], dtype=inputs[n].dtype) for n in wrt)
        with np.errstate(all="ignore"):
            f(*w0)  # concrete first: a composite checks its domain on plain arrays
            try:
                out, tangent = autograd.make_jvp(f, argnum=tuple(range(len(wrt))))(*w0)(seeds)
            except NotImplementedError as exc:  # "JVP of cbrt wrt argnums (0,) not defined"
                raise Unsupported(f"forward mode here: {str(exc).strip().splitlines()[0]}") from exc
        value = np.asarray(getval(out))
        return value, np.broadcast_to(np.asarray(tangent, dtype=value.dtype), value.shape).copy()
