"""Suite speed, behaviour only: the parent of a worker pool loads no sympy; one worker runs its cases
in runs of consecutive cases, with the same verdicts, order and -x prefix as in one process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from symgrad.checking.cases import collect
from symgrad.checking.options import Options
from symgrad.checking.suite import run_suite

ROOT = Path(__file__).resolve().parents[1]

# runs `symgrad check ARGS` in this process and prints the exit code and whether sympy got loaded
PROBE = textwrap.dedent("""\
    import json, sys
    from symgrad.cli import main
    sys.argv = ["symgrad", "check"] + sys.argv[1:]
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    print(json.dumps({"code": code, "sympy": "sympy" in sys.modules}))
""")


def _check_in_subprocess(*args: str) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    *lines, last = proc.stdout.strip().splitlines()
    return json.loads(last), "\n".join(lines)


def _case_file(folder: Path, expect_x: str) -> Path:
    path = folder / "one.yaml"
    path.write_text(f"cases:\n  - name: q\n    expr: x**3\n    inputs: {{x: [1.0, 2.0]}}\n"
                    f"    expect: {{x: {expect_x}}}\n")
    return path


@pytest.mark.slow
def test_the_parent_of_the_workers_never_loads_sympy(tmp_path):
    good = _case_file(tmp_path, "3*x**2")
    result, out = _check_in_subprocess(str(good))  # -j 1 with a timeout: the case runs in a worker
    assert result == {"code": 0, "sympy": False}
    assert "1 passed, 0 failed" in out


@pytest.mark.slow
def test_a_wrong_expectation_still_fails_from_a_parent_without_sympy(tmp_path):
    bad = _case_file(tmp_path, "2*x**2")  # the twin: the worker's verdict reaches the parent
    result, out = _check_in_subprocess(str(bad), "-j", "2")
    assert result == {"code": 1, "sympy": False}
    assert "0 passed, 1 failed" in out
    # and the probe does see sympy when the case runs in this process
    result, out = _check_in_subprocess(str(bad), "--timeout", "0")
    assert result == {"code": 1, "sympy": True}


def _many(folder: Path, wrong: set[int], count: int = 40) -> list:
    lines = ["cases:"]
    for i in range(count):
        expect = "2*x" if i in wrong else "3*x**2"  # the wrong ones fail: x**3' is 3x^2
        lines += [f"  - name: c{i:02d}", "    expr: x**3 + y", f"    inputs: {{x: [{1 + i / 8}], y: [0.5]}}",
                  f"    expect: {{x: {expect}}}"]
    (folder / "many.yaml").write_text("\n".join(lines) + "\n")
    cases, errors = collect([folder])
    assert not errors
    return cases


def _verdicts(result) -> list[tuple[str, str]]:
    return [(r.name, r.status) for r in result.reports]


@pytest.mark.slow
def test_one_worker_runs_consecutive_cases_with_the_verdicts_of_one_process(tmp_path):
    cases = _many(tmp_path, wrong={5, 17, 33})
    in_process = run_suite(cases, Options(), jobs=1, timeout=None)
    in_worker = run_suite(cases, Options(), jobs=1, timeout=30)
    assert _verdicts(in_worker) == _verdicts(in_process)
    assert {name for name, status in _verdicts(in_worker) if status != "pass"} == {"c05", "c17", "c33"}
    assert [r.to_dict()["comparisons"] for r in in_worker.reports] == \
        [r.to_dict()["comparisons"] for r in in_process.reports]


@pytest.mark.slow
def test_one_worker_stops_at_the_first_failure_inside_a_run(tmp_path):
    cases = _many(tmp_path, wrong={20})  # in the middle of the second run of cases
    seen = []
    result = run_suite(cases, Options(), jobs=1, timeout=30, exitfirst=True, on_report=seen.append)
    assert result.stopped_early
    assert _verdicts(result) == [(f"c{i:02d}", "pass") for i in range(20)] + [("c20", "fail")]
    assert [r.name for r in seen] == [r.name for r in result.reports]  # nothing after it is reported
    # the twin: without a failure the same run goes to the end
    clean = run_suite(_many(tmp_path, wrong=set()), Options(), jobs=1, timeout=30, exitfirst=True)
    assert not clean.stopped_early and len(clean.reports) == 40
