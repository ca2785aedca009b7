"""Verdicts the element comparison alone cannot give.

* **Nothing compared is not a pass.** A comparison with no defined element (every reference
  element nan/zoo) checked nothing; a forward value that is non-finite everywhere leaves only
  infinities to compare.  :func:`unchecked` names such comparisons and why, cheaply: a nan
  input, or the first op of the expression (innermost first) whose numpy forward turns
  defined arguments into nan (outside its domain) or finite ones into inf.
* **Failures explain themselves.** :func:`grad_output_source` says where a non-trivial
  ``grad_output`` came from, so "tape 2.0, reference -2.78" does not read like a broken reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from symgrad.checking.compare import Comparison
from symgrad.ir.expr import Call, Expr, numpy_eval, to_source, variables

__all__ = ["grad_output_source", "note_grad_output", "undefined_cause", "unchecked"]


def undefined_cause(ir: Expr, inputs: dict[str, np.ndarray]) -> str:
    """Why the expression is undefined (or infinite) at its inputs, in a few words; "" when not found."""
    nan_inputs = [n for n in variables(ir) if np.isnan(inputs[n]).any()]
    if nan_inputs:
        return f"input {nan_inputs[0]} is nan"
    try:
        values = numpy_eval(ir, inputs, values=True)
    except Exception:
        return ""
    for node in ir.walk():  # children first: the innermost op that makes a nan or an infinity
        if not isinstance(node, Call):
            continue
        out = np.asarray(values[id(node)], dtype=np.float64)
        args = [np.asarray(values[id(a)], dtype=np.float64) for a in node.args]
        if np.isnan(out).any() and not any(np.isnan(a).any() for a in args):
            text = node.op.domain_text
            return f"outside the domain of {node.op.name}" + (f" ({text})" if text else "")
        if np.isinf(out).any() and all(np.isfinite(a).all() for a in args):
            return f"`{to_source(node)}` is infinite"
    return ""


def unchecked(comparisons: Sequence[Comparison], ir: Expr, inputs: dict[str, np.ndarray],
              forward: Any) -> str:
    """The reason the case checked nothing (or only infinities) somewhere; "" when everything was compared.

    ``forward`` is the reference's forward value.  A comparison with no defined element, or a
    forward that is finite nowhere, makes the case an error (a failure elsewhere stays a failure).
    """
    empty = [c for c in comparisons if c.defined == 0]
    if empty:
        sizes = {c.size for c in empty}
        count = "no elements" if sizes == {0} else (
            _all(sizes.pop()) + " undefined" if len(sizes) == 1 else "every element undefined")
        cause = undefined_cause(ir, inputs) or "the symbolic derivative is nan/zoo there"
        return f"nothing compared: {count} in {', '.join(c.name for c in empty)}: {cause}"
    kinked = [c for c in comparisons if c.at_kink and c.defined == c.at_kink]
    if kinked:
        return (f"nothing compared: every defined element at a kink in {', '.join(c.name for c in kinked)} "
                f"(rounding decides the branch there: the float forward and the exact value take different "
                f"sides); choose inputs away from the kink")
    value = np.asarray(forward, dtype=np.float64)
    if value.size and not np.isfinite(value).any():
        cause = undefined_cause(ir, inputs)
        return (f"the forward value is non-finite at {_all(value.size)} (only infinities "
                f"compared){': ' + cause if cause else ''}; choose inputs where it is finite")
    return ""


def _all(n: int) -> str:
    return "the only element" if n == 1 else f"all {n} elements"


def grad_output_source(raw: Any, seed: int) -> str:
    """How a case's ``grad_output`` was made: ``literal``, ``normal (seed 0)``, ``random (seed 3)``."""
    if isinstance(raw, str):
        try:
            float(raw)
        except ValueError:
            return f"{raw} (seed {seed})"
    if isinstance(raw, Mapping):
        kind = next((k for k in raw if k != "shape"), "generated")
        return f"{kind} (seed {seed})"
    return "literal"


def note_grad_output(c: Comparison, grad_output: np.ndarray, source: str) -> None:
    """Record on ``c`` the ``grad_output`` used, when it is not all ones: its source and its value
    at the worst element (where the gradient's element has one ``g`` of its own)."""
    g = np.asarray(grad_output)
    if g.size == 0 or np.all(g == 1):
        return
    c.grad_output = source
    if c.worst_index is not None and g.shape == c.shape:
        c.grad_output_value = float(g[c.worst_index])
    elif g.size and np.all(g == g.flat[0]):
        c.grad_output_value = float(g.flat[0])
