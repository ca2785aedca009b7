"""Isolation: whatever goes wrong inside one case becomes that case's error; the run goes on.

Each failure is provoked in a different layer: a backend that raises, recurses
without end or runs out of memory, numpy refusing shapes, sympy blowing up.
The report keeps a one-line reason and the traceback; the next case still
runs and passes; the exit code is 2.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import sympy

import symgrad.checking.runner
import symgrad.symbolic
from symgrad import backends
from symgrad.backends import Backend, Unsupported
from symgrad.checking.cases import Case, case_from_dict
from symgrad.checking.report import Report, exit_code
from symgrad.checking.runner import Options, run_case


def _good() -> Case:
    return case_from_dict({"name": "good", "expr": "3*a**3 - b**2", "inputs": {"a": [2.0, 3.0], "b": [6.0, 4.0]}})


def _bad(name: str = "bad") -> Case:
    return case_from_dict({"name": name, "expr": "sin(x) * x", "inputs": {"x": [0.5, 1.0]}},
                          file="suite.yaml", line=7)


class Raising(Backend):
    name = "raising"

    def gradients(self, *args: Any) -> Any:
        raise ValueError("the engine broke\nsecond line of detail\n\n  third line")


class Recursing(Backend):
    name = "recursing"

    def gradients(self, *args: Any) -> Any:
        return self.gradients(*args)


class OutOfMemory(Backend):
    name = "oom"

    def gradients(self, *args: Any) -> Any:
        raise MemoryError()


class NumpyShapes(Backend):
    name = "numpy-shapes"

    def gradients(self, *args: Any) -> Any:
        return np.ones((2, 3)) @ np.ones((4, 5)), {}


class Chatty(Backend):
    name = "chatty"

    def gradients(self, *args: Any) -> Any:
        raise RuntimeError("x" * 10_000_000)  # a 10 MB message


class Missing(Backend):
    name = "missing"

    def gradients(self, *args: Any) -> Any:
        raise Unsupported("op 'sin'")


class Interrupted(Backend):
    name = "interrupted"

    def gradients(self, *args: Any) -> Any:
        raise KeyboardInterrupt


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ failed too")


class UnprintableBackend(Backend):
    name = "unprintable"

    def gradients(self, *args: Any) -> Any:
        raise Unprintable()


BACKENDS = {b.name: b for b in (Raising, Recursing, OutOfMemory, NumpyShapes, Chatty, Missing, Interrupted,
                                 UnprintableBackend)}


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    for name, cls in BACKENDS.items():
        backends.register(f"test-{name}", cls)  # a factory: built on first use
    yield


def _assert_error(report: Report, exc_name: str, text: str = "") -> None:
    assert report.status == "error"
    assert report.reason.startswith(f"{exc_name}:"), report.reason
    assert text in report.reason
    assert "\n" not in report.reason and len(report.reason) <= 400
    assert report.traceback.startswith("Traceback") and exc_name in report.traceback
    assert (report.file, report.line) == ("suite.yaml", 7)
    assert not report  # bool(report) is the verdict


def _run_then_good(backend: str) -> list[Report]:
    """The hostile case, then a good case on the default backend: the run must go on."""
    reports = [run_case(_bad(), backend=backend), run_case(_good())]
    assert reports[1].status == "pass", reports[1].table()
    assert exit_code(reports) == 2
    return reports


@pytest.mark.parametrize("backend, exc_name, text", [
    ("test-raising", "ValueError", "the engine broke second line of detail third line"),
    ("test-recursing", "RecursionError", "maximum recursion depth exceeded"),
    ("test-oom", "MemoryError", "(no message)"),
    ("test-numpy-shapes", "ValueError", "matmul"),
    ("test-chatty", "RuntimeError", "xxxx"),
])
def test_backend_exception_becomes_the_case_error(backend: str, exc_name: str, text: str) -> None:
    bad, _ = _run_then_good(backend)
    _assert_error(bad, exc_name, text)
    assert bad.backend == backend


def test_recursion_leaves_the_interpreter_usable() -> None:
    for _ in range(3):  # repeated: the stack unwinds each time
        _run_then_good("test-recursing")
    assert sys.getrecursionlimit() >= 1000


def test_a_backend_instance_works_too() -> None:
    report = run_case(_bad(), backend=Raising())
    _assert_error(report, "ValueError", "the engine broke")


def test_sympy_blowing_up_becomes_the_case_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise sympy.PolynomialError("sympy gave up\non this expression")

    monkeypatch.setattr(symgrad.checking.runner, "differentiate", explode)
    bad = run_case(_bad())
    _assert_error(bad, "PolynomialError", "sympy gave up on this expression")
    monkeypatch.undo()
    assert run_case(_good()).status == "pass"


def test_symbolic_recursion_and_memory_errors_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def deep(*args: Any, **kwargs: Any) -> Any:
        return deep(*args, **kwargs)

    def hungry(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError("cannot allocate 8 EiB")

    monkeypatch.setattr(symgrad.checking.runner, "differentiate", deep)
    _assert_error(run_case(_bad()), "RecursionError")
    monkeypatch.setattr(symgrad.checking.runner, "differentiate", hungry)
    _assert_error(run_case(_bad()), "MemoryError", "cannot allocate 8 EiB")
    monkeypatch.undo()
    assert run_case(_good()).status == "pass"


def test_numpy_errors_in_the_inputs_become_the_case_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Case, *args: Any, **kwargs: Any) -> Any:
        raise np.linalg.LinAlgError("numpy refused")

    monkeypatch.setattr(Case, "make_inputs", broken)
    _assert_error(run_case(_bad()), "LinAlgError", "numpy refused")


def test_unsupported_op_is_a_skip_not_an_error() -> None:
    report = run_case(_bad(), backend="test-missing")
    assert report.status == "skip" and "lacks op 'sin'" in report.reason
    assert exit_code([report, run_case(_good())]) == 0


def test_unknown_backend_is_the_case_error() -> None:
    report = run_case(_bad(), backend="no-such-engine")
    _assert_error(report, "BackendUnavailable", "unknown backend 'no-such-engine'")


def test_keyboard_interrupt_is_not_swallowed() -> None:
    with pytest.raises(KeyboardInterrupt):
        run_case(_bad(), backend="test-interrupted")


def test_every_case_of_a_run_is_reported() -> None:
    names = ["test-raising", "test-recursing", "test-oom", "test-numpy-shapes", "test-chatty"]
    reports = []
    for name in names:
        reports.append(run_case(_bad(name), options=Options(backend=name)))
        reports.append(run_case(_good()))
    assert [r.status for r in reports] == ["error", "pass"] * len(names)
    assert exit_code(reports) == 2
    assert all(r.to_dict()["reason"] == r.reason for r in reports)  # JSON-ready, reason kept


@pytest.mark.slow
def test_cli_unknown_backend_is_one_usage_error_and_exits_2(tmp_path: Any) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text("cases:\n  - name: one\n    expr: x\n    inputs: {x: 1.0}\n"
                    "  - name: two\n    expr: 2*x\n    inputs: {x: 1.0}\n")
    proc = subprocess.run([sys.executable, "-m", "symgrad.cli", "check", "--backend", "no-such-engine", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("unknown backend 'no-such-engine'") == 1 and "Traceback" not in proc.stderr
    assert "passed" not in proc.stdout  # no case ran


def test_exception_with_a_broken_str_is_still_the_case_error() -> None:
    # str(exc) raises: the reason names the exception type instead of escaping run_case
    report = run_case(_bad(), backend="test-unprintable")
    assert report.status == "error"
    assert report.reason == "Unprintable: <unprintable Unprintable>"
    assert "Unprintable" in report.traceback
    assert run_case(_good()).status == "pass"
