"""A user's own function as the thing checked: the backend behind :func:`symgrad.check_function`.

:class:`FunctionBackend` wraps a backend (``torch``, ``symgrad``, ``autograd``, ...)
and replaces its forward pass: instead of walking the IR it calls the user's ``fn``
on the backend's leaves, in the order of ``names``.  Everything else -- leaves,
VJPs, higher orders, conversion to numpy -- is the base backend's, so a custom
``torch.autograd.Function`` is differentiated exactly as torch would.

A function that raises, returns something that is not one of the engine's tensors,
or returns the wrong shape makes the case an *error* (:class:`FunctionError`) that
says which.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, ContextManager  # noqa: UP035

import numpy as np

from symgrad.backends.base import Backend, Grads, TapeBackend
from symgrad.ir.expr import Expr
from symgrad.ir.ops import Op


class FunctionError(Exception):
    """The user's function misbehaved (raised, wrong type, wrong shape): the case errors."""


def describe(fn: Callable[..., Any]) -> str:
    """``my_softplus``, ``MySin.apply``, ``torch.tanh``: how messages name a user's callable."""
    if isinstance(fn, Op):
        return f"symgrad.{fn.name}"
    found = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if not isinstance(found, str):
        return type(fn).__name__
    name: str = found
    owner = getattr(fn, "__self__", None)  # a bound method: MySin.apply is bound to the class
    if isinstance(owner, type):
        name = f"{owner.__name__}.{getattr(fn, '__name__', name)}"
    elif name.startswith("_") and "." in name:  # torch.tanh's qualname is _VariableFunctionsClass.tanh
        name = str(getattr(fn, "__name__", name))
    module = str(getattr(fn, "__module__", None) or "")
    top = module.split(".")[0]
    if top in ("torch", "autograd", "numpy", "symgrad") and "." not in name:
        name = f"{top}.{name}"
    return name


class FunctionBackend(TapeBackend):
    """``base`` with its forward pass replaced by ``fn(*leaves[names])``."""

    def __init__(self, base: Backend, fn: Callable[..., Any], names: Sequence[str]):
        self.base = base
        self.fn = fn
        self.names = list(names)
        self.name = base.name
        self.tensor_name = base.tensor_name
        self._shape: tuple[int, ...] | None = None
        # the IR is not walked (the user's function is): every op is fine; order and dtypes are the engine's
        self.capabilities = replace(base.capabilities, ops=None)

    # -- the forward pass: the user's function, checked
    def evaluate(self, expr: Expr, leaves: dict[str, Any]) -> Any:
        label = f"{describe(self.fn)}({', '.join(self.names)})"
        try:
            out = self.fn(*(leaves[n] for n in self.names))
        except Exception as exc:
            raise FunctionError(f"{label} raised {type(exc).__name__}: {_first_line(exc)}") from exc
        if not self.base.is_tensor(out):
            raise FunctionError(f"{label} returned {_type(out)}, not a {self.base.tensor_name}")
        shape = tuple(int(n) for n in np.shape(out))
        if self._shape is not None and shape != self._shape:
            raise FunctionError(f"{label} returned shape {_shape(shape)}, but the reference {expr} "
                                f"has shape {_shape(self._shape)}")
        return out

    def gradients(self, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str], order: int,
                  grad_output: np.ndarray) -> tuple[np.ndarray, Grads]:
        self._shape = tuple(np.shape(grad_output))  # the runner sizes grad_output as the reference's value
        # the base backend's own driver (a tape's, a functional engine's, or its own), our forward pass;
        # the adapter's helpers (composites) still walk the IR through `walk`
        proxy = copy.copy(self.base)
        proxy.evaluate = self.evaluate  # type: ignore[method-assign]
        return proxy.gradients(expr, inputs, wrt, order, grad_output)

    def jvp(self, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str],
            tangents: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        # forward mode as the base backend runs it (torch's dual tensors run a Function's `jvp`), our forward pass
        proxy = copy.copy(self.base)
        proxy.evaluate = self.evaluate  # type: ignore[method-assign]
        return proxy.jvp(expr, inputs, wrt, tangents)

    # -- everything else is the base backend's
    def leaf(self, array: np.ndarray, requires_grad: bool) -> Any:
        return self.base.leaf(array, requires_grad)  # type: ignore[attr-defined]

    def apply(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        return self.base.apply(op, args, params)

    def grad(self, output: Any, inputs: list[Any], grad_output: np.ndarray | None,
             create_graph: bool) -> list[Any | None]:
        return self.base.grad(output, inputs, grad_output, create_graph)  # type: ignore[attr-defined]

    def sum(self, value: Any) -> Any:
        return self.base.sum(value)  # type: ignore[attr-defined]

    def to_numpy(self, value: Any) -> np.ndarray:
        return self.base.to_numpy(value)  # type: ignore[attr-defined]

    def is_tensor(self, value: Any) -> bool:
        return self.base.is_tensor(value)

    def on_device(self, device: str) -> ContextManager[Any]:
        return self.base.on_device(device)


def _first_line(exc: BaseException) -> str:
    try:
        lines = str(exc).strip().splitlines()
    except Exception:
        return f"<unprintable {type(exc).__name__}>"
    return lines[0] if lines else "(no message)"


def _type(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
