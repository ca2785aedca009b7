"""symgrad's own reverse-mode tape on numpy arrays, with PyTorch's semantics (``import symgrad as torch``).

Above :mod:`symgrad.ir`; never imports :mod:`symgrad.symbolic`."""

from symgrad.tape import hooks as _hooks  # noqa: F401 - Tensor.register_hook
from symgrad.tape import inplace as _inplace  # noqa: F401 - add_, mul_, +=, ... that record
from symgrad.tape import methods as _methods  # noqa: F401 - attaches .to(), .double(), ... to Tensor
from symgrad.tape import reductions as _reductions  # noqa: F401 - .norm(), .std(correction=), .amax() ...
from symgrad.tape.creation import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from symgrad.tape.device import device
from symgrad.tape.dtypes import (
    DEFAULT_DTYPE,
    bool_,
    dtype,
    float32,
    float64,
    get_default_dtype,
    int32,
    int64,
    set_default_dtype,
)
from symgrad.tape.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from symgrad.tape.graph import AccumulateGrad, Node, Size, Tensor, backward, grad

__all__ = ["DEFAULT_DTYPE", "AccumulateGrad", "Node", "Size", "Tensor", "arange", "as_tensor", "backward",
           "bool_", "device", "dtype", "empty", "empty_like", "enable_grad", "eye", "float32", "float64",
           "from_numpy", "full", "full_like", "get_default_dtype", "grad", "int32", "int64", "is_grad_enabled",
           "linspace", "manual_seed", "no_grad", "ones", "ones_like", "rand", "rand_like", "randint", "randn",
           "randn_like", "set_default_dtype", "set_grad_enabled", "tensor", "zeros", "zeros_like"]
