"""Tests for symgrad.suite (selection, -k, workers, timeouts, callbacks) and symgrad.formats."""

import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from symgrad.checking.cases import collect
from symgrad.checking.formats import Progress, to_json, to_json_dict, to_junit
from symgrad.checking.report import exit_code
from symgrad.checking.runner import Options
from symgrad.checking.suite import KeywordError, compile_keyword, default_jobs, resolve_backend, run_suite, select

SLEEPY = Path(__file__).parent / "data" / "sleepy_backend.py"


def write_cases(folder, text, name="cases.yaml"):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


MIXED = """\
cases:
  - name: alpha-one
    expr: 3*a**3 - b**2
    inputs: {a: [2.0, 3.0], b: [6.0, 4.0]}
    tags: [tutorial, fast]
  - name: alpha-two
    expr: sin(x) * exp(x)
    inputs: {x: {uniform: [0.1, 2.0], shape: [4]}}
    tags: [fast]
  - name: beta-wrong
    expr: x**2
    inputs: {x: [1.0, 2.0]}
    expect: {x: 3*x}
    tags: [broken]
  - name: beta-ok
    expr: tanh(x) + x
    inputs: {x: [0.5, 1.5]}
  - name: gamma-skip
    expr: x
    inputs: {x: [1.0]}
    skip: not today
  - name: Gamma-Order2
    expr: x**3 * y
    inputs: {x: [1.0, 2.0], y: [3.0, 4.0]}
    order: 2
"""


@pytest.fixture
def mixed(tmp_path):
    write_cases(tmp_path, MIXED)
    cases, errors = collect([tmp_path])
    assert not errors
    return cases


@pytest.fixture
def sleepy(tmp_path, monkeypatch):
    shutil.copy(SLEEPY, tmp_path / "sleepy_plugin.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "sleepy_plugin:SleepyBackend"


def comparable(reports):
    out = []
    for r in reports:
        d = r.to_dict()
        d.pop("duration")
        out.append(d)
    return out


# ---------------------------------------------------------------- -k expressions

NAMES = ["alpha-one", "alpha-two", "beta-wrong", "beta-ok", "gamma-skip", "Gamma-Order2"]


def matching(expr):
    pred = compile_keyword(expr)
    return [n for n in NAMES if pred(n)]


@pytest.mark.parametrize("expr, expected", [
    ("alpha", ["alpha-one", "alpha-two"]),
    ("ALPHA", ["alpha-one", "alpha-two"]),  # case-insensitive, as pytest
    ("gamma", ["gamma-skip", "Gamma-Order2"]),
    ("not alpha", ["beta-wrong", "beta-ok", "gamma-skip", "Gamma-Order2"]),
    ("alpha and two", ["alpha-two"]),
    ("alpha or beta", ["alpha-one", "alpha-two", "beta-wrong", "beta-ok"]),
    ("beta and not wrong", ["beta-ok"]),
    ("not (alpha or beta)", ["gamma-skip", "Gamma-Order2"]),
    ("alpha or beta and ok", ["alpha-one", "alpha-two", "beta-ok"]),  # and binds tighter
    ("(alpha or beta) and o", ["alpha-one", "alpha-two", "beta-wrong", "beta-ok"]),
    ("not not one", ["alpha-one"]),
    ("-ok", ["beta-ok"]),
    ("order2", ["Gamma-Order2"]),
    ("nothing", []),
])
def test_keyword_expressions(expr, expected):
    assert matching(expr) == expected


@pytest.mark.parametrize("expr, column", [
    ("", 1),
    ("alpha and", 10),
    ("and alpha", 1),
    ("(alpha", 7),
    ("alpha)", 6),
    ("alpha beta", 7),
    ("not", 4),
    ("()", 2),
    ("__import__('os')", 11),
])
def test_keyword_errors_name_the_column(expr, column):
    with pytest.raises(KeywordError, match=f"column {column}"):
        compile_keyword(expr)


def test_keyword_never_evaluates(tmp_path):
    # something that would be code for eval is only a word (a substring) here
    pred = compile_keyword("__import__")
    assert pred("x__import__y") and not pred("alpha")


def test_select_by_keyword_tags_and_skip_tags(mixed):
    names = lambda cs: [c.name for c in cs]
    assert names(select(mixed, "alpha")) == ["alpha-one", "alpha-two"]
    assert names(select(mixed, tags=["fast"])) == ["alpha-one", "alpha-two"]
    assert names(select(mixed, tags=["tutorial", "broken"])) == ["alpha-one", "beta-wrong"]
    assert names(select(mixed, skip_tags=["fast"])) == ["beta-wrong", "beta-ok", "gamma-skip", "Gamma-Order2"]
    assert names(select(mixed, "not gamma", skip_tags=["broken"])) == ["alpha-one", "alpha-two", "beta-ok"]
    assert names(select(mixed, "  ")) == names(mixed)


# ---------------------------------------------------------------- running


def test_in_process_run(mixed):
    result = run_suite(mixed, timeout=None)
    statuses = [r.status for r in result.reports]
    assert statuses == ["pass", "pass", "fail", "pass", "skip", "pass"]
    assert [r.name for r in result.reports] == NAMES
    assert exit_code(result.reports) == 1
    assert not result.stopped_early


@pytest.mark.parametrize("jobs", [1, 2, 3])
@pytest.mark.slow
def test_worker_processes_give_identical_reports_in_identical_order(mixed, jobs):
    base = run_suite(mixed, timeout=None)
    other = run_suite(mixed, jobs=jobs, timeout=30)
    assert comparable(other.reports) == comparable(base.reports)


def test_several_backends_are_reported_case_by_case(mixed, sleepy):
    opts = [Options(backend="symgrad"), Options(backend=sleepy)]
    result = run_suite(mixed[:2], opts, timeout=None)
    assert [(r.name, r.backend) for r in result.reports] == [
        ("alpha-one", "symgrad"), ("alpha-one", sleepy), ("alpha-two", "symgrad"), ("alpha-two", sleepy)]
    assert all(r.status == "pass" for r in result.reports)
    parallel = run_suite(mixed[:2], opts, jobs=2, timeout=30)
    assert comparable(parallel.reports) == comparable(result.reports)


@pytest.mark.parametrize("jobs, timeout", [(1, None), (1, 30), (2, 30)])
def test_exitfirst_stops_at_the_same_report_whatever_the_jobs(mixed, jobs, timeout):
    result = run_suite(mixed, jobs=jobs, timeout=timeout, exitfirst=True)
    assert [r.name for r in result.reports] == ["alpha-one", "alpha-two", "beta-wrong"]
    assert result.reports[-1].status == "fail"
    assert result.stopped_early


def test_callbacks(mixed):
    completed, ordered = [], []
    result = run_suite(mixed, jobs=2, timeout=30, on_complete=completed.append, on_report=ordered.append)
    assert [r.name for r in ordered] == [r.name for r in result.reports]
    assert sorted(r.name for r in completed) == sorted(NAMES)


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.slow
def test_timeout_is_an_error_and_the_run_goes_on(tmp_path, sleepy, jobs):
    write_cases(tmp_path, """\
        cases:
          - name: first-ok
            expr: x*2
            inputs: {x: [1.0]}
          - name: hangs
            expr: slow*2
            inputs: {slow: [1.0]}
          - name: next-ok
            expr: x**2
            inputs: {x: [3.0]}
          - name: last-ok
            expr: sin(x)
            inputs: {x: [3.0]}
        """)
    cases, _ = collect([tmp_path])
    result = run_suite(cases, Options(backend=sleepy), jobs=jobs, timeout=1.0)
    assert [(r.name, r.status) for r in result.reports] == [
        ("first-ok", "pass"), ("hangs", "error"), ("next-ok", "pass"), ("last-ok", "pass")]
    assert result.reports[1].reason == "timed out after 1 s"
    assert result.reports[1].backend == sleepy
    assert exit_code(result.reports) == 2


PID_PLUGIN = """
import os
import time

import numpy as np

from symgrad.backends import Backend, get


class PidBackend(Backend):
    \"\"\"The symgrad tape, recording which process ran each case (named by its first input's first value)
    in PIDS; at 77.0 it takes a second, at 13.0 it hangs, at 666.0 its worker dies.\"\"\"

    name = "pid"

    def gradients(self, expr, inputs, wrt, order, grad_output):
        value = float(np.ravel(next(iter(inputs.values())))[0])
        with open(os.path.join(PIDS, f"{value:g}"), "a") as f:
            f.write(f"{os.getpid()}\\n")
        if value == 77.0:
            time.sleep(1.0)
        if value == 13.0:
            time.sleep(120)
        if value == 666.0:
            os._exit(3)
        return get("symgrad").gradients(expr, inputs, wrt, order, grad_output)
"""


@pytest.fixture
def pid_backend(tmp_path, monkeypatch):
    """A "module:attr" backend and a function giving the pids that ran the case with first value v."""
    pids = tmp_path / "pids"
    pids.mkdir()
    (tmp_path / "pid_plugin.py").write_text(f"PIDS = {str(pids)!r}\n" + PID_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))

    def ran(value):
        path = pids / f"{value:g}"
        return [int(line) for line in path.read_text().split()] if path.exists() else []

    return "pid_plugin:PidBackend", ran


def shared_cases(folder, groups):
    """Cases named e{k}-v{value}, one per value; the values of groups[k] share the expression k."""
    lines = ["cases:"]
    exprs = ["x*2 + y", "sin(x)*y", "exp(x) - y**2", "x**3 / (1 + y**2)"]
    for k, values in enumerate(groups):
        for v in values:
            lines += [f"  - name: e{k}-v{v:g}", f"    expr: {exprs[k]}", f"    inputs: {{x: [{v}], y: [0.5]}}"]
    write_cases(folder, "\n".join(lines) + "\n")
    cases, errors = collect([folder])
    assert not errors
    return cases


@pytest.mark.slow
def test_cases_sharing_an_expression_run_in_one_worker(tmp_path, pid_backend):
    backend, ran = pid_backend
    groups = [[1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0], [14.0, 15.0]]
    cases = shared_cases(tmp_path, groups)
    result = run_suite(cases, Options(backend=backend), jobs=2, timeout=30)
    assert [(r.name, r.status) for r in result.reports] == [(c.name, "pass") for c in cases]
    for values in groups:
        pids = {pid for v in values for pid in ran(v)}
        assert len(pids) == 1, (values, pids)
    assert comparable(result.reports) == comparable(run_suite(cases, Options(backend=backend), timeout=None).reports)


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.slow
def test_timeout_inside_a_group_reports_exactly_that_case(tmp_path, pid_backend, jobs):
    backend, ran = pid_backend
    cases = shared_cases(tmp_path, [[1.0, 2.0, 13.0, 3.0, 4.0], [5.0, 6.0]])
    completed = []
    result = run_suite(cases, Options(backend=backend), jobs=jobs, timeout=1.0, on_complete=completed.append)
    assert [(r.name, r.status, r.reason) for r in result.reports] == [
        ("e0-v1", "pass", ""), ("e0-v2", "pass", ""), ("e0-v13", "error", "timed out after 1 s"),
        ("e0-v3", "pass", ""), ("e0-v4", "pass", ""), ("e1-v5", "pass", ""), ("e1-v6", "pass", "")]
    assert sorted(r.name for r in completed) == sorted(c.name for c in cases)  # once each
    assert len(ran(13.0)) == 1  # never retried
    if jobs > 1:  # the cases before it ran in the killed worker, again after it
        assert len(ran(1.0)) == 2 and len(set(ran(1.0))) == 2


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_worker_crash_inside_a_group_reports_exactly_that_case(tmp_path, pid_backend, jobs):
    backend, ran = pid_backend
    cases = shared_cases(tmp_path, [[1.0, 666.0, 2.0]])
    result = run_suite(cases, Options(backend=backend), jobs=jobs, timeout=30)
    assert [(r.name, r.status) for r in result.reports] == [("e0-v1", "pass"), ("e0-v666", "error"),
                                                           ("e0-v2", "pass")]
    assert result.reports[1].reason == "the worker process running this case died (killed or crashed twice)"
    assert len(ran(666.0)) == 2


def test_an_unpicklable_case_is_its_own_error_in_a_group(tmp_path):
    cases = shared_cases(tmp_path, [[1.0, 2.0, 3.0]])
    cases[1].description = lambda: None  # cannot reach a worker
    result = run_suite(cases, jobs=2, timeout=30)
    assert [r.status for r in result.reports] == ["pass", "error", "pass"]
    assert "pickle" in result.reports[1].reason.lower()


def test_unknown_backend_is_each_cases_error(mixed):
    result = run_suite(mixed[:1], Options(backend="no_such_module_xyz:Thing"), timeout=None)
    assert result.reports[0].status == "error"
    assert "cannot load backend" in result.reports[0].reason


def test_resolve_backend(sleepy):
    assert resolve_backend("symgrad") == "symgrad"
    assert resolve_backend(sleepy) == sleepy
    from symgrad import backends

    assert type(backends.get(sleepy)).__name__ == "SleepyBackend"


def test_default_jobs():
    assert default_jobs() >= 1


# ---------------------------------------------------------------- formats


def test_json_document(mixed, tmp_path):
    bad = write_cases(tmp_path, "cases:\n  - name: broken\n    expr: x +\n    inputs: {x: 1.0}\n", "bad.yaml")
    _, errors = collect([bad])
    result = run_suite(mixed, timeout=None)
    text = to_json(result.reports, errors, 1.5, exit_code(result.reports, len(errors)))
    doc = json.loads(text)
    assert doc["version"] == 1
    assert doc["summary"] == {"total": 6, "passed": 4, "failed": 1, "errors": 0, "skipped": 1, "xfailed": 0,
                              "xpassed": 0, "file_errors": 1, "seconds": 1.5, "exit_code": 2}
    assert doc["file_errors"][0]["file"].endswith("bad.yaml")
    assert doc["file_errors"][0]["case"] == "broken"
    wrong = doc["cases"][2]
    assert {"file", "line", "name", "backend", "status", "duration", "mode", "reason", "comparisons"} <= set(wrong)
    assert wrong["name"] == "beta-wrong" and wrong["status"] == "fail" and wrong["line"] == 10
    failing = [c for c in wrong["comparisons"] if not c["passed"]]
    assert failing and failing[0]["name"] == "expect x"
    for key in ("name", "formula", "max_abs", "max_rel", "max_ulp", "worst_index", "mismatched", "undefined",
                "size"):
        assert key in failing[0]
    assert failing[0]["mismatched"] == 2 and failing[0]["worst_index"] == [1]
    assert to_json_dict(result.reports, errors, 1.5, 2) == doc


def test_junit_document(mixed, tmp_path):
    bad = write_cases(tmp_path, "cases:\n  - name: broken\n    expr: x +\n    inputs: {x: 1.0}\n", "bad.yaml")
    _, errors = collect([bad])
    result = run_suite(mixed, timeout=None)
    root = ET.fromstring(to_junit(result.reports, errors, 2.0))
    suite = root.find("testsuite")
    assert suite.get("tests") == "7" and suite.get("failures") == "1"
    assert suite.get("errors") == "1" and suite.get("skipped") == "1"
    cases = suite.findall("testcase")
    assert cases[0].get("classname").endswith("bad.yaml") and cases[0].find("error") is not None
    by_name = {c.get("name"): c for c in cases}
    failure = by_name["beta-wrong"].find("failure")
    assert failure is not None and "expect x" in failure.text and "mismatched" in failure.text
    assert by_name["beta-wrong"].get("classname").endswith("cases.yaml")
    assert by_name["gamma-skip"].find("skipped").get("message") == "not today"
    assert by_name["alpha-one"].find("failure") is None and by_name["alpha-one"].find("error") is None


def test_junit_names_backends_when_several(mixed, sleepy):
    result = run_suite(mixed[:1], [Options(), Options(backend=sleepy)], timeout=None)
    root = ET.fromstring(to_junit(result.reports, [], 0.1))
    assert [c.get("name") for c in root.iter("testcase")] == ["alpha-one[symgrad]", f"alpha-one[{sleepy}]"]


def test_progress_line(mixed):
    import io

    result = run_suite(mixed, timeout=None)
    stream = io.StringIO()
    p = Progress(len(result.reports), stream)
    for r in result.reports:
        p.update(r)
    p.clear()
    text = stream.getvalue()
    assert "[6/6]  4 passed  1 failed  0 errors  1 skipped" in text
    assert text.endswith("\r\x1b[K")
    silent = io.StringIO()
    q = Progress(3, silent, enabled=False)
    q.update(result.reports[0])
    q.clear()
    assert silent.getvalue() == ""


def test_runtime_registered_backend_gets_a_hint_in_workers(mixed):
    from symgrad import backends

    backends.register("runtime-only-test", lambda: backends.get("symgrad"))
    here = run_suite(mixed[:1], Options(backend="runtime-only-test"), timeout=None)
    assert here.reports[0].status == "pass"
    there = run_suite(mixed[:1], Options(backend="runtime-only-test"), timeout=30)
    assert there.reports[0].status == "error"
    assert "give it as module:attr" in there.reports[0].reason
    unknown = run_suite(mixed[:1], Options(backend="never-registered"), timeout=30)
    assert "unknown backend" in unknown.reports[0].reason and "module:attr" not in unknown.reports[0].reason


@pytest.mark.slow
def test_the_fork_server_exits_at_once_with_its_output_flushed():
    # the fork server holds the parent's stdout; its preload module makes its exit skip module teardown
    # (and leaves the garbage collector as it found it)
    import subprocess
    import sys

    from symgrad.checking import workers

    assert workers.PRELOAD == ["symgrad.checking.workers.preload"]
    code = ("import atexit, gc, sys, symgrad.checking.workers.preload\n"
            "assert gc.isenabled() and gc.get_freeze_count() > 0\n"
            "atexit.register(print, 'an earlier handler ran')\n"  # registered later: runs before the exit
            "sys.stdout.write('buffered, not yet flushed')\n"
            "raise SystemExit(0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout == "buffered, not yet flushedan earlier handler ran\n"
    code = ("import atexit, sys\n"
            "atexit.register(print, 'registered first: skipped')\n"
            "import symgrad.checking.workers.preload\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == ""  # the twin: without the preload it would print


def distinct_cases(folder, values):
    """Cases named d{k}-v{value}, each with an expression of its own (so each is its own group)."""
    lines = ["cases:"]
    for k, v in enumerate(values):
        lines += [f"  - name: d{k}-v{v:g}", f"    expr: x*{k + 2} + y", f"    inputs: {{x: [{v}], y: [0.5]}}"]
    write_cases(folder, "\n".join(lines) + "\n")
    cases, errors = collect([folder])
    assert not errors
    return cases


def test_cheap_groups_are_packed_into_fewer_tasks_ending_in_single_ones(tmp_path):
    from symgrad.checking.suite.pool import _Emitter, _Pool

    cases = distinct_cases(tmp_path, [float(v) for v in range(40)])
    tasks = [(c, Options()) for c in cases]
    pool = _Pool(tasks, 2, None, _Emitter(len(tasks), False, None, None))
    packed = pool._groups(list(range(len(tasks))), 2)
    assert sorted(i for task in packed for i in task) == list(range(40))  # every case once
    assert 4 <= len(packed) < 40 and max(map(len, packed)) <= 16
    assert [len(t) for t in packed[-2:]] == [1, 1]  # the workers finish together
    pool.cost[7] = 10_000.0  # a heavy case (expanded mode, say) is a task of its own, first
    assert pool._groups(list(range(len(tasks))), 2)[0] == [7]
    one = _Pool(tasks, 1, None, _Emitter(len(tasks), False, None, None))._groups(list(range(len(tasks))), 1)
    assert one == [list(range(0, 16)), list(range(16, 32)), list(range(32, 40))]  # one worker: runs, input order


@pytest.mark.slow
def test_a_hang_and_a_crash_inside_packed_tasks_report_exactly_those_cases(tmp_path, pid_backend):
    backend, ran = pid_backend
    values = [v + 0.5 for v in range(24)]  # 13.0 (hangs) and 666.0 (dies) only where placed
    values[9], values[16] = 13.0, 666.0
    cases = distinct_cases(tmp_path, values)
    completed = []
    result = run_suite(cases, Options(backend=backend), jobs=2, timeout=2.0, on_complete=completed.append)
    assert [r.name for r in result.reports] == [c.name for c in cases]
    bad = {r.name: r.reason for r in result.reports if r.status != "pass"}
    assert bad == {"d9-v13": "timed out after 2 s",
                   "d16-v666": "the worker process running this case died (killed or crashed twice)"}
    assert sorted(r.name for r in completed) == sorted(c.name for c in cases)  # once each
    # the hang may have been running when the other worker died: then it ran again, alone, and timed out;
    # the crash then ran alone until it had killed its worker twice
    assert 1 <= len(ran(13.0)) <= 2 and 2 <= len(ran(666.0)) <= 3


@pytest.mark.parametrize("slow", [77.0, 13.0])  # a slow but passing case, or one that hangs
@pytest.mark.slow
def test_a_case_running_beside_a_crash_is_not_blamed_for_it(tmp_path, pid_backend, slow):
    backend, ran = pid_backend
    cases = distinct_cases(tmp_path, [slow, 666.0])  # each its own task: they run side by side
    result = run_suite(cases, Options(backend=backend), jobs=2, timeout=3.0)
    want = "pass" if slow != 13.0 else "error"
    assert [(r.name, r.status) for r in result.reports] == [(cases[0].name, want), (cases[1].name, "error")]
    assert result.reports[1].reason == "the worker process running this case died (killed or crashed twice)"
    if slow == 13.0:
        assert result.reports[0].reason == "timed out after 3 s"
