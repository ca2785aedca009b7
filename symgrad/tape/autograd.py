"""``symgrad.autograd``: the functional interface to the tape, as ``torch.autograd``."""

from .tape import backward, grad

__all__ = ["backward", "grad"]
