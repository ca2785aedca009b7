"""``torch.autograd.Function``: a custom op written as ``forward(ctx, ...)`` and ``backward(ctx, ...)``.

``MyFunction.apply(*args)`` runs ``forward`` with recording off and, when an input requires grad,
records one node for the whole call (named ``MyFunctionBackward``, as torch names it).  Its VJPs
call ``backward`` once per backward pass and hand each input its share.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir.ops import Op
from symgrad.tape.grad_mode import is_grad_enabled, no_grad
from symgrad.tape.graph import Node, Tensor


class FunctionCtx:
    """What ``forward`` and ``backward`` share: saved tensors, ``needs_input_grad``, attributes."""

    def __init__(self, needs_input_grad: tuple[bool, ...]):
        self.needs_input_grad = needs_input_grad
        self._saved: tuple = ()
        self.non_differentiable: tuple = ()
        self._grads: Any = None  # (the incoming gradient, backward's answer) of the current pass

    def save_for_backward(self, *tensors: Any) -> None:
        self._saved = tensors

    @property
    def saved_tensors(self) -> tuple:
        return self._saved

    def mark_non_differentiable(self, *tensors: Tensor) -> None:
        self.non_differentiable = tensors

    def set_materialize_grads(self, value: bool) -> None:
        pass  # gradients are always materialised (zeros rather than None)


class _FunctionNode(Node):
    """A node whose repr is torch's: ``<torch.autograd.function.MyFunctionBackward object at 0x...>``."""

    def __repr__(self) -> str:
        return f"<torch.autograd.function.{self.name()} object at {id(self):#x}>"


def _vjp(cls: Any, i: int) -> Any:
    def vjp(g: Any, ans: Any, *args: Any, ctx: FunctionCtx) -> Any:
        cached = ctx._grads
        if cached is None or cached[0] is not g:  # one call of backward per pass, shared by the inputs
            grads = cls.backward(ctx, g if isinstance(g, Tensor) else Tensor._make(np.asarray(g)))
            grads = grads if isinstance(grads, tuple) else (grads,)
            if len(grads) != len(args):
                raise RuntimeError(f"function {cls.__name__}Backward returned an incorrect number of gradients "
                                   f"(expected {len(args)}, got {len(grads)})")
            ctx._grads = cached = (g, grads)
        gi = cached[1][i]
        if gi is None:  # torch: no gradient for this input; the tape adds a zero
            return np.zeros(np.shape(args[i]))
        return gi if isinstance(g, Tensor) else np.asarray(gi._data if isinstance(gi, Tensor) else gi)

    return vjp


class Function:
    """Subclass with static ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)``; call ``.apply``."""

    _op: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._op = None

    @classmethod
    def _op_for(cls, arity: int) -> Op:
        if cls._op is None or cls._op.arity != arity:
            cls._op = Op(cls.__name__, arity, lambda *a, ctx: None, tuple(_vjp(cls, i) for i in range(arity)),
                         params=("ctx",), backward_name=f"{cls.__name__}Backward")
        return cls._op

    @classmethod
    def apply(cls, *args: Any) -> Any:
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = FunctionCtx(needs)
        user_forward = cls.forward  # the user's method, not an op table forward
        with no_grad():
            out = user_forward(ctx, *args)
        if isinstance(out, tuple):
            raise NotImplementedError("symgrad's autograd.Function supports a forward with one output")
        if not isinstance(out, Tensor):
            raise TypeError(f"{cls.__name__}.forward must return a Tensor, got {type(out).__name__}")
        if not (is_grad_enabled() and any(needs)) or any(out is t for t in ctx.non_differentiable):
            return Tensor._make(out._data)
        arr = out._data
        node = _FunctionNode(cls._op_for(len(args)), {"ctx": ctx}, args, arr)
        return Tensor._make(arr, node)

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any) -> Any:
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Any) -> Any:
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")
