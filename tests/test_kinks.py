"""Rounding across a kink (issue 14, item 5): the float forward decides the branch; an element
whose branch rounding decides is *at a kink*, counted and never a failure, while a wrong
derivative beside a kink (or at a kink both agree on) still fails."""

from __future__ import annotations

import json

import pytest

import symgrad
from symgrad.checking.formats import to_json_dict
from symgrad.mutation import Mutant, MutantBackend

# the float forward leaves 2.2e-16 inside abs, sympy's exact value is 0
HYPOT = "abs(sqrt(x*x + 1.0) - hypot(x, y))"
X0 = 1.230048321934948
# sympy folds cos(acos(u)) to u; every float engine gets 6.1e-17 at y = 0
ACOS = "abs(cos(acos(0.9*tanh(y))))"


def engine(name: str) -> str:
    if name != "symgrad":
        pytest.importorskip(name)
    return name


def kinks(report: symgrad.Report) -> dict[str, int]:
    return {c.name: c.at_kink for c in report.comparisons if c.at_kink}


@pytest.mark.parametrize("backend", ["symgrad", "torch", "autograd"])
def test_rounding_across_abs_is_at_a_kink_not_a_failure(backend: str) -> None:
    report = symgrad.check(HYPOT, backend=engine(backend), x=[X0, 0.5], y=[1.0, 2.0])
    assert report.status == "pass", report.table()
    assert kinks(report) == {"x": 1, "y": 1}
    assert "at a kink (rounding) x 1/2, y 1/2" in report.summary_line()
    assert "at kink" in report.table() and "rounding decides a kink" in report.table()


@pytest.mark.parametrize("backend", ["symgrad", "torch", "autograd"])
def test_sympy_folding_a_kink_argument_to_zero(backend: str) -> None:
    report = symgrad.check(ACOS, backend=engine(backend), y=[0.0, 0.5])
    assert report.status == "pass", report.table()
    assert kinks(report) == {"y": 1}


@pytest.mark.parametrize("kind", ["sign", "scale"])
def test_a_wrong_derivative_beside_the_kink_still_fails(kind: str) -> None:
    # the rounding element is not compared; the others (one beside the kink at 1e-300) are
    wrong = MutantBackend(Mutant("abs", 0, kind))
    report = symgrad.check(HYPOT, backend=wrong, x=[X0, 0.5], y=[1.0, 2.0])
    assert report.status == "fail"
    assert {c.name: c.mismatched for c in report.comparisons if not c.passed} == {"x": 1, "y": 1}
    near = symgrad.check("abs(x - 1e-300)*3", backend=wrong, x=[0.0])
    assert near.status == "fail" and not kinks(near)
    assert symgrad.check("abs(x - 1e-300)*3", x=[0.0]).status == "pass"


def test_a_convention_at_an_exact_kink_is_still_compared() -> None:
    # float and exact both exactly 0: no rounding; abs'(0) = 0 is checked as usual
    ok = symgrad.check("abs(x)", x=[0.0, -2.0], expect={"x": [0.0, -1.0]})
    assert ok.status == "pass" and not kinks(ok)
    assert symgrad.check("abs(x)", x=[0.0, -2.0], expect={"x": [1.0, -1.0]}).status == "fail"
    tie = symgrad.check("maximum(x, y)", x=[1.0], y=[1.0], expect={"x": [0.5], "y": [0.5]})
    assert tie.status == "pass" and not kinks(tie)
    assert symgrad.check("maximum(x, y)", x=[1.0], y=[1.0], expect={"x": [1.0]}).status == "fail"


def test_expanded_mode_marks_the_elements_feeding_the_kink() -> None:
    report = symgrad.check(f"sum({HYPOT})", mode="expanded", x=[X0, 0.5], y=[1.0, 2.0])
    assert report.status == "pass", report.table()
    assert kinks(report) == {"x": 1, "y": 1}
    wrong = symgrad.check(f"sum({HYPOT})", mode="expanded", x=[X0, 0.5], y=[1.0, 2.0],
                          backend=MutantBackend(Mutant("abs", 0, "sign")))
    assert wrong.status == "fail"


def test_a_tie_that_only_rounding_makes_marks_the_whole_reduction() -> None:
    # floats: element 0 is the unique max (2.2e-16 > 0); sympy: both are 0, a tie split 1/2, 1/2
    expr = "max(sqrt(x*x + 1.0) - hypot(x, 1.0))"
    report = symgrad.check(expr, x=[X0, 0.0])
    assert kinks(report) == {"x": 2}
    # the gradient is then compared nowhere: classified as an error that says so, never a pass
    assert report.status == "error" and report.reason.startswith("nothing compared: every defined element at a kink in x")
    # without rounding the tie is compared (and a wrong split caught)
    assert symgrad.check("max(x)", x=[2.0, 2.0], expect={"x": [0.5, 0.5]}).status == "pass"
    assert symgrad.check("max(x)", x=[2.0, 2.0], expect={"x": [1.0, 0.0]}).status == "fail"


def test_at_kink_in_json() -> None:
    report = symgrad.check(HYPOT, x=[X0, 0.5], y=[1.0, 2.0])
    data = json.loads(json.dumps(to_json_dict([report], [], 0.0, 0)))
    comparisons = {c["name"]: c for c in data["cases"][0]["comparisons"]}
    assert comparisons["x"]["at_kink"] == 1 and comparisons["value"]["at_kink"] == 0
    assert report.to_dict()["comparisons"][1]["at_kink"] == 1


def test_fuzz_seed_1_on_the_tape_has_no_false_failure() -> None:
    from symgrad.fuzzing import fuzz

    result = fuzz(count=50, seed=1, out_dir=None)
    assert result.failed == 0 and result.errors == 0, result
