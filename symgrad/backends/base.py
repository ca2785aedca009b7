"""The backend interface and the driver shared by tape-style engines.

A backend is what symgrad checks.  It gets the IR and numpy inputs and must hand back
the forward value and gradients as numpy arrays::

    value, grads = backend.gradients(expr, inputs, wrt, order, grad_output)
    grads[("a",)]        # order 1: the VJP of the output with grad_output, w.r.t. a
    grads[("a", "b")]    # order 2: d/db of sum(grads[("a",)]), as create_graph=True gives

There are two ways to write one:

* **a tape** (PyTorch-like engines): subclass :class:`TapeBackend` and implement
  ``leaf``, ``apply``, ``grad``, ``sum`` and ``to_numpy``; :func:`gradients_by_tape`
  does the rest (``autograd.grad`` with ``create_graph`` k - 1 times).
* **anything else** (functional engines such as HIPS autograd): subclass
  :class:`Backend` and implement ``gradients`` directly.  Do the forward pass through
  ``self.evaluate(expr, leaves)`` so :func:`symgrad.check_function` can substitute the
  user's function for the IR.

An op the engine lacks raises :class:`Unsupported` (the case is *skipped* with the
reason); a missing package raises :class:`BackendUnavailable` with the install hint.
"""

from __future__ import annotations

import itertools
from typing import Any, Optional, Sequence

import numpy as np

from symgrad.ir.expr import Const, Expr, Var, evaluate
from symgrad.ir.ops import Op

Grads = dict[tuple[str, ...], Optional[np.ndarray]]


class Unsupported(Exception):
    """The engine lacks an op: the case is skipped with this reason, never failed."""


class BackendUnavailable(RuntimeError):
    """The engine's package is not installed; the message says how to install it."""


def install_hint(name: str, package: str) -> BackendUnavailable:
    """The one-line error for a backend whose package is missing."""
    return BackendUnavailable(f"backend {name!r} needs: pip install symgrad[{package}]")


class Backend:
    """What symgrad needs from an engine.

    ``gradients`` evaluates ``expr`` at ``inputs`` (numpy arrays in the case's dtype)
    and returns the forward value and, for every sequence of ``order`` names from
    ``wrt``, the gradient DESIGN.md defines: the VJP with ``grad_output`` (an array
    of the forward value's shape) for order 1, then the gradient of the sum of the
    previous order's gradient.  Inputs not in ``wrt`` are constants.  A gradient
    the engine did not produce (``None`` from the engine) is returned as ``None``;
    the runner reports it as a failure when the input is on the graph.
    """

    name: str = ""
    #: how error messages name the engine's tensor type ("torch.Tensor")
    tensor_name: str = "tensor"

    def gradients(self, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str], order: int,
                  grad_output: np.ndarray) -> tuple[np.ndarray, Grads]:
        """``(value, {(name, ...): gradient or None})``, all numpy, for every sequence of ``order`` names."""
        raise NotImplementedError

    def evaluate(self, expr: Expr, leaves: dict[str, Any]) -> Any:
        """The forward pass on the engine's own values (``leaves``: input name -> value)."""
        raise NotImplementedError

    def is_tensor(self, value: Any) -> bool:
        """Whether ``value`` is one of the engine's tensors (checked on a user's function's output)."""
        return True

    def __repr__(self) -> str:
        return f"<backend {self.name!r}>"


class TapeBackend(Backend):
    """An engine with PyTorch-like leaves and an ``autograd.grad``: implement five small methods."""

    def leaf(self, array: np.ndarray, requires_grad: bool) -> Any:
        """The engine's tensor holding ``array`` (same dtype), tracked when ``requires_grad``."""
        raise NotImplementedError

    def apply(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        """The engine's version of ``op`` (``params``: e.g. ``axis``); raise :class:`Unsupported` when it has none."""
        raise NotImplementedError

    def grad(self, output: Any, inputs: list[Any], grad_output: Optional[np.ndarray],
             create_graph: bool) -> list[Optional[Any]]:
        """VJP of ``output`` (``grad_output`` None: a scalar, seeded with 1); ``None`` where unused.

        The graph must survive the call (``retain_graph=True``): the driver differentiates
        several gradients that share it.  ``create_graph`` records the backward pass so the
        result can be differentiated again.
        """
        raise NotImplementedError

    def sum(self, value: Any) -> Any:
        """The sum of all elements, on the tape."""
        raise NotImplementedError

    def to_numpy(self, value: Any) -> np.ndarray:
        """A numpy copy of one of the engine's values."""
        raise NotImplementedError

    def constant(self, value: float, leaves: dict[str, Any]) -> Any:
        """A literal of the expression (``pi``, ``2.0``) as the engine wants it; a Python float by default.

        Integer literals become floats too: ``2**64`` must not wrap around in int64.
        """
        return float(value)

    def evaluate(self, expr: Expr, leaves: dict[str, Any]) -> Any:
        """Walk the IR bottom-up with :meth:`apply`."""

        def leaf(node: Expr) -> Any:
            if isinstance(node, Var):
                return leaves[node.name]
            assert isinstance(node, Const)
            return self.constant(node.value, leaves)

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
