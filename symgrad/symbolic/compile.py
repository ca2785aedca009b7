"""Compiling sympy expressions: lambdify for numpy (shortest round-tripping floats) and mpmath, with CSE."""

from __future__ import annotations

import functools
import itertools
from typing import Any, Callable, Sequence

import numpy as np
import sympy
from sympy.printing.numpy import NumPyPrinter

from symgrad.symbolic import functions as s



class _FloatExactPrinter(NumPyPrinter):
    """NumPyPrinter writes Floats with 15 digits; write the shortest round-tripping repr."""

    def _print_Float(self, expr: sympy.Float) -> str:
        return repr(float(expr))

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


Defs = list[tuple[sympy.Symbol, sympy.Expr]]


def _no_zoo(e: sympy.Expr) -> sympy.Expr:
    """zoo (log(0), 1/0 between constants) is undefined: nan, which neither printer spells."""
    return e.xreplace({sympy.zoo: sympy.nan}) if e.has(sympy.zoo) else e


@functools.lru_cache(maxsize=None)
def _numpy_namespace() -> dict[str, Any]:
    """What lambdify's ``modules="numpy"`` provides, without its ``from numpy import *``: that star import
    loads every lazily imported numpy submodule (f2py, testing, typing, ...), a fifth of a second at start-up.
    Names the printer needs beyond these, it imports itself (its ``module_imports``)."""
    return {**{k: v for k, v in vars(np).items() if not k.startswith("_")}, "I": 1j, "Heaviside": np.heaviside}


def _lambdify(args: list[Any], outputs: list[Any], module: str, defs: Defs = ()) -> Callable[..., Any]:
    """Compile ``outputs``; ``defs`` (let-bound intermediates, in order) are assigned first."""
    ns = s.namespace(module)
    printer = None
    if module == "numpy":
        printer = _FloatExactPrinter({
            "fully_qualified_modules": False, "inline": True,
            "allow_unknown_functions": True, "user_functions": {k: k for k in ns},
        })
        ns = {**_numpy_namespace(), **ns}
    outputs = [_no_zoo(o) for o in outputs]
    defs = [(t, _no_zoo(e)) for t, e in defs]
    taken = {str(a) for a in args} | {str(t) for t, _ in defs}

    def cse(exprs: list[Any]) -> tuple[Defs, list[Any]]:
        fresh = (sympy.Symbol(f"_c{i}") for i in itertools.count() if f"_c{i}" not in taken)
        repl, reduced = sympy.cse(exprs, symbols=fresh, list=False)
        return list(defs) + repl, reduced

    return sympy.lambdify(args, outputs, modules=ns if module == "numpy" else [ns, module], cse=cse, printer=printer)


class Compiled:
    """Output expressions of the arguments, lambdified (once, lazily) for numpy and mpmath."""

    def __init__(self, args: list[sympy.Symbol], outputs: list[sympy.Expr], defs: Defs = ()):
        self.args, self.outputs, self.defs = args, outputs, list(defs)
        self._single: dict[int, Callable[..., Any]] = {}

    @functools.cached_property
    def numpy(self) -> Callable[..., Any]:
        return _lambdify(self.args, self.outputs, "numpy", self.defs)

    @functools.cached_property
    def mpmath(self) -> Callable[..., Any]:
        return _lambdify(self.args, self.outputs, "mpmath", self.defs)

    def mpmath_one(self, k: int) -> Callable[..., Any]:
        if k not in self._single:
            self._single[k] = _lambdify(self.args, [self.outputs[k]], "mpmath", self.defs)
        return self._single[k]

