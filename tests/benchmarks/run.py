"""symgrad's benchmarks: ``python tests/benchmarks/run.py [--quick] [--repeats N] [--only SECTION ...] [--json FILE]``.

Sections: tape (forward+backward and peak memory against HIPS autograd, PyTorch
with 1 thread and numpy's forward), check (symgrad.check against
torch.autograd.gradcheck in fast and default mode, JAX's check_grads and numpy's
forward, n = 100 to 1e6), cli (start-up time), jobs (suites of 155 to 413 cases at
-j 1 and -j 2), expanded (expanded mode at growing sizes).  Contenders that are not
installed are reported as absent.  Timings interleave the contenders and take
medians; ratios below 1 mean symgrad is faster (or smaller).  ``verdicts.py`` (not a timing)
records every shipped case's verdict, to diff before and after a performance change.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness

SECTIONS = ("tape", "check", "cli", "jobs", "expanded")


def environment() -> str:
    import numpy

    parts = [f"python {platform.python_version()}", f"numpy {numpy.__version__}"]
    for mod in ("torch", "autograd", "sympy", "jax"):
        m = harness.optional(mod)
        version = getattr(m, "__version__", None) if m is not None else None
        if m is not None and version is None:
            from importlib import metadata

            version = metadata.version(mod)
        parts.append(f"{mod} {version}" if m is not None else f"{mod} absent")
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (f"{', '.join(parts)}; {os.cpu_count()} cores; load average {load[0]:.2f} at start "
            "(other work on the machine slows absolute times; ratios are interleaved)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (a smoke run)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--json", metavar="FILE", help="also write the raw measurements as JSON")
    parser.add_argument("--repeats", type=int, metavar="N", help="rounds per figure (default 9; 3 with --quick)")
    args = parser.parse_args()
    quick = args.quick
    reps = args.repeats or (3 if quick else 9)
    print(environment())
    results: dict[str, object] = {}
    start = time.perf_counter()

    if "tape" in args.only:
        import tape_bench

        sizes = [10**4, 10**5, 10**6] if quick else [10**4, 10**5, 10**6, 10**7]
        print("\n" + "=" * 8 + " tape")
        print("gradients agree with symgrad's (rtol 1e-12):", tape_bench.agree())
        times = tape_bench.time_sizes(sizes, reps)
        mem = tape_bench.memory([10**6] if quick else [10**6, 10**7])
        results["tape"] = {"times": times, "memory": mem}
        print(tape_bench.report(times, mem))

    if "check" in args.only:
        import check_bench

        print("\n" + "=" * 8 + " check")
        sizes = [1000, 10**4, 10**5] if quick else [100, 1000, 3000, 10**4, 10**5, 10**6]
        res = check_bench.run(sizes, reps)
        results["check"] = res
        print(check_bench.report(res))

    if "cli" in args.only:
        import cli_bench

        print("\n" + "=" * 8 + " cli")
        res = cli_bench.run(3 if quick else 7)
        results["cli"] = res
        print(cli_bench.report(res))

    if "jobs" in args.only:
        import jobs_bench

        print("\n" + "=" * 8 + " jobs")
        res = jobs_bench.run(1 if quick else 7)
        results["jobs"] = res
        print(jobs_bench.report(res))

    if "expanded" in args.only:
        import expanded_bench

        print("\n" + "=" * 8 + " expanded")
        sizes = {"softmax": [4, 8, 16], "matmul": [2, 3, 4]} if quick else \
            {"softmax": [4, 8, 16, 32, 64, 128], "matmul": [2, 3, 4, 6, 8, 12]}
        res = expanded_bench.run(3.0 if quick else 30.0, sizes)
        results["expanded"] = res
        print(expanded_bench.report(res))

    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
