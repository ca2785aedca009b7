"""In-place ops (``add_``, ``sub_``, ``mul_``, ``div_``, ``zero_``, ``fill_``, ``clamp_``, ``+=`` ...) with torch's
autograd semantics.

When a gradient is wanted (grad mode on, and the tensor or the other operand requires grad), ``y.mul_(2)``
records what ``y * 2`` records, with the old ``y`` as its input: the old value becomes a tensor of its own
(``snapshot``, with ``y``'s old ``grad_fn``; a copy only when the new node keeps it), the result is
written into ``y``'s array, and ``y`` takes the new node as its ``grad_fn``.  Either way ``y``'s version
counter goes up, so a node that saved ``y`` (as an input, or as its output's array) and is reached by
backward later raises torch's "one of the variables needed for gradient computation has been modified by
an inplace operation".  A leaf that requires grad cannot be changed in place while grad mode is on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from symgrad.ir import ops
from symgrad.ir.ops import Op
from symgrad.tape import functions
from symgrad.tape.grad_mode import is_grad_enabled
from symgrad.tape.graph import Node, ShapeError, Tensor, _Meta, _type_name, modified_message


class _Overwritten(_Meta):
    """A node's saved output whose tensor was changed in place: reading it raises torch's error."""

    __slots__ = ("tensor", "node", "saved_version")

    def __init__(self, tensor: Tensor, node: Node, saved_version: int):
        super().__init__(tensor._data.shape, tensor._data.dtype)
        self.tensor, self.node, self.saved_version = tensor, node, saved_version

    def _error(self) -> Exception:
        return RuntimeError(modified_message(self.tensor, self.node, self.saved_version))


def _data(a: Any) -> Any:
    return a._data if isinstance(a, Tensor) else a


def _needs_graph(self: Tensor, others: tuple) -> bool:
    return is_grad_enabled() and (self.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in others))


def _apply(self: Tensor, compute: Callable[[Tensor], Tensor], plain: Callable[[np.ndarray], Any],
           others: tuple = ()) -> Tensor:
    """Change ``self`` in place to ``compute(old self)``; ``plain(array)`` writes the values when nothing
    is recorded."""
    if is_grad_enabled() and self.requires_grad and self.is_leaf:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    if not _needs_graph(self, others):
        with np.errstate(all="ignore"):
            values = np.asarray(plain(self._data))
        _write(self, values)
        self._version += 1
        return self
    old = Tensor._make(self._data, self.grad_fn)  # the old value, on the graph where self was
    old._requires_grad = self.requires_grad
    out = compute(old)
    node = out.grad_fn
    if node is None:  # nothing to differentiate (an op without a VJP): the values alone
        _write(self, out._data)
        self.grad_fn, self._requires_grad = None, False
        self._version += 1
        return self
    if any(a is old for a in node.inputs):  # the new node keeps the old value: it must survive the write
        old._data = self._data.copy()
    before = self.grad_fn
    if before is not None and before.ans is self._data:  # that node saved the array about to change
        before.ans = _Overwritten(self, before, self._version)  # type: ignore[assignment]
    _write(self, out._data)
    if before is not None and before.retained is self:  # retain_grad follows the tensor, as torch's hook
        before.retained, node.retained = None, self
    self.grad_fn, self._requires_grad = node, True
    self._version += 1
    return self


def _write(self: Tensor, values: np.ndarray) -> None:
    shape = self._data.shape
    if values.shape != shape and np.broadcast_shapes(values.shape, shape) != shape:
        raise RuntimeError(f"output with shape {list(shape)} doesn't match the broadcast shape "
                           f"{list(np.broadcast_shapes(values.shape, shape))}")
    if not np.can_cast(values.dtype, self._data.dtype, casting="same_kind"):
        raise RuntimeError(f"result type {_type_name(values)[6:-6]} can't be cast to the desired output type "
                           f"{_type_name(self._data)[6:-6]}")
    np.copyto(self._data, values, casting="same_kind")


def _renamed(t: Tensor, name: str, slots: tuple[int, ...]) -> Tensor:
    assert t.grad_fn is not None
    t.grad_fn._name, t.grad_fn._slots = name, slots
    return t


# torch's add(x, y, alpha=a) and sub(x, y, alpha=a): one node (AddBackward0, SubBackward0) with x and y as inputs
_scaled = {
    name: Op(name, 2, lambda x, y, alpha, sign=sign: x + (sign * alpha) * y,
             (lambda g, ans, x, y, alpha: g, lambda g, ans, x, y, alpha, sign=sign: g * (sign * alpha)),
             kind=ops.INTERNAL, params=("alpha",), linear=True, backward_name=f"{name.capitalize()}Backward0")
    for name, sign in (("add", 1.0), ("sub", -1.0))
}


def _binary(op: Any, ufunc: Any) -> Any:
    def method(self: Tensor, other: Any, alpha: Any = None) -> Tensor:
        if alpha is not None and alpha != 1:
            scaled = _scaled.get(op.name)
            if scaled is None:
                raise TypeError(f"{op.name}_() got an unexpected keyword argument 'alpha'")
            return _apply(self, lambda old: scaled(old, other, alpha=alpha),
                          lambda a: ufunc(a, _data(other) * alpha), (other,))
        return _apply(self, lambda old: op(old, other), lambda a: ufunc(a, _data(other)), (other,))

    method.__name__ = f"{op.name}_"
    return method


def zero_(self: Tensor) -> Tensor:
    return fill_(self, 0, _name="ZeroBackward0")


def fill_(self: Tensor, value: Any, _name: str = "") -> Tensor:
    """Every element set to ``value`` (a number, or a 0-d tensor that then gets the summed gradient)."""
    tensor = isinstance(value, Tensor)
    name = _name or ("FillBackward3" if tensor else "FillBackward2")

    def compute(old: Tensor) -> Tensor:
        out = ops.where(np.ones(old._data.shape, dtype=np.bool_), value, old)
        return _renamed(out, name, (2, 1) if tensor else (2,))

    return _apply(self, compute, lambda a: np.broadcast_to(np.asarray(_data(value), dtype=a.dtype), a.shape),
                  (value,))


def clamp_(self: Tensor, min: Any = None, max: Any = None) -> Tensor:
    lo, hi = -np.inf if min is None else _data(min), np.inf if max is None else _data(max)
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    return _apply(self, lambda old: functions.clamp(old, min, max),
                  lambda a: np.minimum(np.maximum(a, lo), hi), (min, max))


def _broadcasts(shape: tuple[int, ...], src: tuple[int, ...]) -> None:
    """torch's errors when ``src`` cannot be broadcast to ``shape`` (copy_ into a tensor of that shape)."""
    n = max(len(shape), len(src))
    for i in range(1, n + 1):
        a, b = shape[-i] if i <= len(shape) else 1, src[-i] if i <= len(src) else 1
        if a != b and 1 not in (a, b):
            raise ShapeError(f"The size of tensor a ({a}) must match the size of tensor b ({b}) at "
                               f"non-singleton dimension {n - i}")
    wide = np.broadcast_shapes(shape, src)
    if wide != shape:
        raise ShapeError(f"output with shape {list(shape)} doesn't match the broadcast shape {list(wide)}")


# copy_ in a graph: the old value gets a zero gradient, the source the gradient (summed to its shape)
_copy_op = Op("copy_", 2, lambda old, src: np.array(np.broadcast_to(src, np.shape(old)), dtype=np.result_type(old)),
              (lambda g, ans, old, src: g * 0.0, lambda g, ans, old, src: g),
              kind=ops.INTERNAL, linear=True, backward_name="torch::autograd::CopyBackwards")  # its name(), as torch


def copy_(self: Tensor, src: Any, non_blocking: bool = False) -> Tensor:
    """Copy ``src``'s values into this tensor (broadcast, cast to its dtype), in place; in a graph
    (``CopyBackwards``) the gradient flows to ``src`` and none to the old values, as torch."""
    _broadcasts(self._data.shape, np.shape(_data(src)))
    if not _needs_graph(self, (src,)) or self._data.dtype.kind not in "fc":
        return self._inplace(_data(src), lambda a, b, out, casting: np.copyto(out, b, casting="unsafe"))
    return _apply(self, lambda old: _copy_op(old, src), np.asarray, (src,))


Tensor.add_ = _binary(ops.add, np.add)  # type: ignore[attr-defined]
Tensor.sub_ = _binary(ops.sub, np.subtract)  # type: ignore[attr-defined]
Tensor.mul_ = _binary(ops.mul, np.multiply)  # type: ignore[attr-defined]
Tensor.div_ = _binary(ops.div, np.true_divide)  # type: ignore[attr-defined]
Tensor.zero_ = zero_  # type: ignore[attr-defined]
Tensor.copy_ = copy_  # type: ignore[attr-defined]
Tensor.fill_ = fill_  # type: ignore[attr-defined]
Tensor.clamp_ = Tensor.clip_ = clamp_  # type: ignore[attr-defined]
Tensor.clamp_min_ = lambda self, min: _apply(  # type: ignore[attr-defined]
    self, lambda old: functions.clamp_min(old, min), lambda a: np.maximum(a, _data(min)), (min,))
Tensor.clamp_max_ = lambda self, max: _apply(  # type: ignore[attr-defined]
    self, lambda old: functions.clamp_max(old, max), lambda a: np.minimum(a, _data(max)), (max,))
Tensor.__iadd__ = lambda self, o: self.add_(o)  # type: ignore[attr-defined]
Tensor.__isub__ = lambda self, o: self.sub_(o)  # type: ignore[attr-defined]
Tensor.__imul__ = lambda self, o: self.mul_(o)  # type: ignore[attr-defined]
Tensor.__itruediv__ = lambda self, o: self.div_(o)  # type: ignore[attr-defined]
