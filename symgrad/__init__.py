"""symgrad: check reverse-mode automatic differentiation against exact symbolic derivatives.

``import symgrad as torch`` gives a small PyTorch-compatible tape (``tensor``,
``backward``, ``autograd.grad``, ``optim.SGD``); ``symgrad.check`` and friends
compare a tape's gradients with sympy's.
"""

from __future__ import annotations

import importlib
from typing import Any

# Everything loads on first use: `symgrad --help` pays for click only, the tape (numpy) loads when
# a tensor or op is first touched, the checking API (sympy) on the first check.
_OPS = ("abs acos acosh asin asinh atan atan2 atanh cos cosh detach erf exp expm1 hypot log log1p log2 "
        "log10 logaddexp logsumexp matmul max maximum mean min minimum pow prod relu sigmoid sin sinh "
        "softplus sqrt sum tan tanh transpose").split()
_TAPE = ("Size Tensor as_tensor enable_grad float32 float64 int64 is_grad_enabled no_grad ones "
         "ones_like tensor zeros zeros_like").split()
_ALIASES = {"bool": ("tape", "bool_"), "arcsin": ("ops", "asin"), "arccos": ("ops", "acos"),
            "arctan": ("ops", "atan"), "arctan2": ("ops", "atan2"), "arcsinh": ("ops", "asinh"),
            "arccosh": ("ops", "acosh"), "arctanh": ("ops", "atanh")}
_API = {
    "check": "api", "assert_gradients": "api", "check_function": "api", "load_cases": "cases",
    "run_case": "runner", "GradientMismatch": "api", "Report": "report", "Case": "cases",
    "CaseError": "cases", "parse": "parse", "ParseError": "parse", "Limits": "limits",
    "fuzz": "fuzzing",
}
_WHERE = {**{n: ("ops", n) for n in _OPS}, **{n: ("tape", n) for n in _TAPE}, **_ALIASES,
          **{n: (m, n) for n, m in _API.items()}}
__all__ = sorted(_WHERE) + ["autograd", "optim"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("autograd", "optim", "backends"):
        return importlib.import_module(f".{name}", __name__)
    if name in _WHERE:
        module, attr = _WHERE[name]
        value = globals()[name] = getattr(importlib.import_module(f".{module}", __name__), attr)
        return value
    raise AttributeError(f"module 'symgrad' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
