"""Rounding across a kink: where the float forward and the exact value take different branches.

An engine decides the branch at every kink, tie and jump from its float forward of the
expression as written; the reference decides it from sympy's exact form.  The two agree
except where rounding puts the kink argument (``Op.kink_at``: ``x`` for abs, ``x - y`` for
maximum, the distance from the extremum for max) on the other side of the kink, or exactly
on it: ``abs(sqrt(x*x + 1.0) - hypot(x, y))`` is 2.2e-16 in floats and 0 to sympy.  There
the derivative depends on a rounding error, so the element is *at a kink (rounding)*:
counted, never compared.  Everywhere else both branches are the float forward's, and the
exact derivative on it is the reference.

The float forward is :func:`numpy_eval` in the case's dtype (inputs and literals rounded to
it); the exact kink argument is the reference's own form, evaluated as the reference is
(float64, or mpmath for ``reference: exact``).  Both kink arguments equal to zero (``abs'(0)``
at ``x = 0``) is no rounding: that convention is compared as usual.

That rule assumes an engine rounds every op as numpy does.  It does for the ops IEEE 754 rounds once
or that only select and move values (``Op.correctly_rounded``), not for libm functions: torch's
``sinh(erfc(-1.0))`` is an ulp above numpy's, so a tie numpy's forward finds between a tensor's
``sinh(erfc(x))`` and a constant folded by numpy is no tie in torch.  So where a kink argument built
from values that another libm may round differently (:func:`_uncertain`) is 0 or within
``LIBM_ULPS`` ulps of it (:func:`_libm_marks`), the element is at a kink (rounding) as well.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import mpmath
import numpy as np
import sympy

from symgrad.ir import ops
from symgrad.ir.expr import Call, Expr, Var, numpy_eval, variables
from symgrad.ir.precision import epsilon, is_narrow, narrow_eval, round_to
from symgrad.symbolic.compile import Compiled
from symgrad.symbolic.forms import (
    EXACT_DPS,
    Keyed,
    LetBindings,
    as_real,
    const_form,
    mp_eval,
    object_array,
    object_eval,
    real_symbol,
    symbol_arrays,
    to_sympy,
)

__all__ = ["crossings", "rounding_kinks"]

Seq = tuple[str, ...]


def rounding_kinks(expr: Expr, arrays: dict[str, np.ndarray], seqs: Sequence[Seq], dtype: np.dtype,
                   exact: bool, elementwise: bool, floats: dict[int, np.ndarray] | None = None) -> dict[Seq, np.ndarray]:
    """Per derivative sequence, the elements at a kink (rounding); only sequences with some.  The empty
    sequence ``()``, when asked for, is the forward value: at a jump (``Op.jumps``) rounding moves the
    value itself, so the elements whose value a marked jump feeds are at a kink too.

    ``arrays`` are the inputs already rounded to ``dtype`` (held as float64); ``expr`` is the
    elementwise inner expression (sum/mean chain peeled) or the whole expanded one.  ``floats`` is the
    float forward when the caller has it already (``numpy_eval(expr, typed, values=True)``).
    """
    nodes = [n for n in expr.walk() if isinstance(n, Call) and n.op.kink_at is not None]
    if not nodes or not seqs or seqs == [()]:
        return {}
    narrow = is_narrow(dtype)  # float16, bfloat16: each op in float32, rounded to the format
    typed = {n: (round_to(a, dtype) if narrow else a.astype(dtype)) for n, a in arrays.items()}
    if floats is None:
        floats = narrow_eval(expr, typed, dtype) if narrow else numpy_eval(expr, typed, values=True)
    exacts = (_elementwise_exact if elementwise else _expanded_exact)(expr, nodes, arrays, exact)
    centers = [_kink_value(node, floats) for node in nodes]
    libm = _libm_marks(expr, nodes, centers, floats, dtype)
    marks = []
    for node, center, e, near in zip(nodes, centers, exacts, libm, strict=True):
        at = _disagree(center, e)
        if near is not None:
            at = at | near
        if at.any():
            marks.append((node, at))
    if not marks:
        return {}
    if elementwise:
        return _elementwise_marks(marks, np.shape(floats[id(expr)]), arrays, seqs)
    return _expanded_marks(marks, typed, arrays, seqs)


def crossings(expr: Expr, names: Sequence[str], base: Sequence[np.ndarray],
              shape: Any = None) -> Callable[..., Any] | None:
    """A test of moved inputs (``base``, the arrays of ``names``, each moved by a rounding error: how the
    float32 conditioning slack samples an ideal engine, see ``engine._spread``): ``moved(args, where)``
    tells where the move puts an element of ``expr`` on another side of a kink, tie or jump than ``base``
    is.  For an elementwise ``expr``, a mask of ``shape``, looked at only where ``where`` is set (the
    elements whose sample would widen); otherwise (``shape`` None) whether it does anywhere.  An engine
    given ``base`` never crosses there (``sign`` of an exact 0 is 0), so such a sample is no rounding of
    its.  None: ``expr`` has no kink."""
    nodes = [n for n in expr.walk() if isinstance(n, Call) and n.op.kink_at is not None]
    if not nodes:
        return None

    def sides(args: Sequence[np.ndarray], pick: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        inputs = {n: pick(np.asarray(a, dtype=np.float64)) for n, a in zip(names, args)}
        out = []
        # each kink's own subtree, not the whole expression: kinks sit low (relu(x), abs(x - y)) more often than not
        for node in nodes:
            at = _kink_value(node, numpy_eval(node, inputs, values=True))
            with np.errstate(invalid="ignore"):
                out.append((at > 0, at < 0))  # above, below; neither: on it (or nan)
        return out

    def crossed(args: Sequence[np.ndarray], pick: Any) -> list[np.ndarray]:
        return [(a != a0) | (b != b0) for (a, b), (a0, b0) in zip(sides(args, pick), sides(base, pick))]

    def moved(args: Sequence[np.ndarray], where: Any = None) -> Any:
        if shape is None:
            return any(bool(d.any()) for d in crossed(args, lambda a: a))
        at = np.flatnonzero(np.broadcast_to(True if where is None else where, shape))
        out = np.zeros(shape, dtype=bool)
        if at.size:  # the elements looked at, each input broadcast to the whole shape
            hit = functools.reduce(np.logical_or, (np.broadcast_to(d, at.shape) for d in crossed(
                args, lambda a: np.broadcast_to(a, shape).reshape(-1)[at])))
            out.reshape(-1)[at] = hit
        return out

    return moved


def _kink_value(node: Call, values: dict[int, np.ndarray]) -> np.ndarray:
    with np.errstate(all="ignore"):
        assert node.op.kink_at is not None
        out = node.op.kink_at(values[id(node)], *(values[id(a)] for a in node.args), **node.kwargs)
    return np.asarray(out, dtype=np.float64)


def _disagree(f: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Where the two kink arguments fall on different sides (0 being a side of its own)."""
    with np.errstate(invalid="ignore"):
        return np.asarray((np.sign(f) != np.sign(e)) & ~np.isnan(f) & ~np.isnan(e))


# How far (in ulps of the largest term it is built from) a kink argument that depends on libm values may be
# from 0 and still be put on it, or across it, by another engine: a libm result is within an ulp of
# numpy's in glibc, SLEEF and the like (torch's own erfc, lgamma, digamma a few), and a chain of two
# such ops, or the difference of two such values, adds their errors.  4 covers those and nothing
# wider: an argument 5 ulps from its kink is compared as usual, so a wrong branch there still fails.
LIBM_ULPS = 4


def _exact(value: Any, args: list[Any]) -> np.ndarray:
    """Where a libm op's result is the same in every engine: it returns one of its arguments (elu or
    leaky_relu above 0, sin or tanh of a tiny number), or a special value at a special argument."""
    v = np.asarray(value, dtype=np.float64)
    out = _special(v)
    if out.any():  # rarely: a libm value is seldom one of these
        at_special = np.zeros((), dtype=bool)
        for a in args:
            at_special = at_special | _special(a)
        out = out & at_special
    for a in args:
        out = out | (v == a)
    return np.asarray(out)


def _special(a: Any) -> np.ndarray:
    """Where ``a`` is 0, +-1/2, +-1 or +-inf: the values a libm op returns exactly at arguments among them
    (sin(0) = 0, exp(0) = 1, log(1) = 0, tanh(inf) = 1, sigmoid(0) = 1/2, pow(x, 0) = 1), as C's Annex F
    and the ops' definitions fix them in every engine."""
    m = np.abs(np.asarray(a, dtype=np.float64))
    return np.asarray((m == 0) | (m == 0.5) | (m == 1) | (m == np.inf))


def _uncertain(expr: Expr, floats: dict[int, np.ndarray], dtype: np.dtype, terms: _Terms,
               bounds: _Bounds, centers: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Per node, where its float value may be an ulp or more from another engine's: an op below it or
    itself is not ``correctly_rounded``, at an element where :func:`_exact` does not fix its result; not
    through a jump.  A selection (``Op.selects``: maximum, relu, where) is as uncertain as the argument it
    returns, and near its kink (see :func:`_selection`; ``centers`` holds the kink nodes' kink arguments).
    An op that only moves or selects values (``linear`` and ``correctly_rounded``: a transpose, an index)
    carries its arguments' marks with them.  Any other op that mixes elements (a sum, ``@``) is uncertain
    everywhere if anything below it is, or if it is not correctly rounded and not exact (each argument
    special, or one element that it returns)."""
    unc: dict[int, np.ndarray] = {}
    for node in expr.walk():
        if not isinstance(node, Call) or node.op.steps:
            # a step's value (sign, floor, a condition) changes only where its own argument crosses the jump,
            # and there this node is marked, with everything its value feeds (see _elementwise_marks)
            unc[id(node)] = np.zeros((), dtype=bool)
            continue
        below = [unc[id(a)] for a in node.args]
        value = floats[id(node)]
        if node.op.kind in (ops.ELEMENTWISE, ops.CONDITION):
            m = functools.reduce(np.logical_or, below, np.zeros((), dtype=bool))
            if node.op.selects and m.any():
                m = _selection(node, below, floats, dtype, terms, bounds, centers.get(id(node)))
            elif not node.op.correctly_rounded and not m.all():
                with np.errstate(all="ignore"):
                    m = m | ~_exact(value, [floats[id(a)] for a in node.args])
            if node.op.zero_absorbs and m.any():
                m = m & ~_absorbed(node, below, floats)
        elif node.op.linear and node.op.correctly_rounded:
            # it only moves or selects values (transpose, reshape, index, concatenate, ...): the marks move
            # with them, as the op itself moves a 0/1 mask (an element is uncertain where an uncertain one lands)
            masks = [np.broadcast_to(b, np.shape(floats[id(a)])).astype(np.float64) for a, b in zip(node.args, below)]
            m = np.asarray(node.op.forward(*masks, **node.kwargs)) != 0
        else:  # exact when every argument is: a sum of zeros, of one element
            args = [np.asarray(floats[id(a)], dtype=np.float64) for a in node.args]
            v = np.asarray(value, dtype=np.float64)
            own = not node.op.correctly_rounded and not all(
                (a.size == 1 and bool(np.all(v == a))) or (_special(a).all() and _special(v).all())
                for a in args)
            m = np.full(np.shape(value), own or any(b.any() for b in below))
        unc[id(node)] = np.asarray(m)
    return unc


def _absorbed(node: Call, below: list[np.ndarray], floats: dict[int, np.ndarray]) -> np.ndarray:
    """Where an argument of ``Op.zero_absorbs`` is a certain 0 and every argument is finite: the result is
    an exact 0 in every engine (``relu(x)*sin(y)`` at ``x < 0``).  Its sign may follow an uncertain argument's,
    which no kink sees (``np.sign(-0.0) == 0``); the ops that read it (copysign's sign, 1/x) have 0 outside
    their domain."""
    args = [np.asarray(floats[id(a)], dtype=np.float64) for a in node.args]
    with np.errstate(invalid="ignore"):
        finite = functools.reduce(np.logical_and, [np.isfinite(a) for a in args])
        zero = functools.reduce(np.logical_or, [~below[i] & (args[i] == 0) for i in node.op.zero_absorbs])
    return np.asarray(finite & zero)


def _selection(node: Call, below: list[np.ndarray], floats: dict[int, np.ndarray], dtype: np.dtype,
               terms: _Terms, bounds: _Bounds, center: np.ndarray | None) -> np.ndarray:
    """Where a selection's value may be another engine's: where it is (or equals) an uncertain argument, or
    is nan, or where moving the uncertain arguments by their libm error could make it return another one
    (:func:`_corners` at its kink).  Elsewhere it returns a certain argument or a constant, the same in every
    engine: ``relu(sin(x))`` at ``x = -1`` is an exact 0 under whatever ``abs`` or ``relu`` comes next.
    ``where`` has no kink of its own: a comparison as its condition is a jump, marked with everything it
    feeds where another libm could flip it; any other condition carries its own marks."""
    value = np.asarray(floats[id(node)], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        m = np.isnan(value) & functools.reduce(np.logical_or, below)
        for a, b, domain in zip(node.args, below, itertools.cycle(node.op.domain)):
            # a condition that is a number (where(sin(x), ...): its truth, c != 0) has no jump marked: its marks stay
            chosen = True if domain is ops.Domain.CONDITION else value == np.asarray(floats[id(a)], dtype=np.float64)
            m = m | (b & chosen)
    m = np.broadcast_to(m, value.shape)
    if center is None or not _may_reach(node, center, floats, dtype, bounds):
        return np.asarray(m)
    with np.errstate(all="ignore"):
        return np.asarray(m | _corners(node, center, _moves(node, below, terms, dtype), floats))


class _Terms:
    """What an op's ``error_scale`` reads, per element: at the node it is :meth:`at`, its arguments'
    sizes (``s``) and magnitudes (``v``) and its own magnitude (``ans``)."""

    def __init__(self, floats: dict[int, np.ndarray]):
        self.floats = floats
        self.mags: dict[int, Any] = {}  # magnitudes, by node: each computed once
        self.sizes: dict[int, Any] = {}  # what _sizes found, by node
        self.node: Call | None = None
        self.ans: Any = None
        self.s: list[Any] = []
        self.v: list[Any] = []

    def magnitude(self, node: Expr) -> Any:
        if id(node) not in self.mags:
            self.mags[id(node)] = np.abs(np.asarray(self.floats[id(node)], dtype=np.float64))
        return self.mags[id(node)]

    def at(self, node: Call) -> _Terms:
        self.node, self.ans = node, self.magnitude(node)
        self.s = [self.sizes[id(a)] for a in node.args]
        self.v = [self.magnitude(a) for a in node.args]
        return self

    def over(self, x: Any, i: int) -> Any:
        return x / self.v[i]

    def pick(self, i: int, a: Any, b: Any) -> Any:
        assert self.node is not None
        return np.where(np.asarray(self.floats[id(self.node.args[i])], dtype=bool), a, b)


class _Bounds(_Terms):
    """The same over all elements at once: the largest finite magnitudes, the smallest nonzero divisor,
    either branch of a where; an upper bound on what :class:`_Terms` gives at any element."""

    def magnitude(self, node: Expr) -> Any:
        if id(node) not in self.mags:
            self.mags[id(node)] = _largest(self.floats[id(node)])
        return self.mags[id(node)]

    def over(self, x: Any, i: int) -> Any:
        assert self.node is not None
        return x / _smallest(self.floats[id(self.node.args[i])], nonzero=True)

    def pick(self, i: int, a: Any, b: Any) -> Any:
        return np.maximum(a, b)


def _sizes(roots: Sequence[Expr], terms: _Terms) -> dict[int, Any]:
    """Per node below ``roots``, the size of the largest term its value is built from by the ops'
    ``error_scale`` (sums and products): an ulp of that term is what another libm moves it by
    (``sinh(erfc(x)) - 3.0775`` is 0 or 4e-16, not an ulp of 0).  Per element with :class:`_Terms`, a bound
    over all elements with :class:`_Bounds` (each node's found once, kept in ``terms.sizes``)."""
    sizes = terms.sizes
    for root in roots:
        for node in root.walk():
            if id(node) in sizes:
                continue
            if isinstance(node, Call) and node.op.error_scale is not None:
                sizes[id(node)] = node.op.error_scale(terms.at(node))
            else:
                sizes[id(node)] = terms.magnitude(node)
    return sizes


def _moves(node: Call, marks: Sequence[np.ndarray], terms: _Terms, dtype: np.dtype) -> list[np.ndarray]:
    """How far another libm may move each argument of ``node``: ``LIBM_ULPS`` ulps of its scale where it is
    uncertain (``marks``), nothing elsewhere."""
    scales = _sizes(node.args, terms)
    return [np.where(m, _ulps(scales[id(a)], dtype), 0.0) for a, m in zip(node.args, marks)]


def _ulps(scale: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``LIBM_ULPS`` ulps of ``scale`` in ``dtype`` (the least subnormal's worth at 0, nothing at inf)."""
    _, exp = np.frexp(scale)
    ulp = np.ldexp(epsilon(dtype) / 2, exp)
    return LIBM_ULPS * np.where(scale > 0, ulp, 5e-324) * np.isfinite(scale)  # inf, nan: no value to move


def _libm_marks(expr: Expr, nodes: list[Call], centers: list[np.ndarray], floats: dict[int, np.ndarray],
                dtype: np.dtype) -> list[np.ndarray | None]:
    """Per kink node, where another engine's libm could put its argument on the other side of the kink or
    on it (None: nowhere).  Each uncertain argument moves by ``LIBM_ULPS`` ulps of its scale, both ways: an
    element is marked where a corner of that box changes the kink argument's sign (or, at a jump, the
    forward value).  A max or min reduction is marked where two or more elements, one uncertain, are
    that close to the extremum (one alone is the extremum, no tie)."""
    bounds = _Bounds(floats)
    todo = [n for n, c in zip(nodes, centers) if _may_reach(n, c, floats, dtype, bounds)]
    if not todo:
        return [None] * len(nodes)
    terms = _Terms(floats)
    unc = _uncertain(expr, floats, dtype, terms, bounds, {id(n): c for n, c in zip(nodes, centers)})
    if not any(unc[id(a)].any() for n in todo for a in n.args):
        return [None] * len(nodes)
    out: list[np.ndarray | None] = []
    with np.errstate(all="ignore"):
        for node, center in zip(nodes, centers):
            if node not in todo:
                out.append(None)
                continue
            moves = _moves(node, [unc[id(a)] for a in node.args], terms, dtype)
            if not any(m.any() for m in moves):
                out.append(None)
                continue
            if node.op.kind == ops.REDUCTION:
                out.append(_tie_near(node, center, moves[0], unc[id(node.args[0])], floats))
                continue
            out.append(_corners(node, center, moves, floats))
    return out


def _may_reach(node: Call, center: np.ndarray, floats: dict[int, np.ndarray], dtype: np.dtype,
               bounds: _Bounds) -> bool:
    """Whether any element of ``node``'s kink argument is close enough to 0 for :func:`_corners` to mark
    it, bounded cheaply first (most checks have none): nothing below it is a libm op, its two arguments are
    the same expression, or each argument's largest move (from a bound on its scale over all elements)
    cannot reach the kink anywhere."""
    if all(not isinstance(n, Call) or n.op.correctly_rounded for n in node.walk()):
        return False
    if len(node.args) == 2 and (node.args[0] is node.args[1] or str(node.args[0]) == str(node.args[1])):
        return False  # maximum(sin(x), sin(x)): one computation twice, a tie in every engine
    if node.op.kind == ops.REDUCTION:  # 0 at the extremum itself: _tie_near counts the others
        return True
    with np.errstate(all="ignore"):
        sizes = [float(_sizes([a], bounds)[id(a)]) for a in node.args]
        if not all(math.isfinite(b) for b in sizes):  # overflowed: no cheap answer
            return True
        d = sum(float(_ulps(np.float64(b), dtype)) for b in sizes)
        mag = sum(_largest(floats[id(a)]) for a in node.args)
        return _smallest(center) <= d * (1.0 + 2.0 * mag) + d * d


def _largest(value: np.ndarray) -> float:
    """The largest finite magnitude in ``value`` (0 if none), without a temporary in the usual case."""
    a = np.asarray(value, dtype=np.float64)
    if a.size == 0:
        return 0.0
    m = max(float(a.max()), -float(a.min()))
    if math.isfinite(m):
        return m
    a = np.abs(a[np.isfinite(a)])
    return float(a.max()) if a.size else 0.0


def _smallest(value: np.ndarray, nonzero: bool = False) -> float:
    """The smallest magnitude in ``value`` but nan (and 0, with ``nonzero``; 1 if none), without a temporary
    in the usual case."""
    a = np.asarray(value, dtype=np.float64)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (1.0, 1.0)
    if math.isnan(lo) or math.isnan(hi) or (nonzero and lo <= 0 <= hi):
        a = a[~np.isnan(a) & ((a != 0) if nonzero else True)]
        lo, hi = (float(a.min()), float(a.max())) if a.size else (1.0, 1.0)
    return lo if lo > 0 else -hi if hi < 0 else float(np.abs(a).min())


def _corners(node: Call, center: np.ndarray, moves: list[np.ndarray], floats: dict[int, np.ndarray]) -> np.ndarray:
    """Where moving each argument of ``node`` by its ``moves``, either way, changes the sign of its kink
    argument ``center`` or, at a jump, its value.  Only where ``center`` is small enough for that (every
    kink argument in the table is x, x - y, x - ans or (x - lo)*(x - hi): it changes by at most
    ``d*(1 + 2*sum|args|) + d*d`` when its arguments move by ``d`` in all) is the box evaluated."""
    shape = np.broadcast_shapes(center.shape, np.shape(floats[id(node)]), *(np.shape(m) for m in moves))
    center = np.broadcast_to(center, shape)  # copysign(0.0, exp(x)): the kink argument is one number
    vals = [np.broadcast_to(np.asarray(floats[id(a)], dtype=np.float64), shape) for a in node.args]
    moves = [np.broadcast_to(m, shape) for m in moves]
    d = functools.reduce(np.add, moves)
    reach = d * (1.0 + 2.0 * functools.reduce(np.add, [np.abs(v) for v in vals])) + d * d
    near = np.abs(center) <= reach  # nan: False
    flipped = np.zeros(shape, dtype=bool)
    if not near.any():
        return flipped
    ans, kink_at = np.broadcast_to(floats[id(node)], shape)[near], node.op.kink_at
    assert kink_at is not None
    c, vals, moves = center[near], [v[near] for v in vals], [m[near] for m in moves]
    hit = np.zeros(c.shape, dtype=bool)
    alone = Call(node.op, tuple(Var(f"arg{i}") for i in range(len(vals))), node.params)  # the op, on the moved values
    for signs in itertools.product((-1.0, 1.0), repeat=len(vals)):
        moved = [v + s * m for v, s, m in zip(vals, signs, moves)]
        hit = hit | (np.sign(np.asarray(kink_at(ans, *moved, **node.kwargs), dtype=np.float64)) != np.sign(c))
        if node.op.steps:
            hit = hit | (numpy_eval(alone, {f"arg{i}": m for i, m in enumerate(moved)}) != ans)
    flipped[near] = hit
    return flipped


def _tie_near(node: Call, center: np.ndarray, move: np.ndarray, unc: np.ndarray, floats: dict[int, np.ndarray]) -> np.ndarray:
    """The elements of a max or min reduction another libm could tie or reorder with its extremum."""
    x = np.asarray(floats[id(node.args[0])])
    axes = ops.normalize_axes(node.kwargs.get("axis"), x.ndim)
    move = np.broadcast_to(move, center.shape)
    extremum = np.where(center == 0, move, 0.0).max(axis=axes, keepdims=True)  # the extremum moves too
    near = np.abs(center) <= move + extremum
    tied = near.sum(axis=axes, keepdims=True) >= 2
    some = (near & np.broadcast_to(unc, near.shape)).any(axis=axes, keepdims=True)
    return np.asarray(near & tied & some)


def _form(a: Expr, forms: dict[int, Any], leaf: Any) -> Any:
    return forms[id(a)] if isinstance(a, Call) else leaf(a)


def _kink_forms(nodes: list[Call], forms: dict[int, Any], leaf: Any) -> list[Any]:
    return [n.op.kink_at(forms[id(n)], *(_form(a, forms, leaf) for a in n.args), **n.kwargs) for n in nodes]  # type: ignore[misc]


def _values(compiled: Compiled, args: list[Any], exact: bool, count: int) -> list[np.ndarray]:
    """The compiled outputs at one row of arguments per element (``count`` rows), as float64
    arrays; with ``exact``, the sign of the mpmath value (what the exact reference branches on)."""
    with np.errstate(all="ignore"):
        raw = [np.broadcast_to(as_real(v), (count,)) for v in compiled.numpy(*args)]
    if not exact or not raw:
        return raw
    with mpmath.workdps(EXACT_DPS):
        cols = [np.broadcast_to(np.asarray(a, dtype=np.float64), (count,)) for a in args]
        rows = ([mpmath.mpf(float(c[i])) for c in cols] for i in range(count))
        mp = mp_eval(compiled, rows, np.stack(raw))
        return [np.array([float(mpmath.sign(v)) if not mpmath.isnan(v) else np.nan for v in row])
                for row in mp]


def _elementwise_forms(expr: Expr) -> tuple[list[str], Compiled]:
    """The kink arguments of an elementwise expression, compiled (kink nodes in walk order)."""
    nodes = [n for n in expr.walk() if isinstance(n, Call) and n.op.kink_at is not None]
    names = variables(expr)
    syms = {n: real_symbol(n) for n in names}
    forms: dict[int, Any] = {}
    to_sympy(expr, syms, forms)
    exprs = _kink_forms(nodes, forms, lambda a: syms[a.name] if isinstance(a, Var) else const_form(a))
    return names, Compiled([syms[n] for n in names], [sympy.sympify(e) for e in exprs])


_cached_forms = functools.lru_cache(maxsize=256)(lambda keyed: _elementwise_forms(keyed.expr))


def _elementwise_exact(expr: Expr, nodes: list[Call], arrays: dict[str, np.ndarray], exact: bool) -> list[Any]:
    names, compiled = _cached_forms(Keyed(expr))
    if len(compiled.outputs) != len(nodes):  # an equal text with other sharing (a traced u + u)
        names, compiled = _elementwise_forms(expr)
    shape = np.broadcast_shapes(*(arrays[n].shape for n in names)) if names else ()
    flat = [np.broadcast_to(arrays[n], shape).ravel() for n in names]
    out = _values(compiled, flat, exact, int(np.prod(shape, dtype=np.int64)))
    return [v.reshape(shape) for v in out]


def _expanded_exact(expr: Expr, nodes: list[Call], arrays: dict[str, np.ndarray], exact: bool) -> list[Any]:
    names = variables(expr)
    syms = symbol_arrays(tuple((n, arrays[n].shape) for n in names))
    flat_syms = [x for n in names for x in syms[n].ravel()]
    bind = LetBindings({str(x) for x in flat_syms})  # let-bound as the reference binds them, so both evaluate alike
    defs = bind.defs
    forms: dict[int, Any] = {}
    object_eval(expr, syms, bind, forms)
    leaf = lambda a: syms[a.name] if isinstance(a, Var) else object_array(const_form(a))  # noqa: E731
    kinks = [np.asarray(k, dtype=object) for k in _kink_forms(nodes, forms, leaf)]
    outputs = [sympy.sympify(e) for k in kinks for e in k.ravel()]
    args = [np.float64(a) for n in names for a in arrays[n].ravel()]
    vals = _values(Compiled(flat_syms, outputs, list(defs.items()), stored=True), args, exact, 1)  # as the reference
    out, start = [], 0
    for k in kinks:
        out.append(np.array([v[0] for v in vals[start : start + k.size]]).reshape(k.shape))
        start += k.size
    return out


def _elementwise_marks(marks: list[tuple[Call, np.ndarray]], shape: tuple[int, ...],
                       arrays: dict[str, np.ndarray], seqs: Sequence[Seq]) -> dict[Seq, np.ndarray]:
    """Element k of the output feeds only element k of each (broadcast) input: a derivative is at a
    kink where a kink it differentiates through (one fed by a name of its sequence) is, or where a
    jump is (its value may scale any derivative: ``y * sign(x)`` in y, ``where(x > 0, y, 0)``)."""
    fed = [(set(variables(node)), np.broadcast_to(at, shape)) for node, at in marks]
    out: dict[Seq, np.ndarray] = {}
    jumped = np.logical_or.reduce([np.broadcast_to(at, shape) for node, at in marks if node.op.jumps]
                                  or [np.zeros(shape, dtype=bool)])
    if () in seqs and jumped.any():
        out[()] = jumped
    for seq in seqs:
        if not seq:
            continue
        m = jumped.copy()
        for names, at in fed:
            if names & set(seq):
                m = m | at
        if m.any():
            out[seq] = ops.unbroadcast(m.astype(np.float64), arrays[seq[-1]].shape) > 0
    return out


def _expanded_marks(marks: list[tuple[Call, np.ndarray]], typed: dict[str, np.ndarray],
                    arrays: dict[str, np.ndarray], seqs: Sequence[Seq]) -> dict[Seq, np.ndarray]:
    """Which input elements feed a kink at rounding, found by nan propagation (one float forward of the
    kinked node per input element; expanded mode is small).  A derivative element is at a kink when
    its own input element feeds one; a higher derivative whose earlier names feed one, everywhere; any
    derivative, everywhere, when a jump is at a kink (its value may scale every derivative)."""
    feeds: dict[str, np.ndarray] = {n: np.zeros(a.shape, dtype=bool) for n, a in arrays.items()}
    for node, at in marks:
        for name in variables(node):
            a = typed[name]
            for idx in np.ndindex(*a.shape):
                probe = a.copy()
                probe[idx] = np.nan
                hit = np.isnan(_kink_value(node, numpy_eval(node, {**typed, name: probe}, values=True)))
                feeds[name][idx] |= bool(np.any(np.broadcast_to(hit, at.shape) & at))
    out: dict[Seq, np.ndarray] = {}
    jumped = any(node.op.jumps for node, _ in marks)
    if () in seqs and jumped:  # which outputs a jump feeds: not traced here
        out[()] = np.ones((), dtype=bool)
    for seq in seqs:
        if not seq:
            continue
        if jumped or any(feeds[n].any() for n in seq[:-1]):
            out[seq] = np.ones(arrays[seq[-1]].shape, dtype=bool)
        elif feeds[seq[-1]].any():
            out[seq] = feeds[seq[-1]].copy()
    return out
