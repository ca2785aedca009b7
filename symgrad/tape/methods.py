"""Tensor methods beyond the op table's: dtype and device conversions (``.double()``, ``.to()``, ``.type()``).

Attached to :class:`symgrad.tape.graph.Tensor` on import (``symgrad.tape`` imports this module), so
that graph.py keeps the core: recording, the backward pass, printing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir import ops
from symgrad.tape import device as _device
from symgrad.tape import dtypes, functions, selection
from symgrad.tape.graph import ShapeError, Tensor

_TYPE_NAMES = {"float32": "torch.FloatTensor", "float64": "torch.DoubleTensor", "int64": "torch.LongTensor",
               "int32": "torch.IntTensor", "bool": "torch.BoolTensor"}
_BY_TYPE_NAME = {v: k for k, v in _TYPE_NAMES.items()}


def _cast(t: Tensor, dtype: Any) -> Tensor:
    """``t`` in ``dtype``: itself when it already is (as torch), else a copy recorded as ToCopyBackward0."""
    d = dtypes.of(dtype)
    if t._data.dtype == d.dtype:
        return t
    if t.requires_grad and d.kind != "f":
        return Tensor._make(t._data.astype(d.dtype))
    return ops.cast(t, dtype=d.dtype)


def _to(self: Tensor, *args: Any, dtype: Any = None, device: Any = None, copy: bool = False) -> Tensor:
    """``.to(dtype)``, ``.to(device)``, ``.to(device, dtype)``, ``.to(other_tensor)``."""
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, (str, _device.device)):
            device = a
        else:
            dtype = a
    _device.check(device)
    out = self if dtype is None else _cast(self, dtype)
    return out.clone() if copy and out is self else out


def _type(self: Tensor, dtype: Any = None) -> Any:
    """``.type()`` names the tensor's type (``torch.DoubleTensor``); ``.type(d)`` converts."""
    if dtype is None:
        return _TYPE_NAMES[self.dtype.name]
    return _cast(self, _BY_TYPE_NAME.get(dtype, dtype) if isinstance(dtype, str) else dtype)


def _all(self: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return Tensor._make(np.asarray(np.all(self._data, axis=dim, keepdims=keepdim)))


def _any(self: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return Tensor._make(np.asarray(np.any(self._data, axis=dim, keepdims=keepdim)))


def _device_of(self: Tensor) -> _device.device:
    return _device.CPU


Tensor.all = _all  # type: ignore[attr-defined]
Tensor.any = _any  # type: ignore[attr-defined]
Tensor.to = _to  # type: ignore[attr-defined]
Tensor.type = _type  # type: ignore[attr-defined]
Tensor.device = property(_device_of)  # type: ignore[attr-defined]
Tensor.double = lambda self: _cast(self, dtypes.float64)  # type: ignore[attr-defined]
Tensor.float = lambda self: _cast(self, dtypes.float32)  # type: ignore[attr-defined]
Tensor.long = lambda self: _cast(self, dtypes.int64)  # type: ignore[attr-defined]
Tensor.int = lambda self: _cast(self, dtypes.int32)  # type: ignore[attr-defined]
Tensor.bool = lambda self: _cast(self, dtypes.bool_)  # type: ignore[attr-defined]
Tensor.cpu = lambda self: self  # type: ignore[attr-defined]
Tensor.is_floating_point = lambda self: self._data.dtype.kind == "f"  # type: ignore[attr-defined]
Tensor.is_cuda = False  # type: ignore[attr-defined]


# in place (torch's version counter): symgrad/tape/inplace.py


# ---------------------------------------------------------------- shapes


def _shape_args(shape: tuple) -> tuple[int, ...]:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def _renamed(t: Tensor, name: str) -> Tensor:
    if t.grad_fn is not None:
        t.grad_fn._name = name
    return t


def _reshaped(self: Tensor, shape: tuple[int, ...], name: str) -> Tensor:
    try:
        shape = np.empty(self._data.shape, dtype=np.bool_).reshape(shape).shape  # numpy resolves -1 and checks
    except ValueError:
        raise ShapeError(f"shape '{list(shape)}' is invalid for input of size {self._data.size}") from None
    return _renamed(ops.reshape(self, shape=tuple(shape)), name)


def _view(self: Tensor, *shape: Any) -> Tensor:
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int)):
        return _cast(self, shape[0])  # view(dtype): symgrad converts (torch reinterprets the bits)
    return _reshaped(self, _shape_args(shape), "ViewBackward0")


def _unsqueeze(self: Tensor, dim: int) -> Tensor:
    n = self._data.ndim + 1
    dim = dim + n if dim < 0 else dim
    if not 0 <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    shape = list(self._data.shape)
    shape.insert(dim, 1)
    return _reshaped(self, tuple(shape), "UnsqueezeBackward0")


def _squeeze(self: Tensor, dim: Any = None) -> Tensor:
    shape = self._data.shape
    if dim is None:
        return _reshaped(self, tuple(n for n in shape if n != 1), "SqueezeBackward0")
    dims = {d % max(1, len(shape)) for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
    kept = tuple(n for i, n in enumerate(shape) if not (i in dims and n == 1))
    return _reshaped(self, kept, "SqueezeBackward1" if not isinstance(dim, (tuple, list)) else "SqueezeBackward2")


def _flatten(self: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    shape = self._data.shape
    if len(shape) <= 1:
        return self if len(shape) == 1 else _reshaped(self, (1,), "ViewBackward0")
    s, e = start_dim % len(shape), end_dim % len(shape)
    if s == e:
        return self
    new = shape[:s] + (int(np.prod(shape[s:e + 1])),) + shape[e + 1:]
    return _reshaped(self, new, "ViewBackward0")


def _table(name: str, *aliases: str) -> Any:
    for n in (name, *aliases):
        op = ops.lookup(n)
        if op is not None:
            return op
    raise NotImplementedError(f"Tensor.{name} needs the op {name!r}, which symgrad's op table does not have yet")


def _mT(self: Tensor) -> Tensor:
    if self._data.ndim != 2:
        if self._data.ndim < 2:
            raise RuntimeError("tensor.mT is only supported on matrices or batches of matrices. Got 1-D tensor.")
        return _table("transpose")(self, -2, -1)  # batched: the table's transpose with axes, when it has one
    return _renamed(ops.transpose(self), "TransposeBackward0")


def _permute(self: Tensor, *dims: Any) -> Tensor:
    dims = _shape_args(dims)
    if self._data.ndim == 2 and tuple(d % 2 for d in dims) == (1, 0):
        return ops.transpose(self)  # PermuteBackward0, as torch
    return _table("permute")(self, dims=dims)


Tensor.view = _view  # type: ignore[attr-defined]
Tensor.reshape = lambda self, *shape: _reshaped(self, _shape_args(shape), "ViewBackward0")  # type: ignore
Tensor.unsqueeze = _unsqueeze  # type: ignore[attr-defined]
Tensor.squeeze = _squeeze  # type: ignore[attr-defined]
Tensor.flatten = _flatten  # type: ignore[attr-defined]
Tensor.mT = property(_mT)  # type: ignore[attr-defined]
Tensor.permute = _permute  # type: ignore[attr-defined]
Tensor.square = lambda self: ops.pow(self, 2)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- (values, indices): symgrad.tape.selection


def _extreme(op: Any, largest: bool) -> Any:
    def method(self: Tensor, dim: Any = None, keepdim: bool = False, axis: Any = None) -> Any:
        if axis is not None:  # numpy's keyword: the reduction alone, as symgrad's other reductions
            return op(self, axis=tuple(axis) if isinstance(axis, list) else axis)
        if isinstance(dim, Tensor):  # x.max(other): elementwise
            return (ops.maximum if op is ops.max else ops.minimum)(self, dim)
        if dim is None:
            return op(self)
        return selection.extreme_along(self, dim, keepdim, largest)

    return method


def _argext(arg: Any) -> Any:
    def method(self: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
        data = self._data.reshape(-1) if dim is None else self._data
        out = np.asarray(arg(data, axis=0 if dim is None else dim))
        if keepdim:
            out = np.expand_dims(out, dim) if dim is not None else out.reshape((1,) * self._data.ndim)
        return Tensor._make(out.astype(np.int64))

    return method


Tensor.max = _extreme(ops.max, True)  # type: ignore[attr-defined]
Tensor.min = _extreme(ops.min, False)  # type: ignore[attr-defined]
Tensor.argmax = _argext(np.argmax)  # type: ignore[attr-defined]
Tensor.argmin = _argext(np.argmin)  # type: ignore[attr-defined]
Tensor.clamp = Tensor.clip = functions.clamp  # type: ignore[attr-defined]
Tensor.clamp_min, Tensor.clamp_max = functions.clamp_min, functions.clamp_max  # type: ignore[attr-defined]
Tensor.softmax = lambda self, dim: _table("softmax")(self, axis=dim)  # type: ignore[attr-defined]
Tensor.log_softmax = lambda self, dim: _table("log_softmax")(self, axis=dim)  # type: ignore[attr-defined]
