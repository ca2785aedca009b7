"""The ``mygrad`` backend: MyGrad's tensors and ``backward``, checked against sympy.

A tape engine with first derivatives only (``backward`` frees its graph and has no
``create_graph``): its capabilities say ``max_order=1``, so higher-order cases are
skipped with that reason.  Each op is MyGrad's function of its name or an alias
(``mygrad``, ``mygrad.nnet``); ops MyGrad lacks run as their composite inside their
domain, or are skipped.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from symgrad.backends.base import Capabilities, TapeBackend, adapter_table, install_hint
from symgrad.ir import ops
from symgrad.ir.ops import Op, normalize_axes

try:
    import mygrad as mg
    import mygrad.nnet as mnn
except ImportError:  # pragma: no cover - exercised where mygrad is missing
    mg = None  # type: ignore[assignment]


def _reduce(fn: Callable[..., Any]) -> Callable[..., Any]:
    return lambda x, axis=None, keepdims=False: fn(
        x, axis=None if axis is None else normalize_axes(axis, x.ndim), keepdims=keepdims)


def _data(x: Any) -> np.ndarray:
    return np.asarray(x.data if isinstance(x, mg.Tensor) else x)


def _step(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A piecewise-constant op (sign, floor, ...): MyGrad refuses to differentiate its ufunc, so the result
    is a constant tensor, whose zero gradient is the table's convention (0 at the jumps too)."""
    return lambda x: mg.tensor(fn(_data(x)), constant=True)


def _where(c: Any, x: Any, y: Any) -> Any:
    return mg.where(_data(c) != 0, x, y)  # MyGrad's condition is an array, not a tensor


def _nonpositive(x: Any) -> Any:
    """x where x <= 0, else 0: the negative branch's exp never overflows (inf * 0 would be nan)."""
    return mg.where(_data(x) > 0, 0.0, x)


def _flip(x: Any, axis: Any = None) -> Any:
    axes = normalize_axes(axis, x.ndim) if axis is not None else tuple(range(x.ndim))
    return x[tuple(slice(None, None, -1) if d in axes else slice(None) for d in range(x.ndim))]


def _expand_dims(x: Any, axis: Any) -> Any:
    for d in normalize_axes(axis, x.ndim + (len(axis) if isinstance(axis, tuple) else 1)):
        x = mg.expand_dims(x, d)  # MyGrad's expand_dims takes one axis
    return x


# the map to MyGrad, keyed by the table's ops: only where the name or signature differs, or a convention
# to pick (the kinks of elu, selu, leaky_relu, hardtanh and clip written with `where`, as the table defines them:
# MyGrad's selu takes the x >= 0 branch at 0)
def _mapped() -> dict[Op, Callable[..., Any]]:
    return {
        ops.add: operator.add, ops.sub: operator.sub, ops.mul: operator.mul, ops.div: operator.truediv,
        ops.neg: operator.neg, ops.pow: operator.pow,
        ops.sum: _reduce(mg.sum), ops.mean: _reduce(mg.mean), ops.prod: _reduce(mg.prod),
        ops.max: _reduce(mg.max), ops.min: _reduce(mg.min),
        ops.var: lambda x, axis=None, keepdims=False, ddof=0: mg.var(
            x, axis=None if axis is None else normalize_axes(axis, x.ndim), ddof=ddof, keepdims=keepdims),
        ops.std: lambda x, axis=None, keepdims=False, ddof=0: mg.std(
            x, axis=None if axis is None else normalize_axes(axis, x.ndim), ddof=ddof, keepdims=keepdims),
        ops.detach: lambda x: mg.tensor(x, constant=True),
        ops.sign: _step(np.sign), ops.floor: _step(np.floor), ops.ceil: _step(np.ceil), ops.round: _step(np.round),
        ops.where: _where,
        ops.softplus: lambda x: mg.logaddexp(0.0, x),
        ops.clip: lambda x, lo, hi: _where((_data(x) > _data(hi)) | (_data(lo) > _data(hi)), hi,
                                           _where(_data(x) < _data(lo), lo, x)),
        ops.leaky_relu: lambda x, negative_slope=0.01: _where(_data(x) > 0, x, negative_slope * x),
        ops.elu: lambda x, alpha=1.0: _where(_data(x) > 0, x, alpha * (mg.exp(_nonpositive(x)) - 1.0)),
        ops.celu: lambda x, alpha=1.0: _where(_data(x) > 0, x, alpha * (mg.exp(_nonpositive(x) / alpha) - 1.0)),
        ops.selu: lambda x: ops._SELU_SCALE * _where(_data(x) > 0, x, ops._SELU_ALPHA * (mg.exp(_nonpositive(x)) - 1.0)),
        ops.hardtanh: lambda x, min_val=-1.0, max_val=1.0: _where(
            _data(x) <= min_val, min_val, _where(_data(x) >= max_val, max_val, x)),
        ops.log_softmax: lambda x, axis=-1: mnn.logsoftmax(x, axis=axis),
        ops.logit: lambda x: mg.log(x / (1.0 - x)),
        ops.xlogy: lambda x, y: x * mg.log(y),  # inside its domain y > 0
        ops.copysign: lambda x, y: mg.abs(x) * np.where(np.signbit(_data(y)), -1.0, 1.0),
        ops.transpose: lambda x, axes=None: mg.transpose(x, *(axes or ())),
        ops.reshape: lambda x, shape: mg.reshape(x, tuple(shape)),
        ops.index: lambda x, key: x[ops.decode_key(key)],
        ops.expand_dims: _expand_dims, ops.flip: _flip,
        ops.concatenate: lambda x, y, axis=0: mg.concatenate((x, y), axis=axis),
        ops.stack: lambda x, y, axis=0: mg.stack((x, y), axis=axis),
        ops.einsum: lambda a, b, subscripts: mg.einsum(subscripts, a, b),
        ops.trace: lambda a: mg.einsum("ii", a),
        ops.eq: mg.equal,  # the table's ==
    }


def resolve(op: Op, mapped: dict[Op, Callable[..., Any]]) -> Callable[..., Any] | None:
    fn = mapped.get(op)
    if fn is not None:
        return fn
    for name in (op.name, *op.aliases):
        for space in (mg, mnn):
            fn = getattr(space, name, None)
            if callable(fn):
                return fn
    return None


# ops MyGrad has no function for, and no composite to run as (skipped with the capability's reason)
UNSUPPORTED: dict[Op, str] = {op: f"no {op.name} in MyGrad" for op in (
    ops.erf, ops.erfc, ops.erfinv, ops.digamma, ops.lgamma, ops.logsumexp, ops.hypot)}
UNSUPPORTED.update({op: "no det, inv or solve in MyGrad (its linalg has only norm)"
                    for op in (ops.det, ops.inv, ops.solve)})
UNSUPPORTED[ops.gelu] = "no erf in MyGrad (gelu is 0.5 x (1 + erf(x / sqrt 2)))"
UNSUPPORTED[ops.norm] = "not mapped for mygrad yet (no same-name function)"


class MygradBackend(TapeBackend):
    name = "mygrad"
    tensor_name = "mygrad.Tensor"

    def __init__(self) -> None:
        if mg is None:
            raise install_hint("mygrad", "mygrad")
        self.ops, runnable = adapter_table(resolve, _mapped(), UNSUPPORTED)
        self.capabilities = Capabilities(ops=runnable, max_order=1, forward_note="MyGrad has no forward-mode AD")

    def leaf(self, array: np.ndarray, requires_grad: bool) -> Any:
        return mg.tensor(np.array(array), constant=not requires_grad)

    def apply(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        fn = self.ops.get(op)
        if fn is None:
            return self.composite(op, args, params, _data)
        return fn(*args, **params)

    def grad(self, output: Any, inputs: list[Any], grad_output: np.ndarray | None,
             create_graph: bool) -> list[Any | None]:
        if not isinstance(output, mg.Tensor) or output.constant:
            return [None] * len(inputs)
        seed = None if grad_output is None else np.broadcast_to(np.asarray(grad_output, output.dtype), output.shape)
        output.backward(seed)
        return [None if x.grad is None else np.array(x.grad) for x in inputs]

    def sum(self, value: Any) -> Any:
        return mg.sum(value)

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.array(value.data if isinstance(value, mg.Tensor) else value)

    def is_tensor(self, value: Any) -> bool:
        return isinstance(value, mg.Tensor)
