"""Tensor methods beyond the op table's: dtype and device conversions (``.double()``, ``.to()``, ``.type()``).

Attached to :class:`symgrad.tape.graph.Tensor` on import (``symgrad.tape`` imports this module), so
that graph.py keeps the core: recording, the backward pass, printing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir import ops
from symgrad.tape import device as _device
from symgrad.tape import dtypes
from symgrad.tape.graph import Tensor

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


def _copy_(self: Tensor, src: Any) -> Tensor:
    """Copy ``src``'s values into this tensor (broadcast, cast to its dtype), in place."""
    values = src._data if isinstance(src, Tensor) else src
    return self._inplace(values, lambda a, b, out, casting: np.copyto(out, b, casting="unsafe"))


def _all(self: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return Tensor._make(np.asarray(np.all(self._data, axis=dim, keepdims=keepdim)))


def _any(self: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return Tensor._make(np.asarray(np.any(self._data, axis=dim, keepdims=keepdim)))


def _device_of(self: Tensor) -> _device.device:
    return _device.CPU


Tensor.copy_ = _copy_  # type: ignore[attr-defined]
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
