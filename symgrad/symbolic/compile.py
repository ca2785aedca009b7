"""Compiling sympy expressions: lambdify for numpy (shortest round-tripping floats) and mpmath, with CSE."""

from __future__ import annotations

import builtins
import functools
import itertools
import keyword
import math
from collections.abc import Callable, Sequence
from typing import Any

import mpmath
import numpy as np
import sympy
from sympy.printing.numpy import NumPyPrinter

from symgrad.ir import ops
from symgrad.symbolic import diskcache
from symgrad.symbolic import functions as s


class _FloatExactPrinter(NumPyPrinter):
    """NumPyPrinter writes Floats with 15 digits; write the shortest round-tripping repr."""

    def _print_Float(self, expr: sympy.Float) -> str:
        return repr(float(expr))  # 1e400 overflows to inf, as numpy's arithmetic does

    def _print_Integer(self, expr: sympy.Integer) -> str:
        """Python ints beyond float range raise OverflowError in numpy arithmetic; numpy's floats give inf."""
        return str(int(expr)) if abs(int(expr)) < 2**53 else _float_text(expr)

    def _print_Rational(self, expr: sympy.Rational) -> str:
        if max(abs(expr.p), expr.q) < 2**53:
            return super()._print_Rational(expr)
        return _float_text(expr)

    def _print_Mul(self, expr: sympy.Mul) -> str:
        """A coefficient outside float range (``1e400*x``, from ``x*1e200*1e200``) is applied in two
        halves, so that the product overflows (or underflows) only where the true value does."""
        c, rest = expr.as_coeff_Mul()
        if c.is_Number and c != 0 and rest != 1 and _float_text(c).strip("(-)") in ("inf", "0.0"):
            m = mpmath.mpf(sympy.Float(c, 30)._mpf_)
            half = mpmath.sqrt(abs(m))
            a, b = float(half), float(m / half)
            if math.isfinite(a) and a != 0 and math.isfinite(b) and b != 0:
                return f"(({self._print(rest)})*{a!r})*{b!r}"
        return super()._print_Mul(expr)

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:
        """``x**3`` and ``x**-2`` as the op table's pow computes them (``x*x*x``, ``1/(x*x)``, torch's
        shortcuts): bitwise the written forward's value, at a tenth of libm pow's time."""
        if expr.exp.is_Number and expr.exp in ops.POWER_SHORTCUTS:
            return f"_power({self._print(expr.base)}, {int(expr.exp)})"
        return super()._print_Pow(expr, rational=rational)

    def _print_ITE(self, expr: Any) -> str:
        """A condition's if-then-else (sympy folds a Piecewise inside a condition into one) as logic:
        NumPyPrinter writes it as a float ``select`` with a nan default, which no outer ``select``
        takes as a condition."""
        a, b, c = expr.args
        return self._print(sympy.Or(sympy.And(a, b), sympy.And(sympy.Not(a), c)))

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        """NumPyPrinter's ``select``, but a condition holding an ITE is printed as it stands (see _print_ITE)
        instead of first going through ``simplify_logic``, whose simplify of the relationals can take
        minutes or raise (``TypeError: Invalid NaN comparison``) and may rewrite what the float code
        compares."""
        conds = ", ".join(self._print(arg.cond) for arg in expr.args)
        exprs = ", ".join(self._print(arg.expr) for arg in expr.args)
        return f"{self._module_format(self._module + '.select')}([{conds}], [{exprs}], default={self._print(sympy.nan)})"

    def __init__(self, settings: dict[str, Any]):
        super().__init__(settings)
        self.shared: dict[Any, str] = {}

    def _print(self, expr: Any, **kwargs: Any) -> str:
        # a subexpression the caller has evaluated already (``Compiled(shared=...)``) is that argument
        name = self.shared.get(expr) if self.shared and isinstance(expr, sympy.Basic) else None
        return name if name is not None else super()._print(expr, **kwargs)

    # NumPyPrinter writes `logical_and.reduce((a, b))`, which fails when a is a scalar and b an array
    def _print_And(self, expr: Any) -> str:
        return self._chain("logical_and", expr.args)

    def _print_Or(self, expr: Any) -> str:
        return self._chain("logical_or", expr.args)

    def _chain(self, fn: str, args: Sequence[Any]) -> str:
        text = self._print(args[0])
        for a in args[1:]:
            text = f"{fn}({text}, {self._print(a)})"
        return text


def _float_text(number: sympy.Rational) -> str:
    """A rational number as the nearest float64 literal: ``inf`` beyond the range, as numpy would round it."""
    try:
        text = repr(float(number))
    except OverflowError:
        text = "inf" if number > 0 else "-inf"
    return f"({text})" if text.startswith("-") else text


Defs = list[tuple[sympy.Symbol, sympy.Expr]]


def _no_zoo(e: sympy.Expr) -> sympy.Expr:
    """zoo (log(0), 1/0 between constants) is undefined: nan, which neither printer spells."""
    e = _boolean_piecewise(e)
    return e.xreplace({sympy.zoo: sympy.nan}) if e.has(sympy.zoo) else e


def _boolean_piecewise(e: Any) -> Any:
    """A Piecewise or ITE of truth values (sympy folds ``elu(x) > 0`` into one) as a boolean formula:
    numpy's ``select`` would make it a float array, which a condition cannot be."""
    if not isinstance(e, sympy.Basic) or not e.has(sympy.Piecewise):
        return e
    if e.has(sympy.ITE):  # ITE(a, b, c), which sympy makes of a condition on a Piecewise
        e = e.replace(lambda n: isinstance(n, sympy.ITE),
                      lambda n: sympy.Or(sympy.And(n.args[0], n.args[1]), sympy.And(sympy.Not(n.args[0]), n.args[2])))

    def is_boolean(n: Any) -> bool:
        # truth values only: a Symbol is a sympy Boolean too, but a branch x is a number
        logic = (sympy.logic.boolalg.BooleanFunction, sympy.logic.boolalg.BooleanAtom, sympy.core.relational.Relational)
        return isinstance(n, sympy.Piecewise) and all(isinstance(b, logic) for b, _ in n.args)

    def as_formula(n: Any) -> Any:
        out, seen = sympy.false, sympy.true  # seen: no earlier condition held
        for b, c in n.args:
            out = sympy.Or(out, sympy.And(seen, c, b))
            seen = sympy.And(seen, sympy.Not(c))
        return out

    return e.replace(is_boolean, as_formula)


@functools.cache
def _numpy_namespace() -> dict[str, Any]:
    """What lambdify's ``modules="numpy"`` provides, without its ``from numpy import *``: that star import
    loads every lazily imported numpy submodule (f2py, testing, typing, ...), a fifth of a second at start-up.
    Names the printer needs beyond these, it imports itself (its ``module_imports``)."""
    return {**{k: v for k, v in vars(np).items() if not k.startswith("_")}, "I": 1j, "Heaviside": np.heaviside}


def numpy_function(func: Any) -> Any:
    """What lambdify's numpy code calls for the sympy function class ``func`` (None when not a plain name)."""
    ns = {**_numpy_namespace(), **s.namespace("numpy")}
    printed = _FloatExactPrinter({"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True,
                                  "user_functions": {k: k for k in s.namespace("numpy")}}).doprint(func(sympy.Symbol("x")))
    name = printed[: -len("(x)")] if printed.endswith("(x)") else ""
    return ns.get(name) if name.isidentifier() else None


def _rename(e: Any, names: dict[sympy.Symbol, sympy.Symbol]) -> Any:
    return e.xreplace(names) if names and isinstance(e, sympy.Basic) else e


def _could_shadow(name: str, ns: dict[str, Any], module: str) -> bool:
    """Whether an argument called ``name`` could stand for something the generated code calls."""
    return (not name.isidentifier() or keyword.iskeyword(name) or name in ns or name in vars(builtins)
            or name.startswith("_") or (module == "mpmath" and hasattr(mpmath, name)))


def _lambdify(args: list[Any], outputs: list[Any], module: str, defs: Sequence[tuple[sympy.Symbol, sympy.Expr]] = (),
              shared: Sequence[sympy.Expr] = (), stored: bool = False) -> Callable[..., Any]:
    """:func:`_compile`, through the disk cache of generated numpy code (:mod:`symgrad.symbolic.diskcache`)."""
    def build() -> Callable[..., Any]:
        return _compile(args, outputs, module, defs, shared, stored)
    if module != "numpy":
        return build()
    return diskcache.cached_function(("lambdify", module, stored, args, outputs, list(defs), list(shared)), build,
                                     lambda: {**_numpy_namespace(), **s.namespace(module)})


def _compile(args: list[Any], outputs: list[Any], module: str, defs: Sequence[tuple[sympy.Symbol, sympy.Expr]] = (),
             shared: Sequence[sympy.Expr] = (), stored: bool = False) -> Callable[..., Any]:
    """Compile ``outputs``; ``defs`` (let-bound intermediates, in order) are assigned first.  ``shared``
    subexpressions (numpy only) are not computed: the function takes their values as further arguments,
    after ``args``, and uses them wherever the subexpression appears, as written or as CSE rewrote it.
    ``stored``: no CSE (the defs share already), terms in sympy's stored order (sorting them is most of
    the printing time of thousands of defs)."""
    ns = s.namespace(module)
    printer = None
    order = {"order": "none"} if stored else {}
    if module == "numpy":
        printer = _FloatExactPrinter({
            "fully_qualified_modules": False, "inline": True,
            "allow_unknown_functions": True, "user_functions": {k: k for k in ns}, **order,
        })
        ns = {**_numpy_namespace(), **ns}
    elif stored:
        from sympy.printing.pycode import MpmathPrinter

        printer = MpmathPrinter({"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True,
                                 "user_functions": {k: k for k in ns}, **order})
    # the inputs get names of their own: an input called `select` or `sign` must not shadow the
    # numpy function the generated code calls by that name (``stored``: only the names that could)
    safe = {a: sympy.Symbol(f"_arg{i}", **a.assumptions0) for i, a in enumerate(args)
            if not stored or _could_shadow(str(a), ns, module)}
    args = [safe.get(a, a) for a in args]
    if shared and printer is not None:
        printer.shared = {_no_zoo(_rename(e, safe)): f"_w{i}" for i, e in enumerate(shared)}
        args += [sympy.Symbol(f"_w{i}") for i in range(len(shared))]
    outputs = [_no_zoo(_rename(o, safe)) for o in outputs]
    defs = [(t, _no_zoo(_rename(e, safe))) for t, e in defs]
    taken = {str(a) for a in args} | {str(t) for t, _ in defs}

    def cse(exprs: list[Any]) -> tuple[Defs, list[Any]]:
        fresh = (sympy.Symbol(f"_c{i}") for i in itertools.count() if f"_c{i}" not in taken)
        repl, reduced = sympy.cse(exprs, symbols=fresh, list=False)
        if printer is not None and printer.shared:
            _through_cse(printer.shared, repl)
        return list(defs) + repl, reduced

    return sympy.lambdify(args, outputs, modules=ns if module == "numpy" else [ns, module],
                          cse=(lambda exprs: (list(defs), exprs)) if stored else cse, printer=printer)


def _through_cse(shared: dict[Any, str], repl: Defs) -> None:
    """Add each shared subexpression as CSE rewrites it (``log(a + b)`` is ``log(_c0)`` once ``_c0 = a + b``
    is common): the same computation, which the printer then also takes from its argument.  Every form
    on the way counts: when CSE names it whole (``_c1 = (_c0)**3``), its definition is the form before."""
    for e, name in list(shared.items()):
        reduced = e
        for sym, rhs in repl:
            reduced = reduced.xreplace({rhs: sym})
            if reduced.is_Symbol:
                break
            shared.setdefault(reduced, name)


class Compiled:
    """Output expressions of the arguments, lambdified (once, lazily) for numpy and mpmath."""

    def __init__(self, args: list[sympy.Symbol], outputs: list[sympy.Expr], defs: Sequence[tuple[sympy.Symbol, sympy.Expr]] = (),
                 shared: Sequence[sympy.Expr] = (), stored: bool = False):
        self.args, self.outputs, self.defs, self.shared = args, outputs, list(defs), list(shared)
        self.stored = stored  # see _lambdify
        self._single: dict[int, Callable[..., Any]] = {}

    @functools.cached_property
    def numpy(self) -> Callable[..., Any]:
        return _lambdify(self.args, self.outputs, "numpy", self.defs, stored=self.stored)

    @functools.cached_property
    def numpy_shared(self) -> Callable[..., Any]:
        """As :attr:`numpy`, with the values of the ``shared`` subexpressions as further arguments."""
        return _lambdify(self.args, self.outputs, "numpy", self.defs, self.shared, stored=self.stored)

    @functools.cached_property
    def mpmath(self) -> Callable[..., Any]:
        return _lambdify(self.args, self.outputs, "mpmath", self.defs, stored=self.stored)

    def mpmath_one(self, k: int) -> Callable[..., Any]:
        if k not in self._single:
            self._single[k] = _lambdify(self.args, [self.outputs[k]], "mpmath", self.defs, stored=self.stored)
        return self._single[k]

