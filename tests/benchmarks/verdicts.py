"""Every verdict of every shipped case, for diffing before and after a performance change.

``python tests/benchmarks/verdicts.py OUT.json [-j N]`` runs ``cases/`` and ``tests/data`` on the
symgrad, torch and autograd backends in float64, float32 and exact mode and writes, per case and
backend, its status and each comparison's counts (passed, mismatched, undefined, at a kink,
widened) plus the file errors.  ``python tests/benchmarks/verdicts.py --diff A.json B.json``
prints every difference and exits 1 if there is one.  Timings and error magnitudes are left out:
they are not verdicts.  (Not a test module.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATHS = ["cases", "tests/data"]
BACKENDS = ["symgrad", "torch", "autograd"]
CONFIGS = {"float64": ["--dtype", "float64"], "float32": ["--dtype", "float32"], "exact": ["--exact"]}


def run_config(flags: list[str], jobs: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.json")
        cmd = [sys.executable, "-c", "from symgrad.cli import main; main()", "check", *PATHS,
               "--format", "json", "-o", out, "-j", jobs, *flags]
        for b in BACKENDS:
            cmd += ["--backend", b]
        env = {**os.environ, "PYTHONPATH": ROOT}
        subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        with open(out) as f:
            data = json.load(f)
    cases = {}
    for c in data["cases"]:
        comps = [[k["name"], k["passed"], k["mismatched"], k["undefined"], k["at_kink"], k["widened"]]
                 for k in c.get("comparisons", [])]
        cases[f"{c['id']}@{c['backend']}"] = {"status": c["status"], "comparisons": comps}
    errors = sorted(json.dumps(e, sort_keys=True) for e in data.get("file_errors", []))
    return {"cases": cases, "file_errors": errors}


def diff(a: dict[str, object], b: dict[str, object]) -> list[str]:
    out = []
    for config in sorted(set(a) | set(b)):
        ca, cb = a.get(config, {}), b.get(config, {})
        if ca.get("file_errors") != cb.get("file_errors"):
            out.append(f"{config}: file errors differ")
        xa, xb = ca.get("cases", {}), cb.get("cases", {})
        for key in sorted(set(xa) | set(xb)):
            if xa.get(key) != xb.get(key):
                out.append(f"{config} {key}: {xa.get(key)} -> {xb.get(key)}")
    return out


def main() -> int:
    args = sys.argv[1:]
    if args and args[0] == "--diff":
        with open(args[1]) as f1, open(args[2]) as f2:
            lines = diff(json.load(f1), json.load(f2))
        print("\n".join(lines) or "no verdict changed")
        return 1 if lines else 0
    jobs = args[args.index("-j") + 1] if "-j" in args else "2"
    result = {name: run_config(flags, jobs) for name, flags in CONFIGS.items()}
    with open(args[0], "w") as f:
        json.dump(result, f, indent=0, sort_keys=True)
    total = sum(len(v["cases"]) for v in result.values())
    print(f"{total} verdicts written to {args[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
