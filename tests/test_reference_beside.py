"""From PARALLEL_SIZE input elements, the reference runs on a second thread while the engine runs
(checking/runner.py: _both): the verdicts, the compared arrays and the errors must be those of the
sequential check, and a wrong gradient must still fail."""

import threading

import numpy as np
import pytest

import symgrad
from symgrad.checking import runner

perturbed = pytest.importorskip("perturbed")  # tests/perturbed.py: registers the wrong backends

EXPR = "3*a**3 - b**2 + sin(a)*exp(-b) + tanh(a*b) + log(a+b)"


def _inputs(n=3000):
    rng = np.random.default_rng(7)
    return {"a": rng.uniform(0.5, 2.0, n), "b": rng.uniform(0.5, 2.0, n)}


@pytest.fixture(params=["beside", "after"])
def together(request, monkeypatch):
    """Both paths at a small n: PARALLEL_SIZE 1 puts every first-order check on two threads."""
    monkeypatch.setattr(runner, "PARALLEL_SIZE", 1 if request.param == "beside" else 1 << 62)
    return request.param == "beside"


@pytest.fixture
def calls(monkeypatch):
    """Each call of the reference, as (the thread it ran on, numpy's error state there)."""
    seen = []
    real = runner.differentiate

    def spy(*args, **kwargs):
        seen.append((threading.current_thread(), np.geterr()))
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "differentiate", spy)
    return seen


def _summary(report):
    return [(c.name, c.passed, c.mismatched, c.at_kink, c.max_ulp, c.worst_index) for c in report.comparisons]


def test_the_same_verdict_and_arrays_on_either_path(monkeypatch):
    args = _inputs()
    reports = {}
    for size in (1, 1 << 62):
        monkeypatch.setattr(runner, "PARALLEL_SIZE", size)
        reports[size] = symgrad.check(EXPR, **args)
    beside, after = reports[1], reports[1 << 62]
    assert beside.status == after.status == "pass"
    assert _summary(beside) == _summary(after)
    np.testing.assert_array_equal(beside.reference_value, after.reference_value)
    for seq, g in after.gradients.items():
        np.testing.assert_array_equal(beside.gradients[seq].reference, g.reference)


@pytest.mark.parametrize("backend", ["api-wrong-b", "api-wrong-all"])
def test_a_wrong_gradient_fails_on_either_path(together, backend):
    report = symgrad.check(EXPR, backend=backend, **_inputs())
    assert report.status == "fail"
    assert any(not c.passed for c in report.comparisons if c.name == "b")


def test_the_right_gradient_passes_on_either_path(together):
    assert symgrad.check(EXPR, **_inputs()).status == "pass"


def test_the_reference_runs_on_a_second_thread_only_beside(together, calls):
    assert symgrad.check(EXPR, **_inputs()).status == "pass"
    assert [t is threading.main_thread() for t, _ in calls] == [not together]


def test_an_error_in_the_reference_is_the_cases_error(together, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("the reference broke")

    monkeypatch.setattr(runner, "differentiate", broken)
    report = symgrad.check(EXPR, **_inputs())
    assert report.status == "error"
    assert report.reason == "ZeroDivisionError: the reference broke"


def test_the_engines_error_comes_first_and_the_thread_has_ended(together, monkeypatch):
    ended = threading.Event()
    real = runner.differentiate

    def slow_then_broken(*args, **kwargs):
        real(*args, **kwargs)
        ended.set()
        raise ZeroDivisionError("the reference broke too")

    def engine_breaks(*args, **kwargs):
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(runner, "differentiate", slow_then_broken)
    monkeypatch.setattr(runner, "check_gradients", engine_breaks)
    report = symgrad.check(EXPR, **_inputs())
    assert report.status == "error"
    assert report.reason == "RuntimeError: the engine broke"
    # beside, the reference was waited for; after, it never ran (the engine broke first)
    assert ended.is_set() is together


def test_the_callers_numpy_error_state_reaches_the_reference(together, calls):
    with np.errstate(under="print"):
        assert symgrad.check(EXPR, **_inputs()).status == "pass"
    assert [err["under"] for _, err in calls] == ["print"]


def test_second_order_stays_on_one_thread(monkeypatch, calls):
    monkeypatch.setattr(runner, "PARALLEL_SIZE", 1)
    assert symgrad.check(EXPR, order=2, **_inputs(50)).status == "pass"
    assert [t for t, _ in calls] == [threading.main_thread()] * 2
    assert symgrad.check(EXPR, order=2, backend="api-wrong-b", **_inputs(50)).status == "fail"
