"""``symgrad check -j 2`` against ``-j 1``: wall time of the installed command, on four suites.

* ``cases/``, the shipped suite (155 cases, a few of them expanded-mode cases
  that take a few tenths of a second each);
* the op-table suite: 258 distinct cases written from the op table itself,
  every op in six contexts (alone, composed, broadcast, reduced, at order 2, in
  float32), as a team's regression suite tests each op it relies on -- cheap
  cases, about 8 ms each;
* both together (413 cases);
* 200 cases on 20 expressions (cli_bench's suite): cases that share an
  expression share its symbolic work, so the whole suite is about a second.

The runs alternate (harness.alternate: -j 1, -j 2, then -j 2, -j 1, ...) so that
drift of the machine hits both alike; the figure is the ratio of the medians.  The target (issue 6) is
-j 2 at least 1.7x faster than -j 1 on two cores, for a suite of a few hundred
cases.  What cannot be split between workers -- interpreter start-up, the fork
server importing numpy and sympy, exit -- is cli_bench's one-case check; each
worker's own warm-up (first use of scipy.special, sympy's caches) is paid once
per worker, in parallel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Any

import harness
from cli_bench import console_script, write_suite

from symgrad.cases import collect

TARGET = 1.7
ROOT = os.path.dirname(os.path.dirname(harness.HERE))

# inputs in [0.6, 0.9] lie inside every op's domain; acosh gets 1 + its argument
UNARY = ["{f}({a})", "{f}({a}) * y + sin(x)", "{f}({a} * y)", "sum({f}({a}) * y)", "{f}({a}) / (1 + y * y)",
         "mean({f}({a})) * x"]
BINARY = ["{f}(x, y)", "{f}(x, y) * x + y", "{f}(x * y, y)", "sum({f}(x, y))", "{f}(exp(-x), y) / (1 + y)",
          "logsumexp({f}(x, y))"]
REDUCE = ["{f}(x)", "{f}(x * y, axis=0)", "2 * {f}(exp(x))", "{f}(x) * x", "{f}(sin(x), axis=1)",
          "{f}(x * y)"]
LINALG = ["sum(tanh(A @ B))", "sum((A @ v) ** 2)", "sum(transpose(A) @ B)", "sum(sigmoid(v @ A))",
          "sum(transpose(A) * B)", "sum(exp(A @ v) / 4)"]
# (shape, order, dtype) per template position: each op meets every one of them
SETTINGS = [([16], 1, "float64"), ([4, 8], 1, "float64"), ([16], 1, "float64"), ([6], 2, "float64"),
            ([16], 1, "float32"), ([6], 1, "float64")]


def op_suite_cases() -> list[dict[str, Any]]:
    """The generated suite, as case dicts (one per op and context)."""
    from symgrad import ops

    cases = []
    for op in ops.public_ops():
        if op.kind == ops.ELEMENTWISE:
            templates = UNARY if op.arity == 1 else BINARY
        elif op.kind == ops.REDUCTION:
            templates = REDUCE
        else:
            continue
        arg = "1 + x" if op.name == "acosh" else "x"
        for k, (template, (shape, order, dtype)) in enumerate(zip(templates, SETTINGS)):
            if op.kind == ops.REDUCTION and "axis" in template:
                shape = [4, 8]
            inputs = {v: {"uniform": [0.6, 0.9], "shape": shape} for v in ("x", "y")}
            cases.append({"name": f"{op.name}-{k}", "expr": template.format(f=op.name, a=arg),
                          "inputs": inputs, "order": order, "dtype": dtype, "seed": len(cases)})
    for k, expr in enumerate(LINALG):
        inputs = {"A": {"uniform": [0.6, 0.9], "shape": [3, 3]}, "B": {"uniform": [0.6, 0.9], "shape": [3, 3]},
                  "v": {"uniform": [0.6, 0.9], "shape": [3]}}
        used = {n: spec for n, spec in inputs.items() if n in expr.replace("transpose", "").replace("sum", "")}
        cases.append({"name": f"linalg-{k}", "expr": expr, "inputs": used, "seed": len(cases)})
    return cases


def write_op_suite(folder: str) -> tuple[str, int]:
    import yaml

    cases = op_suite_cases()
    path = os.path.join(folder, "ops-suite.yaml")
    with open(path, "w") as f:
        yaml.safe_dump({"cases": cases}, f, sort_keys=False)
    return path, len(cases)


def alternate(cmd: list[str], suite: str, repeats: int) -> dict[str, Any]:
    """Median wall times of ``symgrad check SUITE -j 1`` and ``-j 2``, interleaved (harness.alternate)."""
    summary: dict[int, str] = {}

    def check(jobs: int) -> Any:
        def run() -> None:
            proc = subprocess.run(cmd + ["check", suite, "-j", str(jobs)], capture_output=True, text=True)
            summary[jobs] = (proc.stdout.strip().splitlines() or [""])[-1]
        return run

    times = harness.alternate({"-j 1": check(1), "-j 2": check(2)}, repeats, warmup=0)
    return {"j1": times["-j 1"], "j2": times["-j 2"], "ratio": times["-j 1"] / times["-j 2"], "summary": summary}


def run(repeats: int) -> dict[str, Any]:
    cmd = console_script()
    res: dict[str, Any] = {"script": " ".join(cmd)}
    with tempfile.TemporaryDirectory() as tmp:
        shipped = os.path.join(ROOT, "cases")
        folders = {name: os.path.join(tmp, name) for name in ("ops", "mixed", "repeated")}
        for folder in folders.values():
            os.mkdir(folder)
        op_suite, n_ops = write_op_suite(folders["ops"])
        shutil.copy(op_suite, folders["mixed"])
        # the whole tree, sub-folders included, as `symgrad check cases/` collects it
        shutil.copytree(shipped, folders["mixed"], dirs_exist_ok=True)
        write_suite(folders["repeated"], 200)
        n_shipped = len(collect(shipped)[0])
        res["suites"] = {
            f"cases/ ({n_shipped} cases)": alternate(cmd, shipped, repeats),
            f"op-table suite ({n_ops} cases)": alternate(cmd, folders["ops"], repeats),
            f"both ({n_shipped + n_ops} cases)": alternate(cmd, folders["mixed"], repeats),
            "200 cases, 20 expressions": alternate(cmd, folders["repeated"], repeats),
        }
    return res


def report(res: dict[str, Any]) -> str:
    lines = [f"symgrad check -j 2 vs -j 1 ({res['script']}, {os.cpu_count()} CPUs), wall time, median"]
    rows = []
    for name, r in res["suites"].items():
        verdict = "meets" if r["ratio"] >= TARGET else "MISSES"
        rows.append([name, harness.fmt_time(r["j1"]), harness.fmt_time(r["j2"]),
                     f"{r['ratio']:.2f}x ({verdict} {TARGET}x)", r["summary"].get(2, "")])
    lines.append(harness.table(["suite", "-j 1", "-j 2", "-j 1 / -j 2", "summary (-j 2)"], rows))
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run(7)))
