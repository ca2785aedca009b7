"""torch's functions beyond the op table's: ``allclose``, ``equal``, ``dot``, ``mm``, and the names of ops the
table may lack (``cat``, ``stack``, ``einsum``, ``softmax``, ``clamp``...).

These are reached through ``symgrad.<name>`` only when the op table has no op of that name: once the
table has ``softmax``, ``symgrad.softmax`` is that op.  Until then the function here raises
``NotImplementedError`` naming the op it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from symgrad.ir import ops
from symgrad.tape.graph import TORCH_SPELLINGS, ShapeError, Tensor, apply_table


def _data(a: Any) -> np.ndarray:
    return a._data if isinstance(a, Tensor) else np.asarray(a)


def _table(name: str, *aliases: str) -> Any:
    for n in (name, *aliases):
        op = ops.lookup(n)
        if op is not None:
            return op
    raise NotImplementedError(f"torch.{name} needs the op {name!r}, which symgrad's op table does not have yet")


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    return bool(np.allclose(_data(input), _data(other), rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(input: Tensor, other: Tensor) -> bool:
    """Same shape and the same values (as torch.equal)."""
    a, b = _data(input), _data(other)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def dot(input: Tensor, other: Tensor) -> Tensor:
    if _data(input).ndim != 1 or _data(other).ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {_data(input).ndim}D and {_data(other).ndim}D tensors")
    return ops.matmul(input, other)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    if _data(input).ndim != 2:
        raise RuntimeError("self must be a matrix")
    if _data(mat2).ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    return ops.matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    return _table("bmm")(input, mat2)


def where(condition: Tensor, input: Any, other: Any) -> Tensor:
    """``torch.where(c, x, y)`` (WhereBackward0), on the table's ``where`` (the one VJPs use)."""
    return ops.OPS["where"](condition, input, other)


def _joinable(tensors: Sequence[Any], dim: int, stacked: bool) -> None:
    """torch's errors for tensors that cat (or stack) cannot join."""
    shapes = [tuple(np.shape(_data(t))) for t in tensors]
    for k, shape in enumerate(shapes[1:], 1):
        first = shapes[0]
        if stacked and shape != first:
            raise ShapeError(f"stack expects each tensor to be equal size, but got {list(first)} at entry 0 and "
                             f"{list(shape)} at entry {k}")
        if stacked or not first:
            continue
        if len(shape) != len(first):
            raise ShapeError(f"Tensors must have same number of dimensions: got {len(first)} and {len(shape)}")
        along = dim % len(first) if -len(first) <= dim < len(first) else dim
        for i, (a, b) in enumerate(zip(first, shape)):
            if i != along and a != b:
                raise ShapeError(f"Sizes of tensors must match except in dimension {along}. Expected size {a} but "
                                 f"got size {b} for tensor number {k} in the list.")


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    _joinable(tensors, dim, stacked=False)
    return _table("cat", "concatenate")(list(tensors), axis=dim)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:  # reached only while the table lacks stack
    _joinable(tensors, dim, stacked=True)
    return _table("stack")(list(tensors), axis=dim)


def einsum(equation: str, *operands: Any) -> Tensor:
    return _table("einsum")(*operands, subscripts=equation)


def softmax(input: Tensor, dim: int) -> Tensor:
    return _table("softmax")(input, axis=dim)


def log_softmax(input: Tensor, dim: int) -> Tensor:
    return _table("log_softmax")(input, axis=dim)


def clamp(input: Tensor, min: Any = None, max: Any = None, *, _name: str = "Clamp") -> Tensor:
    """``torch.clamp``/``torch.clip``: the table's ``clip`` with a missing bound infinite; named as torch
    (ClampBackward1 for number bounds, whose node lists ``input`` only, ClampBackward0 with a tensor bound)."""
    if min is None and max is None:
        raise RuntimeError(f"torch.{_name.lower()}: At least one of 'min' or 'max' must not be None")
    lo, hi = -np.inf if min is None else min, np.inf if max is None else max
    out = apply_table(ops.clip, (input, lo, hi), {})
    if isinstance(out, Tensor) and out.grad_fn is not None:
        bounds = isinstance(min, Tensor) or isinstance(max, Tensor)
        if _name == "Clamp":
            out.grad_fn._name = "ClampBackward0" if bounds else "ClampBackward1"
            out.grad_fn._slots = (0, 1, 2) if bounds else (0,)
        else:  # clamp_min / clamp_max: one bound, listed when it is a tensor
            out.grad_fn._name = f"{_name}Backward{int(bounds)}"
            out.grad_fn._slots = (0, 1 if min is not None else 2) if bounds else (0,)
    return out


clip = clamp


def clamp_min(input: Tensor, min: Any) -> Tensor:
    return clamp(input, min, None, _name="ClampMin")


def clamp_max(input: Tensor, max: Any) -> Tensor:
    return clamp(input, None, max, _name="ClampMax")


TORCH_SPELLINGS[ops.clip] = (clamp, frozenset())  # torch.clamp(t, min=0), t.clip(0, 1): always torch's


# torch's functional forms of Tensor methods the table has no op for (the methods live in
# symgrad/tape/methods.py, selection.py and reductions.py, attached to Tensor on import)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    return input.sort(dim, descending, stable)  # type: ignore[attr-defined]


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    return input.argsort(dim, descending, stable)  # type: ignore[attr-defined]


def argmax(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return input.argmax(dim, keepdim)  # type: ignore[attr-defined]


def argmin(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return input.argmin(dim, keepdim)  # type: ignore[attr-defined]


def norm(input: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    return input.norm(p, dim, keepdim, dtype)  # type: ignore[attr-defined]


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return input.numel()


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    return input.unsqueeze(dim)  # type: ignore[attr-defined]


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return input.flatten(start_dim, end_dim)  # type: ignore[attr-defined]


def permute(input: Tensor, dims: Sequence[int]) -> Tensor:
    return input.permute(*dims)  # type: ignore[attr-defined]


def t(input: Tensor) -> Tensor:
    return input.t()
