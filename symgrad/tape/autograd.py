"""``symgrad.autograd``: the functional interface to the tape and custom functions, as ``torch.autograd``."""

from symgrad.tape.function import Function, FunctionCtx
from symgrad.tape.graph import backward, grad

__all__ = ["Function", "FunctionCtx", "backward", "grad"]
