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
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import mpmath
import numpy as np
import sympy

from symgrad.ir import ops
from symgrad.ir.expr import Call, Expr, Var, numpy_eval, variables
from symgrad.ir.precision import is_narrow, narrow_eval, round_to
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

__all__ = ["rounding_kinks"]

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
    marks = []
    for node, e in zip(nodes, exacts, strict=True):
        at = _disagree(_kink_value(node, floats), e)
        if at.any():
            marks.append((node, at))
    if not marks:
        return {}
    if elementwise:
        return _elementwise_marks(marks, np.shape(floats[id(expr)]), arrays, seqs)
    return _expanded_marks(marks, typed, arrays, seqs)


def _kink_value(node: Call, values: dict[int, np.ndarray]) -> np.ndarray:
    with np.errstate(all="ignore"):
        assert node.op.kink_at is not None
        out = node.op.kink_at(values[id(node)], *(values[id(a)] for a in node.args), **node.kwargs)
    return np.asarray(out, dtype=np.float64)


def _disagree(f: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Where the two kink arguments fall on different sides (0 being a side of its own)."""
    with np.errstate(invalid="ignore"):
        return np.asarray((np.sign(f) != np.sign(e)) & ~np.isnan(f) & ~np.isnan(e))


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
