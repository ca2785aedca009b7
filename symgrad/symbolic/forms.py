"""The IR as sympy: forms of constants and ops, the scalar and object-array translations, and the
float and mpmath evaluation helpers that the engine and the kink detector share.

Below :mod:`symgrad.symbolic.engine` (which differentiates) and :mod:`symgrad.symbolic.kinks`
(which finds rounding across kinks); it imports neither.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import mpmath
import numpy as np
import sympy
from sympy.core.parameters import distribute

from symgrad.ir import ops
from symgrad.ir.expr import Call, Const, Expr, Var, evaluate, numpy_eval, to_source, variables
from symgrad.symbolic import functions as s
from symgrad.symbolic.compile import Compiled

__all__ = ["EXACT_DPS", "Keyed", "LetBindings", "apply_op", "as_real", "const_form", "fold", "fresh_name", "mp_eval", "object_array",
           "object_eval", "real_symbol", "rounding_error", "symbol_arrays", "to_sympy", "written_forward"]

EXACT_DPS = 50  # significant digits of the exact (mpmath) reference


def const_form(node: Const) -> sympy.Expr:
    if node.name == "pi":
        return sympy.pi
    if node.name == "e":
        return sympy.E
    v = node.value
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return sympy.Integer(int(v))
    v = float(v)
    if math.isfinite(v) and v.is_integer():
        return sympy.Integer(int(v))
    return sympy.Float(v)


def apply_op(op: ops.Op, args: Sequence[Any], params: dict[str, Any]) -> Any:
    """``op``'s sympy form.  A transcendental op of constants is evaluated in float64, as the tape
    evaluates it, so that sympy never has to decide facts about towers such as ``tan(3.45**4)``
    (which can take it minutes); pi, e and rational arithmetic (the ops written as operators) stay exact."""
    if op.infix is None and all(getattr(a, "is_number", False) for a in args):
        try:
            with np.errstate(all="ignore"):
                return sympy.Float(float(op.forward(*(float(a) for a in args), **params)))
        except TypeError:  # a complex constant: leave it to sympy
            pass
    assert op.sympy is not None, f"op {op.name!r} has no sympy form"
    return op.sympy(s, *args, **params)


def fold(node: Call, args: Sequence[Any]) -> sympy.Expr | None:
    """A transcendental op of constants, folded from the float64 forward of its subtree as written
    (as the tape computes it): sympy's exact arguments lose the sign of zero (``atan2(-0.0, -1.0)``
    is -pi in numpy, pi in sympy)."""
    if node.op.infix is not None or not all(getattr(a, "is_number", False) for a in args):
        return None
    leaves = [n for n in node.walk() if not isinstance(n, Call)]
    if any(isinstance(n, Var) for n in leaves) or not any(n.value == 0 for n in leaves):  # type: ignore[attr-defined]
        return None  # not constant (sympy cancelled the inputs), or no zero whose sign could matter
    value = written_forward(node, {})
    return sympy.Float(float(value)) if value.ndim == 0 and not np.isnan(value) else None


def real_symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, real=True)


def to_sympy(expr: Expr, symbols: dict[str, sympy.Symbol] | None = None,
             nodes: dict[int, Any] | None = None, rounding: list[sympy.Symbol] | None = None) -> sympy.Expr:
    """The scalar sympy form of an elementwise expression; inputs become real symbols.
    ``nodes``, when given, receives every call node's form by ``id(node)``.  ``rounding``, when given,
    receives one symbol ``e`` per value an engine rounds (each op's result, but a jump's), which is then
    ``value * (1 + e)``: its relative rounding error (see :mod:`symgrad.symbolic.rounding`)."""
    symbols = dict(symbols or {})
    taken = set(symbols)

    def leaf(node: Expr) -> sympy.Expr:
        if isinstance(node, Var):
            if node.name not in symbols:
                symbols[node.name] = real_symbol(node.name)
            return symbols[node.name]
        assert isinstance(node, Const)
        return const_form(node)

    def call(node: Call, args: list[Any]) -> sympy.Expr:
        if node.op.kind not in (ops.ELEMENTWISE, ops.CONDITION) or node.op.sympy is None:
            raise ValueError(f"to_sympy: {node.op.name} is not elementwise; use expanded mode")
        folded = fold(node, args)
        out = folded if folded is not None else apply_op(node.op, args, node.kwargs)
        if rounding is not None and not node.op.steps and node.op.kind == ops.ELEMENTWISE:
            out = rounding_error(out, rounding, taken)
        if nodes is not None:
            nodes[id(node)] = out
        return out

    return evaluate(expr, leaf, call)


def rounding_error(value: Any, errors: list[sympy.Symbol], taken: set[str]) -> Any:
    """``value * (1 + e)`` with a fresh symbol ``e`` appended to ``errors``; a constant as it is."""
    if not isinstance(value, sympy.Expr) or not value.free_symbols:
        return value
    errors.append(real_symbol(fresh_name(f"rounding_{len(errors)}", taken)))
    return value * (1 + errors[-1])


_KEYS: weakref.WeakKeyDictionary[Expr, tuple[str, tuple[str, ...]]] = weakref.WeakKeyDictionary()


class Keyed:
    """An expression hashed by its source text, so equal expressions share cached sympy work."""

    __slots__ = ("expr", "key")

    def __init__(self, expr: Expr):
        self.expr = expr
        key: Any = _KEYS.get(expr)  # printing costs a walk of the tree: once per tree
        if key is None:
            try:  # the names too: a Var "pi" prints like the constant pi
                key = _KEYS[expr] = (to_source(expr), tuple(variables(expr)))
            except Exception:  # pragma: no cover - unprintable: cache by identity
                key = id(expr)
        self.key: Any = key

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Keyed) and other.key == self.key


def symbol_arrays(shapes: tuple[tuple[str, tuple[int, ...]], ...]) -> dict[str, np.ndarray]:
    """One real symbol per element, named ``x_0_1``; a name taken twice (an input ``x_0`` beside an
    array ``x``) gets underscores prepended until unique.  Plain symbols, never Dummies: lambdify
    rewrites the whole expression once per argument when any argument is a Dummy."""
    taken: set[str] = set()
    out: dict[str, np.ndarray] = {}
    for name, shape in shapes:
        arr = np.empty(shape, dtype=object)
        for idx in np.ndindex(*shape):
            arr[idx] = real_symbol(fresh_name("_".join([name, *map(str, idx)]) if idx else name, taken))
        out[name] = arr
    return out


def fresh_name(name: str, taken: set[str]) -> str:
    while name in taken:
        name = "_" + name
    taken.add(name)
    return name


def object_array(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    out = np.empty((), dtype=object)
    out[()] = value
    return out


class LetBindings:
    """``object_eval``'s ``bind``: each non-atomic element it is given becomes a fresh real symbol
    ``_t<k>`` (a name not in ``taken``, which it extends); ``defs`` maps the symbols to their
    expressions, in the order bound (each may use the earlier ones).

    Inside an element, each *wide* subexpression (of ``WIDE`` symbols or more: the sum that a mean
    divides, the determinant that an inverse divides by) is bound first, innermost first, and an
    expression bound twice is one symbol; the element's derivatives then go through the names (see
    the engine's reverse sweep) instead of repeating the whole row in each.  Piecewise subtrees are
    left as they are."""

    WIDE = 4

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self.defs: dict[sympy.Symbol, sympy.Expr] = {}
        self._bound: dict[sympy.Expr, sympy.Symbol] = {}
        self._free: dict[sympy.Basic, int] = {}

    def __call__(self, e: Any) -> Any:
        if not isinstance(e, sympy.Basic) or e.is_Atom:
            return e
        return self._symbol(self._hoist(e, {}))

    def _symbol(self, e: sympy.Expr) -> Any:
        if e.is_Atom:
            return e
        t = self._bound.get(e)
        if t is None:
            t = self._bound[e] = real_symbol(fresh_name(f"_t{len(self.defs)}", self.taken))
            self.defs[t] = e
        return t

    def _width(self, e: sympy.Basic) -> int:
        n = self._free.get(e)
        if n is None:
            n = self._free[e] = len(e.free_symbols)
        return n

    def _hoist(self, e: sympy.Basic, seen: dict[sympy.Basic, sympy.Basic]) -> sympy.Basic:
        if e.is_Atom or not e.args or e.is_Piecewise:  # a branch stays lazy (mpmath evaluates the chosen one)
            return e
        out = seen.get(e)
        if out is not None:
            return out
        args = [self._wide(self._hoist(a, seen)) for a in e.args]
        out = e if all(a is b for a, b in zip(args, e.args)) else e.func(*args)
        seen[e] = out
        return out

    def _wide(self, e: sympy.Basic) -> sympy.Basic:
        if isinstance(e, sympy.Expr) and not e.is_Atom and self._width(e) >= self.WIDE:
            return self._symbol(e)
        return e


def object_eval(expr: Expr, arrays: dict[str, np.ndarray],
                 bind: Callable[[Any], Any] | None = None, nodes: dict[int, Any] | None = None) -> np.ndarray:
    """Evaluate the IR on object arrays of sympy expressions.

    ``bind`` names each element a reduction or ``@`` computes (a let-bound symbol): every use
    then shares it, instead of sympy distributing ``sum(x)/64`` into each of 64 differences
    and differentiating 64 copies of it.  ``nodes``, when given, receives every call node's array.
    """

    def leaf(node: Expr) -> np.ndarray:
        return arrays[node.name] if isinstance(node, Var) else object_array(const_form(node))  # type: ignore[arg-type]

    def call(node: Call, args: list[np.ndarray]) -> np.ndarray:
        op, params = node.op, node.kwargs
        if op.sympy is None:
            raise ValueError(f"op {op.name} has no sympy form")
        if op.kind in (ops.ELEMENTWISE, ops.CONDITION):
            folded = fold(node, [a[()] for a in args]) if all(a.shape == () for a in args) else None
            if folded is not None:
                return object_array(folded)
            fn = np.frompyfunc(lambda *a: apply_op(op, a, params), op.arity, 1)
            return object_array(fn(*args))
        # expanded mode: sympy must not distribute a reduction's 1/n over its sum (the ``x - sum(x)/n`` of a
        # variance would hold the whole row), so that the sum is one subexpression that ``bind`` names
        with distribute(False) if bind is not None else contextlib.nullcontext():
            out = object_array(op.sympy(s, *args, **params))
        if bind is not None and op is not ops.transpose and op.kind != ops.SHAPE:  # these only move elements
            out = object_array(np.frompyfunc(bind, 1, 1)(out))
        return out

    def keep(node: Call, args: list[np.ndarray]) -> np.ndarray:
        out = call(node, args)
        if nodes is not None:
            nodes[id(node)] = out
        return out

    return evaluate(expr, leaf, keep)


def as_real(x: Any) -> np.ndarray:
    """float64 array; complex results (outside the real domain) become nan."""
    x = np.asarray(x)
    if np.iscomplexobj(x):
        x = np.where(x.imag == 0, x.real, np.nan)
    return x.astype(np.float64, copy=False)


def _mp_real(v: Any) -> Any:
    if isinstance(v, mpmath.mpc):
        return v.real if v.imag == 0 else mpmath.mpf("nan")
    if isinstance(v, mpmath.mpf):
        return v
    try:
        return mpmath.mpf(v)
    except (TypeError, ValueError):
        v = complex(v)
        return mpmath.mpf(v.real) if v.imag == 0 else mpmath.mpf("nan")


def mp_eval(c: Compiled, rows: Iterable[list[Any]], fallback: np.ndarray) -> np.ndarray:
    """mpmath values of every output at every row of arguments; ``fallback[k, i]`` where mpmath fails."""
    out = np.empty(fallback.shape, dtype=object)
    for i, args in enumerate(rows):
        try:
            vals = [_mp_real(v) for v in c.mpmath(*args)]
        except Exception:  # ZeroDivisionError etc. at a singular point: output by output
            vals = []
            for k in range(len(c.outputs)):
                try:
                    vals.append(_mp_real(c.mpmath_one(k)(*args)[0]))
                except Exception:
                    vals.append(mpmath.mpf(float(fallback[k, i])))
        out[:, i] = vals
    return out


def written_forward(expr: Expr, arrays: dict[str, np.ndarray],
                    written: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """The expression's value as written, op by op with the table's numpy forwards.

    sympy simplifies while it builds (``x/x`` is 1, ``x*log(x) - x*log(x)`` is 0), which is
    right wherever the expression is defined.  Where the expression as written is not (0/0,
    log of a negative, inf - inf), this is nan, and the reference marks that point undefined
    instead of checking the tape against a value the written expression never has.
    """
    if written is not None:  # already evaluated, every node (``numpy_eval(..., values=True)``)
        return np.asarray(written[id(expr)], dtype=np.float64)
    return numpy_eval(expr, arrays, np.float64)
