"""YAML case files (format version 1): schema, loading, validation, input generation.

A case file is a mapping with an optional ``defaults`` mapping and a ``cases``
list; each case is validated on its own, so one bad case does not hide the
others.  YAML is read with a :class:`yaml.SafeLoader` subclass (its libyaml twin
``CSafeLoader`` when PyYAML has it) that records the line of every mapping,
sequence and key and reports duplicate keys (plain PyYAML silently keeps the
last one).  Every error is a :class:`CaseError`
naming the file, line and case.

Shapes are checked against :class:`~symgrad.limits.Limits` before anything is
allocated; random inputs are drawn only by :meth:`Case.make_inputs`.
"""

from __future__ import annotations

import difflib
import math
import re
import reprlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from symgrad.checking.cases.errors import CaseError
from symgrad.checking.cases.yaml_loading import _expanded_size, _first_duplicate, _Map, _Seq
from symgrad.ir import ops
from symgrad.ir.expr import Call, Expr, Var, broadcast_shape, evaluate, is_elementwise, to_source, variables
from symgrad.ir.limits import DEFAULT, LimitExceeded, Limits, check_derivatives
from symgrad.ir.parse import ParseError, check_ir, parse
from symgrad.ir.precision import PRECISIONS, numpy_dtype

KEYS: tuple[str, ...] = (
    "name", "expr", "inputs", "grad_output", "wrt", "order", "expect", "value", "dtype", "rtol",
    "atol", "seed", "mode", "tags", "skip", "xfail", "description", "reference",
    "mode_ad", "tangent",  # forward mode (issue 18)
    "device",  # where the engine's tensors live: cpu (default), cuda, cuda:N (torch and jax)
)
REQUIRED = ("name", "expr", "inputs")
DEVICE_RE = re.compile(r"cpu|cuda(?::[0-9]{1,3})?")
FILE_KEYS = ("version", "defaults", "cases")
DTYPES = PRECISIONS  # float16 and bfloat16 on the engines that declare them
MODES = ("auto", "elementwise", "expanded")
REFERENCES = ("float", "exact")
ORDERS = (1, 2, 3)
AD_MODES = ("reverse", "forward", "both")  # mode_ad: which of the engine's modes is checked
TANGENT_STREAM = 1958  # tangents draw from default_rng([seed, TANGENT_STREAM]): inputs and grad_output keep theirs
SPEC_KINDS = ("uniform", "normal", "linspace")
NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
# a number written as text: YAML 1.1 reads ``1e-6`` (no dot) as a string
NUMBER_RE = re.compile(r"[-+]?(?:[0-9][0-9_]*\.?[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?")  # ASCII digits only

Shape = tuple[int, ...]
_INHERITED_DATA = ("inputs", "grad_output", "expect", "value", "tangent")  # keys of defaults that hold arrays



# ---------------------------------------------------------------- the case


@dataclass(frozen=True)
class InputSpec:
    """One validated input: a literal array or a recipe (uniform, normal, linspace) with its shape."""

    kind: str  # "literal", "uniform", "normal", "linspace"
    shape: Shape
    args: tuple[float, ...] = ()
    data: np.ndarray | None = field(default=None, repr=False, compare=False)  # float64 literal
    of_output: bool = False  # a grad_output generator without `shape`: the output's shape, not ``shape``


@dataclass
class Case:
    name: str
    expr: str
    inputs: dict[str, Any]  # raw specs as written
    grad_output: Any = None
    wrt: list[str] | None = None  # None: all inputs, in the order listed
    order: int = 1
    expect: dict[str, Any] = field(default_factory=dict)  # name -> expression string or literal
    value: Any = None
    dtype: str = "float64"
    rtol: float | None = None
    atol: float | None = None
    seed: int = 0
    mode: str = "auto"
    tags: list[str] = field(default_factory=list)
    skip: str | None = None
    xfail: str | None = None
    # `xfail: {jax: "..."}` / `skip: {...}`: reasons that apply on those backends only (DESIGN.md)
    skip_on: dict[str, str] = field(default_factory=dict)
    xfail_on: dict[str, str] = field(default_factory=dict)
    description: str = ""
    reference: str = "float"
    device: str = "cpu"
    file: str | None = None
    line: int | None = None  # 1-based line where the case starts in its file
    # set by validation (case_from_dict)
    ir: Expr | None = field(default=None, repr=False, compare=False)
    expect_ir: dict[str, Expr] = field(default_factory=dict, repr=False, compare=False)
    value_ir: Expr | None = field(default=None, repr=False, compare=False)
    specs: dict[str, InputSpec] = field(default_factory=dict, repr=False, compare=False)
    output_shape: Shape | None = field(default=None, repr=False, compare=False)  # None: unknown
    grad_spec: InputSpec | None = field(default=None, repr=False, compare=False)  # grad_output as a spec
    # forward mode: `mode_ad` and `tangent` as written; `tangent_specs` per wrt input, set by validation
    mode_ad: str = "reverse"
    tangent: Any = None
    tangent_specs: dict[str, InputSpec] = field(default_factory=dict, repr=False, compare=False)

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}" if self.file else self.name

    @property
    def wrt_names(self) -> list[str]:
        """The inputs differentiated: ``wrt`` or all inputs in the order listed."""
        return list(self.wrt) if self.wrt is not None else list(self.inputs)

    @property
    def input_shapes(self) -> dict[str, Shape]:
        return {k: s.shape for k, s in self._specs(DEFAULT).items()}

    def _specs(self, limits: Limits) -> dict[str, InputSpec]:
        if not self.specs:  # a Case built by hand, not by case_from_dict
            ctx = _Ctx(self.file, self.line, self.name)
            self.specs = {k: _input_spec(k, v, ctx, limits) for k, v in self.inputs.items()}
        return self.specs

    def make_inputs(self, limits: Limits = DEFAULT) -> dict[str, np.ndarray]:
        """The input arrays in ``self.dtype``: the same numbers on every run and machine.

        One ``default_rng(seed)`` draws the random inputs in the order they are listed,
        always in float64 (a float32 case gets the float64 draw rounded once).
        """
        ctx = _Ctx(self.file, self.line, self.name)
        specs = self._specs(limits)
        # a generator costs more than copying small literals: made only when some input is drawn
        drawn = any(spec.kind in _RANDOM_KINDS for spec in specs.values())
        rng = np.random.default_rng(self.seed) if drawn else None
        dtype = numpy_dtype(self.dtype)
        out: dict[str, np.ndarray] = {}
        for name, spec in specs.items():
            _check_shape(spec.shape, f"input {name!r}", ctx, limits)
            out[name] = np.array(_draw(rng, spec, spec.shape), dtype=dtype)  # a fresh copy: callers may write to it
        return out

    def make_grad_output(self, shape: Iterable[int], limits: Limits = DEFAULT) -> np.ndarray:
        """The ``gradient=`` of ``backward`` for a forward output of ``shape``: ones by default.

        A generator (``{normal: [0, 1]}``, ``random``) draws from ``default_rng(seed)`` after the
        inputs, so adding one does not change the inputs' numbers; its shape defaults to ``shape``.
        """
        shape = tuple(int(n) for n in shape)
        if self.grad_output is None:
            return np.ones(shape, dtype=numpy_dtype(self.dtype))
        ctx = _Ctx(self.file, self.line, self.name)
        spec = self.grad_spec or _grad_spec(self.grad_output, ctx, limits)
        if spec.kind == "literal":
            assert spec.data is not None
            g = spec.data
        else:
            rng = np.random.default_rng(self.seed)
            for input_spec in self._specs(limits).values():  # replay the inputs' draws: same stream, same numbers
                _draw(rng, input_spec, input_spec.shape)
            g_shape = shape if spec.of_output else spec.shape
            _check_shape(g_shape, "grad_output", ctx, limits, "grad_output")
            g = _draw(rng, spec, g_shape)
        try:
            return np.array(np.broadcast_to(g, shape), dtype=numpy_dtype(self.dtype))
        except ValueError:
            raise ctx.error(f"grad_output of shape {_fmt(np.shape(g))} does not broadcast to the "
                            f"output shape {_fmt(shape)}", "grad_output") from None


    def make_tangents(self, shapes: Mapping[str, Shape], limits: Limits = DEFAULT) -> dict[str, np.ndarray]:
        """Forward mode's tangent per wrt input (``shapes``: the inputs'), in ``self.dtype``.

        A seeded standard normal of the input's shape unless ``tangent`` says otherwise; drawn from
        ``default_rng([seed, TANGENT_STREAM])`` in the order of ``wrt``, so a tangent changes no input."""
        ctx = _Ctx(self.file, self.line, self.name)
        specs = self.tangent_specs or _tangent_specs(self.tangent, self.wrt_names, ctx, limits)
        rng = np.random.default_rng([self.seed, TANGENT_STREAM])
        out: dict[str, np.ndarray] = {}
        for name in self.wrt_names:
            spec = specs.get(name) or _TANGENT_DEFAULT
            shape = tuple(shapes[name])
            t_shape = shape if spec.of_output else spec.shape
            _check_shape(t_shape, f"tangent {name!r}", ctx, limits, "tangent")
            t = _draw(rng, spec, t_shape)
            try:
                out[name] = np.array(np.broadcast_to(t, shape), dtype=self.dtype)
            except ValueError:
                raise ctx.error(f"tangent of {name!r}: shape {_fmt(np.shape(t))} does not broadcast to the "
                                f"input's shape {_fmt(shape)}", "tangent") from None
        return out

    def tangent_source(self) -> str:
        """How the tangents were made, for the report: ``random (seed 0)``, ``literal``, ..."""
        raw = self.tangent
        if raw is None:
            return f"random (seed {self.seed})"
        if isinstance(raw, Mapping) and not set(raw) <= {*SPEC_KINDS, "shape"}:
            return ", ".join(f"{k}: {_source(v, self.seed)}" for k, v in raw.items())
        return _source(raw, self.seed)


def _source(raw: Any, seed: int) -> str:
    if isinstance(raw, str) and _number(raw) is None:
        return f"{raw.strip()} (seed {seed})"
    if isinstance(raw, Mapping):
        return f"{next((k for k in raw if k != 'shape'), 'generated')} (seed {seed})"
    return "literal"


_TANGENT_DEFAULT = InputSpec("normal", (), (0.0, 1.0), of_output=True)


def _tangent_specs(raw: Any, wrt: list[str], ctx: Any, limits: Limits) -> dict[str, InputSpec]:
    """``tangent``: one spec for every wrt input (a literal, ``random``, a generator), or a map from wrt input
    names to specs (the others ``random``); a generator's shape defaults to its input's."""
    if raw is None:
        return {}
    if isinstance(raw, Mapping) and not set(raw) <= {*SPEC_KINDS, "shape"}:
        for name in raw:
            if name not in wrt:
                raise ctx.error(f"tangent names {name!r}, which is not differentiated (wrt: {', '.join(wrt)})",
                                "tangent")
        return {name: _one_tangent(v, f"tangent of {name!r}", ctx, limits) for name, v in raw.items()}
    spec = _one_tangent(raw, "tangent", ctx, limits)
    return {name: spec for name in wrt}


def _one_tangent(raw: Any, what: str, ctx: Any, limits: Limits) -> InputSpec:
    if isinstance(raw, str) and raw.strip() == GRAD_RANDOM:
        return _TANGENT_DEFAULT
    if isinstance(raw, str) and _number(raw) is None:
        raise ctx.error(f"{what}: {_show(raw)} is not a number, a list, '{GRAD_RANDOM}' or a generator "
                        f"({', '.join(SPEC_KINDS)})", "tangent")
    spec = _input_spec("tangent", raw, ctx, limits, what=what, key="tangent", shape_optional=True)
    if spec.data is not None:
        _no_nan(spec.data, what, ctx, "tangent")
    return spec


_RANDOM_KINDS = ("uniform", "normal")  # the kinds that draw from the case's generator


def _draw(rng: np.random.Generator | None, spec: InputSpec, shape: Shape) -> np.ndarray:
    """One spec's float64 numbers (literals as they are; random kinds advance ``rng``)."""
    if spec.kind == "literal":
        assert spec.data is not None
        return spec.data
    if spec.kind == "linspace":
        return np.linspace(spec.args[0], spec.args[1], shape[0])
    assert rng is not None and spec.kind in _RANDOM_KINDS, "a random input needs the case's generator"
    if spec.kind == "uniform":
        return rng.uniform(spec.args[0], spec.args[1], size=shape)
    return rng.normal(spec.args[0], spec.args[1], size=shape)


# ---------------------------------------------------------------- validation helpers


class _Ctx:
    """Where errors point: file, case name and the lines of the case's keys."""

    def __init__(self, file: str | None, line: int | None, case: str | None,
                 key_lines: Mapping[Any, int] | None = None):
        self.file, self.line, self.case = file, line, case
        self.key_lines = dict(key_lines or {})

    def error(self, reason: str, key: Any = None, line: int | None = None) -> CaseError:
        line = line or self.key_lines.get(key) or self.line
        return CaseError(reason, self.file, line, self.case)


def _fmt(shape: Shape) -> str:
    return str(tuple(shape))


def _type(value: Any) -> str:
    for kind, word in ((Mapping, "a mapping"), (list, "a list"), (str, "a string"), (bool, "a boolean")):
        if isinstance(value, kind):
            return f"{word} ({_show(value)})" if kind in (str, bool) else word
    return "nothing" if value is None else f"{type(value).__name__} {_show(value)}"


def _number(value: Any) -> float | None:
    """A real number, or None: ints, floats, numpy numbers and numeric strings ('1e-6'); no booleans."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        try:
            return float(value)
        except OverflowError:
            return None
    if isinstance(value, str) and NUMBER_RE.fullmatch(value.strip()):
        return float(value.strip().replace("_", ""))
    return None


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 6, 6, 60, 60
_REPR.repr__Seq = _REPR.repr_list  # type: ignore[attr-defined]  # reprlib dispatches on type names
_REPR.repr__Map = _REPR.repr_dict  # type: ignore[attr-defined]


def _show(value: Any, width: int = 60) -> str:
    text = _REPR.repr(value)  # bounded: never walks a whole alias bomb
    return text if len(text) <= width else text[: width - 3] + "..."


def _not_number(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return f"boolean {value!r} is not a number"
    if isinstance(value, int):
        return f"integer {_show(value, 30)} is too large for a float"
    return f"non-numeric value {_show(value)}"


def _int(value: Any) -> int | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9]+", value.strip()):
        return int(value)
    return None


def _check_shape(shape: Shape, what: str, ctx: _Ctx, limits: Limits, key: Any = None) -> None:
    try:
        if len(shape) > limits.max_ndim:
            raise LimitExceeded("max_ndim", len(shape), limits.max_ndim, f"{what}: number of dimensions")
        size = math.prod(shape)
        if size > limits.max_elements:
            raise LimitExceeded("max_elements", size, limits.max_elements, f"{what} of shape {_fmt(shape)}")
    except LimitExceeded as exc:
        raise ctx.error(str(exc), key) from None


_LISTS = (list, tuple, _Seq)


def _literal(value: Any, what: str, ctx: _Ctx, limits: Limits, key: Any = None) -> np.ndarray:
    """A number or rectangular nested list as a float64 array; shape limits checked first."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iuf":
            raise ctx.error(f"{what}: array of {value.dtype} is not real numbers", key)
        _check_shape(value.shape, what, ctx, limits, key)
        if value.dtype != np.float64:
            return value.astype(np.float64)
        view = value.view()  # not a copy (a few ms at 1e6 elements): make_inputs copies, and nothing writes here
        view.flags.writeable = False
        return view
    if not isinstance(value, (list, tuple)):
        number = _number(value)
        if number is None:
            raise ctx.error(f"{what}: {_not_number(value)} (expected a number or a nested list)", key)
        return np.array(number)
    # the shape from the first elements, checked against the limits before walking everything
    shape: list[int] = []
    probe: Any = value
    while isinstance(probe, (list, tuple)):
        shape.append(len(probe))
        if len(shape) > limits.max_ndim:
            _check_shape(tuple(shape), what, ctx, limits, key)
        if not probe:
            break
        probe = probe[0]
    _check_shape(tuple(shape), what, ctx, limits, key)
    # fast path, level by level in C-speed steps; the walk below explains any problem
    level: list[Any] = [value]
    for n in shape:
        if not all(type(item) in _LISTS and len(item) == n for item in level):
            break
        level = [sub for item in level for sub in item]
    else:
        if set(map(type, level)) <= {int, float}:
            try:
                return np.array(level, dtype=np.float64).reshape(shape)
            except OverflowError:  # an integer too large for a float: the walk below names it
                pass
    flat: list[float] = []

    def walk(item: Any, depth: int, path: str) -> None:
        if depth == len(shape):
            if isinstance(item, (list, tuple)):
                raise ctx.error(f"{what}: ragged nested list (a list at {path}, numbers at the same depth elsewhere)", key)
            number = _number(item)
            if number is None:
                raise ctx.error(f"{what}: {_not_number(item)} at {path}", key)
            flat.append(number)
            return
        if not isinstance(item, (list, tuple)):
            raise ctx.error(f"{what}: ragged nested list (a number at {path}, lists at the same depth elsewhere)", key)
        if len(item) != shape[depth]:
            raise ctx.error(f"{what}: ragged nested list ({len(item)} values at {path}, "
                            f"{shape[depth]} elsewhere)", key)
        for i, sub in enumerate(item):
            walk(sub, depth + 1, f"{path}[{i}]")

    walk(value, 0, "")
    return np.array(flat, dtype=np.float64).reshape(shape)


def _numbers(value: Any, count: int, what: str, ctx: _Ctx, key: Any) -> list[float]:
    nums = [_number(v) for v in value] if isinstance(value, (list, tuple)) else []
    if len(nums) != count or any(n is None or not math.isfinite(n) for n in nums):
        raise ctx.error(f"{what}: expected a list of {count} finite numbers, got {_show(value)}", key)
    return nums  # type: ignore[return-value]


def _input_spec(name: str, raw: Any, ctx: _Ctx, limits: Limits, *, what: str | None = None, key: Any = None,
                shape_optional: bool = False) -> InputSpec:
    """An input's spec; ``shape_optional``: a random kind without ``shape`` gets shape None (the output's)."""
    what, key = what or f"input {name!r}", key or ("inputs", name)
    if not isinstance(raw, Mapping):
        data = _literal(raw, what, ctx, limits, key)
        return InputSpec("literal", data.shape, data=data)
    kinds = [k for k in SPEC_KINDS if k in raw]
    unknown = [k for k in raw if k not in (*SPEC_KINDS, "shape")]
    if unknown:
        raise ctx.error(f"{what}: unknown key {unknown[0]!r} (known: {', '.join(SPEC_KINDS)}, shape)", key)
    if len(kinds) != 1:
        raise ctx.error(f"{what}: give exactly one of {', '.join(SPEC_KINDS)} "
                        f"(got {', '.join(kinds) or 'none'})", key)
    kind = kinds[0]
    if kind == "linspace":
        if "shape" in raw:
            raise ctx.error(f"{what}: linspace takes no shape (its shape is (num,))", key)
        value = raw[kind]
        start, stop = _numbers(value[:2] if isinstance(value, (list, tuple)) else value, 2,
                               f"{what}: linspace [start, stop, num]", ctx, key)
        num = _int(value[2]) if isinstance(value, (list, tuple)) and len(value) == 3 else None
        if num is None or num < 0:
            raise ctx.error(f"{what}: linspace needs [start, stop, num] with num a non-negative "
                            f"integer, got {_show(value)}", key)
        shape: Shape = (num,)
        _check_shape(shape, what, ctx, limits, key)
        return InputSpec(kind, shape, (start, stop))
    lo, hi = _numbers(raw[kind], 2, f"{what}: {kind} " + ("[low, high]" if kind == "uniform" else "[mean, std]"), ctx, key)
    if kind == "uniform" and lo > hi:
        raise ctx.error(f"{what}: uniform low {lo} is above high {hi}", key)
    if kind == "normal" and hi < 0:
        raise ctx.error(f"{what}: normal std {hi} is negative", key)
    if shape_optional and "shape" not in raw:
        return InputSpec(kind, (), (lo, hi), of_output=True)
    shape = _shape_spec(raw.get("shape", []), what, ctx, limits, key)
    return InputSpec(kind, shape, (lo, hi))


GRAD_RANDOM = "random"  # grad_output: random -- a seeded standard normal of the output's shape


def _grad_spec(raw: Any, ctx: _Ctx, limits: Limits) -> InputSpec:
    """``grad_output`` as a spec: a literal, ``random``, or an input generator whose shape defaults to the output's."""
    if isinstance(raw, str) and raw.strip() == GRAD_RANDOM:
        return InputSpec("normal", (), (0.0, 1.0), of_output=True)
    if isinstance(raw, str) and _number(raw) is None:
        raise ctx.error(f"grad_output: {_show(raw)} is not a number, a list, '{GRAD_RANDOM}' or a generator "
                        f"({', '.join(SPEC_KINDS)})", "grad_output")
    return _input_spec("grad_output", raw, ctx, limits, what="grad_output", key="grad_output", shape_optional=True)


def _shape_spec(raw: Any, what: str, ctx: _Ctx, limits: Limits, key: Any) -> Shape:
    dims = raw if isinstance(raw, (list, tuple)) else [raw]
    if len(dims) > limits.max_ndim:  # before looking at each dimension
        _check_shape(tuple(range(len(dims))), what, ctx, limits, key)
    shape = tuple(_int(d) for d in dims)
    if any(d is None or d < 0 for d in shape):
        raise ctx.error(f"{what}: shape must be a list of non-negative integers, got {_show(raw)}", key)
    _check_shape(shape, what, ctx, limits, key)  # type: ignore[arg-type]
    return shape  # type: ignore[return-value]


def _parse(text: Any, what: str, names: list[str], ctx: _Ctx, limits: Limits, key: Any) -> Expr:
    if not isinstance(text, str):
        raise ctx.error(f"{what} must be an expression string, got {_type(text)}", key)
    try:
        ir = parse(text, names=names, limits=limits)
    except ParseError as exc:
        raise ctx.error(f"{what} does not parse: {exc}", key) from None
    except (LimitExceeded, ValueError, RecursionError) as exc:
        raise ctx.error(f"{what} is refused: {exc}", key) from None
    undeclared = [n for n in variables(ir) if n not in names]
    if undeclared:  # parse() with names should already refuse these
        raise ctx.error(f"{what} uses {undeclared[0]!r}, which is not declared in inputs", key)
    return ir


def _checked(ir: Expr, names: list[str], ctx: _Ctx, limits: Limits) -> str:
    """The source text of an IR built in Python, once it passes what the parser checks."""
    try:
        return check_ir(ir, names=names, limits=limits)
    except ParseError as exc:
        raise ctx.error(f"expr is refused: {exc.reason}", "expr") from None
    except (LimitExceeded, ValueError, RecursionError) as exc:
        raise ctx.error(f"expr is refused: {exc}", "expr") from None


def _infer_shape(ir: Expr, shapes: dict[str, Shape], ctx: _Ctx, limits: Limits) -> Shape | None:
    """The forward output's shape, by shape arithmetic only (nothing allocated); None if unknown."""

    def leaf(node: Expr) -> Shape | None:
        return shapes.get(node.name) if isinstance(node, Var) else ()

    def call(node: Call, given: list[Shape | None]) -> Shape | None:
        args = [a for a in given if a is not None]
        if len(args) != len(given):
            return None
        kind, axis = node.op.kind, node.kwargs.get("axis")
        try:
            if kind == ops.ELEMENTWISE:
                out = np.broadcast_shapes(*args)
            elif kind == ops.REDUCTION:
                axes = ops.normalize_axes(axis, len(args[0]))
                keep = node.kwargs.get("keepdims")
                out = tuple(1 if i in axes else n for i, n in enumerate(args[0]) if keep or i not in axes)
            elif kind == ops.SCAN:  # softmax, log_softmax: the shape kept
                ops.normalize_axes(-1 if axis is None else axis, len(args[0]))
                out = args[0]
            elif node.op is ops.transpose:
                perm: Any = node.kwargs.get("axes")
                out = tuple(reversed(args[0])) if perm is None else tuple(args[0][a] for a in perm)
            elif node.op is ops.matmul:
                a, b = args
                if len(a) not in (1, 2) or len(b) not in (1, 2):
                    raise ValueError("matmul takes 1-D or 2-D operands")
                if a[-1] != b[0]:
                    raise ValueError(f"inner dimensions differ ({a[-1]} != {b[0]})")
                out = a[:-1] + b[1:]
            else:
                return None
        except ValueError as exc:
            args_text = " and ".join(_fmt(a) for a in args)
            raise ctx.error(f"shapes do not fit in `{to_source(node)}`: {args_text}: {exc}", "expr") from None
        _check_shape(out, f"the result of `{to_source(node)}`", ctx, limits, "expr")
        return out

    return evaluate(ir, leaf, call)


def _reason(value: Any, default: str, key: str, ctx: _Ctx) -> str | None:
    if value is None or value is False:
        return None
    if value is True:
        return default
    if isinstance(value, str):
        return value or default
    raise ctx.error(f"{key} must be a reason string or true, got {_type(value)}", key)


def _choice(value: Any, allowed: tuple, key: str, ctx: _Ctx) -> Any:
    if isinstance(value, bool) or value not in allowed:
        raise ctx.error(f"{key} must be one of {', '.join(map(str, allowed))}, got {_show(value)}", key)
    return value


def _scalar_keys(data: Mapping[str, Any], ctx: _Ctx) -> dict[str, Any]:
    """Validate the keys that do not depend on the inputs (also used for ``defaults``)."""
    out: dict[str, Any] = {}
    if "order" in data:  # an int, not 3.0 nor True nor "3"
        order = data["order"]
        if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, np.integer)):
            raise ctx.error(f"order must be one of {', '.join(map(str, ORDERS))} (an integer), "
                            f"got {_type(order)}", "order")
        out["order"] = _choice(int(order), ORDERS, "order", ctx)
    for key, allowed in (("dtype", DTYPES), ("mode", MODES), ("reference", REFERENCES)):
        if key in data:
            out[key] = _choice(data[key], allowed, key, ctx)
    for key in ("rtol", "atol"):
        if key in data and data[key] is not None:
            num = _number(data[key])
            if num is None or not num >= 0 or math.isinf(num):
                raise ctx.error(f"{key} must be a non-negative number, got {_show(data[key])}", key)
            out[key] = num
    if "seed" in data:
        seed = _int(data["seed"])
        if seed is None or not 0 <= seed < 2**64:
            raise ctx.error(f"seed must be an integer from 0 to 2**64-1, got {_show(data['seed'], 30)}", "seed")
        out["seed"] = seed
    if "tags" in data:
        tags = data["tags"]
        tags = [tags] if isinstance(tags, str) else tags
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ctx.error(f"tags must be a list of strings, got {_show(data['tags'])}", "tags")
        out["tags"] = list(tags)
    for key, default in (("skip", "skipped"), ("xfail", "xfail")):
        raw = data.get(key)
        if isinstance(raw, Mapping):  # per backend: {jax: "abs'(0) = 1 in JAX"}
            by = {}
            for name, why in raw.items():
                if not isinstance(name, str):
                    raise ctx.error(f"{key} maps backend names to reasons, got the key {_show(name)}", key)
                reason = _reason(why, default, key, ctx)
                if reason:
                    by[name] = reason
            out[key + "_on"] = by
        else:
            out[key] = _reason(raw, default, key, ctx)
    if "device" in data:
        device = data["device"]
        if not isinstance(device, str) or not DEVICE_RE.fullmatch(device):
            raise ctx.error(f"device must be cpu, cuda or cuda:N, got {_show(device)}", "device")
        out["device"] = device
    if "mode_ad" in data:
        out["mode_ad"] = _choice(data["mode_ad"], AD_MODES, "mode_ad", ctx)
    if "description" in data:
        if not isinstance(data["description"], str):
            raise ctx.error(f"description must be a string, got {_type(data['description'])}", "description")
        out["description"] = data["description"]
    return out


def _unknown(key: Any, known: Iterable[str]) -> str:
    known = list(known)
    hint = difflib.get_close_matches(str(key), known, n=1)
    did = f"; did you mean {hint[0]!r}?" if hint else ""
    return f"unknown key {key!r} (known: {', '.join(known)}){did}"


# ---------------------------------------------------------------- public API


def case_from_dict(data: Mapping[str, Any], *, file: str | None = None, line: int | None = None,
                   defaults: Mapping[str, Any] | None = None, limits: Limits = DEFAULT,
                   ir: Expr | None = None) -> Case:
    """Validate one case (``defaults`` merged under it) and build the :class:`Case`.

    ``ir`` is an expression already built in Python (a traced function, a fuzzed tree): the
    case checks that IR itself, validated as the parser validates text
    (:func:`~symgrad.ir.parse.check_ir`), and ``expr`` may be left out: it is then the IR's
    source text, for display.
    """
    if ir is not None and "expr" not in data:
        data = {**data, "expr": ""}  # filled in from the IR once the IR is validated
    file = str(file) if file is not None else None
    line = line if line is not None else getattr(data, "line", None)
    if not isinstance(data, Mapping):
        raise CaseError(f"a case must be a mapping, got {_type(data)}", file, line)
    name = data.get("name")
    ctx = _Ctx(file, line, name if isinstance(name, str) else None,
               {**getattr(defaults, "key_lines", {}), **getattr(data, "key_lines", {})})
    dup = _first_duplicate(data)
    if dup is not None:
        raise ctx.error(f"duplicate key {dup[0]!r} (first at line {dup[2]})", line=dup[1])
    for key in data:
        if key not in KEYS:
            raise ctx.error(_unknown(key, KEYS), key)
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ctx.error(f"missing required key{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
    merged = {**(defaults or {}), **data}

    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ctx.error(f"name must match [A-Za-z0-9_.-]+, got {_show(name)}", "name")
    inputs = merged["inputs"]
    if not isinstance(inputs, Mapping) or not inputs:
        raise ctx.error(f"inputs must be a non-empty mapping of name to value, got {_show(inputs)}", "inputs")
    # errors about an input point at its own line
    ctx.key_lines.update({("inputs", k): n for k, n in getattr(inputs, "key_lines", {}).items()})
    for key in inputs:
        if not isinstance(key, str) or not key.isidentifier() or not key.isascii():
            hint = " (YAML 1.1 reads on/off/yes/no as booleans: quote the name)" if isinstance(key, bool) else ""
            if isinstance(key, str) and key.isidentifier():
                hint = " (names are ASCII: Python reads 'ｘ' as 'x')"  # noqa: RUF001
            raise ctx.error(f"input name {key!r} is not an identifier{hint}", "inputs")
    names = list(inputs)
    if ir is None:
        ir = _parse(merged["expr"], "expr", names, ctx, limits, "expr")
    else:
        text = _checked(ir, names, ctx, limits)
        merged["expr"] = merged["expr"] or text
    specs = {k: _input_spec(k, v, ctx, limits) for k, v in inputs.items()}
    shapes = {k: s.shape for k, s in specs.items()}
    for k, shape in shapes.items():
        if 0 in shape:
            raise ctx.error(f"input {k!r} is empty (shape {_fmt(shape)}): there is nothing to "
                            f"differentiate or compare", ("inputs", k))

    if is_elementwise(ir):  # every input, used or not, must broadcast with the others
        try:
            broadcast: Shape = broadcast_shape(list(shapes.values()))
        except ValueError:
            listed = ", ".join(f"{k} {_fmt(s)}" for k, s in shapes.items())
            raise ctx.error(f"inputs do not broadcast: {listed}", "inputs") from None
        _check_shape(broadcast, "the broadcast of the inputs", ctx, limits, "inputs")
        used = [shapes[n] for n in variables(ir)]
        out_shape: Shape | None = broadcast_shape(used)
    else:
        out_shape = _infer_shape(ir, shapes, ctx, limits)

    fields_ = _scalar_keys(merged, ctx)
    wrt = merged.get("wrt")
    if wrt is not None:
        wrt = [wrt] if isinstance(wrt, str) else wrt
        if not isinstance(wrt, list) or not wrt or not all(isinstance(w, str) for w in wrt):
            raise ctx.error(f"wrt must be a non-empty list of input names, got {_show(merged['wrt'])}", "wrt")
        for w in wrt:
            if w not in inputs:
                raise ctx.error(f"wrt names {w!r}, which is not an input (inputs: {', '.join(names)})", "wrt")
        if len(set(wrt)) != len(wrt):
            raise ctx.error(f"wrt lists an input twice: {_show(wrt)}", "wrt")
        wrt = list(wrt)
    targets = wrt if wrt is not None else names
    try:
        check_derivatives([math.prod(shapes[t]) for t in targets], fields_.get("order", 1), limits)
    except LimitExceeded as exc:
        raise ctx.error(str(exc), "order" if "order" in merged else "inputs") from None

    grad_output = merged.get("grad_output")
    grad_spec = None
    if grad_output is not None:
        grad_spec = _grad_spec(grad_output, ctx, limits)
        if out_shape is not None and not grad_spec.of_output and not _broadcasts_to(grad_spec.shape, out_shape):
            raise ctx.error(f"grad_output of shape {_fmt(grad_spec.shape)} does not broadcast to the "
                            f"output shape {_fmt(out_shape)}", "grad_output")

    tangent_specs = _forward_keys(merged, fields_, targets, shapes, ctx, limits)

    expect = merged.get("expect") or {}
    if not isinstance(expect, Mapping):
        raise ctx.error(f"expect must be a mapping of input name to expression or values, got {_type(expect)}", "expect")
    expect_ir: dict[str, Expr] = {}
    order = fields_.get("order", 1)
    for key, want in expect.items():
        seq = expect_sequence(key)
        if not seq or any(n not in targets for n in seq):
            raise ctx.error(f"expect names {key!r}, which is not differentiated "
                            f"(wrt: {', '.join(targets)})", "expect")
        if len(seq) > order:
            raise ctx.error(f"expect {key!r} is an order-{len(seq)} derivative, but the case "
                            f"has order {order}", "expect")
        what = f"expect {key!r}"
        if isinstance(want, str) and _number(want) is None:
            expect_ir[key] = _parse(want, what, names, ctx, limits, "expect")
        else:
            arr = _literal(want, what, ctx, limits, "expect")
            _no_nan(arr, what, ctx, "expect")
            if not _broadcasts_to(arr.shape, shapes[seq[-1]]):
                raise ctx.error(f"{what}: shape {_fmt(arr.shape)} does not broadcast to the input's "
                                f"shape {_fmt(shapes[seq[-1]])}", "expect")

    value = merged.get("value")
    value_ir = None
    if isinstance(value, str) and _number(value) is None:
        value_ir = _parse(value, "value", names, ctx, limits, "value")
    elif value is not None:
        arr = _literal(value, "value", ctx, limits, "value")
        _no_nan(arr, "value", ctx, "value")
        if out_shape is not None and not _broadcasts_to(arr.shape, out_shape):
            raise ctx.error(f"value: shape {_fmt(arr.shape)} does not broadcast to the output "
                            f"shape {_fmt(out_shape)}", "value")

    return Case(
        name=name, expr=merged["expr"], inputs=dict(inputs), grad_output=grad_output, wrt=wrt,
        expect=dict(expect), value=value, file=file, line=line, ir=ir, expect_ir=expect_ir,
        value_ir=value_ir, specs=specs, output_shape=tuple(out_shape) if out_shape is not None else None,
        grad_spec=grad_spec, tangent=merged.get("tangent"), tangent_specs=tangent_specs,
        **fields_,
    )


def _forward_keys(merged: Mapping[str, Any], fields_: dict[str, Any], targets: list[str], shapes: dict[str, Shape],
                  ctx: _Ctx, limits: Limits) -> dict[str, InputSpec]:
    """``mode_ad`` and ``tangent``: forward mode checks order 1 and no ``expect`` (a ``.grad``); the tangents."""
    ad = fields_.get("mode_ad", "reverse")
    if ad == "forward" and fields_.get("order", 1) > 1:
        raise ctx.error(f"mode_ad forward checks order 1 (a JVP), but the case has order {fields_['order']}: "
                        "use mode_ad both to check the higher orders in reverse mode", "mode_ad")
    if ad == "forward" and merged.get("expect"):
        raise ctx.error("mode_ad forward checks the JVP, but expect names .grad values (reverse mode): "
                        "use mode_ad both", "expect")
    specs = _tangent_specs(merged.get("tangent"), targets, ctx, limits)
    for name, spec in specs.items():
        if not spec.of_output and not _broadcasts_to(spec.shape, shapes[name]):
            raise ctx.error(f"tangent of {name!r}: shape {_fmt(spec.shape)} does not broadcast to the input's "
                            f"shape {_fmt(shapes[name])}", "tangent")
    return specs


def expect_sequence(key: Any) -> tuple[str, ...]:
    """The derivative an ``expect`` key names: ``"x"`` -> ``("x",)``, ``"x,y"`` -> ``("x", "y")``
    (d/dy of the sum of d/dx, as ``create_graph=True`` and a second backward give)."""
    return tuple(part.strip() for part in key.split(",")) if isinstance(key, str) else ()


def _no_nan(arr: np.ndarray, what: str, ctx: _Ctx, key: str) -> None:
    """A literal nan would match anything (a nan reference is *undefined*, never compared): refused."""
    if np.isnan(arr).any():
        where = "" if arr.ndim == 0 else f" at {tuple(int(i) for i in np.argwhere(np.isnan(arr))[0])}"
        raise ctx.error(f"{what}: nan{where} cannot be checked (nan is never compared, so it would "
                        f"match anything); give the number it must hold", key)


def _broadcasts_to(shape: Shape, target: Shape) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == tuple(target)
    except ValueError:
        return False


def load_data(path: Path, data: Any, limits: Limits) -> tuple[list[Case], list[CaseError]]:
    """The valid cases of a loaded file and an error per invalid case (file-level errors are raised)."""
    file = str(path)
    if not isinstance(data, Mapping):
        got = "an empty file" if data is None else _type(data)
        raise CaseError(f"a case file must be a mapping with a 'cases' list, got {got}", file,
                        getattr(data, "line", None))
    top = _Ctx(file, None, None, getattr(data, "key_lines", {}))
    duplicates = getattr(data, "duplicates", [])  # recorded by the YAML loader
    if duplicates:
        key, line, first = duplicates[0]
        raise top.error(f"duplicate key {key!r} (first at line {first})", line=line)
    for key in data:  # `x-...` keys are free, e.g. to hold YAML anchors
        if key not in FILE_KEYS and not (isinstance(key, str) and key.startswith("x-")):
            raise top.error(_unknown(key, FILE_KEYS), key)
    if "version" in data and (_int(data["version"]) != 1):
        raise top.error(f"unsupported format version {_show(data['version'])} (this symgrad reads version 1)", "version")
    cases = data.get("cases")
    if not isinstance(cases, list):
        raise top.error(f"'cases' must be a list of cases, got {'nothing' if cases is None else _type(cases)}",
                        "cases" if "cases" in data else None)
    defaults = data.get("defaults") or _Map()
    if not isinstance(defaults, Mapping):
        raise top.error(f"'defaults' must be a mapping, got {_type(defaults)}", "defaults")
    dctx = _Ctx(file, getattr(defaults, "line", None), None, getattr(defaults, "key_lines", {}))
    dup = _first_duplicate(defaults)
    if dup is not None:
        raise dctx.error(f"defaults: duplicate key {dup[0]!r} (first at line {dup[2]})", line=dup[1])
    for key in defaults:
        if key in ("name", "expr"):
            raise dctx.error(f"defaults may not set {key!r} (each case sets its own)", key)
        if key not in KEYS:
            raise dctx.error("defaults: " + _unknown(key, KEYS), key)
    try:
        _scalar_keys(defaults, dctx)
    except CaseError as exc:
        raise CaseError("defaults: " + exc.reason, file, exc.line) from None

    # each case re-reads what it inherits: the file's values are counted as every case sees them
    heavy = {k: _expanded_size(v) for k, v in defaults.items() if k in _INHERITED_DATA}
    if heavy:
        total = _expanded_size(data) + sum(sum(n for k, n in heavy.items() if k not in item)
                                           for item in cases if isinstance(item, Mapping))
        if total > limits.max_elements:
            raise top.error(str(LimitExceeded("max_elements", total, limits.max_elements,
                                              "values in the file, with defaults counted once per case that inherits them")),
                            "defaults")
    out: list[Case] = []
    errors: list[CaseError] = []
    seen: dict[str, int | None] = {}
    item_lines = getattr(cases, "item_lines", [None] * len(cases))
    for i, item in enumerate(cases):
        try:
            case = case_from_dict(item, file=file, line=item_lines[i], defaults=defaults, limits=limits)
        except CaseError as exc:
            errors.append(exc)
            continue
        except (ArithmeticError, ValueError, TypeError, RecursionError) as exc:  # a backstop: one case, not the run
            name = item.get("name") if isinstance(item, Mapping) else None
            errors.append(CaseError(f"invalid case ({type(exc).__name__}: {_show(str(exc))})", file,
                                    item_lines[i], name if isinstance(name, str) else None))
            continue
        if case.name in seen:
            errors.append(CaseError(f"duplicate case name (first at line {seen[case.name]})",
                                    file, case.line, case.name))
            continue
        seen[case.name] = case.line
        out.append(case)
    return out, errors
