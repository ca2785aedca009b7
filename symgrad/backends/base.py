"""The backend interface and the driver shared by tape-style engines."""

from __future__ import annotations

import itertools
from typing import Any, Optional, Sequence

import numpy as np

from ..expr import Call, Const, Expr, Var, evaluate
from ..ops import Op

Grads = dict[tuple[str, ...], Optional[np.ndarray]]


class Unsupported(Exception):
    """The engine lacks an op: the case is skipped with this reason, never failed."""


class BackendUnavailable(RuntimeError):
    """The engine's package is not installed; the message says how to install it."""


class Backend:
    """What symgrad needs from an engine.

    ``gradients`` evaluates ``expr`` at ``inputs`` and returns the forward value
    and, for every sequence of ``order`` names from ``wrt``, the gradient
    DESIGN.md defines: the VJP with ``grad_output`` for order 1, then the
    gradient of the sum of the previous order's gradient.  A gradient the
    engine did not produce (``None`` from the engine) is returned as ``None``.
    """

    name: str = ""

    def gradients(self, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str], order: int,
                  grad_output: np.ndarray) -> tuple[np.ndarray, Grads]:
        raise NotImplementedError


class TapeBackend(Backend):
    """An engine with PyTorch-like leaves and an ``autograd.grad``: implement five small methods."""

    def leaf(self, array: np.ndarray, requires_grad: bool) -> Any:
        raise NotImplementedError

    def apply(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        """The engine's version of ``op``; raise :class:`Unsupported` when it has none."""
        raise NotImplementedError

    def grad(self, output: Any, inputs: list[Any], grad_output: Optional[np.ndarray],
             create_graph: bool) -> list[Optional[Any]]:
        """VJP of ``output`` (``grad_output`` None: a scalar, seeded with 1); ``None`` where unused."""
        raise NotImplementedError

    def sum(self, value: Any) -> Any:
        raise NotImplementedError

    def to_numpy(self, value: Any) -> np.ndarray:
        raise NotImplementedError

    def constant(self, value: float) -> Any:
        return value

    def evaluate(self, expr: Expr, leaves: dict[str, Any]) -> Any:
        def leaf(node: Expr) -> Any:
            return leaves[node.name] if isinstance(node, Var) else self.constant(node.value)

        return evaluate(expr, leaf, lambda node, args: self.apply(node.op, args, node.kwargs))

    def gradients(self, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str], order: int,
                  grad_output: np.ndarray) -> tuple[np.ndarray, Grads]:
        return gradients_by_tape(self, expr, inputs, wrt, order, grad_output)


def gradients_by_tape(backend: TapeBackend, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str],
                      order: int, grad_output: np.ndarray) -> tuple[np.ndarray, Grads]:
    """Order-k gradients as PyTorch computes them: ``autograd.grad`` with ``create_graph`` k - 1 times."""
    leaves = {n: backend.leaf(a, requires_grad=n in wrt) for n, a in inputs.items()}
    out = backend.evaluate(expr, leaves)
    value = backend.to_numpy(out)
    targets = [leaves[n] for n in wrt]
    level: dict[tuple[str, ...], Any] = {(): out}
    result: Grads = {}
    for k in range(1, order + 1):
        nxt: dict[tuple[str, ...], Any] = {}
        for prefix, y in level.items():
            if y is None:  # nothing flowed at the previous order: every further gradient is None
                nxt.update({prefix + (n,): None for n in wrt})
                continue
            seed = grad_output if k == 1 else None
            grads = backend.grad(y if k == 1 else backend.sum(y), targets, seed, create_graph=k < order)
            nxt.update({prefix + (n,): g for n, g in zip(wrt, grads)})
        level = nxt
    for seq, g in level.items():
        result[seq] = None if g is None else backend.to_numpy(g)
    return value, result


def sequences(wrt: Sequence[str], order: int) -> list[tuple[str, ...]]:
    return list(itertools.product(wrt, repeat=order))
