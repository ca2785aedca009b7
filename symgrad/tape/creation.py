"""Making tensors: ``tensor``, ``as_tensor``, ``zeros``, ``ones`` and the ``*_like`` forms."""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.tape.dtypes import DEFAULT_DTYPE
from symgrad.tape.graph import Tensor

def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """A leaf tensor holding a copy of ``data`` (float64 for Python floats unless ``dtype`` says)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(data: Any, dtype: Any = None) -> Tensor:
    return data if isinstance(data, Tensor) and dtype is None else Tensor(data, dtype=dtype)


def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(np.zeros(shape, dtype=dtype or DEFAULT_DTYPE), requires_grad=requires_grad)


def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(np.ones(shape, dtype=dtype or DEFAULT_DTYPE), requires_grad=requires_grad)


def ones_like(t: Tensor) -> Tensor:
    return Tensor._make(np.ones_like(t._data))


def zeros_like(t: Tensor) -> Tensor:
    return Tensor._make(np.zeros_like(t._data))


