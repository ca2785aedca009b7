"""Making tensors as torch's constructors do: ``tensor``, ``zeros``, ``randn``, ``linspace``, the ``*_like`` forms.

Shapes are given as varargs (``zeros(2, 3)``) or one tuple (``zeros((2, 3))``).  Float constructors
take the default dtype (:func:`symgrad.tape.dtypes.get_default_dtype`, float64 unless set).  Random
tensors come from symgrad's own numpy generator, seeded by :func:`manual_seed`: the numbers are
not the ones torch draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.tape import device as _device
from symgrad.tape import dtypes
from symgrad.tape.graph import Tensor, _leaf_requires_grad, _to_array

_rng = [np.random.default_rng()]


def manual_seed(seed: int) -> np.random.Generator:
    """Seed symgrad's generator (its own numpy one: the numbers differ from torch's)."""
    _rng[0] = np.random.default_rng(int(seed))
    return _rng[0]


def _shape(shape: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"a shape holds ints, got {type(n).__name__}")
        if n < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: {list(shape)}")
    return tuple(int(n) for n in shape)


def _leaf(arr: np.ndarray, requires_grad: bool, device: Any) -> Tensor:
    _device.check(device)
    t = Tensor._make(arr)
    t._requires_grad = _leaf_requires_grad(arr, requires_grad)
    return t


def _float(dtype: Any) -> np.dtype:
    return np.dtype(dtypes.default_dtype() if dtype is None else dtype)


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A leaf tensor holding a copy of ``data`` (Python floats take the default dtype)."""
    return _leaf(_to_array(data, dtype), requires_grad, device)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    _device.check(device)
    if isinstance(data, Tensor):
        return data if dtype is None or data.dtype == dtype else data.to(dtype)  # type: ignore[attr-defined]  # generated method
    return Tensor._make(_to_array(data, dtype))


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor holding ``array`` itself (shared, as torch's), in its own dtype."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    dtypes.of(array.dtype)  # a dtype the tape has, or a clear error
    return Tensor._make(array)


def _filled(fill: Any, shape: tuple, dtype: Any, requires_grad: bool, device: Any) -> Tensor:
    return _leaf(np.full(_shape(shape), fill, dtype=_float(dtype)), requires_grad, device)


def zeros(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(0, shape, dtype, requires_grad, device)


def ones(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(1, shape, dtype, requires_grad, device)


def empty(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros: torch leaves the memory uninitialised, symgrad fills it (never read it either way)."""
    return _filled(0, shape, dtype, requires_grad, device)


def full(size: Any, fill_value: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    if dtype is None:  # torch infers the dtype from the fill value
        dtype = dtypes.bool_ if isinstance(fill_value, bool) else dtypes.int64 if isinstance(fill_value, int) else None
    size = tuple(size) if isinstance(size, (tuple, list)) else (size,)
    return _filled(fill_value, size, dtype, requires_grad, device)


def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    return _leaf(np.eye(n, n if m is None else m, dtype=_float(dtype)), requires_grad, device)


def linspace(start: float, end: float, steps: int, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    return _leaf(np.linspace(float(start), float(end), int(steps)).astype(_float(dtype)), requires_grad, device)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    if dtype is None:
        dtype = dtypes.int64 if ints else dtypes.default_dtype()
    n = max(0, int(np.ceil((end - start) / step)))
    return _leaf((start + step * np.arange(n)).astype(np.dtype(dtype)), requires_grad, device)


def _random(draw: Any, shape: tuple, dtype: Any, requires_grad: bool, device: Any) -> Tensor:
    return _leaf(np.asarray(draw(_rng[0], _shape(shape))).astype(_float(dtype)), requires_grad, device)


def randn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from symgrad's generator."""
    return _random(lambda g, s: g.standard_normal(s), size, dtype, requires_grad, device)


def rand(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples on [0, 1) from symgrad's generator."""
    return _random(lambda g, s: g.random(s), size, dtype, requires_grad, device)


def randint(low: int, high: Any = None, size: Any = None, dtype: Any = None, device: Any = None,
            requires_grad: bool = False) -> Tensor:
    """Integers in [low, high) (``randint(high, size)`` starts at 0), int64 unless told."""
    if size is None:
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint() missing required argument 'size'")
    arr = _rng[0].integers(low, high, size=_shape((size,) if isinstance(size, int) else tuple(size)))
    return _leaf(arr.astype(np.dtype(dtype or dtypes.int64)), requires_grad, device)


def _like(fill: Any, t: Tensor, dtype: Any, requires_grad: bool, device: Any) -> Tensor:
    return _leaf(np.full(t._data.shape, fill, dtype=np.dtype(dtype or t._data.dtype)), requires_grad, device)


def zeros_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _like(0, t, dtype, requires_grad, device)


def ones_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _like(1, t, dtype, requires_grad, device)


def empty_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _like(0, t, dtype, requires_grad, device)


def full_like(t: Tensor, fill_value: Any, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    return _like(fill_value, t, dtype, requires_grad, device)


def randn_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return randn(*t._data.shape, dtype=dtype or t._data.dtype, device=device, requires_grad=requires_grad)


def rand_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return rand(*t._data.shape, dtype=dtype or t._data.dtype, device=device, requires_grad=requires_grad)
