"""The library API: ``check``, ``assert_gradients`` and friends, for assertions in users' tests."""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

from .cases import KEYS, Case, case_from_dict
from .expr import to_source, trace
from .report import Report
from .runner import Options, run_case

ExprLike = Union[str, Callable[..., Any]]

__all__ = ["GradientMismatch", "assert_gradients", "check", "make_case"]


class GradientMismatch(AssertionError):
    """Raised by :func:`assert_gradients`; its message is the table the CLI prints."""

    def __init__(self, report: Report):
        self.report = report
        super().__init__(report.table())


def make_case(expr: ExprLike, inputs: Optional[dict[str, Any]] = None, **kwargs: Any) -> Case:
    """A validated case from keyword arguments: case keys (``order=2``) and inputs (``a=[2., 3.]``).

    ``expr`` is an expression string or a Python function of symgrad ops, traced once; its
    parameter names are the input names.  Use ``inputs={...}`` for an input named like a case key.
    """
    text = expr if isinstance(expr, str) else to_source(trace(expr))
    keys = {k: v for k, v in kwargs.items() if k in KEYS}
    data: dict[str, Any] = {"name": keys.pop("name", "check"), "expr": text, **keys}
    data["inputs"] = {**{k: v for k, v in kwargs.items() if k not in KEYS}, **(inputs or {})}
    data["inputs"] = {k: _plain(v) for k, v in data["inputs"].items()}
    for key in ("grad_output", "value"):
        if key in data:
            data[key] = _plain(data[key])
    if "expect" in data:
        data["expect"] = {k: v if isinstance(v, str) else _plain(v) for k, v in data["expect"].items()}
    return case_from_dict(data)


def _plain(value: Any) -> Any:
    """numpy arrays and tensors as the nested lists a case file would hold."""
    if hasattr(value, "tolist") and not isinstance(value, (dict, str)):
        return value.tolist()
    return value


def check(expr: ExprLike, *, backend: Any = "symgrad", exact: Optional[bool] = None,
          inputs: Optional[dict[str, Any]] = None, **kwargs: Any) -> Report:
    """Check the gradients of ``expr`` at the given inputs; ``bool(report)`` is the verdict."""
    case = make_case(expr, inputs, **kwargs)
    return run_case(case, options=Options(backend=backend, exact=exact))


def assert_gradients(expr: ExprLike, *, backend: Any = "symgrad", exact: Optional[bool] = None,
                     inputs: Optional[dict[str, Any]] = None, **kwargs: Any) -> Report:
    """Like :func:`check`, but raise :class:`GradientMismatch` (an AssertionError) unless it passes."""
    report = check(expr, backend=backend, exact=exact, inputs=inputs, **kwargs)
    if not report:
        raise GradientMismatch(report)
    return report
