"""Issue 15's speed figures: realistic ops of the expression language, each checked at order 1 from a
cold process, against ``torch.autograd.gradcheck`` on the same function (also from a cold process).

    PYTHONPATH=$PWD python tests/benchmarks/language_bench.py [--repeats 3]

Per benchmark, each contender runs in a fresh ``python`` process (``--child``): *wall* is that
process's whole run (interpreter, imports, the check), *check* the check alone, timed inside it (the
first check of the process: symgrad's caches cold), *cpu* that check's CPU time (the figure to read on a
loaded machine, where wall time measures the load).  Ratios are symgrad / gradcheck; the issue's
target is a cold symgrad check under 2 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
# "cold" means compiling the reference: the disk cache of compiled derivatives would hide it
os.environ.setdefault("SYMGRAD_CACHE", "0")


def _inputs(name: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(15)
    if name == "layer_norm":
        return {"x": rng.normal(size=(8, 64)), "w": rng.uniform(0.5, 1.5, 64), "b": rng.normal(size=64)}
    if name == "softmax_xent":
        t = np.zeros((32, 10))
        t[np.arange(32), rng.integers(0, 10, 32)] = 1.0
        return {"z": rng.normal(size=(32, 10)), "t": t}
    if name == "einsum_bmm":
        return {"a": rng.normal(size=(2, 4, 4)), "b": rng.normal(size=(2, 4, 4))}
    # det, inv: a well-conditioned 4x4
    return {"a": rng.normal(size=(4, 4)) + 4.0 * np.eye(4)}


# name -> (symgrad expression, wrt, torch function of the wrt tensors and the constants)
BENCHES: dict[str, tuple[str, list[str]]] = {
    "layer_norm": ("(x - mean(x, axis=-1, keepdims=True)) / sqrt(var(x, axis=-1, keepdims=True) + 1e-5) * w + b",
                   ["x", "w", "b"]),
    "softmax_xent": ("-sum(t * log_softmax(z, axis=-1)) / 32", ["z"]),
    "einsum_bmm": ('einsum("bij,bjk->bik", a, b)', ["a", "b"]),
    "det": ("det(a)", ["a"]),
    "inv": ("inv(a)", ["a"]),
}


def _torch_fn(name: str, consts: dict[str, Any]) -> Callable[..., Any]:
    import torch

    if name == "layer_norm":
        return lambda x, w, b: (x - x.mean(-1, keepdim=True)) / torch.sqrt(
            x.var(-1, unbiased=False, keepdim=True) + 1e-5) * w + b
    if name == "softmax_xent":
        return lambda z: -(consts["t"] * torch.log_softmax(z, dim=-1)).sum() / 32
    if name == "einsum_bmm":
        return lambda a, b: torch.einsum("bij,bjk->bik", a, b)
    return torch.linalg.det if name == "det" else torch.linalg.inv


def child(name: str, engine: str) -> None:
    """Run one check in this (fresh) process; print the seconds it took and its verdict as JSON."""
    expr, wrt = BENCHES[name]
    inputs = _inputs(name)
    if engine == "symgrad":
        import symgrad

        t, c = time.perf_counter(), time.process_time()
        ok = bool(symgrad.check(expr, inputs=inputs, wrt=wrt))
    else:
        import torch

        torch.set_num_threads(1)
        consts = {k: torch.tensor(v) for k, v in inputs.items() if k not in wrt}
        fn = _torch_fn(name, consts)
        t, c = time.perf_counter(), time.process_time()
        leaves = [torch.tensor(inputs[k], requires_grad=True) for k in wrt]
        ok = bool(torch.autograd.gradcheck(fn, tuple(leaves)))
    print(json.dumps({"check": time.perf_counter() - t, "cpu": time.process_time() - c, "ok": ok}))


def _cold(name: str, engine: str, timeout: float) -> tuple[float, float, float, bool]:
    """(wall seconds, check seconds, check CPU seconds, verdict) of one fresh process; inf seconds past
    ``timeout``."""
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", os.getcwd())}
    t = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, os.path.join(HERE, "language_bench.py"), "--child", name, engine],
                             capture_output=True, text=True, env=env, check=True, timeout=timeout).stdout
    except subprocess.TimeoutExpired:
        return math.inf, math.inf, math.inf, False
    wall = time.perf_counter() - t
    got = json.loads(out.strip().splitlines()[-1])
    return wall, got["check"], got["cpu"], got["ok"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per process (default 300)")
    parser.add_argument("--only", nargs="*", choices=list(BENCHES), help="run these benchmarks only")
    parser.add_argument("--child", nargs=2, metavar=("NAME", "ENGINE"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print(f"{'benchmark':14} {'symgrad wall':>12} {'check':>7} {'cpu':>6} {'gradcheck wall':>14} {'check':>7} "
          f"{'wall ratio':>10} {'check ratio':>11}")
    for name in args.only or BENCHES:
        runs: dict[str, list[tuple[float, float, float, bool]]] = {"symgrad": [], "gradcheck": []}
        for _ in range(args.repeats):
            for engine in runs:  # interleaved: machine drift hits both alike
                runs[engine].append(_cold(name, engine, args.timeout))
        med = {e: (*(statistics.median(r[i] for r in v) for i in range(3)), all(r[3] for r in v))
               for e, v in runs.items()}
        (sw, sc, scpu, sok), (gw, gc, _, gok) = med["symgrad"], med["gradcheck"]
        flag = "" if sok and gok else f"  (verdicts: symgrad {sok}, gradcheck {gok}; inf: past --timeout)"
        print(f"{name:14} {sw:11.2f}s {sc:6.2f}s {scpu:5.2f}s {gw:13.2f}s {gc:6.3f}s {sw / gw:10.2f} {sc / gc:11.1f}{flag}")


if __name__ == "__main__":
    main()
