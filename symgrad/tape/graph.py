"""A reverse-mode tape on numpy arrays with PyTorch's semantics.

Every op of the table, applied to a ``Tensor``, computes its numpy forward and,
when gradients are wanted, records a ``Node`` (the tensor's ``grad_fn``) that
keeps the inputs and the output.  ``backward`` walks the nodes in reverse
topological order and calls each op's VJPs; the VJPs are written with the
table's functions, so with ``create_graph=True`` running them records a new
graph that can be differentiated again.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Union

import numpy as np

from symgrad.ir import ops
from symgrad.ir.ops import Op
from symgrad.tape import dtypes, grad_mode, printing
from symgrad.tape.dtypes import float32, int64
from symgrad.tape.grad_mode import enable_grad, is_grad_enabled, no_grad


class Size(tuple):
    def __repr__(self) -> str:
        return f"torch.Size({list(self)})"


class _Meta:
    """What a node keeps of a value its VJPs do not read (undeclared in the op's ``saves``): its shape
    and dtype, as PyTorch's sym_sizes.  Anything else done with it raises, so a VJP that reads more
    than its op declares fails loudly instead of computing with a stale or missing value."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    @classmethod
    def of(cls, t: Tensor) -> _Meta:
        meta = cls.__new__(cls)  # a tensor's array has a tuple shape and an np.dtype already: no conversions
        meta.shape, meta.dtype = t._data.shape, t._data.dtype
        return meta

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise self._error()

    def _error(self) -> Exception:
        return TypeError("a VJP read a value its op does not declare in saves= (it has only shape and dtype)")

    __array__ = __array_ufunc__ = __bool__ = __float__ = __index__ = __len__ = _refuse
    __iter__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _refuse
    __pow__ = __rpow__ = __matmul__ = __rmatmul__ = __neg__ = __abs__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __and__ = __rand__ = __or__ = __ror__ = _refuse
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<not saved: shape {self.shape}, {self.dtype}>"


def _torch_node(op: Op, params: dict[str, Any], inputs: tuple) -> tuple[str, tuple[int, ...]]:
    """PyTorch's name for the backward node and which inputs appear in its ``next_functions``.

    PyTorch picks an ATen overload from the operand types, and the overload fixes the node's name
    (``x ** 2`` is ``pow.Tensor_Scalar``: PowBackward0; ``x ** y``: PowBackward1; ``2 ** x``:
    PowBackward2; ``1 - x`` is ``rsub.Scalar``: RsubBackward1).  A Scalar argument is no tensor input,
    so it has no slot in ``next_functions`` (a Python number in ``x * 2`` is wrapped into a tensor
    by ``mul.Tensor`` and keeps its ``(None, 0)`` slot, second also in ``2 * x``, which Python runs as
    ``x.__rmul__(2)``).
    """
    slots = tuple(range(len(inputs)))
    scalar = [not isinstance(a, (Tensor, _Meta)) for a in inputs]  # a node's unsaved tensors are _Meta
    if op.name == "pow":
        if scalar[1]:
            return "PowBackward0", (0,)
        if scalar[0]:
            return "PowBackward2", (1,)
        return "PowBackward1", slots
    if op.name == "sub" and scalar[0]:
        return "RsubBackward1", (1,)
    if op.name in ("add", "mul") and scalar[0] and not scalar[1]:  # `2 * x` runs as torch.mul(x, 2)
        return op.grad_fn_name(params), (1, 0)
    if op.name in ("max", "min"):  # max(Tensor) is listed after max.dim in derivatives.yaml
        return op.name.capitalize() + ("Backward1" if params.get("axis") is None else "Backward0"), slots
    if op.name == "logsumexp":  # a single overload (with dim)
        return "LogsumexpBackward0", slots
    if op.name == "matmul":  # torch.matmul dispatches on the operands' dimensions
        dims = tuple(len(_shape_of(a)) for a in inputs)
        names: dict[tuple[int, ...], str] = {(1, 1): "DotBackward0", (2, 1): "MvBackward0", (1, 2): "SqueezeBackward4"}
        name = names.get(dims)
        return name or op.grad_fn_name(params), slots
    return op.grad_fn_name(params, tuple(_shape_of(a) for a in inputs)), slots


def _shape_of(a: Any) -> tuple[int, ...]:
    return tuple(a.shape) if isinstance(a, (Tensor, _Meta)) else np.shape(a)



class AccumulateGrad:
    """The end of the graph at a leaf: gradients arriving here go into ``leaf.grad``."""

    hooks: dict | None = None  # the leaf's tensor hooks (register_hook), by handle id
    edges: tuple = ()  # the end of the graph: no gradient goes further

    def __init__(self, leaf: Tensor):
        self.variable = leaf
        self.next_functions: tuple = ()

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"


class Node:
    """A recorded op application: the ``grad_fn`` of its output."""

    __slots__ = ("op", "params", "inputs", "ans", "edges", "saves", "freed", "retained", "_name", "_slots",
                 "versions", "hooks", "__weakref__")

    def __init__(self, op: Op, params: dict[str, Any], inputs: tuple, ans: np.ndarray):
        self.op, self.params = op, params
        self.edges = edges = tuple([_edge(a) if vjp is not None else None for vjp, a in zip(op.vjps, inputs)])
        # torch's name and next_functions slots: worked out when first asked
        self._name: str | None = None
        self._slots: tuple[int, ...] | None = None
        # save what the op declares the VJPs of the inputs that get a gradient read; of the rest the shape
        reads = op.saved(tuple([e is not None for e in edges]))
        self.ans = ans if reads[0] else None
        kept: list[Any] = []
        versions: list[int | None] = []
        saves = reads[0]
        for a, keep in zip(inputs, reads[1:]):
            if isinstance(a, Tensor):
                if keep:
                    kept.append(a)
                    versions.append(a._version)  # a saved tensor modified in place before backward: an error
                    saves = True
                else:
                    kept.append(_Meta.of(a))
                    versions.append(None)
            else:
                kept.append(a)
                versions.append(None)
                # a number a VJP reads counts as saved: torch wraps it in a tensor it saves (x * 2 cannot
                # backward twice)
                saves = saves or (keep and isinstance(a, (int, float)))
        self.inputs, self.versions, self.saves = tuple(kept), tuple(versions), saves
        self.freed = False
        self.retained: Tensor | None = None  # a non-leaf output that asked to retain_grad()
        self.hooks: dict | None = None  # its output's tensor hooks (register_hook), by handle id

    def _torch_names(self) -> None:
        """Fill in torch's node name and slots, each unless already set (the tape's torch spellings set them)."""
        name, slots = _torch_node(self.op, self.params, self.inputs)
        self._name = name if self._name is None else self._name
        self._slots = slots if self._slots is None else self._slots

    def name(self) -> str:
        if self._name is None:
            self._torch_names()
        return self._name  # type: ignore[return-value]

    @property
    def next_functions(self) -> tuple:
        if self._slots is None:
            self._torch_names()
        assert self._slots is not None
        return tuple((self.edges[i], 0) for i in self._slots)

    def __repr__(self) -> str:
        return f"<{self.name().rpartition('::')[2]} object at {id(self):#x}>"  # CopyBackwards' name has torch's C++ namespace

    def free(self) -> None:
        if self.saves:
            self.inputs = tuple([_Meta.of(a) if isinstance(a, Tensor) else a for a in self.inputs])
            self.ans = None
            self.freed = True


Edge = Union[Node, AccumulateGrad, None]  # noqa: UP007


def _edge(t: Any) -> Edge:
    """Where a gradient for ``t`` must go: its grad_fn, its AccumulateGrad, or nowhere."""
    if not isinstance(t, Tensor) or not t._requires_grad:
        return None
    if t.grad_fn is not None:
        return t.grad_fn
    if t._accumulator is None:
        t._accumulator = AccumulateGrad(t)
    return t._accumulator


def _unwrap(a: Any) -> Any:
    return a._data if isinstance(a, Tensor) else a


# table ops that torch spells with other arguments (torch.norm(t, p, dim), torch.std(t) with correction 1,
# torch.clamp(t, min=0)): op -> (the torch-facing function, numpy's keywords, which keep the table's op);
# filled by tape/reductions.py and tape/functions.py.  The checking backend calls apply_table instead.
TORCH_SPELLINGS: dict[Op, tuple[Any, frozenset[str]]] = {}


def apply_table(op: Op, args: Sequence[Any], params: dict[str, Any]) -> Any:
    """``op`` on tensors exactly as the op table defines it (``std`` with numpy's ``ddof=0``), never torch's
    spelling of it: how the checking backend evaluates a case's expression."""
    for a in args:
        if isinstance(a, Tensor):
            return _record(op, tuple(args), params)
    return op(*args, **params)


def _record(op: Op, args: tuple, params: dict[str, Any]) -> Tensor:
    """Apply ``op`` to tensors: numpy forward, plus a graph node when a gradient is wanted."""
    for a in args:
        if not (isinstance(a, Tensor) or type(a) in _NUMBERS):  # np.float64 (a float subclass) is converted
            args = tuple(_as_operand(a) for a in args)
            break
    token = _quiet()
    try:
        out = op.forward(*[a._data if isinstance(a, Tensor) else a for a in args], **params)
    except np.exceptions.AxisError as exc:  # a reduction's dim out of range, in torch's words
        low, high = (-exc.ndim, exc.ndim - 1) if exc.ndim else (-1, 0)
        raise DimensionError(f"Dimension out of range (expected to be in range of [{low}, {high}], but got "
                             f"{exc.axis})") from None
    except ValueError as exc:  # shapes that do not fit: torch's words where it has them
        raise _shape_error(op, [np.shape(_unwrap(a)) for a in args]) or exc from None
    finally:
        _loud(token)
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    if grad_mode._grad_enabled:
        for vjp, a in zip(op.vjps, args):
            if vjp is not None and isinstance(a, Tensor) and a._requires_grad:
                return Tensor._make(out, Node(op, params, args, out))
    return Tensor._make(out)


_NUMBERS = (float, int, bool)


def _binary(op: Op, a: Any, b: Any) -> Tensor:
    """An operator's op on a tensor and a tensor or a number, recorded without the dispatch of ``ops.apply``
    (which would hand it to the tensor's ``__symgrad_apply__`` and on to ``_record``); any other operand goes
    through the dispatch."""
    if (isinstance(a, Tensor) or type(a) in _NUMBERS) and (isinstance(b, Tensor) or type(b) in _NUMBERS):
        return _record(op, (a, b), {})
    return op(a, b)

# numpy's error state "ignore" around each forward, as np.errstate(all="ignore") sets it but without building
# the context manager and its state each time (2 us an op): numpy's own context variable, set and reset;
# np.errstate where this numpy has no such variable
try:
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - another numpy layout
    _extobj_contextvar = None
_IGNORING: list[Any] = [None, None]  # (the state it was made from, the state with every error ignored)


def _quiet() -> Any:
    if _extobj_contextvar is None:  # pragma: no cover
        state = np.errstate(all="ignore")
        state.__enter__()
        return state
    current = _extobj_contextvar.get()
    if current is _IGNORING[1]:  # already ignoring (inside a walk or a backward pass): nothing to set or reset
        return None
    if current is not _IGNORING[0]:
        _IGNORING[:] = [current, _make_extobj(all="ignore")]  # keeps the caller's buffer size and callback
    return _extobj_contextvar.set(_IGNORING[1])


def _loud(token: Any) -> None:
    if token is None:
        return
    if _extobj_contextvar is None:  # pragma: no cover
        token.__exit__(None, None, None)
    else:
        _extobj_contextvar.reset(token)


_WARNED_SCALAR = False
_NON_LEAF_FLAG = "you can only change requires_grad flags of leaf variables."
_NON_LEAF_HINT = (" If you want to use a computed variable in a subgraph that doesn't require differentiation use "
                  "var_no_grad = var.detach().")


def _leaf_requires_grad(arr: np.ndarray, requires_grad: bool) -> bool:
    """A constructor's ``requires_grad=`` (torch.tensor, torch.ones ...), with torch's text for an integer dtype."""
    if requires_grad and arr.dtype.kind not in "fc":
        raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
    return bool(requires_grad)


class ShapeError(RuntimeError, ValueError):
    """Shapes that do not fit, in torch's words: a RuntimeError as torch raises, and still the ValueError
    numpy raised (for code that catches that); printed as plain ``RuntimeError``, as torch's."""

    __module__ = "builtins"


ShapeError.__name__ = ShapeError.__qualname__ = "RuntimeError"


class DimensionError(IndexError, ValueError):
    """A dim out of range: torch's IndexError, and numpy's AxisError was a ValueError too."""

    __module__ = "builtins"


DimensionError.__name__ = DimensionError.__qualname__ = "IndexError"


def _shape_error(op: Op, shapes: list[tuple[int, ...]]) -> RuntimeError | None:
    """torch's message for operands whose shapes do not broadcast (or multiply); None where it has none here."""
    if op is ops.matmul and len(shapes) == 2:
        (a, b), dims = shapes, tuple(len(s) for s in shapes)
        if dims == (2, 2):
            return ShapeError(f"mat1 and mat2 shapes cannot be multiplied ({a[0]}x{a[1]} and {b[0]}x{b[1]})")
        if dims == (1, 1):
            return ShapeError(f"inconsistent tensor size, expected tensor [{a[0]}] and src [{b[0]}] to have the "
                                f"same number of elements, but got {a[0]} and {b[0]} elements respectively")
        if dims == (2, 1):
            return ShapeError(f"size mismatch, got input ({a[0]}), mat ({a[0]}x{a[1]}), vec ({b[0]})")
        return None
    if op.kind != ops.ELEMENTWISE:
        return None
    n = max(len(s) for s in shapes)
    for i in range(1, n + 1):  # from the last dimension, as broadcasting reads them
        sizes = [s[-i] for s in shapes if i <= len(s) and s[-i] != 1]
        other = [k for k in sizes if k != sizes[0]]
        if other:
            return ShapeError(f"The size of tensor a ({sizes[0]}) must match the size of tensor b ({other[0]}) "
                                f"at non-singleton dimension {n - i}")
    return None


def _as_operand(a: Any) -> Any:
    """Tensors stay; Python and numpy scalars stay numbers (weak dtype); arrays become constant tensors."""
    if isinstance(a, np.generic):  # before the check below: np.float64 is a subclass of float
        return a.item()
    if isinstance(a, (Tensor, bool, int, float)):
        return a
    return Tensor._make(np.asarray(a))


class Tensor:
    """An n-dimensional array that can record the ops applied to it."""

    __slots__ = ("_data", "_requires_grad", "_grad", "grad_fn", "_accumulator", "_retains_grad", "_version",
                 "__weakref__")
    __array_ufunc__ = None  # numpy defers to our reflected operators

    def __init__(self, *data: Any, requires_grad: bool = False, dtype: Any = None):
        # as torch.Tensor: Tensor(2, 3) is a (zero-filled) 2x3 tensor, Tensor([1.0]) holds float32
        if all(isinstance(d, int) and not isinstance(d, bool) for d in data):
            arr = np.zeros(data, dtype=np.dtype(dtype or float32))
        elif len(data) == 1:
            arr = _to_array(data[0], float32 if dtype is None else dtype)
        else:
            raise TypeError(f"Tensor() takes one sequence or a shape of ints, got {len(data)} arguments")
        self._data = arr
        self.grad_fn: Node | None = None
        self._grad: Tensor | None = None
        self._accumulator: AccumulateGrad | None = None
        self._retains_grad = False
        self._requires_grad = False
        self._version = 0  # bumped by every in-place change
        self._requires_grad = _leaf_requires_grad(arr, requires_grad)

    @classmethod
    def _make(cls, data: np.ndarray, node: Node | None = None) -> Tensor:
        t = cls.__new__(cls)
        t._data, t.grad_fn, t._grad, t._accumulator, t._retains_grad = data, node, None, None, False
        t._version = 0
        t._requires_grad = node is not None
        return t

    # -- the op table, through dispatch
    def __symgrad_apply__(self, op: Op, args: tuple, params: dict[str, Any]) -> Tensor:
        spelling = TORCH_SPELLINGS.get(op)
        if spelling is not None and not params.keys() & spelling[1]:
            return spelling[0](*args, **params)  # torch.std(t), torch.norm(t, 1), torch.clamp(t, 0): as torch
        return _record(op, args, params)

    # -- autograd attributes
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        # torch's three texts: the attribute, requires_grad_() and a constructor's keyword each word it their way
        if self.grad_fn is not None:
            raise RuntimeError(_NON_LEAF_FLAG if value else _NON_LEAF_FLAG + _NON_LEAF_HINT)
        if value and self._data.dtype.kind not in "fc":
            raise RuntimeError("only Tensors of floating point and complex dtype can require gradients")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if self.grad_fn is not None and requires_grad:
            return self  # already requires grad: nothing to change, as torch
        if requires_grad and self._data.dtype.kind not in "fc":
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def grad(self) -> Tensor | None:
        if not self.is_leaf and not self._retains_grad:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
                "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
                "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If you "
                "access the non-leaf Tensor by mistake, make sure you access the leaf Tensor instead. See "
                "github.com/pytorch/pytorch/pull/30531 for more information.",
                UserWarning, stacklevel=2,
            )
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        self._grad = value

    def retain_grad(self) -> None:
        if self.grad_fn is not None:
            self._retains_grad = True
            self.grad_fn.retained = self
        elif not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def backward(self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
                 inputs: Sequence[Tensor] | None = None) -> None:
        backward([self], None if gradient is None else [gradient], retain_graph, create_graph, inputs)

    def detach(self) -> Tensor:
        return Tensor._make(self._data)

    def detach_(self) -> Tensor:
        self.grad_fn, self._requires_grad = None, False
        return self

    def clone(self) -> Tensor:
        return ops.clone(self)

    # -- array attributes
    @property
    def data(self) -> Tensor:
        return Tensor._make(self._data)

    @data.setter
    def data(self, value: Any) -> None:
        self._data = _to_array(_unwrap(value), None)

    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    @property
    def dtype(self) -> dtypes.dtype:
        return dtypes.of(self._data.dtype)

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    @property
    def T(self) -> Tensor:
        return ops.transpose(self)

    def t(self) -> Tensor:
        if self._data.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self._data.ndim}D")
        out = ops.transpose(self)
        if out.grad_fn is not None:
            out.grad_fn._name = "TBackward0"  # torch's t(), not permute
        return out

    def item(self) -> Any:
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        return self._data.reshape(()).item()

    def tolist(self) -> Any:
        return self._data.tolist()

    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
            )
        return self._data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._data if dtype is None else self._data.astype(dtype)

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self._data.reshape(()))

    def __float__(self) -> float:
        return float(self._scalar())

    def __int__(self) -> int:
        return int(self._scalar())

    def _scalar(self) -> Any:
        """float(t), int(t): torch's ValueError for several elements, its warning for a tensor requiring grad."""
        global _WARNED_SCALAR
        if self._requires_grad and not _WARNED_SCALAR:  # once a process, as torch's TORCH_WARN_ONCE
            _WARNED_SCALAR = True
            warnings.warn("Converting a tensor with requires_grad=True to a scalar may lead to unexpected behavior.\n"
                          "Consider using tensor.detach() first.", UserWarning, stacklevel=3)
        if self._data.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return self.item()

    def __hash__(self) -> int:
        return id(self)

    def __getitem__(self, index: Any) -> Tensor:
        index = _unwrap(index)
        try:
            key = ops.encode_key(index)
        except TypeError:  # advanced indexing (arrays, booleans): not recorded
            if self.requires_grad and is_grad_enabled():
                raise NotImplementedError(
                    "symgrad's tape records indexing with integers, slices and ... only") from None
            return Tensor._make(np.asarray(self._data[index]))
        return ops.index(self, key=key)

    def __iter__(self) -> Iterator[Tensor]:
        return (self[i] for i in range(len(self)))

    # -- arithmetic (recorded) and comparison (not recorded)
    # straight to the tape where the operands are tensors and numbers (what ops.apply would pick anyway)
    def __add__(self, o: Any) -> Tensor: return _binary(ops.add, self, o)
    def __radd__(self, o: Any) -> Tensor: return _binary(ops.add, o, self)
    def __sub__(self, o: Any) -> Tensor: return _binary(ops.sub, self, o)
    def __rsub__(self, o: Any) -> Tensor: return _binary(ops.sub, o, self)
    def __mul__(self, o: Any) -> Tensor: return _binary(ops.mul, self, o)
    def __rmul__(self, o: Any) -> Tensor: return _binary(ops.mul, o, self)
    def __truediv__(self, o: Any) -> Tensor: return _binary(ops.div, self, o)
    def __rtruediv__(self, o: Any) -> Tensor:
        if not isinstance(o, (bool, int, float)):
            return ops.div(o, self)
        # as torch: a number over a tensor is the number times the tensor's reciprocal
        inv = ops.pow(self, -1)
        if inv.grad_fn is not None:
            inv.grad_fn._name = "ReciprocalBackward0"
        return ops.mul(inv, o)

    def __pow__(self, o: Any) -> Tensor: return _binary(ops.pow, self, o)
    def __rpow__(self, o: Any) -> Tensor: return _binary(ops.pow, o, self)
    def __matmul__(self, o: Any) -> Tensor: return ops.matmul(self, o)
    def __rmatmul__(self, o: Any) -> Tensor: return ops.matmul(o, self)
    def __neg__(self) -> Tensor: return _record(ops.neg, (self,), {})
    def __pos__(self) -> Tensor: return self
    def __abs__(self) -> Tensor: return ops.abs(self)

    def _compare(self, o: Any, fn: Any) -> Tensor:
        return Tensor._make(np.asarray(fn(self._data, _unwrap(o))))

    def __eq__(self, o: Any) -> Tensor: return self._compare(o, np.equal)  # type: ignore[override]
    def __ne__(self, o: Any) -> Tensor: return self._compare(o, np.not_equal)  # type: ignore[override]
    def __lt__(self, o: Any) -> Tensor: return self._compare(o, np.less)
    def __le__(self, o: Any) -> Tensor: return self._compare(o, np.less_equal)
    def __gt__(self, o: Any) -> Tensor: return self._compare(o, np.greater)
    def __ge__(self, o: Any) -> Tensor: return self._compare(o, np.greater_equal)
    def __and__(self, o: Any) -> Tensor: return self._compare(o, np.logical_and)
    def __or__(self, o: Any) -> Tensor: return self._compare(o, np.logical_or)
    # `bool & tensor`: VJPs combine Python-scalar tests with tensor ones (e.g. pow's d/dy of `2.0 ** x`)
    def __rand__(self, o: Any) -> Tensor: return self._compare(o, np.logical_and)
    def __ror__(self, o: Any) -> Tensor: return self._compare(o, np.logical_or)
    def __invert__(self) -> Tensor: return Tensor._make(np.logical_not(self._data))

    def _inplace(self, o: Any, fn: Any) -> Tensor:
        if is_grad_enabled() and self.requires_grad:
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation."
                if self.is_leaf else "in-place operations on tensors that require grad are not supported"
            )
        fn(self._data, _unwrap(o), out=self._data, casting="same_kind")
        self._version += 1
        return self

    # add_, +=, zero_ and the other in-place ops that can record: symgrad/tape/inplace.py

    def __repr__(self) -> str:
        return printing.tensor_repr(self)

    __str__ = __repr__


def _method(op: Op) -> Any:
    """``Tensor.<op>``: ``x.exp()``, ``x.pow(2)``, ``x.sum(dim=0)`` (PyTorch's ``dim`` or numpy's ``axis``)."""
    if op.kind == ops.REDUCTION:
        def reduction(self: Tensor, dim: Any = None, axis: Any = None, keepdim: bool = False,
                      keepdims: bool = False) -> Tensor:
            return op(self, axis=_axis(dim, axis), keepdims=(keepdim or keepdims) or None)

        return reduction
    if op.kind == ops.SCAN:
        def scan(self: Tensor, dim: Any = None, axis: Any = None) -> Tensor:  # x.softmax(-1)
            value = _axis(dim, axis)
            return op(self) if value is None else op(self, axis=value)

        return scan
    return lambda self, *others, **params: op(self, *others, **params)  # x.elu(alpha=2.0), x.clip(lo, hi)


# Methods generated from the op table: every public elementwise op and reduction by its name.
for _op in ops.public_ops():
    if _op.kind in (ops.ELEMENTWISE, ops.REDUCTION, ops.SCAN) and not hasattr(Tensor, _op.name):
        setattr(Tensor, _op.name, _method(_op))


def _axis(dim: Any, axis: Any) -> Any:
    value = axis if dim is None else dim
    return tuple(value) if isinstance(value, list) else value


def _to_array(data: Any, dtype: Any) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data._data
    if dtype is not None:
        return np.array(data, dtype=np.dtype(dtype))
    arr = np.array(data)  # the copy; the casts below copy only when the dtype changes
    if arr.dtype.kind == "f" and arr.dtype != float32.dtype:  # numpy's dtypes compared: no conversion
        arr = arr.astype(dtypes.default_dtype().dtype, copy=False)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(int64.dtype, copy=False)
    elif arr.dtype.kind not in "fb":
        raise TypeError(f"can't convert {arr.dtype} data to a tensor")
    return arr


# ---------------------------------------------------------------- the backward pass


def _topological(roots: Iterable[Edge]) -> list[Node | AccumulateGrad]:
    """Nodes reachable from ``roots``, each after every node that sends it a gradient."""
    order: list[Node | AccumulateGrad] = []
    seen: set[Node | AccumulateGrad] = set()
    for root in roots:
        if root is None or root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(root.edges))]
        while stack:  # iterative DFS: post-order, so deep graphs do not hit the recursion limit
            node, children = stack[-1]
            for child in children:  # resumes where it left off
                if child is not None and child not in seen:
                    seen.add(child)
                    stack.append((child, iter(child.edges)))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _make_grads(outputs: Sequence[Tensor], grad_outputs: Sequence[Any] | None) -> list[Tensor]:
    grads = []
    for i, out in enumerate(outputs):
        g = None if grad_outputs is None else grad_outputs[i]
        if g is None:
            if out._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            g = Tensor._make(np.ones_like(out._data))
        else:
            g = g if isinstance(g, Tensor) else Tensor._make(np.asarray(g, dtype=out.dtype))
            if g.dtype != out.dtype and g.dtype.kind == "f" and out.dtype.kind == "f" and not g.requires_grad:
                # PyTorch's engine casts a grad_output to its output's dtype (validate_outputs)
                g = Tensor._make(g._data.astype(out.dtype))
            if g.shape != out.shape:
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape!r} and "
                    f"output[{i}] has a shape of {out.shape!r}."
                )
        grads.append(g)
    return grads


def _run(outputs: Sequence[Tensor], grad_outputs: Sequence[Any] | None, retain_graph: bool | None,
         create_graph: bool, capture: Mapping[int, Edge] | None = None) -> dict[int, tuple[Any, bool]]:
    """The engine: propagate gradients from ``outputs``.

    Without ``capture`` gradients accumulate into leaves' ``.grad``; with it
    (``autograd.grad``), the gradients arriving at the captured edges are
    returned by ``id`` of the edge instead, as ``(gradient, owned)``, and no
    ``.grad`` is touched.

    With ``create_graph`` gradients are tensors and the VJPs record a graph.
    Without it they are plain numpy arrays: no wrappers, and numpy reuses its
    temporaries inside a VJP.  Each pending gradient carries ``owned``: True
    when it is a fresh array that nothing else references, so that further
    gradients for the same node are added into it in place and a leaf takes it
    as its ``.grad`` without a copy.
    """
    for out in outputs:
        if not out.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    retain = create_graph if retain_graph is None else retain_graph
    grads = _make_grads(outputs, grad_outputs)
    roots = [_edge(out) for out in outputs]
    pending: dict[Edge, tuple[Any, bool]] = {}  # by node: (gradient so far, owned)
    for root, g in zip(roots, grads):
        _accumulate(pending, root, g if create_graph else g._data, False)
    captured: dict[int, tuple[Any, bool]] = {}
    token = _quiet()
    try:
        with enable_grad() if create_graph else no_grad():
            for node in _topological(roots):
                entry = pending.pop(node, None)
                if entry is None:
                    continue
                if node.hooks:
                    entry = _run_hooks(node.hooks, entry, create_graph)
                if capture is not None and id(node) in capture:
                    captured[id(node)] = entry
                if isinstance(node, AccumulateGrad):
                    if capture is None:
                        _deposit(node.variable, *entry, create_graph)
                    continue
                if node.retained is not None and capture is None:
                    _deposit(node.retained, *entry, create_graph)
                _propagate(node, entry[0], pending, create_graph)
                if not retain:
                    node.free()  # its saved tensors go as soon as its VJPs have run
    finally:
        _loud(token)
    return captured


def _propagate(node: Node, g: Any, pending: dict[Edge, tuple[Any, bool]], create_graph: bool) -> None:
    if node.freed:
        raise RuntimeError(
            "Trying to backward through the graph a second time (or directly access saved tensors after "
            "they have already been freed). Saved intermediate values of the graph are freed when you call "
            ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
            "graph a second time or if you need to access saved tensors after calling backward."
        )
    ans: Any
    args: tuple[Any, ...]
    op, inputs = node.op, node.inputs
    if create_graph:  # tensors: the output on the graph, so its use in a VJP is differentiated too
        ans = None if node.ans is None else Tensor._make(node.ans, node)
        args = inputs
    else:  # plain numpy: the table's functions just compute
        ans = node.ans
        args = tuple([a._data if isinstance(a, Tensor) else a for a in inputs])
    for a, saved in zip(inputs, node.versions):
        if saved is not None and a._version != saved:
            raise RuntimeError(modified_message(a, a.grad_fn, saved))
    # a gradient a table VJP returns is fresh unless it is one of these arrays or a view; a VJP of a user's
    # op (a custom Function, an unregistered Op) may return an array the user holds: never owned
    given: list[Any] | None = [g, ans, *args] if ops.OPS.get(op.name) is op else None
    params = node.params
    for edge, vjp, x in zip(node.edges, op.vjps, inputs):
        if edge is None:
            continue
        assert vjp is not None  # an edge exists only where a VJP does
        gi = vjp(g, ans, *args, **params)
        if create_graph:
            shape, dtype = x.shape, x.dtype
            gi = gi if isinstance(gi, Tensor) else Tensor._make(np.asarray(gi))
            if gi.shape != shape:
                gi = ops.sum_to(gi, shape=tuple(shape))
            if gi.dtype != dtype and gi.dtype.kind == "f" and dtype.kind == "f":
                # as PyTorch's engine (validate_outputs): a gradient takes its input's dtype
                gi = ops.cast(gi, dtype=dtype) if gi.requires_grad else Tensor._make(gi._data.astype(dtype))
            _accumulate(pending, edge, gi, False)
            continue
        if isinstance(gi, Tensor):
            gi = gi._data
        elif type(gi) is not np.ndarray:
            gi = np.asarray(gi)
        shape, dtype = (x._data.shape, x._data.dtype) if isinstance(x, Tensor) else (x.shape, x.dtype)
        owned = given is not None and gi.base is None
        if owned:
            for a in given:  # type: ignore[union-attr]
                if a is gi:
                    owned = False
                    break
        if gi.shape != shape:
            gi, owned = ops.unbroadcast(gi, shape), False
        gtype = gi.dtype
        if gtype is not dtype and gtype != dtype and gtype.kind == "f" and dtype.kind == "f":
            gi, owned = gi.astype(dtype), True
        if given is not None:
            given.append(gi)
        _accumulate(pending, edge, gi, owned)


def _type_name(arr: np.ndarray) -> str:
    kind = {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}.get(arr.dtype.name, "")
    return f"torch.{kind}Tensor"


def _run_hooks(hooks: dict, entry: tuple[Any, bool], create_graph: bool) -> tuple[Any, bool]:
    """A tensor's hooks, in the order registered, on its whole gradient: each sees the one before's result;
    a hook that returns a tensor replaces the gradient (same shape and dtype, as torch checks)."""
    g = entry[0]
    for fn in list(hooks.values()):
        value = g if create_graph else Tensor._make(g)
        out = fn(value)
        if out is None:
            continue
        name = getattr(fn, "__name__", repr(fn))
        if not isinstance(out, Tensor):
            raise TypeError(f"expected Variable, but hook returned '{type(out).__name__}'")
        if out.shape != value.shape:
            raise RuntimeError(f"hook '{name}' has changed the size of value")
        if out.dtype != value.dtype:
            raise RuntimeError(f"hook '{name}' has changed the type of value (was {_type_name(value._data)} "
                               f"got {_type_name(out._data)})")
        g = out if create_graph else out._data
    return g, False  # a hook may keep the array it was given: nothing adds into it in place


def modified_message(t: Tensor, node: Any, saved_version: int) -> str:
    """torch's text for a saved tensor changed in place; ``node`` the one whose output it is (None: a leaf)."""
    made_by = ""
    if node is not None:
        name = node.name()
        made_by = f", which is output 0 of {name[:name.rfind('Backward')] if 'Backward' in name[1:] else name},"
    return ("one of the variables needed for gradient computation has been modified by an inplace operation: "
            f"[{_type_name(t._data)} {list(t._data.shape)}]{made_by} is at version {t._version}; expected "
            f"version {saved_version} instead. Hint: enable anomaly detection to find the operation that failed "
            "to compute its gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).")


def _accumulate(pending: dict[Edge, tuple[Any, bool]], edge: Edge, g: Any, owned: bool) -> None:
    if edge is None:
        return
    prev = pending.get(edge)
    if prev is None:
        pending[edge] = (g, owned)
        return
    p, p_owned = prev
    if isinstance(g, Tensor):  # create_graph: the sum is recorded
        pending[edge] = (p + g, False)
    elif p_owned and p.shape == g.shape and p.dtype == g.dtype:
        np.add(p, g, out=p)
    elif owned and p.shape == g.shape and p.dtype == g.dtype:
        pending[edge] = (np.add(g, p, out=g), True)
    else:
        pending[edge] = (np.asarray(p + g), True)


def _deposit(t: Tensor, g: Any, owned: bool, create_graph: bool) -> None:
    """Accumulate ``g`` (a tensor with ``create_graph``, else an array) into ``t.grad`` as PyTorch does."""
    if create_graph:
        if t._grad is None:
            t._grad = g
        else:
            t._grad = t._grad + g
        return
    if t.dtype != g.dtype:  # the tape's dtype first: its __eq__ compares without converting
        g, owned = g.astype(t.dtype), True
    if t._grad is None:
        t._grad = Tensor._make(g if owned else np.array(g, copy=True))
    elif t.grad_fn is not None:  # a retained grad: a new tensor each time, the one handed out before stays (torch)
        t._grad = Tensor._make(t._grad._data + g)
    else:  # a leaf's .grad accumulates: the same tensor, as torch's (which adds in place)
        t._grad._data = t._grad._data + g


def backward(tensors: Tensor | Sequence[Tensor], grad_tensors: Any = None,
             retain_graph: bool | None = None, create_graph: bool = False,
             inputs: Sequence[Tensor] | None = None) -> None:
    """``torch.autograd.backward``: accumulate gradients of ``tensors`` into the leaves' ``.grad``."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is not None and isinstance(grad_tensors, (Tensor, np.ndarray, float, int)):
        grad_tensors = [grad_tensors]
    if inputs is None:
        _run(tensors, grad_tensors, retain_graph, create_graph)
        return
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    edges = {id(e): e for e in (_edge(t) for t in inputs) if e is not None}
    captured = _run(tensors, grad_tensors, retain_graph, create_graph, capture=edges)
    for t in inputs:
        entry = captured.get(id(_edge(t)))
        if entry is not None:
            _deposit(t, *entry, create_graph)


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool | None = None) -> tuple[Tensor | None, ...]:
    """``torch.autograd.grad``: the gradients of ``outputs`` with respect to ``inputs``, as a tuple."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is not None and isinstance(grad_outputs, (Tensor, np.ndarray, float, int)):
        grad_outputs = [grad_outputs]
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    targets = [_edge(t) for t in inputs]
    captured = _run(outputs, grad_outputs, retain_graph, create_graph, capture={id(e): e for e in targets})
    result, given = [], set()
    for index, target in enumerate(targets):
        entry = captured.get(id(target))
        if entry is None and not allow_unused:
            raise RuntimeError(
                f"The differentiated Tensor at index {index} appears to not have been used in the graph. "
                "Set allow_unused=True if this is the desired behavior."
            )
        if entry is not None and not create_graph:
            g, owned = entry
            entry = (Tensor._make(g if owned and id(g) not in given else np.array(g, copy=True)), True)
            given.add(id(g))  # the same input twice: the second gets a copy
        result.append(None if entry is None else entry[0])
    return tuple(result)
