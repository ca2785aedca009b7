"""Benchmark: the fuzzer finds nothing on symgrad's own tape (issue 7, item 4).

Checks COUNT random expressions (default 10 000) of depth up to 6 over every op of the
table, in float64, on the ``symgrad`` backend, and prints how many were checked, passed,
had undefined elements (classified, not compared), failed and errored, and the time taken.
Exit status 1 when anything failed or errored; each failure is shrunk and saved under
--out (default: a temporary folder, so a run never touches cases/).

    python tests/benchmarks/fuzz_clean.py                 # 10 000 expressions, seed 0
    python tests/benchmarks/fuzz_clean.py --count 1000 --seed 7
    python tests/benchmarks/fuzz_clean.py --jobs 4             # 4 processes of 2 500, seeds 0..3

Not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from symgrad.fuzzing import fuzz

# Known bugs, reported to the owners of the files at fault; each entry: a regex matched against
# the report's reason/table, and the minimal reproducer the fuzzer shrank it to.  Cases that
# match are counted as "known bugs", not as failures or errors.  Remove an entry once fixed.
KNOWN: dict[str, str] = {
    # regex of an error message -> the reproducer of a known, not yet fixed bug (none at present;
    # "inhomogeneous shape" from softplus(1.0)**x was fixed in symbolic.py's printer)
}


def _run(args: argparse.Namespace, count: int, seed: int, out: str, every: int):
    start = time.perf_counter()

    def progress(r) -> None:
        if every and r.checked % every == 0:
            print(f"  [seed {seed}] {r.checked:6d} checked, {r.failed} failed, {r.errors} errors, "
                  f"{time.perf_counter() - start:7.1f} s", flush=True)

    return fuzz(count=count, seed=seed, max_depth=args.max_depth, ops=None, backend=args.backend,
                out_dir=out, dtype="float64", max_failures=50, progress=progress,
                known=[] if args.no_known else list(KNOWN))


def _job(item):
    args, count, seed, out = item
    return _run(args, count, seed, out, args.every)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-depth", type=int, default=6)
    parser.add_argument("--backend", default="symgrad")
    parser.add_argument("--out", default=None, help="folder for shrunk failures (default: a temporary one)")
    parser.add_argument("--no-known", action="store_true", help="count the known bugs as errors too")
    parser.add_argument("--every", type=int, default=500, help="print progress every N expressions")
    parser.add_argument("--jobs", type=int, default=1,
                        help="split the count over N processes, seeds SEED, SEED+1, ... (deterministic)")
    args = parser.parse_args(argv)

    out = args.out or tempfile.mkdtemp(prefix="symgrad-fuzz-")
    start = time.perf_counter()
    jobs = max(1, args.jobs)
    counts = [args.count // jobs + (1 if i < args.count % jobs else 0) for i in range(jobs)]
    items = [(args, n, args.seed + i, out) for i, n in enumerate(counts)]
    if jobs == 1:
        parts = [_job(items[0])]
    else:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            parts = pool.map(_job, items)
    seconds = time.perf_counter() - start

    total = {k: sum(getattr(r, k) for r in parts)
             for k in ("checked", "passed", "undefined", "failed", "errors", "known", "timeouts", "discarded")}
    for r in parts:
        for f in r.failures:
            print(f.report.table())
            print(f"  shrunk from: {f.original}")
            print(f"  saved: {f.path}")
        for data in r.slow:
            print(f"TIMEOUT {data['expr']}  inputs {data['inputs']}")
        if r.stopped:
            print(f"note [seed {r.seed}]: {r.stopped}")
        print(f"fuzz_clean [seed {r.seed}]: {r.summary()}")
    print(f"fuzz_clean: {total['checked']} expressions (depth <= {args.max_depth}, every op, float64, "
          f"backend {args.backend}, seeds {args.seed}..{args.seed + jobs - 1}): {total['failed']} failures, "
          f"{total['errors']} errors, {total['undefined']} with undefined elements, {total['known']} known bugs, "
          f"{total['timeouts']} timed out, {total['discarded']} discarded; {seconds:.1f} s wall "
          f"({1000 * seconds / max(total['checked'], 1):.1f} ms per expression, {jobs} process(es))")
    return 0 if total["failed"] == 0 and total["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
