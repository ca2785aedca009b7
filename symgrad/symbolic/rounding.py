"""A first-order bound on the rounding error of an ideal engine in a narrow float format.

An engine computes the expression as written, node by node, and rounds every value: model that as
``v * (1 + e)`` with ``|e| <= eps`` (half an ulp for a correctly rounded operation, a whole one for a
transcendental function of a good libm), with one ``e`` for each use of a value by an op (each
argument that is not a constant) and one for the result.  Differentiating the perturbed expression
puts each use's factor on its own term of the chain rule, which models the rounding of the backward
pass's terms too: the two terms of ``d/dx expm1(x)/x`` at x = 1e-3 are ~1000 each and cancel to 0.5,
so one rounding of either moves the sum by ~1e-4 of itself.  Per use, not per node: a shared value
then counts once per consumer, which only makes the bound larger.
:func:`symgrad.symbolic.forms.to_sympy` builds the perturbed form (its ``rounding`` argument); the
engine differentiates it as it differentiates the reference.

To first order the error is the sum over the nodes of each one's effect, and the worst case puts
every ``e_k`` at ``+-eps``: :func:`first_order_bound` moves one ``e_k`` at a time and adds the larger
change of the two signs.  Only a first-order response counts, however large it is (``1 - tanh(t)**2``
at t = 9, where one float32 rounding of tanh moves it several times over): the two changes have
opposite signs, sizes within a factor of ``_SMOOTH`` of each other, and half the error makes about
half the change.  A change that is not finite, one-sided, or as large at half the error is a branch
crossed (a kink, tie or jump within one rounding: a tie's half flips to 0 or 1 at any error), not
conditioning: it counts 0, as the kink marks classify those elements.  The sampled spread
(``_spread`` in the engine) sees the inputs' rounding; this bound sees the intermediates', which
sympy's rewritten formulas no longer hold (it folds ``1 - (0.9*s + 0.05)`` to ``0.95 - 0.9*s``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from symgrad.symbolic.forms import as_real

__all__ = ["first_order_bound", "first_order_bound_at_point"]


_SMOOTH = 4.0  # the two changes of a smooth response: opposite signs, sizes within this factor


def first_order_bound(formulas: Callable[..., Sequence[Any]], args: Sequence[np.ndarray], n_errors: int,
                      shape: Any, eps: float) -> list[np.ndarray]:
    """Per output of ``formulas(*args, *errors)`` and per element: the sum over the ``n_errors`` rounding
    errors of the largest change one of them makes at ``+eps`` or ``-eps`` (the others at 0)."""

    def at(errors: list[float]) -> list[np.ndarray]:
        got = formulas(*args, *errors)
        return [np.broadcast_to(as_real(v), shape) if shape is not None else np.asarray(as_real(v)) for v in got]

    with np.errstate(all="ignore"):
        base = at([0.0] * n_errors)
        total = [np.zeros(np.shape(b)) for b in base]
        for k in range(n_errors):
            up, down, half = (at([sign * eps if j == k else 0.0 for j in range(n_errors)])
                              for sign in (1.0, -1.0, 0.5))
            for i, (u, d, h, b) in enumerate(zip(up, down, half, base)):
                total[i] = total[i] + _first_order(u - b, d - b, h - b)
    return total


def first_order_bound_at_point(formulas: Callable[..., Sequence[Any]], n_errors: int, eps: float) -> list[float]:
    """As :func:`first_order_bound` for scalar formulas of the errors alone (expanded mode: the inputs are
    bound already): every perturbation in one call, each error an array with one value per perturbation
    (the base, then ``+eps``, ``-eps`` and ``eps/2`` for each error in turn); one call per perturbation
    when the formulas do not broadcast so."""
    rows = np.zeros((1 + 3 * n_errors, n_errors))
    for k in range(n_errors):
        rows[1 + 3 * k : 4 + 3 * k, k] = (eps, -eps, 0.5 * eps)
    with np.errstate(all="ignore"):
        try:
            got = [np.broadcast_to(as_real(v), (len(rows),)) for v in formulas(*rows.T)]
        except (TypeError, ValueError):  # a formula that takes scalars only
            return [float(t) for t in first_order_bound(formulas, [], n_errors, None, eps)]
        return [float(np.sum(_first_order(v[1::3] - v[0], v[2::3] - v[0], v[3::3] - v[0]))) for v in got]


def _first_order(du: np.ndarray, dd: np.ndarray, dh: np.ndarray) -> np.ndarray:
    """The size of the change one error makes, from its changes at ``+eps``, ``-eps`` and ``eps/2``: the
    larger of the first two where the response is first-order (smooth), 0 where it is not (a branch)."""
    dh = np.abs(dh)
    big, small = np.maximum(np.abs(du), np.abs(dd)), np.minimum(np.abs(du), np.abs(dd))
    linear = (dh >= 0.25 * np.abs(du)) & (dh <= 0.75 * np.abs(du))
    smooth = np.isfinite(big) & (du * dd < 0) & (big <= _SMOOTH * small) & linear
    return np.where(smooth, big, 0.0)
