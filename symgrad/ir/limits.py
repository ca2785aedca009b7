"""Size limits that keep untrusted expressions and case files from exhausting the machine.

Every limit is checked before sympy or numpy start work; each error names the
limit, and every limit can be raised (``Limits(max_nodes=...)``, the CLI's
``--limit NAME=VALUE``) by a user who needs more.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Limits:
    max_length: int = 10_000  # characters of one expression
    max_depth: int = 64  # nesting depth of the expression tree
    max_nodes: int = 2_000  # nodes of the expression tree
    max_int_digits: int = 30  # digits of one integer literal
    max_const_digits: int = 300  # decimal digits of a constant subexpression's value (9**9**9**9)
    max_elements: int = 50_000_000  # elements of one input array (and of the broadcast result)
    max_ndim: int = 8  # dimensions of one input array
    max_symbols: int = 4_096  # scalar symbols in expanded mode
    max_file_bytes: int = 1_000_000  # size of one case file (PyYAML reads about 1 MB in 6 s)
    max_yaml_depth: int = 100  # nesting of a case file's YAML
    max_derivatives: int = 10_000  # derivative sequences of one case, orders 1..k (len(wrt)**k grows fast)

    def with_overrides(self, **values: Any) -> Limits:
        known = {f.name for f in fields(self)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown limit(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        return replace(self, **{k: int(v) for k, v in values.items()})


DEFAULT = Limits()


class LimitExceeded(ValueError):
    """An input was refused because it exceeds a named limit."""

    def __init__(self, limit: str, value: Any, maximum: Any, what: str = ""):
        self.limit, self.value, self.maximum = limit, value, maximum
        detail = f"{what}: " if what else ""
        super().__init__(f"{detail}{value} exceeds the limit {limit}={maximum} (raise it with --limit {limit}=N)")


def check_derivatives(sizes: list[int], order: int, limits: Limits = DEFAULT) -> None:
    """Refuse a case whose derivative sequences (orders 1..``order`` over inputs of ``sizes``
    elements) are too many, or hold too many elements in all, before any is built."""
    n = len(sizes)
    count = sum(n ** j for j in range(1, order + 1))
    if count > limits.max_derivatives:
        raise LimitExceeded("max_derivatives", count, limits.max_derivatives,
                            f"derivative sequences of orders 1..{order} over {n} inputs")
    elements = sum(n ** (j - 1) for j in range(1, order + 1)) * sum(sizes)
    if elements > limits.max_elements:
        raise LimitExceeded("max_elements", elements, limits.max_elements,
                            f"elements of all derivatives of orders 1..{order}")
