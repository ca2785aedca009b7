"""The one result type shared by the CLI, the library API and the pytest plugin.

A :class:`Report` is the outcome of one case: its status, where it came from,
and one :class:`~symgrad.compare.Comparison` per checked gradient (and per
``value``/``expect`` check). :meth:`Report.table` is the failure text every
shell prints; :meth:`Report.to_dict`/:meth:`Report.from_dict` carry a report
across processes (``-j N``, pytest-xdist) and into JSON output.

A report of a run that kept its arrays (``Options(arrays=True)``, the default of
:func:`~symgrad.checking.runner.run_case`) also holds the numbers behind the
comparisons: the forward value (``value``, ``reference_value``) and, per
derivative, a :class:`Gradient` (formula, reference, tape, undefined mask).
``symgrad grad`` prints them and ``symgrad plot`` draws them.  They stay out of
:meth:`Report.to_dict`: the JSON format is unchanged and does not grow with the
inputs' size.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from symgrad.checking.compare import Comparison
from symgrad.checking.escape import escape

__all__ = ["STATUSES", "Gradient", "Report", "exit_code", "summarize"]

STATUSES = ("pass", "fail", "error", "skip", "xfail", "xpass")

#: statuses whose verdict is "fine" (exit code 0)
_GOOD = frozenset({"pass", "skip", "xfail"})

_FORMULA_WIDTH = 32  # longer formulas are cut in the table and printed in full below it


def _one_line(text: str) -> str:
    text = (text or "").strip()
    return escape(text.splitlines()[0].strip()) if text else ""


def _fmt_err(x: float) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.2e}"


def _fmt_ulp(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf"
    if x < 1e6:
        return str(int(x))
    return f"{x:.1e}"


def _fmt_value(x: float | None, digits: int) -> str:
    if x is None:
        return "-"
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = f"{x:.{digits}g}"
    if text.lstrip("-").isdigit():
        text += ".0"  # read as a float, like repr
    return text


def _fmt_pair(actual: float | None, expected: float | None) -> tuple[str, str]:
    """Both values with 10 significant digits; the shortest round-trip repr when that hides a difference."""
    a, e = _fmt_value(actual, 10), _fmt_value(expected, 10)
    if a == e and actual is not None and expected is not None and actual != expected:  # noqa: SIM102
        if math.isfinite(actual) and math.isfinite(expected):
            a, e = repr(float(actual)), repr(float(expected))
    return a, e


def _fmt_index(index: tuple[int, ...] | None) -> str:
    if index is None:
        return "-"
    return "(" + ", ".join(str(i) for i in index) + ("," if len(index) == 1 else "") + ")"


def _fmt_tol(x: float) -> str:
    return f"{x:g}"


def _fmt_grad_output(c: Comparison) -> str:
    """``random (seed 0): -0.87``: where the VJP's grad_output came from and its value at the worst element."""
    if not c.grad_output:
        return "-"
    value = "" if c.grad_output_value is None else ": " + _fmt_value(c.grad_output_value, 4)
    return c.grad_output + value


def _render(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths[:-1])] + [r[-1]]
        out.append((indent + "  ".join(cells)).rstrip())
    return out


Seq = tuple[str, ...]


@dataclass
class Gradient:
    """One derivative of a checked case, as arrays: what ``symgrad grad`` prints.

    ``wrt`` is ``("a",)`` for d/da, ``("a", "b")`` for d/db of the sum of d/da.
    """

    wrt: Seq
    formula: str  # sympy's derivative, as text
    reference: np.ndarray  # sympy's derivative, evaluated at the inputs
    tape: np.ndarray | None  # the backend's gradient; None when it returned none
    undefined: np.ndarray  # bool: where the reference is undefined (nan/zoo), not compared


@dataclass
class Report:
    """Outcome of one case; ``value``, ``reference_value`` and ``gradients`` are in-process only."""

    name: str
    status: str
    file: str | None = None
    line: int | None = None
    backend: str = "symgrad"
    mode: str = ""
    expr: str = ""
    comparisons: list[Comparison] = field(default_factory=list)
    reason: str = ""
    traceback: str = ""
    duration: float = 0.0
    value: np.ndarray | None = field(default=None, repr=False, compare=False)  # the backend's forward
    reference_value: np.ndarray | None = field(default=None, repr=False, compare=False)  # sympy's
    gradients: dict[Seq, Gradient] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; expected one of {', '.join(STATUSES)}")

    # ------------------------------------------------------------------ verdict

    def __bool__(self) -> bool:
        return self.status in _GOOD

    @property
    def passed(self) -> bool:
        return bool(self)

    @property
    def id(self) -> str:
        return f"{escape(self.file)}::{escape(self.name)}" if self.file else escape(self.name)

    @property
    def location(self) -> str:
        if not self.file:
            return ""
        return f"{escape(self.file)}:{self.line}" if self.line is not None else escape(self.file)

    @property
    def failed_comparisons(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.passed]

    # ------------------------------------------------------------------ text

    def summary_line(self) -> str:
        """One line for progress output, e.g. ``PASS tutorial-Q (elementwise)``."""
        head = f"{self.status.upper()} {self.id}"
        if self.mode:
            head += f" ({self.mode})"
        undef = [f"{c.name} {c.undefined}/{c.size}" for c in self.comparisons if c.undefined]
        undefined = "; undefined " + ", ".join(undef) if undef else ""
        kinks = [f"{c.name} {c.at_kink}/{c.size}" for c in self.comparisons if c.at_kink]
        undefined += "; at a kink (rounding) " + ", ".join(kinks) if kinks else ""
        if self.status in ("pass",):
            return f"{head}: {undefined[2:]}" if undefined else head
        if self.status == "fail" or (self.status in ("xfail", "xpass") and not self.reason):
            failed = self.failed_comparisons
            if failed:
                parts = [f"{c.name} {c.mismatched}/{c.size}" for c in failed]
                return f"{head}: mismatched " + ", ".join(parts) + undefined
        reason = _one_line(self.reason)
        return f"{head}: {reason}" if reason else head

    def table(self, verbose: bool = False) -> str:
        """The failure table: the same text the CLI prints, GradientMismatch carries and pytest shows.

        With ``verbose`` an error's full traceback is appended.
        """
        status = self.status.upper()
        reason = _one_line(self.reason)
        if self.status in ("error", "skip"):
            name = escape(self.name)
            lines = [f"{status} {name}: {reason}" if reason else f"{status} {name}"]
            context = "  ".join(p for p in (self.location, f"[{escape(self.backend)}]" if self.backend else "",
                                            escape(self.expr)) if p)
            if context:
                lines.append(f"  in {context}")
            if verbose and self.traceback:
                lines.append("")
                lines.extend(escape(t) for t in self.traceback.rstrip("\n").splitlines())
            return "\n".join(lines)

        head = [status, escape(self.name)]
        if self.backend:
            head.append(f"[{escape(self.backend)}]")
        if self.location:
            head.append(self.location)
        header = " ".join(head)
        if self.expr:
            header += f"   {escape(self.expr)}"
        if self.mode:
            header += f"   ({self.mode})"
        lines = [header]
        if reason and self.status in ("xfail", "xpass"):
            label = "expected to fail" if self.status == "xfail" else "expected to fail, but passed"
            lines.append(f"  {label}: {reason}")
        elif self.status == "xpass":
            lines.append("  expected to fail, but passed")
        if not self.comparisons:
            return "\n".join(lines)

        cs = self.comparisons
        show_undef = any(c.undefined for c in cs)
        show_kink = any(c.at_kink for c in cs)
        tols = {(c.rtol, c.atol) for c in cs}
        show_tol = len(tols) > 1
        show_g = any(c.grad_output for c in cs)
        long_formulas = [c for c in cs if len(c.formula) > _FORMULA_WIDTH]

        rows = [row + [""] for row in self.comparison_rows()]  # last column is never padded
        lines.extend(_render(rows))
        if not show_tol:
            rtol, atol = next(iter(tols))
            lines.append(
                f"  tolerance: |tape - reference| <= atol + rtol*|reference|"
                f" with rtol={_fmt_tol(rtol)}, atol={_fmt_tol(atol)}"
            )
        if long_formulas:
            lines.append("  formulas:")
            for c in long_formulas:
                lines.append(f"    {c.name}: {c.formula}")
        lines.append("  abs/rel err and ulp at the worst index; max: over all compared elements")
        if show_g:
            lines.append("  grad_output: the gradient= of backward (the VJP's incoming gradient), not ones")
        if show_undef:
            lines.append("  undefined: elements where the symbolic derivative is undefined (nan/zoo); not compared")
        if show_kink:
            lines.append("  at kink: elements where rounding decides a kink, tie or jump (the float forward and the "
                         "exact value take different branches); not compared")
        if reason and self.status == "fail":
            lines.append(f"  {reason}")
        if verbose and self.traceback:
            lines.append("")
            lines.extend(self.traceback.rstrip("\n").splitlines())
        return "\n".join(lines)

    def comparison_rows(self) -> list[list[str]]:
        """The failure table's cells: a header row, then one row per comparison (text, escaped)."""
        cs = self.comparisons
        if not cs:
            return []
        show_undef = any(c.undefined for c in cs)
        show_kink = any(c.at_kink for c in cs)
        show_tol = len({(c.rtol, c.atol) for c in cs}) > 1
        show_note = any(c.note for c in cs)
        header_row = ["input", "formula", "mismatched"]
        if show_undef:
            header_row.append("undefined")
        if show_kink:
            header_row.append("at kink")
        show_g = any(c.grad_output for c in cs)
        header_row += ["worst index", "tape", "reference"] + (["grad_output"] if show_g else [])
        header_row += ["abs err", "rel err", "ulp", "max abs err", "max rel err", "max ulp"]
        if show_tol:
            header_row += ["rtol", "atol"]
        if show_note:
            header_row.append("note")
        rows = [header_row]
        for c in cs:
            formula = c.formula or "-"
            if len(formula) > _FORMULA_WIDTH:
                formula = formula[: _FORMULA_WIDTH - 3] + "..."
            tape, ref = _fmt_pair(c.actual, c.expected)
            row = [c.name, formula, "ok" if c.passed else f"{c.mismatched}/{c.size}"]
            if show_undef:
                row.append(f"{c.undefined}/{c.size}" if c.undefined else "-")
            if show_kink:
                row.append(f"{c.at_kink}/{c.size}" if c.at_kink else "-")
            no_defined = c.worst_index is None
            row += [_fmt_index(c.worst_index), tape, ref] + ([_fmt_grad_output(c)] if show_g else [])
            row += [
                "-" if no_defined else _fmt_err(c.abs_err),
                "-" if no_defined else _fmt_err(c.rel_err),
                "-" if no_defined else _fmt_ulp(c.ulp),
                "-" if no_defined else _fmt_err(c.max_abs),
                "-" if no_defined else _fmt_err(c.max_rel),
                "-" if no_defined else _fmt_ulp(c.max_ulp),
            ]
            if show_tol:
                row += [_fmt_tol(c.rtol), _fmt_tol(c.atol)]
            if show_note:
                row.append(c.note or "")
            rows.append(row)
        return rows

    def __str__(self) -> str:
        return self.table()

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict:
        """JSON-serialisable: every field but the arrays, comparisons via ``Comparison.to_dict``, plus ``id``."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "file": self.file,
            "line": None if self.line is None else int(self.line),
            "backend": self.backend,
            "mode": self.mode,
            "expr": self.expr,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "reason": self.reason,
            "traceback": self.traceback,
            "duration": float(self.duration),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        """Inverse of :meth:`to_dict` (derived keys such as ``id`` are ignored)."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["comparisons"] = [
            c if isinstance(c, Comparison) else Comparison.from_dict(c) for c in kw.get("comparisons", [])
        ]
        return cls(**kw)


def summarize(reports: Iterable[Report], seconds: float) -> str:
    """``"3 passed, 1 failed, 0 errors in 0.42 s"``; xpassed/skipped/xfailed counts appear only when nonzero."""
    counts = Counter(r.status for r in reports)
    parts = [f"{counts['pass']} passed", f"{counts['fail']} failed"]
    for status, word in (("xpass", "xpassed"), ("skip", "skipped"), ("xfail", "xfailed")):
        if counts[status]:
            parts.append(f"{counts[status]} {word}")
    n_err = counts["error"]
    parts.append(f"{n_err} errors")
    return ", ".join(parts) + f" in {seconds:.2f} s"


def exit_code(reports: Iterable[Report], file_errors: int = 0) -> int:
    """0 when everything passed (skips and xfails are fine), 1 on any failure or xpass, 2 on any error."""
    statuses = {r.status for r in reports}
    if file_errors > 0 or "error" in statuses:
        return 2
    if statuses & {"fail", "xpass"}:
        return 1
    return 0
