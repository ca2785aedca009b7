"""The settings of a run (:class:`Options`), apart from the runner so that choosing them loads no sympy.

A suite that runs its cases in worker processes builds its :class:`Options` in the parent, which
never runs a case itself: it reads the case files, hands the cases out and prints the reports.
Keeping this class out of :mod:`symgrad.checking.runner` (which imports the symbolic engine, and
with it sympy) spares that process about a third of a second of imports, on the path to the first
report.  :mod:`symgrad.checking.runner` re-exports it; both names are the same class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from symgrad.ir.limits import DEFAULT, Limits

if TYPE_CHECKING:
    from symgrad.backends.base import Backend

__all__ = ["Options"]


@dataclass(frozen=True)
class Options:
    """Settings a whole run applies to every case (CLI flags, API keywords, pytest options)."""

    backend: str | Backend = "symgrad"
    exact: bool | None = None  # None: as the case says (`reference:`)
    rtol: float | None = None  # None: the case's, else the dtype's default
    atol: float | None = None
    dtype: str | None = None
    device: str | None = None  # None: as the case says (`device:`, default cpu)
    limits: Limits = DEFAULT
    arrays: bool = True  # keep the arrays on the Report (grad, plot, the API); suites turn it off
    ad: str | None = None  # reverse | forward | both: replaces each case's `mode_ad` (CLI --ad); None: the case's
