"""symgrad's own reverse-mode tape on numpy arrays, with PyTorch's semantics (``import symgrad as torch``).

Above :mod:`symgrad.ir`; never imports :mod:`symgrad.symbolic`."""

from symgrad.tape.creation import as_tensor, ones, ones_like, tensor, zeros, zeros_like
from symgrad.tape.dtypes import DEFAULT_DTYPE, bool_, float32, float64, int64
from symgrad.tape.grad_mode import enable_grad, is_grad_enabled, no_grad
from symgrad.tape.graph import AccumulateGrad, Node, Size, Tensor, backward, grad

__all__ = ["DEFAULT_DTYPE", "AccumulateGrad", "Node", "Size", "Tensor", "as_tensor", "backward", "bool_",
           "enable_grad", "float32", "float64", "grad", "int64", "is_grad_enabled", "no_grad", "ones", "ones_like",
           "tensor", "zeros", "zeros_like"]
