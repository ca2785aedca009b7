"""``symgrad plot``: f, sympy's f', the tape's f' and their ULP distance over a sweep of one input.

matplotlib is optional (``pip install "symgrad[plot]"``); it is imported only
here, with the non-interactive Agg backend.  Kinks (where an op of the table
has a convention at a non-differentiable point: ``relu``, ``abs``, ``sqrt``,
``maximum``, ...) are found by evaluating each such op's argument along the
sweep and locating its zeros; points where sympy's derivative is undefined
are marked as well.  The numbers come from one :func:`~symgrad.checking.runner.run_case`
(its report carries both derivatives); only the kink finder evaluates the IR
itself, node by node, with :func:`~symgrad.ir.expr.numpy_eval`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from symgrad.api import ExprLike, make_case
from symgrad.checking.compare import ulp_distance
from symgrad.checking.runner import run_case
from symgrad.ir.expr import Call, Const, Expr, numpy_eval

__all__ = ["MatplotlibMissing", "PlotData", "compute", "render"]

MISSING = 'symgrad plot needs matplotlib: pip install "symgrad[plot]"'


class MatplotlibMissing(ImportError):
    pass


@dataclass
class PlotData:
    expr: str
    wrt: str
    at: dict[str, Any]
    x: np.ndarray
    f: np.ndarray
    sym: np.ndarray  # sympy's derivative
    tape: np.ndarray  # the backend's gradient
    ulp: np.ndarray  # |tape - sym| in ULPs (nan where undefined)
    undefined: np.ndarray  # bool mask
    kinks: list[tuple[float, str]]  # (x, op name)
    formula: str
    backend: str
    dtype: str
    verdict: str


def _zeros(x: np.ndarray, v: np.ndarray) -> list[float]:
    """Where ``v`` (sampled at ``x``) is zero or changes sign, by linear interpolation."""
    found: list[float] = []
    finite = np.isfinite(v)
    for i in range(len(x)):
        if finite[i] and v[i] == 0:
            found.append(float(x[i]))
        elif i + 1 < len(x) and finite[i] and finite[i + 1] and v[i] * v[i + 1] < 0:
            found.append(float(x[i] - v[i] * (x[i + 1] - x[i]) / (v[i + 1] - v[i])))
    return found


def _kinks(ir: Expr, x: np.ndarray, values: dict[int, np.ndarray]) -> list[tuple[float, str]]:
    kinks: list[tuple[float, str]] = []
    n = len(x)
    for node in ir.walk():
        if not isinstance(node, Call) or not node.op.kink or node.op.kind != "elementwise":
            continue
        args = [values[id(a)] for a in node.args]
        if node.op.name == "pow":
            exponent = node.args[1]
            if isinstance(exponent, Const) and float(exponent.value).is_integer() and exponent.value > 0:
                continue  # x**n is smooth
        if node.op.arity == 2 and node.op.name in ("maximum", "minimum"):
            probe = args[0] - args[1]
        else:
            probe = args[0]
        probe = np.asarray(probe, dtype=float)
        if probe.shape != (n,):
            try:
                probe = np.broadcast_to(probe, (n,))
            except ValueError:
                continue
        kinks += [(z, node.op.name) for z in _zeros(x, probe)]
    seen: set = set()
    out = []
    for z, name in sorted(kinks):
        key = (round(z, 12), name)
        if key not in seen:
            seen.add(key)
            out.append((z, name))
    return out


def compute(expr: ExprLike, wrt: str, lo: float, hi: float, at: dict[str, Any] | None = None,
            points: int = 401, backend: Any = "symgrad", dtype: str = "float64") -> PlotData:
    """The numbers behind the picture (no matplotlib needed): one :func:`run_case`, and the kinks.

    Raises :class:`ValueError` with the report's table when the case errors or the backend
    lacks an op (nothing was compared).
    """
    at = dict(at or {})
    if wrt in at:
        raise ValueError(f"{wrt!r} is swept over --range; do not also give it with --at")
    x = np.linspace(float(lo), float(hi), int(points))
    case = make_case(expr, {wrt: x.tolist(), **at}, wrt=[wrt], dtype=dtype, name="plot")
    report = run_case(case, backend=backend)
    if report.status in ("error", "skip"):
        raise ValueError(report.table())
    d = report.gradients[(wrt,)]
    tape = np.zeros_like(x) if d.tape is None else np.broadcast_to(np.asarray(d.tape, dtype=float), x.shape)
    ref = np.broadcast_to(np.asarray(d.reference, dtype=float), x.shape)
    undefined = np.broadcast_to(d.undefined, x.shape)
    ulp = np.where(undefined, np.nan, ulp_distance(tape, ref, dtype))
    f = np.asarray(report.reference_value, dtype=float)
    f = np.broadcast_to(f, x.shape) if f.size in (1, x.size) else np.full(x.shape, np.nan)
    verdict = "PASS" if report else report.summary_line()
    assert case.ir is not None
    kinks = _kinks(case.ir, x, numpy_eval(case.ir, case.make_inputs(), values=True))
    return PlotData(case.expr, wrt, at, x, np.array(f), np.array(ref), np.array(tape), ulp, np.array(undefined),
                    kinks, d.formula, report.backend, dtype, verdict)


def render(data: PlotData, output: str) -> str:
    """Draw ``data`` into ``output`` (PNG, SVG, PDF: by extension); returns the path."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        raise MatplotlibMissing(MISSING) from None

    fig, (ax_f, ax_d, ax_u) = plt.subplots(3, 1, sharex=True, figsize=(8, 8.5), constrained_layout=True)
    x = data.x
    ok = ~data.undefined
    at = ", ".join(f"{k}={v}" for k, v in data.at.items())
    fig.suptitle(f"{data.expr}    d/d{data.wrt}" + (f"    at {at}" if at else "") + f"    [{data.backend}]",
                 fontsize=11)
    ax_f.plot(x, data.f, color="black", lw=1.4, label="f")
    ax_f.set_ylabel("f")
    ax_d.plot(x, np.where(ok, data.sym, np.nan), color="tab:blue", lw=2.2, alpha=0.6,
              label=f"sympy: {data.formula[:60]}")
    ax_d.plot(x, data.tape, color="tab:orange", lw=1.0, ls="--", label=f"tape ({data.backend})")
    ax_d.set_ylabel(f"df/d{data.wrt}")
    ulp = np.where(ok, data.ulp, np.nan)
    ax_u.plot(x, ulp, ".", ms=3, color="tab:red", label="|tape - sympy| in ULPs")
    ax_u.set_yscale("symlog", linthresh=1.0)
    ax_u.set_ylabel(f"ULP error ({data.dtype})")
    ax_u.set_xlabel(data.wrt)
    finite = np.isfinite(ulp)
    top = float(np.nanmax(ulp[finite])) if finite.any() else 0.0
    ax_u.set_ylim(-0.5, max(2.0, 2.0 * top))
    if finite.any():
        ax_u.set_title(f"max {np.nanmax(ulp[finite]):.3g} ULP;  {data.verdict}", fontsize=9, loc="left")
    labelled: set[str] = set()
    for z, name in data.kinks:
        for ax in (ax_f, ax_d, ax_u):
            ax.axvline(z, color="tab:purple", ls=":", lw=1.2,
                       label=f"kink ({name})" if ax is ax_d and name not in labelled else None)
        labelled.add(name)
    if data.undefined.any():
        ux = x[data.undefined]
        for ax in (ax_d, ax_u):
            ax.plot(ux, np.zeros_like(ux), "x", color="crimson", ms=7, mew=1.5,
                    label="undefined" if ax is ax_d else None)
    for ax in (ax_f, ax_d, ax_u):
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output
