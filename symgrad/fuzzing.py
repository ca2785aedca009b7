"""The fuzzer: random expressions from the op table, cross-checked, failures shrunk and saved.

Hypothesis does the generating and the shrinking.  A recursive strategy over the
op table (:func:`expressions`) builds IR trees whose every sub-expression has a
known shape, so reductions (``axis=``), ``transpose`` and ``@`` always receive
operands they accept.  Arguments of ops with a restricted domain are wrapped so
that they land inside it whatever the inner expression is -- ``log`` gets
``abs(e) + 0.5``, ``exp(e)``, ``softplus(e) + 0.1`` or ``e*e + 1.0``; ``asin``,
``acos``, ``atanh`` get ``0.9*tanh(e)`` or ``0.9*e/(abs(e) + 1.0)``; ``acosh`` gets
``1.5 + (positive)``; a denominator and the argument of ``prod`` get a positive
expression or its negation; ``x**y`` either has a literal integer exponent or a
positive base.  Wrappers are not counted in the depth and may use ops outside
``--ops``.  Input values are drawn from [-3, 3] (a quarter grid, or floats with
|v| >= 1e-3, or 0): ties and kinks (``maximum(x, x)``, ``relu(x - y)``) do occur,
and test the conventions.  An example whose forward pass leaves the finite range
at any node (an overflow, or ``|v| > 1e6``) is rejected (``hypothesis.assume``),
so the float reference stays well conditioned.

Each example is turned into a case that checks its IR as generated (validated as
the parser validates text; the inputs as literals) and run with
:func:`~symgrad.runner.run_case`; the expression is printed with
:func:`~symgrad.expr.to_source` only for display and for the saved file.  A failure (or
an error) is raised inside the hypothesis test, so hypothesis shrinks it to a
minimal expression and minimal inputs; the minimal case is written to ``out_dir``
as a case file of format version 1 (``fuzz-<hash>.yaml``) that
``symgrad check --backend NAME FILE`` reproduces.  After a failure the search
goes on with a fresh (derived) seed until ``count`` examples have been checked or
``max_failures`` failures were found.  The same ``seed`` gives the same
expressions and the same verdicts.

hypothesis is imported only when a fuzz runs, so ``import symgrad.fuzzing`` (and the
CLI) work without it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from symgrad import backends
from symgrad.checking.cases import case_from_dict, load_file
from symgrad.checking.runner import Options, run_case
from symgrad.ir import ops as _ops
from symgrad.ir.expr import Call, Const, Expr, Var, as_expr, numpy_eval, to_source, variables
from symgrad.ir.ops import Op
from symgrad.ir.precision import PRECISIONS

__all__ = [
    "DEFAULT_RANGE", "DEFAULT_SHAPES", "Example", "Failure", "FuzzResult", "cause_of", "expressions", "fuzz",
    "resolve_ops", "to_case_dict",
]

Shape = tuple[int, ...]

DEFAULT_SHAPES: tuple[Shape, ...] = ((), (3,), (2, 3))
DEFAULT_RANGE: tuple[float, float] = (-3.0, 3.0)  # where input values are drawn
VAR_NAMES = ("x", "y", "z")
VALUE_BOUND = 1e6  # |forward value| at every node; larger examples are rejected
NICE_CONSTANTS = (1.0, 2.0, 0.5, 3.0, -1.0, 1.5, -2.0)
INT_EXPONENTS = (2, 3, 0, 1, 4)  # x**c for any x (PyTorch: d/dx x**0 = 0), as an int or a float literal
REAL_EXPONENTS = (0.5, -1.0, 1.5, -0.5, 2.5, -2.0)  # x**c for x > 0

# how an argument is made to land in its domain: each op's Domain names its guard (ops.Domain.guard)
_POSITIVE = "positive"  # > 0
_UNIT = "unit"  # in (-1, 1)
_ABOVE_ONE = "above_one"  # > 1
_UNIT01 = "unit01"  # in (0, 1)
_NONZERO = "nonzero"


# ---------------------------------------------------------------- results


@dataclass
class Failure:
    """One shrunk failure (or error): the minimal case, its report, and where it was saved."""

    case: Any  # symgrad.cases.Case
    report: Any  # symgrad.report.Report
    data: dict[str, Any]  # the case as written to the file
    path: Path | None = None
    original: str = ""  # the expression as first found, before shrinking
    reproduced: bool | None = None  # the saved file, loaded back, fails again on the backend
    save_error: str = ""  # why the case could not be saved (the failure itself is still reported)
    cause: str = ""  # the root cause: the status and the ops of the shrunk expression (:func:`cause_of`)
    repeats: int = 1  # shrunk failures found with this cause (only the first is kept and saved)

    @property
    def expr(self) -> str:
        return self.case.expr

    @property
    def status(self) -> str:
        return self.report.status


@dataclass
class FuzzResult:
    """Counts of one fuzz run; ``bool(result)`` is True when nothing failed or errored."""

    seed: int
    backend: str
    count: int  # examples asked for
    checked: int = 0  # examples run (shrinking steps not counted)
    passed: int = 0  # every element compared and equal
    undefined: int = 0  # no mismatch, but some elements undefined (sympy: nan/zoo), not compared
    failed: int = 0
    errors: int = 0
    skipped: int = 0  # the backend lacks an op
    known: int = 0  # failed or errored in a way the caller listed as a known bug (``known=``)
    timeouts: int = 0  # not checked: took longer than ``timeout`` seconds (not shrunk; see ``slow``)
    discarded: int = 0  # rejected before checking: a forward value overflowed or left the bound
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    history: list[tuple[str, str]] = field(default_factory=list)  # (expr, verdict) per checked example
    slow: list[dict[str, Any]] = field(default_factory=list)  # the cases that timed out
    stopped: str = ""  # why fewer than ``count`` were checked, if so

    def __bool__(self) -> bool:
        return self.failed == 0 and self.errors == 0

    @property
    def ok(self) -> bool:
        return bool(self)

    def summary(self) -> str:
        text = (f"{self.checked} checked: {self.passed} passed, {self.undefined} undefined-skipped, "
                f"{self.failed} failed, {self.errors} errors")
        if self.skipped:
            text += f", {self.skipped} skipped"
        if self.known:
            text += f", {self.known} known bugs"
        if self.timeouts:
            text += f", {self.timeouts} timed out"
        text += f" ({self.discarded} discarded) in {self.seconds:.2f} s [seed {self.seed}, backend {self.backend}]"
        return text


# ---------------------------------------------------------------- the op space


def resolve_ops(names: str | Iterable[str | Op] | None) -> tuple[Op, ...]:
    """The ops to generate from: every public op (None), or the names given (aliases accepted)."""
    if names is None:
        return tuple(_ops.public_ops())
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    out: dict[int, Op] = {}
    unknown = []
    for n in names:
        op = n if isinstance(n, Op) else _ops.lookup(n)
        if op is None:
            unknown.append(str(n))
        else:
            out.setdefault(id(op), op)
    if unknown:
        known = ", ".join(op.name for op in _ops.public_ops())
        raise ValueError(f"unknown op{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; known: {known}")
    if not out:
        raise ValueError("no ops given")
    return tuple(out.values())


def _reduce_targets(shape: Shape) -> list[tuple[int | None, Shape]]:
    """(axis, result shape) of a reduction of an array of ``shape``."""
    out: list[tuple[int | None, Shape]] = [(None, ())]
    out += [(k, shape[:k] + shape[k + 1:]) for k in range(len(shape))]
    return out


def _matmul_shape(a: Shape, b: Shape) -> Shape | None:
    if not (1 <= len(a) <= 2 and 1 <= len(b) <= 2) or a[-1] != b[0]:
        return None
    return a[:-1] + b[1:]


class _Space:
    """What can be built from inputs of shape ``base``: each reachable shape and its cost in depth."""

    def __init__(self, ops: tuple[Op, ...], base: Shape, max_depth: int, guard_ops: frozenset | None = None):
        self.base = base
        self.guard_ops = guard_ops  # the ops domain guards may use (None: any)
        self.unary = [op for op in ops if op.kind == _ops.ELEMENTWISE and op.arity == 1]
        self.binary = [op for op in ops if op.kind == _ops.ELEMENTWISE and op.arity == 2]
        self.reductions = [op for op in ops if op.kind == _ops.REDUCTION]
        self.matmul = _ops.matmul in ops
        self.transpose = _ops.transpose in ops
        cost: dict[Shape, int] = {base: 0}
        for level in range(1, max_depth + 1):
            known = [u for u, c in cost.items() if c <= level - 1]
            found: list[Shape] = []
            for u in known:
                if self.reductions:
                    found += [t for _, t in _reduce_targets(u)]
                if self.transpose:
                    found.append(u[::-1])
            if self.matmul:
                found += [t for a in known for b in known if (t := _matmul_shape(a, b)) is not None]
            for t in found:
                cost.setdefault(t, level)
        self.cost = cost

    def within(self, shape: Shape, depth: int) -> bool:
        return self.cost.get(shape, math.inf) <= depth

    def reductions_to(self, target: Shape, depth: int) -> list[tuple[Shape, int | None]]:
        return [(u, axis) for u in sorted(self.cost, key=lambda s: (len(s), s)) if self.within(u, depth)
                for axis, t in _reduce_targets(u) if t == target]

    def matmuls_to(self, target: Shape, depth: int) -> list[tuple[Shape, Shape]]:
        shapes = [u for u in sorted(self.cost, key=lambda s: (len(s), s)) if self.within(u, depth)]
        return [(a, b) for a in shapes for b in shapes if _matmul_shape(a, b) == target]


_ORDER: dict[Op, int] = {op: i for i, op in enumerate(_ops.public_ops())}


@functools.lru_cache(maxsize=64)
def _space(ops: tuple[Op, ...], base: Shape, max_depth: int, guard_ops: frozenset | None = None) -> _Space:
    return _Space(ops, base, max_depth, guard_ops)


# ---------------------------------------------------------------- strategies


@dataclass(frozen=True)
class Example:
    """One generated check: an expression and the values of its inputs (all of one shape)."""

    expr: Expr
    inputs: dict[str, np.ndarray]
    shape: Shape

    def __repr__(self) -> str:
        vals = ", ".join(f"{k}={v.tolist()!r}" for k, v in self.inputs.items())
        return f"Example({to_source(self.expr)!r}, {vals})"


def _st() -> Any:
    from hypothesis import strategies as st

    return st


def _constant(draw: Callable[..., Any]) -> Expr:
    st = _st()
    value = draw(st.one_of(
        st.sampled_from(NICE_CONSTANTS + (math.pi,)),
        st.floats(-4.0, 4.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)
        .map(lambda v: 0.0 if abs(v) < 1e-3 else v),
    ))
    if value == math.pi:
        return Const(math.pi, "pi")
    return as_expr(float(value) + 0.0)  # no -0.0 literal


# each way of making an argument positive, with the ops it uses
_POSITIVE_KINDS = (("abs", ("abs", "add")), ("exp", ("exp",)), ("softplus", ("softplus", "add")),
                   ("square", ("mul", "add")))
_UNIT_KINDS = (("ratio", ("div", "abs", "add", "mul")), ("tanh", ("tanh", "mul")))


def _usable(kinds: tuple[tuple[str, tuple[str, ...]], ...], allowed: frozenset | None) -> list[str]:
    """The kinds whose ops are all ``allowed`` (every kind when none is, or when ``allowed`` is None)."""
    ok = [k for k, names in kinds if allowed is None or all(_ops.lookup(n) in allowed for n in names)]
    return ok or [k for k, _ in kinds]


def _positive(draw: Callable[..., Any], e: Expr, allowed: frozenset | None = None) -> Expr:
    kind = draw(_st().sampled_from(_usable(_POSITIVE_KINDS, allowed)))
    if kind == "abs":
        return _ops.add(_ops.abs(e), Const(0.5))
    if kind == "exp":
        return _ops.exp(e)
    if kind == "softplus":
        return _ops.add(_ops.softplus(e), Const(0.1))
    return _ops.add(_ops.mul(e, e), Const(1.0))


def _guard(draw: Callable[..., Any], kind: str, e: Expr, allowed: frozenset | None = None) -> Expr:
    """``e`` wrapped so that its value lands in the domain ``kind`` (elementwise: shape kept), with
    ``allowed`` ops where it can (None: any)."""
    if kind == _POSITIVE:
        return _positive(draw, e, allowed)
    if kind == _UNIT:
        if draw(_st().sampled_from(_usable(_UNIT_KINDS, allowed))) == "ratio":
            return _ops.mul(_ops.div(e, _ops.add(_ops.abs(e), Const(1.0))), Const(0.9))
        return _ops.mul(Const(0.9), _ops.tanh(e))
    if kind == _UNIT01:
        return _ops.add(_ops.mul(Const(0.9), _ops.sigmoid(e)), Const(0.05))
    if kind == _ABOVE_ONE:
        return _ops.add(Const(1.5), _positive(draw, e, allowed))
    if kind == _NONZERO:
        p = _positive(draw, e, allowed)
        return _ops.neg(p) if draw(_st().booleans()) else p
    raise ValueError(f"unknown guard {kind!r}")


def _guarded(draw: Callable[..., Any], domain: _ops.Domain, e: Expr, allowed: frozenset | None = None) -> Expr:
    """``e`` as the argument of an op whose domain is ``domain``: guarded unless unrestricted."""
    return e if domain.guard is None else _guard(draw, domain.guard, e, allowed)


def _gen(draw: Callable[..., Any], sp: _Space, target: Shape, depth: int, exact: bool) -> Expr:
    """An expression of shape ``target`` (or, unless ``exact``, of shape () that broadcasts to it).

    A node is a leaf with probability 1/4 (and always at depth 0); otherwise its op is drawn
    uniformly from the ops that can produce ``target`` within ``depth``.  Hypothesis shrinks
    towards leaves, towards ``var`` before ``const`` and towards the first ops of the table.
    """
    st = _st()
    leaves = (["var"] if target == sp.base else []) + (["const"] if target == () or not exact else [])
    below = depth - 1
    candidates: list[Op] = []
    if depth > 0:
        if not exact or sp.within(target, below):
            candidates += sp.unary + sp.binary
        if sp.reductions_to(target, below):
            candidates += sp.reductions
        if sp.transpose and sp.within(target[::-1], below):
            candidates.append(_ops.transpose)
        if sp.matmul and sp.matmuls_to(target, below):
            candidates.append(_ops.matmul)
    if not candidates and not leaves:  # pragma: no cover - callers ask only for reachable shapes
        raise AssertionError(f"cannot build shape {target} at depth {depth} from {sp.base}")
    if not candidates or (leaves and draw(st.sampled_from((True, False, False, False)))):
        if draw(st.sampled_from(leaves)) == "var":
            return Var(draw(st.sampled_from(VAR_NAMES)))
        return _constant(draw)
    op = draw(st.sampled_from(sorted(candidates, key=lambda o: _ORDER.get(o, len(_ORDER)))))

    if op.kind == _ops.ELEMENTWISE and op.arity == 1:
        arg = _gen(draw, sp, target, below, exact)
        return op(_guarded(draw, op.domain[0], arg, sp.guard_ops))
    if op is _ops.pow:
        base = _gen(draw, sp, target, below, exact)
        if draw(st.booleans()):  # an integer exponent, as an int literal (x**2) or a float one (x**2.0)
            k = draw(st.sampled_from(INT_EXPONENTS))
            return _ops.pow(base, Const(k if draw(st.booleans()) else float(k)))
        base = _guard(draw, _POSITIVE, base, sp.guard_ops)
        if draw(st.booleans()):
            return _ops.pow(base, as_expr(draw(st.sampled_from(REAL_EXPONENTS))))
        return _ops.pow(base, _gen(draw, sp, target, below, False))
    if op.kind == _ops.ELEMENTWISE:
        first = _gen(draw, sp, target, below, exact)
        second = _gen(draw, sp, target, below, False)
        if exact and draw(st.booleans()):
            first, second = second, first
        if not op.domain[0].joint:
            first, second = (_guarded(draw, d, e, sp.guard_ops) for d, e in zip(op.domain, (first, second)))
        return op(first, second)
    if op.kind == _ops.REDUCTION:
        source, axis = draw(st.sampled_from(sp.reductions_to(target, below)))
        arg = _gen(draw, sp, source, below, True)
        return op(_guarded(draw, op.domain[0], arg, sp.guard_ops), axis=axis)
    if op is _ops.transpose:
        return _ops.transpose(_gen(draw, sp, target[::-1], below, True))
    a, b = draw(st.sampled_from(sp.matmuls_to(target, below)))
    return _ops.matmul(_gen(draw, sp, a, below, True), _gen(draw, sp, b, below, True))


def _value_strategy(lo: float = DEFAULT_RANGE[0], hi: float = DEFAULT_RANGE[1]) -> Any:
    """Input values in [lo, hi]: a quarter grid (ties, kinks, 0), or floats with |v| >= 1e-3, or 0."""
    st = _st()
    grid = st.integers(math.ceil(lo * 4), math.floor(hi * 4)).map(lambda k: k / 4.0)
    floats = (st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)
              .map(lambda v: 0.0 if abs(v) < 1e-3 and lo <= 0.0 <= hi else v))
    return st.one_of(grid, floats) if math.ceil(lo * 4) <= math.floor(hi * 4) else floats


def check_range(value_range: Sequence[float]) -> tuple[float, float]:
    """``(lo, hi)`` as floats, or ValueError for a range that is not finite and increasing."""
    lo, hi = (float(v) for v in value_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"the input range must be finite with LO < HI, got {lo:g}, {hi:g}")
    return lo, hi


def expressions(ops: str | Iterable[str | Op] | None = None, max_depth: int = 4,
                shapes: Sequence[Shape] = DEFAULT_SHAPES, value_range: Sequence[float] = DEFAULT_RANGE,
                guard_ops: Iterable[Op] | None = None) -> Any:
    """The hypothesis strategy of :class:`Example`: an IR tree over ``ops`` and its inputs' values.

    ``value_range``: where input values are drawn; ``guard_ops``: the ops domain guards may use
    (None: any; a guard whose ops are not all among them is not drawn, unless none is left)."""
    st = _st()
    table = resolve_ops(ops)
    shapes = [tuple(int(n) for n in s) for s in shapes]
    if not shapes:
        raise ValueError("no input shapes given")
    values = _value_strategy(*check_range(value_range))
    guards = None if guard_ops is None else frozenset(guard_ops)

    @st.composite
    def examples(draw: Callable[..., Any]) -> Example:
        shape = draw(st.sampled_from(shapes))
        sp = _space(table, shape, max_depth, guards)
        expr = _gen(draw, sp, shape, max_depth, exact=False)
        names = variables(expr)
        if not names:  # a constant expression checks nothing
            from hypothesis import reject

            reject()
        size = math.prod(shape)
        inputs = {}
        for name in names:
            flat = draw(st.lists(values, min_size=size, max_size=size))
            inputs[name] = np.array(flat, dtype=np.float64).reshape(shape)
        return Example(expr, inputs, shape)

    return examples()


def well_conditioned(example: Example, bound: float = VALUE_BOUND) -> bool:
    """Every op applied inside its domain, every node's forward value (numpy) finite and within ``bound``.

    Examples that are not are rejected: the symbolic reference would be undefined there, or
    ill-conditioned in float64.
    """
    try:
        values = numpy_eval(example.expr, example.inputs, values=True)
    except (ValueError, FloatingPointError, OverflowError):
        return False
    with np.errstate(all="ignore"):
        for node in example.expr.walk():
            if isinstance(node, Call) and not _in_domain(node, [values[id(a)] for a in node.args]):
                return False
            value = np.asarray(values[id(node)], dtype=np.float64)
            if not np.all(np.isfinite(value)) or (value.size and np.max(np.abs(value)) > bound):
                return False
    return True


def _in_domain(node: Call, args: list[np.ndarray]) -> bool:
    return bool(np.all(node.op.inside(*args)))  # where the op's derivatives are defined (ops.Domain)


# ---------------------------------------------------------------- cases


def _plain(value: np.ndarray) -> Any:
    return value.tolist() if value.ndim else float(value)


def to_case_dict(example: Example, dtype: str = "float64", description: str = "", order: int = 1) -> dict[str, Any]:
    """The example as one case of a case file: ``name: fuzz-<hash>``, inputs as literal lists."""
    expr = to_source(example.expr)
    inputs = {k: _plain(v) for k, v in example.inputs.items()}
    key = repr((expr, sorted(inputs.items()), dtype) + ((order,) if order != 1 else ())).encode()
    data: dict[str, Any] = {"name": "fuzz-" + hashlib.sha256(key).hexdigest()[:12], "expr": expr, "inputs": inputs}
    data["grad_output"] = "random"  # a seeded normal: a VJP that ignores g is invisible with ones
    if order != 1:
        data["order"] = order
    if dtype != "float64":
        data["dtype"] = dtype
    data["tags"] = ["fuzz"]
    if description:
        data["description"] = description
    return data


def _case(example: Example, data: dict[str, Any]) -> Any:
    """The case that checks the example's own IR (``data["expr"]`` is its text, for display and the file)."""
    return case_from_dict(data, ir=example.expr)


def _save(data: dict[str, Any], out_dir: str | Path) -> Path:
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{data['name']}.yaml"
    text = yaml.safe_dump({"version": 1, "cases": [data]}, sort_keys=False, default_flow_style=None, width=100)
    path.write_text("# written by symgrad fuzz: a minimal failing case, shrunk by hypothesis\n" + text,
                    encoding="utf-8")
    return path


def _reproduces(path: Path, options: Any) -> bool:
    cases, errors = load_file(path)
    return not errors and len(cases) == 1 and run_case(cases[0], options=options).status in ("fail", "error")


# ---------------------------------------------------------------- the driver


class _Found(Exception):
    """Raised inside the hypothesis test for a failing case, so that hypothesis shrinks it."""

    def __init__(self, example: Example, data: dict[str, Any], case: Any, report: Any):
        super().__init__(f"{report.status}: {data['expr']}")
        self.example, self.data, self.case, self.report = example, data, case, report


class _FoundError(_Found):
    """The same for a case that errored (a separate exception type: hypothesis shrinks it apart)."""


class _Timeout(BaseException):
    """Raised by the alarm inside a check that runs too long (BaseException: run_case lets it through)."""


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Any:
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, alarm)
    # then again every second: Python drops an exception raised inside a gc callback (hypothesis has
    # one), and the check would run on unlimited
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _TooSlow(BaseException):
    """Too many checks timed out: ends the run (a BaseException: hypothesis does not shrink it)."""


def _derived_seed(seed: int, round_: int) -> int:
    return int(hashlib.sha256(f"symgrad-fuzz:{seed}:{round_}".encode()).hexdigest()[:16], 16)


def cause_of(expr: Expr, status: str = "fail") -> str:
    """A failure's root cause as the fuzzer groups them: its status and the ops of its shrunk expression
    (``fail: maximum``; ``fail: mul, sin``), a negative literal's ``neg`` not counted."""
    names = sorted({n.op.name for n in expr.walk() if isinstance(n, Call)
                    and not (n.op is _ops.neg and all(isinstance(a, Const) for a in n.args))})
    return f"{status}: {', '.join(names) or '(no op)'}"


def _ops_of(cause: str) -> set[str]:
    return {n for n in cause.partition(": ")[2].split(", ") if n and n != "(no op)"}


def _verdict(report: Any) -> str:
    if report.status == "pass":
        return "undefined" if any(c.undefined for c in report.comparisons) else "pass"
    if report.status == "error" and (report.reason or "").startswith("nothing compared"):
        return "undefined"  # undefined or at a kink everywhere: an example that checks nothing, not a bug
    return report.status


def fuzz(count: int = 100, seed: int = 0, max_depth: int = 4,
         ops: str | Iterable[str | Op] | None = None, backend: Any = "symgrad",
         out_dir: str | Path | None = "cases/regressions", dtype: str = "float64",
         shapes: Sequence[Shape] = DEFAULT_SHAPES, max_failures: int = 5,
         progress: Callable[[FuzzResult], None] | None = None, known: Sequence[str] = (),
         timeout: float | None = 60.0, order: int = 1, value_range: Sequence[float] = DEFAULT_RANGE,
         known_ops: str | Iterable[str | Op] = (), exclude_ops: str | Iterable[str | Op] = (),
         device: str = "cpu") -> FuzzResult:
    """Check ``count`` random expressions on ``backend``; shrink and save every failure.

    ``ops`` restricts the op mix (names or aliases, or a comma-separated string);
    ``shapes`` are the input shapes an example may use (one per example); ``out_dir``
    None saves nothing.  The search stops early after ``max_failures`` failures.
    ``progress`` is called with the running result after each checked example.
    Failures are grouped by root cause (:func:`cause_of`): a shrunk failure with the cause of an
    earlier one adds to its ``repeats``, and ``max_failures`` counts causes.  ``order`` (1 to 3) is
    the derivative order checked; ``value_range`` where input values are drawn.  ``exclude_ops``
    are never generated, not even in domain guards (a known bug to step around); ``known_ops``
    steps past one: a shrunk failure that uses only these ops is counted as ``known``, not failed.
    ``known`` is an allow-list of regular expressions: a failing or erroring case whose
    reason or table matches one is counted as ``known`` (a bug already reported), not
    shrunk and not a failure.  Keep it short and document each entry with its reproducer.
    ``timeout`` (seconds, main thread only) bounds one check: sympy can take minutes on some
    constant sub-expressions.  A case that times out is counted and listed in ``slow``, not
    shrunk and not a failure (the reference, not the backend, is stuck).
    """
    from hypothesis import HealthCheck, Phase, Verbosity, assume, given, settings
    from hypothesis import seed as hyp_seed
    from hypothesis.errors import Flaky, Unsatisfiable

    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if max_depth < 0:
        raise ValueError(f"max_depth must be >= 0, got {max_depth}")
    if dtype not in PRECISIONS:
        raise ValueError(f"dtype must be one of {', '.join(PRECISIONS)}, got {dtype!r}")
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3, got {order!r}")
    value_range = check_range(value_range)
    excluded = set(resolve_ops(exclude_ops)) if exclude_ops else set()
    known_names = {op.name for op in resolve_ops(known_ops)} if known_ops else set()
    engine = backends.get(backend)  # unknown backend: BackendUnavailable now, not per case
    name = backend if isinstance(backend, str) else (engine.name or type(engine).__name__)
    # a dtype or device the engine (or the machine) lacks is a usage error now, not a skip per example
    lacking = engine.capabilities.lacks((), 1, dtype, device)
    try:
        with engine.on_device(device):
            pass
    except backends.Unsupported as exc:
        lacking = lacking or str(exc)
    if lacking:
        raise ValueError(f"backend {name!r} cannot fuzz here: it lacks {lacking}")
    options = Options(backend=backend, arrays=False, device=device)  # the failures keep their reports, not the arrays
    declared = engine.capabilities.ops
    table = tuple(op for op in resolve_ops(ops) if op not in excluded
                  and (declared is None or op in declared))  # only within the backend's declared ops
    if not table:
        raise ValueError(f"backend {name!r} declares none of the ops asked for" if declared is not None
                         and not excluded else "every op asked for is excluded or undeclared by the backend")
    guard_ops = None if declared is None and not excluded else (
        [op for op in (declared if declared is not None else _ops.engine_ops()) if op not in excluded])
    strategy = expressions(table, max_depth, shapes, value_range, guard_ops)
    known_res = [re.compile(k) for k in known]
    result = FuzzResult(seed=seed, backend=name, count=count)
    start = time.perf_counter()

    round_ = 0
    while result.checked < count:
        state: dict[str, Any] = {"shrinking": False, "first": None}

        def check(example: Example) -> None:
            if not well_conditioned(example):
                if not state["shrinking"]:
                    result.discarded += 1
                assume(False)
            data = to_case_dict(example, dtype, order=order)
            case = _case(example, data)
            try:
                with _time_limit(timeout):
                    report = run_case(case, options=options)
            except _Timeout:
                if not state["shrinking"]:
                    result.timeouts += 1
                    result.slow.append(data)
                    result.history.append((data["expr"], "timeout"))
                    if result.timeouts >= max(10, count // 10):
                        raise _TooSlow() from None
                assume(False)  # not a verdict: hypothesis neither counts nor shrinks it
            verdict = _verdict(report)
            if verdict in ("fail", "error") and known_res:
                text = report.reason + "\n" + report.table()
                if any(k.search(text) for k in known_res):
                    verdict = "known"
            if not state["shrinking"]:
                result.checked += 1
                result.history.append((data["expr"], verdict))
                attr = {"pass": "passed", "fail": "failed", "error": "errors", "skip": "skipped"}.get(verdict, verdict)
                setattr(result, attr, getattr(result, attr) + 1)
                if progress is not None:
                    progress(result)
            if verdict in ("fail", "error"):
                if not state["shrinking"]:
                    state["shrinking"], state["first"] = True, data["expr"]
                if report.status == "fail":
                    raise _Found(example, data, case, report)
                raise _FoundError(example, data, case, report)

        test = given(strategy)(check)
        test = settings(
            max_examples=count - result.checked, database=None, deadline=None, derandomize=False,
            phases=(Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False, verbosity=Verbosity.quiet, print_blob=False,
        )(test)
        test = hyp_seed(_derived_seed(seed, round_))(test)
        found: _Found | None = None
        try:
            test()
        except _Found as exc:
            found = exc
        except _TooSlow:
            result.stopped = f"stopped after {result.timeouts} checks timed out (timeout={timeout} s)"
            break
        except Unsatisfiable:
            result.stopped = "hypothesis could not generate enough valid examples"
            break
        except Flaky as exc:  # pragma: no cover - the verdicts are deterministic
            found = next((e for e in getattr(exc, "exceptions", ()) if isinstance(e, _Found)), None)
            if found is None:
                raise
        if found is None:
            if result.checked < count:
                result.stopped = "hypothesis ran out of new examples"
            break
        _record(result, found, state["first"] or found.data["expr"], seed, name, dtype, out_dir, options, order,
                known_names)
        if len(result.failures) >= max_failures and result.checked < count:
            result.stopped = f"stopped after {len(result.failures)} root causes (max_failures)"
            break
        round_ += 1
    result.seconds = time.perf_counter() - start
    return result


def _record(result: FuzzResult, found: _Found, first: str, seed: int, backend: str, dtype: str,
            out_dir: str | Path | None, options: Any, order: int = 1, known_names: set[str] | None = None) -> None:
    cause = cause_of(found.example.expr, found.report.status)
    if known_names and _ops_of(cause) <= known_names:  # a known bug: stepped past, not a failure
        attr = "failed" if found.report.status == "fail" else "errors"
        setattr(result, attr, getattr(result, attr) - 1)
        result.known += 1
        if result.history:
            result.history[-1] = (result.history[-1][0], "known")
        return
    same = next((f for f in result.failures if f.cause == cause), None)
    if same is not None:  # the same root cause again: counted as failed, reported (and saved) once
        same.repeats += 1
        return
    description = f"found by symgrad fuzz --seed {seed} on backend {backend}; shrunk by hypothesis"
    if first != found.data["expr"]:
        description += f" from: {first if len(first) <= 300 else first[:297] + '...'}"
    data = to_case_dict(found.example, dtype, description, order)
    failure = Failure(case=found.case, report=found.report, data=data, original=first, cause=cause)
    if out_dir is not None:
        try:
            failure.path = _save(data, out_dir)
        except OSError as exc:  # a read-only folder: the failure is still reported
            failure.save_error = f"could not write the case to {out_dir}: {exc.strerror or exc}"
        else:
            failure.reproduced = _reproduces(failure.path, options)
    result.failures.append(failure)


# ---------------------------------------------------------------- the command
