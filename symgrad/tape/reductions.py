"""Reductions with torch's signatures: ``.norm``, ``.std``/``.var`` (``correction=``), ``.amax``/``.amin``.

The table's reductions take numpy's ``axis``/``keepdims``/``ddof``; these methods take torch's ``dim``
(an int, a tuple or a list), ``keepdim`` and ``correction`` (or ``unbiased``), and name their nodes as
torch does (``StdBackward0`` with or without ``dim``).  ``norm`` is an op of the tape's own (the table
has none) with a VJP written in the table's functions, so it can be differentiated again.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from symgrad.ir import ops
from symgrad.ir.ops import Op
from symgrad.tape.graph import TORCH_SPELLINGS, Tensor
from symgrad.tape.methods import _renamed


def _dims(dim: Any) -> Any:
    """torch's ``dim`` as numpy's ``axis``: None, an int, or a tuple (``dim=()`` means all, as torch)."""
    if isinstance(dim, (list, tuple)):
        return tuple(dim) if len(dim) else None
    return dim


def _norm_forward(x: Any, ord: float = 2.0, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    a = np.abs(np.asarray(x))
    if ord == math.inf:
        out = np.max(a, axis=axis, keepdims=keepdims)
    elif ord == -math.inf:
        out = np.min(a, axis=axis, keepdims=keepdims)
    elif ord == 0:
        out = np.sum(a != 0, axis=axis, keepdims=keepdims).astype(a.dtype)
    elif ord == 1:
        out = np.sum(a, axis=axis, keepdims=keepdims)
    elif ord == 2:
        out = np.sqrt(np.sum(a * a, axis=axis, keepdims=keepdims))
    else:
        out = np.sum(a ** ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)
    return np.asarray(out)


def _norm_vjp(g: Any, ans: Any, x: Any, ord: float = 2.0, axis: Any = None, keepdims: bool = False) -> Any:
    """torch's linalg_vector_norm_backward: 0 where the norm is 0; ties of an inf-norm share evenly."""
    shape = tuple(np.shape(x))

    def back(v: Any) -> Any:
        return ops.expand(v, shape, axis)

    if ord == 0:
        return back(g) * 0.0
    if ord == 1:
        return back(g) * ops.sign(x)
    if ord in (math.inf, -math.inf):
        hit = ops.where(ops.abs(x) == back(ans), 1.0, 0.0)
        return back(g) * ops.sign(x) * hit / back(ops.sum(hit, axis=axis, keepdims=keepdims))
    zero = ans == 0
    # the guarded power keeps the unused branch finite, as the table's std
    scale = ops.where(zero, 0.0, g * ops.where(zero, 1.0, ans) ** (1.0 - ord))
    if ord == 2:
        return back(scale) * x
    nil = x == 0  # |x| ** (p - 1) is inf at 0 for p < 1; torch's gradient is 0 there
    return back(scale) * ops.where(nil, 0.0, ops.sign(x) * ops.where(nil, 1.0, ops.abs(x)) ** (ord - 1.0))


norm_op = Op("linalg_vector_norm", 1, _norm_forward, (_norm_vjp,), kind=ops.INTERNAL,
             params=("ord", "axis", "keepdims"), saves=("ans", "x"), backward_name="LinalgVectorNormBackward0")


def norm(self: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False, dtype: Any = None, *,
         axis: Any = None, keepdims: bool = False) -> Tensor:
    """``x.norm(p=2, dim=None, keepdim=False)``: the vector p-norm over ``dim`` (all elements by default).
    With numpy's ``axis=``/``keepdims=`` it is the op table's 2-norm."""
    if axis is not None or keepdims:
        return ops.norm(self, axis=axis, keepdims=keepdims)
    if p in ("fro", None):
        p = 2.0
    if isinstance(p, str) or not isinstance(p, (int, float)):
        raise NotImplementedError(f"symgrad's norm takes a number or 'fro' as p, not {p!r}")
    x = self if dtype is None else self.to(dtype)  # type: ignore[attr-defined]
    return norm_op(x, ord=float(p), axis=_dims(dim), keepdims=bool(keepdim))


def _correction(dim: Any, unbiased: Any, correction: Any, name: str) -> tuple[Any, int]:
    """(dim, ddof) from torch's overloads: ``x.std(unbiased)``, ``x.std(dim, unbiased, keepdim)`` and
    ``x.std(dim, correction=c, keepdim=k)``; torch's default is the sample estimate (correction 1)."""
    if isinstance(dim, bool):  # x.std(False): the unbiased overload
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise TypeError(f"{name}() takes unbiased or correction, not both")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return _dims(dim), correction


_NOT_GIVEN: Any = object()  # tells std(axis=None), numpy's spelling, from std(), torch's


def _spread(op: Op, name: str) -> Any:
    def method(self: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
               correction: Any = None, axis: Any = _NOT_GIVEN, keepdims: bool = False, ddof: Any = None) -> Tensor:
        if axis is not _NOT_GIVEN or ddof is not None:  # numpy's keywords: numpy's reduction (ddof 0 by default)
            axis = None if axis is _NOT_GIVEN else axis
            return op(self, axis=_dims(axis if dim is None else dim), keepdims=bool(keepdim or keepdims) or None,
                      ddof=ddof or 0)
        axis, ddof = _correction(dim, unbiased, correction, op.name)
        return _renamed(op(self, axis=axis, keepdims=bool(keepdim or keepdims) or None, ddof=ddof), name)

    method.__name__ = op.name
    method.__doc__ = (f"torch's ``x.{op.name}(dim, unbiased, keepdim, correction=)``: {op.name} with ``correction`` "
                      "degrees of freedom removed (1 by default, the sample estimate).  With numpy's ``axis=`` or "
                      "``ddof=`` it is the op table's, as numpy's (``ddof`` 0 by default).")
    return method


def _extremum(op: Op, name: str) -> Any:
    def method(self: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
        return _renamed(op(self, axis=_dims(dim), keepdims=bool(keepdim) or None), name)

    method.__name__ = name[:4].lower()
    return method


Tensor.norm = norm  # type: ignore[attr-defined]
TORCH_SPELLINGS[ops.norm] = (norm, frozenset({"axis", "keepdims"}))
Tensor.std = _spread(ops.std, "StdBackward0")  # type: ignore[attr-defined]
Tensor.var = _spread(ops.var, "VarBackward0")  # type: ignore[attr-defined]
# torch.std(t), torch.std(t, 0), torch.var(t, correction=0): torch's (correction 1 by default); a call with
# numpy's axis=/keepdims=/ddof= (and the checking backend, through apply_table) gets the table's (ddof 0)
TORCH_SPELLINGS.update({op: (getattr(Tensor, op.name), frozenset({"axis", "keepdims", "ddof"}))
                        for op in (ops.std, ops.var)})
Tensor.amax = _extremum(ops.max, "AmaxBackward0")  # type: ignore[attr-defined]
Tensor.amin = _extremum(ops.min, "AminBackward0")  # type: ignore[attr-defined]
