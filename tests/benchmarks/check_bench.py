"""A full check (``symgrad.check``) against ``torch.autograd.gradcheck``, and symgrad alone at 1e6."""

from __future__ import annotations

import time
from typing import Any

import harness
import numpy as np
from tape_bench import EXPR, inputs


def clear_symbolic_caches() -> None:
    """Forget every derivative and lambdified plan: the next check pays for sympy again (cold)."""
    from symgrad.symbolic import compile, engine

    for value in [*vars(engine).values(), *vars(compile).values()]:
        clear = getattr(value, "cache_clear", None)
        if callable(clear):
            clear()


def symgrad_check(A: np.ndarray, B: np.ndarray) -> bool:
    import symgrad

    return bool(symgrad.check(EXPR, a=A, b=B))


def gradcheck_fn() -> Any | None:
    torch = harness.optional("torch")
    if torch is None:
        return None
    torch.set_num_threads(1)

    def f(a: Any, b: Any) -> Any:
        return 3 * a**3 - b**2 + torch.sin(a) * torch.exp(-b) + torch.tanh(a * b) + torch.log(a + b)

    def run(A: np.ndarray, B: np.ndarray) -> bool:
        a = torch.tensor(A, requires_grad=True)
        b = torch.tensor(B, requires_grad=True)
        return bool(torch.autograd.gradcheck(f, (a, b)))

    return run


def run(sizes: list[int], big: int, repeats: int) -> dict[str, Any]:
    gc_run = gradcheck_fn()
    rows = []
    for n in sizes:
        A, B = inputs(n)
        assert symgrad_check(A, B)
        contenders = {"symgrad warm": lambda: symgrad_check(A, B),
                      "symgrad cold": lambda: (clear_symbolic_caches(), symgrad_check(A, B))}
        if gc_run is not None:
            contenders["gradcheck"] = lambda: gc_run(A, B)
        reps = repeats if n < 3000 else max(1, repeats // 2)
        rows.append({"n": n, "seconds": harness.alternate(contenders, reps, warmup=0)})
    A, B = inputs(big)
    clear_symbolic_caches()
    t = time.perf_counter()
    ok = symgrad_check(A, B)
    cold = time.perf_counter() - t
    warm = harness.alternate({"warm": lambda: symgrad_check(A, B)}, repeats, warmup=0)["warm"]
    return {"rows": rows, "big": {"n": big, "cold": cold, "warm": warm, "passed": ok}}


def report(res: dict[str, Any]) -> str:
    lines = [f"full check of {EXPR}: symgrad.check vs torch.autograd.gradcheck (float64, 1 thread)",
             "  warm: the expression's derivative already cached (a suite repeating it); "
             "cold: symbolic caches cleared first (sympy differentiates and lambdifies again)"]
    hdr = ["n", "symgrad warm", "symgrad cold", "gradcheck", "gradcheck/warm", "gradcheck/cold"]
    rows = []
    for r in res["rows"]:
        s = r["seconds"]
        g = s.get("gradcheck")
        rows.append([str(r["n"]), harness.fmt_time(s["symgrad warm"]), harness.fmt_time(s["symgrad cold"]),
                     harness.fmt_time(g) if g is not None else "absent",
                     harness.fmt_ratio(g / s["symgrad warm"] if g else None),
                     harness.fmt_ratio(g / s["symgrad cold"] if g else None)])
    lines.append(harness.table(hdr, rows))
    b = res["big"]
    lines.append(f"symgrad.check alone at n = {b['n']:.0e}: warm {harness.fmt_time(b['warm'])}, "
                 f"cold {harness.fmt_time(b['cold'])} ({'pass' if b['passed'] else 'FAIL'})")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run([100, 1000], 10**6, 3)))
