"""Symbolic equality: is a user's ``expect`` formula sympy's derivative? Proved, disproved, or unknown."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy

from symgrad.ir import ops
from symgrad.symbolic import functions as s


def _plain_forms() -> dict[type, Callable[..., sympy.Expr]]:
    """Each convention class (``relu``, ``maxn`` ...) -> its op's ``plain`` form, from the op table.

    The class is the function an op's sympy form builds on symbols (for a reduction, on two elements).
    """
    xs = sympy.symbols("x0:2", real=True)
    table: dict[type, Callable[..., sympy.Expr]] = {}
    for op in ops.public_ops():
        if op.plain is None or op.sympy is None:
            continue
        built = (op.sympy(s, *xs[:op.arity]) if op.kind == ops.ELEMENTWISE
                 else op.sympy(s, np.array(xs, dtype=object))[()])
        table[built.func] = lambda *args, _plain=op.plain: _plain(sympy, *args)
    return table


_PLAIN = _plain_forms()
_PLAIN[s.recip0] = lambda r: 1 / r  # inside norm's derivatives only: its general branch
_POINTS = 4  # random points for a numeric disproof
_SIMPLIFY_OPS = 80  # sympy.simplify only below this many operations (it can be slow)


def _plain(e: sympy.Expr) -> sympy.Expr:
    """Custom functions as plain sympy; a convention's Piecewise as its general branch.

    A proof is about the formula away from kinks (``y*x**(y - 1)`` for d/dx x**y): the
    conventions at the kinks themselves are checked numerically at the inputs, not proved.
    """
    for cls, fn in _PLAIN.items():
        e = e.replace(cls, fn)
    if e.has(sympy.Piecewise):
        e = e.replace(lambda n: isinstance(n, sympy.Piecewise) and n.args[-1].cond == sympy.true,
                      lambda n: n.args[-1].expr)
    return e


def _real_point(parts: set, sub: dict) -> bool:
    """Every power and function inside the expressions is real at ``sub``.

    Both sides may be real where a piece is not: 1/(sqrt(x - 1)*sqrt(x + 1)) (sympy's acosh')
    is real at x = -2 with the opposite sign of 1/sqrt(x**2 - 1); no disproof there.
    """
    for p in parts:
        v = complex(p.evalf(30, subs=sub))
        if abs(v.imag) > 1e-20 * max(1.0, abs(v.real)):
            return False
    return True


_MAX_EXPANDED_TERMS = 10_000


def _expanded_terms(e: sympy.Expr, cap: int = 10**9) -> int:
    """An upper bound on the terms of ``sympy.expand(e)`` (capped), computed without expanding."""
    if isinstance(e, sympy.Add):
        return min(cap, sum(_expanded_terms(a, cap) for a in e.args))
    if isinstance(e, sympy.Mul):
        out = 1
        for a in e.args:
            out = min(cap, out * _expanded_terms(a, cap))
        return out
    if isinstance(e, sympy.Pow):
        base = _expanded_terms(e.base, cap)
        n = e.exp
        if base == 1 or not (n.is_Integer or n.is_Rational):
            return base
        k = abs(int(n.p)) if n.is_Rational else abs(int(n))  # (a+b)**(p/q): expand works on the power p
        if k > cap:
            return cap
        return min(cap, math.comb(k + base - 1, base - 1)) if base <= 64 else cap
    if isinstance(e, sympy.Function) or e.args:
        return max([1] + [_expanded_terms(a, cap) for a in e.args])
    return 1


def prove_equal(a: Any, b: Any) -> bool | None:
    """True if ``a - b`` simplifies to 0, False if they differ at a real point, None if unknown."""
    try:
        a, b = _plain(sympy.S(a)), _plain(sympy.S(b))
        d = a - b
        if d == 0:
            return True
        syms = sorted(a.free_symbols | b.free_symbols, key=str)
        rng = np.random.default_rng(12345)
        parts = a.atoms(sympy.Pow, sympy.Function) | b.atoms(sympy.Pow, sympy.Function)
        for i in range(_POINTS):
            pt = rng.uniform(0.3, 2.7, len(syms)) * (1 if i % 2 == 0 else rng.choice([-1, 1], len(syms)))
            sub = {x: sympy.Float(float(v), 30) for x, v in zip(syms, pt)}
            if not _real_point(parts, sub):  # outside the real domain (acosh' at x = -2): no evidence
                continue
            va, vb = (complex(v.evalf(30, subs=sub)) for v in (a, b))
            if va.imag == 0 and vb.imag == 0 and all(map(math.isfinite, (va.real, vb.real))):  # noqa: SIM102
                if abs(va.real - vb.real) > 1e-12 * max(1.0, abs(va.real), abs(vb.real)):
                    return False
        ops_count = sympy.count_ops(d)
        if _expanded_terms(d) > _MAX_EXPANDED_TERMS:  # (x+1)**1000000: expand would build 10**6 terms
            return None
        if ops_count <= 400:
            for step in (sympy.expand, sympy.cancel):
                if step(d) == 0:
                    return True
        if ops_count <= _SIMPLIFY_OPS and sympy.simplify(d) == 0:
            return True
    except Exception:
        return None
    return None

