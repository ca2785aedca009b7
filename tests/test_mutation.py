"""Mutation testing (`symgrad mutate`): weak suites let mutants survive, strong ones kill them all."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from symgrad import mutation
from symgrad.checking.cases import case_from_dict
from symgrad.checking.runner import run_case
from symgrad.cli import main
from symgrad.ir import ops
from symgrad.mutation import KINDS, Mutant, MutantBackend, is_equivalent, mutants

WEAK = """\
cases:
  - name: sin-ones
    expr: sin(x)
    inputs: {x: {uniform: [-2.0, 2.0], shape: [5]}}
"""
STRONG = WEAK + """\
  - name: sin-random-g
    expr: sin(x)
    inputs: {x: {uniform: [-2.0, 2.0], shape: [5]}}
    grad_output: random
  - name: sin-inside-order2
    expr: exp(sin(x))
    inputs: {x: {uniform: [-2.0, 2.0], shape: [5]}}
    order: 2
"""


def suite(tmp_path: Path, text: str) -> Path:
    (tmp_path / "suite.yaml").write_text(textwrap.dedent(text))
    return tmp_path


def mutate(*args: object) -> object:
    return CliRunner().invoke(main, ["mutate", *map(str, args)], catch_exceptions=False)


def sin_case(**kw: object):
    return case_from_dict({"name": "s", "expr": "exp(sin(x))", "inputs": {"x": {"uniform": [-2, 2], "shape": [5]}},
                           **kw})


def test_weak_suite_with_ones_lets_ignore_g_and_higher_order_mutants_survive(tmp_path: Path) -> None:
    result = mutate(suite(tmp_path, WEAK), "--ops", "sin")
    assert result.exit_code == 1, result.output
    assert "SURVIVED  sin x ignore-g" in result.output
    assert "SURVIVED  sin x not-differentiable-again" in result.output
    assert "SURVIVED  sin x sign" not in result.output and "SURVIVED  sin x scale" not in result.output
    assert "mutation score: 2/4 observable mutants killed (50.0%); 0 equivalent" in result.output


def test_strong_suite_kills_every_mutant(tmp_path: Path) -> None:
    result = mutate(suite(tmp_path, STRONG), "--ops", "sin", "-v")
    assert result.exit_code == 0, result.output
    assert "SURVIVED" not in result.output
    assert "killed    sin x ignore-g  by" in result.output
    assert "killed    sin x not-differentiable-again  by" in result.output and "sin-inside-order2" in result.output
    assert "4/4 observable mutants killed (100.0%)" in result.output


def test_json_lists_survivors_and_k_selects_cases(tmp_path: Path) -> None:
    result = mutate(suite(tmp_path, STRONG), "--ops", "sin", "-k", "ones", "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert (doc["killed"], doc["observable"], doc["equivalent"], doc["cases"]) == (2, 4, 0, 1)
    assert {(s["op"], s["argument"], s["kind"]) for s in doc["survivors"]} == {
        ("sin", "x", "ignore-g"), ("sin", "x", "not-differentiable-again")}


def test_kinds_restrict_the_mutants(tmp_path: Path) -> None:
    result = mutate(suite(tmp_path, WEAK), "--ops", "sin", "--kinds", "sign,scale")
    assert result.exit_code == 0, result.output
    assert "2/2 observable mutants killed" in result.output


def test_an_op_no_case_uses_survives(tmp_path: Path) -> None:
    result = mutate(suite(tmp_path, WEAK), "--ops", "cos", "--kinds", "sign")
    assert result.exit_code == 1
    assert "SURVIVED  cos x sign  (no case uses the op)" in result.output


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    path = suite(tmp_path, WEAK)
    assert mutate(path, "--ops", "nosuchop").exit_code == 2
    assert mutate(path, "--kinds", "sign,flip").exit_code == 2
    assert mutate(path, "-k", "a and").exit_code == 2
    (tmp_path / "bad.yaml").write_text("cases:\n  - name: b\n    expr: sin(\n    inputs: {x: 1}\n")
    assert mutate(tmp_path, "--ops", "sin").exit_code == 2


def test_equivalent_mutants_are_recognised() -> None:
    assert is_equivalent(Mutant("add", 0, "swap")) and is_equivalent(Mutant("add", 1, "swap"))
    # not equivalent: sub's VJPs are g and -g; mul's g*y and g*x; matmul's have other shapes
    for m in (Mutant("sub", 0, "swap"), Mutant("mul", 1, "swap"), Mutant("matmul", 0, "swap"),
              Mutant("relu", 0, "ignore-g"), Mutant("sum", 0, "not-differentiable-again"),
              Mutant("acosh", 0, "scale"), Mutant("max", 0, "sign")):
        assert not is_equivalent(m), m


def test_equivalent_mutants_are_not_counted(tmp_path: Path) -> None:
    text = "cases:\n  - name: a\n    expr: x + y\n    inputs: {x: [1.0, 2.0], y: [3.0, 4.0]}\n    grad_output: random\n"
    result = mutate(suite(tmp_path, text), "--ops", "add", "--kinds", "swap,sign")
    assert result.exit_code == 0, result.output
    assert "equivalent (not counted): add x swap, add y swap" in result.output
    assert "2/2 observable mutants killed (100.0%); 2 equivalent" in result.output


def test_mutant_list_follows_the_table() -> None:
    assert [m.kind for m in mutants(["sin"])] == [k for k in KINDS if k != "swap"]
    assert {(m.arg, m.kind) for m in mutants(["multiply"], ["swap"])} == {(0, "swap"), (1, "swap")}
    assert mutants(["detach"]) == []  # no VJP, nothing to mutate
    assert str(Mutant("atan2", 0, "sign")) == "atan2 y sign" and str(Mutant("matmul", 1, "swap")) == "matmul b swap"


def test_not_differentiable_again_is_right_at_order_1_and_wrong_at_order_2() -> None:
    nda = MutantBackend(Mutant("sin", 0, "not-differentiable-again"))
    assert run_case(sin_case(grad_output="random"), backend=nda).status == "pass"
    assert run_case(sin_case(order=2), backend=nda).status == "fail"
    assert run_case(sin_case(order=2)).status == "pass"


def test_the_table_is_never_changed_even_when_a_run_raises(tmp_path: Path) -> None:
    before = {name: op.vjps for name, op in ops.OPS.items()}
    cases = [sin_case(order=2), sin_case(grad_output="random")]

    def boom(result: object) -> None:
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        mutation.run(cases, ["sin"], on_result=boom)
    report = mutation.run(cases, ["sin", "exp"])
    assert report.killed == report.observable == 8
    assert {name: op.vjps for name, op in ops.OPS.items()} == before
    # a mutant lives only in its backend: the default tape is right before, between and after
    assert run_case(sin_case(grad_output="random"), backend=MutantBackend(Mutant("sin", 0, "sign"))).status == "fail"
    assert run_case(sin_case(grad_output="random")).status == "pass"


@pytest.mark.slow
def test_the_shipped_cases_kill_every_observable_mutant() -> None:
    result = mutate("cases", "--format", "json")
    doc = json.loads(result.output)
    assert result.exit_code == 0, doc["survivors"]
    assert doc["killed"] == doc["observable"] and doc["baseline_failures"] == []
    assert doc["equivalent"] == 6  # add x/y swap, and mutants the table's new ops make equivalent (where, ...)
