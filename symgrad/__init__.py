"""symgrad: check reverse-mode automatic differentiation against exact symbolic derivatives.

``import symgrad as torch`` gives a small PyTorch-compatible tape (``tensor``,
``backward``, ``autograd.grad``, ``optim.SGD``) with a function for every op of
the table (``symgrad.sin``, ...); ``symgrad.check`` and friends compare a
tape's gradients with sympy's.

Every name loads on first use, so ``symgrad --help`` pays for click only: the
tape (numpy) loads when a tensor or op is first touched, the checking API
(sympy) on the first check.
"""

import importlib as _importlib

__version__ = "0.1.0"

_TAPE = ("Size", "Tensor", "arange", "as_tensor", "device", "dtype", "empty", "empty_like", "enable_grad", "eye",
         "float32", "float64", "from_numpy", "full", "full_like", "get_default_dtype", "int32", "int64",
         "is_grad_enabled", "linspace", "manual_seed", "no_grad", "ones", "ones_like", "rand", "rand_like",
         "randint", "randn", "randn_like", "set_default_dtype", "set_grad_enabled", "tensor", "zeros", "zeros_like")
_WHERE = {
    **{name: ("symgrad.tape", name) for name in _TAPE},
    "bool": ("symgrad.tape", "bool_"),
    "float": ("symgrad.tape", "float32"),  # as torch: torch.float is float32, torch.double float64
    "double": ("symgrad.tape", "float64"),
    "long": ("symgrad.tape", "int64"),
    "int": ("symgrad.tape", "int32"),
    **{name: ("symgrad.api", name)
       for name in ("check", "assert_gradients", "check_function", "GradientMismatch")},
    "load_cases": ("symgrad.checking.cases", "load_cases"),
    "Case": ("symgrad.checking.cases", "Case"),
    "CaseError": ("symgrad.checking.cases", "CaseError"),
    "run_case": ("symgrad.checking.runner", "run_case"),
    "Report": ("symgrad.checking.report", "Report"),
    "parse": ("symgrad.ir.parse", "parse"),
    "ParseError": ("symgrad.ir.parse", "ParseError"),
    "Limits": ("symgrad.ir.limits", "Limits"),
    "fuzz": ("symgrad.fuzzing", "fuzz"),
}
_MODULES = {"autograd": "symgrad.tape.autograd", "optim": "symgrad.tape.optim", "backends": "symgrad.backends",
            "nn": "symgrad.nn", "func": "symgrad.func"}


# torch functions the op table lacks (symgrad.tape.functions): an op of the same name takes precedence
_FALLBACKS = ("allclose", "equal", "dot", "mm", "bmm", "where", "cat", "stack", "einsum", "softmax", "log_softmax",
              "clamp", "clip", "clamp_min", "clamp_max", "sort", "argsort", "argmax", "argmin", "norm", "is_tensor",
              "numel", "unsqueeze", "flatten", "permute", "t")


def _op_names() -> list[str]:
    """``symgrad.<op>`` for every op of the table and its aliases (generated, never listed by hand)."""
    ops = _importlib.import_module("symgrad.ir.ops")
    return sorted(key for key, op in ops.OPS.items() if op.public)


def __getattr__(name: str) -> object:
    if name == "__all__":
        return sorted({*_WHERE, *_MODULES, *_FALLBACKS, *_op_names()})
    if name in _MODULES:
        value = _importlib.import_module(_MODULES[name])
    elif name in _WHERE:
        module, attr = _WHERE[name]
        value = getattr(_importlib.import_module(module), attr)
    else:
        ops = _importlib.import_module("symgrad.ir.ops")
        op = ops.lookup(name)
        if op is None and name in _FALLBACKS:
            op = getattr(_importlib.import_module("symgrad.tape.functions"), name)
        if op is None:
            raise AttributeError(f"module 'symgrad' has no attribute {name!r}")
        value = op
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    names: list[str] = __getattr__("__all__")  # type: ignore[assignment]
    return sorted(["__version__", *names])
