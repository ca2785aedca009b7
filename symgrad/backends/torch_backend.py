"""The ``torch`` backend: PyTorch's autograd, checked against sympy.

Inputs become ``torch.tensor``s of the case's dtype (float64 or float32, CPU);
every op of the table maps to the torch function of the same meaning; gradients
come from ``torch.autograd.grad(..., retain_graph=True, create_graph=k < order,
allow_unused=True)``.

Where torch has a choice, the adapter picks the function whose convention matches
symgrad's (DESIGN.md, "Conventions at non-differentiable points"): reductions
``max``/``min`` use ``torch.amax``/``torch.amin``, which split the gradient evenly
among tied elements (``torch.max(x, dim)`` would give it all to one index).
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Optional

import numpy as np

from symgrad.ir.ops import Op, normalize_axes
from symgrad.backends.base import TapeBackend, Unsupported, install_hint

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - exercised where torch is missing
    torch = None  # type: ignore[assignment]


def _dims(x: Any, axis: Any) -> tuple[int, ...]:
    return normalize_axes(axis, x.ndim)


def _reduce(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A torch reduction taking ``dim=`` (a tuple), called with the table's ``axis``."""
    return lambda x, axis=None: fn(x, dim=_dims(x, axis))


def _prod(x: Any, axis: Any = None) -> Any:
    if axis is None:
        return torch.prod(x)
    for d in sorted(_dims(x, axis), reverse=True):  # torch.prod takes one dim at a time
        x = torch.prod(x, dim=d)
    return x


def _logsumexp(x: Any, axis: Any = None) -> Any:
    if x.ndim == 0:
        return x.clone()  # log(exp(x)); torch.logsumexp wants a dim to reduce
    return torch.logsumexp(x, dim=_dims(x, axis))


def _transpose(x: Any) -> Any:
    return x.permute(*reversed(range(x.ndim)))  # numpy's transpose: reverse every axis


_SCALAR_OK = frozenset({"add", "sub", "mul", "div", "neg", "pow"})


def _table() -> dict[str, Callable[..., Any]]:
    return {
        "add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
        "neg": operator.neg, "pow": torch.pow,
        "exp": torch.exp, "expm1": torch.expm1, "log": torch.log, "log2": torch.log2,
        "log10": torch.log10, "log1p": torch.log1p, "sqrt": torch.sqrt, "abs": torch.abs,
        "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "asin": torch.asin, "acos": torch.acos,
        "atan": torch.atan, "sinh": torch.sinh, "cosh": torch.cosh, "tanh": torch.tanh,
        "asinh": torch.asinh, "acosh": torch.acosh, "atanh": torch.atanh,
        "sigmoid": torch.sigmoid, "relu": torch.relu, "softplus": F.softplus, "erf": torch.erf,
        "detach": lambda x: x.detach(),
        "atan2": torch.atan2, "hypot": torch.hypot, "maximum": torch.maximum, "minimum": torch.minimum,
        "logaddexp": torch.logaddexp,
        "sum": _reduce(torch.sum), "mean": _reduce(torch.mean), "prod": _prod,
        "max": _reduce(torch.amax), "min": _reduce(torch.amin), "logsumexp": _logsumexp,
        "matmul": torch.matmul, "transpose": _transpose,
    }


class TorchBackend(TapeBackend):
    name = "torch"
    tensor_name = "torch.Tensor"

    def __init__(self) -> None:
        if torch is None:
            raise install_hint("torch", "torch")
        self.ops = _table()

    def leaf(self, array: np.ndarray, requires_grad: bool) -> Any:
        return torch.tensor(np.array(array), requires_grad=requires_grad)  # keeps float64 / float32

    def apply(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        fn = self.ops.get(op.name)
        if fn is None:
            raise Unsupported(f"op {op.name!r}")
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if not tensors:  # constants only (the -0.5 of x**-0.5): fold to a Python float
            return float(fn(*(torch.tensor(a, dtype=torch.float64) for a in args), **params))
        if op.name not in _SCALAR_OK:
            # torch.maximum, atan2, ... want tensors: a 0-d tensor never promotes a float32 array
            args = [a if isinstance(a, torch.Tensor) else torch.tensor(a, dtype=tensors[0].dtype) for a in args]
        # Python scalars stay scalars where torch takes them, as a user writes x ** 2: torch's
        # pow(Tensor, Scalar) has its own backward (exactly 0 for x ** 0, even at second order)
        return fn(*args, **params)

    def grad(self, output: Any, inputs: list[Any], grad_output: Optional[np.ndarray],
             create_graph: bool) -> list[Optional[Any]]:
        if not isinstance(output, torch.Tensor) or not output.requires_grad:
            return [None] * len(inputs)  # nothing on the graph: torch would raise
        seed = None if grad_output is None else torch.as_tensor(np.asarray(grad_output), dtype=output.dtype)
        if seed is not None:
            seed = seed.expand(output.shape) if seed.shape != output.shape else seed
        return list(torch.autograd.grad(output, inputs, grad_outputs=seed, retain_graph=True,
                                        create_graph=create_graph, allow_unused=True))

    def sum(self, value: Any) -> Any:
        return value.sum()

    def to_numpy(self, value: Any) -> np.ndarray:
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().numpy(force=True).copy()  # force: zero tensors of double backward
        return np.asarray(value)

    def is_tensor(self, value: Any) -> bool:
        return isinstance(value, torch.Tensor)
