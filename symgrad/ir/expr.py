"""The IR: a small expression tree, built by the parser or by tracing.

``Const``, ``Var`` and ``Call`` are the only nodes.  Operators on them, and the
op table's functions applied to them (``symgrad.sin(Var("x"))``), build
``Call`` nodes, so tracing a Python function is calling it on ``Var``s.
Every engine (sympy, each tape backend) interprets this tree with
:func:`evaluate`; none sees another's output.  :func:`numpy_eval` is the one
plain-numpy interpretation (the op table's forwards), used wherever a shell or
an engine needs the value of the expression as written.
"""

from __future__ import annotations

import inspect
import itertools
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Union, overload

import numpy as np

from symgrad.ir import ops
from symgrad.ir.ops import Op

Number = Union[int, float]  # noqa: UP007


class Expr:
    """Base of the IR nodes; operators build ``Call`` nodes."""

    # numpy on traced values builds the IR too: np.sin(x), np.sum(x, axis=0), np.float64(2) * x (see tracing.py)
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return tracing.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        return tracing.array_function(func, args, kwargs)

    def __symgrad_apply__(self, op: Op, args: tuple, params: dict[str, Any]) -> Call:
        # the same params the parser records: no None values, axes as tuples
        kept = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items() if v is not None}
        return call(op, tuple(as_expr(a) for a in args), tuple(sorted(kept.items())))

    def __add__(self, other: Any) -> Expr: return ops.add(self, other)
    def __radd__(self, other: Any) -> Expr: return ops.add(other, self)
    def __sub__(self, other: Any) -> Expr: return ops.sub(self, other)
    def __rsub__(self, other: Any) -> Expr: return ops.sub(other, self)
    def __mul__(self, other: Any) -> Expr: return ops.mul(self, other)
    def __rmul__(self, other: Any) -> Expr: return ops.mul(other, self)
    def __truediv__(self, other: Any) -> Expr: return ops.div(self, other)
    def __rtruediv__(self, other: Any) -> Expr: return ops.div(other, self)
    def __pow__(self, other: Any) -> Expr: return ops.pow(self, other)
    def __rpow__(self, other: Any) -> Expr: return ops.pow(other, self)
    def __matmul__(self, other: Any) -> Expr: return ops.matmul(self, other)
    def __rmatmul__(self, other: Any) -> Expr: return ops.matmul(other, self)
    def __neg__(self) -> Expr: return ops.neg(self)
    # conditions, for where(x > 0, ...) in a traced function (== and != stay identity: nodes are dict keys)
    def __lt__(self, other: Any) -> Expr: return ops.less(self, other)
    def __le__(self, other: Any) -> Expr: return ops.less_equal(self, other)
    def __gt__(self, other: Any) -> Expr: return ops.greater(self, other)
    def __ge__(self, other: Any) -> Expr: return ops.greater_equal(self, other)
    def __and__(self, other: Any) -> Expr: return ops.logical_and(self, other)
    def __rand__(self, other: Any) -> Expr: return ops.logical_and(other, self)
    def __or__(self, other: Any) -> Expr: return ops.logical_or(self, other)
    def __ror__(self, other: Any) -> Expr: return ops.logical_or(other, self)
    def __invert__(self) -> Expr: return ops.logical_not(self)
    def __pos__(self) -> Expr: return self

    # the tape's methods (x.tanh(), x.sum(axis=0), x.softmax(-1), x.t(), ...): tracing.attach, below

    @property
    def T(self) -> Expr:
        return ops.transpose(self)

    def __str__(self) -> str:
        return to_source(self)

    def walk(self) -> Iterator[Expr]:
        """Every node, children before parents (each shared node once)."""
        plan = _plan(self)
        return itertools.chain(plan.below, (self,))

    def _walk(self) -> Iterator[Expr]:
        seen: set[int] = set()
        stack: list[tuple[Expr, bool]] = [(self, False)]
        while stack:
            node, done = stack.pop()
            if done:
                yield node
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                if isinstance(node, Call):
                    stack.extend((a, False) for a in reversed(node.args))


class _Plan(NamedTuple):
    """How :func:`evaluate` runs a tree, found once per root (trees are immutable).

    ``below`` is every node but the root, children before parents.  One step per node, in that
    order (the root last): the node (None for the root: a plan never holds its own key, or the
    weak cache below would keep every tree alive), its arguments' slots (None for a leaf), the
    slots whose last use it is (freed after it runs), a Call's keyword arguments, and what
    :func:`numpy_eval` runs: a Call's op (its numpy forward), a Var's name or a Const's value as a float.
    """

    below: tuple[Expr, ...]
    names: tuple[str, ...]  # the input names, in order of first appearance
    ops: frozenset[Op]  # the ops of its calls
    steps: tuple[tuple[Expr | None, tuple[int, ...] | None, tuple[int, ...], dict[str, Any], Any], ...]


_NO_KWARGS: dict[str, Any] = {}


def _build_plan(expr: Expr) -> _Plan:
    order = list(expr._walk())
    slot = {id(node): i for i, node in enumerate(order)}
    last: dict[int, int] = {}  # slot -> the step of its last use
    for i, node in enumerate(order):
        if isinstance(node, Call):
            for a in node.args:
                last[slot[id(a)]] = i
    frees: dict[int, list[int]] = {}
    for j, i in last.items():
        frees.setdefault(i, []).append(j)
    steps = []
    run: Any  # see _Plan
    for i, node in enumerate(order):
        if isinstance(node, Call):
            args, kwargs, run = tuple(slot[id(a)] for a in node.args), node.kwargs or _NO_KWARGS, node.op
        else:
            args, kwargs, run = None, _NO_KWARGS, node.name if isinstance(node, Var) else float(node.value)  # type: ignore[attr-defined]
        steps.append((None if node is expr else node, args, tuple(sorted(frees.get(i, ()))), kwargs, run))
    names = tuple(dict.fromkeys(node.name for node in order if isinstance(node, Var)))
    used = frozenset(node.op for node in order if isinstance(node, Call))
    return _Plan(tuple(order[:-1]), names, used, tuple(steps))


def _plan(expr: Expr) -> _Plan:
    plan = _PLANS.get(expr)
    if plan is None:
        plan = _PLANS[expr] = _build_plan(expr)
    return plan


# every evaluated or walked root's plan, while the root lives (Expr hashes by identity)
_PLANS: weakref.WeakKeyDictionary[Expr, _Plan] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False, repr=False)
class Const(Expr):
    value: Number
    name: str = ""  # "pi" or "e" for the named constants

    def __repr__(self) -> str:
        return f"Const({self.name or self.value!r})"


@dataclass(frozen=True, eq=False, repr=False)
class Var(Expr):
    name: str

    def __repr__(self) -> str:
        return f"Var({self.name!r})"


@dataclass(frozen=True, eq=False, repr=False)
class Call(Expr):
    op: Op
    args: tuple[Expr, ...]
    params: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.params)
        return f"Call({self.op.name}, {list(self.args)!r}{extra})"


def call(op: Op, args: tuple[Expr, ...], params: tuple[tuple[str, Any], ...] = ()) -> Call:
    """A ``Call`` node, as the parser and tracing build it.  A number that an op computes, used as a
    condition (``where(sin(x) - sin(1.0), ...)``, an operand of ``&``), becomes its truth ``c != 0``: a
    jump of its own, which the kink table sees when rounding puts ``c`` off an exact 0.  An input or a
    literal is the same number in every engine, and stays as it is."""
    if any(d is ops.Domain.CONDITION for d in op.domain):
        args = tuple(ops.not_equal(a, Const(0.0)) if d is ops.Domain.CONDITION and isinstance(a, Call)
                     and a.op.kind != ops.CONDITION else a for a, d in zip(args, itertools.cycle(op.domain)))
    return Call(op, args, params)


def as_expr(value: Any) -> Expr:
    if isinstance(value, Expr):
        return value
    if isinstance(value, np.ndarray) and value.ndim > 0:  # a small numpy constant, values in the IR
        return tracing.as_constant(value)
    if isinstance(value, np.generic):  # np.float64(2.0): the Python number, as a literal reads
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars
        except (TypeError, ValueError):
            raise TypeError(f"cannot use {type(value).__name__} in a symgrad expression") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"cannot use the constant {value} in a symgrad expression")
    if value < 0:  # as the parser reads "-2": negation of a literal
        return ops.neg(Const(-value))
    return Const(value)


def variables(expr: Expr) -> list[str]:
    """Input names in order of first appearance."""
    return list(_plan(expr).names)


def broadcast_shape(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """``np.broadcast_shapes(*shapes)``, without its cost when every shape is the same (the usual case)."""
    if not shapes:
        return ()
    first = shapes[0]
    return first if all(s == first for s in shapes) else np.broadcast_shapes(*shapes)


def ops_used(expr: Expr) -> frozenset[Op]:
    """The ops of the tree's calls."""
    return _plan(expr).ops


def is_elementwise(expr: Expr) -> bool:
    return all(op.kind in (ops.ELEMENTWISE, ops.CONDITION) for op in _plan(expr).ops)


def evaluate(expr: Expr, leaf: Callable[[Expr], Any], call: Callable[[Call, list[Any]], Any]) -> Any:
    """Interpret the tree bottom-up: ``leaf`` maps Const/Var nodes, ``call`` combines children.

    Each value is freed once its last consumer has run (numpy reuses the memory, as in a Python
    expression); the order of the calls is the tree's post-order, the same on every run."""
    steps = _plan(expr).steps
    values: list[Any] = [None] * len(steps)
    for i, (node, args, frees, _, _) in enumerate(steps):
        node = expr if node is None else node
        if args is None:
            values[i] = leaf(node)
        else:
            values[i] = call(node, list(map(values.__getitem__, args)))  # type: ignore[arg-type]
            for j in frees:
                values[j] = None
    return values[-1]


@overload
def numpy_eval(expr: Expr, inputs: Mapping[str, Any], dtype: Any = None,
               values: Literal[False] = False, keep: dict[int, Any] | None = None,
               each: Callable[[Any], Any] | None = None) -> np.ndarray: ...
@overload
def numpy_eval(expr: Expr, inputs: Mapping[str, Any], dtype: Any = None, *,
               values: Literal[True], keep: None = None,
               each: Callable[[Any], Any] | None = None) -> dict[int, np.ndarray]: ...


def numpy_eval(expr: Expr, inputs: Mapping[str, Any], dtype: Any = None,
               values: bool = False, keep: dict[int, Any] | None = None,
               each: Callable[[Any], Any] | None = None) -> np.ndarray | dict[int, np.ndarray]:
    """The value of ``expr`` as written, op by op with the op table's numpy forwards.

    ``inputs`` maps input names to arrays (used as given: their dtype is kept).  Literals
    enter as Python floats, and an op of literals alone gives one, so ``2**64`` does not wrap
    around in int64 and a float32 input stays float32 in ``-4.0 + x``.  Floating-point warnings are silenced: 0/0 is nan, overflow is inf.
    Returns the root's value as an array (cast to ``dtype`` when given); with ``values``,
    every node's value instead, by ``id(node)`` (the root's under ``id(expr)``).  ``keep``: the nodes
    whose values are wanted besides the root's, by ``id``; their values are stored into it.  ``each``,
    when given, is applied to every leaf's and op's value (a 16-bit format's rounding, see precision).
    """
    seen: dict[int, np.ndarray] = {}
    steps = _plan(expr).steps
    out: list[Any] = [None] * len(steps)
    track = values or keep is not None or each is not None
    # evaluate()'s loop, inlined: per step a direct call of the forward, without the callbacks' overhead
    with np.errstate(all="ignore"):
        for i, (node, args, frees, kwargs, run) in enumerate(steps):
            if args is None:  # an input (by name) or a literal (its float)
                value = inputs[run] if isinstance(run, str) else run
            else:
                xs = list(map(out.__getitem__, args))
                value = run.forward(*xs, **kwargs)
                if isinstance(value, np.floating) and all(isinstance(a, float) for a in xs):
                    value = float(value)  # literals only (the -4.0 of -4.0 + x): stays weak, as the tape keeps it
                del xs
                for j in frees:  # freed promptly: numpy reuses the memory (as in a Python expression)
                    out[j] = None
            if track:
                if each is not None:
                    value = each(value)
                key = id(expr if node is None else node)
                if values:
                    seen[key] = np.asarray(value)
                elif keep is not None and key in keep:
                    keep[key] = np.asarray(value)
            out[i] = value
    root = out[-1]
    return seen if values else np.asarray(root, dtype=dtype)  # cast outside errstate, as before


def trace_inputs(fn: Callable[..., Any]) -> list[str]:
    """The input names of a traced function: its positional parameters without a default value
    (a parameter with a default is a constant, as Python reads it; one the body does not use is
    still an input)."""
    if isinstance(fn, Op):
        return ["x", "y", "z"][: fn.arity]
    return [
        p.name for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]


def trace(fn: Callable[..., Any]) -> Expr:
    """Build the IR of a Python function of symgrad ops (or numpy functions, or the tape's methods):
    ``fn`` is called on a ``Var`` per name of :func:`trace_inputs`; defaults stay Python's."""
    out = fn(*(Var(n) for n in trace_inputs(fn)))
    return as_expr(out)


# ---------------------------------------------------------------- printing

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "neg": 3, "**": 4}


def to_source(expr: Expr) -> str:
    """The expression in the language the parser reads (round-trips through ``parse``)."""

    def leaf(node: Expr) -> tuple[str, int]:
        if isinstance(node, Var):
            return node.name, 9
        assert isinstance(node, Const)
        if node.name:
            return node.name, 9
        text = repr(node.value)
        return text, (9 if node.value >= 0 else 3)

    def call(node: Call, children: list[tuple[str, int]]) -> tuple[str, int]:
        op = node.op
        if op.infix and op.arity == 2:
            prec = _PRECEDENCE[op.infix]
            (left, lp), (right, rp) = children
            # ** groups to the right, the others to the left; equal precedence on the
            # far side gets parentheses so the tree round-trips exactly
            if op.infix == "**":
                lpar, rpar = lp <= prec, rp < prec
            else:
                lpar, rpar = lp < prec, rp <= prec
            left = f"({left})" if lpar else left
            right = f"({right})" if rpar else right
            return f"{left} {op.infix} {right}" if prec == 1 else f"{left}{op.infix}{right}", prec
        if op is ops.neg:
            (inner, ip), = children
            return (f"-({inner})" if ip < 3 else f"-{inner}"), 3
        if op.printer is not None:
            return op.printer([c for c, _ in children], [p for _, p in children], **node.kwargs), 9
        args = [c for c, _ in children] + [f"{k}={v!r}" for k, v in node.params if v is not None]
        return f"{op.name}({', '.join(args)})", 9

    return evaluate(expr, leaf, call)[0]


from symgrad.ir import tracing  # noqa: E402  (it builds on the names above)

tracing.attach(Expr, as_expr)
