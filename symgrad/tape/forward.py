"""Forward mode on the reverse-mode tape: ``jvp(func, primals, tangents)``, as ``torch.func.jvp`` is called.

symgrad has no dual numbers.  The JVP comes from the op table's VJPs by the *double-VJP
trick*: the VJP ``u -> J^T u`` is linear in ``u``, so recording it with ``create_graph=True``
at a ``u`` that requires grad and differentiating ``<J^T u, t>`` with respect to ``u`` gives
``J t``.  Every table VJP is written with the table's own ops, so every op has a JVP; a
``symgrad.autograd.Function`` has one when its ``backward`` is written with symgrad ops (a
``backward`` that leaves the tape -- numpy, ``.detach()`` -- has none, and its JVP comes out 0
where ``u`` does not reach the result: forward-mode checking then fails it, as it should).
A ``jvp`` staticmethod of a ``Function`` is not used: the VJP is the only rule this tape has.

Order 1 only: the result does not record a graph of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from symgrad.ir import ops
from symgrad.tape.grad_mode import enable_grad
from symgrad.tape.graph import Tensor, grad

__all__ = ["jvp"]


def _as_tensor(value: Any, what: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    try:
        return Tensor._make(np.asarray(value, dtype=np.result_type(np.asarray(value).dtype, np.float32)))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"jvp: {what} must be a Tensor or an array, got {type(value).__name__}") from exc


def jvp(func: Callable[..., Any], primals: Sequence[Any] | Tensor, tangents: Sequence[Any] | Tensor
        ) -> tuple[Tensor, Tensor]:
    """``(func(*primals), J(primals) @ tangents)``: the forward value and the Jacobian-vector product.

    ``primals`` and ``tangents`` are tuples of the same length (or one tensor each), every tangent
    of its primal's shape, as for ``torch.func.jvp``.  ``func`` must return one tensor.  Computed
    by the double-VJP trick from the table's VJPs (see the module's docstring).
    """
    if isinstance(primals, Tensor) or not isinstance(primals, (tuple, list)):
        primals = (primals,)
    if isinstance(tangents, Tensor) or not isinstance(tangents, (tuple, list)):
        tangents = (tangents,)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    xs = [_as_tensor(p, "a primal").detach().requires_grad_(True) for p in primals]
    ts = [_as_tensor(t, "a tangent").detach() for t in tangents]
    for i, (x, t) in enumerate(zip(xs, ts)):
        if tuple(t.shape) != tuple(x.shape):
            raise ValueError(f"jvp: tangent {i} has shape {tuple(t.shape)}, its primal {tuple(x.shape)}")
    with enable_grad():
        out = func(*xs)
        if not isinstance(out, Tensor):
            raise TypeError(f"jvp: func must return a Tensor, got {type(out).__name__}")
        zeros = Tensor._make(np.zeros(out.shape, dtype=out.dtype))
        if not out.requires_grad:  # the output depends on no primal
            return out.detach(), zeros
        u = zeros.detach().requires_grad_(True)
        vjps = grad(out, xs, u, create_graph=True, allow_unused=True)  # J^T u, recorded: linear in u
        dot: Tensor | None = None
        for g, t in zip(vjps, ts):
            if g is not None and g.requires_grad:
                term = ops.sum(g * t)
                dot = term if dot is None else dot + term
        if dot is None:  # no VJP depends on u: the backward left the tape (or every VJP is 0)
            return out.detach(), zeros
        (jv,) = grad(dot, [u], allow_unused=True)
    return out.detach(), zeros if jv is None else jv.detach()
