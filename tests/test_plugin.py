"""The pytest plugin (symgrad.pytest_plugin), driven through pytest's own ``pytester``."""

from __future__ import annotations

import textwrap
from importlib import metadata

import pytest

# pytester's in-process runs drop the modules they import once they end; import what the plugin
# loads lazily here, so every run shares one sympy and one symgrad (a second copy of sympy's
# classes would not recognise the first's objects)
import symgrad.api
import symgrad.backends.symgrad_tape
import symgrad.runner
import symgrad.symbolic  # noqa: F401

OPS = """\
cases:
  - name: op-sin
    expr: sin(x)
    inputs: {x: [0.5, 1.0]}
    tags: [ops, trig]
  - name: op-square
    expr: x**2
    inputs: {x: [1.0, 2.0]}
    tags: [ops]
  - name: op-exp
    expr: exp(x)
    inputs: {x: {uniform: [-1.0, 1.0], shape: [3]}}
"""

TUTORIAL = """\
# the tutorial's example
cases:
  - name: tutorial-Q
    expr: 3*a**3 - b**2
    inputs:
      a: [2.0, 3.0]
      b: [6.0, 4.0]
    grad_output: [1.0, 1.0]
    expect:
      a: 9*a**2
      b: -2*b
    tags: [tutorial]
  - name: tutorial-loss
    expr: sum(100*x)
    inputs:
      x: [1.0, 2.0]
    tags: [tutorial]
"""

WRONG = """\
cases:
  - name: good
    expr: x**2
    inputs: {x: [1.0, 2.0]}
  - name: wrong-expect
    expr: x**2
    inputs: {x: [1.0, 2.0]}
    expect: {x: 3*x}
"""

UNRELATED = {
    ".github/workflows/ci.yml": """\
        name: CI
        on: [push, pull_request]
        jobs:
          test:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/checkout@v4
              - run: pytest
        """,
    "docker-compose.yml": """\
        services:
          web:
            image: "nginx:latest"
            ports: ["80:80"]
        """,
    # mentions `cases`, but not as the top-level list of a case file
    "config/suite.yaml": """\
        suite:
          cases: [a, b]
        """,
    # not even valid YAML, and no top-level `cases:` line
    "config/broken.yaml": """\
        key: [unclosed
        other: {
        """,
    "notes.yml": "- just\n- a list\n",
    "empty.yaml": "",
}


def write(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def collected_ids(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line and not line.startswith(("ERROR", "FAILED"))]


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project: two case files in cases/ and unrelated YAML all over the tree."""
    write(pytester, {"cases/ops.yaml": OPS, "cases/tutorial.yaml": TUTORIAL, **UNRELATED})
    return pytester


# ---------------------------------------------------------------- registration


def test_entry_point_declared() -> None:
    eps = metadata.entry_points(group="pytest11")
    assert any(ep.name == "symgrad" and ep.value == "symgrad.pytest_plugin" for ep in eps)


@pytest.mark.slow
def test_plugin_active_through_entry_point(suite: pytest.Pytester) -> None:
    # a fresh interpreter: the plugin arrives by the pytest11 entry point alone
    result = suite.runpytest_subprocess("cases", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    help_ = suite.runpytest_subprocess("--help")
    help_.stdout.fnmatch_lines(["*--symgrad-backend=NAME*", "*symgrad_paths (paths)*"])


@pytest.mark.slow
def test_assertion_rewriting_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_rw="""\
        import symgrad.api
        from _pytest.assertion.rewrite import AssertionRewritingHook

        def test_rewritten():
            assert isinstance(symgrad.api.__loader__, AssertionRewritingHook)
        """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error::pytest.PytestAssertRewriteWarning")
    result.assert_outcomes(passed=1)


def test_disabled_with_no_plugin(suite: pytest.Pytester) -> None:
    result = suite.runpytest("cases", "-p", "no:symgrad")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


# ---------------------------------------------------------------- collection


def test_collection_counts_and_node_ids(suite: pytest.Pytester) -> None:
    result = suite.runpytest("cases", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    assert result.parseoutcomes() == {"tests": 5}
    # files sorted, cases in the order of the file
    assert collected_ids(result) == [
        "cases/ops.yaml::op-sin",
        "cases/ops.yaml::op-square",
        "cases/ops.yaml::op-exp",
        "cases/tutorial.yaml::tutorial-Q",
        "cases/tutorial.yaml::tutorial-loss",
    ]


def test_one_file_and_one_case(suite: pytest.Pytester) -> None:
    suite.runpytest("cases/ops.yaml", "-q").assert_outcomes(passed=3)
    result = suite.runpytest("cases/ops.yaml::op-square", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["cases/ops.yaml::op-square PASSED*"])


def test_bare_pytest_ignores_unrelated_yaml(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    assert result.parseoutcomes() == {"tests": 5}
    out = result.stdout.str()
    for name in UNRELATED:
        assert name not in out
    # and a run goes through without a collection error
    suite.runpytest().assert_outcomes(passed=5)


def test_yml_suffix_and_nested_folders(pytester: pytest.Pytester) -> None:
    write(pytester, {"a/b/deep.yml": OPS, "a/top.yaml": TUTORIAL})
    result = pytester.runpytest("--collect-only", "-q")
    assert result.parseoutcomes() == {"tests": 5}
    assert "a/b/deep.yml::op-sin" in collected_ids(result)


def test_reportinfo_points_at_the_case_line(suite: pytest.Pytester) -> None:
    items, _ = suite.inline_genitems("cases")
    by_name = {item.name: item for item in items}
    path, line, domain = by_name["op-square"].reportinfo()
    assert path == suite.path / "cases" / "ops.yaml"
    assert line == 5  # 0-based: the case starts on line 6 (`- name: op-square`)
    assert domain == "symgrad case: op-square"
    assert by_name["tutorial-Q"].reportinfo()[1] == 2
    assert by_name["tutorial-Q"].location == ("cases/tutorial.yaml", 2, "symgrad case: tutorial-Q")


# ---------------------------------------------------------------- failures


def test_failure_shows_the_table(pytester: pytest.Pytester) -> None:
    write(pytester, {"cases/wrong.yaml": WRONG})
    result = pytester.runpytest("cases")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*_ symgrad case: wrong-expect _*",
        "FAIL wrong-expect [[]symgrad[]] cases/wrong.yaml:5   x**2*",
        "*input*formula*mismatched*worst index*tape*reference*",
        "*expect x*3*x*2/2*(1,)*4.0*6.0*proved DIFFERENT*",
        "*tolerance:*rtol=1e-07, atol=1e-07*",
        "FAILED cases/wrong.yaml::wrong-expect - FAIL wrong-expect*",
    ])
    # the table is shown as is: no Python traceback of the plugin
    assert "pytest_plugin.py" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_invalid_case_file_is_one_collection_error(suite: pytest.Pytester) -> None:
    write(suite, {"cases/broken.yaml": "cases:\n  - name: a\n    expr: x\n  inputs: [\n"})
    # pytest's rule for any collection error: nothing runs unless asked to continue
    result = suite.runpytest("cases")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR collecting cases/broken.yaml*",
        "invalid symgrad case file: cases/broken.yaml:4: invalid YAML*",
        "*Interrupted: 1 error during collection*",
    ])
    # the other files collect fine, and run beside the error when asked to
    result = suite.runpytest("cases", "--continue-on-collection-errors")
    result.assert_outcomes(passed=5, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("text, reason", [
    ("cases: 3\n", "'cases' must be a list"),
    ("cases: []\nbogus: 1\n", "unknown key 'bogus'"),
    ("defaults: {dtype: float8}\ncases:\n  - {name: a, expr: x, inputs: {x: 1.0}}\n", "defaults: dtype"),
    ("cases:\n  - !!python/object:os.system {}\n", "not allowed"),
])
def test_invalid_top_level_is_a_collection_error(pytester: pytest.Pytester, text: str, reason: str) -> None:
    write(pytester, {"cases/bad.yaml": text, "cases/ok.yaml": OPS})
    result = pytester.runpytest("cases", "--continue-on-collection-errors")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines([f"invalid symgrad case file: cases/bad.yaml*{reason}*"])


def test_invalid_case_errors_alone(pytester: pytest.Pytester) -> None:
    write(pytester, {"cases/mixed.yaml": """\
        cases:
          - name: fine
            expr: x**2
            inputs: {x: [1.0, 2.0]}
          - name: unknown-op
            expr: foo(x)
            inputs: {x: 1.0}
          - expr: x
            inputs: {x: 1.0}
          - name: fine
            expr: x
            inputs: {x: 1.0}
          - name: also-fine
            expr: cos(x)
            inputs: {x: 0.5}
        """})
    result = pytester.runpytest("cases", "-v")
    result.assert_outcomes(passed=2, errors=3)
    result.stdout.fnmatch_lines([
        "cases/mixed.yaml::fine PASSED*",
        "cases/mixed.yaml::unknown-op ERROR*",
        "cases/mixed.yaml::invalid-case@line8 ERROR*",
        "cases/mixed.yaml::fine@line10 ERROR*",
        "cases/mixed.yaml::also-fine PASSED*",
    ])
    result.stdout.fnmatch_lines([
        "*ERROR at setup of symgrad case: unknown-op*",
        "invalid symgrad case: cases/mixed.yaml:6: case 'unknown-op': *unknown function 'foo'*",
    ])
    result.stdout.fnmatch_lines(["invalid symgrad case: cases/mixed.yaml:8: missing required key 'name'"])
    result.stdout.fnmatch_lines(["*case 'fine': duplicate case name (first at line 2)*"])


# ---------------------------------------------------------------- skip, xfail, markers


SKIP_XFAIL = """\
cases:
  - name: skipped
    expr: x
    inputs: {x: 1.0}
    skip: not on Tuesdays
  - name: known-bug
    expr: x**2
    inputs: {x: [1.0]}
    expect: {x: [5.0]}
    xfail: the expectation is wrong on purpose
  - name: fixed-bug
    expr: x**2
    inputs: {x: [1.0]}
    xfail: thought broken
  - name: plain
    expr: x
    inputs: {x: 1.0}
"""


def test_skip_and_xfail_are_native(pytester: pytest.Pytester) -> None:
    write(pytester, {"cases/sx.yaml": SKIP_XFAIL})
    result = pytester.runpytest("cases", "-rsxXf")
    # an unexpected pass fails (strict), as `symgrad check` counts an xpass
    result.assert_outcomes(passed=1, skipped=1, xfailed=1, failed=1)
    result.stdout.fnmatch_lines([
        "SKIPPED [[]1[]] cases/sx.yaml*not on Tuesdays",
        "XFAIL cases/sx.yaml::known-bug - the expectation is wrong on purpose",
        "FAILED cases/sx.yaml::fixed-bug*XPASS(strict)*thought broken",
    ])


PER_BACKEND = """\
cases:
  - name: wrong-here
    expr: x**2
    inputs: {x: [1.0]}
    expect: {x: [5.0]}
    xfail: {symgrad: "a known mismatch on symgrad's tape only"}
  - name: passes-but-xfailed-here
    expr: x**2
    inputs: {x: [1.0]}
    xfail: {symgrad: "thought broken on symgrad"}
  - name: not-here
    expr: x
    inputs: {x: 1.0}
    skip: {symgrad: "symgrad lacks it"}
  - name: wrong-elsewhere
    expr: x**2
    inputs: {x: [1.0]}
    expect: {x: [5.0]}
    xfail: {torch: "a known mismatch on torch only"}
"""


def test_per_backend_skip_and_xfail_maps_apply_to_the_session_backend(pytester: pytest.Pytester) -> None:
    # as `symgrad check` reads them: the map's entry for the backend running, strict; another engine's
    # entry does not hide a mismatch here
    write(pytester, {"cases/pb.yaml": PER_BACKEND})
    result = pytester.runpytest("cases", "-rsxXf")
    result.assert_outcomes(skipped=1, xfailed=1, failed=2)
    result.stdout.fnmatch_lines([
        "SKIPPED [[]1[]] cases/pb.yaml*symgrad lacks it",
        "XFAIL cases/pb.yaml::wrong-here - a known mismatch on symgrad's tape only",
        "FAILED cases/pb.yaml::passes-but-xfailed-here*XPASS(strict)*",
        "FAILED cases/pb.yaml::wrong-elsewhere*",
    ])


def test_tags_are_markers(suite: pytest.Pytester) -> None:
    result = suite.runpytest("cases", "-m", "tutorial", "-v")
    result.assert_outcomes(passed=2, deselected=3)
    result.stdout.fnmatch_lines(["*tutorial-Q PASSED*", "*tutorial-loss PASSED*"])
    suite.runpytest("cases", "-m", "ops and not trig").assert_outcomes(passed=1, deselected=4)
    # tags are registered, so --strict-markers accepts them
    suite.runpytest("cases", "--strict-markers", "-m", "trig").assert_outcomes(passed=1, deselected=4)
    # every case carries the `symgrad` marker
    suite.runpytest("cases", "-m", "not symgrad").assert_outcomes(deselected=5)


def test_tags_select_with_k_too(suite: pytest.Pytester) -> None:
    suite.runpytest("cases", "-k", "tutorial and loss").assert_outcomes(passed=1, deselected=4)


# ---------------------------------------------------------------- backends and options


PICKY_CONFTEST = """\
from symgrad.backends import Unsupported, register
from symgrad.backends.symgrad_tape import SymgradBackend


class Picky(SymgradBackend):
    name = "picky"

    def apply(self, op, args, params):
        if op.name == "cos":
            raise Unsupported("op cos")
        if op.name == "tan":
            raise RuntimeError("the engine exploded")
        return super().apply(op, args, params)


register("picky", Picky)
"""

PICKY_CASES = """\
cases:
  - name: uses-sin
    expr: sin(x)
    inputs: {x: [0.5]}
  - name: uses-cos
    expr: cos(x)
    inputs: {x: [0.5]}
  - name: uses-tan
    expr: tan(x)
    inputs: {x: [0.5]}
  - name: wrong
    expr: x**2
    inputs: {x: [2.0]}
    expect: {x: [5.0]}
"""


def test_unknown_backend_is_a_usage_error(suite: pytest.Pytester) -> None:
    result = suite.runpytest("cases", "--symgrad-backend", "no-such-engine")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--symgrad-backend: unknown backend 'no-such-engine'; available: *symgrad*"])


def test_backend_option_reaches_the_cases(pytester: pytest.Pytester) -> None:
    write(pytester, {"conftest.py": PICKY_CONFTEST, "cases/p.yaml": PICKY_CASES})
    result = pytester.runpytest("cases", "--symgrad-backend", "picky", "-rs")
    # an op the backend lacks skips; an exception inside it fails with its reason
    result.assert_outcomes(passed=1, skipped=1, failed=2)
    out = result.stdout.str()
    assert "symgrad: backend=picky" in out  # the report header
    result.stdout.fnmatch_lines([
        "ERROR uses-tan: RuntimeError: the engine exploded",
        "  in cases/p.yaml:8  [[]picky[]]  tan(x)",
        "FAIL wrong [[]picky[]] cases/p.yaml:11*",
        # the skip points at the case, not at the plugin
        "SKIPPED [[]1[]] cases/p.yaml:5: backend 'picky' lacks op cos",
    ])
    assert "Traceback" not in out
    # -v adds the traceback of an error
    verbose = pytester.runpytest("cases", "--symgrad-backend", "picky", "-v")
    verbose.stdout.fnmatch_lines(["ERROR uses-tan: RuntimeError: the engine exploded", "*Traceback*",
                                  "*RuntimeError: the engine exploded"])


def test_backend_from_ini_and_command_line_wins(pytester: pytest.Pytester) -> None:
    write(pytester, {"conftest.py": PICKY_CONFTEST, "cases/p.yaml": PICKY_CASES})
    pytester.makeini("[pytest]\nsymgrad_backend = picky\n")
    pytester.runpytest("cases").assert_outcomes(passed=1, skipped=1, failed=2)
    pytester.runpytest("cases", "--symgrad-backend", "symgrad").assert_outcomes(passed=3, failed=1)


def test_xfail_does_not_hide_an_error(pytester: pytest.Pytester) -> None:
    write(pytester, {"conftest.py": PICKY_CONFTEST, "cases/p.yaml": """\
        cases:
          - name: broken-engine
            expr: tan(x)
            inputs: {x: [0.5]}
            xfail: a known mismatch
        """})
    result = pytester.runpytest("cases", "--symgrad-backend", "picky")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["ERROR broken-engine: RuntimeError: the engine exploded"])


def test_tolerance_options(pytester: pytest.Pytester) -> None:
    write(pytester, {"cases/wrong.yaml": WRONG})
    pytester.runpytest("cases", "--symgrad-rtol", "1.0").assert_outcomes(passed=2)
    pytester.runpytest("cases", "--symgrad-atol", "10").assert_outcomes(passed=2)
    result = pytester.runpytest("cases", "--symgrad-dtype", "float32")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*tolerance:*rtol=1.3e-06, atol=1e-05*"])
    result = pytester.runpytest("cases", "--symgrad-rtol", "1e-3", "--symgrad-exact", "--symgrad-dtype", "float32")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["symgrad: backend=symgrad, exact=True, rtol=0.001, dtype=float32",
                                 "*tolerance:*rtol=0.001, atol=1e-05*"])


def test_tolerance_from_ini_and_command_line_wins(pytester: pytest.Pytester) -> None:
    write(pytester, {"cases/wrong.yaml": WRONG})
    pytester.makeini("[pytest]\nsymgrad_rtol = 1e-6\nsymgrad_atol = 3.0\n")
    pytester.runpytest("cases").assert_outcomes(passed=2)
    result = pytester.runpytest("cases", "--symgrad-atol", "0")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*tolerance:*rtol=1e-06, atol=0*"])


def test_bad_ini_values_are_usage_errors(pytester: pytest.Pytester) -> None:
    write(pytester, {"cases/ops.yaml": OPS})
    pytester.makeini("[pytest]\nsymgrad_rtol = lots\n")
    result = pytester.runpytest("cases")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*symgrad_rtol: not a number: 'lots'*"])
    pytester.makeini("[pytest]\nsymgrad_dtype = float8\n")
    result = pytester.runpytest("cases")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*symgrad_dtype: must be one of float64, float32, float16, bfloat16*"])
    assert pytester.runpytest("cases", "--symgrad-rtol", "-1").ret == pytest.ExitCode.USAGE_ERROR


def test_exact_option(pytester: pytest.Pytester) -> None:
    write(pytester, {"cases/ops.yaml": OPS})
    pytester.runpytest("cases", "--symgrad-exact").assert_outcomes(passed=3)


# ---------------------------------------------------------------- fixtures


FIXTURE_TESTS = """\
import symgrad


def test_backend(symgrad_backend):
    assert symgrad_backend == "{backend}"


def test_check_passes(symgrad_check):
    report = symgrad_check("3*a**3 - b**2", a=[2., 3.], b=[6., 4.], expect={{"a": "9*a**2", "b": "-2*b"}})
    assert report
    assert report.backend == "{backend}"


def test_check_traced_function(symgrad_check):
    assert symgrad_check(lambda x: symgrad.sin(x) * x, x=[0.5, 1.0]).status == "pass"


def test_check_fails(symgrad_check):
    symgrad_check("3*a**3 - b**2", a=[2., 3.], b=[6., 4.], expect={{"a": "9*a", "b": "-2*b"}})
"""


def test_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fix=FIXTURE_TESTS.format(backend="symgrad"))
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "*GradientMismatch: FAIL check [[]symgrad[]]   3*a**3 - b**2*",
        "*expect a*9*a*2/2*proved DIFFERENT*",
        "FAILED test_fix.py::test_check_fails - symgrad.api.GradientMismatch*",
    ])
    # the traceback stops at the user's call, not inside the fixture or symgrad
    out = result.stdout.str()
    assert "kwargs.setdefault" not in out
    assert "def assert_gradients" not in out


def test_fixtures_follow_the_session_options(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PICKY_CONFTEST)
    pytester.makepyfile(test_fix=FIXTURE_TESTS.format(backend="picky"))
    result = pytester.runpytest("--symgrad-backend", "picky")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*GradientMismatch: FAIL check [[]picky[]]*"])
    # session tolerances loosen the check; keywords in the call win over them
    pytester.makepyfile(test_tol="""\
        def test_loose(symgrad_check):
            symgrad_check("x**2", x=[1.0], expect={"x": [2.5]})

        def test_call_wins(symgrad_check):
            symgrad_check("x**2", x=[1.0], expect={"x": [2.5]}, atol=0.0)
        """)
    result = pytester.runpytest("test_tol.py", "--symgrad-atol", "1.0")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_tol.py::test_call_wins*"])


def test_fixture_dtype_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_dtype="""\
        def test_dtype(symgrad_check):
            report = symgrad_check("x**2", x=[1.0, 2.0])
            assert all(c.rtol == 1.3e-06 for c in report.comparisons)
        """)
    pytester.runpytest("--symgrad-dtype", "float32").assert_outcomes(passed=1)


# ---------------------------------------------------------------- symgrad_paths


@pytest.mark.slow
def test_symgrad_paths_for_a_bare_pytest(pytester: pytest.Pytester) -> None:
    write(pytester, {
        "cases/ops.yaml": OPS,
        "more/tutorial.yaml": TUTORIAL,
        # a deliberately broken fixture file beside the tests: not a test of this project
        "tests/data/broken.yaml": "cases: 3\n",
        "tests/test_unit.py": "def test_unit():\n    pass\n",
        **UNRELATED,
    })
    pytester.makeini("[pytest]\ntestpaths = tests\nsymgrad_paths =\n    cases\n    more\n")
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    assert collected_ids(result) == [
        "tests/test_unit.py::test_unit",
        "cases/ops.yaml::op-sin",
        "cases/ops.yaml::op-square",
        "cases/ops.yaml::op-exp",
        "more/tutorial.yaml::tutorial-Q",
        "more/tutorial.yaml::tutorial-loss",
    ]
    pytester.runpytest().assert_outcomes(passed=6)
    # arguments on the command line replace the default folders, as for testpaths ...
    pytester.runpytest("tests/test_unit.py").assert_outcomes(passed=1)
    pytester.runpytest("cases").assert_outcomes(passed=3)
    # ... and a folder named there is collected, listed or not
    result = pytester.runpytest("tests/data")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["invalid symgrad case file: tests/data/broken.yaml*'cases' must be a list*"])


def test_symgrad_paths_missing_folder_warns(pytester: pytest.Pytester) -> None:
    write(pytester, {"cases/ops.yaml": OPS})
    pytester.makeini("[pytest]\nsymgrad_paths = cases nowhere\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, warnings=1)
    result.stdout.fnmatch_lines(["*symgrad_paths: no such folder: *nowhere*"])


def test_symgrad_paths_in_pyproject(pytester: pytest.Pytester) -> None:
    write(pytester, {"cases/ops.yaml": OPS, "tests/test_unit.py": "def test_unit():\n    pass\n",
                     "tests/data/ops.yaml": OPS})
    pytester.makepyprojecttoml("""\
        [tool.pytest.ini_options]
        testpaths = ["tests"]
        symgrad_paths = ["cases"]
        symgrad_backend = "symgrad"
        symgrad_exact = true
        """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["symgrad: backend=symgrad, exact=True"])


def test_testpaths_alone_work_too(pytester: pytest.Pytester) -> None:
    write(pytester, {"cases/ops.yaml": OPS, "tests/test_unit.py": "def test_unit():\n    pass\n"})
    pytester.makeini("[pytest]\ntestpaths = tests cases\n")
    pytester.runpytest().assert_outcomes(passed=4)


# ---------------------------------------------------------------- xdist


@pytest.mark.slow
def test_xdist_runs_every_case_once_with_the_same_outcomes(suite: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    write(suite, {"cases/wrong.yaml": WRONG, "cases/sx.yaml": SKIP_XFAIL})
    serial = suite.runpytest_subprocess("cases", "-p", "no:cacheprovider", "-v")
    parallel = suite.runpytest_subprocess("cases", "-p", "no:cacheprovider", "-n", "2", "-v")
    expected = {"passed": 7, "failed": 2, "skipped": 1, "xfailed": 1}
    assert serial.parseoutcomes() == expected
    assert parallel.parseoutcomes() == expected
    # each case ran exactly once, with the same result on both runs
    def outcomes(result: pytest.RunResult) -> dict[str, str]:
        found: dict[str, str] = {}
        for line in result.outlines:
            for word in ("PASSED", "FAILED", "SKIPPED", "XFAIL"):
                if f" {word}" in line and "::" in line and not line.startswith(word):
                    node = next(p for p in line.split() if "::" in p)
                    assert node not in found, f"{node} ran twice"
                    found[node] = word
        return found

    assert outcomes(serial) == outcomes(parallel)
    assert len(outcomes(parallel)) == 11
    # the failure table survived the trip from the worker (a plain string)
    parallel.stdout.fnmatch_lines(["*expect x*3*x*2/2*(1,)*4.0*6.0*proved DIFFERENT*"])
