"""Forward mode: a backend's JVP against the exact Jacobian contracted with a tangent.

``mode_ad: forward`` (or ``both``) checks, beside or instead of the VJP, the engine's
Jacobian-vector product ``J t = sum over wrt of d expr / d x @ t_x`` (``torch.func.jvp``,
``jax.jvp``, :func:`symgrad.func.jvp`).  The reference is sympy's: the same exact derivatives
the reverse check uses, contracted with the tangent in float64 (mpmath with ``reference: exact``
before the one rounding), in one of three ways:

* a scalar output: ``J t = sum_x <grad_x, t_x>``, from one VJP with grad_output 1;
* an elementwise expression: each input broadcast to the output's shape first, so that the
  VJP with grad_output 1 is the elementwise partial derivative, and ``J t = sum_x d_x * t_x``;
* anything else (reductions along an axis, ``@``, indexing): row by row, the VJP with a one-hot
  grad_output per output element (expanded mode: small shapes).

An element of ``J t`` is *undefined* where a derivative it sums is, and *at a kink* where one is.
The comparison is named ``jvp``, so a forward-mode bug is reported as one.  Order 1 only: a
higher ``order`` is checked by reverse mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from symgrad.checking.cases import Case
from symgrad.ir.expr import Expr, is_elementwise, numpy_eval, variables
from symgrad.ir.limits import Limits
from symgrad.symbolic import differentiate
from symgrad.symbolic.engine import choose_mode

__all__ = ["AD_MODES", "JvpReference", "make_tangents", "reference_jvp"]

AD_MODES = ("reverse", "forward", "both")
_FORMULA_CHARS = 200


@dataclass
class JvpReference:
    value: np.ndarray  # the forward value (sympy's)
    jvp: np.ndarray  # J t, of the forward value's shape
    undefined: np.ndarray  # bool: some derivative it sums is nan/zoo there
    at_kink: np.ndarray  # bool: some derivative it sums is at a kink (rounding) there
    slack: np.ndarray | None  # float32: how far an ideal engine can be (see symbolic/engine.py)
    formula: str
    mode: str  # the symbolic engine's mode
    # the slack with the intermediates' first-order rounding bound, computed on demand (a comparison that
    # fails within the slack asks for it)
    bound: Callable[[], np.ndarray] | None = None
    value_slack: np.ndarray | None = None  # as slack and bound, for the forward value
    value_bound: Callable[[], np.ndarray | None] | None = None


def _mask(d: Any, name: str) -> np.ndarray:
    m = getattr(d, name)
    base = np.isnan(np.asarray(d.value, dtype=float)) if name == "undefined" else False
    return np.asarray(base if m is None else np.asarray(m, dtype=bool) | base, dtype=bool)


def _formula(derivs: dict, names: list[str]) -> str:
    text = " + ".join(f"({derivs[(n,)].formula})*t_{n}" for n in names if (n,) in derivs)
    return text if len(text) <= _FORMULA_CHARS else text[: _FORMULA_CHARS - 3] + "..."


def reference_jvp(ir: Expr, inputs: dict[str, np.ndarray], wrt: list[str], tangents: dict[str, np.ndarray], *,
                  mode: str = "auto", exact: bool = False, dtype: Any = np.float64,
                  limits: Limits | None = None) -> JvpReference:
    """The exact ``J t`` of ``ir`` at ``inputs`` (the tangents of the ``wrt`` inputs, each of its input's shape)."""
    dt = np.dtype(dtype)
    kw: dict[str, Any] = {"mode": mode, "exact": exact, "dtype": dt}
    if limits is not None:
        kw["limits"] = limits
    used = [n for n in wrt if n in set(variables(ir))]
    shape = tuple(np.shape(numpy_eval(ir, inputs)))
    t64 = {n: np.asarray(tangents[n], dtype=dt).astype(np.float64) for n in wrt}
    eps = float(np.finfo(dt).eps)

    def contract(derivs: dict, weights: Callable[[str, np.ndarray], np.ndarray], axes: Any) -> tuple:
        """sum over used names of weights(d_x) summed over ``axes`` (None: elementwise), with masks; the
        slack, and a function giving it with the first-order rounding bounds (computed when called)."""
        at = shape if axes is None else ()
        total, absolute = np.zeros(at), np.zeros(at)
        undef, kink = np.zeros(at, dtype=bool), np.zeros(at, dtype=bool)
        terms = 0
        red = (lambda a: a) if axes is None else (lambda a: np.sum(a))
        slacked = []
        with np.errstate(all="ignore"):
            for n in used:
                d = derivs[(n,)]
                prod = np.asarray(d.value, dtype=np.float64) * weights(n, t64[n])
                total = total + red(prod)
                absolute = absolute + red(np.abs(prod))
                if d.slack is not None:
                    slacked.append((d, weights(n, t64[n])))
                undef = undef | (red(_mask(d, "undefined")) > 0 if axes is not None
                                 else np.broadcast_to(_mask(d, "undefined"), at))
                kink = kink | (red(_mask(d, "at_kink")) > 0 if axes is not None
                               else np.broadcast_to(_mask(d, "at_kink"), at))
                terms += 1 if axes is None else int(np.size(prod))
            undef = undef | np.isnan(total)

        def slack(with_bound: bool) -> np.ndarray:
            # the sampled spread, or the intermediates' first-order rounding where it is larger; and a float32
            # engine's dot product may cancel: its rounding error is bounded by n eps sum |terms|
            out = np.zeros(at)
            with np.errstate(all="ignore"):
                for d, w in slacked:
                    bound = d.bound() if with_bound and d.bound is not None else None
                    wide = np.asarray(d.slack) if bound is None else np.maximum(d.slack, bound)
                    out = out + red(np.abs(wide * w))
            return out + terms * eps * absolute

        if dt != np.float32:
            return total, undef, kink, None, None
        return total, undef, kink, slack(False), lambda: slack(True)

    res: Any
    if not used:  # J t = 0: the output depends on no differentiated input
        res = differentiate(ir, inputs, wrt, grad_output=np.ones(shape, dtype=dt), **kw)
        z = np.zeros(shape, dtype=bool)
        return JvpReference(res.value, np.zeros(shape, dtype=dt), z, z, None, "0", res.mode,
                            value_slack=res.value_slack, value_bound=res.value_bound)

    if shape == ():
        res = differentiate(ir, inputs, wrt, grad_output=np.ones((), dtype=dt), **kw)
        total, undef, kink, slack, bound = contract(res.derivatives, lambda n, t: t, "all")
        return JvpReference(res.value, total.astype(dt), undef, kink, slack, _formula(res.derivatives, used),
                            res.mode, bound, res.value_slack, res.value_bound)

    if is_elementwise(ir) and choose_mode(ir, mode) == "elementwise":
        wide = {n: (np.broadcast_to(a, shape).copy() if n in used else a) for n, a in inputs.items()}
        res = differentiate(ir, wide, wrt, grad_output=np.ones(shape, dtype=dt), **kw)
        total, undef, kink, slack, bound = contract(res.derivatives, lambda n, t: np.broadcast_to(t, shape), None)
        return JvpReference(res.value, total.astype(dt), undef, kink, slack, _formula(res.derivatives, used),
                            res.mode, bound, res.value_slack, res.value_bound)

    # row by row: the VJP with the k-th one-hot grad_output is the k-th row of the Jacobian
    size = math.prod(shape)
    jvp, undef_all, kink_all = np.zeros(size), np.zeros(size, dtype=bool), np.zeros(size, dtype=bool)
    slack_all = np.zeros(size) if dt == np.float32 else None
    bounds: list[Callable[[], np.ndarray]] = []
    res = None
    for k in range(size):
        onehot = np.zeros(size, dtype=dt)
        onehot[k] = 1
        res = differentiate(ir, inputs, wrt, grad_output=onehot.reshape(shape), **kw)
        total, undef, kink, slack, bound = contract(res.derivatives, lambda n, t: t, "all")
        jvp[k], undef_all[k], kink_all[k] = total, undef, kink
        if slack_all is not None and slack is not None:
            slack_all[k] = slack
            bounds.append(bound)
    assert res is not None
    rows = f"row by row ({size} VJPs with one-hot grad_outputs), " + _formula(res.derivatives, used)

    def bound_all() -> np.ndarray:
        return np.array([b() for b in bounds], dtype=np.float64).reshape(shape)

    return JvpReference(res.value, jvp.reshape(shape).astype(dt), undef_all.reshape(shape),
                        kink_all.reshape(shape), None if slack_all is None else slack_all.reshape(shape),
                        rows[:_FORMULA_CHARS], res.mode, bound_all if slack_all is not None else None,
                        res.value_slack, res.value_bound)


def make_tangents(case: Case, inputs: dict[str, np.ndarray], limits: Limits) -> dict[str, np.ndarray]:
    """The case's tangents (its ``tangent`` key; seeded standard normals by default), one per wrt input."""
    return case.make_tangents({n: inputs[n].shape for n in case.wrt_names}, limits)
