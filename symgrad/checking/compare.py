"""Tolerances, elementwise comparison of tape results with references, ULP distance.

An element passes when ``|actual - expected| <= atol + rtol * |expected|``
(``torch.testing.assert_close``'s rule and default tolerances); equal
infinities pass. Where the reference is ``nan`` (or the caller's ``undefined``
mask is set) the element is *undefined*: counted, but neither a pass nor a
failure; where the caller's ``at_kink`` mask is set (the float forward and the
exact value take different branches of a kink) it is *at a kink (rounding)*:
counted, not compared either.  A ``slack`` (per element: how far an ideal engine in
the dtype can be from the exact value, for ill-conditioned float32 expressions)
widens the allowance to ``max(atol + rtol*|expected|, slack)``, never below it.
Pure numpy + stdlib.
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from symgrad.ir.precision import numpy_dtype

__all__ = [
    "DEFAULT_TOLERANCES",
    "Comparison",
    "compare",
    "json_float",
    "tolerances",
    "ulp_distance",
]

# (rtol, atol), as torch.testing.assert_close uses them.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-7),
    "float32": (1.3e-6, 1e-5),
    # the 16-bit formats: rtol is torch's default, about one and two epsilons of the format (2**-10,
    # 2**-7; float32's is ~11); atol is one epsilon, the rounding of an intermediate of size 1 (float32's
    # 1e-5 is ~84; torch's 1e-5 would be a hundredth of a float16 ulp at 1, failing every cancellation).
    # The conditioning slack (symbolic/engine.py, ``_spread`` with the format's epsilon) widens both
    # where the expression amplifies rounding, as for float32.
    "float16": (1e-3, 2.0**-10),
    "bfloat16": (1.6e-2, 2.0**-7),
}


def _dtype_name(dtype: Any) -> str:
    try:
        return numpy_dtype(dtype).name
    except TypeError as exc:
        raise ValueError(f"unknown dtype {dtype!r}; supported: {', '.join(DEFAULT_TOLERANCES)}") from exc


def _tolerance_value(kind: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{kind} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{kind} must be a number, got {value!r}") from exc
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"{kind} must be a finite number >= 0, got {value!r}")
    return out


def tolerances(dtype: Any, rtol: float | None = None, atol: float | None = None) -> tuple[float, float]:
    """``(rtol, atol)`` for ``dtype``: the defaults, each overridden when given.

    Overrides may be numbers or numeric strings (YAML 1.1 reads ``1e-6`` as a
    string); they must be finite and non-negative.
    """
    name = _dtype_name(dtype)
    if name not in DEFAULT_TOLERANCES:
        raise ValueError(f"unsupported dtype {name!r}; supported: {', '.join(DEFAULT_TOLERANCES)}")
    default_rtol, default_atol = DEFAULT_TOLERANCES[name]
    r = default_rtol if rtol is None else _tolerance_value("rtol", rtol)
    a = default_atol if atol is None else _tolerance_value("atol", atol)
    return r, a


# --------------------------------------------------------------------------- ULP

_INT_FOR_FLOAT = {2: np.int16, 4: np.int32, 8: np.int64}


def _ordered_ints(x: np.ndarray, itype: type) -> np.ndarray:
    """Map float bit patterns onto a monotonic integer line (-0.0 and +0.0 -> 0)."""
    bits = x.view(itype).astype(np.int64)
    if itype is np.int64:
        magnitude = bits & np.int64(0x7FFF_FFFF_FFFF_FFFF)
    else:
        magnitude = bits & np.int64((1 << (8 * np.dtype(itype).itemsize - 1)) - 1)
    return np.where(bits < 0, -magnitude, magnitude)


def ulp_distance(a: Any, b: Any, dtype: Any = "float64") -> np.ndarray:
    """Number of representable ``dtype`` values between ``a`` and ``b`` (elementwise).

    Both are cast to ``dtype`` first. Returns a float64 array (a 0-d array for
    scalar inputs): 0 where equal (including equal infinities and ``-0.0``
    vs ``0.0``), 1 for neighbours (``np.nextafter``), ``inf`` where either is
    ``nan`` or the two are infinities of opposite sign.
    """
    dt = numpy_dtype(dtype)
    if (dt.kind != "f" and dt.name != "bfloat16") or dt.itemsize not in _INT_FOR_FLOAT:
        raise ValueError(f"ulp_distance needs a float16/32/64 or bfloat16 dtype, got {dt.name}")
    itype = _INT_FOR_FLOAT[dt.itemsize]
    with np.errstate(all="ignore"):
        x = np.asarray(a, dtype=np.float64).astype(dt)
        y = np.asarray(b, dtype=np.float64).astype(dt)
    x, y = np.broadcast_arrays(x, y)
    x = x.copy()  # contiguous (and still 0-d for scalars, unlike ascontiguousarray)
    y = y.copy()
    ox = _ordered_ints(x, itype)
    oy = _ordered_ints(y, itype)
    hi = np.maximum(ox, oy)
    lo = np.minimum(ox, oy)
    # The true difference fits in uint64 even when it overflows int64 (wrap-around is intended).
    with np.errstate(over="ignore"):
        dist = (hi.view(np.uint64) - lo.view(np.uint64)).astype(np.float64)
    bad = np.isnan(x) | np.isnan(y) | (np.isinf(x) & np.isinf(y) & (x != y))
    dist = np.where(bad, np.inf, dist)
    return dist


# --------------------------------------------------------------------------- Comparison


def json_float(x: Any) -> Any:
    """A float for JSON: ``inf``/``-inf``/``nan`` become those strings; None stays None."""
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _from_json_float(x: Any) -> float | None:
    if x is None:
        return None
    return float(x)  # float("inf") / float("-inf") / float("nan") parse the strings


_FLOAT_KEYS = ("actual", "expected", "max_abs", "max_rel", "max_ulp", "rtol", "atol", "abs_err", "rel_err",
               "ulp", "grad_output_value", "widened_by")


@dataclass
class Comparison:
    """One elementwise comparison of a tape result with its reference."""

    name: str
    formula: str
    shape: tuple[int, ...]
    size: int
    mismatched: int
    undefined: int
    worst_index: tuple[int, ...] | None
    actual: float | None
    expected: float | None
    max_abs: float
    max_rel: float
    max_ulp: float
    rtol: float
    atol: float
    note: str = ""
    # the errors at the worst element (the max_* columns are the maxima over all defined elements)
    abs_err: float = 0.0
    rel_err: float = 0.0
    ulp: float = 0.0
    # the grad_output of the VJP when it is not all ones: its source and its value at the worst element
    grad_output: str = ""
    grad_output_value: float | None = None
    # defined elements not compared: at a kink, tie or jump that rounding decides (see symbolic/kinks.py)
    at_kink: int = 0
    # compared elements whose tolerance the slack widened, and the largest widening (allowed / default)
    widened: int = 0
    widened_by: float = 1.0

    @property
    def passed(self) -> bool:
        return self.mismatched == 0

    @property
    def defined(self) -> int:
        """Elements with a defined reference (compared at all)."""
        return self.size - self.undefined

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = [int(n) for n in self.shape]
        d["worst_index"] = None if self.worst_index is None else [int(i) for i in self.worst_index]
        for key in _FLOAT_KEYS:
            d[key] = json_float(d[key])
        d["size"] = int(self.size)
        d["mismatched"] = int(self.mismatched)
        d["undefined"] = int(self.undefined)
        d["at_kink"] = int(self.at_kink)
        d["widened"] = int(self.widened)
        d["passed"] = self.passed
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Comparison:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["shape"] = tuple(int(n) for n in kw.get("shape", ()))
        wi = kw.get("worst_index")
        kw["worst_index"] = None if wi is None else tuple(int(i) for i in wi)
        for key in _FLOAT_KEYS:
            if key in kw:
                kw[key] = _from_json_float(kw[key])
        kw.setdefault("formula", "")
        return cls(**kw)


def compare(
    name: str,
    actual: Any,
    expected: Any,
    *,
    rtol: float,
    atol: float,
    dtype: Any = "float64",
    undefined: Any = None,
    formula: str = "",
    nan_is_undefined: bool = True,
    at_kink: Any = None,
    slack: Any = None,
) -> Comparison:
    """Compare ``actual`` (the tape) with ``expected`` (the reference) element by element.

    Shapes must match exactly; otherwise every element counts as mismatched
    and the note says ``shape (tape) != (reference)``. Errors are computed in
    float64; the ULP distance is counted in ``dtype``.  With ``nan_is_undefined``
    False (an ``expect``ation rather than sympy's reference), only the ``undefined``
    mask marks elements undefined: a nan expected where the mask is clear is a mismatch.
    """
    rtol = rtol if type(rtol) is float and 0.0 <= rtol < math.inf else _tolerance_value("rtol", rtol)
    atol = atol if type(atol) is float and 0.0 <= atol < math.inf else _tolerance_value("atol", atol)
    act = np.asarray(actual, dtype=np.float64)
    exp = np.asarray(expected, dtype=np.float64)
    shape, size = exp.shape, exp.size  # Python ints already

    if act.shape != exp.shape:
        return Comparison(
            name=name, formula=formula, shape=shape, size=size,
            mismatched=max(size, 1), undefined=0, worst_index=None, actual=None, expected=None,
            max_abs=math.inf, max_rel=math.inf, max_ulp=math.inf, rtol=rtol, atol=atol,
            abs_err=math.inf, rel_err=math.inf, ulp=math.inf, note=f"shape {tuple(act.shape)} != {shape}",
        )

    # the masks: None stands for "no element" (undefined, at a kink) or "every element" (compared)
    undef = np.isnan(exp) if nan_is_undefined else None
    if undefined is not None:
        mask = np.asarray(undefined, dtype=bool)
        if mask.shape != exp.shape:
            mask = np.broadcast_to(mask, exp.shape)
        if undef is None:
            undef = mask
        else:
            undef |= mask  # in place: isnan's own fresh array
    n_undef = 0 if undef is None else int(np.count_nonzero(undef))
    if not n_undef:
        undef = None
    kink = None
    n_kink = 0
    if at_kink is not None:
        kink = np.asarray(at_kink, dtype=bool)
        if kink.shape != exp.shape:
            kink = np.broadcast_to(kink, exp.shape)
        if undef is not None:
            kink = kink & ~undef
        n_kink = int(np.count_nonzero(kink))
        if not n_kink:
            kink = None
    skipped = kink if undef is None else undef if kink is None else undef | kink
    compared = None if skipped is None else ~skipped

    extra = None if slack is None else _slack_allowance(slack, exp.shape)
    stats = _passing_stats(act, exp, compared, rtol, atol, dtype, extra)
    if stats is None:  # a mismatch (or an infinite tolerance): every error, element by element
        full = np.ones(exp.shape, dtype=bool) if compared is None else compared
        stats = _full_stats(act, exp, full, rtol, atol, dtype, extra)
    mismatched, worst_index, max_abs, max_rel, max_ulp, n_wider, widened_by = stats
    worst_actual = worst_expected = None
    at_abs = at_rel = at_ulp = 0.0
    if worst_index is not None:
        worst_actual, worst_expected = float(act[worst_index]), float(exp[worst_index])
        at_abs, at_rel, at_ulp = _errors_at(worst_actual, worst_expected, dtype)

    return Comparison(
        name=name, formula=formula, shape=shape, size=size,
        mismatched=mismatched, undefined=n_undef, worst_index=worst_index,
        actual=worst_actual, expected=worst_expected,
        max_abs=max_abs, max_rel=max_rel, max_ulp=max_ulp, rtol=rtol, atol=atol,
        abs_err=at_abs, rel_err=at_rel, ulp=at_ulp, at_kink=n_kink,
        widened=n_wider, widened_by=widened_by,
        note=f"tolerance widened at {n_wider}/{size} (ill-conditioned in {_name(numpy_dtype(dtype))}, "
             f"up to {widened_by:.3g}x)" if n_wider else "",
    )


@functools.cache
def _name(dtype: np.dtype) -> str:
    return dtype.name  # a Python-level property of numpy's dtypes: slow enough to matter per comparison


_Stats = tuple[int, "tuple[int, ...] | None", float, float, float, int, float]


def _slack_allowance(slack: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The slack as an allowance per element: float64 of ``shape``, nan and +inf (no estimate) as 0."""
    s = np.asarray(slack, dtype=np.float64)
    extra = np.where(np.isnan(s) | (s == math.inf), 0.0, s)  # nan_to_num's result, without its cost
    return extra if extra.shape == shape else np.broadcast_to(extra, shape)


def _full_stats(act: np.ndarray, exp: np.ndarray, compared: np.ndarray, rtol: float, atol: float,
                dtype: Any, extra: np.ndarray | None) -> _Stats:
    """Mismatch count, worst element and maxima, from every element's errors (the reference path).
    ``extra``: the slack's allowance (:func:`_slack_allowance`), or None."""
    with np.errstate(all="ignore"):
        equal = act == exp  # catches equal infinities
        finite = np.isfinite(act) & np.isfinite(exp)
        abs_err = np.where(equal, 0.0, np.where(finite, np.abs(act - exp), np.inf))
        default = atol + rtol * np.abs(exp)
        allowed = default
        if extra is not None:
            allowed = np.maximum(default, extra)
        ok = equal | (finite & (abs_err <= allowed))
        rel_err = np.where(abs_err == 0, 0.0, abs_err / np.abs(exp))
        rel_err = np.where(np.isnan(rel_err), np.inf, rel_err)
        ratio = np.where(abs_err == 0, 0.0, abs_err / allowed)  # x/0 -> inf
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
    ulp = ulp_distance(act, exp, dtype)

    bad = compared & ~ok
    wider = compared & (allowed > default)
    n_wider = int(np.count_nonzero(wider))
    widened_by = float(np.max(allowed[wider] / default[wider])) if n_wider else 1.0
    mismatched = int(np.count_nonzero(bad))
    worst_index: tuple[int, ...] | None = None
    max_abs = max_rel = max_ulp = 0.0
    if np.any(compared):
        # Prefer a failing element; among them (or among all compared), the largest error/tolerance ratio.
        pool = bad if mismatched else compared
        score = np.where(pool, ratio, -1.0)
        flat = int(np.argmax(score))
        worst_index = tuple(int(i) for i in np.unravel_index(flat, exp.shape))
        max_abs = float(np.max(abs_err[compared]))
        max_rel = float(np.max(rel_err[compared]))
        max_ulp = float(np.max(ulp[compared]))

    return mismatched, worst_index, max_abs, max_rel, max_ulp, n_wider, widened_by


def _errors_at(actual: float, expected: float, dtype: Any) -> tuple[float, float, float]:
    """Absolute, relative and ULP error of one element, by the rules of :func:`_full_stats` (Python floats:
    ``x / 0`` is inf and ``inf / inf`` nan there, as in numpy)."""
    a, e = float(actual), float(expected)
    if a == e:
        abs_err = 0.0
    elif math.isfinite(a) and math.isfinite(e):
        abs_err = abs(a - e)  # beyond the float range: inf, as numpy's
    else:
        abs_err = math.inf
    if abs_err == 0:
        rel = 0.0
    elif e == 0:
        rel = math.inf
    else:
        rel = abs_err / abs(e)
    return abs_err, (math.inf if math.isnan(rel) else rel), _ulp_one(a, e, dtype)


# a pair of floats packed in the format, read back as a pair of signed integers, and the magnitude bits
_BITS = {np.dtype(np.float64): (struct.Struct("<2d"), struct.Struct("<2q"), 0x7FFF_FFFF_FFFF_FFFF),
         np.dtype(np.float32): (struct.Struct("<2f"), struct.Struct("<2i"), 0x7FFF_FFFF)}


def _ulp_one(a: float, e: float, dtype: Any) -> float:
    """:func:`ulp_distance` of two Python floats, without numpy's per-call cost (float32/64)."""
    dt = np.dtype(dtype)
    if dt not in _BITS:
        return float(ulp_distance(a, e, dt))
    floats, ints, mask = _BITS[dt]
    if dt == np.float32:
        with np.errstate(all="ignore"):
            a, e = float(np.float32(a)), float(np.float32(e))
    if math.isnan(a) or math.isnan(e) or (math.isinf(a) and math.isinf(e) and a != e):
        return math.inf
    ia, ie = ints.unpack(floats.pack(a, e))
    oa = -(ia & mask) if ia < 0 else ia & mask
    oe = -(ie & mask) if ie < 0 else ie & mask
    return float(abs(oa - oe))


# the fast path works through blocks of this many elements: its handful of passes then stay in the cache
# (at 1e6 elements, whole-array passes over three float64 arrays were bound by memory bandwidth)
_BLOCK = 1 << 15


def _passing_stats(act: np.ndarray, exp: np.ndarray, compared: np.ndarray | None, rtol: float, atol: float,
                   dtype: Any, extra: np.ndarray | None = None) -> _Stats | None:
    """:func:`_full_stats` in a few vectorised passes when every compared element is within tolerance;
    None when one is not (or a tolerance is infinite), for the full path to count and rank the errors.
    ``compared`` None: every element; ``extra``: the slack's allowance, as for :func:`_full_stats`.

    Within tolerance, an element is equal (an infinity too) or finite, so its error is ``|act - exp|``
    and its ULP distance a difference of bit patterns: no per-element special cases are needed."""
    shape = exp.shape
    dtype = numpy_dtype(dtype)
    act, exp = act.reshape(-1), exp.reshape(-1)  # 0-d arrays too
    where = None if compared is None else compared.reshape(-1)
    wide = None if extra is None else extra.reshape(-1)
    n = exp.size
    step = max(1, min(n, _BLOCK))
    work = np.empty((4 if extra is None else 5, step))
    max_abs = max_rel = max_ulp = 0.0
    worst, worst_ratio = -1, -math.inf
    n_wider, widened_by = 0, 1.0
    with np.errstate(all="ignore"):
        for start in range(0, n, step):
            stop = start + step
            block = _block_stats(act[start:stop], exp[start:stop], None if where is None else where[start:stop],
                                 rtol, atol, dtype, work if stop <= n else work[:, : n - start],
                                 None if wide is None else wide[start:stop])
            if block is None:
                return None
            if block is _NOTHING:
                continue
            b_abs, b_rel, b_ulp, b_worst, b_ratio, b_wider, b_by = block
            max_abs, max_rel, max_ulp = max(max_abs, b_abs), max(max_rel, b_rel), max(max_ulp, b_ulp)
            n_wider, widened_by = n_wider + b_wider, max(widened_by, b_by)
            if b_ratio > worst_ratio:  # strictly: the first of equal ratios, as one argmax would pick
                worst, worst_ratio = start + b_worst, b_ratio
    if worst < 0:  # nothing compared
        return 0, None, 0.0, 0.0, 0.0, 0, 1.0
    return 0, _unravel(worst, shape), max_abs, max_rel, max_ulp, n_wider, widened_by


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``np.unravel_index`` of one flat index into a C-ordered shape, as Python ints (without its per-call cost)."""
    index = []
    for n in reversed(shape):
        flat, i = divmod(flat, n)
        index.append(i)
    return tuple(reversed(index))


_Block = tuple[float, float, float, int, float, int, float]
_NOTHING: _Block = (0.0, 0.0, 0.0, -1, -math.inf, 0, 1.0)  # a block with no element compared


def _block_stats(act: np.ndarray, exp: np.ndarray, where: np.ndarray | None, rtol: float, atol: float,
                 dtype: Any, work: np.ndarray, extra: np.ndarray | None = None) -> _Block | None:
    """One block of :func:`_passing_stats`: (max abs, max rel, max ulp, worst index, its ratio, elements the
    slack widened, the largest widening), None when an element fails (or a tolerance is infinite),
    ``_NOTHING`` when no element is compared.  ``work``: four scratch rows of the block's length (five
    with a slack's allowance ``extra``)."""
    within: dict[str, Any] = {} if where is None else {"where": where}
    diff, mag, allowed, ratio = work[:4]
    default = allowed if extra is None else work[4]
    np.subtract(act, exp, out=diff)
    np.abs(diff, out=diff)  # nan only at equal infinities (or at a nan, which fails)
    np.abs(exp, out=mag)
    np.multiply(mag, rtol, out=default)
    default += atol
    if extra is not None:
        np.maximum(default, extra, out=allowed)  # the slack widens the tolerance, never narrows it
    # the worst element: the largest error/tolerance ratio, first of ties; -1 where not compared
    np.divide(diff, allowed, out=ratio)
    if where is not None:
        np.copyto(ratio, -1.0, where=~where)
    worst = int(ratio.argmax())  # argmax returns the first nan, if there is one
    worst_ratio = float(ratio[worst])
    # For allowed > 0 finite, fl(diff / allowed) <= 1 exactly when diff <= allowed (a float above allowed is
    # at least allowed * (1 + 2**-53), strictly, and the quotient rounds up to 1 + 2**-52): a largest ratio
    # <= 1 passes every element.  An infinity or a nan on either side gives a nan or an infinite ratio, and
    # so does a zero tolerance at a zero: those blocks take the element checks below.
    if not worst_ratio <= 1.0:
        # fmax: a nan (an undefined element) must not hide an infinity elsewhere
        if np.isinf(np.fmax.reduce(allowed, initial=0.0)):
            return None  # an infinite reference: inf <= inf must not pass a finite tape value
        ok = np.less_equal(diff, allowed)
        if not ok.all(**within):  # the only other way to pass: equal (infinite) values
            ok |= act == exp
            if not ok.all(**within):
                return None
        np.fmax(ratio, 0.0, out=ratio)  # passing, so a nan ratio is 0/0 or equal infinities: 0
        if where is not None:
            np.copyto(ratio, -1.0, where=~where)
        worst = int(ratio.argmax())
        worst_ratio = float(ratio[worst])
    if worst_ratio < 0:
        return _NOTHING
    n_wider, widened_by = 0, 1.0
    if extra is not None:
        wider = np.greater(allowed, default)
        if where is not None:
            wider &= where
        n_wider = int(np.count_nonzero(wider))
        if n_wider:
            widened_by = float(np.maximum.reduce(np.divide(allowed, default, out=ratio), where=wider,
                                                 initial=-math.inf))
    max_abs = float(np.fmax.reduce(diff, initial=0.0, **within))
    if max_abs == 0.0:  # every compared pair equal (or equal infinities): no relative or ULP error either
        return 0.0, 0.0, 0.0, worst, worst_ratio, n_wider, widened_by
    # a passing pair of opposite signs has |exp| (1 - rtol) <= atol (its error is at least |exp|): none
    # when the smallest |exp| is well above that (the factor 2 covers the rounding of the two sides); a
    # slack can let such a pair pass at any size
    same_sign = (extra is None and rtol < 1
                 and float(np.fmin.reduce(mag, initial=math.inf, **within)) * (1 - rtol) > 2 * atol)
    rel = np.divide(diff, mag, out=mag)  # 0/0 (equal zeros) is nan: ignored
    max_rel = float(np.fmax.reduce(rel, initial=0.0, **within))
    return (max_abs, max_rel, _max_ulp(act, exp, where, dtype, same_sign, out=diff), worst, worst_ratio,
            n_wider, widened_by)


def _max_ulp(act: np.ndarray, exp: np.ndarray, where: np.ndarray | None, dtype: Any,
             same_sign: bool = False, out: np.ndarray | None = None) -> float:
    """The largest :func:`ulp_distance` over ``where``, for finite or equal elements: between floats of one
    sign it is the difference of their bit patterns (it fits the format's own integer type); the few pairs
    of opposite signs take the full route.  ``same_sign``: the caller knows no pair has opposite signs;
    ``out``: float64 scratch space of the arrays' length."""
    dt = numpy_dtype(dtype)
    itype = _INT_FOR_FLOAT[dt.itemsize]
    x = np.ascontiguousarray(act, dtype=dt)  # the caller silences the overflow of a cast to float32
    y = np.ascontiguousarray(exp, dtype=dt)
    ix, iy = x.view(itype), y.view(itype)
    dist = np.subtract(ix, iy, out=None if out is None else out.view(itype)[: ix.size].reshape(ix.shape))
    np.abs(dist, out=dist)  # wraps only between opposite signs, which are left out
    within: dict[str, Any] = {} if where is None else {"where": where}
    if not same_sign:
        opposite = np.less(ix, 0)
        opposite ^= np.less(iy, 0)
        split = opposite if where is None else where & opposite
        if split.any():
            keep = ~opposite if where is None else where & ~opposite
            best = float(np.maximum.reduce(dist, where=keep, initial=0))
            return max(best, float(np.max(ulp_distance(x[split], y[split], dt))))
    return float(np.maximum.reduce(dist, initial=0, **within))
