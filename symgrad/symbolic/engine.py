"""The symbolic engine: sympy differentiates the IR; numpy or mpmath evaluates the result.

Two modes:

* **elementwise** — the expression uses elementwise ops only (optionally under a
  chain of full ``sum``/``mean`` reductions at the root).  One real symbol per
  input, one scalar formula, differentiated once and evaluated over whole
  broadcast arrays.
* **expanded** — anything else.  Every array element gets its own symbol, the IR
  is evaluated on numpy object arrays of sympy expressions, and the
  vector-Jacobian product ``sum_j g_j * out_j`` is differentiated element by element.

Both follow PyTorch's tape: order 1 is the VJP with ``grad_output`` (summed back
to a broadcast input's shape); order k differentiates the sum of the order-(k-1)
gradient.  The conventions at kinks live in :mod:`symgrad.sympy_functions`.
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
import sympy

from symgrad.ir import ops
from symgrad.ir.expr import Call, Const, Expr, Var, broadcast_shape, evaluate, is_elementwise, numpy_eval, variables
from symgrad.ir.limits import DEFAULT, LimitExceeded, Limits
from symgrad.ir.precision import PRECISIONS, epsilon, numpy_dtype
from symgrad.symbolic import functions as s
from symgrad.symbolic.compile import Compiled, numpy_function
from symgrad.symbolic.forms import (
    EXACT_DPS,
    Keyed,
    LetBindings,
    as_real,
    fresh_name,
    mp_eval,
    object_eval,
    real_symbol,
    rounding_error,
    symbol_arrays,
    to_sympy,
    written_forward,
)
from symgrad.symbolic.kinks import crossings, rounding_kinks
from symgrad.symbolic.rounding import first_order_bound, first_order_bound_at_point

__all__ = ["Derivative", "SymbolicResult", "to_sympy", "choose_mode", "differentiate"]

MODES = ("auto", "elementwise", "expanded")
_FORMULA_CHARS = 200  # expanded-mode formulas are cut to this length
Seq = tuple[str, ...]


@dataclass
class Derivative:
    wrt: Seq  # ("a",) for order 1, ("a", "b") for d/db of sum(d/da ...)
    formula: str  # human-readable text of sympy's derivative
    sympy_expr: Any  # scalar sympy derivative (elementwise mode), else None
    value: np.ndarray  # shape of the input wrt[-1]
    undefined: np.ndarray  # bool mask: the derivative is nan there (not where it is +-inf)
    # bool mask: at a kink (rounding): the float forward and the exact kink argument disagree in sign there
    at_kink: np.ndarray | None = None
    # float32: how far an ideal engine in that dtype can be from the exact value, per element (see _spread)
    slack: np.ndarray | None = None
    # narrow formats, elementwise mode: the first-order bound on the intermediates' rounding, computed
    # on demand (a comparison that fails within the slack asks for it; see symgrad.symbolic.rounding)
    bound: Callable[[], np.ndarray | None] | None = None


@dataclass
class SymbolicResult:
    mode: str  # "elementwise" or "expanded"
    value: np.ndarray  # forward value
    derivatives: dict[Seq, Derivative]
    value_slack: np.ndarray | None = None  # as Derivative.slack, for the forward value
    value_at_kink: np.ndarray | None = None  # as Derivative.at_kink, for the forward value (at a jump)
    value_bound: Callable[[], np.ndarray | None] | None = None  # as Derivative.bound, for the forward value


# ---------------------------------------------------------------- IR -> sympy


def _split_root(expr: Expr) -> tuple[Expr, tuple[str, ...]]:
    """Peel full sum/mean reductions off the root: (inner expression, op names root first)."""
    chain: list[str] = []
    while (
        isinstance(expr, Call) and expr.op in (ops.sum, ops.mean) and expr.kwargs.get("axis") is None
    ):
        chain.append(expr.op.name)
        expr = expr.args[0]
    return expr, tuple(chain)


def choose_mode(expr: Expr, mode: str = "auto") -> str:
    """"elementwise" or "expanded"; ``auto`` picks elementwise when the expression allows it."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "expanded":
        return mode
    inner, _ = _split_root(expr)
    if is_elementwise(inner) or _indexed_elementwise(inner):
        return "elementwise"
    if mode == "elementwise":
        bad = sorted({n.op.name for n in inner.walk() if isinstance(n, Call) and n.op.kind not in (ops.ELEMENTWISE, ops.CONDITION)})
        raise ValueError(
            f"mode 'elementwise' needs elementwise ops only (full sum/mean allowed at the root); "
            f"this expression uses {', '.join(bad)}: use mode 'expanded' or 'auto'"
        )
    return "expanded"


def _indexed_elementwise(expr: Expr) -> bool:
    """Elementwise but for integer indices and slices of inputs (``sin(x[1:3]) * y[0]``): each indexed
    input is then an input of its own (see :func:`_unindex`), and the expression elementwise."""
    calls = [n for n in expr.walk() if isinstance(n, Call)]
    return any(n.op is ops.index for n in calls) and all(
        n.op.kind in (ops.ELEMENTWISE, ops.CONDITION) or (n.op is ops.index and isinstance(n.args[0], Var))
        for n in calls)


@dataclass
class _Piece:
    source: str  # the input it is a part of
    key: tuple | None  # its index into that input (None: the whole input)
    text: str  # how formulas print it: x[1:3]


def _unindex(expr: Expr, names: Iterable[str]) -> tuple[Expr, dict[str, _Piece]]:
    """The expression with each ``x[key]`` of an input replaced by an input of its own (a fresh name)."""
    taken = set(names)
    pieces: dict[str, _Piece] = {n: _Piece(n, None, n) for n in names}
    by_use: dict[tuple, Var] = {}

    def leaf(node: Expr) -> Expr:
        return node

    def call(node: Call, args: list[Expr]) -> Expr:
        if node.op is ops.index:
            key = node.kwargs["key"]
            source = node.args[0].name  # type: ignore[attr-defined]
            var = by_use.get((source, key))
            if var is None:
                var = by_use[(source, key)] = Var(fresh_name(f"{source}_i{len(by_use)}", taken))
                pieces[var.name] = _Piece(source, key, f"{source}[{ops.key_source(key)}]")
            return var
        return Call(node.op, tuple(args), node.params)

    return evaluate(expr, leaf, call), pieces


def _run_indexed(
    expr: Expr, arrays: dict[str, np.ndarray], wrt: Seq, order: int,
    grad_output: Any, exact: bool, dtype: np.dtype, limits: Limits,
) -> tuple[SymbolicResult, Expr, dict[str, np.ndarray], dict[Seq, list[Seq]], dict[str, _Piece]]:
    """Elementwise mode for an expression with indexed inputs: each piece ``x[key]`` is an input, and the
    derivative for a sequence of inputs is the sum over the sequences of their pieces, each scattered
    into the last input's shape (indexing is linear: the tape's backward of ``x[key]`` does the same)."""
    flat, pieces = _unindex(expr, variables(expr))
    parts = {**arrays, **{n: np.array(arrays[p.source][ops.decode_key(p.key)]) for n, p in pieces.items()
                          if p.key is not None}}
    of = {n: [m for m, p in pieces.items() if p.source == n and m in variables(flat)] for n in arrays}
    piece_wrt = tuple(m for n in wrt for m in of.get(n, []))
    result = _run_elementwise(flat, parts, piece_wrt, order, grad_output, exact, dtype, limits)
    combos = {seq: [tuple(c) for c in itertools.product(*(of.get(n, []) for n in seq))]
              for seq in _sequences(wrt, order)}
    derivatives: dict[Seq, Derivative] = {}
    for seq, combo in combos.items():
        value = np.zeros(arrays[seq[-1]].shape)
        slack = np.zeros(arrays[seq[-1]].shape) if dtype != np.float64 else None
        formulas = []
        for q in combo:
            d = result.derivatives[q]
            where = pieces[q[-1]].key
            index = () if where is None else ops.decode_key(where)
            value[index] = value[index] + d.value  # x[key] of a key without repeats: each element once
            if slack is not None and d.slack is not None:
                slack[index] = slack[index] + d.slack
            if d.formula != "0":
                formulas.append(_piece_text(d.formula, pieces))
        formula = " + ".join(formulas) if formulas else "0"
        derivatives[seq] = _derivative(seq, formula, None, value.astype(dtype))
        derivatives[seq].slack = slack
    return (SymbolicResult("elementwise", result.value, derivatives, result.value_slack), _split_root(flat)[0],
            parts, combos, pieces)


def _piece_text(formula: str, pieces: dict[str, _Piece]) -> str:
    for name in sorted(pieces, key=len, reverse=True):  # longest first: x_i10 before x_i1
        if pieces[name].key is not None:
            formula = formula.replace(name, pieces[name].text)
    return formula


def _sequences(wrt: Seq, order: int) -> list[Seq]:
    return list(itertools.product(wrt, repeat=order))


def _no_delta(e: sympy.Expr) -> sympy.Expr:
    """DiracDelta (d/dx of Heaviside and sign) is 0 everywhere, as on the tape."""
    return e.replace(sympy.DiracDelta, lambda *a: sympy.S.Zero) if e.has(sympy.DiracDelta) else e


class _Differentiator:
    """sympy's derivative rules applied node by node, memoised on (subexpression, symbol).

    Each function or power node is differentiated by sympy with respect to a real
    dummy standing for one argument (so ``Abs`` gives ``sign``), then the chain
    rule multiplies by the argument's derivative.  Terms without the symbol are
    skipped and shared subexpressions (a mean inside every term) are
    differentiated once, which keeps expanded mode fast.
    """

    def __init__(self, defs: dict[sympy.Symbol, sympy.Expr] | None = None) -> None:
        self.memo: dict[tuple[sympy.Expr, sympy.Symbol], sympy.Expr] = {}
        self.symbols: dict[sympy.Basic, frozenset] = {}
        # let-bound intermediates (expanded mode): a symbol standing for an expression, whose
        # derivative is its definition's (a total derivative, shared by every use)
        self.defs = defs or {}

    def __call__(self, e: sympy.Expr, x: sympy.Symbol) -> sympy.Expr:
        return _no_delta(self.d(e, x))

    def free(self, e: sympy.Basic) -> frozenset:
        """``e.free_symbols``, cached (sympy recomputes it on every access)."""
        out = self.symbols.get(e)
        if out is None:
            if e in self.defs:
                out = self.free(self.defs[e])
            elif e.is_Symbol:
                out = frozenset((e,))
            elif not e.args:
                out = frozenset(e.free_symbols)
            else:
                out = frozenset().union(*(self.free(a) for a in e.args))
            self.symbols[e] = out
        return out

    def d(self, e: sympy.Expr, x: sympy.Symbol) -> sympy.Expr:
        if x not in self.free(e):
            return sympy.S.Zero
        key = (e, x)
        if key not in self.memo:
            self.memo[key] = self._rule(e, x)
        return self.memo[key]

    def _rule(self, e: sympy.Expr, x: sympy.Symbol) -> sympy.Expr:
        if e == x:
            return sympy.S.One
        if e in self.defs:
            return self.d(self.defs[e], x)
        args = e.args
        if e.is_Add:
            return sympy.Add(*[self.d(t, x) for t in args])
        if e.is_Mul:
            return sympy.Add(*[
                sympy.Mul(*args[:i], self.d(a, x), *args[i + 1 :])
                for i, a in enumerate(args) if x in self.free(a)
            ])
        if e.is_Pow and x not in self.free(e.exp):
            return e.exp * e.base ** (e.exp - 1) * self.d(e.base, x)
        if isinstance(e, (sympy.Pow, sympy.Function)) and all(isinstance(a, sympy.Expr) for a in args):
            return sympy.Add(*[self._outer(e, i) * self.d(a, x) for i, a in enumerate(args) if x in self.free(a)])
        if e.is_Piecewise:  # branch by branch (the conditions carry no gradient), through the let-bound defs
            return sympy.Piecewise(*[(self.d(b, x), c) for b, c in e.args])
        return e.diff(x)  # anything else: sympy as is

    @staticmethod
    def _outer(e: sympy.Expr, i: int) -> sympy.Expr:
        """d e / d (argument i), by the node's own sympy rule."""
        if isinstance(e, sympy.Function):
            try:
                out = e.fdiff(i + 1)
                if not out.has(sympy.Derivative):
                    return out
            except Exception:  # no fdiff (sign has _eval_derivative): sympy through a real dummy
                pass
        u = sympy.Dummy("u", real=True)
        return e.func(*e.args[:i], u, *e.args[i + 1 :]).diff(u).xreplace({u: e.args[i]})


@dataclass
class _ElementwisePlan:
    names: list[str]  # inputs of the formula, lambdify argument order
    f: sympy.Expr
    derivs: dict[Seq, sympy.Expr]
    compiled: Compiled  # outputs: f, then derivs in order
    # nodes of the expression as written whose numpy value is bitwise the one the formulas compute
    # (see _shared_pattern): their values come from the written forward, in compiled.numpy_shared
    shared: tuple[tuple, ...] = ()
    zoo: bool = False  # the formula holds zoo: undefined everywhere (see _has_zoo)


@functools.cache
def _plain_function(op: ops.Op) -> Any:
    """The sympy function class F when ``op``'s sympy form is ``F(x)`` and the numpy code lambdify writes for
    F calls ``op.forward`` itself (sin, exp, tanh, ...): then a node of ``op`` evaluated as written has
    bitwise the value the formulas compute for its form.  None for every other op."""
    x = sympy.Symbol("x", real=True)
    try:
        form = op.sympy(s, x) if op.sympy is not None and op.arity == 1 and op.kind == ops.ELEMENTWISE else None
    except Exception:
        return None
    if not isinstance(form, sympy.Function) or form.args != (x,):
        return None
    return form.func if numpy_function(form.func) is op.forward else None


# constant exponents that numpy's ``**`` (the printed code) computes otherwise than the written forward's
# ops.power (which is np.power but for the shortcuts 3 and -2, printed as ops.power itself)
_POWER_FAST_PATHS = frozenset({0.0, 1.0, -1.0, 2.0, 0.5, -0.5})


def _shared_pattern(node: Expr) -> tuple | None:
    """``(op, argument)`` for a node whose written value can stand for its sympy form in the formulas:
    an op with a :func:`_plain_function` of an input, of minus an input, or of the sum, difference or
    product of two different inputs (forms sympy keeps as they are, printed as the same single numpy
    operation as the written one); or such an argument to a constant power, which the printed code
    computes as the written ``ops.power`` does (not one of numpy's fast paths for ``**``)."""
    if not isinstance(node, Call) or node.params:
        return None
    if node.op is ops.pow:
        c = _constant(node.args[1])
        if c is None or c in _POWER_FAST_PATHS or not math.isfinite(c):
            return None
        base = _shared_argument(node.args[0])
        return None if base is None else ("pow", base, float(c))
    if len(node.args) != 1 or _plain_function(node.op) is None:
        return None
    arg = _shared_argument(node.args[0])
    return None if arg is None else (node.op.name, arg)


def _constant(e: Expr) -> float | None:
    """The number a literal or minus a literal is (``x**-2`` is ``pow(x, neg(2))``), else None."""
    negate = isinstance(e, Call) and e.op is ops.neg and not e.params
    if negate:
        e = e.args[0]  # type: ignore[attr-defined]
    if not isinstance(e, Const) or type(e.value) not in (int, float):
        return None
    return -float(e.value) if negate else float(e.value)


def _shared_argument(c: Expr) -> tuple | None:
    if isinstance(c, Var):
        return (c.name,)
    if not isinstance(c, Call) or c.params or not all(isinstance(a, Var) for a in c.args):
        return None
    names = tuple(a.name for a in c.args)  # type: ignore[attr-defined]
    if c.op is ops.neg or (c.op in (ops.add, ops.sub, ops.mul) and names[0] != names[1]):
        return (c.op.name, *names)
    return None


def _shared_nodes(expr: Expr, forms: dict[int, Any], syms: dict[str, sympy.Symbol]) -> dict[tuple, Any]:
    """The shareable nodes of ``expr`` (see _shared_pattern), by pattern, with their sympy forms; only those
    whose form is exactly the function of the argument's form (sympy rewrote none of them)."""
    out: dict[tuple, Any] = {}
    for node in expr.walk():
        pattern = _shared_pattern(node)
        if pattern is None or pattern in out:
            continue
        c = node.args[0]  # type: ignore[attr-defined]
        arg = syms.get(c.name) if isinstance(c, Var) else forms.get(id(c))
        form = forms.get(id(node))
        if form is None or arg is None:
            continue
        # not rewritten: cos(-a) is cos(a) to sympy, exp(log(a)) is a, (a*b)**3 is a**3*b**3
        if pattern[0] == "pow":
            kept = (isinstance(form, sympy.Pow) and form.base == arg and form.exp.is_number
                    and float(form.exp) == pattern[2])
        else:
            kept = form.func is _plain_function(node.op) and form.args == (arg,)  # type: ignore[attr-defined]
        if kept:
            out[pattern] = form
    return out


class _RoundingDifferentiator(_Differentiator):
    """As :class:`_Differentiator`, with a relative rounding error on each subexpression's derivative
    (the backward pass rounds its terms independently of the forward: expm1's VJP computes exp(x), not
    expm1(x) + 1 from the rounded value) and on a function's own value inside its derivative; see
    :mod:`symgrad.symbolic.rounding`."""

    def __init__(self, errors: list[sympy.Symbol], taken: set[str]) -> None:
        super().__init__()
        self.errors, self.taken = errors, taken
        self.rounded: dict[tuple[sympy.Expr, sympy.Symbol], sympy.Expr] = {}

    def d(self, e: sympy.Expr, x: sympy.Symbol) -> sympy.Expr:
        key = (e, x)
        if key not in self.rounded:
            self.rounded[key] = rounding_error(super().d(e, x), self.errors, self.taken)
        return self.rounded[key]

    def _outer(self, e: sympy.Expr, i: int) -> sympy.Expr:  # type: ignore[override]
        # a derivative written with the function's own value (tanh' = 1 - tanh**2, exp' = exp) takes it
        # rounded, as a VJP from the saved output does: 1 - ans**2 at tanh(9) is mostly rounding
        out = _Differentiator._outer(e, i)
        return out.xreplace({e: rounding_error(e, self.errors, self.taken)}) if out.has(e) else out


def _final_derivatives(f: sympy.Expr, syms: dict[str, sympy.Symbol], wrt: Seq, order: int,
                       diff: _Differentiator) -> dict[Seq, sympy.Expr]:
    """The order-``order`` derivatives of ``f`` for every sequence of the names of ``wrt`` it has."""
    active = tuple(n for n in wrt if n in syms)
    derivs: dict[Seq, sympy.Expr] = {(): f}
    for level in range(1, order + 1):
        for seq in _sequences(active, level):
            derivs[seq] = diff(derivs[seq[:-1]], syms[seq[-1]])
    return {q: d for q, d in derivs.items() if len(q) == order}


@functools.lru_cache(maxsize=256)
def _rounding_plan(keyed: Keyed, wrt: Seq, order: int) -> tuple[Compiled, int, tuple[Seq, ...]] | None:
    """The forward and the order-``order`` derivatives (by sequence, as :func:`_elementwise_plan` has
    them) of the expression with every rounded node perturbed (see :mod:`symgrad.symbolic.rounding`),
    as functions of the inputs and then the rounding errors; None when nothing is rounded, or too much."""
    names = variables(keyed.expr)
    syms = {n: real_symbol(n) for n in names}
    errors: list[sympy.Symbol] = []
    f = to_sympy(keyed.expr, syms, rounding=errors)
    final = _final_derivatives(f, syms, wrt, order, _RoundingDifferentiator(errors, set(names) | {e.name for e in errors}))
    if not errors or len(errors) > _MAX_ROUNDINGS:
        return None
    return Compiled([*(syms[n] for n in names), *errors], [f, *final.values()]), len(errors), tuple(final)


@functools.lru_cache(maxsize=256)
def _elementwise_plan(keyed: Keyed, wrt: Seq, order: int) -> _ElementwisePlan:
    names = variables(keyed.expr)
    syms = {n: real_symbol(n) for n in names}
    forms: dict[int, Any] = {}
    f = to_sympy(keyed.expr, syms, nodes=forms)
    final = _final_derivatives(f, syms, wrt, order, _Differentiator())
    outputs = [f, *final.values()]
    shared = {p: e for p, e in _shared_nodes(keyed.expr, forms, syms).items() if any(o.has(e) for o in outputs)}
    compiled = Compiled([syms[n] for n in names], outputs, shared=list(shared.values()))
    return _ElementwisePlan(names, f, final, compiled, tuple(shared), _has_zoo([f]))


# per tree and plan: the first node of each shared pattern (the tree keeps those nodes, and their ids, alive)
_SHARED_IDS: weakref.WeakKeyDictionary[Expr, dict[tuple, dict[tuple, int]]] = weakref.WeakKeyDictionary()


def _shared_ids(inner: Expr, shared: tuple) -> dict[tuple, int]:
    if not shared:
        return {}
    per_tree = _SHARED_IDS.setdefault(inner, {})
    ids = per_tree.get(shared)
    if ids is None:
        ids = {}
        for node in inner.walk():
            pattern = _shared_pattern(node)
            if pattern is not None and pattern in shared and pattern not in ids:
                ids[pattern] = id(node)
        per_tree[shared] = ids
    return ids


def _reference(plan: _ElementwisePlan, inner: Expr, arrays: dict[str, np.ndarray],
               written: dict[int, np.ndarray] | None) -> tuple[list[Any], np.ndarray]:
    """The lambdified formulas at the inputs, and the written forward (float64) of ``inner``, evaluated
    once (or taken from ``written``, every node's value): the values of the plan's shared nodes go into
    the formulas instead of being computed again.  Both run block by block on large inputs (see
    :func:`_blocks`)."""
    ids = _shared_ids(inner, plan.shared)
    shared = bool(plan.shared) and len(ids) == len(plan.shared)
    fn = plan.compiled.numpy_shared if shared else plan.compiled.numpy

    def formulas(part: dict[str, np.ndarray], kept: dict[int, Any]) -> list[Any]:
        return list(fn(*(part[n] for n in plan.names), *(kept[ids[p]] for p in plan.shared if shared)))

    if written is not None:
        return formulas(arrays, written), written_forward(inner, arrays, written)

    def run(part: dict[str, np.ndarray]) -> list[Any]:
        kept: dict[int, Any] = dict.fromkeys(ids.values())
        root = numpy_eval(inner, part, np.float64, keep=kept)
        return [root, *formulas(part, kept)]

    root, *outs = _blocks(run, {n: arrays[n] for n in plan.names})
    return outs, root


_BLOCK = 1 << 14  # elements per block of a large elementwise evaluation: its temporaries stay in the cache


def _blocks(run: Callable[[dict[str, np.ndarray]], list[Any]], arrays: dict[str, np.ndarray]) -> list[Any]:
    """``run(arrays)`` (elementwise evaluations), block by block when every array is a contiguous float64
    array of one shape and large: each element's value is the same (numpy's loops are elementwise), but a
    block's intermediates stay in the cache instead of streaming through memory.  The whole call when a
    block gives anything else than one float64 array of its length per output (a constant formula, a
    complex value, ...)."""
    args = list(arrays.values())
    first = args[0] if args else None
    if (not isinstance(first, np.ndarray) or first.size < 4 * _BLOCK
            or not all(isinstance(a, np.ndarray) and a.shape == first.shape and a.dtype == np.float64
                       and a.flags.c_contiguous for a in args)):
        return run(arrays)
    flat = {n: a.reshape(-1) for n, a in arrays.items()}
    size = first.size
    outs: list[np.ndarray] = []
    for start in range(0, size, _BLOCK):
        stop = min(start + _BLOCK, size)
        part = run({n: a[start:stop] for n, a in flat.items()})
        if not all(isinstance(v, np.ndarray) and v.dtype == np.float64 and v.shape == (stop - start,) for v in part):
            return run(arrays)
        if not outs:
            outs = [np.empty(size) for _ in part]
        for out, v in zip(outs, part):
            out[start:stop] = v
    return [out.reshape(first.shape) for out in outs]


@dataclass
class _ExpandedPlan:
    names: list[str]
    out_shape: tuple[int, ...]
    sym_names: dict[str, np.ndarray]  # symbol name per element, per input
    derivs: dict[Seq, np.ndarray]  # object arrays of expressions, shape of the input seq[-1]
    compiled: Compiled  # outputs: forward elements, then each derivative's elements
    n_forward: int = 0  # compiled.defs[:n_forward] are the forward's intermediates, the rest adjoints


@functools.lru_cache(maxsize=64)
def _expanded_plan(
    keyed: Keyed, shapes: tuple[tuple[str, tuple[int, ...]], ...], wrt: Seq, order: int, symbolic_g: bool,
    rounded: bool = False,
) -> _ExpandedPlan:
    # rounded: every local partial derivative with a rounding error, its symbols last among the arguments
    # (the first-order bound's backward pass, see _expanded_bounds)
    syms = symbol_arrays(shapes)
    flat = [x for n, _ in shapes for x in syms[n].ravel()]
    taken = {str(x) for x in flat}
    bind = LetBindings(taken)
    defs = bind.defs
    out = object_eval(keyed.expr, syms, bind)
    args = list(flat)
    if symbolic_g:
        g = np.array([real_symbol(fresh_name(f"g_{i}", taken)) for i in range(out.size)], dtype=object)
        args += list(g)
        loss = sympy.Add(*[gi * oi for gi, oi in zip(g, out.ravel())])
    else:
        loss = sympy.Add(*out.ravel())
    active = tuple(n for n in wrt if n in syms)
    losses: dict[Seq, sympy.Expr] = {(): loss}
    derivs: dict[Seq, np.ndarray] = {}
    n_forward = len(defs)
    errors: list[sympy.Symbol] = []
    # local partials: a let-bound symbol is a variable of its own there
    diff = _RoundingDifferentiator(errors, taken) if rounded else _Differentiator()
    for level in range(1, order + 1):
        for prefix in _sequences(active, level - 1):
            grad = _reverse_sweep(losses[prefix], bind, [x for n in active for x in syms[n].ravel()], diff)
            for n in active:
                seq = prefix + (n,)
                d = np.empty(syms[n].shape, dtype=object)
                for idx in np.ndindex(*d.shape):
                    d[idx] = grad.get(syms[n][idx], sympy.S.Zero)
                derivs[seq] = d
                if level < order:
                    losses[seq] = sympy.Add(*d.ravel())
    final = {q: d for q, d in derivs.items() if len(q) == order}
    outputs = list(out.ravel()) + [e for d in final.values() for e in d.ravel()]
    sym_names = {n: np.vectorize(str, otypes=[object])(a) if a.size else a for n, a in syms.items()}
    compiled = Compiled(args + errors, outputs, list(defs.items()), stored=True)
    return _ExpandedPlan([n for n, _ in shapes], out.shape, sym_names, final, compiled, n_forward)


def _partials(e: sympy.Expr, wanted: Any, diff: _Differentiator,
              name: sympy.Symbol | None = None) -> dict[sympy.Symbol, sympy.Expr]:
    """``d e / d s`` for each symbol ``s`` of ``wanted`` that ``e`` contains, every other symbol held
    fixed (sympy's rules, node by node: :class:`_Differentiator`).  A sum (times a constant) is
    differentiated term by term, each term only by the symbols in it.  ``name``, the symbol bound to
    ``e``: a function's derivative that holds the function itself (``exp(z_i - logsumexp(z))``) holds
    the name instead."""
    parts: dict[sympy.Symbol, list[sympy.Expr]] = {}
    if name is not None and isinstance(e, sympy.Function) and not e.is_Piecewise:
        template = _outer_template(e.func, len(e.args))
        if template is not None:
            f, u, outers = template
            at = {f: name, **dict(zip(u, e.args))}
            for i, a in enumerate(e.args):
                inner = [x for x in diff.free(a) if x in wanted]
                if inner:
                    outer = _no_delta(outers[i].xreplace(at))
                    for x in inner:
                        parts.setdefault(x, []).append(outer * diff(a, x))
            return {x: sympy.Add(*p) for x, p in parts.items()}
    coeff, rest = e.as_coeff_Mul() if e.is_Mul else (sympy.S.One, e)
    terms = rest.args if rest.is_Add else (rest,)
    for term in terms:
        for x in diff.free(term):
            if x in wanted:
                d = diff(term, x)
                if d != 0:
                    parts.setdefault(x, []).append(d)
    return {x: coeff * sympy.Add(*p) for x, p in parts.items()}


@functools.lru_cache(maxsize=256)
def _outer_template(func: Any, n: int) -> tuple[Any, tuple[sympy.Dummy, ...], list[sympy.Expr]] | None:
    """``(func(u...), u, [d func(u...) / d u_i for each i])`` on real dummies, by the function's own sympy
    rule: one derivative per function and arity, substituted into each call (sympy building
    ``exp(z_i - logsumexp(z))`` for every call and argument was most of a softmax's time)."""
    u = tuple(sympy.Dummy(f"u{k}", real=True) for k in range(n))
    try:
        f = func(*u)
    except Exception:
        return None
    if not isinstance(f, func) or f.args != u:  # func evaluated itself away on plain symbols
        return None
    return f, u, [_Differentiator._outer(f, i) for i in range(n)]


def _reverse_sweep(loss: sympy.Expr, bind: LetBindings, xs: Sequence[sympy.Symbol],
                   diff: _Differentiator) -> dict[sympy.Symbol, sympy.Expr]:
    """The exact gradient of ``loss`` with respect to each of ``xs``, by the chain rule through the
    let-bound intermediates of ``bind`` (in reverse order of binding): each definition is differentiated
    by sympy once, by the symbols it uses, and the adjoint of each intermediate (the derivative of
    ``loss`` by it) is let-bound in turn, so that every use shares it.  The result uses the intermediates
    and their adjoints (``bind.defs`` grows); inlined, it is the derivative of the loss inlined."""
    defs = list(bind.defs.items())
    targets = set(xs)
    live = set(targets)  # the symbols some x feeds: only their adjoints are needed
    for t, e in defs:
        if diff.free(e) & live:
            live.add(t)
    adjoint: dict[sympy.Symbol, list[sympy.Expr]] = {}
    for x, d in _partials(loss, live, diff).items():
        adjoint.setdefault(x, []).append(d)
    for t, e in reversed(defs):
        if t not in adjoint:
            continue
        a = bind(sympy.Add(*adjoint.pop(t)))
        if a == 0:
            continue
        for x, d in _partials(e, live, diff, t).items():
            adjoint.setdefault(x, []).append(a * d)
    return {x: sympy.Add(*adjoint[x]) for x in targets if x in adjoint}


# ---------------------------------------------------------------- evaluation helpers


_FORMATS = {np.dtype(np.float64): (53, -1022, -1074), np.dtype(np.float32): (24, -126, -149),
            np.dtype(np.float16): (11, -14, -24), "bfloat16": (8, -126, -133)}


def _format(dtype: np.dtype) -> tuple[int, int, int]:
    """(precision, smallest normal exponent, smallest subnormal exponent) of a float format."""
    return _FORMATS.get(dtype) or _FORMATS[dtype.name]


def _round(x: Any, dtype: np.dtype) -> float:
    """Round an mpf once, to nearest-even, to ``dtype`` (subnormals included)."""
    if not mpmath.isfinite(x):
        return float(x)
    prec, emin, qmin = _format(dtype)
    if x != 0 and abs(x) < mpmath.ldexp(1, emin):
        r = mpmath.ldexp(mpmath.nint(mpmath.ldexp(x, -qmin)), qmin)
    else:
        with mpmath.workprec(prec):
            r = +x
    return float(r)


def _rounded(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    flat = [_round(v, dtype) for v in np.asarray(a, dtype=object).ravel()]
    return np.array(flat, dtype=np.float64).reshape(np.shape(a)).astype(dtype)


def _mpf(a: np.ndarray) -> np.ndarray:
    """Exact mpf copies of a float array (inside a workdps context)."""
    a = np.asarray(a, dtype=np.float64)
    return np.array([mpmath.mpf(float(v)) for v in a.ravel()] or [], dtype=object).reshape(a.shape)


def _has_zoo(exprs: Iterable[Any]) -> bool:
    """Whether sympy's forward holds zoo (``0**-1``, ``1/0`` between constants): complex infinity is no
    number to differentiate (d/dx of ``x + zoo`` is 0 to sympy), so every element is undefined."""
    return any(isinstance(e, sympy.Basic) and e.has(sympy.zoo) for e in exprs)


def _feeding(expr: Expr, arrays: dict[str, np.ndarray], bad: np.ndarray) -> dict[str, np.ndarray]:
    """Per input, the elements that feed some ``bad`` output of the expression as written.

    Found by nan propagation (sympy's simplified outputs may have lost the dependency: the
    ``x`` of ``A @ (x/x)``): one written forward per input element, expanded mode is small.
    """
    out: dict[str, np.ndarray] = {}
    for name, a in arrays.items():
        mask = np.zeros(a.shape, dtype=bool)
        for idx in np.ndindex(*a.shape):
            probe = a.copy()
            probe[idx] = np.nan
            hit = np.broadcast_to(np.isnan(written_forward(expr, {**arrays, name: probe})), bad.shape)
            mask[idx] = bool(np.any(hit & bad))
        out[name] = mask
    return out


# printing a formula costs milliseconds; a suite that repeats an expression prints it once
_sstr = functools.lru_cache(maxsize=1024)(sympy.sstr)


def _short(e: Any) -> str:
    text = _sstr(e)
    return text if len(text) <= _FORMULA_CHARS else text[: _FORMULA_CHARS - 3] + "..."


def _full(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``x`` broadcast to ``shape``: itself when it has that shape already (a writable array, not a view)."""
    return x if x.shape == shape else np.broadcast_to(x, shape)


def _distinct(values: list[np.ndarray], inputs: list[np.ndarray]) -> list[np.ndarray]:
    """``values`` with a copy of each array that is an input or an earlier value (a formula that is an input,
    two equal formulas): every result owns its memory, as a fresh computation's would."""
    seen = {id(a) for a in inputs}
    out = []
    for v in values:
        if id(v) in seen and v.flags.writeable:
            v = v.copy()
        seen.add(id(v))
        out.append(v)
    return out


def _derivative(seq: Seq, formula: str, sym: Any, value: np.ndarray) -> Derivative:
    return Derivative(seq, formula, sym, value, np.asarray(np.isnan(value)))


# ---------------------------------------------------------------- the two modes


def _run_elementwise(
    expr: Expr, arrays: dict[str, np.ndarray], wrt: Seq, order: int,
    grad_output: Any, exact: bool, dtype: np.dtype, limits: Limits,
    written: dict[int, np.ndarray] | None = None,
) -> SymbolicResult:
    inner, chain = _split_root(expr)
    plan = _elementwise_plan(Keyed(inner), wrt, order)
    shape = broadcast_shape([arrays[n].shape for n in plan.names])
    size = math.prod(shape)
    if size > limits.max_elements:
        raise LimitExceeded("max_elements", size, limits.max_elements, "broadcast result")
    # a full mean at the bottom of the chain divides by the broadcast element count
    count = size if chain and chain[-1] == "mean" else 1
    g0 = as_real(np.asarray(1.0 if grad_output is None else grad_output, dtype=dtype))
    # the weights at full shape: for a given grad_output and the exact path (the default's 0-d ones need none)
    g = np.broadcast_to(g0, () if chain else shape) if grad_output is not None or exact else g0
    seqs = _sequences(wrt, order)

    with np.errstate(all="ignore"):
        raw, written_root = _reference(plan, inner, arrays, written)
        vals = _distinct([_full(as_real(r), shape) for r in raw], [arrays[n] for n in plan.names])
        # the default grad_output (None: ones) weighs by a 0-d array, or not at all (times 1 is exact)
        weight = g0 / count if grad_output is None else g / count
        unit = grad_output is None and count == 1
        values = {q: ops.unbroadcast(vals[1 + i] if unit else weight * vals[1 + i], arrays[q[-1]].shape)
                  for i, q in enumerate(plan.derivs)}
        forward = vals[0].sum() / count if chain else vals[0]
    slack: dict[Any, np.ndarray] = {}
    bounds: dict[Any, Callable[[], np.ndarray | None]] = {}
    if dtype != np.float64:
        base = [arrays[n] for n in plan.names]
        spread = _spread(plan.compiled, base, vals, shape, dtype, crossings(inner, plan.names, base, shape))
        with np.errstate(all="ignore"):
            slack = {q: ops.unbroadcast(np.abs(weight) * spread[1 + i], arrays[q[-1]].shape)
                     for i, q in enumerate(plan.derivs)}
            slack[()] = spread[0].sum() / count if chain else spread[0]
        bounds = _lazy_bounds(inner, arrays, wrt, order, shape, dtype, weight, count, bool(chain))

    if exact:
        with mpmath.workdps(EXACT_DPS):
            cols = [_mpf(b).ravel() for b in np.broadcast_arrays(*(arrays[n] for n in plan.names))]
            rows = ([c[i] for c in cols] for i in range(size))
            fallback = np.stack([v.ravel() for v in vals]) if size else np.zeros((len(vals), 0))
            mp = mp_eval(plan.compiled, rows, fallback)
            inv = mpmath.mpf(1) / count if count else mpmath.mpf("nan")  # mean of nothing
            mp_weight = _mpf(g) * inv
            fwd = mp[0].reshape(shape)
            forward = _rounded(mpmath.fsum(fwd.ravel()) * inv if chain else fwd, dtype)
            values = {q: _rounded(ops.unbroadcast(mp_weight * mp[1 + i].reshape(shape), arrays[q[-1]].shape), dtype)
                      for i, q in enumerate(plan.derivs)}

    # where the expression as written is undefined, so are the derivatives that element feeds
    nan_root = np.asarray(np.isnan(written_root))
    bad = _full(nan_root | True if plan.zoo else nan_root, shape)
    any_bad = bool(bad.any())
    if any_bad:
        forward = np.where(any_bad, np.nan, forward) if chain else np.where(bad, np.nan, forward)

    derivatives: dict[Seq, Derivative] = {}
    for seq in seqs:
        d = plan.derivs.get(seq)
        if d is None:  # the formula does not depend on some name of seq
            d = sympy.S.Zero
            value = np.zeros(arrays[seq[-1]].shape)
        else:
            value = values[seq]
        if any_bad:
            value = np.where(ops.unbroadcast(bad.astype(float), arrays[seq[-1]].shape) > 0, np.nan, value)
        sym = d / count if count > 1 else d
        derivatives[seq] = _derivative(seq, _sstr(sym), sym, np.asarray(value, dtype=np.float64).astype(dtype, copy=False))
        derivatives[seq].slack = slack.get(seq)
        derivatives[seq].bound = bounds.get(seq)
    return SymbolicResult("elementwise", np.asarray(forward, dtype=np.float64).astype(dtype, copy=False), derivatives,
                          slack.get(()), value_bound=bounds.get(()))


def _lazy_bounds(inner: Expr, arrays: dict[str, np.ndarray], wrt: Seq, order: int, shape: Any, dtype: np.dtype,
                 weight: Any, count: int, chain: bool) -> dict[Any, Callable[[], np.ndarray | None]]:
    """Per derivative (and ``()``, the value): a function giving its first-order rounding bound, as the
    slack is scaled (grad_output, a mean's count); all of them computed at the first call, once."""

    @functools.cache
    def compute() -> dict[Any, np.ndarray]:
        plan = _rounding_plan(Keyed(inner), wrt, order)
        if plan is None:
            return {}
        compiled, n_errors, seqs = plan
        got = first_order_bound(compiled.numpy, [arrays[n] for n in variables(inner)], n_errors, shape,
                                epsilon(dtype))
        with np.errstate(all="ignore"):
            out = {q: ops.unbroadcast(np.abs(weight) * got[1 + i], arrays[q[-1]].shape) for i, q in enumerate(seqs)}
            out[()] = got[0].sum() / count if chain else got[0]
        return out

    seqs = _sequences(tuple(n for n in wrt if n in variables(inner)), order)
    def bound_of(q: Any) -> Callable[[], np.ndarray | None]:
        return lambda: compute().get(q)

    return {q: bound_of(q) for q in [(), *seqs]}


# ---------------------------------------------------------------- narrow formats: the bound in expanded mode


def _rounding_models(node: Call, values: dict[int, np.ndarray]) -> list[tuple[float, str]]:
    """How an engine's rounding of ``node``'s value is modelled (see :func:`_perturbed`), as a list of
    ``(gamma, how)``: ``"relative"`` is the value times ``1 + gamma*e``; ``"summed"`` adds ``gamma*e`` times
    the op of the arguments' absolute values held constant (a sum's value: any order of summation of n
    terms is within ``(n-1) eps sum|x|`` of the exact sum, and its backward pass is exact), ``"dot"`` the
    same, differentiated (a matmul's VJPs are dot products too).  Empty for a value no engine rounds (moved
    or selected elements, a jump's or a condition's)."""
    op = node.op
    if op.kind == ops.ELEMENTWISE:
        return [] if op.steps else [(1.0, "relative")]
    if op.kind in (ops.SHAPE, ops.CONDITION, ops.INTERNAL) or op in (ops.transpose, ops.max, ops.min):
        return []
    shapes = [np.shape(values[id(a)]) for a in node.args]
    x, out = shapes[0], np.shape(values[id(node)])
    axis = node.kwargs.get("axis")
    if op.kind == ops.REDUCTION:
        n = math.prod(x) // max(1, math.prod(out))
    elif op.kind == ops.SCAN:
        n = x[axis] if axis is not None and not isinstance(axis, tuple) else (x[-1] if x else 1)
    elif op is ops.matmul:  # (m, k) @ (k, n): dots of k terms forward, of n and m in the VJPs
        n = max(x[-1] if x else 1, x[-2] if len(x) > 1 else 1, shapes[1][-1] if len(shapes[1]) > 1 else 1)
    else:
        n = max((d for s_ in shapes for d in s_), default=1)
    if op in (ops.sum, ops.cumsum, ops.trace):
        n = min(x[-2:]) if op is ops.trace and len(x) >= 2 else n
        return [(n - 1.0, "summed")] if n > 1 else []
    if op is ops.mean:
        return [(1.0, "relative"), *([(n - 1.0, "summed")] if n > 1 else [])]
    if op in (ops.matmul, ops.einsum):  # terms per output element (a dot product's length), or a VJP's
        return [(float(n), "dot")]
    if op in (ops.prod, ops.cumprod):
        return [(n - 1.0, "relative")] if n > 1 else []
    return [(float(max(n, 1)), "relative")]  # logsumexp, var, std, norm, softmax, det, inv, solve, ...


def _perturbed(expr: Expr, arrays: dict[str, np.ndarray]) -> tuple[Expr, list[tuple[str, tuple[int, ...]]]]:
    """``expr`` with a rounding error on every value an engine rounds, as IR: each such node's value gets
    its models of :func:`_rounding_models` applied with an input ``e`` of its own shape (zero in the
    expression as written), and the names and shapes of those inputs, in order.  Differentiated in
    expanded mode, each ``e`` sits on the chain rule's terms through its node too, and the plan's
    ``rounded`` sweep gives every local partial derivative a rounding of its own (the backward pass's
    cancellation, as in elementwise mode; :mod:`symgrad.symbolic.rounding`).  Constant subtrees are left
    as they are (an engine folds them as the reference does)."""
    values = numpy_eval(expr, arrays, np.float64, values=True)
    taken = set(variables(expr))
    errors: list[tuple[str, tuple[int, ...]]] = []
    constant: dict[int, bool] = {}

    def leaf(node: Expr) -> Expr:
        constant[id(node)] = isinstance(node, Const)
        return node

    def error(shape: tuple[int, ...]) -> Expr:
        errors.append((fresh_name(f"rounding_{len(errors)}", taken), shape))
        return Var(errors[-1][0])

    def call(node: Call, args: list[Expr]) -> Expr:
        constant[id(node)] = all(constant[id(a)] for a in node.args)
        out: Expr = Call(node.op, tuple(args), node.params)
        if constant[id(node)]:
            return out
        shape = tuple(np.shape(values[id(node)]))
        for gamma, how in _rounding_models(node, values):
            e = error(shape)
            scaled = e if gamma == 1 else Call(ops.mul, (Const(gamma), e))
            if how == "relative":
                out = Call(ops.mul, (out, Call(ops.add, (Const(1.0), scaled))))
            else:
                size = Call(node.op, tuple(Call(ops.abs, (a,)) for a in args), node.params)
                if how == "summed":
                    size = Call(ops.detach, (size,))
                out = Call(ops.add, (out, Call(ops.mul, (scaled, size))))
        return out

    return evaluate(expr, leaf, call), errors


@functools.lru_cache(maxsize=32)
def _expanded_rounding_plan(keyed: Keyed, shapes: tuple[tuple[str, tuple[int, ...]], ...], wrt: Seq, order: int,
                            symbolic_g: bool) -> _ExpandedPlan:
    # the plan of the perturbed expression, cached here: it never evicts a reference's from _expanded_plan's
    return _expanded_plan.__wrapped__(keyed, shapes, wrt, order, symbolic_g, rounded=True)


def _lazy_expanded_bounds(expr: Expr, arrays: dict[str, np.ndarray], wrt: Seq, order: int, g: Any,
                          out_shape: tuple[int, ...], dtype: np.dtype) -> dict[Any, Callable[[], np.ndarray | None]]:
    """As :func:`_lazy_bounds`, in expanded mode: per derivative (and ``()``, the value), a function giving
    the first-order bound on the engine's rounding of the intermediates (:func:`_perturbed`), ``g`` the
    grad_output's elements (None: ones); all computed at the first call, once, and None beyond
    ``_MAX_EXPANDED_ROUNDINGS`` rounded values."""
    names = variables(expr)

    @functools.cache
    def compute() -> dict[Any, np.ndarray]:
        try:
            return _expanded_bounds(expr, arrays, names, wrt, order, g, out_shape, dtype)
        except (ArithmeticError, ValueError, TypeError, RecursionError, np.linalg.LinAlgError):
            return {}  # no bound: the sampled spread alone judges, as before the bound

    def bound_of(q: Any) -> Callable[[], np.ndarray | None]:
        return lambda: compute().get(q)

    return {q: bound_of(q) for q in [(), *_sequences(wrt, order)]}


def _expanded_bounds(expr: Expr, arrays: dict[str, np.ndarray], names: list[str], wrt: Seq, order: int, g: Any,
                     out_shape: tuple[int, ...], dtype: np.dtype) -> dict[Any, np.ndarray]:
    perturbed, errors = _perturbed(expr, arrays)
    n_errors = sum(math.prod(shape) for _, shape in errors)
    if not n_errors or n_errors > _MAX_EXPANDED_ROUNDINGS // 2:
        return {}
    shapes = (*((n, arrays[n].shape) for n in names), *errors)
    plan = _expanded_rounding_plan(Keyed(perturbed), shapes, wrt, order, g is not None)
    xs = [np.float64(a) for n in names for a in arrays[n].ravel()]
    gs = [] if g is None else [np.float64(v) for v in g]
    n_backward = len(plan.compiled.args) - len(xs) - n_errors - len(gs)  # the backward pass's roundings
    if n_errors + n_backward > _MAX_EXPANDED_ROUNDINGS:
        return {}

    def formulas(*e: Any) -> Any:
        return plan.compiled.numpy(*xs, *e[:n_errors], *gs, *e[n_errors:])

    got = np.array(first_order_bound_at_point(formulas, n_errors + n_backward, epsilon(dtype)))
    n_out = math.prod(plan.out_shape)
    out: dict[Any, np.ndarray] = {(): got[:n_out].reshape(out_shape)}
    start = n_out
    for seq, exprs in plan.derivs.items():
        out[seq] = got[start : start + exprs.size].reshape(exprs.shape)
        start += exprs.size
    return out


def _run_expanded(
    expr: Expr, arrays: dict[str, np.ndarray], wrt: Seq, order: int,
    grad_output: Any, exact: bool, dtype: np.dtype, limits: Limits,
    written: dict[int, np.ndarray] | None = None,
) -> SymbolicResult:
    names = variables(expr)
    count = sum(arrays[n].size for n in names)
    if count > limits.max_symbols:
        raise LimitExceeded(
            "max_symbols", count, limits.max_symbols, "expanded mode needs one symbol per input element"
        )
    shapes = tuple((n, arrays[n].shape) for n in names)
    # grad_output all ones (the default) is the plain sum of the outputs: no symbols for it
    symbolic_g = grad_output is not None and not np.all(np.asarray(grad_output) == 1)
    plan = _expanded_plan(Keyed(expr), shapes, wrt, order, symbolic_g)
    args = [a for n in names for a in arrays[n].ravel()]
    if symbolic_g:
        g = as_real(np.asarray(grad_output, dtype=dtype))
        args += list(np.broadcast_to(g, plan.out_shape).ravel())

    with np.errstate(all="ignore"):
        raw = np.array([as_real(v) for v in plan.compiled.numpy(*map(np.float64, args))], dtype=np.float64)
    result: np.ndarray = raw
    spread = None
    bounds: dict[Any, Callable[[], np.ndarray | None]] = {}
    if dtype != np.float64:
        crossed = crossings(expr, names, [arrays[n] for n in names])
        spread = np.array(_spread(plan.compiled, [np.float64(a) for a in args], list(raw), None, dtype,
                                  None if crossed is None else lambda flat, _: crossed(_unflatten(flat, names, arrays))),
                          dtype=np.float64)
        bounds = _lazy_expanded_bounds(expr, arrays, wrt, order, args[len(args) - math.prod(plan.out_shape):]
                                       if symbolic_g else None, plan.out_shape, dtype)
    if exact:
        with mpmath.workdps(EXACT_DPS):
            mp = mp_eval(plan.compiled, [[mpmath.mpf(float(a)) for a in args]], raw.reshape(-1, 1))[:, 0]
            result = _rounded(mp, dtype)

    n_out = math.prod(plan.out_shape)
    forward = result[:n_out].reshape(plan.out_shape)
    # an output undefined as written (see written_forward) makes every element it depends on undefined
    bad = np.broadcast_to(np.isnan(written_forward(expr, arrays, written)), plan.out_shape)
    tainted: dict[str, np.ndarray] = {}
    if _has_zoo([*plan.compiled.outputs[:n_out], *(e for _, e in plan.compiled.defs[: plan.n_forward])]):
        forward = np.full(forward.shape, np.nan)
        tainted = {n: np.ones(a.shape, dtype=bool) for n, a in arrays.items()}
    elif bad.any():
        forward = np.where(bad, np.nan, forward)
        tainted = _feeding(expr, arrays, bad)
    start, derivatives = n_out, {}
    for seq in _sequences(wrt, order):
        shape = arrays[seq[-1]].shape
        exprs = plan.derivs.get(seq)
        if exprs is None:
            value, formula = np.zeros(shape), "0"
        else:
            value = result[start : start + exprs.size].reshape(shape)
            start += exprs.size
            formula = _expanded_formula(plan, seq, exprs)
        if tainted:
            value = np.where(tainted[seq[-1]], np.nan, value)
        derivatives[seq] = _derivative(seq, formula, None, np.asarray(value, dtype=np.float64).astype(dtype, copy=False))
        if spread is not None and exprs is not None:
            derivatives[seq].slack = spread[start - exprs.size : start].reshape(shape)
            derivatives[seq].bound = bounds.get(seq)
    return SymbolicResult("expanded", np.asarray(forward, dtype=np.float64).astype(dtype, copy=False), derivatives,
                          None if spread is None else spread[:n_out].reshape(plan.out_shape), value_bound=bounds.get(()))


def _expanded_formula(plan: _ExpandedPlan, seq: Seq, exprs: np.ndarray) -> str:
    if exprs.size == 0:
        return "(empty)"
    first = plan.sym_names[seq[-1]].ravel()[0]
    of = "" if len(seq) == 1 else f" of sum(d/d{'.. d/d'.join(seq[:-1])} ...)"
    return f"d/d{first}{of} = {_display(exprs.ravel()[0], dict(plan.compiled.defs))}"


def _inline(e: Any, defs: dict[sympy.Symbol, sympy.Expr]) -> Any:
    """``e`` with its let-bound intermediates replaced by their definitions (for display)."""
    for _ in range(len(defs) + 1):
        if not isinstance(e, sympy.Basic) or not (e.free_symbols & defs.keys()):
            break
        e = e.xreplace(defs)
    return e


_INLINE_NODES = 600  # a formula larger than this, inlined, is printed clipped (see _clipped)


def _display(e: Any, defs: dict[sympy.Symbol, sympy.Expr]) -> str:
    """The text of ``e`` inlined, cut to _FORMULA_CHARS: sympy's own printing when the inlined tree is
    small, else :func:`_clipped` (printing a tree of millions of nodes to show 200 characters of it
    took minutes)."""
    sizes: dict[Any, int] = {}

    def size(x: Any) -> int:
        n = sizes.get(x)
        if n is None:
            if x in defs:
                n = size(defs[x])
            else:
                n = 1 + sum(size(a) for a in getattr(x, "args", ()))
            sizes[x] = min(n, _INLINE_NODES + 1)
        return sizes[x]

    try:
        if not isinstance(e, sympy.Basic) or size(e) <= _INLINE_NODES:
            return _short(_inline(e, defs))
        text = _clipped(e, defs, _FORMULA_CHARS)
    except RecursionError:  # a chain of thousands of intermediates (a long cumprod): show the names
        return _short(e)
    return text if len(text) <= _FORMULA_CHARS else text[: _FORMULA_CHARS - 3] + "..."


def _clipped(e: Any, defs: dict[sympy.Symbol, sympy.Expr], budget: int) -> str:
    """Text of ``e`` with the let-bound symbols inlined, written in sympy's notation (terms and
    factors in sympy's stored order) and stopped once about ``budget`` characters are written."""
    if budget <= 0:
        return "..."
    if e in defs:
        return _clipped(defs[e], defs, budget)
    if not isinstance(e, sympy.Basic) or not e.args or not (e.free_symbols & defs.keys()):
        return _short(e) if not isinstance(e, sympy.Basic) or e.args else _sstr(e)

    def parts(items: Sequence[Any], sep: str, wrap: Any) -> str:
        out = ""
        for i, a in enumerate(items):
            text = _clipped(a, defs, budget - len(out))
            if wrap(a):
                text = f"({text})"
            out += (sep if i else "") + text
            if len(out) >= budget:
                break
        return out

    def inlined(a: Any) -> Any:
        while a in defs:
            a = defs[a]
        return a

    if e.is_Add:
        return parts(e.args, " + ", lambda a: False)
    if e.is_Mul:
        return parts(e.args, "*", lambda a: inlined(a).is_Add)
    if e.is_Pow:
        return parts(e.args, "**", lambda a: not (inlined(a).is_Atom or isinstance(inlined(a), sympy.Function)))
    return f"{type(e).__name__}({parts(e.args, ', ', lambda a: False)})"


# per tree and dtype name: its literals rounded (None: the tree itself), so that a repeated check gets the
# same rounded tree back and every cache keyed by a tree (node orders, shared ids, expression keys) hits
_ROUNDED: weakref.WeakKeyDictionary[Expr, dict[str, Expr | None]] = weakref.WeakKeyDictionary()


def round_literals(expr: Expr, dtype: np.dtype) -> Expr:
    """``expr`` with every literal (pi and e too) rounded to ``dtype``, as an engine in that dtype holds
    it: ``maximum(x, 0.6327079177773829)`` ties in float32 at x = float32(0.6327079177773829)."""
    if dtype == np.float64:
        return expr
    per_dtype = _ROUNDED.setdefault(expr, {})
    name = numpy_dtype(dtype).name
    if name not in per_dtype:
        rounded = _round_literals(expr, dtype)
        per_dtype[name] = None if rounded is expr else rounded  # never the key itself: it would live forever
    out = per_dtype[name]
    return expr if out is None else out


def _round_literals(expr: Expr, dtype: np.dtype) -> Expr:
    if not any(isinstance(n, Const) and float(np.asarray(n.value, dtype)) != n.value
                                      for n in expr.walk()):
        return expr

    def leaf(node: Expr) -> Expr:
        if isinstance(node, Const):
            with np.errstate(over="ignore"):
                r = float(np.asarray(node.value, dtype))
            return Const(r) if math.isfinite(r) and r != node.value else node
        return node

    return evaluate(expr, leaf, lambda node, args: Call(node.op, tuple(args), node.params))


_MAX_ROUNDINGS = 128  # rounded values a first-order bound perturbs; beyond, only the sampled spread
# ... in expanded mode, where one batched call evaluates every perturbation (half of them at most in the
# forward): a 5x5 ``A @ x`` under three functions has ~210
_MAX_EXPANDED_ROUNDINGS = 512
_SAFETY = 2.0  # the spread is one sample of the engine's rounding error, not its bound
_JUMP = 1e-2  # a relative spread beyond this is a discontinuity crossed, not conditioning
# ... or beyond this many epsilons of the format: in float16/bfloat16 one rounding error of an input can
# move a cancelling sum by more than 1% (float32: 64 eps is far below 1%, so its threshold is unchanged)
_JUMP_EPS = 64.0


def _unflatten(flat: Sequence[Any], names: Sequence[str], arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The arrays of ``names`` back from expanded mode's flat argument list (grad_output's entries after them)."""
    out, start = [], 0
    for n in names:
        size = arrays[n].size
        out.append(np.asarray(flat[start:start + size], dtype=np.float64).reshape(arrays[n].shape))
        start += size
    return out


def _spread(compiled: Compiled, args: Sequence[np.ndarray], ref: Sequence[np.ndarray], shape: Any,
            dtype: Any = np.float32, crossed: Callable[..., Any] | None = None) -> list[np.ndarray]:
    """Per output and element, how far an ideal engine in ``dtype`` (float32, float16, bfloat16) can be
    from the exact value: the largest of the formula evaluated in ``dtype`` (at the inputs and one ulp
    either side) and the float64 formula at inputs moved by one rounding error of ``dtype`` (up, then
    down) - the first sees rounding inside the expression (``tan(cosh(x))`` amplifies cosh's), the
    second the conditioning of the inputs.  A spread that is non-finite, or beyond 1% of the value (64
    epsilons of a 16-bit format), counts 0: that is a jump (a kink or tie crossed, an overflow), not
    conditioning, and widening there would hide real differences.  A function without a loop in a
    16-bit format (scipy's) promotes to float32 there; one that refuses it drops that try.  Nor does a
    move of the inputs count where it crosses a kink, tie or jump (``crossed``, see ``kinks.crossings``):
    ``sign(y)`` at an exact ``y = 0`` is 0 in every engine, and its move to a subnormal is no rounding."""
    out = [np.zeros(np.shape(r)) for r in ref]
    eps = epsilon(dtype)
    jump = max(_JUMP, _JUMP_EPS * eps)
    typed = [np.asarray(a, dtype=dtype) for a in args]
    moves: list[list[np.ndarray]] = []  # the inputs moved: more samples of where an engine's roundings fall
    try:  # the formula in dtype one ulp either side
        moves += [[np.nextafter(a, np.asarray(k * np.inf, dtype=dtype)) for a in typed] for k in (1, -1)]
    except TypeError:  # a format without nextafter
        pass
    moves += [[np.asarray(a, dtype=np.float64) * (1.0 + k * eps) for a in args] for k in (1, -1)]  # float64, moved
    with np.errstate(all="ignore"):
        for t in [typed, *moves]:
            try:
                got = [as_real(v) for v in compiled.numpy(*t)]
            except (TypeError, ValueError):  # no loop for the format (bfloat16 in some numpy function)
                continue
            ds = [np.abs((np.broadcast_to(as_real(v), shape) if shape is not None else as_real(v)) - r)
                  for v, r in zip(got, ref)]
            across: Any = False
            if t is not typed and crossed is not None:  # looked at only where the sample widens (2 ulps and more)
                wide = functools.reduce(np.logical_or, (d > 2 * eps * np.abs(r) for d, r in zip(ds, ref)))
                across = crossed(t, wide) if np.any(wide) else False
            for i, (d, r) in enumerate(zip(ds, ref)):
                out[i] = np.maximum(out[i], np.where(np.isfinite(d) & (d <= jump * np.abs(r)) & np.logical_not(across), d, 0.0))
    return [_SAFETY * o for o in out]


def differentiate(
    expr: Expr,
    inputs: dict[str, Any],
    wrt: Sequence[str],
    *,
    order: int = 1,
    grad_output: np.ndarray | None = None,
    mode: str = "auto",
    exact: bool = False,
    dtype: Any = np.float64,
    limits: Limits = DEFAULT,
) -> SymbolicResult:
    """Forward value and order-``order`` derivatives of ``expr`` for every sequence of names in ``wrt``."""
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) or order < 1:
        raise ValueError(f"order must be a positive integer, got {order!r}")
    order = int(order)
    dt = numpy_dtype(dtype)
    if _dtype_name(dt) not in PRECISIONS:
        raise ValueError(f"dtype must be one of {', '.join(PRECISIONS)}, got {dt}")
    wrt = tuple(dict.fromkeys(wrt))
    missing = [n for n in (*variables(expr), *wrt) if n not in inputs]
    if missing:
        raise ValueError(f"no input value for {', '.join(dict.fromkeys(missing))}")
    # inputs are rounded to dtype (as the tape sees them), then computed with in float64; so are literals
    arrays = {n: np.asarray(v, dtype=dt).astype(np.float64, copy=False) for n, v in inputs.items()}
    expr = round_literals(expr, dt)
    elementwise, indexed, kinked = _facts(expr, mode)
    if indexed:
        return _differentiate_indexed(expr, arrays, wrt, order, grad_output, exact, dt, limits)
    run = _run_elementwise if elementwise else _run_expanded
    target = _split_root(expr)[0] if elementwise else expr
    # one written forward serves the nan map and the kinks' branch decisions; these need every node's
    # value, in the case's dtype: shared in float64 (where the two forwards are the same computation)
    written = None
    if dt == np.float64 and kinked:
        written = numpy_eval(target, arrays, values=True)
    result = run(expr, arrays, wrt, order, grad_output, exact, dt, limits, written)
    # no kink, tie or jump in the tree: nothing to mark (rounding_kinks would find no node either)
    marks = rounding_kinks(target, arrays, [(), *result.derivatives], dt, exact, elementwise, written) if kinked else {}
    jumped = marks.pop((), None)
    if jumped is not None:  # a sum or mean at the root: its one value is fed by every element
        shape = np.shape(result.value)
        result.value_at_kink = np.broadcast_to(jumped if jumped.shape == shape else jumped.any(), shape)
    for seq, mask in marks.items():
        result.derivatives[seq].at_kink = mask
    return result


_DTYPE_NAMES: dict[np.dtype, str] = {}


def _dtype_name(dt: np.dtype) -> str:
    """``dt.name``, remembered (numpy computes the name on every access)."""
    name = _DTYPE_NAMES.get(dt)
    if name is None:
        name = _DTYPE_NAMES[dt] = dt.name
    return name


# per tree and mode: (elementwise, indexed elementwise, has a kink) - facts of the immutable tree alone
_FACTS: weakref.WeakKeyDictionary[Expr, dict[str, tuple[bool, bool, bool]]] = weakref.WeakKeyDictionary()


def _facts(expr: Expr, mode: str) -> tuple[bool, bool, bool]:
    """How :func:`differentiate` treats ``expr`` in ``mode``, found once per tree (choose_mode's errors are
    raised every time: nothing is stored for them)."""
    per_mode = _FACTS.setdefault(expr, {})
    facts = per_mode.get(mode)
    if facts is None:
        elementwise = choose_mode(expr, mode) == "elementwise"
        indexed = elementwise and _indexed_elementwise(_split_root(expr)[0])
        target = _split_root(expr)[0] if elementwise else expr
        kinked = any(isinstance(n, Call) and n.op.kink_at is not None for n in target.walk())
        facts = per_mode[mode] = (elementwise, indexed, kinked)
    return facts


def _differentiate_indexed(expr: Expr, arrays: dict[str, np.ndarray], wrt: Seq, order: int, grad_output: Any,
                           exact: bool, dt: np.dtype, limits: Limits) -> SymbolicResult:
    result, inner, parts, combos, pieces = _run_indexed(expr, arrays, wrt, order, grad_output, exact, dt, limits)
    piece_seqs = sorted({q for c in combos.values() for q in c})
    marks = rounding_kinks(inner, parts, piece_seqs, dt, exact, True)
    for seq, combo in combos.items():
        mask = np.zeros(arrays[seq[-1]].shape, dtype=bool)
        for q in combo:
            if q in marks:
                key = pieces[q[-1]].key
                index = () if key is None else ops.decode_key(key)
                mask[index] = mask[index] | marks[q]
        if mask.any():
            result.derivatives[seq].at_kink = mask
    return result
