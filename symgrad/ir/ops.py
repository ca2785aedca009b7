"""The op table: every op symgrad knows, each registered once, with every fact about it.

An entry (:class:`Op`) holds everything symgrad knows about an op, and nothing
else in the package is keyed by op except each engine adapter's map to its own
engine:

* its name, aliases, argument names, keyword parameters and kind;
* its numpy ``forward`` and one VJP per argument;
* ``saves``: what its VJPs read (the tape keeps exactly that), and ``linear``;
* its ``sympy`` form, its ``plain`` sympy rewrite and its ``kink`` convention;
* its ``domain`` (a :class:`Domain` per argument): the fuzzer's guards, the
  tests' inputs and ``symgrad ops`` all come from it;
* ``magnitude``: the size of a constant without computing it, where the float
  forward would overflow (the parser's ``max_const_digits``);
* ``composite``: the op written with other ops of the table, for an engine
  that lacks it;
* for ops with required parameters (indexing, shapes, einsum): ``samples``
  (in-domain argument shapes and params, which the tests and ``symgrad mutate``
  use), how the parser reads them (``positional``, ``leading``, ``members``),
  how ``to_source`` prints them (``printer``) and a grad_fn name that depends on
  the input shapes (``backward_of``).

VJPs are written with the table's own functions (``cos(x)``, ``where(...)``)
and operators, as HIPS autograd writes its VJPs with ``autograd.numpy``.  Each
function dispatches on its arguments: on IR nodes it builds the expression
tree, on tape tensors it records a node, on numpy arrays it just computes.  So
a tape that records a VJP can differentiate it again (``create_graph=True``).

A VJP is ``vjp(g, ans, *args, **params) -> gradient`` in the broadcast shape of
the output; the tape sums it back to the argument's shape.  ``None`` in place
of a VJP means no gradient flows through that argument.  A VJP may read only
what ``saves`` declares (of the rest it gets the shape and dtype only, and
``tests/test_op_table.py`` checks this for every op).

Sympy forms are ``form(s, *args, **params)`` where ``s`` is the namespace of
:mod:`symgrad.symbolic.functions` (sympy plus symgrad's own functions that carry
the conventions).  Elementwise forms take sympy scalars; the others take numpy
object arrays of sympy expressions (expanded mode).  This module never imports
sympy: every sympy-related field is a function of the namespace ``s``.

Adding an op is one ``defop`` call here (see CONTRIBUTING.md, "Adding an op").
"""

from __future__ import annotations

import builtins
import difflib
import enum
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

ELEMENTWISE = "elementwise"
REDUCTION = "reduction"
LINALG = "linalg"  # matmul, transpose: not elementwise, no axis
INTERNAL = "internal"  # used by VJPs only, not part of the expression language
SCAN = "scan"  # along an axis, the shape kept: softmax, log_softmax
SHAPE = "shape"  # moves elements only (indexing, reshape, concatenate ...): not elementwise

Vjp = Optional[Callable[..., Any]]  # noqa: UP045
Est = Optional[tuple[int, float]]  # a constant's (sign, log10|value|); sign 0 is 0; None: not estimable  # noqa: UP045


def _is_integer(x: Any) -> Any:
    return np.all(np.asarray(x) == np.round(x))


class Domain(enum.Enum):
    """Where an op's argument may lie.

    ``text`` is what ``symgrad ops`` prints (``{x}`` is the argument's name); ``inside`` is the open
    part where the op and all its derivatives are finite and defined (the fuzzer keeps arguments
    there, wrapping them as ``guard`` says; tests draw their inputs from ``sample``: ``(lo, hi)``,
    with either sign when ``signed``).  A *joint* domain is a condition on all arguments together;
    it is then the op's only member.
    """

    #         text                                  inside                           guard          sample        signed joint
    REAL = ("any {x}", None, None, (-3.0, 3.0), False, False)
    POSITIVE = ("{x} > 0", lambda x: x > 0, "positive", (0.2, 3.0), False, False)
    NONNEGATIVE = ("{x} >= 0", lambda x: x > 0, "positive", (0.2, 3.0), False, False)
    ABOVE_MINUS_ONE = ("{x} > -1", lambda x: x > -1, "positive", (-0.8, 3.0), False, False)
    AT_LEAST_ONE = ("{x} >= 1", lambda x: x > 1, "above_one", (1.2, 4.0), False, False)
    UNIT_OPEN = ("-1 < {x} < 1", lambda x: np.abs(x) < 1, "unit", (-0.9, 0.9), False, False)
    UNIT_CLOSED = ("-1 <= {x} <= 1", lambda x: np.abs(x) < 1, "unit", (-0.9, 0.9), False, False)
    NONZERO = ("{x} != 0", lambda x: x != 0, "nonzero", (0.2, 3.0), True, False)
    UNIT_INTERVAL = ("0 < {x} < 1", lambda x: (x > 0) & (x < 1), "unit01", (0.1, 0.9), False, False)
    SINGULAR_AT_ZERO = ("any {x}; derivatives infinite at 0", lambda x: x != 0, "nonzero", (0.2, 3.0), True, False)
    CONDITION = ("{x} a condition (no gradient)", None, None, (0.0, 1.0), False, False)  # where's c: booleans
    # joint: conditions on all arguments together
    NOT_BOTH_ZERO = ("({x}, {y}) != (0, 0)", lambda x, y: (x != 0) | (y != 0), None, (0.2, 3.0), True, True)
    # atan2 jumps by 2 pi across y = 0 where x < 0: a y that is 0 up to rounding (a sum that cancels,
    # computed in another order by two engines) flips the value, so "inside" keeps |y| > 1e-6 there
    OFF_BRANCH_CUT = ("({x}, {y}) != (0, 0); jumps by 2 pi across {x} = 0, {y} < 0",
                      lambda y, x: (x > 0) | (np.abs(y) > 1e-6), None, (0.2, 3.0), False, True)
    POSITIVE_BASE = ("{x} > 0 for non-integer {y}", lambda x, y: (x > 0) | _is_integer(y), None, (0.2, 3.0),
                     False, True)

    def __init__(self, text: str, inside: Callable[..., Any] | None, guard: str | None,
                 sample: tuple[float, float], signed: bool, joint: bool):
        self.text, self.inside, self.guard = text, inside, guard
        self.sample, self.signed, self.joint = sample, signed, joint

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Random values inside the domain (booleans for a condition)."""
        if self is Domain.CONDITION:
            return rng.random(shape) < 0.5
        values = rng.uniform(*self.sample, size=shape)
        return values * rng.choice([-1.0, 1.0], size=shape) if self.signed else values


@dataclass(frozen=True, eq=False)
class Op:
    """One op.  Register table entries with :func:`defop`; ``Op(...)`` itself makes an unregistered
    op (a user's custom op), which saves everything for its VJPs unless told otherwise."""

    name: str
    arity: int
    forward: Callable[..., Any]
    vjps: tuple[Vjp, ...]
    sympy: Callable[..., Any] | None = None
    kind: str = ELEMENTWISE
    aliases: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    kink: str = ""
    # where the kinks, ties and jumps are, machine-readably: kink_at(ans, *args, **params) is an
    # array that is 0 exactly there and whose sign picks the branch (abs: x; maximum: x - y).  Plain
    # numpy arithmetic, so that it runs on float arrays and on object arrays of sympy expressions.
    kink_at: Callable[..., Any] | None = None
    # the value itself jumps where kink_at is 0 (sign, the conditions, atan2's branch cut), not only its
    # derivative: a forward value that rounding puts on the other side of the jump than the exact one is at
    # a kink too (and so is every derivative it may scale)
    jumps: bool = False
    # a jump whose values are discrete steps (sign, floor, a condition): the same in every engine away from
    # the jump, with no rounding error of their own.  atan2's value is a libm value, copysign's follows x's
    steps: bool = False
    # every engine gets the same float result from the same float arguments: IEEE 754 rounds it once
    # (+ - * / sqrt, square, reciprocal), or it selects, compares or moves values without arithmetic
    # (maximum, where, floor, index, ...).  False (libm functions, sums whose order differs, pow): another
    # engine may be an ulp away, so a tie or kink the float forward finds there is at a kink (rounding), kinks.py
    correctly_rounded: bool = False
    # per element, its value is one of its arguments' or a constant, and which one only its kink (or, for
    # where, its condition's jump) decides (maximum, relu, where): it is as certain as what it returns, away
    # from the kink (kinks.py)
    selects: bool = False
    # the arguments whose exact 0 makes the result an exact 0 in every engine, the others finite (x*0, xlogy(0, y)):
    # then it is certain however the others were rounded (kinks.py)
    zero_absorbs: tuple[int, ...] = ()
    # how another libm's rounding below the op carries into its result (kinks.py): error_scale(t) is the
    # size of the largest term the result is built from, read from ``t``: per argument the size ``t.s[i]``
    # and magnitude ``t.v[i]``, the result's magnitude ``t.ans``, ``t.over(x, i)`` (x divided by argument
    # i's magnitude) and ``t.pick(i, a, b)`` (where on argument i).  Written with np.maximum, the same rule
    # runs per element and as a bound over all elements.  None: the result's own magnitude
    error_scale: Callable[[Any], Any] | None = None
    # one Domain per argument, or one joint member; a single per-argument member applies to every argument
    domain: Any = Domain.REAL
    backward_name: str = ""
    infix: str | None = None
    args: tuple[str, ...] = ()  # argument names, as VJPs, ``saves`` and domain texts call them
    # what the VJPs read of "ans" and the arguments, for all of them (("x",)) or one tuple per VJP
    # ((("y",), ("x",)) for mul); None: everything.  Normalised to one tuple per VJP.
    saves: Any = None
    linear: bool = False  # linear in its arguments: its VJPs read shapes only, so nothing is saved
    domain_note: str = ""  # printed after the domain: what the members do not say
    # the same function as the sympy form builds, in plain sympy (no convention classes):
    # plain(s, *that function's args); proofs compare formulas with it (symbolic/prove.py)
    plain: Callable[..., Any] | None = None
    # (sign, log10|value|) of the result from the arguments' (see Est), where the float forward
    # would overflow first; other ops' constants are sized by running the forward on floats
    magnitude: Callable[..., Est] | None = None
    # the op written with the table's ops, for an engine that lacks it: composite(*args) -> value;
    # it must agree with the op (value and derivatives) inside the op's domain, and an engine
    # refuses (Unsupported) to use it at points outside
    composite: Callable[..., Any] | None = None
    # parameters the parser reads positionally after the arguments (``reshape(x, (2, 3))``: "shape")
    positional: tuple[str, ...] = ()
    # the first argument is a tuple of members (``concatenate((x, y, z), axis=0)``): the parser builds
    # ``members(list of IR members, **params)`` from them, with the binary op itself
    members: Callable[..., Any] | None = None
    # how ``to_source`` prints a call: printer(argument texts, their precedences, params) -> text
    printer: Callable[..., str] | None = None
    # grad_fn names that depend on the inputs' shapes: backward_of(params, input shapes) -> name
    backward_of: Callable[..., str] | None = None
    # in-domain examples for the tests: ((argument shapes, ...), params) pairs
    samples: tuple = ()
    # parameters the parser reads positionally before the arguments (``einsum("ij,jk->ik", a, b)``)
    leading: tuple[str, ...] = ()
    _saved: dict = field(default_factory=dict, init=False, repr=False)  # saved(), memoised

    def __post_init__(self) -> None:
        name, arity, vjps = self.name, self.arity, self.vjps
        args = self.args or _DEFAULT_ARGS.get(arity, tuple(f"x{i}" for i in range(arity)))
        if len(args) != arity or len(vjps) != arity:
            raise ValueError(f"op {name!r}: arity {arity}, {len(vjps)} VJPs, arguments {args}")
        saves = self.saves
        if saves is None:
            saves = () if self.linear else ("ans", *args)
        per_vjp = saves if saves and not isinstance(saves[0], str) else (saves,) * arity
        per_vjp = tuple(tuple(s) if v is not None else () for s, v in zip(per_vjp, vjps))
        if len(per_vjp) != arity or {n for s in per_vjp for n in s} - {"ans", *args}:
            raise ValueError(f"op {name!r}: saves={self.saves!r} must name 'ans' or its arguments {args}")
        if self.linear and any(per_vjp):
            raise ValueError(f"op {name!r}: a linear op's VJPs read shapes only, it saves nothing")
        domain = self.domain
        domains = domain if isinstance(domain, tuple) else (domain,) if domain.joint else (domain,) * arity
        if len(domains) != (1 if domains[0].joint else arity) or (domains[0].joint and arity < 2):
            raise ValueError(f"op {name!r}: domain {domain!r} for {arity} argument(s)")
        for attr, value in (("args", tuple(args)), ("saves", per_vjp), ("domain", domains)):
            object.__setattr__(self, attr, value)

    def __call__(self, *args: Any, **params: Any) -> Any:
        if self.members is not None and not self.leading and len(args) in (1, 2) and isinstance(args[0], (list, tuple)):
            # stack((x, y, z)) as the language writes it; stack(ts, 1) as numpy and torch, stack(ts, dim=1) as torch
            if len(args) == 2:
                params = {"axis": args[1], **params}
            if "dim" in params:
                params["axis"] = params.pop("dim")
            return self.members(list(args[0]), **params)
        if self.leading and args and isinstance(args[0], str):  # einsum("ij,jk->ik", a, b), as numpy and torch
            params = {self.leading[0]: args[0], **params}
            args = args[1:]
        if self.leading and self.members is not None and (
                len(args) != self.arity or "->" not in str(params.get(self.leading[0], "->"))):
            return self.members(list(args), **params)  # einsum of one or 3+ operands, or an implicit output
        return apply(self, args, params)

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    def __reduce__(self) -> tuple:  # pickled by name: IR and cases travel to worker processes
        return (_by_name, (self.name,))

    @property
    def public(self) -> bool:
        return self.kind != INTERNAL

    @property
    def differentiable(self) -> bool:
        return any(v is not None for v in self.vjps)

    def grad_fn_name(self, params: dict[str, Any], shapes: tuple | None = None) -> str:
        """PyTorch's name for the backward node, e.g. ``SumBackward1`` for a sum over an axis."""
        if self.backward_of is not None and shapes is not None:
            return self.backward_of(params, shapes)
        base = self.backward_name or self.name.capitalize() + "Backward0"
        if self.kind == REDUCTION and params.get("axis") is not None:
            return base[:-1] + "1"
        return base

    def saved(self, needed: tuple[bool, ...]) -> tuple[bool, ...]:
        """Which of ``(ans, *args)`` a node keeps when the VJPs of the arguments marked in ``needed`` run."""
        out = self._saved.get(needed)
        if out is None:
            names = {n for i, vjp in enumerate(self.vjps) if needed[i] and vjp is not None for n in self.saves[i]}
            out = self._saved[needed] = ("ans" in names, *(a in names for a in self.args))
        return out

    def inside(self, *values: Any) -> Any:
        """True where the values lie inside the op's domain (elementwise; see :class:`Domain`)."""
        ok: Any = True
        if self.domain[0].joint:
            return ok if self.domain[0].inside is None else self.domain[0].inside(*values)
        for d, v in zip(self.domain, values):
            if d.inside is not None:
                ok = ok & d.inside(v)
        return ok

    @property
    def domain_text(self) -> str:
        """The domain as ``symgrad ops`` prints it, e.g. ``y != 0`` for ``div``; "" when unrestricted."""
        names = dict(zip(("x", "y"), self.args))
        if self.domain[0].joint:
            parts = [self.domain[0].text.format(**names)]
        else:
            parts = [d.text.format(x=a) for d, a in zip(self.domain, self.args) if d is not Domain.REAL]
        if self.domain_note:
            parts.append(self.domain_note)
        return "; ".join(parts)


OPS: dict[str, Op] = {}  # by name and by alias


_DEFAULT_ARGS = {1: ("x",), 2: ("x", "y"), 3: ("c", "x", "y")}


def _by_name(name: str) -> Op:
    return OPS[name]


def apply(op: Op, args: tuple, params: dict[str, Any]) -> Any:
    """Dispatch ``op`` to the first argument that knows how to take it (IR node, tensor), else numpy."""
    for a in args:
        hook = getattr(a, "__symgrad_apply__", None)
        if hook is not None:
            return hook(op, args, params)
    return op.forward(*args, **params)


def defop(name: str, forward: Callable[..., Any], *vjps: Vjp, **fields: Any) -> Op:
    """Register one op under its name and aliases; return it (it is also its own function).

    ``saves`` names what the VJPs read, ``("x",)`` for all of them or one tuple per VJP
    (``(("y",), ("x",))`` for ``mul``); a differentiable entry that is not ``linear`` must declare it.
    ``domain`` is one :class:`Domain` for every argument, a joint one, or one per argument.
    """
    if "saves" not in fields and not fields.get("linear") and any(v is not None for v in vjps):
        raise ValueError(f"op {name!r}: declare what its VJPs read (saves=...), or linear=True")
    op = Op(name, len(vjps), forward, tuple(vjps), **fields)
    for key in (name, *op.aliases):
        if key in OPS:
            raise ValueError(f"op {key!r} registered twice")
        OPS[key] = op
    return op


def lookup(name: str) -> Op | None:
    op = OPS.get(name)
    return op if op is not None and op.public else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'sigmoid'?"`` for the closest of ``choices`` (difflib), or ``""``."""
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def public_ops() -> list[Op]:
    """Every op of the expression language once, in registration order."""
    seen: dict[int, Op] = {}
    for op in OPS.values():
        if op.public:
            seen.setdefault(id(op), op)
    return list(seen.values())


def all_ops() -> list[Op]:
    """Every op once, internal ones included, in registration order."""
    seen: dict[int, Op] = {}
    for op in OPS.values():
        seen.setdefault(id(op), op)
    return list(seen.values())


def engine_ops() -> list[Op]:
    """The ops an engine adapter may be asked to run: the public ones, and the internal ones without
    keyword parameters (``where``, ``sign`` ...), which a composite may use."""
    return [op for op in all_ops() if op.public or not op.params]


# ---------------------------------------------------------------- sizes of constants
#
# Arithmetic on (sign, log10|value|) never builds a big number: 9**9**9**9 is sized, not computed.

_LOG10E = math.log10(math.e)


def est_of(value: int | float) -> Est:
    """The estimate of a float (``inf`` is too big to count, ``nan`` not estimable)."""
    if isinstance(value, float) and not math.isfinite(value):  # ints are exact, of any size
        return (1, math.inf) if math.isinf(value) else None
    if value == 0:
        return (0, -math.inf)
    return (1 if value > 0 else -1, math.log10(builtins.abs(value)))


def float_of(est: tuple[int, float]) -> float:
    sign, mag = est
    if sign == 0:
        return 0.0
    return sign * (10.0 ** mag if mag < 308 else math.inf)


def _mag_add(a: tuple[int, float], b: tuple[int, float], negate_b: bool = False) -> Est:
    bs = -b[0] if negate_b else b[0]
    if a[0] == 0 or bs == 0:
        return (a[0], a[1]) if bs == 0 else (bs, b[1])
    if builtins.abs(a[1] - b[1]) > 20:  # one term dominates
        return (a[0], a[1]) if a[1] > b[1] else (bs, b[1])
    if builtins.max(a[1], b[1]) < 300:
        return est_of(float_of(a) + bs * float_of(b))
    return (1, builtins.max(a[1], b[1]) + 0.31)  # |a + b| <= 2 max(|a|, |b|)


def _mag_mul(a: tuple[int, float], b: tuple[int, float], divide: bool = False) -> Est:
    if divide and b[0] == 0:
        return None  # zoo
    if a[0] == 0 or b[0] == 0:
        return (0, -math.inf)
    return (a[0] * b[0], a[1] - b[1] if divide else a[1] + b[1])


def _mag_pow(a: tuple[int, float], b: tuple[int, float]) -> Est:
    exponent = float_of(b)
    if a[0] == 0:
        return (0, -math.inf) if exponent > 0 else ((1, 0.0) if exponent == 0 else None)
    if exponent == 0 or a[1] == 0:  # x**0 == 1, (+-1)**y has modulus 1
        return (1, 0.0)
    if math.isinf(exponent):
        return (1, math.inf)
    sign = -1 if a[0] < 0 and exponent == int(exponent) and int(exponent) % 2 else 1
    return (sign, a[1] * exponent)


def _mag_exp(x: float) -> Est:  # exp(x) without overflow
    return (1, x * _LOG10E) if not math.isinf(x) else ((1, math.inf) if x > 0 else (0, -math.inf))


def _mag_hyperbolic(fn: Callable[[float], float], odd: bool) -> Callable[[tuple[int, float]], Est]:
    """|sinh x|, cosh x ~ exp(|x|) / 2 where they are big, the float function elsewhere."""
    def magnitude(a: tuple[int, float]) -> Est:
        x = float_of(a)
        big = _mag_exp(builtins.abs(x))
        if big is not None and big[1] > 300:
            return (-1 if odd and x < 0 else 1, big[1] - math.log10(2))
        return est_of(fn(x))

    return magnitude


# ---------------------------------------------------------------- shape helpers


def normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for ax in axes:
        if not -builtins.max(ndim, 1) <= ax < builtins.max(ndim, 1):
            raise ValueError(f"axis {ax} is out of bounds for an array of dimension {ndim}")
        out.append(ax % ndim if ndim else 0)
    return tuple(sorted(set(out)))


def _kept_shape(shape: tuple[int, ...], axis: Any) -> tuple[int, ...]:
    axes = normalize_axes(axis, len(shape))
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def unbroadcast(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast array back to ``shape`` (numpy only)."""
    x = np.asarray(x)
    if x.shape == tuple(shape):
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and x.shape[i + lead] != 1
    )
    out = x.sum(axis=axes, keepdims=True) if axes else x
    return out.reshape(shape)


def expand(g: Any, shape: tuple[int, ...], axis: Any) -> Any:
    """The inverse of a reduction over ``axis``: broadcast ``g`` back to ``shape``."""
    return broadcast_to(reshape(g, shape=_kept_shape(shape, axis)), shape=tuple(shape))


def _count(shape: tuple[int, ...], axis: Any) -> int:
    return math.prod(shape[i] for i in normalize_axes(axis, len(shape)))


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(np.shape(x))


# ---------------------------------------------------------------- internal ops


def _as2d(x: Any, row: bool) -> Any:
    """View a 1-D matmul operand as a matrix: a row for the left, a column for the right."""
    if len(_shape(x)) == 2:
        return x
    n = _shape(x)[0]
    return reshape(x, shape=(1, n) if row else (n, 1))


reshape = defop(
    "reshape",
    lambda x, shape: np.reshape(x, shape),
    lambda g, ans, x, shape: reshape(g, shape=_shape(x)),
    kind=SHAPE, params=("shape",), backward_name="ViewBackward0", linear=True, positional=("shape",),
    sympy=lambda s, x, shape: np.reshape(x, shape),
    samples=((((2, 3),), {"shape": (3, -1)}), (((6,),), {"shape": (2, 3)})),
    correctly_rounded=True,
)
broadcast_to = defop(
    "broadcast_to",
    lambda x, shape: np.broadcast_to(x, shape),
    lambda g, ans, x, shape: sum_to(g, shape=_shape(x)),
    kind=SHAPE, params=("shape",), backward_name="ExpandBackward0", linear=True, positional=("shape",),
    sympy=lambda s, x, shape: np.broadcast_to(x, shape),
    samples=((((3,),), {"shape": (2, 3)}), (((2, 1),), {"shape": (3, 2, 4)})),
    correctly_rounded=True,
)
sum_to = defop(
    "sum_to",
    unbroadcast,
    lambda g, ans, x, shape: broadcast_to(g, shape=_shape(x)),
    kind=INTERNAL, params=("shape",), backward_name="SumBackward1", linear=True,
)
where = defop(
    "where",
    np.where,
    None,
    lambda g, ans, c, x, y: where(c, g, 0.0),
    lambda g, ans, c, x, y: where(c, 0.0, g),
    saves=("c",), domain=(Domain.CONDITION, Domain.REAL, Domain.REAL),
    sympy=lambda s, c, x, y: s.Piecewise((x, _truth(s, c)), (y, True)),  # c: a comparison, or c != 0
    kink="gradient to the chosen branch only, 0 to the other; none to the condition",
    correctly_rounded=True, selects=True, error_scale=lambda t: t.pick(0, t.s[1], t.s[2]),
)
sign = defop(
    "sign", np.sign, None, sympy=lambda s, x: s.sign(x), kink="sign' = 0 everywhere (0 at the jump too)",
    kink_at=lambda ans, x: x, jumps=True, steps=True,
    correctly_rounded=True,
)
# the derivative of maximum: 1 where x > 0, 1/2 where x == 0, 0 elsewhere
step = defop("step", lambda x: np.heaviside(x, 0.5), None, kind=INTERNAL, correctly_rounded=True)
clone = defop("clone", lambda x: np.array(x, copy=True), lambda g, ans, x: g, kind=INTERNAL, linear=True, correctly_rounded=True)
# the tape engine's dtype cast, differentiable so that it can sit in a graph built with create_graph=True
cast = defop(
    "cast",
    lambda x, dtype: np.asarray(x).astype(dtype),
    lambda g, ans, x, dtype: cast(g, dtype=x.dtype),
    kind=INTERNAL, params=("dtype",), backward_name="ToCopyBackward0", linear=True,
    correctly_rounded=True,
)

# ---------------------------------------------------------------- arithmetic

add = defop(
    "add", np.add,
    lambda g, ans, x, y: g,
    lambda g, ans, x, y: g,
    sympy=lambda s, x, y: x + y, infix="+", linear=True, magnitude=_mag_add,
    correctly_rounded=True, error_scale=lambda t: np.maximum(t.ans, np.maximum(t.s[0], t.s[1])),
)
sub = defop(
    "sub", np.subtract,
    lambda g, ans, x, y: g,
    lambda g, ans, x, y: -g,
    sympy=lambda s, x, y: x - y, infix="-", aliases=("subtract",), linear=True,
    magnitude=lambda a, b: _mag_add(a, b, negate_b=True),
    correctly_rounded=True, error_scale=lambda t: np.maximum(t.ans, np.maximum(t.s[0], t.s[1])),
)
mul = defop(
    "mul", np.multiply,
    lambda g, ans, x, y: g * y,
    lambda g, ans, x, y: g * x,
    sympy=lambda s, x, y: x * y, infix="*", aliases=("multiply",), saves=(("y",), ("x",)),
    magnitude=_mag_mul,
    correctly_rounded=True, zero_absorbs=(0, 1),
    error_scale=lambda t: np.maximum(t.ans, np.maximum(t.s[0] * t.v[1], t.v[0] * t.s[1])),
)
div = defop(
    "div", np.true_divide,
    lambda g, ans, x, y: g / y,
    lambda g, ans, x, y: -g * x / (y * y),
    sympy=lambda s, x, y: x / y, infix="/", aliases=("divide", "true_divide"),
    saves=(("y",), ("x", "y")), domain=(Domain.REAL, Domain.NONZERO),
    magnitude=lambda a, b: _mag_mul(a, b, divide=True),
    correctly_rounded=True,
    error_scale=lambda t: np.maximum(t.ans, t.over(np.maximum(t.s[0], t.over(t.v[0] * t.s[1], 1)), 1)),
)
neg = defop(
    "neg", np.negative,
    lambda g, ans, x: -g,
    sympy=lambda s, x: -x, infix="-", aliases=("negative",), linear=True,
    magnitude=lambda a: (-a[0], a[1]),
    correctly_rounded=True, error_scale=lambda t: t.s[0],
)


def _pow_dx(g: Any, ans: Any, x: Any, y: Any) -> Any:
    # d/dx x**c is 0 when c == 0, at every x (PyTorch's convention)
    if isinstance(y, (int, float)):
        if y == 2:  # x ** 1 is x exactly: one pass over the array fewer (x**2 is the commonest power)
            return g * y * x
        return g * 0.0 if y == 0 else g * y * x ** (y - 1)
    # the unused branch gets a harmless exponent, so differentiating this again gives no 0 * inf
    return where(y == 0, 0.0, g * y * x ** where(y == 0, 1.0, y - 1))


def _pow_dy(g: Any, ans: Any, x: Any, y: Any) -> Any:
    # d/dy x**y is 0 at x == 0, y >= 0, where x**y * log(x) would be nan
    at_zero = (x == 0) & (y >= 0)
    safe = where(at_zero, 1.0, x)  # keeps log(0) out of the graph that create_graph records
    return where(at_zero, 0.0, g * safe**y * log(safe))


# the constant exponents torch computes without libm's pow, as x*x*x and 1/(x*x) (for float32 and float64):
# torch's bits, at a tenth of pow's time.  numpy's ``**`` already computes x**2, x**-1 and x**0.5 as x*x, 1/x and
# sqrt(x).  The reference's printer calls power() for these exponents too (symbolic/compile.py).
POWER_SHORTCUTS = (3, -2)
_SHORTCUT_BASES = frozenset({np.ndarray, np.float64, np.float32})
_SHORTCUT_EXPONENTS = frozenset({int, float, np.float64, np.float32, np.int64, np.int32})
_SHORTCUT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def power(x: Any, y: Any) -> Any:
    """``np.power(x, y)``, with torch's shortcuts for a float array to a number 3 or -2."""
    if (type(y) in _SHORTCUT_EXPONENTS and y in POWER_SHORTCUTS and type(x) in _SHORTCUT_BASES
            and x.dtype in _SHORTCUT_DTYPES):
        return x * x * x if y == 3 else 1.0 / (x * x)
    return np.power(x, y)


pow = defop(
    "pow", power, _pow_dx, _pow_dy,
    sympy=lambda s, x, y: s.power(x, y), infix="**", aliases=("power",),
    kink="d/dx x**0 = 0 at every x; d/dy x**y = 0 at x = 0, y >= 0",
    saves=("x", "y"), domain=Domain.POSITIVE_BASE, plain=lambda s, x, y: x**y, magnitude=_mag_pow,
)

# ---------------------------------------------------------------- elementwise, one argument

exp = defop(
    "exp", np.exp, lambda g, ans, x: g * ans, sympy=lambda s, x: s.exp(x), saves=("ans",),
    magnitude=lambda a: _mag_exp(float_of(a)),
)
expm1 = defop(
    "expm1", np.expm1, lambda g, ans, x: g * (ans + 1.0), sympy=lambda s, x: s.exp(x) - 1, saves=("ans",)
)
log = defop(
    "log", np.log, lambda g, ans, x: g / x, sympy=lambda s, x: s.log(x), saves=("x",), domain=Domain.POSITIVE
)
log2 = defop(
    "log2", np.log2, lambda g, ans, x: g / (x * math.log(2.0)),
    sympy=lambda s, x: s.log(x, 2), saves=("x",), domain=Domain.POSITIVE,
)
log10 = defop(
    "log10", np.log10, lambda g, ans, x: g / (x * math.log(10.0)),
    sympy=lambda s, x: s.log(x, 10), saves=("x",), domain=Domain.POSITIVE,
)
log1p = defop(
    "log1p", np.log1p, lambda g, ans, x: g / (x + 1.0),
    sympy=lambda s, x: s.log(x + 1), saves=("x",), domain=Domain.ABOVE_MINUS_ONE, backward_name="Log1PBackward0",
)
sqrt = defop(
    # g * 0.5 * ans**-1, not g / (2 * ans): differentiating a division again multiplies by the
    # zero denominator (inf * 0 = nan at x = 0), a constant power only gives more infinities, so
    # sqrt's derivatives at 0 are +inf, -inf, +inf at orders 1, 2, 3 on the tape as in sympy
    "sqrt", np.sqrt, lambda g, ans, x: g * (0.5 * ans**-1.0), saves=("ans",),
    sympy=lambda s, x: s.sqrt(x), domain=Domain.NONNEGATIVE, kink="sqrt'(0) = +inf",
    kink_at=lambda ans, x: x,
    correctly_rounded=True,
)
abs = defop(
    "abs", np.abs, lambda g, ans, x: g * sign(x), saves=("x",),
    sympy=lambda s, x: s.abs_(x), plain=lambda s, x: s.Abs(x), aliases=("absolute",), kink="abs'(0) = 0",
    kink_at=lambda ans, x: x,
    correctly_rounded=True,
)
cbrt = defop(
    # a constant power, not a division (as sqrt): cbrt's derivatives at 0 are +inf, -inf, +inf at
    # orders 1, 2, 3 on the tape, as the one-sided limits of the sympy form's x >= 0 branch
    "cbrt", np.cbrt, lambda g, ans, x: g * ((1.0 / 3.0) * ans**-2.0), saves=("ans",),
    sympy=lambda s, x: s.Piecewise((x ** s.Rational(1, 3), x >= 0), (-((-x) ** s.Rational(1, 3)), True)),
    domain=Domain.SINGULAR_AT_ZERO, kink="cbrt'(0) = +inf",
    kink_at=lambda ans, x: x,
    # torch has no cbrt, autograd's cannot be differentiated; this agrees with cbrt wherever x != 0
    composite=lambda x: sign(x) * abs(x) ** (1.0 / 3.0),
)
sin = defop("sin", np.sin, lambda g, ans, x: g * cos(x), sympy=lambda s, x: s.sin(x), saves=("x",))
cos = defop("cos", np.cos, lambda g, ans, x: -g * sin(x), sympy=lambda s, x: s.cos(x), saves=("x",))
tan = defop(
    "tan", np.tan, lambda g, ans, x: g * (1.0 + ans * ans), sympy=lambda s, x: s.tan(x), saves=("ans",)
)
asin = defop(
    "asin", np.arcsin, lambda g, ans, x: g / sqrt(1.0 - x * x), saves=("x",),
    sympy=lambda s, x: s.asin(x), aliases=("arcsin",), domain=Domain.UNIT_CLOSED,
)
acos = defop(
    "acos", np.arccos, lambda g, ans, x: -g / sqrt(1.0 - x * x), saves=("x",),
    sympy=lambda s, x: s.acos(x), aliases=("arccos",), domain=Domain.UNIT_CLOSED,
)
atan = defop(
    "atan", np.arctan, lambda g, ans, x: g / (1.0 + x * x), saves=("x",),
    sympy=lambda s, x: s.atan(x), aliases=("arctan",),
)
sinh = defop(
    "sinh", np.sinh, lambda g, ans, x: g * cosh(x), sympy=lambda s, x: s.sinh(x), saves=("x",),
    magnitude=_mag_hyperbolic(math.sinh, odd=True),
)
cosh = defop(
    "cosh", np.cosh, lambda g, ans, x: g * sinh(x), sympy=lambda s, x: s.cosh(x), saves=("x",),
    magnitude=_mag_hyperbolic(math.cosh, odd=False),
)
tanh = defop(
    "tanh", np.tanh, lambda g, ans, x: g * (1.0 - ans * ans), sympy=lambda s, x: s.tanh(x), saves=("ans",)
)
asinh = defop(
    "asinh", np.arcsinh, lambda g, ans, x: g / sqrt(x * x + 1.0), saves=("x",),
    sympy=lambda s, x: s.asinh(x), aliases=("arcsinh",),
)
acosh = defop(
    "acosh", np.arccosh, lambda g, ans, x: g / sqrt(x * x - 1.0), saves=("x",),
    sympy=lambda s, x: s.acosh(x), aliases=("arccosh",), domain=Domain.AT_LEAST_ONE,
)
atanh = defop(
    "atanh", np.arctanh, lambda g, ans, x: g / (1.0 - x * x), saves=("x",),
    sympy=lambda s, x: s.atanh(x), aliases=("arctanh",), domain=Domain.UNIT_OPEN,
)


def _sigmoid(x: Any) -> Any:
    # exp(-|x|) never overflows; the two branches agree where both are finite
    z = np.exp(-np.abs(x))
    return np.where(np.asarray(x) >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def _softplus(x: Any) -> Any:
    return np.logaddexp(0.0, x)


_ERF_BY_ELEMENT = 1 << 16  # up to this many elements, math.erf per element (at most ~6 ms) beats importing scipy
_math_erf = np.frompyfunc(math.erf, 1, 1)


def _erf(x: Any) -> Any:
    """erf elementwise: the C library's (``math.erf``) on arrays up to 65 536 elements, scipy's ufunc on larger
    ones (6x faster per element, but importing ``scipy.special`` takes about 0.15 s, more than a small check)."""
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    if x.size > _ERF_BY_ELEMENT:
        from scipy.special import erf

        return erf(x.astype(dtype, copy=False))
    return np.asarray(_math_erf(x), dtype=dtype)


sigmoid = defop(
    "sigmoid", _sigmoid, lambda g, ans, x: g * ans * (1.0 - ans), saves=("ans",),
    sympy=lambda s, x: s.sigmoid(x), aliases=("expit",), plain=lambda s, x: 1 / (1 + s.exp(-x)),
)
relu = defop(
    "relu", lambda x: np.maximum(x, 0), lambda g, ans, x: where(x > 0, g, 0.0), saves=("x",),
    sympy=lambda s, x: s.relu(x), kink="relu'(0) = 0", plain=lambda s, x: s.Max(x, 0),
    kink_at=lambda ans, x: x,
    correctly_rounded=True, selects=True,
)
softplus = defop(
    "softplus", _softplus, lambda g, ans, x: g * sigmoid(x), saves=("x",),
    sympy=lambda s, x: s.softplus(x), plain=lambda s, x: s.log(1 + s.exp(x)),
)
erf = defop(
    "erf", _erf, lambda g, ans, x: g * (2.0 / math.sqrt(math.pi)) * exp(-(x * x)), saves=("x",),
    sympy=lambda s, x: s.erf(x),
)
detach = defop(
    "detach", lambda x: np.array(x, copy=True), None,
    sympy=lambda s, x: s.detach(x), aliases=("stop_gradient",), plain=lambda s, x: x,
    kink="stop-gradient: derivative 0 everywhere",
    correctly_rounded=True,
)

# ---------------------------------------------------------------- elementwise, two arguments

atan2 = defop(
    "atan2", np.arctan2,
    lambda g, ans, y, x: g * x / (x * x + y * y),
    lambda g, ans, y, x: -g * y / (x * x + y * y),
    args=("y", "x"), saves=("y", "x"), domain=Domain.OFF_BRANCH_CUT,
    sympy=lambda s, y, x: s.atan2(y, x), aliases=("arctan2",),
    # the value jumps by 2 pi across y = 0 where x < 0 (its derivative does not): y there, 0 elsewhere
    kink="jumps by 2 pi across y = 0 where x < 0; the derivative is continuous there",
    kink_at=lambda ans, y, x: y * (abs(x) - x), jumps=True,
)
hypot = defop(
    "hypot", np.hypot,
    lambda g, ans, x, y: g * x / ans,
    lambda g, ans, x, y: g * y / ans,
    saves=(("x", "ans"), ("y", "ans")), domain=Domain.NOT_BOTH_ZERO,
    sympy=lambda s, x, y: s.sqrt(x**2 + y**2),
)
maximum = defop(
    "maximum", np.maximum,
    lambda g, ans, x, y: g * step(x - y),
    lambda g, ans, x, y: g * step(y - x),
    saves=("x", "y"), sympy=lambda s, x, y: s.maximum(x, y), plain=lambda s, x, y: s.Max(x, y),
    kink="ties: 1/2 to each argument", kink_at=lambda ans, x, y: x - y,
    correctly_rounded=True, selects=True,
)
minimum = defop(
    "minimum", np.minimum,
    lambda g, ans, x, y: g * step(y - x),
    lambda g, ans, x, y: g * step(x - y),
    saves=("x", "y"), sympy=lambda s, x, y: s.minimum(x, y), plain=lambda s, x, y: s.Min(x, y),
    kink="ties: 1/2 to each argument", kink_at=lambda ans, x, y: x - y,
    correctly_rounded=True, selects=True,
)
logaddexp = defop(
    "logaddexp", np.logaddexp,
    lambda g, ans, x, y: g * sigmoid(x - y),
    lambda g, ans, x, y: g * sigmoid(y - x),
    saves=("x", "y"), sympy=lambda s, x, y: s.logaddexp(x, y),
    plain=lambda s, x, y: s.log(s.exp(x) + s.exp(y)),
)

# ---------------------------------------------------------------- elementwise, issue 15 (part A)
#
# Kinks follow PyTorch (torch 2.x, checked): at a branch point the first derivative is that of the
# branch torch's backward picks (written in the VJP's `where` condition and in the sympy form's
# Piecewise conditions alike).


def _scipy_special() -> Any:
    import scipy.special  # imported on first use: it costs ~0.15 s

    return scipy.special


def _special(name: str) -> Callable[..., Any]:
    """scipy.special's ``name`` on float arrays (scipy imported at the first call)."""
    def fn(*args: Any) -> Any:
        return getattr(_scipy_special(), name)(*(np.asarray(a, dtype=float) if not isinstance(a, int) else a
                                                 for a in args))

    return fn


def _float_out(fn: Callable[..., Any]) -> Callable[..., Any]:
    def forward(*args: Any, **params: Any) -> Any:
        return fn(*(np.asarray(a, dtype=float) if not np.issubdtype(np.asarray(a).dtype, np.floating) else a
                    for a in args), **params)

    return forward


def _neg_part(x: Any) -> Any:
    """x where x <= 0, else 0 (no gradient there): keeps exp(x) of the negative branch from overflowing."""
    return where(x > 0, 0.0, x)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _elu(x: Any, alpha: float = 1.0) -> Any:
    x = np.asarray(x, dtype=float) if not np.issubdtype(np.asarray(x).dtype, np.floating) else np.asarray(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


exp2 = defop(
    "exp2", np.exp2, lambda g, ans, x: g * ans * math.log(2.0), saves=("ans",),
    sympy=lambda s, x: 2**x, magnitude=lambda a: _mag_exp(float_of(a) * math.log(2.0)),
)
square = defop(
    "square", np.square, lambda g, ans, x: g * (2.0 * x), saves=("x",),
    sympy=lambda s, x: x**2, magnitude=lambda a: (builtins.abs(a[0]), 2 * a[1]),
    correctly_rounded=True,  # x*x in every engine: one IEEE multiplication
)
reciprocal = defop(
    # -g * ans**2 (torch's formula): at x = 0 it gives -inf, not nan
    "reciprocal", np.reciprocal, lambda g, ans, x: -g * (ans * ans), saves=("ans",),
    sympy=lambda s, x: 1 / x, domain=Domain.NONZERO,
    correctly_rounded=True,  # 1/x in every engine: one IEEE division
)
floor = defop(
    "floor", np.floor, None, sympy=lambda s, x: s.floor_(x), plain=lambda s, x: s.floor(x),
    kink="floor' = 0 everywhere (0 at the jumps too)",
    kink_at=lambda ans, x: x - ans, jumps=True, steps=True,  # 0 on an integer; its sign says which side
    correctly_rounded=True,
)
ceil = defop(
    "ceil", np.ceil, None, sympy=lambda s, x: s.ceil_(x), plain=lambda s, x: s.ceiling(x),
    kink="ceil' = 0 everywhere (0 at the jumps too)",
    kink_at=lambda ans, x: x - ans, jumps=True, steps=True,  # 0 on an integer; its sign says which side
    correctly_rounded=True,
)
round = defop(
    "round", np.round, None, sympy=lambda s, x: s.round_(x), plain=lambda s, x: s.floor(x + s.Rational(1, 2)),
    kink="rounds half to even; round' = 0 everywhere (0 at the jumps too)",
    kink_at=lambda ans, x: x - ans, jumps=True, steps=True,  # +-1/2 either side of a half-integer jump
    correctly_rounded=True,
)
logit = defop(
    "logit", lambda x: np.log(x) - np.log1p(-np.asarray(x)), lambda g, ans, x: g / (x * (1.0 - x)), saves=("x",),
    sympy=lambda s, x: s.log(x / (1 - x)), domain=Domain.UNIT_INTERVAL,
)
erfc = defop(
    "erfc", _float_out(lambda x: _scipy_special().erfc(x)),
    lambda g, ans, x: g * (-2.0 / math.sqrt(math.pi)) * exp(-(x * x)), saves=("x",),
    sympy=lambda s, x: s.erfc(x),
)
erfinv = defop(
    "erfinv", _float_out(lambda x: _scipy_special().erfinv(x)),
    lambda g, ans, x: g * (0.5 * math.sqrt(math.pi)) * exp(ans * ans), saves=("ans",),
    sympy=lambda s, x: s.erfinv(x), domain=Domain.UNIT_OPEN,
)
polygamma = defop(
    # the n-th derivative of digamma; d/dx polygamma(x, n) = polygamma(x, n + 1)
    "polygamma", _float_out(lambda x, n=1: _scipy_special().polygamma(n, x)),
    lambda g, ans, x, n=1: g * polygamma(x, n=n + 1), saves=("x",),
    sympy=lambda s, x, n=1: s.polygamma(n, x), kind=INTERNAL, params=("n",), domain=Domain.POSITIVE,
)
digamma = defop(
    "digamma", _float_out(lambda x: _scipy_special().psi(x)), lambda g, ans, x: g * polygamma(x, n=1), saves=("x",),
    sympy=lambda s, x: s.polygamma(0, x), domain=Domain.POSITIVE, aliases=("psi",),
)
lgamma = defop(
    "lgamma", _float_out(lambda x: _scipy_special().gammaln(x)), lambda g, ans, x: g * digamma(x), saves=("x",),
    sympy=lambda s, x: s.loggamma(x), domain=Domain.POSITIVE, aliases=("gammaln",),
)
gelu = defop(
    # the exact (erf) form, torch's default approximate="none"
    # 1 + erf(x / sqrt 2) as erfc(-x / sqrt 2): no cancellation for negative x
    "gelu", lambda x: 0.5 * np.asarray(x) * erfc.forward(np.asarray(x) * -_SQRT1_2),
    lambda g, ans, x: g * (0.5 * erfc(x * -_SQRT1_2) + x * (_INV_SQRT_2PI * exp(-0.5 * (x * x)))),
    saves=("x",), sympy=lambda s, x: x / 2 * (1 + s.erf(x / s.sqrt(2))),
    composite=lambda x: 0.5 * x * (1.0 + erf(x * _SQRT1_2)),
)
silu = defop(
    "silu", lambda x: np.asarray(x) * _sigmoid(x),
    lambda g, ans, x: g * (sigmoid(x) * (1.0 + x * (1.0 - sigmoid(x)))), saves=("x",),
    sympy=lambda s, x: x * s.sigmoid(x), composite=lambda x: x * sigmoid(x),
)
elu = defop(
    "elu", _elu, lambda g, ans, x, alpha=1.0: where(x > 0, g, g * (alpha * exp(_neg_part(x)))), saves=("x",),
    sympy=lambda s, x, alpha=1.0: s.Piecewise((x, x > 0), (alpha * (s.exp(x) - 1), True)), params=("alpha",),
    kink="elu'(0) = alpha (the x <= 0 branch, as torch); at order 2 torch gives 0 at 0, symgrad alpha",
    kink_at=lambda ans, x, alpha=1.0: x,  # a forward rounded across 0 takes the other branch: classified
)
selu = defop(
    "selu", lambda x: _SELU_SCALE * _elu(x, _SELU_ALPHA),
    lambda g, ans, x: where(x > 0, g * _SELU_SCALE, g * (_SELU_SCALE * _SELU_ALPHA) * exp(_neg_part(x))),
    saves=("x",),
    sympy=lambda s, x: s.Float("1.0507009873554804934193349852946", 30) * s.Piecewise(
        (x, x > 0), (s.Float("1.6732632423543772848170429916717", 30) * (s.exp(x) - 1), True)),
    kink="selu'(0) = scale * alpha (the x <= 0 branch, as torch); at order 2 torch gives 0 at 0",
    kink_at=lambda ans, x: x,
)
celu = defop(
    "celu", lambda x, alpha=1.0: _elu(np.asarray(x) / alpha, 1.0) * alpha if alpha != 0 else np.maximum(x, 0),
    lambda g, ans, x, alpha=1.0: where(x > 0, g, g * exp(_neg_part(x) / alpha)), saves=("x",),
    sympy=lambda s, x, alpha=1.0: s.Piecewise((x, x > 0), (alpha * (s.exp(x / alpha) - 1), True)),
    params=("alpha",), kink="celu'(0) = 1 (both branches)",
)
leaky_relu = defop(
    "leaky_relu", lambda x, negative_slope=0.01: np.where(np.asarray(x) > 0, x, negative_slope * np.asarray(x)),
    lambda g, ans, x, negative_slope=0.01: where(x > 0, g, g * negative_slope), saves=("x",),
    sympy=lambda s, x, negative_slope=0.01: s.Piecewise((x, x > 0), (negative_slope * x, True)),
    params=("negative_slope",), kink="leaky_relu'(0) = negative_slope (as torch)",
    kink_at=lambda ans, x, negative_slope=0.01: x,
)
mish = defop(
    "mish", lambda x: np.asarray(x) * np.tanh(_softplus(x)),
    lambda g, ans, x: g * (tanh(softplus(x)) + x * (1.0 - tanh(softplus(x)) ** 2.0) * sigmoid(x)), saves=("x",),
    sympy=lambda s, x: x * s.tanh(s.softplus(x)), composite=lambda x: x * tanh(softplus(x)),
)
softsign = defop(
    "softsign", lambda x: np.asarray(x) / (1.0 + np.abs(x)), lambda g, ans, x: g * (1.0 + abs(x)) ** -2.0,
    saves=("x",), sympy=lambda s, x: x / (1 + s.abs_(x)), composite=lambda x: x / (1.0 + abs(x)),
)
hardtanh = defop(
    "hardtanh", lambda x, min_val=-1.0, max_val=1.0: np.clip(x, min_val, max_val),
    lambda g, ans, x, min_val=-1.0, max_val=1.0: where(x > min_val, where(x < max_val, g, 0.0), 0.0),
    saves=("x",), params=("min_val", "max_val"),
    sympy=lambda s, x, min_val=-1.0, max_val=1.0: s.Piecewise(
        (min_val, x <= min_val), (max_val, x >= max_val), (x, True)),
    kink="gradient where min_val < x < max_val (exclusive, as F.hardtanh): 0 at the bounds",
    kink_at=lambda ans, x, min_val=-1.0, max_val=1.0: (x - min_val) * (x - max_val),  # < 0 inside, 0 at a bound
    correctly_rounded=True, selects=True,
)
logsigmoid = defop(
    "logsigmoid", lambda x: -_softplus(-np.asarray(x)), lambda g, ans, x: g * sigmoid(-x), saves=("x",),
    sympy=lambda s, x: -s.softplus(-x), composite=lambda x: -softplus(-x),
)
xlogy = defop(
    # torch 2.13: d/dx = log(y), d/dy = x / y; xlogy(0, 0) = 0 (y = 0 lies outside the domain here)
    "xlogy", _float_out(lambda x, y: _scipy_special().xlogy(x, y)),
    lambda g, ans, x, y: g * log(y), lambda g, ans, x, y: g * x / y,
    saves=(("y",), ("x", "y")), domain=(Domain.REAL, Domain.POSITIVE),
    sympy=lambda s, x, y: x * s.log(y), kink="xlogy(0, 0) = 0; d/dx = log(y) at x = 0 too (as torch)",
    zero_absorbs=(0,),
)
copysign = defop(
    # torch: d/dx = sign(x) * sign(ans) (0 at x = 0), no gradient to y
    "copysign", np.copysign, lambda g, ans, x, y: g * sign(x) * sign(ans), None, saves=(("x", "ans"), ()),
    # y = 0 is +0.0, as IEEE's copysign(x, 0.0) = |x| (an exact 0 has no sign to the reference)
    sympy=lambda s, x, y: s.abs_(x) * s.Piecewise((-1, s.Lt(y, 0)), (1, True)), domain=(Domain.REAL, Domain.NONZERO),
    # the derivative's kink at x = 0 and the value's jump (-|x| to |x|) as y crosses 0: both sides in x*y's sign
    kink="copysign'(0, y) = 0; no gradient to y; the value jumps as y crosses 0 (y = 0 counts as +0)",
    kink_at=lambda ans, x, y: x * y, jumps=True, correctly_rounded=True,
)
clip = defop(
    # as torch.clamp with tensor bounds: x gets the gradient where lo <= x <= hi (inclusive),
    # lo where x < lo, hi where x > hi (hi wins when lo > hi, as np.clip and torch.clamp)
    "clip", lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
    lambda g, ans, x, lo, hi: where(x >= lo, where(x <= hi, g, 0.0), 0.0),
    lambda g, ans, x, lo, hi: where(x < lo, where(lo <= hi, g, 0.0), 0.0),
    lambda g, ans, x, lo, hi: where(x > hi, g, where(lo > hi, g, 0.0)),
    args=("x", "lo", "hi"), saves=("x", "lo", "hi"), aliases=("clamp",),
    sympy=lambda s, x, lo, hi: s.Piecewise((hi, (x > hi) | (lo > hi)), (lo, x < lo), (x, True)),
    kink="gradient to x where lo <= x <= hi (inclusive, as torch.clamp), to lo where x < lo, to hi where x > hi",
    kink_at=lambda ans, x, lo, hi: (x - lo) * (x - hi),  # < 0 inside, 0 at a bound
    correctly_rounded=True,
)

# ---------------------------------------------------------------- reductions
#
# Their ``plain`` forms take the reduced elements (the n-ary functions their sympy forms build).


def _tie_share(x: Any, ans: Any, axis: Any) -> Any:
    """1/k on each of the k elements equal to the extremum, 0 elsewhere (no gradient)."""
    hit = where(x == expand(ans, _shape(x), axis), 1.0, 0.0)
    return hit / expand(sum(hit, axis=axis), _shape(x), axis)


def _tie_at(ans: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Each element's distance from the extremum it competes for: 0 at the extremum (a tie where two are 0)."""
    x = np.asarray(x)
    return x - np.reshape(ans, _kept_shape(x.shape, axis))


def _keep(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A numpy reduction ``fn(x, axis)`` that also takes ``keepdims`` (the reduced axes kept, of size 1)."""
    def forward(x: Any, axis: Any = None, keepdims: bool = False, **params: Any) -> Any:
        out = fn(x, axis=axis, **params)
        return np.reshape(out, _kept_shape(np.shape(x), axis)) if keepdims else out

    return forward


_RED = ("axis", "keepdims")  # every reduction's keyword parameters


def _others(x: Any, axis: Any) -> Any:
    """The product of the other elements along ``axis``, for each element: d prod / dx, zeros included.

    For one axis of length n: x broadcast to an (n, n) block whose diagonal is 1, multiplied along
    the second of the two axes (no division, so it is exact at zeros and differentiable again, through
    prod's own VJP).  Several axes: one at a time, with the product over the ones already done."""
    shape = _shape(x)
    axes = normalize_axes(axis, len(shape))
    if not axes:  # a 0-d x: prod(x) = x
        return where(True, 1.0, x)
    if len(axes) > 1:
        a, rest = axes[0], axes[1:]
        inner = prod(x, axis=rest, keepdims=True)  # product over the remaining axes: one value per a-fibre
        return broadcast_to(_others(inner, (a,)), shape=shape) * _others(x, rest)
    a = axes[0]
    n = shape[a]
    block = shape[:a] + (n, n) + shape[a + 1:]
    xb = broadcast_to(reshape(x, shape=shape[:a] + (1, n) + shape[a + 1:]), shape=block)
    eye = np.eye(n, dtype=bool).reshape((n, n) + (1,) * (len(shape) - a - 1))
    return prod(where(eye, 1.0, xb), axis=a + 1)


sum = defop(
    "sum", _keep(np.sum),
    lambda g, ans, x, axis=None, keepdims=False: expand(g, _shape(x), axis),
    sympy=lambda s, x, axis=None, keepdims=False: s.reduce(x, axis, s.Add, keepdims),
    kind=REDUCTION, params=_RED, linear=True,
)
mean = defop(
    "mean", _keep(np.mean),
    lambda g, ans, x, axis=None, keepdims=False: expand(g, _shape(x), axis) / float(_count(_shape(x), axis)),
    sympy=lambda s, x, axis=None, keepdims=False: s.reduce(x, axis, lambda *v: s.Add(*v) / len(v), keepdims),
    kind=REDUCTION, params=_RED, linear=True,
)
prod = defop(
    # the product of the others, never ans / x: prod([0, 2, 3])' = [6, 0, 0] as torch
    "prod", _keep(np.prod),
    lambda g, ans, x, axis=None, keepdims=False: expand(g, _shape(x), axis) * _others(x, axis), saves=("x",),
    sympy=lambda s, x, axis=None, keepdims=False: s.reduce(x, axis, s.Mul, keepdims),
    kind=REDUCTION, params=_RED, kink="exact at zeros: each element gets the product of the others",
)
max = defop(
    "max", _keep(np.max),
    lambda g, ans, x, axis=None, keepdims=False: expand(g, _shape(x), axis) * _tie_share(x, ans, axis),
    saves=("ans", "x"),
    sympy=lambda s, x, axis=None, keepdims=False: s.reduce(x, axis, s.maxn, keepdims),
    plain=lambda s, *xs: s.Max(*xs), kind=REDUCTION, params=_RED, aliases=("amax",),
    kink="ties: split evenly among the tied elements", kink_at=_tie_at,
    correctly_rounded=True,
)
min = defop(
    "min", _keep(np.min),
    lambda g, ans, x, axis=None, keepdims=False: expand(g, _shape(x), axis) * _tie_share(x, ans, axis),
    saves=("ans", "x"),
    sympy=lambda s, x, axis=None, keepdims=False: s.reduce(x, axis, s.minn, keepdims),
    plain=lambda s, *xs: s.Min(*xs), kind=REDUCTION, params=_RED, aliases=("amin",),
    kink="ties: split evenly among the tied elements", kink_at=_tie_at,
    correctly_rounded=True,
)


def _logsumexp(x: Any, axis: Any = None) -> Any:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out.reshape(np.sum(np.asarray(x), axis=axis).shape)


logsumexp = defop(
    "logsumexp", _keep(_logsumexp),
    lambda g, ans, x, axis=None, keepdims=False: expand(g, _shape(x), axis)
    * exp(x - expand(ans, _shape(x), axis)), saves=("ans", "x"),
    sympy=lambda s, x, axis=None, keepdims=False: s.reduce(x, axis, s.logsumexp, keepdims),
    plain=lambda s, *xs: s.log(s.Add(*[s.exp(v) for v in xs])),
    kind=REDUCTION, params=_RED,
)

# ---------------------------------------------------------------- reductions and scans, issue 15 (part A)


def _centered(x: Any, axis: Any) -> Any:
    return x - expand(mean(x, axis=axis), _shape(x), axis)


def _per_dof(c: float, shape: tuple[int, ...], axis: Any, ddof: int) -> float:
    """c / (n - ddof), a Python float (weak: a float32 gradient stays float32); inf with no degree of freedom
    left, as numpy divides, where Python would raise ZeroDivisionError."""
    dof = float(_count(shape, axis) - ddof)
    return c / dof if dof else math.inf


def _squared_deviations(s: Any, v: tuple) -> Any:
    """The sympy sum of (v_i - mean(v))**2 of var and std.  One element is its own mean, exactly 0: expanded
    mode keeps sympy from distributing, so it would not cancel (x - 1) - (x - 1), and std's sqrt of that
    recursed endlessly (std(x - 1.0) of a scalar x)."""
    if len(v) == 1:
        return s.S.Zero
    mean = s.Add(*v) / len(v)
    return s.Add(*[(a - mean) ** 2 for a in v])


var = defop(
    "var", _keep(lambda x, axis=None, ddof=0: np.var(x, axis=axis, ddof=ddof)),
    lambda g, ans, x, axis=None, keepdims=False, ddof=0:
        expand(g, _shape(x), axis) * _centered(x, axis) * _per_dof(2.0, _shape(x), axis, ddof),
    saves=("x",), kind=REDUCTION, params=(*_RED, "ddof"),
    sympy=lambda s, x, axis=None, keepdims=False, ddof=0: s.reduce(
        x, axis, lambda *v: _squared_deviations(s, v) / (len(v) - ddof), keepdims),
    domain_note="ddof as numpy's (default 0)",
)
std = defop(
    # torch masks std = 0 (all elements equal): gradient 0 there, not 0 * inf; the guarded power keeps
    # the unused branch finite, so differentiating again gives no 0 * inf either
    "std", _keep(lambda x, axis=None, ddof=0: np.std(x, axis=axis, ddof=ddof)),
    lambda g, ans, x, axis=None, keepdims=False, ddof=0:
        expand(where(ans == 0, 0.0, g * where(ans == 0, 1.0, ans) ** -1.0), _shape(x), axis)
        * _centered(x, axis) * _per_dof(1.0, _shape(x), axis, ddof),
    saves=("ans", "x"), kind=REDUCTION, params=(*_RED, "ddof"),
    sympy=lambda s, x, axis=None, keepdims=False, ddof=0: s.reduce(
        x, axis, lambda *v: s.sqrt(_squared_deviations(s, v) / (len(v) - ddof)), keepdims),
    domain_note="ddof as numpy's (default 0); gradient 0 where all elements are equal (as torch)",
)


def _softmax(x: Any, axis: Any = -1) -> Any:
    z = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return z / np.sum(z, axis=axis, keepdims=True)


def _log_softmax(x: Any, axis: Any = -1) -> Any:
    return x - _keep(_logsumexp)(x, axis=axis, keepdims=True)


softmax = defop(
    "softmax", _softmax,
    lambda g, ans, x, axis=-1: ans * (g - expand(sum(g * ans, axis=axis), _shape(x), axis)), saves=("ans",),
    sympy=lambda s, x, axis=-1: s.along(x, axis, lambda *v: [s.exp(a) / s.Add(*[s.exp(b) for b in v]) for a in v]),
    kind=SCAN, params=("axis",),
)
log_softmax = defop(
    "log_softmax", _log_softmax,
    lambda g, ans, x, axis=-1: g - exp(ans) * expand(sum(g, axis=axis), _shape(x), axis), saves=("ans",),
    sympy=lambda s, x, axis=-1: s.along(x, axis, lambda *v: [a - s.logsumexp(*v) for a in v]),
    kind=SCAN, params=("axis",),
)

# ---------------------------------------------------------------- linear algebra


def _matmul_vjp(left: bool) -> Callable[..., Any]:
    def vjp(g: Any, ans: Any, a: Any, b: Any) -> Any:
        # of the operand it differentiates for, the VJP reads only the shape
        sa, sb = _shape(a), _shape(b)
        g2 = reshape(g, shape=(sa[0] if len(sa) == 2 else 1, sb[1] if len(sb) == 2 else 1))
        if left:
            return reshape(matmul(g2, transpose(_as2d(b, row=False))), shape=sa)
        return reshape(matmul(transpose(_as2d(a, row=True)), g2), shape=sb)

    return vjp


matmul = defop(
    "matmul", np.matmul, _matmul_vjp(True), _matmul_vjp(False),
    args=("a", "b"), saves=(("b",), ("a",)), domain_note="1-D or 2-D operands",
    sympy=lambda s, a, b: np.matmul(a, b), kind=LINALG, infix="@", backward_name="MmBackward0",
)
def _inverse_permutation(axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(np.argsort([a % len(axes) for a in axes]).tolist())


transpose = defop(
    "transpose", lambda x, axes=None: np.transpose(x, axes),
    lambda g, ans, x, axes=None: transpose(g, axes=None if axes is None else _inverse_permutation(axes)),
    linear=True, params=("axes",),
    sympy=lambda s, x, axes=None: np.transpose(x, axes), kind=LINALG, backward_name="PermuteBackward0",
    correctly_rounded=True,
)

# ---------------------------------------------------------------- shapes and indexing (issue 15, part B)
#
# Indexing with integer constants: the key is a tuple whose items are ints, ``...`` (Ellipsis) and
# slices encoded as (start, stop, step) tuples of ints or None (Python 3.11's slices are not
# hashable, and params are).  ``x[1:3, 0]`` has key ((1, 3, None), 0).  Two-member ops
# (``concatenate``, ``stack``) are binary in the IR, with ``axis`` a param; the parser folds a tuple
# of n members into n - 1 of them (``members``).


def encode_key(key: Any) -> tuple:
    """A numpy basic index (int, slice, Ellipsis or a tuple of them) as a hashable key."""
    items = key if isinstance(key, tuple) else (key,)
    out: list[Any] = []
    for k in items:
        if k is Ellipsis:
            out.append(Ellipsis)
        elif isinstance(k, slice):
            if not all(v is None or (isinstance(v, (int, np.integer)) and not isinstance(v, bool))
                       for v in (k.start, k.stop, k.step)):
                raise TypeError(f"slice bounds must be integer constants, not {k!r}")
            if k.step == 0:
                raise ValueError("slice step cannot be zero")
            out.append(tuple(None if v is None else int(v) for v in (k.start, k.stop, k.step)))
        elif isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)):
            out.append(int(k))
        else:
            raise TypeError(f"only integer constants, slices of them and ... can index, not {type(k).__name__}")
    if out.count(Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    return tuple(out)


def decode_key(key: tuple) -> tuple:
    """The numpy index of an encoded key."""
    return tuple(slice(*k) if isinstance(k, tuple) else k for k in key)


def key_source(key: tuple) -> str:
    """``1:3, 0`` for the key of ``x[1:3, 0]``."""
    def item(k: Any) -> str:
        if k is Ellipsis:
            return "..."
        if isinstance(k, tuple):
            start, stop, step = ("" if v is None else str(v) for v in k)
            return f"{start}:{stop}" + (f":{step}" if step else "")
        return str(k)

    return ", ".join(item(k) for k in key) if key else "()"


def _per_dim(key: tuple, ndim: int) -> list[tuple[int, Any]]:
    """(dimension, item) for each int or slice of ``key`` on an array of ``ndim`` dimensions."""
    plain = [k for k in key if k is not Ellipsis]
    out, dim = [], 0
    for k in key:
        if k is Ellipsis:
            dim += ndim - len(plain)
            continue
        out.append((dim, k))
        dim += 1
    return out


def index_dims(key: tuple, ndim: int) -> list[tuple[int, Any]]:
    """(dimension, item) for each item of ``key``; for ``...``, (the number of dimensions it spans, ...)."""
    plain = builtins.sum(k is not Ellipsis for k in key)
    out, dim = [], 0
    for k in key:
        if k is Ellipsis:
            out.append((ndim - plain, Ellipsis))
            dim += ndim - plain
        else:
            out.append((dim, k))
            dim += 1
    return out


def _index_backward(params: dict[str, Any], shapes: tuple) -> str:
    """torch applies an index item by item (select for an int, slice for a slice that does not cover its
    dimension, nothing for one that does): the last one applied names the node; none at all: an alias."""
    key, shape = params["key"], shapes[0]
    name = ""
    for dim, k in _per_dim(key, len(shape)):
        if not isinstance(k, tuple):
            name = "SelectBackward0"
        elif dim < len(shape) and slice(*k).indices(shape[dim]) != (0, shape[dim], 1):
            name = "SliceBackward0"
    if not name:  # x[:] is a slice in torch, x[:, :] and x[...] aliases
        name = "SliceBackward0" if len(key) == 1 and isinstance(key[0], tuple) else "AliasBackward0"
    return name


def _index_source(texts: list[str], precs: list[int], key: tuple) -> str:
    inner = texts[0] if precs[0] >= 9 else f"({texts[0]})"
    return f"{inner}[{key_source(key)}]"


def _scatter(g: Any, key: tuple, shape: tuple[int, ...]) -> np.ndarray:
    g = np.asarray(g)
    out = np.zeros(shape, dtype=g.dtype if g.dtype.kind == "f" else np.float64)
    out[decode_key(key)] = g
    return out


index = defop(
    "index",
    lambda x, key: np.array(np.asarray(x)[decode_key(key)]),
    lambda g, ans, x, key: index_put(g, key=key, shape=_shape(x)),
    kind=SHAPE, params=("key",), linear=True, backward_of=_index_backward,
    sympy=lambda s, x, key: x[decode_key(key)],
    printer=lambda texts, precs, key: _index_source(texts, precs, key),
    samples=((((3, 4),), {"key": (1,)}), (((3, 4),), {"key": ((None, None, 2), -1)}),
             (((2, 3, 4),), {"key": (Ellipsis, (1, 3, None))}), (((4,),), {"key": ((None, None, -1),)})),
    domain_note="integer constants, slices and ... only; numpy's bounds",
    correctly_rounded=True,
)
# the VJP of index: g scattered into zeros of the indexed array's shape; its own VJP is index
index_put = defop(
    "index_put", _scatter,
    lambda g, ans, x, key, shape: index(g, key=key),
    kind=INTERNAL, params=("key", "shape"), linear=True, backward_name="IndexPutBackward0",
    samples=((((2,),), {"key": ((None, None, 2),), "shape": (4,)}), (((3,),), {"key": (1,), "shape": (2, 3)})),
    correctly_rounded=True,
)


def _axis_of(axis: Any, ndim: int) -> int:
    return normalize_axes(axis, ndim)[0]


def _along(axis: int, ndim: int, item: Any) -> tuple:
    """The key taking ``item`` along dimension ``axis``, everything along the others."""
    return ((None, None, None),) * axis + (item,) + ((None, None, None),) * (ndim - axis - 1)


def _squeeze_backward(params: dict[str, Any], shapes: tuple) -> str:
    axis = params.get("axis")
    return "SqueezeBackward0" if axis is None else "SqueezeBackward2" if isinstance(axis, tuple) else "SqueezeBackward1"


expand_dims = defop(
    "expand_dims", lambda x, axis: np.expand_dims(x, axis),
    lambda g, ans, x, axis: reshape(g, shape=_shape(x)),
    kind=SHAPE, params=("axis",), linear=True, backward_name="UnsqueezeBackward0",
    sympy=lambda s, x, axis: np.expand_dims(x, axis),
    samples=((((3,),), {"axis": 0}), (((2, 3),), {"axis": -1}), (((2, 3),), {"axis": (0, 2)})),
    correctly_rounded=True,
)
squeeze = defop(
    "squeeze", lambda x, axis=None: np.squeeze(x, axis),
    lambda g, ans, x, axis=None: reshape(g, shape=_shape(x)),
    kind=SHAPE, params=("axis",), linear=True, backward_of=_squeeze_backward,
    sympy=lambda s, x, axis=None: np.squeeze(x, axis),
    samples=((((1, 3),), {"axis": 0}), (((2, 1),), {"axis": -1}), (((1, 3, 1),), {})),
    domain_note="the squeezed axes have length 1",
    correctly_rounded=True,
)
flip = defop(
    "flip", lambda x, axis=None: np.flip(x, axis),
    lambda g, ans, x, axis=None: flip(g, axis=axis),
    kind=SHAPE, params=("axis",), linear=True, backward_name="FlipBackward0",
    sympy=lambda s, x, axis=None: np.flip(x, axis),
    samples=((((3,),), {}), (((2, 3),), {"axis": 1}), (((2, 3, 2),), {"axis": (0, -1)})),
    correctly_rounded=True,
)


def _cat_vjp(first: bool) -> Callable[..., Any]:
    def vjp(g: Any, ans: Any, x: Any, y: Any, axis: Any = 0) -> Any:
        ndim = len(_shape(x))
        a, n = _axis_of(axis, ndim), _shape(x)[_axis_of(axis, ndim)]
        return index(g, key=_along(a, ndim, (None, n, None) if first else (n, None, None)))

    return vjp


def _stack_vjp(i: int) -> Callable[..., Any]:
    def vjp(g: Any, ans: Any, x: Any, y: Any, axis: Any = 0) -> Any:
        ndim = len(_shape(x)) + 1
        return index(g, key=_along(_axis_of(axis, ndim), ndim, i))

    return vjp


def _members_source(texts: list[str], params: dict[str, Any], name: str) -> str:
    axis = params.get("axis")
    return f"{name}(({', '.join(texts)}), axis={axis!r})" if axis is not None else f"{name}(({', '.join(texts)}))"


def _fold_concatenate(members: list[Any], **params: Any) -> Any:
    out = members[0]
    for m in members[1:]:
        out = concatenate(out, m, **params)
    return out


def _fold_stack(members: list[Any], **params: Any) -> Any:
    # n > 2 members: the stack of the first two, then each further one joined as a new slice
    axis = params.get("axis", 0)
    out = stack(members[0], members[1], **params)
    for m in members[2:]:
        out = concatenate(out, expand_dims(m, axis=axis), axis=axis)
    return out


concatenate = defop(
    "concatenate", lambda x, y, axis=0: np.concatenate((x, y), axis=axis), _cat_vjp(True), _cat_vjp(False),
    kind=SHAPE, params=("axis",), linear=True, backward_name="CatBackward0",
    sympy=lambda s, x, y, axis=0: np.concatenate((x, y), axis=axis), members=_fold_concatenate,
    printer=lambda texts, precs, **params: _members_source(texts, params, "concatenate"),
    samples=((((2, 3), (1, 3)), {}), (((2, 3), (2, 2)), {"axis": -1})),
    domain_note="equal shapes but along axis; at least 1-D",
    correctly_rounded=True,
)
stack = defop(
    "stack", lambda x, y, axis=0: np.stack((x, y), axis=axis), _stack_vjp(0), _stack_vjp(1),
    kind=SHAPE, params=("axis",), linear=True, backward_name="StackBackward0",
    sympy=lambda s, x, y, axis=0: np.stack((x, y), axis=axis), members=_fold_stack,
    printer=lambda texts, precs, **params: _members_source(texts, params, "stack"),
    samples=((((3,), (3,)), {}), (((2, 3), (2, 3)), {"axis": -1})),
    domain_note="equal shapes",
    correctly_rounded=True,
)


# ---------------------------------------------------------------- linear algebra (issue 15, part B)
#
# det and inv take a square matrix or a stack of them; solve takes stacks too (see _solve_shapes);
# trace takes one square matrix.  The VJPs are written with the table's ops, so they differentiate again.
#
# einsum: one table op of two operands, with numpy's whole subscript language (repeated indices in an
# operand, indices summed away in one operand only, '...', implicit output).  einsum with one operand is
# that op with the constant 1.0 as the second ("ii,->"), and three or more operands fold left to right
# into einsums of two (_fold_einsum), each keeping only the indices that later operands or the output
# need.  The VJP of an einsum is an einsum again: of the output's gradient with the other operand, to
# the operand's distinct indices present elsewhere, then, where the operand repeats an index (a
# diagonal) or has one found nowhere else (broadcast back), one more einsum with a constant of identity
# matrices and ones that writes the diagonal and spreads the broadcast (_einsum_vjp).

_EINSUM_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,.->")
_EINSUM_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def einsum_problem(subscripts: str, operands: int | None = None) -> tuple[int, str] | None:
    """(0-based position, reason) of the first thing in ``subscripts`` numpy's einsum would refuse
    (or that symgrad refuses: '...' in the operands and not in an explicit output), or None.
    ``operands``: how many operands the call gives, when known."""
    for i, c in enumerate(subscripts):
        if c not in _EINSUM_CHARS:
            return i, f"character {c!r} is not allowed in einsum subscripts (letters, ',', '->' and '...')"
    for m in re.finditer(r"\.+", subscripts):
        if len(m.group()) != 3:
            return m.start(), "'.' is allowed only as '...'"
    arrows = [i for i, c in enumerate(subscripts) if c in "->"]
    if arrows and (subscripts.count("->") != 1 or len(arrows) != 2):
        arrow_at = subscripts.find("->")
        stray = [i for i in arrows if arrow_at < 0 or i not in (arrow_at, arrow_at + 1)]
        return stray[0], "'-' and '>' are allowed only as one '->' before the output"
    inputs, arrow, out = subscripts.partition("->")
    terms = inputs.split(",")
    start = 0
    for term in terms:
        if term.count("...") > 1:
            return start + term.index("...", term.index("...") + 3), "'...' at most once in an operand"
        letters = term.replace("...", "")
        if not letters and "..." not in term and len(terms) == 1 and not arrow:
            return start, "einsum subscripts name no operand"
        start += len(term) + 1
    if operands is not None and len(terms) != operands:
        return 0, f"einsum subscripts name {len(terms)} operand(s), the call gives {operands}"
    if arrow:
        base = len(inputs) + 2
        for j, c in enumerate(out):
            if c == ",":
                return base + j, "',' in the output of einsum"
            if c != "." and out.index(c) != j:
                return base + j, f"index {c!r} repeated in the output of einsum"
            if c != "." and c not in inputs:
                return base + j, f"output index {c!r} is in no operand"
        if out.count("...") > 1:
            return base + out.index("...", out.index("...") + 3), "'...' at most once in the output"
        if "..." in out and "..." not in inputs:
            return base + out.index("..."), "'...' in the output and in no operand"
        if "..." in inputs and "..." not in out:
            return base, "'...' in an operand needs '...' in the output (its dimensions are kept, as numpy)"
    return None


def _check_einsum(subscripts: str, operands: int) -> str:
    problem = einsum_problem(subscripts, operands)
    if problem is not None:
        raise ValueError(f"einsum subscripts {subscripts!r}: {problem[1]}")
    return subscripts


def einsum_repeats(subscripts: str) -> bool:
    """True when an operand of ``subscripts`` repeats an index (a diagonal or a trace)."""
    terms = subscripts.partition("->")[0].replace("...", "").split(",")
    return any(len(set(t)) != len(t) for t in terms)


def einsum_broadcasts(subscripts: str, shapes: tuple) -> bool:
    """True when an index has size 1 in one operand and another size in another (numpy broadcasts it)."""
    terms, _, _ = _einsum_letters(subscripts, shapes)
    seen: dict[str, set[int]] = {}
    for t, shape in zip(terms, shapes):
        for c, n in zip(t, shape):
            seen.setdefault(c, set()).add(n)
    return any(len(v) > 1 for v in seen.values())


def _einsum_explicit(subscripts: str) -> str:
    """The subscripts with their output written out: numpy's implicit output is '...' (when an operand
    has it) and then every index that occurs once, in alphabetical order (upper case first, as numpy)."""
    if "->" in subscripts:
        return subscripts
    letters = subscripts.replace("...", "").replace(",", "")
    once = sorted(c for c in set(letters) if letters.count(c) == 1)
    return subscripts + "->" + ("..." if "..." in subscripts else "") + "".join(once)


def _einsum_letters(subscripts: str, shapes: tuple) -> tuple[list[str], str, dict[str, int]]:
    """The operands' and the output's indices with '...' written as letters of its own (the operands'
    '...' right-aligned, as numpy broadcasts), and each index's size (the largest: 1 broadcasts)."""
    inputs, out = _einsum_explicit(subscripts).split("->")
    terms = inputs.split(",")
    spare = [c for c in _EINSUM_LETTERS if c not in subscripts]
    widths = [len(shape) - len(t.replace("...", "")) for t, shape in zip(terms, shapes) if "..." in t]
    width = builtins.max(widths, default=0)
    if width > len(spare):
        raise ValueError(f"einsum subscripts {subscripts!r}: too many dimensions under '...'")
    dots = "".join(spare[:width])
    named = []
    for t, shape in zip(terms, shapes):
        n = len(shape) - len(t.replace("...", ""))
        named.append(t.replace("...", dots[width - n:] if n else ""))
    sizes: dict[str, int] = {}
    for t, shape in zip(named, shapes):
        for c, n in zip(t, shape):
            sizes[c] = builtins.max(sizes.get(c, 1), n)
    return named, out.replace("...", dots), sizes


def _einsum_vjp(k: int) -> Vjp:
    def vjp(g: Any, ans: Any, a: Any, b: Any, subscripts: str) -> Any:
        (ta, tb), out, sizes = _einsum_letters(subscripts, (_shape(a), _shape(b)))
        target, other, value = (ta, tb, b) if k == 0 else (tb, ta, a)
        distinct = "".join(dict.fromkeys(target))
        present = "".join(c for c in distinct if c in out or c in other)
        t = einsum(g, value, subscripts=f"{out},{other}->{present}")
        if target == present:
            return t
        # the rest: a diagonal for each repeat of an index, ones along an index found only here
        spare = iter(c for c in _EINSUM_LETTERS if c not in target + other + out)
        written, pieces = "", []
        factors: list[np.ndarray] = []  # identity matrices and ones vectors
        for j, c in enumerate(target):
            if c not in present and c not in target[:j]:
                written += c
                pieces.append(c)
                factors.append(np.ones(sizes[c]))
            elif c in target[:j]:
                f = next(spare)
                written += f
                pieces.append(c + f)
                factors.append(np.eye(sizes[c]))
            else:
                written += c
        held = "".join(dict.fromkeys("".join(pieces)))
        const = np.einsum(",".join(pieces) + "->" + held, *factors)
        dtype = getattr(g, "dtype", np.float64)
        const = const.astype(dtype if np.dtype(dtype).kind == "f" else np.float64)
        return einsum(t, const, subscripts=f"{present},{held}->{written}")
    return vjp


def _fold_einsum(operands: list[Any], subscripts: str) -> Any:
    """einsum of any number of operands, as the table's einsum of two: one operand takes the constant
    1.0 as its second; more fold left to right, each step keeping the indices needed later."""
    _check_einsum(subscripts, len(operands))
    inputs, out = _einsum_explicit(subscripts).split("->")
    terms = inputs.split(",")
    if len(terms) == 1:
        return einsum(operands[0], 1.0, subscripts=f"{terms[0]},->{out}")
    acc, left = operands[0], terms[0]
    for j in range(1, len(terms)):
        right = terms[j]
        if j == len(terms) - 1:
            keep = out
        else:
            later = "".join(terms[j + 1:]) + out
            keep = "".join(c for c in dict.fromkeys((left + right).replace("...", "")) if c in later)
            if "..." in left + right:
                keep = "..." + keep
        acc, left = einsum(acc, operands[j], subscripts=f"{left},{right}->{keep}"), keep
    return acc


def _einsum_source(texts: list[str], precs: Any, subscripts: str) -> str:
    inputs, _, out = subscripts.partition("->")
    if inputs.endswith(",") and texts[1] in ("1.0", "1"):  # one operand, as _fold_einsum writes it
        return f"einsum({inputs[:-1] + '->' + out!r}, {texts[0]})"
    return f"einsum({subscripts!r}, {', '.join(texts)})"


def _einsum_backward(params: dict[str, Any], shapes: tuple) -> str:
    (ta, tb), out, _ = _einsum_letters(params["subscripts"], shapes)
    summed = set(ta + tb) - set(out)
    if not tb and not shapes[1]:  # one operand: torch takes a diagonal (a view), then sums or permutes it
        return "SumBackward1" if summed else "PermuteBackward0"
    return "ViewBackward0" if summed else "MulBackward0"  # torch: bmm and a view, or a product


def _einsum_forward(a: Any, b: Any, subscripts: str) -> np.ndarray:
    return np.einsum(_check_einsum(subscripts, 2), a, b)


einsum = defop(
    "einsum", _einsum_forward, _einsum_vjp(0), _einsum_vjp(1),
    args=("a", "b"), saves=(("b",), ("a",)), kind=LINALG, params=("subscripts",), leading=("subscripts",),
    sympy=lambda s, a, b, subscripts: np.einsum(subscripts, a, b), backward_of=_einsum_backward,
    members=_fold_einsum, printer=_einsum_source,
    samples=((((2, 3), (3, 4)), {"subscripts": "ij,jk->ik"}), (((3, 2), (4, 2)), {"subscripts": "ij,kj->ik"}),
             (((2, 3), (2, 3)), {"subscripts": "ij,ij->ji"}), (((2, 3, 4), (2, 4, 2)), {"subscripts": "bij,bjk->bik"}),
             (((3, 3), ()), {"subscripts": "ii,->"}), (((3, 3), ()), {"subscripts": "ii,->i"}),
             (((2, 3), (3, 3)), {"subscripts": "ij,kk->jk"}), (((2, 3), (4,)), {"subscripts": "ij,k->j"}),
             (((2, 1, 3), (4, 3)), {"subscripts": "...j,kj->...k"}), (((2, 3), (3, 2)), {"subscripts": "ij,ji->"})),
    domain_note="numpy's subscripts: repeated indices, '...', implicit output; one operand or more than two fold",
)


def _square(a: Any) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"a square 2-D matrix is needed, not shape {a.shape}")
    return a


def _square_stack(a: Any) -> np.ndarray:
    """A square matrix or a stack of them, (..., n, n): det and inv take both (as torch.linalg's)."""
    a = np.asarray(a)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"a square matrix or a stack of them (..., n, n) is needed, not shape {a.shape}")
    return a


def _mT(x: Any) -> Any:
    """The last two axes swapped (each matrix of a stack transposed)."""
    n = len(_shape(x))
    return transpose(x) if n == 2 else transpose(x, axes=(*range(n - 2), n - 1, n - 2))


def _bmm(a: Any, b: Any) -> Any:
    """Matrix products of two stacks of equal batch shape, as an einsum (its VJPs are einsums again)."""
    n = len(_shape(a))
    if n == 2:
        return matmul(a, b)
    batch = "abcdefgh"[:n - 2]
    return einsum(a, b, subscripts=f"{batch}ij,{batch}jk->{batch}ik")


def _per_matrix(a: np.ndarray, fn: Callable[[np.ndarray], Any], out_shape: tuple[int, ...]) -> np.ndarray:
    """``fn`` of each matrix of a stack of object arrays, stacked back: out_shape is one result's shape."""
    batch = a.shape[:-2]
    out = np.empty(batch + out_shape, dtype=object)
    for idx in np.ndindex(*batch):
        out[idx] = fn(a[idx])
    return out


def _matrix_det(s: Any, a: np.ndarray) -> Any:
    return _smat(s, a).det(method="berkowitz")


def _matrix_inv(s: Any, a: np.ndarray) -> np.ndarray:
    return np.array((_smat(s, a).adjugate() / _matrix_det(s, a)).tolist(), dtype=object)


def _eye_like(x: Any) -> np.ndarray:
    n = _shape(x)[-1]
    return np.eye(n)


def _smat(s: Any, a: np.ndarray) -> Any:
    return s.Matrix(a.tolist())


# solve(a, b) reads b as numpy 2's numpy.linalg.solve does (the language follows numpy): b is one vector
# (n,) only when it is 1-D, and every b of two or more dimensions is a stack of matrices (..., n, k),
# whose batch dimensions broadcast against a's (..., n, n).  torch.linalg.solve reads a b of shape
# a.shape[:-1] as a stack of vectors instead; its adapter broadcasts b first so that torch reads it as
# numpy does.  A stack of vectors is written as columns, expand_dims(b, axis=-1).


def _solve_shapes(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = _square_stack(a), np.asarray(b)
    n = a.shape[-1]
    if b.ndim == 0 or (b.ndim == 1 and b.shape[0] != n) or (b.ndim >= 2 and b.shape[-2] != n):
        raise ValueError(f"solve: b of shape {b.shape} does not fit a of shape {a.shape}: b is a vector (n,) "
                         f"or a stack of matrices (..., n, k), as numpy 2 reads it")
    np.broadcast_shapes(a.shape[:-2], b.shape[:-2])  # raises when the batch dimensions do not broadcast
    return a, b


def _solve_db(g: Any, ans: Any, a: Any, b: Any) -> Any:
    # A^-T g, each matrix of the stack; a vector b: g as columns, and the column taken back
    if len(_shape(b)) == 1:
        return squeeze(solve(_mT(a), expand_dims(g, axis=-1)), axis=-1)
    return solve(_mT(a), g)


def _solve_da(g: Any, ans: Any, a: Any, b: Any) -> Any:
    # -(A^-T g) x^T, with x = ans, each matrix of the stack (the tape sums a broadcast back)
    gb = _solve_db(g, ans, a, b)
    if len(_shape(b)) == 1:
        return -(expand_dims(gb, axis=-1) * expand_dims(ans, axis=-2))
    return -_bmm(gb, _mT(ans))


def _solve_form(s: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The exact solve of each matrix of the broadcast stacks: adj(A) B / det(A)."""
    vector = b.ndim == 1
    bm = b.reshape(b.shape[0], 1) if vector else b
    batch = np.broadcast_shapes(a.shape[:-2], bm.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    bm = np.broadcast_to(bm, batch + bm.shape[-2:])
    out = np.empty(batch + bm.shape[-2:], dtype=object)
    for idx in np.ndindex(*batch):
        m = _smat(s, a[idx])
        out[idx] = np.array((m.adjugate() * _smat(s, bm[idx]) / m.det(method="berkowitz")).tolist(), dtype=object)
    return out[..., 0] if vector else out


det = defop(
    "det", lambda a: np.linalg.det(_square_stack(a)),
    lambda g, ans, a: reshape(g * ans, shape=_shape(ans) + (1, 1)) * _mT(inv(a)),
    args=("a",), saves=("ans", "a"), kind=LINALG, backward_name="LinalgDetBackward0",
    sympy=lambda s, a: _per_matrix(a, lambda m: _matrix_det(s, m), ()),
    samples=((((3, 3),), {}), (((2, 2),), {}), (((2, 3, 3),), {})),
    domain_note="a square matrix or a stack (..., n, n); the VJP needs them nonsingular",
)
inv = defop(
    "inv", lambda a: np.linalg.inv(_square_stack(a)),
    lambda g, ans, a: -_bmm(_mT(ans), _bmm(g, _mT(ans))),
    args=("a",), saves=("ans",), kind=LINALG, backward_name="LinalgInvExBackward0",
    sympy=lambda s, a: _per_matrix(a, lambda m: _matrix_inv(s, m), a.shape[-2:]),
    samples=((((3, 3),), {}), (((2, 2),), {}), (((2, 3, 3),), {})),
    domain_note="a square nonsingular matrix or a stack of them (..., n, n)",
)
solve = defop(
    "solve", lambda a, b: np.linalg.solve(*_solve_shapes(a, b)),
    _solve_da, _solve_db,
    args=("a", "b"), saves=(("a", "ans"), ("a",)), kind=LINALG, backward_name="LinalgSolveExBackward0",
    sympy=_solve_form,
    samples=((((3, 3), (3,)), {}), (((3, 3), (3, 2)), {}), (((2, 3, 3), (3,)), {}), (((2, 3, 3), (2, 3, 2)), {}),
             (((2, 3, 3), (3, 2)), {}), (((3, 3), (2, 3, 1)), {})),
    domain_note="a nonsingular square matrix or a stack (..., n, n); b a vector (n,) or a stack (..., n, k), "
                "as numpy 2 reads it",
)
trace = defop(
    "trace", lambda a: np.trace(_square(a)),
    lambda g, ans, a: g * _eye_like(a),
    args=("a",), linear=True, kind=LINALG, backward_name="TraceBackward0",
    sympy=lambda s, a: np.array(s.Add(*np.diagonal(a)), dtype=object),
    samples=((((3, 3),), {}), (((2, 2),), {})),
    domain_note="a square 2-D matrix",
)

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

# ---------------------------------------------------------------- conditions (issue 15): comparisons and & | ~
#
# Allowed only inside the condition of ``where`` (the parser refuses them anywhere else, with the
# position).  They return booleans and carry no gradient.  Their sympy forms are sympy booleans
# (``x < y``), which ``where``'s Piecewise takes as its condition directly; a value used as a
# condition (an input ``c``) means ``c != 0``, as numpy's ``where``.  A comparison jumps where its
# two sides are equal: ``kink_at`` is their difference, so a side that rounding puts on the other
# side of the jump than the exact reference is *at a kink (rounding)*, not compared.

CONDITION = "condition"  # a boolean-valued op: only in where's condition


def _truth(s: Any, c: Any) -> Any:
    """``c`` as a sympy boolean: itself when it is one, else ``c != 0``."""
    booleans = (s.core.relational.Relational, s.logic.boolalg.BooleanFunction, s.logic.boolalg.BooleanAtom)
    return c if isinstance(c, booleans) else s.Ne(c, 0)  # not Boolean: a sympy Symbol is one


def _operand(text: str) -> str:
    """A condition's operand, parenthesised unless it is a name or one call (``&`` binds tighter than ``<``)."""
    if re.fullmatch(r"\w+", text):
        return text
    call = re.match(r"\w+\(", text)
    if call:
        depth = 0
        for i, c in enumerate(text[call.end() - 1:], call.end() - 1):
            depth += (c == "(") - (c == ")")
            if depth == 0:
                return text if i == len(text) - 1 else f"({text})"
    return f"({text})"


def _compare(name: str, fn: Callable[..., Any], form: Callable[..., Any], symbol: str) -> Op:
    return defop(
        name, lambda x, y: fn(np.asarray(x), np.asarray(y)), None, None, kind=CONDITION,
        sympy=form, kink_at=lambda ans, x, y: np.asarray(x) - np.asarray(y), jumps=True, steps=True,
        printer=lambda texts, precs: f"{texts[0]} {symbol} {texts[1]}",
        kink="a condition: no gradient; jumps where both sides are equal", domain_note=f"written x {symbol} y",
        correctly_rounded=True,
    )


less = _compare("less", np.less, lambda s, x, y: s.Lt(x, y), "<")
less_equal = _compare("less_equal", np.less_equal, lambda s, x, y: s.Le(x, y), "<=")
greater = _compare("greater", np.greater, lambda s, x, y: s.Gt(x, y), ">")
greater_equal = _compare("greater_equal", np.greater_equal, lambda s, x, y: s.Ge(x, y), ">=")
# "eq", not numpy's "equal": symgrad.equal is torch.equal (whole tensors, one bool), a torch-facing function
eq = _compare("eq", np.equal, lambda s, x, y: s.Eq(x, y), "==")
not_equal = _compare("not_equal", np.not_equal, lambda s, x, y: s.Ne(x, y), "!=")
logical_and = defop(
    "logical_and", np.logical_and, None, None, kind=CONDITION, domain=Domain.CONDITION, domain_note="written x & y",
    printer=lambda texts, precs: f"{_operand(texts[0])} & {_operand(texts[1])}",
    sympy=lambda s, x, y: s.And(_truth(s, x), _truth(s, y)), kink="a condition: no gradient",
    correctly_rounded=True,
)
logical_or = defop(
    "logical_or", np.logical_or, None, None, kind=CONDITION, domain=Domain.CONDITION, domain_note="written x | y",
    printer=lambda texts, precs: f"{_operand(texts[0])} | {_operand(texts[1])}",
    sympy=lambda s, x, y: s.Or(_truth(s, x), _truth(s, y)), kink="a condition: no gradient",
    correctly_rounded=True,
)
logical_not = defop(
    "logical_not", np.logical_not, None, kind=CONDITION, domain=Domain.CONDITION, domain_note="written ~x",
    printer=lambda texts, precs: f"~{_operand(texts[0])}",
    sympy=lambda s, x: s.Not(_truth(s, x)), kink="a condition: no gradient",
    correctly_rounded=True,
)

# ---------------------------------------------------------------- norm and scans (issue 15)
#
# norm is the 2-norm over ``axis`` (all axes by default), a reduction.  cumsum and cumprod take one
# int ``axis``; without it they run over the flattened array, as numpy's (the result is then 1-D).


def _norm(x: Any, axis: Any = None) -> Any:
    x = np.asarray(x)
    return np.sqrt(np.sum(x * x, axis=axis))


norm = defop(
    # torch.linalg.vector_norm: gradient 0 where the norm is 0 (not 0/0); the guarded power keeps the
    # unused branch finite, so differentiating again gives 0 there too (torch: nan at order 2)
    "norm", _keep(_norm),
    lambda g, ans, x, axis=None, keepdims=False:
        expand(where(ans == 0, 0.0, g * where(ans == 0, 1.0, ans) ** -1.0), _shape(x), axis) * x,
    saves=("ans", "x"), kind=REDUCTION, params=_RED, backward_name="LinalgVectorNormBackward0",
    sympy=lambda s, x, axis=None, keepdims=False: s.reduce(x, axis, s.norm2, keepdims),
    plain=lambda s, *xs: s.sqrt(s.Add(*[a**2 for a in xs])),
    kink="gradient 0 where the norm is 0 (as torch.linalg.vector_norm); at order 2 there torch gives nan, symgrad 0",
    domain_note="the 2-norm; its derivatives at the zero vector are the convention above",
)


def _scan_axis(x: Any, axis: Any) -> int:
    if axis is not None and not isinstance(axis, (int, np.integer)):
        raise ValueError(f"a scan takes one integer axis, not {axis!r}")
    return _axis_of(0 if axis is None else axis, len(_shape(x)))


def _scan(fn: Callable[..., Any]) -> Callable[..., Any]:
    """numpy's cumsum/cumprod, the shape always kept: without ``axis`` only a 1-D array (numpy would flatten)."""
    def forward(x: Any, axis: Any = None) -> Any:
        x = np.asarray(x)
        if x.ndim == 0 or (axis is None and x.ndim != 1):
            raise ValueError(f"{fn.__name__} of a {x.ndim}-D array needs axis= (an integer; numpy would flatten)")
        return fn(x, axis=_scan_axis(x, axis))

    return forward


def _cumsum_vjp(g: Any, ans: Any, x: Any, axis: Any = None) -> Any:
    a = _scan_axis(x, axis)
    return flip(cumsum(flip(g, axis=a), axis=a), axis=a)  # the sum of g over j >= i


def _cumprod_vjp(g: Any, ans: Any, x: Any, axis: Any = None) -> Any:
    """sum over j >= i of g_j * prod_{k <= j, k != i} x_k, exact at zeros (no division): row i of an
    (n, n) block holds x with x_i replaced by 1, scanned along the other axis, kept where j >= i."""
    shape = _shape(x)
    a = _scan_axis(x, axis)
    n = shape[a]
    lifted = shape[:a] + (1, n) + shape[a + 1:]
    block = shape[:a] + (n, n) + shape[a + 1:]
    rest = (1,) * (len(shape) - a - 1)
    eye = np.eye(n, dtype=bool).reshape((n, n) + rest)
    upper = np.triu(np.ones((n, n), dtype=bool)).reshape((n, n) + rest)  # [i, j]: j >= i
    scans = cumprod(where(eye, 1.0, broadcast_to(reshape(x, shape=lifted), shape=block)), axis=a + 1)
    gb = broadcast_to(reshape(g, shape=lifted), shape=block)
    return sum(where(upper, scans * gb, 0.0), axis=a + 1)


def _scan_form(s: Any, x: Any, axis: Any, fn: Callable[..., Any]) -> Any:
    return s.along(x, _scan_axis(x, axis), lambda *v: [fn(*v[:k + 1]) for k in range(len(v))])


_SCAN_NOTE = "one integer axis; without it a 1-D array only (numpy would flatten)"
cumsum = defop(
    "cumsum", _scan(np.cumsum), _cumsum_vjp,
    kind=SCAN, params=("axis",), linear=True, backward_name="CumsumBackward0",
    sympy=lambda s, x, axis=None: _scan_form(s, x, axis, s.Add), domain_note=_SCAN_NOTE,
    samples=((((3, 4),), {"axis": 1}), (((2, 3),), {"axis": -2}), (((4,),), {})),
)
cumprod = defop(
    # the products of the others, never ans / x: exact at zeros, as torch
    "cumprod", _scan(np.cumprod), _cumprod_vjp, saves=("x",),
    kind=SCAN, params=("axis",), backward_name="CumprodBackward0",
    sympy=lambda s, x, axis=None: _scan_form(s, x, axis, s.Mul), domain_note=_SCAN_NOTE,
    kink="exact at zeros: element i gets the products without x_i, as torch",
    samples=((((3, 4),), {"axis": 1}), (((2, 3),), {"axis": -2}), (((4,),), {})),
)
