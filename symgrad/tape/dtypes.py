"""The tape's dtypes, printed as torch prints them (``torch.float32``), and the default dtype.

A :class:`dtype` wraps a numpy dtype: numpy accepts it wherever it takes a dtype (through its
``dtype`` attribute), it compares equal to the numpy dtype it wraps, and every attribute numpy's
dtype has (``kind``, ``itemsize``, ``name``) reads through.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class dtype:
    __slots__ = ("dtype", "_name")

    def __init__(self, np_dtype: Any, name: str):
        self.dtype = np.dtype(np_dtype)  # numpy reads this attribute: np.zeros(3, dtype=float32) works
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(object.__getattribute__(self, "dtype"), attr)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, (dtype, np.dtype)):  # the common cases, without np.dtype()'s conversion (2 us)
            return self.dtype == (other.dtype if isinstance(other, dtype) else other)
        try:
            return self.dtype == np.dtype(other)
        except TypeError:
            return NotImplemented

    def __hash__(self) -> int:
        return hash(self.dtype)

    @property
    def is_floating_point(self) -> bool:
        return self.dtype.kind == "f"

    def __repr__(self) -> str:
        return f"torch.{self._name}"

    def __reduce__(self) -> tuple:
        return (of, (self.dtype,))


float32 = dtype("float32", "float32")
float64 = dtype("float64", "float64")
int64 = dtype("int64", "int64")
int32 = dtype("int32", "int32")
bool_ = dtype("bool", "bool")
_BY_NUMPY = {d.dtype: d for d in (float32, float64, int64, int32, bool_)}
DEFAULT_DTYPE = float64  # symgrad's documented default: Python floats become float64
_default = [DEFAULT_DTYPE]


def of(np_dtype: Any) -> dtype:
    """The torch-style dtype of a numpy dtype (or of a dtype given as either)."""
    d = np.dtype(np_dtype)
    found = _BY_NUMPY.get(d)
    if found is None:
        raise TypeError(f"symgrad's tape has no dtype {d.name}")
    return found


def default_dtype() -> dtype:
    return _default[0]


def get_default_dtype() -> dtype:
    """The dtype Python floats and the float constructors take: float64 unless set otherwise."""
    return _default[0]


def set_default_dtype(d: Any) -> None:
    """As ``torch.set_default_dtype``: float32 or float64."""
    found = of(d)
    if found.kind != "f":
        raise TypeError("only floating-point types are supported as the default type")
    _default[0] = found
