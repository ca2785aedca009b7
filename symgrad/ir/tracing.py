"""Tracing Python as people write it: the tape's methods, numpy's functions and small numpy constants.

Attached to :class:`~symgrad.ir.expr.Expr` by ``expr.py`` (so a traced value behaves as the
tape's :class:`~symgrad.tape.graph.Tensor` would, and as a numpy array would):

* methods from the op table, as the tape generates them: ``x.tanh()``, ``x.sum(axis=0)``
  (``dim=``/``keepdim=`` too), ``x.softmax(-1)``, ``x.clamp(lo, hi)``; plus ``x.t()``,
  ``x.reshape(2, 3)``, ``x.permute(1, 0)``, ``x.unsqueeze(0)``, ``x.squeeze(0)``;
* numpy's ufuncs and functions (``np.sin(x)``, ``np.sum(x, axis=0)``, ``np.linalg.det(x)``),
  through ``__array_ufunc__`` and ``__array_function__``: every op of the table that numpy
  has by the same name (or a table alias such as ``arcsin``), its keywords translated; anything
  else is refused with a ``TypeError`` naming the symgrad op to use where there is one;
* a numpy array as a constant (``x * np.array([1.0, 2.0])``): up to
  :data:`MAX_CONSTANT_ELEMENTS` elements, its values in the IR as ``stack`` of literals.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from symgrad.ir import ops
from symgrad.ir.ops import Op

MAX_CONSTANT_ELEMENTS = 64

# numpy functions with no op of their name: what to write instead (None: nothing does the job)
_INSTEAD: dict[str, str | None] = {
    "around": "use symgrad.round", "rint": "use symgrad.round", "fabs": "use symgrad.abs",
    "heaviside": "use symgrad.step (no second argument)", "fmax": "use symgrad.maximum (nan propagates)",
    "fmin": "use symgrad.minimum (nan propagates)", "nansum": "use symgrad.sum", "nanmean": "use symgrad.mean",
    "nanmax": "use symgrad.max", "nanmin": "use symgrad.min", "float_power": "use symgrad.pow",
    "dot": "use symgrad.matmul or @", "tensordot": "use symgrad.einsum", "swapaxes": "use symgrad.transpose",
    "moveaxis": "use symgrad.transpose", "ravel": "use symgrad.reshape", "logaddexp2": "use symgrad.logaddexp",
    "sinc": "write sin(pi*x)/(pi*x)",
    "sort": None, "argmax": None, "argmin": None, "diff": None,
}
# numpy keyword -> the op's parameter
_KEYWORDS = {"axis": "axis", "keepdims": "keepdims", "ddof": "ddof", "correction": "ddof", "axes": "axes",
             "shape": "shape", "newshape": "shape"}
_CLIP_BOUNDS = {"min": "a_min", "max": "a_max"}


def _refuse(what: str, name: str) -> TypeError:
    if name in _INSTEAD:
        instead = _INSTEAD[name]
        hint = f"; {instead}" if instead else "; symgrad has no op for it"
    else:
        close = ops.did_you_mean(name, [n for op in ops.public_ops() for n in (op.name, *op.aliases)])
        hint = close.replace("did you mean '", "did you mean symgrad.").replace("'?", "?") if close else \
            "; `symgrad ops` lists the ops"
    return TypeError(f"{what} is not an op of symgrad's expression language{hint}")


def _op_for(name: str, what: str) -> Op:
    op = ops.lookup(name)
    if op is None:
        raise _refuse(what, name)
    return op


# ---------------------------------------------------------------- numpy ufuncs and functions


def array_ufunc(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict[str, Any]) -> Any:
    """``np.sin(x)``, ``np.add(x, 1)``, ``np.float64(2) * x``: the op of the ufunc's name."""
    name = ufunc.__name__
    if method != "__call__":
        raise TypeError(f"numpy.{name}.{method} on a traced value is not supported; "
                        "use the reductions (symgrad.sum, symgrad.max, ...)")
    extra = {k: v for k, v in kwargs.items() if not (k == "out" and v is None)}
    if extra:
        raise TypeError(f"numpy.{name}(..., {next(iter(extra))}=...) on a traced value is not supported")
    if name == "positive":
        return inputs[0]
    op = _op_for(name, f"numpy.{name}")
    if op.arity != len(inputs):
        raise TypeError(f"numpy.{name} takes {len(inputs)} arguments, symgrad.{op.name} {op.arity}")
    return op(*inputs)


def _given(func: Any, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``func``'s arguments by its own parameter names (only those given)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # pragma: no cover - numpy's dispatched functions have signatures
        raise TypeError(f"numpy.{func.__name__} on a traced value is not supported") from None
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"numpy.{func.__name__}: {exc}") from None
    return dict(bound.arguments)


def _default(func: Any, name: str) -> Any:
    p = inspect.signature(func).parameters.get(name)
    return inspect.Parameter.empty if p is None else p.default


def array_function(func: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
    """``np.sum(x, axis=0)``, ``np.clip(x, 0, 1)``, ``np.concatenate((x, y))``, ``np.linalg.det(x)``."""
    name = func.__name__
    what = f"numpy.{name}"
    op = _op_for(name, what)
    given = _given(func, args, kwargs)
    params: dict[str, Any] = {}
    if op.name == "einsum":
        operands = given.pop("operands", ())
        if len(operands) < 2 or not isinstance(operands[0], str):
            raise TypeError("numpy.einsum on traced values takes a subscript string and its operands, "
                            "as einsum('ij,jk->ik', x, y)")
        arrays, params["subscripts"] = list(operands[1:]), operands[0]
    elif op.members is not None:
        members = list(given.pop(next(iter(given))))
        if len(members) < 2:
            raise TypeError(f"{what} of traced values takes at least two arrays")
        arrays = members
    else:
        for k, bound in _CLIP_BOUNDS.items():  # np.clip(x, min=0, max=1)
            if op.name == "clip" and k in given:
                given[bound] = given.pop(k)
        names = list(inspect.signature(func).parameters)[: op.arity]
        if any(n not in given for n in names):
            raise TypeError(f"{what} takes {', '.join(names)} for symgrad.{op.name}")
        arrays = [given.pop(n) for n in names]
    for key, value in given.items():
        param = _KEYWORDS.get(key)
        if param in op.params:
            params[param] = tuple(value) if isinstance(value, list) else value
        elif value is None or value is _default(func, key) or (key == "decimals" and value == 0):
            continue  # numpy's default: nothing to translate
        else:
            raise TypeError(f"{what}(..., {key}={value!r}) has no counterpart in symgrad.{op.name}"
                            + (f" (its parameters: {', '.join(op.params)})" if op.params else ""))
    if op.members is not None:
        return op.members([as_constant(a) for a in arrays], **params)
    return op(*arrays, **params)


# ---------------------------------------------------------------- numpy arrays as constants


# expr.as_expr, handed over by attach(): expr.py imports this module, so this one cannot import it back
_as_expr: Callable[[Any], Any] = lambda value: value  # noqa: E731


def as_constant(value: Any) -> Any:
    """An array (or anything else) as ``as_expr`` takes it: small real arrays as ``stack`` of literals."""
    if isinstance(value, np.generic):
        return _as_expr(value.item())
    if not isinstance(value, np.ndarray):
        return _as_expr(value)
    if value.dtype.kind not in "biuf":
        raise TypeError(f"cannot use a numpy array of {value.dtype} in a symgrad expression")
    if value.ndim == 0:
        return _as_expr(float(value))
    if value.size > MAX_CONSTANT_ELEMENTS or value.size == 0:
        raise ValueError(f"a numpy array of {value.size} elements (shape {tuple(value.shape)}) as a constant: "
                         f"at most {MAX_CONSTANT_ELEMENTS}, and not empty; pass it as an input instead")
    rows = [as_constant(v) for v in value]
    if len(rows) == 1:
        return ops.expand_dims(rows[0], axis=0)
    return ops.stack.members(rows, axis=0)  # type: ignore[misc]


# ---------------------------------------------------------------- the tape's methods


def _axis(dim: Any, axis: Any) -> Any:
    value = axis if dim is None else dim
    return tuple(value) if isinstance(value, list) else value


def _method(op: Op) -> Any:
    if op.kind == ops.REDUCTION:
        def reduction(self: Any, dim: Any = None, axis: Any = None, keepdim: bool = False,
                      keepdims: bool = False, **params: Any) -> Any:
            return op(self, axis=_axis(dim, axis), keepdims=(keepdim or keepdims) or None, **params)

        return reduction
    if op.kind == ops.SCAN:
        def scan(self: Any, dim: Any = None, axis: Any = None) -> Any:
            value = _axis(dim, axis)
            return op(self) if value is None else op(self, axis=value)

        return scan
    return lambda self, *others, **params: op(self, *others, **params)


def _shape_args(shape: tuple) -> tuple:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def attach(cls: type, as_expr: Callable[[Any], Any]) -> None:
    """Give ``cls`` (Expr) the tape's op methods and shape methods that need no shape; ``as_expr``
    makes the literals of numpy constants."""
    global _as_expr
    _as_expr = as_expr
    for op in ops.public_ops():
        if op.kind in (ops.ELEMENTWISE, ops.REDUCTION, ops.SCAN):
            for name in (op.name, *(a for a in op.aliases if a == "clamp")):
                if name not in cls.__dict__:
                    setattr(cls, name, _method(op))
    extra = {
        "t": lambda self: ops.transpose(self),
        "reshape": lambda self, *shape: ops.reshape(self, shape=_shape_args(shape)),
        "view": lambda self, *shape: ops.reshape(self, shape=_shape_args(shape)),
        "permute": lambda self, *dims: ops.transpose(self, axes=_shape_args(dims)),
        "unsqueeze": lambda self, dim: ops.expand_dims(self, axis=dim),
        "squeeze": lambda self, dim=None: ops.squeeze(self, axis=dim),
        "__abs__": lambda self: ops.abs(self),
    }
    for name, fn in extra.items():
        if name not in cls.__dict__:
            setattr(cls, name, fn)
