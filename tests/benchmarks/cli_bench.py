"""The command line: start-up, the cold start to a first case, the cost of each further case at -j 1.

Every figure is the median over interleaved rounds (harness.alternate), as wall time and as CPU time
of the whole process tree (the symgrad process, its fork server and workers: see ``Tree``), which
other work on the machine inflates less than wall time.  The issue-19 targets: cold start to a first
case at most 0.3 s; at most 3 ms per small case at -j 1 on the 200-case suite.  A case's cost is
``(T(200 cases) - T(1 case)) / 199``: what a suite pays per case once symgrad has started;
``T(200) / 200`` is printed beside it.

The subprocesses write and reuse byte code in a temporary ``PYTHONPYCACHEPREFIX`` (after a first,
untimed run), as an installed symgrad would: an environment with ``PYTHONDONTWRITEBYTECODE=1`` would
otherwise compile symgrad's modules from source on every start (about a quarter of a second).
"""

from __future__ import annotations

import ctypes
import os
import resource
import statistics
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
COLD_START_TARGET = 0.3  # seconds, issue 19
PER_CASE_TARGET = 3e-3


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


def bytecode_env(folder: str, **extra: str) -> dict[str, str]:
    """This environment, with byte code cached under ``folder`` (see the module docstring)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPYCACHEPREFIX=os.path.join(folder, "pycache"), **extra)
    return env


class Tree:
    """Runs commands as a child subreaper (Linux), so that the CPU time of every descendant is counted:
    the fork server outlives the symgrad process, and its workers are its children, not ours."""

    def __init__(self) -> None:
        self.reaper = False
        if sys.platform.startswith("linux") and self._children() is not None:
            try:
                self.reaper = ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
            except (OSError, AttributeError):
                pass
        self.cpu: dict[str, list[float]] = {}

    @staticmethod
    def _children() -> set[int] | None:
        try:
            return {int(pid) for task in os.listdir("/proc/self/task")
                    for pid in open(f"/proc/self/task/{task}/children").read().split()}
        except OSError:
            return None

    def runner(self, name: str, cmd: list[str], env: dict[str, str], out: dict[str, str] | None = None) -> Any:
        def run() -> None:
            mine = self._children() or set()  # (other children of this process are left alone)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            # the orphans the command left (its fork server, which exits soon after it): wait for them too
            for pid in ((self._children() or set()) - mine) if self.reaper else ():
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            self.cpu.setdefault(name, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if out is not None:
                out[name] = proc.stdout + proc.stderr
        return run

    def median_cpu(self, name: str) -> float:
        return statistics.median(self.cpu[name]) if self.reaper and self.cpu.get(name) else float("nan")


def heavy_imports(argv: list[str], env: dict[str, str] | None = None) -> list[str]:
    """Heavy top-level packages that ``symgrad ARGV`` imports in its own process (not its workers')."""
    code = (f"import sys; sys.argv = ['symgrad'] + {argv!r}\nfrom symgrad.cli import main\ntry:\n    main()\n"
            "except SystemExit:\n    pass\nsys.stderr.write('MODULES ' + ' '.join(sorted({m.split('.')[0] "
            "for m in sys.modules})) + '\\n')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    line = next((l for l in proc.stderr.splitlines() if l.startswith("MODULES ")), "MODULES")
    mods = set(line.split()[1:])
    return sorted(mods & {"numpy", "sympy", "mpmath", "scipy", "yaml", "torch", "autograd", "jax", "click"})


def run(repeats: int) -> dict[str, Any]:
    cmd = console_script()
    res: dict[str, Any] = {"script": " ".join(cmd)}
    with tempfile.TemporaryDirectory() as tmp:
        one, many = os.path.join(tmp, "one"), os.path.join(tmp, "many")
        os.mkdir(one)
        os.mkdir(many)
        with open(os.path.join(one, "one.yaml"), "w") as f:
            f.write("cases:\n  - name: q\n    expr: 3*a**3 - b**2\n    inputs: {a: [2.0, 3.0], b: [6.0, 4.0]}\n")
        write_suite(many, 200)
        cache = os.path.join(tmp, "diskcache")
        warm = bytecode_env(tmp, SYMGRAD_CACHE="1", SYMGRAD_CACHE_DIR=cache)  # harness turns the cache off
        cold = bytecode_env(tmp, SYMGRAD_CACHE="0")
        py = [sys.executable, "-c"]
        runs = {
            "help": (cmd + ["--help"], warm),
            "check_help": (cmd + ["check", "--help"], warm),
            "one": (cmd + ["check", one], warm),
            "one_in_process": (cmd + ["check", one, "--timeout", "0"], warm),
            "200_warm": (cmd + ["check", many], warm),
            "200_cold": (cmd + ["check", many], cold),
            "python": (py + ["pass"], warm),
            "numpy": (py + ["import numpy"], warm),
            "sympy": (py + ["import sympy"], warm),
            "preload": (py + ["import symgrad.checking.workers.preload"], warm),
        }
        for argv, env in runs.values():  # byte code, and the warm disk cache
            subprocess.run(argv, capture_output=True, env=env)
        tree = Tree()
        outputs: dict[str, str] = {}
        walls = harness.alternate({name: tree.runner(name, argv, env, outputs) for name, (argv, env) in runs.items()},
                                  repeats, warmup=0)
        res["wall"] = walls
        res["cpu"] = {name: tree.median_cpu(name) for name in runs}
        res["ok"] = {"one": "1 passed" in outputs.get("one", ""),
                     "200_warm": "200 passed" in outputs.get("200_warm", ""),
                     "200_cold": "200 passed" in outputs.get("200_cold", "")}
        res["imports_help"] = heavy_imports(["--help"], warm)
        res["imports_check"] = heavy_imports(["check", one], warm)
    return res


def _per_case(res: dict[str, Any], kind: str, which: str) -> tuple[float, float]:
    """(seconds per case beyond start-up, seconds per case overall) of the 200-case suite."""
    t200, t1 = res[kind][f"200_{which}"], res[kind]["one"]
    return (t200 - t1) / 199, t200 / 200


def report(res: dict[str, Any]) -> str:
    wall, cpu = res["wall"], res["cpu"]

    def both(name: str) -> list[str]:
        return [harness.fmt_time(wall[name]), harness.fmt_time(cpu[name])]

    lines = [f"command line ({res['script']}), subprocesses, median of interleaved rounds; "
             "CPU: every process of the tree (fork server and workers too)"]
    flag = lambda ok: "" if ok else " (FAILED)"
    rows = [["symgrad --help", *both("help")],
            ["symgrad check --help", *both("check_help")],
            ["symgrad check (1 case, worker: cold start)" + flag(res["ok"]["one"]), *both("one")],
            ["symgrad check --timeout 0 (1 case, in process)", *both("one_in_process")],
            ["symgrad check (200 cases, 20 expressions, disk cache warm)" + flag(res["ok"]["200_warm"]),
             *both("200_warm")],
            ["symgrad check --no-cache (the same, cold)" + flag(res["ok"]["200_cold"]), *both("200_cold")],
            ["python -c pass", *both("python")],
            ["python -c 'import numpy'", *both("numpy")],
            ["python -c 'import sympy'", *both("sympy")],
            ["python -c 'import symgrad.checking.workers.preload' (the fork server's imports)", *both("preload")]]
    lines.append(harness.table(["what", "wall", "CPU"], rows))
    verdict = "meets" if wall["one"] <= COLD_START_TARGET else "MISSES"
    lines.append(f"cold start to the first case: {harness.fmt_time(wall['one'])} wall ({verdict} "
                 f"{COLD_START_TARGET:g} s); importing sympy alone takes {harness.fmt_time(wall['sympy'])}, "
                 f"the fork server's imports {harness.fmt_time(wall['preload'])}")
    for which, label in (("warm", "disk cache warm"), ("cold", "--no-cache")):
        marginal, overall = _per_case(res, "wall", which)
        cpu_marginal, _ = _per_case(res, "cpu", which)
        verdict = "meets" if marginal <= PER_CASE_TARGET else "MISSES"
        lines.append(f"per case at -j 1 ({label}): {marginal * 1e3:.2f} ms wall beyond start-up ({verdict} "
                     f"{PER_CASE_TARGET * 1e3:g} ms), {cpu_marginal * 1e3:.2f} ms CPU; "
                     f"{overall * 1e3:.2f} ms wall overall (T(200) / 200)")
    lines.append(f"heavy packages imported by `symgrad --help`: {', '.join(res['imports_help']) or 'none'}; "
                 f"by the `symgrad check` process (its worker loads the rest): "
                 f"{', '.join(res['imports_check']) or 'none'}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run(5)))
