"""Expanded mode (one sympy symbol per array element) at growing sizes: how its cost grows."""

from __future__ import annotations

import math
import time
from typing import Any

import harness
import numpy as np
from check_bench import clear_symbolic_caches


def softmax_ce(n: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    y = np.zeros(n)
    y[n // 3] = 1.0
    return dict(expr="logsumexp(z) - sum(y * z)", z=rng.normal(size=n), y=y, wrt=["z"])


def matmul(n: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return dict(expr="sum(tanh(A @ B))", A=rng.normal(0, 0.5, (n, n)), B=rng.normal(0, 0.5, (n, n)))


def measure(make: Any, n: int) -> tuple[float, float, str]:
    import symgrad

    kwargs = make(n)
    expr = kwargs.pop("expr")
    clear_symbolic_caches()
    t = time.perf_counter()
    report = symgrad.check(expr, **kwargs)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    symgrad.check(expr, **kwargs)
    warm = time.perf_counter() - t
    return cold, warm, f"{report.status}/{report.mode}"


def run(budget: float, sizes: dict[str, list[int]]) -> dict[str, list[dict[str, Any]]]:
    """Each family at growing sizes; a family stops once one size took longer than ``budget`` seconds."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, make in (("softmax cross-entropy, z of n", softmax_ce), ("sum(tanh(A @ B)), n x n", matmul)):
        rows = []
        for n in sizes["softmax" if make is softmax_ce else "matmul"]:
            cold, warm, status = measure(make, n)
            rows.append({"n": n, "cold": cold, "warm": warm, "status": status})
            if cold > budget:
                break
        out[name] = rows
    return out


def report(res: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["expanded mode: symgrad.check cold (symbolic caches cleared) and warm, and the growth exponent "
             "k of the cold time (time ~ n^k between consecutive sizes)"]
    for name, rows in res.items():
        table = []
        for i, r in enumerate(rows):
            k = "" if i == 0 else f"{math.log(r['cold'] / rows[i - 1]['cold']) / math.log(r['n'] / rows[i - 1]['n']):.1f}"
            table.append([str(r["n"]), harness.fmt_time(r["cold"]), harness.fmt_time(r["warm"]), k, r["status"]])
        lines.append(name)
        lines.append(harness.table(["n", "cold", "warm", "k", "status"], table))
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run(10.0, {"softmax": [4, 8, 16, 32], "matmul": [2, 3, 4, 6]})))
