"""The symbolic reference: sympy differentiates the IR; numpy or mpmath evaluates the result.

Above :mod:`symgrad.ir`; never imports :mod:`symgrad.tape`."""

from symgrad.symbolic.engine import Derivative, SymbolicResult, choose_mode, differentiate, round_literals, to_sympy
from symgrad.symbolic.prove import prove_equal

__all__ = ["Derivative", "SymbolicResult", "choose_mode", "differentiate", "prove_equal", "round_literals", "to_sympy"]
