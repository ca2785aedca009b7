"""A full check (``symgrad.check``) against ``torch.autograd.gradcheck`` (fast mode and default), JAX's
``check_grads`` and numpy's forward alone, interleaved at each n."""

from __future__ import annotations

import os
from typing import Any

import harness
import numpy as np
from tape_bench import EXPR, inputs, make

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


def symgrad_one_thread(A: np.ndarray, B: np.ndarray) -> bool:
    """``symgrad.check`` with the reference after the tape, on the calling thread (as below PARALLEL_SIZE)."""
    from symgrad.checking import runner

    size, runner.PARALLEL_SIZE = runner.PARALLEL_SIZE, 1 << 62
    try:
        return symgrad_check(A, B)
    finally:
        runner.PARALLEL_SIZE = size


def gradcheck_fn(fast_mode: bool, threads: int = 1) -> Any | None:
    """gradcheck with torch on ``threads`` threads (set at each call: the setting is the process's)."""
    torch = harness.optional("torch")
    if torch is None:
        return None

    def f(a: Any, b: Any) -> Any:
        return 3 * a**3 - b**2 + torch.sin(a) * torch.exp(-b) + torch.tanh(a * b) + torch.log(a + b)

    def run(A: np.ndarray, B: np.ndarray) -> bool:
        torch.set_num_threads(threads)
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
    from symgrad.checking.runner import PARALLEL_SIZE

    cores = os.cpu_count() or 1  # the tape section may have set torch to 1 thread already
    fast, default, jx = gradcheck_fn(True), gradcheck_fn(False), jax_fn()
    fast_all = gradcheck_fn(True, cores) if cores > 1 else None
    rows = []
    for n in sizes:
        A, B = inputs(n)
        assert symgrad_check(A, B)
        two_threads = 2 * n >= PARALLEL_SIZE  # symgrad's reference beside the tape (2n input elements)
        contenders = {"symgrad warm": lambda: symgrad_check(A, B),
                      "symgrad cold": lambda: (clear_symbolic_caches(), symgrad_check(A, B)),
                      "numpy forward": lambda: numpy_forward(A, B),
                      # the engine's part of a check: no check can take less (the ceiling of gc fast/sg)
                      "symgrad tape alone": make("symgrad", A, B)}
        if fast is not None:
            contenders["gradcheck fast"] = lambda: fast(A, B)
        if two_threads:  # symgrad uses a second thread: so may torch
            contenders["symgrad one thread"] = lambda: symgrad_one_thread(A, B)
            if fast_all is not None:
                contenders["gradcheck fast, all cores"] = lambda: fast_all(A, B)
        if default is not None and n <= DEFAULT_GRADCHECK_MAX:
            contenders["gradcheck"] = lambda: default(A, B)
        if jx is not None:
            contenders["jax check_grads"] = lambda: jx(A, B)
        reps = repeats if n < 10**6 else max(3, repeats // 2 + 1)
        cpu: dict[str, float] = {}
        threaded = {"jax check_grads", "gradcheck fast, all cores"}
        if two_threads:  # symgrad on two threads is charged the process's CPU
            threaded |= {"symgrad warm", "symgrad cold"}  # "symgrad one thread" is on the calling thread
        seconds = harness.alternate(contenders, reps, warmup=1, cpu=cpu, threaded=threaded)
        rows.append({"n": n, "seconds": seconds, "cpu": cpu, "two threads": two_threads})
    return {"rows": rows}


def report(res: dict[str, Any]) -> str:
    lines = [f"full check of {EXPR}, float64, torch on 1 thread (jax: its own threads, jit-compiled)",
             "  from 2n >= symgrad's PARALLEL_SIZE, symgrad computes the reference on a second thread beside "
             "the tape; 'all cores' is gradcheck's fast mode with torch on its default threads then, 'one thread' "
             "symgrad with the reference after the tape",
             "  symgrad warm: the expression's derivative already cached (a suite repeating it); "
             "cold: symbolic caches cleared first (sympy differentiates and lambdifies again)",
             "  ratios: contender time / symgrad warm time (above 1: symgrad is faster); "
             "sg/numpy: symgrad warm / numpy's forward alone",
             "  gc fast/tape: gradcheck fast / symgrad's tape alone (forward and backward), the most gc fast/sg "
             "could be if the reference, the written forward and the comparisons cost nothing"]
    for key, title in (("seconds", "wall clock"), ("cpu", "CPU time (of the calling thread; jax: of the whole process, its threads too)")):
        lines.append(f"{title}:")
        lines.append(_table(res, key))
    return "\n".join(lines)


def _table(res: dict[str, Any], key: str) -> str:
    hdr = ["n", "symgrad warm", "symgrad cold", "gc fast", "gc fast/sg", "gc fast/tape", "all cores/sg", "one thread/sg",
           "gc default/sg", "jax/sg", "sg/numpy fwd"]
    rows = []
    for r in res["rows"]:
        s = r[key]
        sg = s["symgrad warm"]
        ratio = lambda k: harness.fmt_ratio(s[k] / sg) if k in s else "absent"
        rows.append([f"{r['n']:.0e}", harness.fmt_time(sg), harness.fmt_time(s["symgrad cold"]),
                     harness.fmt_time(s["gradcheck fast"]) if "gradcheck fast" in s else "absent",
                     ratio("gradcheck fast"),
                     harness.fmt_ratio(s["gradcheck fast"] / s["symgrad tape alone"]) if "gradcheck fast" in s else "absent",
                     ratio("gradcheck fast, all cores") if r["two threads"] else "not run",
                     ratio("symgrad one thread") if r["two threads"] else "not run",
                     ratio("gradcheck") if r["n"] <= DEFAULT_GRADCHECK_MAX else "not run",
                     ratio("jax check_grads"), harness.fmt_ratio(sg / s["numpy forward"])])
    return harness.table(hdr, rows)


if __name__ == "__main__":
    print(report(run([1000, 10**5], 3)))
