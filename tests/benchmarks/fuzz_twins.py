"""Hunting false PASSes: every random expression that passes on symgrad's tape must fail once one
gradient element is moved beyond the dtype's tolerance.

For COUNT random expressions (the fuzzer's strategy, well-conditioned ones only) this checks the case on
``--backend`` (symgrad's tape) and, when it passes, again on a twin engine: the same with its largest gradient
element moved by ``--by`` times (1 + |g|) (``--all``: every element).  The default ``--by`` is three
times the dtype's default tolerance.  A twin that passes although its gradient moved is printed as a
*suspect*: the element was set aside (at a kink, undefined) or its tolerance widened by the float32
conditioning slack, and the report says which.  Most suspects are fine (a kink really is one); a few
were bugs (a slack sampled across ``sign``'s jump at 0, marks lost under a transpose).

    python tests/benchmarks/fuzz_twins.py --count 400 --seed 1
    python tests/benchmarks/fuzz_twins.py --count 400 --seed 6 --dtype float32
    python tests/benchmarks/fuzz_twins.py --count 200 --seed 8 --order 2 --all
    python tests/benchmarks/fuzz_twins.py --count 200 --seed 9 --shape 4,5 --shape 5
    python tests/benchmarks/fuzz_twins.py --count 200 --seed 10 --dtype float16 --backend torch

Exit status 1 when a suspect was found.  Not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, assume, given, settings
from hypothesis import seed as hyp_seed

from symgrad import backends
from symgrad.checking.compare import DEFAULT_TOLERANCES
from symgrad.checking.runner import Options, run_case
from symgrad.fuzzing import _case, _verdict, expressions, to_case_dict, well_conditioned


def moved(engine: Any, by: float, every: bool) -> Any:
    """``engine`` (a Backend) with its gradients (and forward-mode JVPs) moved by ``by`` times (1 + |g|): the
    largest finite element, or all; ``.moved`` tells whether a check had anything to move."""

    def move(g: Any) -> np.ndarray:
        g = np.array(g, copy=True, order="C")  # C order: reshape(-1) is a view, so the move lands in g
        flat = g.reshape(-1)
        with np.errstate(all="ignore"):
            if every:
                flat += np.asarray(by * (1 + np.abs(flat)), dtype=flat.dtype)
            elif flat.size:
                i = int(np.argmax(np.where(np.isfinite(flat), np.abs(flat), -1)))
                flat[i] += by * (1 + abs(flat[i]))
        return g

    class Moved(type(engine)):  # type: ignore[misc]
        name = "twin-moved"

        def gradients(self, expr: Any, inputs: Any, wrt: Any, order: int, grad_output: Any) -> Any:
            value, grads = super().gradients(expr, inputs, wrt, order, grad_output)
            self.moved |= any(g is not None for g in grads.values())
            return value, {k: None if g is None else move(g) for k, g in grads.items()}

        def jvp(self, expr: Any, inputs: Any, wrt: Any, tangents: Any) -> Any:  # forward mode (--ad forward)
            value, jt = super().jvp(expr, inputs, wrt, tangents)
            self.moved = True
            return value, move(jt)

    twin = copy.copy(engine)
    twin.__class__ = Moved
    twin.moved = False
    return twin


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--order", type=int, default=1)
    p.add_argument("--dtype", default="float64", choices=list(DEFAULT_TOLERANCES))
    p.add_argument("--max-depth", type=int, default=4)
    p.add_argument("--shape", action="append", default=None, help="an input shape: 'scalar', '3', '4,5' (repeatable)")
    p.add_argument("--by", type=float, default=None, help="the move, times (1 + |g|); default 3 tolerances")
    p.add_argument("--all", action="store_true", help="move every element, not only the largest")
    p.add_argument("--ad", default=None, choices=["reverse", "forward", "both"], help="as symgrad check --ad")
    p.add_argument("--exact", action="store_true", help="the exact reference (mpmath), as `reference: exact`")
    p.add_argument("--backend", default="symgrad", help="the engine whose passing cases are twinned (16-bit: torch)")
    p.add_argument("--out", default=None, help="write the suspects' cases here (JSON)")
    args = p.parse_args()
    rtol, atol = DEFAULT_TOLERANCES[args.dtype]
    by = args.by if args.by is not None else 3 * max(rtol, atol)
    twin = moved(backends.get(args.backend), by, args.all)
    counts = {"checked": 0, "passed": 0, "suspects": 0}
    suspects: list[dict[str, Any]] = []

    shapes = [() if t == "scalar" else tuple(int(n) for n in t.split(",")) for t in args.shape or []]
    strategy = expressions(max_depth=args.max_depth, **({"shapes": shapes} if shapes else {}))

    @given(strategy)
    @settings(max_examples=args.count, database=None, deadline=None, phases=(Phase.generate,),
              suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet)
    def run(example: Any) -> None:
        assume(well_conditioned(example))
        data = to_case_dict(example, args.dtype, order=args.order)
        case = _case(example, data)
        counts["checked"] += 1
        if _verdict(run_case(case, options=Options(backend=args.backend, arrays=False, exact=args.exact or None, ad=args.ad))) != "pass":
            return
        counts["passed"] += 1
        twin.moved = False
        report = run_case(case, options=Options(backend=twin, arrays=False, exact=args.exact or None, ad=args.ad))
        if report.status == "pass" and twin.moved:
            counts["suspects"] += 1
            suspects.append(data)
            print(f"SUSPECT {data['expr']}  inputs={json.dumps(data['inputs'])}\n{report.table()}\n", flush=True)

    hyp_seed(args.seed)(run)()
    print(f"{counts['checked']} checked, {counts['passed']} passed, {counts['suspects']} twins passed "
          f"(moved by {by:g} x (1 + |g|), {'every element' if args.all else 'the largest element'}; "
          f"seed {args.seed}, order {args.order}, {args.dtype}, {args.backend})")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(suspects, f, indent=1)
    return 1 if suspects else 0


if __name__ == "__main__":
    sys.exit(main())
