"""symgrad: check reverse-mode automatic differentiation against exact symbolic derivatives.

``import symgrad as torch`` gives a small PyTorch-compatible tape (``tensor``,
``backward``, ``autograd.grad``, ``optim.SGD``); ``symgrad.check`` and friends
compare a tape's gradients with sympy's.
"""

from __future__ import annotations

from typing import Any

from . import autograd, optim
from .ops import (  # every op of the table is a module function
    abs, acos, acosh, asin, asinh, atan, atan2, atanh, cos, cosh, detach, erf, exp, expm1,
    hypot, log, log1p, log2, log10, logaddexp, logsumexp, matmul, max, maximum, mean, min,
    minimum, prod, relu, sigmoid, sin, sinh, softplus, sqrt, sum, tan, tanh, transpose,
)
from .ops import pow
from .tape import (
    Size, Tensor, as_tensor, bool_ as bool, enable_grad, float32, float64, int64,
    is_grad_enabled, no_grad, ones, ones_like, tensor, zeros, zeros_like,
)

arcsin, arccos, arctan, arctan2 = asin, acos, atan, atan2
arcsinh, arccosh, arctanh = asinh, acosh, atanh

# The checking API imports sympy; load it on first use so `import symgrad` stays light.
_API = {
    "check": "api", "assert_gradients": "api", "check_function": "api", "load_cases": "cases",
    "run_case": "runner", "GradientMismatch": "api", "Report": "report", "Case": "cases",
    "CaseError": "cases", "parse": "parse", "ParseError": "parse", "Limits": "limits",
}


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'symgrad' has no attribute {name!r}")


__version__ = "0.1.0"
