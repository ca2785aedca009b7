"""The command line: start-up time (``jobs_bench`` times whole suites at -j 1 and -j 2)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tempfile
from typing import Any

import harness

# simple elementwise expressions; each appears several times with other inputs, as in a real suite
TEMPLATES = [
    "3*x**3 - y**2", "sin(x)*exp(-y)", "tanh(x*y) + log(x + y)", "sqrt(x) / (1 + y**2)", "sigmoid(2*x - y)",
    "log1p(x) * cos(y)", "atan2(y, x)", "hypot(x, y)", "x / y - y / x", "softplus(x) - relu(y)",
    "exp(x) * sinh(y)", "asinh(x) + acosh(1 + y)", "x**y", "logaddexp(x, y)", "erf(x) * y",
    "maximum(x, y) + minimum(x, y)", "abs(x - y)", "tan(x / 2) * y", "cosh(x) / cosh(y)", "expm1(x) - y*x",
]


def write_suite(folder: str, count: int = 200) -> str:
    lines = ["cases:"]
    for i in range(count):
        expr = TEMPLATES[i % len(TEMPLATES)]
        lines += [f"  - name: case-{i:03d}", f"    expr: {expr}", f"    seed: {i}", "    inputs:",
                  "      x: {uniform: [0.5, 2.0], shape: [64]}", "      y: {uniform: [0.5, 2.0], shape: [64]}"]
    path = os.path.join(folder, "suite.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def console_script() -> list[str]:
    """The installed ``symgrad`` script itself (a pyenv shim in front of it would add its own start-up)."""
    script = os.path.join(sysconfig.get_path("scripts"), "symgrad")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "symgrad.cli"]


def heavy_imports(argv: list[str]) -> list[str]:
    """Heavy top-level packages that ``symgrad ARGV`` imports."""
    code = (f"import sys; sys.argv = ['symgrad'] + {argv!r}\nfrom symgrad.cli import main\ntry:\n    main()\n"
            "except SystemExit:\n    pass\nsys.stderr.write('MODULES ' + ' '.join(sorted({m.split('.')[0] "
            "for m in sys.modules})) + '\\n')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    line = next((l for l in proc.stderr.splitlines() if l.startswith("MODULES ")), "MODULES")
    mods = set(line.split()[1:])
    return sorted(mods & {"numpy", "sympy", "mpmath", "scipy", "yaml", "torch", "autograd", "click"})


def run(repeats: int) -> dict[str, Any]:
    cmd = console_script()
    res: dict[str, Any] = {"script": " ".join(cmd)}
    with tempfile.TemporaryDirectory() as tmp:
        one = os.path.join(tmp, "one")
        os.mkdir(one)
        with open(os.path.join(one, "one.yaml"), "w") as f:
            f.write("cases:\n  - name: q\n    expr: 3*a**3 - b**2\n    inputs: {a: [2.0, 3.0], b: [6.0, 4.0]}\n")
        res["help"], _ = harness.wall(cmd + ["--help"], repeats)
        res["check_help"], _ = harness.wall(cmd + ["check", "--help"], repeats)
        res["check_one"], out = harness.wall(cmd + ["check", one], repeats)
        res["check_one_ok"] = "1 passed" in out
        res["python"], _ = harness.wall([sys.executable, "-c", "pass"], repeats)
        res["imports_help"] = heavy_imports(["--help"])
    return res


def report(res: dict[str, Any]) -> str:
    lines = [f"command line ({res['script']}), wall time of a subprocess, median"]
    rows = [["symgrad --help", harness.fmt_time(res["help"])],
            ["symgrad check --help", harness.fmt_time(res["check_help"])],
            ["symgrad check (1 case)", harness.fmt_time(res["check_one"]) + ("" if res["check_one_ok"] else " (FAILED)")],
            ["python -c pass", harness.fmt_time(res["python"])]]
    lines.append(harness.table(["what", "time"], rows))
    lines.append(f"heavy packages imported by `symgrad --help`: {', '.join(res['imports_help']) or 'none'}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run(5)))
