"""``symgrad.autograd``: the functional interface to the tape, as ``torch.autograd``."""

from symgrad.tape.graph import backward, grad

__all__ = ["backward", "grad"]
