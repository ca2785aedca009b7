"""Picking elements by position, with gradients: ``sort``, ``max(dim=)``/``min(dim=)`` and advanced indexing.

All three pick elements of ``x`` at integer positions, so all are one op of the tape's own: ``take``,
``x.reshape(-1)[flat]`` for an array ``flat`` of flat positions (any shape, repeats allowed).  Its VJP
is ``put``, the gradient added into zeros at those positions, and ``put``'s VJP is ``take`` again,
so any order of derivative stays on the tape.  One ``take`` op per torch node name
(``SortBackward0``, ``MaxBackward0``, ``IndexBackward0``), since an op carries its node's name.

The gradient goes to the picked positions only: ``x.max(dim=1)`` sends it to the element its
``indices`` name (the first of tied maxima, as torch on CPU), not shared among ties as ``x.max()``
and ``x.amax(dim)`` do.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from symgrad.ir import ops
from symgrad.ir.ops import Op
from symgrad.tape.graph import Tensor


def _take_forward(x: Any, flat: np.ndarray) -> np.ndarray:
    return np.asarray(x).reshape(-1)[flat]


def _put_forward(g: Any, flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    g = np.asarray(g)
    out = np.zeros(math.prod(shape), dtype=g.dtype if g.dtype.kind == "f" else np.float64)
    np.add.at(out, flat.reshape(-1), np.broadcast_to(g, flat.shape).reshape(-1))
    return out.reshape(shape)


_TAKES: dict[str, Op] = {}
_PUTS: dict[str, Op] = {}
# torch's node for the backward of each pick, which a second derivative records: index's backward is
# an index_put, the others' a scatter, whose backward is a gather
_ADJOINT = {"IndexBackward0": "IndexPutImplBackward0", "IndexPutImplBackward0": "IndexBackward0",
            "ScatterBackward0": "GatherBackward0"}


def _take_op(name: str) -> Op:
    op = _TAKES.get(name)
    if op is None:
        back = _ADJOINT.get(name, "ScatterBackward0")
        op = _TAKES[name] = Op(f"take[{name}]", 1, _take_forward,
                               (lambda g, ans, x, flat: _put_op(back)(g, flat=flat, shape=tuple(np.shape(x))),),
                               kind=ops.INTERNAL, params=("flat",), linear=True, backward_name=name)
    return op


def _put_op(name: str) -> Op:
    op = _PUTS.get(name)
    if op is None:
        back = _ADJOINT[name]
        op = _PUTS[name] = Op(f"put[{name}]", 1, _put_forward,
                              (lambda g, ans, x, flat, shape: _take_op(back)(g, flat=flat),),
                              kind=ops.INTERNAL, params=("flat", "shape"), linear=True, backward_name=name)
    return op


def take(x: Tensor, flat: np.ndarray, name: str) -> Tensor:
    """The elements of ``x`` at the flat positions ``flat`` (an array of that shape), recorded as ``name``."""
    out = _take_op(name)(x, flat=np.asarray(flat, dtype=np.int64))
    if out.grad_fn is not None:
        out.grad_fn.saves = True  # torch saves the indices: a second backward through the node is an error
    return out


def _positions(x: Tensor) -> np.ndarray:
    return np.arange(x._data.size, dtype=np.int64).reshape(x._data.shape)


# ---------------------------------------------------------------- (values, indices)


class _ReturnType(tuple):
    """torch.return_types.max and friends: a (values, indices) pair with names."""

    _kind = ""

    def __new__(cls, values: Tensor, indices: Tensor) -> _ReturnType:
        return super().__new__(cls, (values, indices))

    @property
    def values(self) -> Tensor:
        return self[0]

    @property
    def indices(self) -> Tensor:
        return self[1]

    def __repr__(self) -> str:
        return f"torch.return_types.{self._kind}(\nvalues={self[0]!r},\nindices={self[1]!r})"


def _return_type(kind: str) -> type:
    return type(kind, (_ReturnType,), {"_kind": kind, "__slots__": ()})


return_types_max, return_types_min, return_types_sort = (_return_type(k) for k in ("max", "min", "sort"))


def extreme_along(x: Tensor, dim: int, keepdim: bool, largest: bool) -> Any:
    """``x.max(dim)`` / ``x.min(dim)``: (values, indices), the gradient to the element ``indices`` names."""
    data = x._data
    if data.ndim == 0:
        idx = np.zeros((), dtype=np.int64)
        values = take(x, np.zeros((), dtype=np.int64), "MaxBackward0" if largest else "MinBackward0")
        return (return_types_max if largest else return_types_min)(values, Tensor._make(idx))
    idx = np.expand_dims((np.argmax if largest else np.argmin)(data, axis=dim), dim)
    flat = np.take_along_axis(_positions(x), idx, axis=dim)
    if not keepdim:
        idx, flat = np.squeeze(idx, axis=dim), np.squeeze(flat, axis=dim)
    values = take(x, flat, "MaxBackward0" if largest else "MinBackward0")
    return (return_types_max if largest else return_types_min)(values, Tensor._make(idx.astype(np.int64)))


def sort(self: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    """``x.sort(dim=-1, descending=False)``: (values, indices); the values carry the gradient (SortBackward0).
    Ties keep their order (a stable sort) in both directions."""
    data = self._data
    if data.ndim == 0:
        return return_types_sort(take(self, np.zeros((), dtype=np.int64), "SortBackward0"),
                                 Tensor._make(np.zeros((), dtype=np.int64)))
    keys = data.astype(np.int8) if data.dtype == np.bool_ else data
    order = np.argsort(-keys if descending else keys, axis=dim, kind="stable")
    flat = np.take_along_axis(_positions(self), order, axis=dim)
    return return_types_sort(take(self, flat, "SortBackward0"), Tensor._make(order.astype(np.int64)))


def argsort(self: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    return sort(self, dim, descending, stable).indices


# ---------------------------------------------------------------- indexing beyond ints and slices


_basic_getitem = Tensor.__getitem__


def _plain(k: Any) -> Any:
    if isinstance(k, Tensor):  # a 0-d integer tensor indexes as an int (torch selects)
        return int(k._data) if k._data.ndim == 0 and k._data.dtype.kind in "iu" else k._data
    return k


def _unsqueezed_last(items: tuple, shape: tuple[int, ...]) -> bool:
    """Whether torch's last step for a basic index with ``None`` is an unsqueeze: torch applies the items in
    order, and only ints and slices that do not cover their dimension are steps of their own."""
    rest = [k for k in items if k is not None]
    dims = iter(ops.index_dims(ops.encode_key(tuple(rest)), len(shape)))
    last_step = last_none = -1
    for pos, k in enumerate(items):
        if k is None:
            last_none = pos
            continue
        dim, _ = next(dims)
        if isinstance(k, slice):
            if dim < len(shape) and k.indices(shape[dim]) != (0, shape[dim], 1):
                last_step = pos
        elif k is not Ellipsis:
            last_step = pos
    return last_none > last_step


def getitem(self: Tensor, index: Any) -> Tensor:
    """``x[...]``: ints, slices and ``...`` as the table's ``index`` op; ``None`` adds a dimension
    (UnsqueezeBackward0); integer arrays, lists and boolean masks pick elements (IndexBackward0)."""
    try:
        return _getitem(self, index)
    except IndexError as exc:  # numpy's "out of bounds for axis 0", in torch's words
        raise IndexError(str(exc).replace(" for axis ", " for dimension ")) from None


def _getitem(self: Tensor, index: Any) -> Tensor:
    index = tuple(_plain(k) for k in index) if isinstance(index, tuple) else _plain(index)
    items = index if isinstance(index, tuple) else (index,)
    try:
        ops.encode_key(index)
    except TypeError:
        pass
    else:
        return _basic_getitem(self, index)
    shape = np.empty(self._data.shape, dtype=np.bool_)[index].shape  # numpy checks the index and its bounds
    if any(k is None for k in items):
        rest = tuple(k for k in items if k is not None)
        try:
            ops.encode_key(rest)
        except TypeError:
            pass
        else:  # basic but for None: index, then a reshape (torch's last step is the unsqueeze)
            picked = _basic_getitem(self, rest)
            out = ops.reshape(picked, shape=shape)
            if out.grad_fn is not None and picked.grad_fn is not None:
                unsqueezed = _unsqueezed_last(items, self._data.shape)
                out.grad_fn._name = "UnsqueezeBackward0" if unsqueezed else picked.grad_fn.name()
            return out
    return take(self, _positions(self)[index], "IndexBackward0")


Tensor.__getitem__ = getitem  # type: ignore[method-assign]
Tensor.sort = sort  # type: ignore[attr-defined]
Tensor.argsort = argsort  # type: ignore[attr-defined]
