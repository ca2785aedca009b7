"""The ``tinygrad`` backend: tinygrad's ``Tensor.gradient``, checked against sympy.

A tape engine: ``Tensor.gradient(*targets, gradient=seed)`` differentiates the lazy
graph and can differentiate its own result again, so every order works.  Each op is
the ``Tensor`` method of its name or an alias unless the map below says otherwise; an
op tinygrad lacks runs as its composite inside its domain.

Devices: tinygrad compiles kernels for its default device (CPU needs ``clang``).  When
``DEV`` is unset and no ``clang`` (or ``$CC``) is on the PATH, this module sets
``DEV=PYTHON``, tinygrad's interpreted device: slow but exact enough for the suite.
Constants beside a tensor are wrapped as tensors (``capabilities.wrap_constants``):
``maximum(1.0, x)`` has no tensor to call the method on otherwise.  Inputs and
constants are built from one-element numpy buffers, never ``Tensor(2.0)``: tinygrad
folds Python-scalar tensors into shared constants (see docs/engine-bugs.md).
"""

from __future__ import annotations

import operator
import os
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np

from symgrad.backends.base import Capabilities, TapeBackend, Unsupported, adapter_table, install_hint
from symgrad.ir import ops
from symgrad.ir.ops import Op, normalize_axes

_NO_COMPILER = not os.environ.get("DEV") and not shutil.which(os.environ.get("CC", "clang"))
if _NO_COMPILER:
    os.environ["DEV"] = "PYTHON"  # no C compiler: tinygrad's interpreted device (read at import)
try:
    from tinygrad import Tensor
    from tinygrad.helpers import DEV

    if _NO_COMPILER and not DEV.device:  # tinygrad was imported before this module
        DEV.value = "PYTHON"
except ImportError:  # pragma: no cover - exercised where tinygrad is missing
    Tensor = None  # type: ignore[assignment,misc]


def _axes(x: Any, axis: Any) -> Any:
    return None if axis is None else normalize_axes(axis, x.ndim)


def _reduce(name: str) -> Callable[..., Any]:
    return lambda x, axis=None, keepdims=False: getattr(x, name)(axis=_axes(x, axis), keepdim=keepdims)


def _logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    if x.ndim == 0:
        return x + 0.0
    axes = range(x.ndim) if axis is None else normalize_axes(axis, x.ndim)
    for d in sorted(axes, reverse=True):  # tinygrad reduces one axis at a time; LSE over (i, j) = LSE_j(LSE_i)
        x = x.logsumexp(axis=d, keepdim=keepdims)
    return x


def _method(name: str) -> Callable[..., Any]:
    return lambda x, *rest, **kw: getattr(x, name)(*rest, **kw)


def _nonpositive(x: Any) -> Any:
    """x where x <= 0, else 0: the argument of the negative branch's exp, which then never overflows
    (an inf in the unselected branch would make its zero gradient nan)."""
    return (x > 0).where(0.0, x)


def _shaped(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A shape op as tinygrad's reshape to the shape numpy's ``fn`` gives (squeeze/expand_dims of several axes)."""
    return lambda x, axis=None: x.reshape(fn(np.empty(x.shape), axis).shape)


# the map to tinygrad, keyed by the table's ops: only where the method has another name or signature,
# or a convention to pick (tinygrad's leaky_relu, selu and hardtanh take the other branch at a kink; its elu
# and celu are its own: elu'(0) = 0 is a tinygrad bug, see docs/engine-bugs.md)
def _mapped() -> dict[Op, Callable[..., Any]]:
    return {
        ops.add: operator.add, ops.sub: operator.sub, ops.mul: operator.mul, ops.div: operator.truediv,
        ops.neg: operator.neg, ops.pow: operator.pow,
        ops.sum: _reduce("sum"), ops.mean: _reduce("mean"), ops.prod: _reduce("prod"),
        ops.max: _reduce("max"), ops.min: _reduce("min"), ops.logsumexp: _logsumexp,
        ops.var: lambda x, axis=None, keepdims=False, ddof=0: x.var(axis=_axes(x, axis), keepdim=keepdims,
                                                                    correction=ddof),
        ops.std: lambda x, axis=None, keepdims=False, ddof=0: x.std(axis=_axes(x, axis), keepdim=keepdims,
                                                                    correction=ddof),
        # numpy's transpose of a 0-d array is itself; tinygrad's permute() wants at least one axis
        ops.transpose: lambda x, axes=None: x if x.ndim == 0 else x.permute(
            *(reversed(range(x.ndim)) if axes is None else axes)),
        ops.where: lambda c, x, y: (c != 0).where(x, y),  # tinygrad's condition must be bool
        ops.leaky_relu: lambda x, negative_slope=0.01: (x > 0).where(x, x * negative_slope),
        ops.selu: lambda x: (x > 0).where(x, (_nonpositive(x).exp() - 1.0) * ops._SELU_ALPHA) * ops._SELU_SCALE,
        ops.hardtanh: lambda x, min_val=-1.0, max_val=1.0: (x <= min_val).where(
            min_val, (x >= max_val).where(max_val, x)),
        ops.logit: lambda x: (x / (1.0 - x)).log(),
        ops.xlogy: lambda x, y: x * y.log(),  # inside its domain y > 0
        ops.index: lambda x, key: x[ops.decode_key(key)],
        ops.broadcast_to: lambda x, shape: x.reshape((1,) * (len(shape) - x.ndim) + x.shape).expand(*shape),
        ops.expand_dims: _shaped(np.expand_dims), ops.squeeze: _shaped(np.squeeze),
        ops.flip: lambda x, axis=None: x.flip(tuple(range(x.ndim)) if axis is None else normalize_axes(axis, x.ndim)),
        ops.concatenate: lambda x, y, axis=0: x.cat(y, dim=axis),
        ops.stack: lambda x, y, axis=0: x.stack(y, dim=axis),
        ops.einsum: _einsum,
    }


# ops the engine has no function for and no composite to run as, with the reason
UNSUPPORTED: dict[Op, str] = {ops.expm1: "no expm1 in tinygrad", ops.log1p: "no log1p in tinygrad",
                              ops.atan2: "no atan2 in tinygrad", ops.hypot: "no hypot in tinygrad",
                              ops.erfc: "no erfc in tinygrad", ops.erfinv: "no erfinv in tinygrad",
                              ops.digamma: "no digamma in tinygrad", ops.lgamma: "no lgamma in tinygrad",
                              ops.trace: "no trace in tinygrad",
                              ops.gelu: "tinygrad's Tensor.gelu is the tanh approximation, not the table's erf form"}
UNSUPPORTED.update({op: "no linear algebra (det, inv, solve) in tinygrad" for op in (ops.det, ops.inv, ops.solve)})
UNSUPPORTED.update({op: "not mapped for tinygrad yet (conditions: no same-name function, bool leaves take no gradient)"
                    for op in (ops.less, ops.less_equal, ops.greater, ops.greater_equal, ops.eq, ops.not_equal,
                               ops.logical_and, ops.logical_or, ops.logical_not)})
UNSUPPORTED.update({ops.norm: "not mapped for tinygrad yet (no same-name function)",
                    ops.cumprod: "not mapped for tinygrad yet (its cumprod takes no default axis)"})


def _einsum(a: Any, b: Any, subscripts: str) -> Any:
    """Tensor.einsum takes tensors only: a constant operand (one operand's 1.0, see ops.einsum) becomes one."""
    like = a if isinstance(a, Tensor) else b
    a, b = (x if isinstance(x, Tensor) else Tensor(np.asarray(x), dtype=like.dtype) for x in (a, b))
    if ops.einsum_broadcasts(subscripts, (a.shape, b.shape)):
        raise Unsupported("op 'einsum' broadcasting an index of size 1: tinygrad's einsum needs equal sizes")
    return Tensor.einsum(subscripts, a, b)


def resolve(op: Op, mapped: dict[Op, Callable[..., Any]]) -> Callable[..., Any] | None:
    fn = mapped.get(op)
    if fn is not None:
        return fn
    for name in (op.name, *op.aliases):
        if callable(getattr(Tensor, name, None)):
            return _method(name)
    return None


def _tensor(array: np.ndarray) -> Any:
    """A tinygrad tensor holding ``array``, from a real buffer (0-d included)."""
    a = np.array(array)
    return Tensor(a.reshape(-1)).reshape(a.shape)


class TinygradBackend(TapeBackend):
    name = "tinygrad"
    tensor_name = "tinygrad.Tensor"

    def __init__(self) -> None:
        if Tensor is None:
            raise install_hint("tinygrad", "tinygrad")
        self.ops, runnable = adapter_table(resolve, _mapped(), UNSUPPORTED)
        interpreted = DEV.device == "PYTHON"
        self.capabilities = Capabilities(
            ops=runnable, wrap_constants=True, forward_note="tinygrad has no forward-mode AD",
            max_order=2 if interpreted else None,
            order_note="tinygrad's interpreted DEV=PYTHON device: order 3 takes minutes" if interpreted else "")

    def leaf(self, array: np.ndarray, requires_grad: bool) -> Any:
        return _tensor(array)

    def wrap(self, value: Any, like: Any) -> Any:
        return _tensor(np.asarray(value, dtype=_np_dtype(like)))

    def apply(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        fn = self.ops.get(op)
        if fn is None:
            return self.composite(op, args, params, self.to_numpy)
        return fn(*args, **params)

    def grad(self, output: Any, inputs: list[Any], grad_output: np.ndarray | None,
             create_graph: bool) -> list[Any | None]:
        seed = _tensor(np.ones((), _np_dtype(output)) if grad_output is None
                       else np.broadcast_to(np.asarray(grad_output, _np_dtype(output)), output.shape))
        grads = output.gradient(*inputs, gradient=seed)
        # an unreachable target gets tinygrad's deviceless constant 0, which only a compiler could
        # realize: give it a buffer (adding exact zeros keeps it differentiable)
        return [g if isinstance(g.device, str) else g + _tensor(np.zeros(g.shape, _np_dtype(g))) for g in grads]

    def sum(self, value: Any) -> Any:
        return value.sum()

    def to_numpy(self, value: Any) -> np.ndarray:
        if not isinstance(value, Tensor):
            return np.asarray(value)
        if value.ndim == 0:  # read through a 1-element view: a folded 0-d constant has no buffer
            return value.reshape(1).numpy().reshape(())
        return value.numpy().copy()

    def is_tensor(self, value: Any) -> bool:
        return isinstance(value, Tensor)


def _np_dtype(t: Any) -> np.dtype:
    from tinygrad.dtype import _to_np_dtype

    return np.dtype(_to_np_dtype(t.dtype))
