"""A full check (``symgrad.check``) against ``torch.autograd.gradcheck`` (fast mode and default), JAX's
``check_grads`` and numpy's forward alone, interleaved at each n."""

from __future__ import annotations

from typing import Any

import harness
import numpy as np
from tape_bench import EXPR, inputs

# the default gradcheck builds the dense n x n Jacobian twice, by n finite differences: only at small n
DEFAULT_GRADCHECK_MAX = 3000


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


def gradcheck_fn(fast_mode: bool) -> Any | None:
    torch = harness.optional("torch")
    if torch is None:
        return None
    torch.set_num_threads(1)

    def f(a: Any, b: Any) -> Any:
        return 3 * a**3 - b**2 + torch.sin(a) * torch.exp(-b) + torch.tanh(a * b) + torch.log(a + b)

    def run(A: np.ndarray, B: np.ndarray) -> bool:
        a = torch.tensor(A, requires_grad=True)
        b = torch.tensor(B, requires_grad=True)
        return bool(torch.autograd.gradcheck(f, (a, b), fast_mode=fast_mode))

    return run


def jax_fn() -> Any | None:
    """``jax.test_util.check_grads(f, args, order=1, modes=["rev"])`` in float64 (jit-compiled f)."""
    jax = harness.optional("jax")
    if jax is None:
        return None
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.test_util import check_grads

    @jax.jit
    def f(a: Any, b: Any) -> Any:
        return 3 * a**3 - b**2 + jnp.sin(a) * jnp.exp(-b) + jnp.tanh(a * b) + jnp.log(a + b)

    def run(A: np.ndarray, B: np.ndarray) -> bool:
        check_grads(f, (jnp.asarray(A), jnp.asarray(B)), order=1, modes=["rev"])  # raises on a mismatch
        return True

    return run


def numpy_forward(A: np.ndarray, B: np.ndarray) -> Any:
    return 3 * A**3 - B**2 + np.sin(A) * np.exp(-B) + np.tanh(A * B) + np.log(A + B)


def run(sizes: list[int], repeats: int) -> dict[str, Any]:
    fast, default, jx = gradcheck_fn(True), gradcheck_fn(False), jax_fn()
    rows = []
    for n in sizes:
        A, B = inputs(n)
        assert symgrad_check(A, B)
        contenders = {"symgrad warm": lambda: symgrad_check(A, B),
                      "symgrad cold": lambda: (clear_symbolic_caches(), symgrad_check(A, B)),
                      "numpy forward": lambda: numpy_forward(A, B)}
        if fast is not None:
            contenders["gradcheck fast"] = lambda: fast(A, B)
        if default is not None and n <= DEFAULT_GRADCHECK_MAX:
            contenders["gradcheck"] = lambda: default(A, B)
        if jx is not None:
            contenders["jax check_grads"] = lambda: jx(A, B)
        reps = repeats if n < 10**6 else max(3, repeats // 2 + 1)
        cpu: dict[str, float] = {}
        seconds = harness.alternate(contenders, reps, warmup=1, cpu=cpu, threaded={"jax check_grads"})
        rows.append({"n": n, "seconds": seconds, "cpu": cpu})
    return {"rows": rows}


def report(res: dict[str, Any]) -> str:
    lines = [f"full check of {EXPR}, float64, torch on 1 thread (jax: its own threads, jit-compiled)",
             "  symgrad warm: the expression's derivative already cached (a suite repeating it); "
             "cold: symbolic caches cleared first (sympy differentiates and lambdifies again)",
             "  ratios: contender time / symgrad warm time (above 1: symgrad is faster); "
             "sg/numpy: symgrad warm / numpy's forward alone"]
    for key, title in (("seconds", "wall clock"), ("cpu", "CPU time (of the calling thread; jax: of the whole process, its threads too)")):
        lines.append(f"{title}:")
        lines.append(_table(res, key))
    return "\n".join(lines)


def _table(res: dict[str, Any], key: str) -> str:
    hdr = ["n", "symgrad warm", "symgrad cold", "gc fast", "gc fast/sg", "gc default/sg", "jax/sg", "sg/numpy fwd"]
    rows = []
    for r in res["rows"]:
        s = r[key]
        sg = s["symgrad warm"]
        ratio = lambda k: harness.fmt_ratio(s[k] / sg) if k in s else "absent"
        rows.append([f"{r['n']:.0e}", harness.fmt_time(sg), harness.fmt_time(s["symgrad cold"]),
                     harness.fmt_time(s["gradcheck fast"]) if "gradcheck fast" in s else "absent",
                     ratio("gradcheck fast"),
                     ratio("gradcheck") if r["n"] <= DEFAULT_GRADCHECK_MAX else "not run",
                     ratio("jax check_grads"), harness.fmt_ratio(sg / s["numpy forward"])])
    return harness.table(hdr, rows)


if __name__ == "__main__":
    print(report(run([1000, 10**5], 3)))
