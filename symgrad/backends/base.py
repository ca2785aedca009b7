"""The backend interface and the driver shared by tape-style engines.

A backend is what symgrad checks.  It gets the IR and numpy inputs and must hand back
the forward value and gradients as numpy arrays::

    value, grads = backend.gradients(expr, inputs, wrt, order, grad_output)
    grads[("a",)]        # order 1: the VJP of the output with grad_output, w.r.t. a
    grads[("a", "b")]    # order 2: d/db of sum(grads[("a",)]), as create_graph=True gives

There are two bases, sharing one IR walker (:meth:`Backend.walk`):

* **a tape** (PyTorch-like engines, MyGrad, tinygrad): subclass :class:`TapeBackend`
  and implement ``leaf``, ``apply``, ``grad``, ``sum`` and ``to_numpy``;
  :func:`gradients_by_tape` does the rest (``autograd.grad`` with ``create_graph``
  k - 1 times).
* **a functional engine** (JAX, HIPS autograd): subclass :class:`FunctionalBackend`
  and implement ``array``, ``apply``, ``vjp(fn, inputs, grad_output)``, ``sum`` and
  ``to_numpy``; :func:`gradients_by_vjp` does the rest (order k nests k VJPs).

Either way the engine only ever sees ``apply(op, args, params)`` with at least one
engine value among ``args``: the walker folds constant-only subtrees (the ``neg(0.5)``
of ``x**-0.5``, ``exp(1.0 + 2.0)``) to Python floats with the table's numpy forwards, and
a constant argument beside a tensor (the ``1.0`` of ``maximum(1.0, x)``) arrives as a
Python float, or as ``wrap(value, like)`` when the backend's :class:`Capabilities`
say ``wrap_constants``.  The forward pass is :meth:`Backend.evaluate` (the walker by
default), which :func:`symgrad.check_function` replaces by the user's function: an
adapter's own helpers (an op's composite) call :meth:`Backend.walk`, never ``evaluate``.

Forward mode (``mode_ad: forward|both``): :meth:`Backend.jvp` gives ``(value, J t)`` for
tangents ``t``; an engine with it says ``capabilities.forward`` and implements
``forward_jvp(fn, primals, tangents)`` (:func:`jvp_by_function` builds ``fn`` from the IR through
``evaluate``, so :func:`symgrad.check_function` works in forward mode too).

A backend declares what it can do in :attr:`Backend.capabilities` (ops, highest order,
dtypes); the runner *skips* what lies outside with the reason, before calling the
engine.  An op the engine lacks at run time raises :class:`Unsupported` (also a skip);
a missing package raises :class:`BackendUnavailable` with the install hint.  Gradients
handed back in another dtype or shape than their input are an error naming the engine
(:func:`check_gradients`).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, ContextManager  # noqa: UP035

import numpy as np

from symgrad.ir.expr import Call, Const, Expr, Var, as_expr, evaluate
from symgrad.ir.ops import Op, engine_ops
from symgrad.ir.precision import NARROW

Grads = dict[tuple[str, ...], np.ndarray | None]


class Unsupported(Exception):
    """The engine lacks an op: the case is skipped with this reason, never failed."""


class BackendUnavailable(RuntimeError):
    """The engine's package is not installed; the message says how to install it."""


def install_hint(name: str, package: str) -> BackendUnavailable:
    """The one-line error for a backend whose package is missing."""
    return BackendUnavailable(f"backend {name!r} needs: pip install symgrad[{package}]")


class BackendError(RuntimeError):
    """The engine handed back something malformed (a gradient of the wrong dtype or shape): the case errors."""


@dataclass(frozen=True)
class Capabilities:
    """What an engine can run; the runner skips a case outside it, with :meth:`lacks`'s reason.

    ``ops``: the table's ops the engine runs (its own functions and the composites built
    from them); ``None``: every op (``apply`` may still raise :class:`Unsupported`).
    ``max_order``: the highest derivative order (``None``: any).  ``dtypes``: the input
    dtypes it computes in.  ``wrap_constants``: a constant argument beside a tensor is
    passed as ``wrap(value, like)`` (an engine tensor) rather than as a Python float.
    """

    ops: frozenset | None = None
    max_order: int | None = None
    dtypes: tuple[str, ...] = ("float64", "float32")
    wrap_constants: bool = False
    #: why ``max_order`` is what it is, when not that the engine cannot go further
    order_note: str = ""
    #: the kinds of device its tensors can live on ("cuda": also "cuda:N"); whether one is present is
    #: asked at run time (:meth:`Backend.on_device`)
    devices: tuple[str, ...] = ("cpu",)
    #: forward mode: the engine computes JVPs (:meth:`Backend.jvp`); ``forward_note`` says how, or why not
    forward: bool = False
    forward_note: str = ""

    def lacks_forward(self) -> str | None:
        """Why a forward-mode (``mode_ad: forward|both``) case cannot run here (None: it can)."""
        if self.forward:
            return None
        return "forward mode" + (f" ({self.forward_note})" if self.forward_note else " (it computes no JVPs)")

    def lacks(self, used: Iterable[Op], order: int, dtype: str, device: str = "cpu") -> str | None:
        """Why a case with ops ``used``, at ``order``, in ``dtype`` on ``device`` cannot run here (None: it can)."""
        if self.ops is not None:
            missing = sorted({op.name for op in used if op not in self.ops})
            if missing:
                return "op " + ", ".join(repr(m) for m in missing)
        if self.max_order is not None and order > self.max_order:
            return f"order {order} ({self.order_note or f'it differentiates up to order {self.max_order}'})"
        if dtype not in self.dtypes:
            return f"dtype {dtype} (it computes in {', '.join(self.dtypes)})"
        if device.split(":")[0] not in self.devices:
            return f"device {device} (it runs on {', '.join(self.devices)})"
        return None


def runnable_ops(direct: Iterable[Op], candidates: Iterable[Op]) -> frozenset:
    """``direct`` (the engine's own functions) and every candidate whose composite uses only runnable ops."""
    have = set(direct)
    pending = [op for op in candidates if op not in have and op.composite is not None]
    grew = True
    while grew:
        grew = False
        for op in list(pending):
            expr = as_expr(op.composite(*(Var(n) for n in op.args)))  # type: ignore[misc]  # pending: composites
            if all(n.op in have for n in expr.walk() if isinstance(n, Call)):
                have.add(op)
                pending.remove(op)
                grew = True
    return frozenset(have)


def adapter_table(resolve: Callable[[Op, Any], Callable[..., Any] | None], mapped: Any,
                  unsupported: Mapping[Op, str]) -> tuple[dict[Op, Callable[..., Any]], frozenset]:
    """An adapter's functions (``resolve``: mapped or found by name) and every op it can run; an op it
    declares ``unsupported`` gets neither a function nor a composite."""
    candidates = [op for op in engine_ops() if op not in unsupported]
    table = {op: fn for op in candidates if (fn := resolve(op, mapped)) is not None}
    return table, runnable_ops(table, candidates)


def _fold(op: Op, args: list[Any], params: dict[str, Any]) -> Any:
    """A constant-only application, computed once in float64 with the table's numpy forward."""
    with np.errstate(all="ignore"):
        out = np.asarray(op.forward(*(np.asarray(a, dtype=np.float64) for a in args), **params))
    return float(out) if out.ndim == 0 else out


class Backend:
    """What symgrad needs from an engine.

    ``gradients`` evaluates ``expr`` at ``inputs`` (numpy arrays in the case's dtype)
    and returns the forward value and, for every sequence of ``order`` names from
    ``wrt``, the gradient DESIGN.md defines: the VJP with ``grad_output`` (an array
    of the forward value's shape) for order 1, then the gradient of the sum of the
    previous order's gradient.  Inputs not in ``wrt`` are constants.  A gradient
    the engine did not produce (``None`` from the engine) is returned as ``None``;
    the runner reports it as a failure when the input is on the graph.
    """

    name: str = ""
    #: how error messages name the engine's tensor type ("torch.Tensor")
    tensor_name: str = "tensor"
    #: what the engine can run (see :class:`Capabilities`); the default: everything, float64 and float32
    capabilities: Capabilities = Capabilities()

    def gradients(self, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str], order: int,
                  grad_output: np.ndarray) -> tuple[np.ndarray, Grads]:
        """``(value, {(name, ...): gradient or None})``, all numpy, for every sequence of ``order`` names."""
        raise NotImplementedError

    def jvp(self, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str],
            tangents: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Forward mode: ``(value, J t)``, numpy, where ``J t = sum over wrt of d expr/d name @ tangents[name]``
        (each tangent of its input's shape; the result of the forward value's shape).  Inputs not in
        ``wrt`` are constants.  A backend with forward mode says ``capabilities.forward``."""
        raise Unsupported("forward mode")

    def evaluate(self, expr: Expr, leaves: dict[str, Any]) -> Any:
        """The forward pass on the engine's own values (``leaves``: input name -> value): :meth:`walk`.

        :func:`symgrad.check_function` replaces this with the user's function."""
        return self.walk(expr, leaves)

    def apply(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        """The engine's version of ``op`` (``params``: e.g. ``axis``); raise :class:`Unsupported` when it has none.

        At least one of ``args`` is an engine value; the others are Python floats (or
        :meth:`wrap`'s result when ``capabilities.wrap_constants``)."""
        raise NotImplementedError

    def constant(self, value: float, leaves: dict[str, Any]) -> Any:
        """A literal of the expression (``pi``, ``2.0``) as the walker starts from it; a Python float by default.

        Integer literals become floats too: ``2**64`` must not wrap around in int64.
        """
        return float(value)

    def wrap(self, value: Any, like: Any) -> Any:
        """A constant argument as an engine value beside ``like`` (used when ``capabilities.wrap_constants``)."""
        return value

    def walk(self, expr: Expr, leaves: dict[str, Any]) -> Any:
        """The public IR walker: ``expr`` bottom-up with :meth:`apply` on the engine's values.

        Inputs are ``leaves[name]``; literals are :meth:`constant`; an op whose arguments
        are all constants is folded here (float64, the table's numpy forward) and never
        reaches ``apply``; a constant beside an engine value is passed as a Python float,
        or as :meth:`wrap` ``(value, like=that value)`` when the capabilities ask for it.
        """
        const: set[int] = set()
        apply, wrap_constants = self.apply, self.capabilities.wrap_constants

        def leaf(node: Expr) -> Any:
            if isinstance(node, Var):
                return leaves[node.name]
            assert isinstance(node, Const)
            const.add(id(node))
            return self.constant(node.value, leaves)

        def call(node: Call, args: list[Any]) -> Any:
            is_const = [id(a) in const for a in node.args]
            if all(is_const):
                const.add(id(node))
                return _fold(node.op, args, node.kwargs)
            if wrap_constants and any(is_const):
                like = next(a for a, c in zip(args, is_const) if not c)
                args = [self.wrap(a, like) if c else a for a, c in zip(args, is_const)]
            return apply(node.op, args, node.kwargs)

        return evaluate(expr, leaf, call)

    def composite(self, op: Op, args: list[Any], params: dict[str, Any], values: Callable[[Any], Any]) -> Any:
        """``op`` as its composite of other ops of the table, for an engine that lacks it; inside the op's
        domain only, where the composite agrees with its convention (``values``: an engine value as numpy).
        Raises :class:`Unsupported` for an op without a composite, or outside that domain."""
        if op.composite is None:
            raise Unsupported(f"op {op.name!r}")
        if not np.all(op.inside(*(values(a) for a in args))):
            raise Unsupported(f"op {op.name!r} where its derivatives are not all finite ({op.domain_text}): "
                              f"{self.name} lacks it, and its composite may differ from its convention there")
        expr = as_expr(op.composite(*(Var(n) for n in op.args), **params))
        return self.walk(expr, dict(zip(op.args, args)))

    def is_tensor(self, value: Any) -> bool:
        """Whether ``value`` is one of the engine's tensors (checked on a user's function's output)."""
        return True

    def on_device(self, device: str) -> ContextManager[Any]:
        """A context in which the engine's tensors are made on ``device`` ("cpu", "cuda", "cuda:0"); raise
        :class:`Unsupported` (a skip) when the machine has no such device.  The default: cpu only."""
        if device != "cpu":
            raise Unsupported(f"device {device} (it runs on cpu only)")
        return nullcontext()

    def __repr__(self) -> str:
        return f"<backend {self.name!r}>"


class TapeBackend(Backend):
    """An engine with PyTorch-like leaves and an ``autograd.grad``: implement five small methods."""

    def leaf(self, array: np.ndarray, requires_grad: bool) -> Any:
        """The engine's tensor holding ``array`` (same dtype), tracked when ``requires_grad``."""
        raise NotImplementedError

    def grad(self, output: Any, inputs: list[Any], grad_output: np.ndarray | None,
             create_graph: bool) -> list[Any | None]:
        """VJP of ``output`` (``grad_output`` None: a scalar, seeded with 1); ``None`` where unused.

        The graph must survive the call (``retain_graph=True``): the driver differentiates
        several gradients that share it.  ``create_graph`` records the backward pass so the
        result can be differentiated again.
        """
        raise NotImplementedError

    def sum(self, value: Any) -> Any:
        """The sum of all elements, on the tape."""
        raise NotImplementedError

    def to_numpy(self, value: Any) -> np.ndarray:
        """A numpy copy of one of the engine's values."""
        raise NotImplementedError

    def gradients(self, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str], order: int,
                  grad_output: np.ndarray) -> tuple[np.ndarray, Grads]:
        return gradients_by_tape(self, expr, inputs, wrt, order, grad_output)

    def forward_jvp(self, fn: Callable[..., Any], primals: list[np.ndarray],
                    tangents: list[np.ndarray]) -> tuple[Any, Any | None]:
        """Forward mode, for an engine that has it: ``(fn(*leaves), its JVP)`` with the engine's leaves
        made from ``primals`` and seeded with ``tangents``; the JVP ``None`` where the output depends on
        no primal.  :func:`jvp_by_function` does the rest."""
        raise Unsupported("forward mode")

    def jvp(self, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str],
            tangents: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        consts = {n: self.leaf(a, requires_grad=False) for n, a in inputs.items() if n not in wrt}
        return jvp_by_function(self, expr, inputs, consts, wrt, tangents)


def gradients_by_tape(backend: TapeBackend, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str],
                      order: int, grad_output: np.ndarray) -> tuple[np.ndarray, Grads]:
    """Order-k gradients as PyTorch computes them: ``autograd.grad`` with ``create_graph`` k - 1 times."""
    leaves = {n: backend.leaf(a, requires_grad=n in wrt) for n, a in inputs.items()}
    out = backend.evaluate(expr, leaves)
    value = backend.to_numpy(out)
    targets = [leaves[n] for n in wrt]
    level: dict[tuple[str, ...], Any] = {(): out}
    result: Grads = {}
    for k in range(1, order + 1):
        nxt: dict[tuple[str, ...], Any] = {}
        for prefix, y in level.items():
            if y is None:  # nothing flowed at the previous order: every further gradient is None
                nxt.update({prefix + (n,): None for n in wrt})
                continue
            seed = grad_output if k == 1 else None
            grads = backend.grad(y if k == 1 else backend.sum(y), targets, seed, create_graph=k < order)
            nxt.update({prefix + (n,): g for n, g in zip(wrt, grads)})
        level = nxt
    for seq, g in level.items():
        result[seq] = None if g is None else backend.to_numpy(g)
    return value, result


class FunctionalBackend(Backend):
    """An engine that differentiates functions (JAX, HIPS autograd): implement five small methods.

    :func:`gradients_by_vjp` builds ``fn`` from the IR (through :meth:`evaluate`, so
    :func:`symgrad.check_function` works unchanged), calls :meth:`vjp` for order 1 and
    nests it for higher orders: order k + 1 is the VJP of the sum of an order-k
    gradient, with the engine tracing through its own VJP.
    """

    def array(self, array: np.ndarray) -> Any:
        """The engine's value holding ``array`` (same dtype)."""
        raise NotImplementedError

    def vjp(self, fn: Callable[..., Any], inputs: list[Any], grad_output: Any | None) -> tuple[Any, list[Any]]:
        """``(fn(*inputs), [VJP of fn with grad_output w.r.t. each input])``; ``grad_output`` None: ``fn``
        returns a scalar, seeded with 1.  Must be traceable by the engine itself (higher orders nest it)."""
        raise NotImplementedError

    def sum(self, value: Any) -> Any:
        """The sum of all elements, differentiably."""
        raise NotImplementedError

    def to_numpy(self, value: Any) -> np.ndarray:
        """A numpy copy of one of the engine's values."""
        raise NotImplementedError

    def session(self) -> ContextManager[Any]:
        """A context the whole computation runs in (JAX: float64 enabled, restored after)."""
        return nullcontext()

    def gradients(self, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str], order: int,
                  grad_output: np.ndarray) -> tuple[np.ndarray, Grads]:
        with self.session():
            return gradients_by_vjp(self, expr, inputs, wrt, order, grad_output)

    def forward_jvp(self, fn: Callable[..., Any], primals: list[Any],
                    tangents: list[Any]) -> tuple[Any, Any | None]:
        """Forward mode, for an engine that has it: ``(fn(*primals), JVP of fn at primals with tangents)``
        (``jax.jvp``); primals and tangents are the engine's arrays (:meth:`array`)."""
        raise Unsupported("forward mode")

    def jvp(self, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str],
            tangents: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        with self.session():
            consts = {n: self.array(a) for n, a in inputs.items() if n not in wrt}
            arrays = {n: self.array(a) for n, a in inputs.items() if n in wrt}
            seeds = {n: self.array(np.asarray(t, dtype=inputs[n].dtype)) for n, t in tangents.items()}
            return jvp_by_function(self, expr, arrays, consts, wrt, seeds)


def gradients_by_vjp(backend: FunctionalBackend, expr: Expr, inputs: dict[str, np.ndarray], wrt: Sequence[str],
                     order: int, grad_output: np.ndarray) -> tuple[np.ndarray, Grads]:
    """Order-k gradients by nesting VJPs: ``grad(grad(f))`` as a functional engine writes it."""
    wrt = list(wrt)
    consts = {n: backend.array(a) for n, a in inputs.items() if n not in wrt}

    def f(*w: Any) -> Any:  # the expression as a function of the wrt inputs
        return backend.evaluate(expr, {**consts, **dict(zip(wrt, w))})

    w0 = [backend.array(inputs[n]) for n in wrt]
    seed = backend.array(np.asarray(grad_output))

    def first(*w: Any) -> list[Any]:
        return backend.vjp(f, list(w), seed)[1]

    def nested(prev: Callable[..., list[Any]], i: int) -> Callable[..., list[Any]]:
        return lambda *w: backend.vjp(lambda *v: backend.sum(prev(*v)[i]), list(w), None)[1]

    value = backend.to_numpy(f(*w0))  # concrete first: adapters may check domains here, not under tracing
    level: dict[tuple[str, ...], Callable[..., list[Any]]] = {(): first}
    for _ in range(order - 1):
        level = {prefix + (n,): nested(fn, i) for prefix, fn in level.items() for i, n in enumerate(wrt)}
    result: Grads = {}
    for prefix, fn in level.items():
        for n, g in zip(wrt, fn(*w0)):
            result[prefix + (n,)] = None if g is None else backend.to_numpy(g)
    return value, result


def jvp_by_function(backend: Any, expr: Expr, primals: dict[str, Any], consts: dict[str, Any],
                    wrt: Sequence[str], tangents: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The expression as a function of the ``wrt`` inputs (through ``evaluate``, so that
    :func:`symgrad.check_function` puts the user's function there), handed to the backend's
    ``forward_jvp``; a JVP of ``None`` (the output depends on no input) is zeros."""
    wrt = list(wrt)

    def f(*w: Any) -> Any:
        return backend.evaluate(expr, {**consts, **dict(zip(wrt, w))})

    out, tangent = backend.forward_jvp(f, [primals[n] for n in wrt], [tangents[n] for n in wrt])
    value = backend.to_numpy(out)
    if tangent is None:
        return value, np.zeros(np.shape(value), dtype=value.dtype)
    return value, backend.to_numpy(tangent)


def check_gradients(backend: Backend, value: Any, grads: Grads, inputs: dict[str, np.ndarray]) -> None:
    """Raise :class:`BackendError` naming the engine when a gradient comes back in another dtype than its
    input's (``float32`` from JAX without float64): a misconfigured engine, not a wrong derivative.

    A gradient of another shape is left to the comparison, which *fails* it with a note naming both shapes:
    a broadcast gradient not summed back is a real autodiff bug.  The forward value is compared as it comes
    (an engine may compute a float32 reduction in float64, as autograd's ``logsumexp`` does)."""
    _check_narrow_value(backend, value, inputs)
    for seq, g in grads.items():
        if g is None:
            continue
        x = np.asarray(inputs[seq[-1]])
        g = np.asarray(g)
        if (x.dtype.kind == "f" or _narrow(x.dtype)) and g.dtype != x.dtype:
            label = "d/d" + seq[0] if len(seq) == 1 else "d^%d/d%s" % (len(seq), " d".join(seq))  # noqa: UP031
            raise BackendError(f"backend {backend.name!r} returned a {g.dtype} gradient {label} for the "
                               f"{x.dtype} input {seq[-1]!r}")


def _check_narrow_value(backend: Backend, value: Any, inputs: dict[str, np.ndarray]) -> None:
    """In a 16-bit case the forward value must come back in the case's format: a float16 value for
    bfloat16 inputs (or float32 for float16) is an engine computing in another precision than asked."""
    narrow = [a.dtype for a in map(np.asarray, inputs.values()) if _narrow(a.dtype)]
    v = np.asarray(value)
    if narrow and (v.dtype.kind == "f" or _narrow(v.dtype)) and v.dtype != narrow[0]:
        raise BackendError(f"backend {backend.name!r} returned a {v.dtype} forward value for {narrow[0]} inputs "
                           f"(it computed in another precision than the case's {narrow[0]})")


@functools.lru_cache(maxsize=64)
def _narrow(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is a 16-bit format; cached, as numpy works a dtype's ``name`` out anew each time (3 us)."""
    return dtype.name in NARROW


def sequences(wrt: Sequence[str], order: int) -> list[tuple[str, ...]]:
    return list(itertools.product(wrt, repeat=order))
