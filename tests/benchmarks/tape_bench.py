"""Tape forward+backward against HIPS autograd, PyTorch (1 thread), numpy's forward alone and the same
gradients written by hand in numpy (the floor of a tape that computes in numpy, op by op).

Run through ``run.py``; ``python tape_bench.py --mem CONTENDER N`` is the memory
worker it starts, one fresh process per measurement.  ``python tape_bench.py --cpu``
times with the process's CPU time instead of the wall clock: on a machine shared with
other work, the wall clock counts the time the scheduler gives to others.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import harness
import numpy as np

EXPR = "3*a**3 - b**2 + sin(a)*exp(-b) + tanh(a*b) + log(a+b)"
CONTENDERS = ("symgrad", "autograd", "torch", "numpy", "by hand")


def inputs(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(0.5, 2.0, n), rng.uniform(0.5, 2.0, n)


def make(name: str, A: np.ndarray, B: np.ndarray) -> Callable[[], Any] | None:
    """One forward+backward of EXPR (summed) from ready leaves; returns the gradients as numpy arrays.

    Leaves are built once, outside the timing: ``symgrad.tensor`` and ``torch.from_numpy``;
    HIPS autograd takes the arrays as they are.  ``.grad`` is reset before each pass.
    """
    if name == "symgrad":
        import symgrad as sg

        a, b = sg.tensor(A, requires_grad=True), sg.tensor(B, requires_grad=True)

        def run() -> Any:
            a.grad = b.grad = None
            y = 3 * a**3 - b**2 + sg.sin(a) * sg.exp(-b) + sg.tanh(a * b) + sg.log(a + b)
            y.sum().backward()
            return a.grad._data, b.grad._data

        return run
    if name == "autograd":
        ag = harness.optional("autograd")
        if ag is None:
            return None
        import autograd.numpy as anp

        def f(a: Any, b: Any) -> Any:
            return anp.sum(3 * a**3 - b**2 + anp.sin(a) * anp.exp(-b) + anp.tanh(a * b) + anp.log(a + b))

        grad = ag.grad(f, (0, 1))
        return lambda: grad(A, B)
    if name == "torch":
        torch = harness.optional("torch")
        if torch is None:
            return None
        torch.set_num_threads(1)
        a, b = torch.from_numpy(A).requires_grad_(), torch.from_numpy(B).requires_grad_()

        def run() -> Any:
            a.grad = b.grad = None
            y = 3 * a**3 - b**2 + torch.sin(a) * torch.exp(-b) + torch.tanh(a * b) + torch.log(a + b)
            y.sum().backward()
            return a.grad.numpy(), b.grad.numpy()

        return run
    if name == "numpy":  # the forward alone: the floor no tape can go under
        return lambda: 3 * A**3 - B**2 + np.sin(A) * np.exp(-B) + np.tanh(A * B) + np.log(A + B)
    if name == "by hand":  # forward, then both gradients in numpy as a person would write them
        return lambda: _by_hand(A, B)
    raise ValueError(name)


def _by_hand(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """EXPR's value and gradients in plain numpy, sharing what can be shared: the cos of sin's derivative
    is the one transcendental the backward cannot avoid."""
    a2, s, e, t, ab = A * A, np.sin(A), np.exp(-B), np.tanh(A * B), A + B
    (3 * a2 * A - B * B + s * e + t + np.log(ab)).sum()
    r, dt = 1.0 / ab, 1.0 - t * t
    return 9 * a2 + np.cos(A) * e + dt * B + r, -2 * B - s * e + dt * A + r


def agree(n: int = 1000) -> dict[str, bool]:
    A, B = inputs(n)
    ref = make("symgrad", A, B)()
    out = {}
    for name in ("autograd", "torch", "by hand"):
        fn = make(name, A, B)
        if fn is not None:
            got = fn()
            out[name] = all(np.allclose(r, g, rtol=1e-12, atol=0) for r, g in zip(ref, got))
    return out


def time_sizes(sizes: list[int], repeats: int, cpu: bool = False) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        A, B = inputs(n)
        fns = {name: make(name, A, B) for name in CONTENDERS}
        present = {k: v for k, v in fns.items() if v is not None}
        reps = repeats if n < 10**7 else max(3, repeats // 2)
        med = _cpu_alternate(present, reps) if cpu else harness.alternate(present, reps)
        rows.append({"n": n, "seconds": {k: med.get(k) for k in CONTENDERS}})
        del fns, present
    return rows


def _cpu_alternate(contenders: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median CPU seconds of this process per contender (torch runs on 1 thread), interleaved, after a warm-up."""
    import statistics
    import time

    for fn in contenders.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            start = time.process_time()
            fn()
            times[name].append(time.process_time() - start)
    return {name: statistics.median(v) for name, v in times.items()}


# ---------------------------------------------------------------- memory


def memory_worker(name: str, n: int) -> dict[str, Any]:
    """Peak memory of one forward+backward, above what the inputs and leaves already hold."""
    A, B = inputs(n)
    small = make(name, *inputs(1000))
    if small is None:
        return {"absent": True}
    small()  # imports, lazy initialisation; not at full size, whose freed pages would stay resident
    fn = make(name, A, B)
    result: dict[str, Any] = {}
    harness.reset_peak_rss()
    base = harness.rss_now()
    out = fn()
    result["rss"] = harness.rss_peak() - base
    result["rss_method"] = "VmHWM reset" if harness.reset_peak_rss() else "ru_maxrss"
    del out
    if name != "torch":  # tracemalloc sees numpy's allocations, not torch's allocator
        tracemalloc.start()
        out = fn()
        result["tracemalloc"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result


def memory(sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        row: dict[str, Any] = {"n": n}
        for name in ("symgrad", "autograd", "torch"):
            proc = subprocess.run([harness.python(), __file__, "--mem", name, str(n)], capture_output=True,
                                  text=True, cwd=harness.HERE)
            try:
                row[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                row[name] = {"error": proc.stderr.strip()[-300:]}
        rows.append(row)
    return rows


def report(times: list[dict[str, Any]], mem: list[dict[str, Any]]) -> str:
    lines = [f"tape forward+backward of {EXPR} (summed), float64, median of interleaved repeats; "
             "by hand: the same gradients in plain numpy"]
    hdr = ["n", "symgrad", "autograd", "torch 1 thread", "numpy fwd", "by hand", "sg/autograd", "sg/torch",
           "sg/numpy fwd", "sg/by hand"]
    rows = []
    for r in times:
        s = r["seconds"]
        ratio = lambda k: None if s.get(k) is None else s["symgrad"] / s[k]
        rows.append([f"{r['n']:.0e}", *(harness.fmt_time(s[k]) if s.get(k) is not None else "absent" for k in CONTENDERS),
                     harness.fmt_ratio(ratio("autograd")), harness.fmt_ratio(ratio("torch")),
                     harness.fmt_ratio(ratio("numpy")), harness.fmt_ratio(ratio("by hand"))])
    lines.append(harness.table(hdr, rows))
    if mem:
        lines.append("")
        lines.append("peak memory of one forward+backward above inputs and leaves, in arrays of n float64 "
                     "(RSS: VmHWM after resetting it, each contender in a fresh process; "
                     "tracemalloc: numpy's allocations, numpy-based contenders only)")
        hdr = ["n", "symgrad RSS", "autograd RSS", "torch RSS", "symgrad tracemalloc", "autograd tracemalloc",
               "sg/torch RSS"]
        rows = []
        for r in mem:
            arrays = lambda k, f: (f"{r[k][f] / (8 * r['n']):.1f}" if f in r.get(k, {}) else "absent")
            sg, t = r["symgrad"].get("rss"), r["torch"].get("rss")
            rows.append([f"{r['n']:.0e}", arrays("symgrad", "rss"), arrays("autograd", "rss"), arrays("torch", "rss"),
                         arrays("symgrad", "tracemalloc"), arrays("autograd", "tracemalloc"),
                         harness.fmt_ratio(sg / t if sg and t else None)])
        lines.append(harness.table(hdr, rows))
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--mem":
        print(json.dumps(memory_worker(sys.argv[2], int(float(sys.argv[3])))))
    else:
        sizes = [10**4, 10**5, 10**6]
        print(report(time_sizes(sizes, 5, cpu="--cpu" in sys.argv), memory([10**6])))
