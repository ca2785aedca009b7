"""Tape backends: the engines whose gradients symgrad checks.

A backend turns numpy inputs into its own leaves, evaluates the IR with its own
ops, runs a VJP with a given ``grad_output`` (and higher orders where the engine
can) and hands the gradients back as numpy arrays; see :class:`Backend`.
``symgrad`` (the package's own tape) is the default; ``torch`` and ``autograd``
(PyTorch, HIPS autograd) load on first use and need their packages
(``pip install symgrad[torch]``).  Third parties plug in an
engine with :func:`register` or the entry-point group ``symgrad.backends``.
"""

from __future__ import annotations

from symgrad.backends.base import Backend, BackendUnavailable, TapeBackend, Unsupported, gradients_by_tape
from symgrad.backends.function import FunctionBackend, FunctionError
from symgrad.backends.registry import available, get, register

__all__ = [
    "Backend", "BackendUnavailable", "FunctionBackend", "FunctionError", "TapeBackend", "Unsupported",
    "gradients_by_tape",
    "available", "get", "register",
]
