"""The pytest plugin's --symgrad-backend (and ini symgrad_backend) takes module:attr, as `symgrad check
--backend module:attr` does: a toy backend module checked through collected case files, with a
wrong toy backend failing the same cases."""

from __future__ import annotations

import textwrap

import pytest

# pytester's in-process runs drop the modules they import; import what the plugin loads lazily here
import symgrad.api
import symgrad.backends.symgrad_tape
import symgrad.checking.suite
import symgrad.runner
import symgrad.symbolic  # noqa: F401

TOY = '''
from symgrad.backends import Backend, get


class Toy(Backend):
    """symgrad's own tape, its gradients multiplied by `scale` (1: right; else wrong)."""

    name = "toy"

    def __init__(self, scale=1.0):
        self.scale = scale

    def gradients(self, expr, inputs, wrt, order, grad_output):
        value, grads = get("symgrad").gradients(expr, inputs, wrt, order, grad_output)
        return value, {k: None if g is None else g * self.scale for k, g in grads.items()}


right = Toy()
wrong = Toy(1.5)


def make():
    return Toy()
'''

CASES = """\
cases:
  - name: sin
    expr: sin(x)
    inputs: {x: [0.5, 1.0]}
  - name: cube
    expr: x**3 - 2*x
    inputs: {x: [1.0, 2.0, -1.5]}
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.syspathinsert()
    (pytester.path / "toy_backend_mod.py").write_text(textwrap.dedent(TOY), encoding="utf-8")
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "ops.yaml").write_text(CASES, encoding="utf-8")
    return pytester


@pytest.mark.parametrize("spec", ["toy_backend_mod:right", "toy_backend_mod:Toy", "toy_backend_mod:make"])
def test_module_attr_backend_runs_the_collected_cases(project: pytest.Pytester, spec: str) -> None:
    result = project.runpytest("cases", "--symgrad-backend", spec, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*backend={spec}*"])


def test_wrong_module_attr_backend_fails_the_collected_cases(project: pytest.Pytester) -> None:
    result = project.runpytest("cases", "--symgrad-backend", "toy_backend_mod:wrong")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*toy_backend_mod:wrong*", "*mismatched*"])


def test_module_attr_backend_from_the_ini(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nsymgrad_backend = toy_backend_mod:right\n")
    project.runpytest("cases").assert_outcomes(passed=2)
    project.makeini("[pytest]\nsymgrad_backend = toy_backend_mod:wrong\n")
    project.runpytest("cases").assert_outcomes(failed=2)


@pytest.mark.parametrize("spec, message", [
    ("toy_backend_mod:missing", "cannot load backend 'toy_backend_mod:missing'"),
    ("no_such_module_xyz:thing", "cannot load backend 'no_such_module_xyz:thing'"),
])
def test_unloadable_module_attr_backend_is_a_usage_error(project: pytest.Pytester, spec: str, message: str) -> None:
    result = project.runpytest("cases", "--symgrad-backend", spec)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--symgrad-backend: {message}*"])


def test_fixture_names_the_module_attr_backend(project: pytest.Pytester) -> None:
    project.makepyfile(test_fixture="""
        def test_backend(symgrad_backend, symgrad_check):
            assert symgrad_backend == "toy_backend_mod:right"
            symgrad_check("x**2", x=[1.0, 2.0])
    """)
    project.runpytest("test_fixture.py", "--symgrad-backend", "toy_backend_mod:right").assert_outcomes(passed=1)
    # its twin: the wrong toy backend makes the fixture's assertion fail
    result = project.runpytest("test_fixture.py", "--symgrad-backend", "toy_backend_mod:wrong")
    result.assert_outcomes(failed=1)
