"""The ``jax`` backend: JAX's ``jax.vjp``, checked against sympy.

A functional engine (:class:`~symgrad.backends.base.FunctionalBackend`): the IR becomes
a function of the ``wrt`` inputs written with ``jax.numpy``; order 1 is ``jax.vjp``
with ``grad_output``, order k nests ``jax.vjp`` of the sum of order k - 1, as
``jax.grad(jax.grad(f))`` does.  The whole check runs with ``jax_enable_x64`` on (JAX
computes in float32 otherwise) and the setting is restored after.

Each op is JAX's function of its name or an alias (``jax.numpy``, ``jax.nn``,
``jax.scipy.special``, ``jax.lax``) unless the map below says otherwise; an op JAX lacks
runs as its composite of other ops, inside its domain.  The arithmetic operators are
Python's, as a user writes ``x ** 2.0`` on a ``jax.Array``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from symgrad.backends.base import Capabilities, FunctionalBackend, Unsupported, adapter_table, install_hint
from symgrad.ir import ops
from symgrad.ir.expr import Var, as_expr
from symgrad.ir.ops import Op, normalize_axes

try:
    import jax
    import jax.nn as jnn
    import jax.numpy as jnp
    import jax.scipy.special as jsp
    from jax import lax
except ImportError:  # pragma: no cover - exercised where jax is missing
    jax = None  # type: ignore[assignment]


def _reduce(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A jax.numpy reduction called with the table's ``axis`` (None, an int or a tuple) and ``keepdims``."""
    return lambda x, axis=None, keepdims=False: fn(
        x, axis=None if axis is None else normalize_axes(axis, jnp.ndim(x)), keepdims=keepdims)


def _clip(x: Any, lo: Any, hi: Any) -> Any:
    # jnp.clip is minimum(maximum(..)), whose ties split the gradient: the table's clip gives x the
    # gradient on the closed interval, lo below it, hi above it (and hi everything when lo > hi)
    return jnp.where((x > hi) | (lo > hi), hi, jnp.where(x < lo, lo, x))


# the map to JAX, keyed by the table's ops: only where JAX's function has another name or
# signature; every other op is found by its name (see `resolve`)
def _mapped() -> dict[Op, Callable[..., Any]]:
    return {
        ops.add: operator.add, ops.sub: operator.sub, ops.mul: operator.mul, ops.div: operator.truediv,
        ops.neg: operator.neg, ops.pow: operator.pow,
        ops.sum: _reduce(jnp.sum), ops.mean: _reduce(jnp.mean), ops.prod: _reduce(jnp.prod),
        ops.max: _reduce(jnp.max), ops.min: _reduce(jnp.min), ops.logsumexp: _reduce(jsp.logsumexp),
        ops.detach: lax.stop_gradient,
        ops.where: lambda c, x, y: jnp.where(jnp.asarray(c) != 0, x, y),
        ops.clip: _clip,
        # jax.nn's leaky_relu takes the x >= 0 branch at 0 (slope 1); the table's leaky_relu'(0) is the slope
        ops.leaky_relu: lambda x, negative_slope=0.01: jnp.where(x > 0, x, negative_slope * x),
        # jax.nn.hard_tanh has no bounds; the table's gradient is 0 at them (exclusive, as F.hardtanh)
        ops.hardtanh: lambda x, min_val=-1.0, max_val=1.0: jnp.where(
            x <= min_val, min_val, jnp.where(x >= max_val, max_val, x)),
        ops.gelu: lambda x: jnn.gelu(x, approximate=False),  # JAX's default is the tanh approximation
        ops.var: lambda x, axis=None, keepdims=False, ddof=0: jnp.var(
            x, axis=None if axis is None else normalize_axes(axis, jnp.ndim(x)), ddof=ddof, keepdims=keepdims),
        ops.std: lambda x, axis=None, keepdims=False, ddof=0: jnp.std(
            x, axis=None if axis is None else normalize_axes(axis, jnp.ndim(x)), ddof=ddof, keepdims=keepdims),
        ops.index: lambda x, key: x[ops.decode_key(key)],
        ops.concatenate: lambda x, y, axis=0: jnp.concatenate((x, y), axis=axis),
        ops.stack: lambda x, y, axis=0: jnp.stack((x, y), axis=axis),
        ops.einsum: lambda a, b, subscripts: jnp.einsum(subscripts, a, b),
        ops.det: jnp.linalg.det, ops.inv: jnp.linalg.inv, ops.solve: jnp.linalg.solve,
        ops.eq: jnp.equal,  # the table's ==
    }


# ops the engine has no function for and no composite to run as, with the reason (none today)
UNSUPPORTED: dict[Op, str] = {}
UNSUPPORTED[ops.norm] = "not mapped for jax yet (jnp.linalg.norm gives nan, not 0, at the zero vector)"


def resolve(op: Op, mapped: dict[Op, Callable[..., Any]]) -> Callable[..., Any] | None:
    """JAX's function for ``op``: mapped, else by its name or an alias in jax.numpy, jax.nn, jax.scipy.special."""
    fn = mapped.get(op)
    if fn is not None:
        return fn
    for name in (op.name, *op.aliases):
        for space in (jnp, jnn, jsp):
            fn = getattr(space, name, None)
            if callable(fn):
                return fn
    return None


class JaxBackend(FunctionalBackend):
    name = "jax"
    tensor_name = "jax.Array"

    def __init__(self) -> None:
        if jax is None:
            raise install_hint("jax", "jax")
        self.ops, runnable = adapter_table(resolve, _mapped(), UNSUPPORTED)
        self.capabilities = Capabilities(ops=runnable, dtypes=("float64", "float32", "float16", "bfloat16"),
                                         devices=("cpu", "cuda"), forward=True,
                                         forward_note="jax.jvp")

    @contextmanager
    def on_device(self, device: str) -> Iterator[None]:
        kind, _, index = device.partition(":")
        try:
            found = jax.devices("gpu" if kind == "cuda" else kind)
        except RuntimeError:  # no backend of that kind on this machine
            found = []
        if int(index or 0) >= len(found):
            raise Unsupported(f"device {device} (no CUDA device)" if kind == "cuda" and not found else
                              f"device {device} (this machine has {len(found)} {kind} device(s))")
        with jax.default_device(found[int(index or 0)]):  # every array of the check is made there
            yield

    @contextmanager
    def session(self) -> Iterator[None]:
        old = jax.config.read("jax_enable_x64")
        jax.config.update("jax_enable_x64", True)  # float64 inputs stay float64
        try:
            yield
        finally:
            jax.config.update("jax_enable_x64", old)

    def array(self, array: np.ndarray) -> Any:
        return jnp.asarray(array)

    def apply(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        fn = self.ops.get(op)
        if fn is None:
            if any(isinstance(a, jax.core.Tracer) for a in args):
                # under jax.vjp: gradients_by_vjp ran the same forward pass on concrete arrays first,
                # where `composite` checked the domain at these very inputs
                expr = as_expr(op.composite(*(Var(n) for n in op.args), **params))  # type: ignore[misc]
                return self.walk(expr, dict(zip(op.args, args)))
            return self.composite(op, args, params, np.asarray)
        return fn(*args, **params)

    def vjp(self, fn: Callable[..., Any], inputs: list[Any], grad_output: Any | None) -> tuple[Any, list[Any]]:
        out, pullback = jax.vjp(fn, *inputs)
        seed = jnp.ones_like(out) if grad_output is None else jnp.asarray(grad_output, dtype=jnp.result_type(out))
        return out, list(pullback(jnp.broadcast_to(seed, jnp.shape(out))))

    def forward_jvp(self, fn: Callable[..., Any], primals: list[Any], tangents: list[Any]) -> tuple[Any, Any | None]:
        fn(*primals)  # concrete first: a composite checks its domain here, not under tracing
        try:
            return jax.jvp(fn, tuple(primals), tuple(tangents))
        except Exception as exc:  # "can't apply forward-mode autodiff (jvp) to a custom_vjp function."
            if "forward-mode autodiff" not in str(exc):  # (also inside check_function's FunctionError)
                raise
            raise Unsupported(f"forward mode here: {str(exc).strip().splitlines()[0]}") from exc

    def sum(self, value: Any) -> Any:
        return jnp.sum(value)

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.array(value)

    def is_tensor(self, value: Any) -> bool:
        return isinstance(value, jax.Array)
