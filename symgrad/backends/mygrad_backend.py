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
    return lambda x, axis=None: fn(x, axis=None if axis is None else normalize_axes(axis, x.ndim))


# the map to MyGrad, keyed by the table's ops: only where the name or signature differs
def _mapped() -> dict[Op, Callable[..., Any]]:
    return {
        ops.add: operator.add, ops.sub: operator.sub, ops.mul: operator.mul, ops.div: operator.truediv,
        ops.neg: operator.neg, ops.pow: operator.pow,
        ops.sum: _reduce(mg.sum), ops.mean: _reduce(mg.mean), ops.prod: _reduce(mg.prod),
        ops.max: _reduce(mg.max), ops.min: _reduce(mg.min),
        ops.detach: lambda x: mg.tensor(x, constant=True),
        ops.eq: mg.equal,  # the table's == (issue 15)
        ops.sign: lambda x: mg.tensor(np.sign(x.data if isinstance(x, mg.Tensor) else x), constant=True),
        ops.where: lambda c, x, y: mg.where(c.data if isinstance(c, mg.Tensor) else c, x, y),
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
UNSUPPORTED: dict[Op, str] = {ops.erf: "no erf in MyGrad", ops.softplus: "no softplus in MyGrad",
                              ops.logsumexp: "no logsumexp in MyGrad", ops.hypot: "no hypot in MyGrad"}
# issue 15's ops whose same-name engine function differs from the table's op (tuple arguments,
# tanh-approximate gelu, other conventions) or fails the engine-map test: declared, not guessed
UNSUPPORTED.update({op: "not mapped for mygrad yet (its same-name function differs from the table's op)"
                    for op in (ops.ceil, ops.celu, ops.concatenate, ops.copysign, ops.det, ops.digamma, ops.einsum, ops.elu,
                    ops.erfc, ops.erfinv, ops.flip, ops.floor, ops.gelu, ops.hardtanh, ops.index, ops.inv,
                    ops.leaky_relu, ops.lgamma, ops.log_softmax, ops.logit, ops.logsigmoid, ops.mish, ops.reshape,
                    ops.round, ops.solve, ops.stack, ops.trace, ops.xlogy)})
UNSUPPORTED[ops.norm] = "not mapped for mygrad yet (no same-name function)"


class MygradBackend(TapeBackend):
    name = "mygrad"
    tensor_name = "mygrad.Tensor"

    def __init__(self) -> None:
        if mg is None:
            raise install_hint("mygrad", "mygrad")
        self.ops, runnable = adapter_table(resolve, _mapped(), UNSUPPORTED)
        self.capabilities = Capabilities(ops=runnable, max_order=1)

    def leaf(self, array: np.ndarray, requires_grad: bool) -> Any:
        return mg.tensor(np.array(array), constant=not requires_grad)

    def apply(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        fn = self.ops.get(op)
        if fn is None:
            return self.composite(op, args, params, lambda a: np.asarray(a.data if isinstance(a, mg.Tensor) else a))
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
