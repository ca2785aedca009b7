"""``symgrad.func``: function transforms, as ``torch.func`` (``symgrad.func.jvp``)."""

from symgrad.tape.forward import jvp

__all__ = ["jvp"]
