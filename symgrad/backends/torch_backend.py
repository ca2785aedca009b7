"""The ``torch`` backend: PyTorch's autograd, checked against sympy.

Inputs become ``torch.tensor``s of the case's dtype (float64, float32, float16 or bfloat16, CPU);
every op of the table maps to the torch function of the same meaning (found by the
op's name unless the map below says otherwise; an op torch lacks runs as its
composite of other ops, where that agrees with it); gradients
come from ``torch.autograd.grad(..., retain_graph=True, create_graph=k < order,
allow_unused=True)``.

Where torch has a choice, the adapter picks the function whose convention matches
symgrad's (DESIGN.md, "Conventions at non-differentiable points"): reductions
``max``/``min`` use ``torch.amax``/``torch.amin``, which split the gradient evenly
among tied elements (``torch.max(x, dim)`` would give it all to one index).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from symgrad.backends.base import Capabilities, TapeBackend, Unsupported, adapter_table, install_hint
from symgrad.ir import ops
from symgrad.ir.expr import Var, as_expr
from symgrad.ir.ops import Op, normalize_axes
from symgrad.ir.precision import numpy_dtype

try:
    import torch
    import torch.autograd.forward_ad as fwAD
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - exercised where torch is missing
    torch = None  # type: ignore[assignment]


def _dims(x: Any, axis: Any) -> tuple[int, ...]:
    return normalize_axes(axis, x.ndim)


def _reduce(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A torch reduction taking ``dim=`` (a tuple), called with the table's ``axis``."""
    return lambda x, axis=None, keepdims=False: fn(x, dim=_dims(x, axis), keepdim=keepdims)


def _prod(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    if axis is None and not keepdims:
        return torch.prod(x)
    for d in sorted(_dims(x, axis), reverse=True):  # torch.prod takes one dim at a time
        x = torch.prod(x, dim=d, keepdim=keepdims)
    return x


def _logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    if x.ndim == 0:
        return x.clone()  # log(exp(x)); torch.logsumexp wants a dim to reduce
    return torch.logsumexp(x, dim=_dims(x, axis), keepdim=keepdims)


def _one_dim(x: Any, axis: Any) -> int:
    dims = _dims(x, axis)
    if len(dims) != 1:
        raise Unsupported("torch's softmax takes one dim, not a tuple of axes")
    return dims[0]


def _transpose(x: Any, axes: Any = None) -> Any:
    # numpy's transpose: reverse every axis (none for a 0-d tensor)
    return x.permute(tuple(reversed(range(x.ndim))) if axes is None else tuple(axes))


def _index(x: Any, key: tuple) -> Any:
    """numpy's basic indexing; torch refuses negative steps: the forward slice, flipped."""
    items, flips, out_dim = [], [], 0
    for dim, k in ops.index_dims(key, x.ndim):
        if k is Ellipsis:
            items.append(Ellipsis)
            out_dim += dim
            continue
        if isinstance(k, tuple) and k[2] is not None and k[2] < 0:
            picked = range(*slice(*k).indices(x.shape[dim]))
            k = (picked[-1], picked[0] + 1, -k[2]) if len(picked) else (0, 0, None)
            flips.append(out_dim)
        items.append(slice(*k) if isinstance(k, tuple) else k)
        out_dim += isinstance(k, tuple)
    out = x[tuple(items)]
    return torch.flip(out, dims=flips) if flips else out


def _expand_dims(x: Any, axis: Any) -> Any:
    for d in normalize_axes(axis, x.ndim + (len(axis) if isinstance(axis, tuple) else 1)):
        x = x.unsqueeze(d)
    return x


def _squeeze(x: Any, axis: Any = None) -> Any:
    return torch.squeeze(x) if axis is None else torch.squeeze(x, dim=axis)


def _flip(x: Any, axis: Any = None) -> Any:
    return torch.flip(x, dims=_dims(x, axis))


# the map to torch, keyed by the table's ops: only where torch's function has another name or
# signature, or a convention to pick; every other op is found by its name (see `resolve`)
def _mapped() -> dict[Op, Callable[..., Any]]:
    return {
        # the Python operators, as a user writes x ** 2: they take Python scalars, and torch's
        # pow(Tensor, Scalar) has its own backward (exactly 0 for x ** 0, even at second order)
        ops.add: operator.add, ops.sub: operator.sub, ops.mul: operator.mul, ops.div: operator.truediv,
        ops.neg: operator.neg, ops.pow: torch.pow,
        ops.sum: _reduce(torch.sum), ops.mean: _reduce(torch.mean), ops.prod: _prod,
        ops.max: _reduce(torch.amax), ops.min: _reduce(torch.amin), ops.logsumexp: _logsumexp,
        ops.transpose: _transpose,
        # issue 15, part A
        ops.where: lambda c, x, y: torch.where(torch.as_tensor(c) != 0, x, y),
        ops.clip: torch.clamp,
        ops.var: lambda x, axis=None, keepdims=False, ddof=0: torch.var(
            x, dim=_dims(x, axis), correction=ddof, keepdim=keepdims),
        ops.std: lambda x, axis=None, keepdims=False, ddof=0: torch.std(
            x, dim=_dims(x, axis), correction=ddof, keepdim=keepdims),
        ops.softmax: lambda x, axis=-1: torch.softmax(x, dim=_one_dim(x, axis)),
        ops.log_softmax: lambda x, axis=-1: torch.log_softmax(x, dim=_one_dim(x, axis)),
        ops.gelu: F.gelu, ops.elu: F.elu, ops.leaky_relu: F.leaky_relu, ops.hardtanh: F.hardtanh,
        # shapes and indexing (issue 15, part B)
        ops.index: _index,
        ops.broadcast_to: lambda x, shape: x.expand(shape),
        ops.expand_dims: _expand_dims, ops.squeeze: _squeeze, ops.flip: _flip,
        ops.concatenate: lambda x, y, axis=0: torch.cat((x, y), dim=axis),
        ops.stack: lambda x, y, axis=0: torch.stack((x, y), dim=axis),
        # linear algebra (issue 15, part B)
        ops.einsum: _einsum,
        ops.det: torch.linalg.det, ops.inv: torch.linalg.inv, ops.solve: _solve,
        # norm and scans (issue 15): vector_norm's gradient is 0 at the zero vector, as the table's
        ops.norm: lambda x, axis=None, keepdims=False: torch.linalg.vector_norm(x, dim=_dims(x, axis), keepdim=keepdims),
        ops.cumsum: lambda x, axis=None: torch.cumsum(x, dim=0 if axis is None else axis),
        ops.cumprod: lambda x, axis=None: torch.cumprod(x, dim=0 if axis is None else axis),
    }


# ops torch cannot run, with the reason (none today): the case is skipped and says why
UNSUPPORTED: dict[Op, str] = {}
# ops torch cannot run in float16 / bfloat16 ("Low precision dtypes not supported", no Half LU)
_NO_NARROW = frozenset((ops.det, ops.inv, ops.solve))


def _einsum(a: Any, b: Any, subscripts: str) -> Any:
    """torch.einsum takes tensors only: a constant operand (one operand's 1.0, see ops.einsum) becomes one."""
    like = a if isinstance(a, torch.Tensor) else b
    a, b = (x if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=like.dtype) for x in (a, b))
    return torch.einsum(subscripts, a, b)


def _solve(a: Any, b: Any) -> Any:
    """torch.linalg.solve as numpy 2 reads b (see ops.solve): a b of two or more dimensions is a stack of
    matrices, broadcast to the full batch first (torch would read a b of shape a.shape[:-1] as vectors)."""
    if b.ndim >= 2:
        b = b.expand(torch.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + b.shape[-2:])
    return torch.linalg.solve(a, b)


def resolve(op: Op, mapped: dict[Op, Callable[..., Any]]) -> Callable[..., Any] | None:
    """torch's function for ``op``: mapped, else ``torch``, ``torch.special`` or ``F`` by its name or an alias."""
    fn = mapped.get(op)
    if fn is not None:
        return fn
    for name in (op.name, *op.aliases):
        for space in (torch, torch.special, F):
            fn = getattr(space, name, None)
            if callable(fn):
                return fn
    return None


def _tensor(array: Any) -> Any:
    """A fresh torch tensor of a numpy array's dtype, bfloat16 (ml_dtypes' numpy dtype) included."""
    a = np.array(array)
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.tensor(a)


# what torch says when an op or a Function has no forward-mode formula
_NO_FORWARD_AD = re.compile(r"forward(?: mode)? AD|forward-mode|jvp function")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


class TorchBackend(TapeBackend):
    name = "torch"
    tensor_name = "torch.Tensor"

    def __init__(self) -> None:
        if torch is None:
            raise install_hint("torch", "torch")
        self.ops, runnable = adapter_table(resolve, _mapped(), UNSUPPORTED)
        self.capabilities = Capabilities(ops=runnable, dtypes=("float64", "float32", "float16", "bfloat16"),
                                         devices=("cpu", "cuda"), forward=True,
                                         forward_note="torch.autograd.forward_ad: dual tensors")
        self.device = torch.device("cpu")

    @contextmanager
    def on_device(self, device: str) -> Iterator[None]:
        if device.startswith("cuda"):
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            index = int(device.partition(":")[2] or 0)
            if index >= count:
                raise Unsupported(f"device {device} (no CUDA device)" if not count else
                                  f"device {device} (this machine has {count} CUDA device(s))")
        old, self.device = self.device, torch.device(device)
        try:
            yield
        finally:
            self.device = old

    def leaf(self, array: np.ndarray, requires_grad: bool) -> Any:
        # keeps float64 / float32 / float16 / bfloat16; on the case's device
        return _tensor(array).to(self.device).requires_grad_(requires_grad)

    def apply(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        fn = self.ops.get(op)
        if fn is None:
            return self._composite(op, args, params)
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if op in _NO_NARROW and tensors and tensors[0].dtype in (torch.float16, torch.bfloat16):
            raise Unsupported(f"op {op.name!r} in {str(tensors[0].dtype).removeprefix('torch.')} "
                              "(torch.linalg has no 16-bit factorizations)")
        if not tensors:  # constants only (the -0.5 of x**-0.5): fold to a Python float
            return float(fn(*(torch.tensor(a, dtype=torch.float64) for a in args), **params))
        # a folded array constant (stack((1.0, -2.0))) as a tensor: torch's operators refuse a numpy array
        like: dict[str, Any] = {"dtype": tensors[0].dtype, "device": tensors[0].device}
        args = [torch.tensor(a, **like) if isinstance(a, np.ndarray) else a for a in args]
        if op.infix is None:
            # torch.maximum, atan2, ... want tensors: a 0-d tensor never promotes a float32 array;
            # Python scalars stay scalars for the operators, as a user writes x ** 2
            args = [a if isinstance(a, torch.Tensor) else torch.tensor(a, **like) for a in args]
        return fn(*args, **params)

    def _composite(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        """``op`` as its composite of other ops of the table, where that agrees with it (inside its domain)."""
        if op.composite is None:
            reason = UNSUPPORTED.get(op)
            raise Unsupported(f"op {op.name!r}" + (f" ({reason})" if reason else ""))
        values = [self.to_numpy(a) if isinstance(a, torch.Tensor) else a for a in args]
        if not np.all(op.inside(*values)):
            raise Unsupported(f"op {op.name!r} where its derivatives are not all finite ({op.domain_text}): "
                              "torch lacks it, and its composite may differ from its convention there")
        expr = as_expr(op.composite(*(Var(n) for n in op.args), **params))
        return self.walk(expr, dict(zip(op.args, args)))

    def grad(self, output: Any, inputs: list[Any], grad_output: np.ndarray | None,
             create_graph: bool) -> list[Any | None]:
        if not isinstance(output, torch.Tensor) or not output.requires_grad:
            return [None] * len(inputs)  # nothing on the graph: torch would raise
        seed = None if grad_output is None else _tensor(grad_output).to(dtype=output.dtype, device=output.device)
        if seed is not None:
            seed = seed.expand(output.shape) if seed.shape != output.shape else seed
        return list(torch.autograd.grad(output, inputs, grad_outputs=seed, retain_graph=True,
                                        create_graph=create_graph, allow_unused=True))

    def forward_jvp(self, fn: Callable[..., Any], primals: list[np.ndarray],
                    tangents: list[np.ndarray]) -> tuple[Any, Any | None]:
        # torch's forward AD (dual tensors) rather than torch.func.jvp: it runs an autograd.Function's
        # `jvp` staticmethod without the functorch-only `setup_context`, as a user's Function is written
        with fwAD.dual_level():
            duals = [fwAD.make_dual(torch.tensor(np.array(p)), torch.tensor(np.asarray(t, dtype=p.dtype)))
                     for p, t in zip(primals, tangents)]
            try:
                out = fn(*duals)
            except Exception as exc:  # an op, or a Function without `jvp`, that has no forward AD (also
                if not _NO_FORWARD_AD.search(str(exc)):  # inside check_function's FunctionError): a skip
                    raise
                raise Unsupported(f"forward mode here: {_first_line(exc)}") from exc
            if not isinstance(out, torch.Tensor):
                return out, None
            primal, tangent = fwAD.unpack_dual(out)
            return primal.detach().clone(), None if tangent is None else tangent.detach().clone()

    def sum(self, value: Any) -> Any:
        return value.sum()

    def to_numpy(self, value: Any) -> np.ndarray:
        if isinstance(value, torch.Tensor):
            if value.dtype == torch.bfloat16:  # numpy's bfloat16 is ml_dtypes': through its bits
                bits = value.detach().cpu().resolve_conj().resolve_neg().contiguous().view(torch.int16)
                return bits.numpy(force=True).copy().view(numpy_dtype("bfloat16"))
            return value.detach().cpu().numpy(force=True).copy()  # force: zero tensors of double backward
        return np.asarray(value)

    def is_tensor(self, value: Any) -> bool:
        return isinstance(value, torch.Tensor)
