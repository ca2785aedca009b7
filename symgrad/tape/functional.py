"""``torch.nn.functional`` on symgrad's tape: activations (the table's ops) and losses.

There are no modules (``nn.Linear``, ``nn.Module``): only functions.  An activation the op table
lacks (``softmax`` before the table has it, say) raises ``NotImplementedError`` naming the op; it
works as soon as the table gains the op, since it is looked up at call time.

The losses with a node of their own in torch (``BinaryCrossEntropyWithLogitsBackward0``,
``MseLossBackward0``, ...) are ops here too, made with :class:`symgrad.ir.ops.Op` (not
registered: they are no part of the expression language) and with VJPs written in the table's
ops, so ``create_graph=True`` differentiates them again.  The others are composed as torch
composes them (``l1_loss`` is a mean of ``abs``; ``cross_entropy`` is ``nll_loss`` of
``log_softmax``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir import ops
from symgrad.ir.ops import Op
from symgrad.tape.graph import Tensor

_REDUCTIONS = ("none", "mean", "sum")


def _table(name: str) -> Op:
    op = ops.lookup(name)
    if op is None:
        raise NotImplementedError(f"{name} needs the op {name!r}, which symgrad's op table does not have yet")
    return op


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(np.shape(x)) if not hasattr(x, "shape") else tuple(x.shape)


def _spread(g: Any, shape: tuple[int, ...], reduction: str) -> Any:
    """The incoming gradient of a reduced loss, broadcast back over the elements."""
    if reduction == "none":
        return g
    g = ops.broadcast_to(g, shape=shape)
    return g / max(1, int(np.prod(shape))) if reduction == "mean" else g


def _reduce(values: np.ndarray, reduction: str) -> np.ndarray:
    return values if reduction == "none" else np.mean(values) if reduction == "mean" else np.sum(values)


def _check(reduction: str, x: Any, y: Any) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if _shape(x) != _shape(y):
        raise ValueError(f"Target size ({list(_shape(y))}) must be the same as input size ({list(_shape(x))})")


def _bce_logits_forward(x: Any, y: Any, reduction: str) -> np.ndarray:
    x, y = np.asarray(x), np.asarray(y)
    return _reduce(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x))), reduction)


_BCE_LOGITS = Op(
    "binary_cross_entropy_with_logits", 2, _bce_logits_forward,
    (lambda g, ans, x, y, reduction: _spread(g, _shape(x), reduction) * (ops.sigmoid(x) - y),
     lambda g, ans, x, y, reduction: _spread(g, _shape(x), reduction) * -x),
    params=("reduction",), backward_name="BinaryCrossEntropyWithLogitsBackward0", args=("x", "y"),
)


def _bce_forward(p: Any, y: Any, reduction: str) -> np.ndarray:
    p, y = np.asarray(p), np.asarray(y)
    if np.any((p < 0) | (p > 1)):
        raise RuntimeError("all elements of input should be between 0 and 1")
    with np.errstate(divide="ignore"):  # torch clamps the logs at -100
        return _reduce(-(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log1p(-p), -100)), reduction)


_BCE = Op(
    "binary_cross_entropy", 2, _bce_forward,
    (lambda g, ans, p, y, reduction: _spread(g, _shape(p), reduction) * (p - y)
     / ops.maximum(p * (1 - p), 1e-12),
     lambda g, ans, p, y, reduction: _spread(g, _shape(p), reduction) * (ops.log1p(-p) - ops.log(p))),
    params=("reduction",), backward_name="BinaryCrossEntropyBackward0", args=("p", "y"),
)

_MSE = Op(
    "mse_loss", 2, lambda x, y, reduction: _reduce((np.asarray(x) - np.asarray(y)) ** 2, reduction),
    (lambda g, ans, x, y, reduction: _spread(g, _shape(x), reduction) * 2 * (x - y),
     lambda g, ans, x, y, reduction: _spread(g, _shape(x), reduction) * -2 * (x - y)),
    params=("reduction",), backward_name="MseLossBackward0", args=("x", "y"),
)


def _picked(x_shape: tuple[int, ...], target: np.ndarray, ignore_index: int) -> tuple[np.ndarray, int]:
    """The one-hot mask of the targets' classes (class axis 1, or 0 for one sample) and how many count."""
    t = np.asarray(target).astype(np.int64)
    keep = t != ignore_index
    mask = np.zeros(x_shape)
    axis = 1 if len(x_shape) > 1 else 0
    classes = x_shape[axis]
    if np.any(keep & ((t < 0) | (t >= classes))):
        raise IndexError(f"Target {int(t[keep & ((t < 0) | (t >= classes))].flat[0])} is out of bounds.")
    onehot = np.moveaxis(np.eye(classes)[np.where(keep, t, 0)], -1, axis) if axis else np.eye(classes)[t if keep else 0]
    mask[...] = onehot * (keep if axis == 0 else np.expand_dims(keep, axis))
    return mask, int(np.sum(keep))


def _nll_forward(x: Any, target: Any, reduction: str, ignore_index: int) -> np.ndarray:
    mask, n = _picked(np.shape(x), np.asarray(target), ignore_index)
    picked = -np.sum(np.asarray(x) * mask, axis=1 if np.ndim(x) > 1 else 0)
    if reduction == "none":
        return picked
    total = np.sum(picked)
    return total / n if reduction == "mean" else total


def _nll_vjp(g: Any, ans: Any, x: Any, target: Any, reduction: str, ignore_index: int) -> Any:
    mask, n = _picked(_shape(x), np.asarray(target), ignore_index)
    if reduction == "none":
        g = ops.reshape(g, shape=_shape(g) + (1,)) if len(_shape(x)) > 1 else g
    elif reduction == "mean":
        g = g / n
    return -mask * g


_NLL = Op(
    "nll_loss", 2, _nll_forward, (_nll_vjp, None), params=("reduction", "ignore_index"),
    backward_name="NllLossBackward0", args=("x", "target"), saves=(("target",), ()),
)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Any = None, reduction: str = "mean",
                                     pos_weight: Any = None) -> Tensor:
    if weight is not None or pos_weight is not None:
        raise NotImplementedError("symgrad's binary_cross_entropy_with_logits takes no weight or pos_weight")
    _check(reduction, input, target)
    return _BCE_LOGITS(input, target, reduction=reduction)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Any = None, reduction: str = "mean") -> Tensor:
    if weight is not None:
        raise NotImplementedError("symgrad's binary_cross_entropy takes no weight")
    _check(reduction, input, target)
    return _BCE(input, target, reduction=reduction)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _check(reduction, input, target)
    return _MSE(input, target, reduction=reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _check(reduction, input, target)
    diff = ops.abs(input - target)
    return diff if reduction == "none" else ops.mean(diff) if reduction == "mean" else ops.sum(diff)


def nll_loss(input: Tensor, target: Tensor, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    if weight is not None:
        raise NotImplementedError("symgrad's nll_loss takes no weight")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return _NLL(input, target, reduction=reduction, ignore_index=ignore_index)


def log_softmax(input: Tensor, dim: int | None = None) -> Tensor:
    return _table("log_softmax")(input, axis=dim)


def softmax(input: Tensor, dim: int | None = None) -> Tensor:
    return _table("softmax")(input, axis=dim)


def cross_entropy(input: Tensor, target: Tensor, weight: Any = None, ignore_index: int = -100,
                  reduction: str = "mean") -> Tensor:
    """``nll_loss(log_softmax(input, 1), target)`` for class indices; for class probabilities
    ``-(target * log_softmax).sum`` over the classes, reduced."""
    logp = log_softmax(input, dim=1 if input.ndim > 1 else 0)
    target_dtype = target.dtype if isinstance(target, Tensor) else np.asarray(target).dtype
    if target_dtype.kind in "iu":
        return nll_loss(logp, target, weight, ignore_index, reduction)
    if weight is not None:
        raise NotImplementedError("symgrad's cross_entropy takes no weight")
    per_sample = ops.sum(-(target * logp), axis=1 if input.ndim > 1 else None)
    if reduction == "none":
        return per_sample
    total = ops.sum(per_sample)
    if reduction == "sum":
        return total
    out = total / (input.shape[0] if input.ndim > 1 else 1)
    if out.grad_fn is not None:
        out.grad_fn._name = "DivBackward1"  # torch divides by a Scalar here
    return out


def relu(input: Tensor) -> Tensor:
    return ops.relu(input)


def sigmoid(input: Tensor) -> Tensor:
    return ops.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return ops.tanh(input)


def softplus(input: Tensor) -> Tensor:
    return ops.softplus(input)


def gelu(input: Tensor) -> Tensor:
    return _table("gelu")(input)


def silu(input: Tensor) -> Tensor:
    return _table("silu")(input)


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:
    op = _table("elu")
    return op(input, alpha=alpha) if "alpha" in op.params else op(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    op = _table("leaky_relu")
    return op(input, negative_slope=negative_slope) if "negative_slope" in op.params else op(input)
