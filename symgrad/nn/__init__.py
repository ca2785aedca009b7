"""``symgrad.nn``: the functional namespace only (``symgrad.nn.functional``, ``import symgrad.nn.functional as F``).

There are no modules: no ``nn.Module``, ``nn.Linear`` or ``nn.Parameter``; symgrad checks gradients
of functions, and the functions are in :mod:`symgrad.nn.functional`.
"""

from symgrad.nn import functional

__all__ = ["functional"]
