"""Benchmark: the smallest relative VJP error the shipped cases catch, and what gradcheck catches.

Plants ``g * cos(x) * (1 + eps)`` as ``sin``'s VJP on symgrad's tape (for ``sin`` wherever a
case's expression uses it, as ``symgrad mutate`` plants its mutants) and runs every shipped
case under ``cases/`` that uses ``sin``, with every case's dtype overridden to float64, then to
float32.  An ``eps`` is *caught* when a case that passes on the correct tape fails or errors.
``eps`` goes down by decades until nothing is caught, then is bisected (in log space) between
the last decade caught and the first missed; the smallest ``eps`` caught is printed.

The same is done for ``torch.autograd.gradcheck`` (its default tolerances, float64: gradcheck
wants double precision) on a ``torch.autograd.Function`` with the same backward, at 64 points
drawn uniformly from [-3, 3] and at five points of (0, 3).

    PYTHONPATH=$PWD python tests/benchmarks/vjp_sensitivity.py
    PYTHONPATH=$PWD python tests/benchmarks/vjp_sensitivity.py --steps 12   # finer bisection

Not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from symgrad.backends.symgrad_tape import SymgradBackend
from symgrad.checking.cases import collect
from symgrad.checking.runner import run_case
from symgrad.ir import ops
from symgrad.ir.ops import Op
from symgrad.mutation import ops_of

ROOT = Path(__file__).resolve().parents[2]
BAD = ("fail", "error", "xpass")


class ScaledSin(SymgradBackend):
    """symgrad's tape with sin's VJP times (1 + eps)."""

    def __init__(self, eps: float):
        vjp = ops.sin.vjps[0]
        assert vjp is not None
        scale = 1.0 + eps
        self._sin = dataclasses.replace(ops.sin, vjps=(lambda g, ans, x: vjp(g, ans, x) * scale,))

    def apply(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        return super().apply(self._sin if op is ops.sin else op, args, params)


def smallest_caught(caught: Callable[[float], bool], start: float = 1e-1, floor: float = 1e-12,
                    steps: int = 8) -> float | None:
    """The smallest eps for which ``caught(eps)`` holds: decades down from ``start``, then bisection."""
    if not caught(start):
        return None
    hit = start
    miss = None
    eps = start / 10
    while eps >= floor:
        if caught(eps):
            hit = eps
            eps /= 10
        else:
            miss = eps
            break
    if miss is None:
        return hit
    for _ in range(steps):  # invariant: hit caught, miss not (the two a decade apart, then closer)
        mid = math.sqrt(hit * miss)
        if caught(mid):
            hit = mid
        else:
            miss = mid
    return hit


def sin_cases() -> list[Any]:
    cases, errors = collect([str(ROOT / "cases")])
    assert not errors, [str(e) for e in errors]
    return [c for c in cases if c.ir is not None and "sin" in ops_of(c) and not c.skip]


def symgrad_catcher(cases: list[Any], dtype: str) -> tuple[Callable[[float], bool], list[Any]]:
    good = [c for c in cases if run_case(c, dtype=dtype, arrays=False).status == ("xfail" if c.xfail else "pass")]
    good = [c for c in good if not c.xfail]

    def caught(eps: float) -> bool:
        backend = ScaledSin(eps)
        return any(run_case(c, backend=backend, dtype=dtype, arrays=False).status in BAD for c in good)

    return caught, good


def gradcheck_catcher(points: np.ndarray) -> Callable[[float], bool]:
    import torch

    def caught(eps: float) -> bool:
        class Sin(torch.autograd.Function):
            @staticmethod
            def forward(ctx: Any, x: Any) -> Any:
                ctx.save_for_backward(x)
                return torch.sin(x)

            @staticmethod
            def backward(ctx: Any, g: Any) -> Any:
                (x,) = ctx.saved_tensors
                return g * torch.cos(x) * (1 + eps)

        x = torch.tensor(points, dtype=torch.float64, requires_grad=True)
        return not torch.autograd.gradcheck(Sin.apply, (x,), raise_exception=False)

    return caught


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="bisection steps after the decade scan")
    args = parser.parse_args(argv)
    cases = sin_cases()
    print(f"{len(cases)} shipped cases use sin")
    for dtype in ("float64", "float32"):
        start = time.perf_counter()
        caught, good = symgrad_catcher(cases, dtype)
        eps = smallest_caught(caught, steps=args.steps)
        shown = "nothing caught" if eps is None else f"{eps:.2g}"
        print(f"symgrad, shipped cases, {dtype} ({len(good)} pass unmutated): smallest relative VJP error "
              f"caught {shown}   [{time.perf_counter() - start:.1f} s]", flush=True)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch not installed: gradcheck skipped")
        return 0
    rng = np.random.default_rng(0)
    for label, points in (("64 points uniform in [-3, 3]", rng.uniform(-3, 3, 64)),
                          ("x = 0.5, 1, 1.5, 2, 2.5", np.array([0.5, 1.0, 1.5, 2.0, 2.5]))):
        eps = smallest_caught(gradcheck_catcher(points), steps=args.steps)
        shown = "nothing caught" if eps is None else f"{eps:.2g}"
        print(f"torch.autograd.gradcheck (defaults, float64), {label}: smallest relative VJP error caught {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
