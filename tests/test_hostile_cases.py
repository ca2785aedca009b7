"""Hardening: hostile case files are refused, quickly, with a clear message, and nothing runs.

The corpus lives in ``tests/data/hostile/`` beside one good file (``good.yaml``).
Each hostile file is refused at the file level (a ``CaseError`` for the whole
file), per case (one ``CaseError`` per bad case) or, for what is only
detectable when a case runs, with the case's status ``error``.  Every message
names the file, the line and, where there is one, the case.

Each hole these tests found was fixed in the code; the tests keep it closed.
"""

from __future__ import annotations

import builtins
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symgrad.checking.cases import CaseError, case_from_dict, collect, load_file, read_data
from symgrad.checking.cases import yaml_loading as cases_module
from symgrad.checking.report import exit_code
from symgrad.checking.runner import Options, run_case
from symgrad.ir.limits import DEFAULT, LimitExceeded, Limits

HOSTILE = Path(__file__).parent / "data" / "hostile"
GOOD = "good.yaml"

PeakBytes = Callable[..., tuple[Any, int]]  # the conftest fixture peak_bytes


@dataclass(frozen=True)
class Want:
    """What loading one hostile file must give."""

    errors: tuple[tuple[str | None, int | None, str], ...]  # (case, line, text in the message)
    kept: tuple[str, ...] = ()  # valid cases the file still yields
    in_folders: bool = True  # False: not a case file, so skipped when a folder is collected


TAG = "is not allowed (case files are plain YAML)"
WANT: dict[str, Want] = {
    "python_object_apply.yaml": Want(((None, 4, "YAML tag '!!python/object/apply:os.system' " + TAG),)),
    "python_name.yaml": Want(((None, 6, "YAML tag '!!python/name:os.system' " + TAG),)),
    "python_module.yaml": Want(((None, 6, "YAML tag '!!python/module:antigravity' " + TAG),)),
    "python_object_new.yaml": Want(((None, 3, "YAML tag '!!python/object/new:subprocess.Popen' " + TAG),)),
    "custom_tag.yaml": Want(((None, 4, "YAML tag '!include' " + TAG),)),
    "broken_yaml.yaml": Want(((None, 5, "invalid YAML: while parsing a flow sequence"),)),
    "scalar_top.yaml": Want(((None, None, "a case file must be a mapping with a 'cases' list, got a string"),),
                            in_folders=False),
    "list_top.yaml": Want(((None, 2, "a case file must be a mapping with a 'cases' list, got a list"),),
                          in_folders=False),
    "empty.yaml": Want(((None, None, "got an empty file"),), in_folders=False),
    # not UTF-8, but a line starts with `cases:`: reported in folders too (not skipped as unrelated YAML)
    "not_utf8.yaml": Want(((None, None, "cannot read file: 'utf-8' codec can't decode"),)),
    "cases_not_a_list.yaml": Want(((None, 2, "'cases' must be a list of cases, got a mapping"),)),
    "list_where_case.yaml": Want((
        (None, 3, "a case must be a mapping, got a list"),
        (None, 4, "a case must be a mapping, got a string ('name: x')"),
        (None, 5, "a case must be a mapping, got int 42"),
        (None, 6, "a case must be a mapping, got nothing"),
        (None, 7, "a case must be a mapping, got a list"),
    )),
    "unknown_keys.yaml": Want(((None, 6, "unknown key 'setup' (known: version, defaults, cases)"),)),
    "unknown_case_keys.yaml": Want((
        ("exec-key", 6, "unknown key 'exec'"),
        ("recipe-key", 10, "input 'x': unknown key 'dtype'"),
    )),
    "duplicate_names.yaml": Want((("twin", 7, "duplicate case name (first at line 4)"),), kept=("twin",)),
    "duplicate_keys.yaml": Want((("dup-key", 6, "duplicate key 'expr' (first at line 4)"),)),
    # aliases expanded, the file holds billions of values: refused as a whole (see test_billion_laughs_...)
    "billion_laughs.yaml": Want(((None, None, "exceeds the limit max_elements=50000000"),)),
    "recursive_alias.yaml": Want((("ouroboros", 6, "input 'x': ragged nested list"),)),
    "deep_input_list.yaml": Want(((None, 6, "invalid YAML: nested deeper than the limit max_yaml_depth=100"),)),
    "deep_expression.yaml": Want((
        ("deep-parens", 4, "expr does not parse: nesting depth exceeds the limit max_depth=64"),
        ("deep-calls", 7, "expr does not parse: nesting depth exceeds the limit max_depth=64"),
        ("deep-minus", 10, "expr does not parse: nesting depth exceeds the limit max_depth=64"),
        ("deep-expect", 15, "expect 'x' does not parse: nesting depth exceeds the limit max_depth=64"),
    )),
    "power_tower.yaml": Want((
        ("tower", 4, "exceeds the limit max_const_digits=300"),
        ("nested-power", 7, "exceeds the limit max_const_digits=300"),
        ("tower-in-expect", 12, "expect 'x' does not parse: digits of a constant's value"),
        ("tower-in-value", 16, "value does not parse: digits of a constant's value"),
        ("long-literal", 18, "digits of an integer literal: 82 exceeds the limit max_int_digits=30"),
    )),
    "huge_shape.yaml": Want((
        ("huge-shape", 6, "input 'x' of shape (100000, 100000, 100000): 1000000000000000 exceeds the limit "
                          "max_elements=50000000"),
        ("many-dims", 10, "input 'x': number of dimensions: 12 exceeds the limit max_ndim=8"),
        ("huge-linspace", 14, "exceeds the limit max_elements=50000000"),
        ("huge-broadcast", 17, "the broadcast of the inputs of shape (100000, 100000)"),
        ("huge-matmul", 21, "the result of `x@y` of shape (100000, 100000)"),
    )),
    "hostile_expressions.yaml": Want((
        ("import-system", 4, "expr does not parse: attribute access"),
        ("open-in-expect", 9, "expect 'x' does not parse: attribute access"),
        ("dunder-in-value", 13, "value does not parse: attribute access"),
        ("lambda", 15, "expr does not parse"),
        ("fstring", 18, "expr does not parse"),
    )),
    # round 2: a 400-digit integer in any list is an error of its case (it was an OverflowError for the run)
    "huge_integers.yaml": Want((
        ("big-input", 5, "input 'x': integer 100000000000000000...000000... is too large for a float at [1]"),
        ("big-grad-output", 9, "grad_output: integer 1000"),
        ("big-expect", 13, "expect 'x': integer 1000"),
        ("big-value", 17, "value: integer 1000"),
        ("big-seed", 21, "seed must be an integer from 0 to 2**64-1"),
        ("big-scalar", 24, "input 'x': integer 1000"),
        ("big-in-nested", 27, "input 'x': integer -1000"),
    )),
    "derivative_bomb.yaml": Want((
        ("thousand-inputs-order-3", 5, "1001001000 exceeds the limit max_derivatives=10000"),
        ("wide-input-order-2", 9, "elements of all derivatives of orders 1..2: 150000000 exceeds the limit max_elements"),
    )),
    "exact_rationals.yaml": Want((
        ("one-plus-tiny-power", 4, "digits of an exact constant's numerator and denominator: ~5.8e+30 exceeds"),
        ("reciprocal-power", 7, "exceeds the limit max_const_digits=300"),
        ("half-integer-exponent", 10, "exceeds the limit max_const_digits=300"),
        ("in-expect", 15, "expect 'x' does not parse: digits of an exact constant's"),
        ("in-value", 19, "value does not parse: digits of an exact constant's"),
    )),
    "utf16.yaml": Want(((None, None, "(it looks like UTF-16 or UTF-32: save it as UTF-8)"),)),
    # valid on disk: refused when it runs (see test_expanded_mode_symbol_bomb_is_refused_when_run)
    "expanded_symbols.yaml": Want((), kept=("expanded-millions",)),
}
RUN_TIME = {"expanded-millions": "exceeds the limit max_symbols=4096"}


def _hostile_files() -> list[str]:
    return sorted(p.name for p in HOSTILE.glob("*.yaml") if p.name != GOOD)


# ---------------------------------------------------------------- a sandbox: nothing runs


@dataclass
class Sandbox:
    cwd: Path
    imports: list[str]
    calls: list[tuple[str, Any]]


_WATCHED = ("system", "popen", "execv", "execve", "spawnv", "fork", "remove", "unlink")


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Sandbox]:
    """A temporary cwd, a spy on ``__import__`` and tripwires on eval/exec/os.system/subprocess.

    symgrad's lazy imports are done first; lambdify's own ``exec`` of code generated from the IR
    happens then too, so that within the sandbox any import or exec comes from the hostile input.
    """
    _warm_up()
    monkeypatch.chdir(tmp_path)
    box = Sandbox(tmp_path, [], [])
    real_import = builtins.__import__

    def spy_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if level == 0 and not name.startswith("symgrad"):
            box.imports.append(name)
        return real_import(name, globals, locals, fromlist, level)

    def tripwire(what: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            box.calls.append((what, args))
            raise AssertionError(f"{what} was called")
        return call

    for name in _WATCHED:
        if hasattr(os, name):
            monkeypatch.setattr(os, name, tripwire(f"os.{name}"))
    monkeypatch.setattr(subprocess, "Popen", tripwire("subprocess.Popen"))
    for name in ("eval", "exec", "breakpoint", "input"):
        monkeypatch.setattr(builtins, name, tripwire(name))
    monkeypatch.setattr(builtins, "__import__", spy_import)
    box.imports.clear()  # monkeypatch itself may import
    yield box
    monkeypatch.undo()


def _warm_up() -> None:
    """Import everything symgrad imports lazily, so that only a hostile import would be new."""
    cases, errors = load_file(HOSTILE / GOOD)
    assert cases and not errors
    for case in cases:
        assert run_case(case).status == "pass"
    expanded = case_from_dict({"name": "w", "expr": "sum(x)", "mode": "expanded", "inputs": {"x": [1.0, 2.0]}})
    assert run_case(expanded).status == "pass"


# ---------------------------------------------------------------- the corpus


@pytest.fixture(params=["libyaml", "python"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each YAML test twice: with libyaml's parser (when PyYAML has it) and with PyYAML's pure-Python one."""
    if request.param == "python":
        monkeypatch.setattr(cases_module, "_CLoader", None)
    elif cases_module._CLoader is None:
        pytest.skip("PyYAML was built without libyaml")
    return request.param


def test_corpus_is_complete() -> None:
    assert len(_hostile_files()) >= 10
    assert _hostile_files() == sorted(WANT)


@pytest.mark.parametrize("name", sorted(WANT))
def test_hostile_file_is_refused_with_file_case_and_line(name: str, loader: str) -> None:
    path = HOSTILE / name
    want = WANT[name]
    cases, errors = load_file(path)
    assert [c.name for c in cases] == list(want.kept)
    assert len(errors) == len(want.errors), [str(e) for e in errors]
    for err, (case, line, text) in zip(errors, want.errors):
        assert isinstance(err, CaseError)
        assert err.file == str(path)
        assert err.case == case
        assert err.line == line
        message = str(err)
        where = f"{path}:{line}: " if line is not None else f"{path}: "
        assert message.startswith(where + (f"case {case!r}: " if case else "")), message
        assert text in message, message
        assert "\n" not in message and len(message) < 1000  # one clear line, not a dump


def test_whole_corpus_is_refused_in_bounded_memory(peak_bytes: PeakBytes) -> None:
    # no clock: limits that stop a file before it is read, expanded or allocated keep memory small
    _, peak = peak_bytes(lambda: [load_file(HOSTILE / name) for name in WANT])
    assert peak < 20_000_000


def test_expanded_mode_symbol_bomb_is_refused_when_run() -> None:
    (case,), errors = load_file(HOSTILE / "expanded_symbols.yaml")
    assert not errors
    report = run_case(case)
    assert report.status == "error"
    assert "LimitExceeded" in report.reason and RUN_TIME[case.name] in report.reason
    assert "9000000" in report.reason and "\n" not in report.reason
    assert (report.file, report.line) == (str(HOSTILE / "expanded_symbols.yaml"), 4)


def test_nothing_is_executed_imported_or_written(sandbox: Sandbox) -> None:
    before = set(sys.modules)
    sandbox.imports.clear()
    outcomes = {}
    for name in WANT:
        cases, errors = load_file(HOSTILE / name)
        outcomes[name] = [run_case(c).status for c in cases if c.name in RUN_TIME]
    new = set(sys.modules) - before
    assert sandbox.calls == []
    assert new == set(), sorted(new)
    hostile = {"os", "subprocess", "antigravity", "posix", "nt", "shutil", "socket", "pty"}
    assert hostile.isdisjoint(sandbox.imports), sorted(set(sandbox.imports))
    assert list(sandbox.cwd.iterdir()) == []
    assert outcomes["expanded_symbols.yaml"] == ["error"]


def test_the_spy_would_see_an_unsafe_load(sandbox: Sandbox) -> None:  # the twin of the test above
    text = (HOSTILE / "python_name.yaml").read_text()
    yaml.unsafe_load(text)  # what the case loader must never do: it imports os by name
    assert "os" in sandbox.imports


def test_peak_bytes_sees_a_file_read_and_an_array(tmp_path: Path, peak_bytes: PeakBytes) -> None:
    # the twin of the memory bounds here: reading the file, or allocating, shows in the peak
    path = tmp_path / "big.yaml"
    path.write_text("x" * 10_000_000)
    assert peak_bytes(path.read_text)[1] > 10_000_000
    assert peak_bytes(np.zeros, 2_000_000)[1] > 16_000_000


def test_ten_megabyte_expression_is_refused(tmp_path: Path, peak_bytes: PeakBytes) -> None:
    # 10 MB: the file itself is over max_file_bytes, refused before it is read
    path = tmp_path / "huge_expression.yaml"
    path.write_text("cases:\n  - name: huge\n    expr: " + "x+" * 5_000_000 + "x\n    inputs: {x: 1.0}\n")
    (cases, (err,)), peak = peak_bytes(load_file, path)
    assert peak < 1_000_000  # the 10 MB were never read
    assert cases == []
    assert (err.file, err.case, err.line) == (str(path), None, None)
    assert "exceeds the limit max_file_bytes=1000000" in str(err) and len(str(err)) < 1000
    # 200 kB: under max_file_bytes, so the expression's own limit refuses that case, at its line
    path = tmp_path / "long_expression.yaml"
    path.write_text("cases:\n  - name: huge\n    expr: " + "x+" * 100_000 + "x\n    inputs: {x: 1.0}\n")
    cases, (err,) = load_file(path)
    assert cases == []
    assert (err.file, err.case, err.line) == (str(path), "huge", 3)
    assert "exceeds the limit max_length=10000" in str(err) and len(str(err)) < 1000


# ---------------------------------------------------------------- a mixed suite


def _symgrad_executable() -> str:
    exe = Path(sys.executable).with_name("symgrad")
    found = str(exe) if exe.exists() else shutil.which("symgrad")
    if not found:
        pytest.skip("the symgrad executable is not installed")
    return found


def _folder_errors(root: str) -> list[tuple[str, str | None, int | None, str]]:
    return [(f"{root}/{name}", case, line, text) for name, want in sorted(WANT.items()) if want.in_folders
            for case, line, text in want.errors]


def test_collect_returns_the_good_cases_and_every_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shutil.copytree(HOSTILE, tmp_path / "suite")
    monkeypatch.chdir(tmp_path)
    cases, errors = collect(["suite"])
    assert sorted(c.name for c in cases) == ["expanded-millions", "good-sin", "good-tutorial-Q", "twin"]
    wanted = _folder_errors("suite")
    assert len(errors) == len(wanted)
    got = sorted(errors, key=lambda e: (e.file or "", e.line or 0))
    for err, (file, case, line, text) in zip(got, sorted(wanted, key=lambda w: (w[0], w[2] or 0))):
        assert (err.file, err.case, err.line) == (file, case, line)
        assert text in str(err)
    reports = [run_case(c) for c in cases]
    status = {r.name: r.status for r in reports}
    assert status == {"expanded-millions": "error", "good-sin": "pass", "good-tutorial-Q": "pass", "twin": "pass"}
    assert exit_code(reports, len(errors)) == 2
    assert exit_code([r for r in reports if r.status == "pass"]) == 0


@pytest.mark.slow
def test_cli_reports_errors_runs_good_cases_and_exits_2(tmp_path: Path) -> None:
    shutil.copytree(HOSTILE, tmp_path / "suite")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    proc = subprocess.run([_symgrad_executable(), "check", "suite"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    for file, case, line, text in _folder_errors("suite"):
        where = f"{file}:{line}: " if line is not None else f"{file}: "
        assert where + (f"case {case!r}: " if case else "") in out, (file, case, line)
        assert text in out
    assert "ERROR expanded-millions" in out and "max_symbols" in out
    n = len(_folder_errors("suite"))
    assert f"{n} invalid case files or cases" in out
    assert "Traceback" not in out
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith("3 passed, 0 failed, 1 errors"), summary
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


# ---------------------------------------------------------------- limits


def _rejects(data: dict, limits: Limits = DEFAULT) -> CaseError:
    with pytest.raises(CaseError) as info:
        case_from_dict(data, limits=limits)
    return info.value


def _balanced(levels: int) -> str:
    return "x" if levels == 0 else f"({_balanced(levels - 1)}+{_balanced(levels - 1)})"


def test_every_limit_has_a_sensible_default() -> None:
    sensible = {
        "max_length": (1_000, 1_000_000), "max_depth": (32, 1_000), "max_nodes": (500, 1_000_000),
        "max_int_digits": (20, 4_300), "max_const_digits": (100, 100_000),
        "max_elements": (1_000_000, 1_000_000_000), "max_ndim": (4, 64), "max_symbols": (1_000, 100_000),
        "max_file_bytes": (100_000, 100_000_000), "max_yaml_depth": (20, 500),
    }
    names = [f.name for f in fields(Limits)]
    assert set(sensible) <= set(names)
    for name in names:
        value = getattr(DEFAULT, name)
        assert isinstance(value, int) and value > 0, name
        if name in sensible:
            low, high = sensible[name]
            assert low <= value <= high, (name, value)


def test_unknown_limit_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown limit.*max_nodes"):
        DEFAULT.with_overrides(max_bogus=3)
    assert DEFAULT.with_overrides(max_depth="100").max_depth == 100  # CLI text works too


def _case(expr: str = "x", **inputs: Any) -> dict:
    return {"name": "limit", "expr": expr, "inputs": inputs or {"x": [1.0, 2.0]}}


# (limit, a case over the default, the overrides that admit it); parse-time and load-time limits
LOAD_LIMITS = [
    ("max_length", _case("x" + " " * 10_000), {"max_length": 20_000}),
    ("max_depth", _case("-" * 70 + "x"), {"max_depth": 100}),
    ("max_nodes", _case(_balanced(11)), {"max_nodes": 10_000}),
    ("max_int_digits", _case("1" * 31 + "*x"), {"max_int_digits": 40}),
    # 302 digits in 2**1000; the exact quotient is bounded by 302 + 299 digits before sympy reduces it
    ("max_const_digits", _case("2.0**1000/2.0**990*x"), {"max_const_digits": 700}),
    ("max_ndim", _case(x={"uniform": [0.0, 1.0], "shape": [1] * 9}), {"max_ndim": 9}),
]


@pytest.mark.parametrize("limit, data, raise_to", LOAD_LIMITS, ids=[t[0] for t in LOAD_LIMITS])
def test_load_limit_is_named_and_can_be_raised(limit: str, data: dict, raise_to: dict, tmp_path: Path) -> None:
    err = _rejects(data)
    assert f"exceeds the limit {limit}=" in str(err) or f"the limit {limit}=" in str(err), str(err)
    assert f"--limit {limit}=N" in str(err) or limit == "max_depth"
    # the same case through a file, with the limit raised
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump({"cases": [data]}))
    (refused,), = [collect([path])[1]]
    assert limit in str(refused) and refused.file == str(path) and refused.case == "limit" and refused.line
    limits = DEFAULT.with_overrides(**raise_to)
    cases, errors = collect([path], limits=limits)
    assert errors == [] and [c.name for c in cases] == ["limit"]
    report = run_case(cases[0], options=Options(limits=limits))
    assert report.status == "pass", report.reason


def test_max_elements_is_named_and_can_be_raised(tmp_path: Path) -> None:
    small = Limits(max_elements=100)
    data = _case(x={"uniform": [0.0, 1.0], "shape": [11, 10]})
    assert "exceeds the limit max_elements=100" in str(_rejects(data, small))
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump({"cases": [data]}))
    assert "max_elements=100" in str(collect([path], limits=small)[1][0])
    raised = small.with_overrides(max_elements=110)
    (case,), errors = collect([path], limits=raised)
    assert errors == []
    # the run re-checks the inputs against the run's limits before drawing them
    refused = run_case(case, options=Options(limits=small))
    assert refused.status == "error" and "max_elements=100" in refused.reason
    assert run_case(case, options=Options(limits=raised)).status == "pass"


def test_max_symbols_is_named_and_can_be_raised() -> None:
    case = case_from_dict({"name": "sym", "expr": "sum(x)", "mode": "expanded",
                           "inputs": {"x": {"uniform": [0.0, 1.0], "shape": [3, 3]}}})
    small = Limits(max_symbols=8)
    report = run_case(case, options=Options(limits=small))
    assert report.status == "error"
    assert "exceeds the limit max_symbols=8" in report.reason and "--limit max_symbols=N" in report.reason
    assert run_case(case, options=Options(limits=small.with_overrides(max_symbols=9))).status == "pass"


@pytest.mark.slow
def test_cli_limit_option(tmp_path: Path) -> None:
    exe = _symgrad_executable()
    help_text = subprocess.run([exe, "check", "--help"], capture_output=True, text=True, timeout=60).stdout
    if "--limit" not in help_text:
        pytest.skip("`symgrad check --limit NAME=VALUE` does not exist yet")
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump({"cases": [_case(x={"uniform": [0.0, 1.0], "shape": [1] * 9})]}))
    refused = subprocess.run([exe, "check", str(path)], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "max_ndim=8" in refused.stdout + refused.stderr
    raised = subprocess.run([exe, "check", "--limit", "max_ndim=9", str(path)], capture_output=True, text=True,
                            timeout=120)
    assert raised.returncode == 0, raised.stdout + raised.stderr
    bogus = subprocess.run([exe, "check", "--limit", "max_bogus=9", str(path)], capture_output=True, text=True,
                           timeout=120)
    assert bogus.returncode == 2 and "max_bogus" in bogus.stdout + bogus.stderr


def test_limit_exceeded_names_the_limit() -> None:
    err = LimitExceeded("max_nodes", 3000, 2000, "nodes")
    assert str(err) == "nodes: 3000 exceeds the limit max_nodes=2000 (raise it with --limit max_nodes=N)"


# ---------------------------------------------------------------- property-based: only CaseError


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["x", "sin(x)", "3*a**3 - b**2", "__import__('os')", "1e-6", "float64", "expanded",
                     "uniform", "shape", "name", "expr", "inputs", "-x", "9**9**9**9", "sum(x, axis=0)"]),
)
KEYS = st.one_of(st.sampled_from(["name", "expr", "inputs", "x", "a", "b", "shape", "uniform", "normal",
                                  "linspace", "wrt", "order", "expect", "value", "grad_output", "mode",
                                  "dtype", "rtol", "seed", "tags", "skip", "xfail", "reference", "defaults"]),
                 st.text(max_size=8), st.integers(-5, 5), st.booleans())
DOCS = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=5) | st.dictionaries(KEYS, kids, max_size=6),
                    max_leaves=30)


def _loads_or_refuses(path: Path) -> None:
    cases, errors = load_file(path)  # anything but CaseError escaping fails the test
    assert all(isinstance(e, CaseError) and str(e).startswith(str(path)) for e in errors)
    for case in cases:
        assert case.ir is not None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=DOCS, defaults=st.none() | DOCS)
@pytest.mark.slow
def test_fuzz_random_documents_under_cases(tmp_path: Path, cases: Any, defaults: Any) -> None:
    doc: dict[str, Any] = {"cases": cases}
    if defaults is not None:
        doc["defaults"] = defaults
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    _loads_or_refuses(path)


# YAML syntax, hostile scalars included: explicit tags with values their constructors refuse,
# impossible dates, integers over Python's int/str digit limit and nesting past max_yaml_depth.
YAML_TOKENS = st.sampled_from([
    "cases:", "defaults:", "- ", "  ", "    ", "\n", "name: a", "expr: x", "inputs:", "x: 1.0", "x: [1, 2]",
    "{", "}", "[", "]", ",", ": ", "? ", "&a ", "*a", "<<: *a", "!!str ", "!!python/name:os.system",
    "!Ref ", "|", ">", "---", "...", "%YAML 1.1", "#", "'", '"', "\t", "shape: [3]", "uniform: [0, 1]",
    "mode: expanded", "~", "null", "yes", "1e-6", ".inf", "0x1f", "&b [*b]",
    "!!int abc", "!!float abc", "!!int ", "!!int +", "!!float _", "!!map ", "!!seq abc", "!!bool maybe", "!!timestamp abc", "!!bool ", "!!timestamp ", "!!binary ", "!!set ", "!!omap ", "!!pairs ", "2001-13-45", "2001-02-30 25:61:61",
    "seed: " + "1" * 5000, "1" * 5000, "0b" + "1" * 5000, "[" * 60, "{a: " * 60,
])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(YAML_TOKENS, max_size=40))
def test_fuzz_yaml_token_soup(tmp_path: Path, tokens: list[str]) -> None:
    path = tmp_path / "soup.yaml"
    path.write_text("cases:\n" + "".join(tokens), encoding="utf-8")
    _loads_or_refuses(path)


# ---------------------------------------------------------------- holes found while writing this suite


BAD_SCALARS = {  # key: (line of the case, the message)
    "bad-int-tag": ("seed: !!int abc", "invalid YAML: invalid !!int value: invalid literal for int()"),
    "bad-float-tag": ("rtol: !!float abc", "invalid YAML: invalid !!float value: could not convert string"),
    "bad-bool-tag": ("skip: !!bool maybe", "invalid YAML: invalid !!bool value: 'maybe'"),
    "bad-timestamp-tag": ("description: !!timestamp abc", "invalid YAML: invalid !!timestamp value"),
    "invalid-date": ("description: 2001-13-45", "invalid YAML: invalid !!timestamp value: month must be in 1..12"),
    "huge-int": ("seed: " + "1" * 5000, "invalid YAML: invalid !!int value: Exceeds the limit (4300 digits)"),
}


def _bad_scalar_file(folder: Path, key: str) -> Path:
    path = folder / f"{key}.yaml"
    path.write_text(f"cases:\n  - name: {key}\n    expr: x\n    inputs: {{x: 1.0}}\n    {BAD_SCALARS[key][0]}\n")
    return path


@pytest.mark.parametrize("key", sorted(BAD_SCALARS))
def test_bad_scalar_values_are_case_errors_with_a_line(key: str, tmp_path: Path, loader: str) -> None:
    # SafeConstructor raises ValueError/KeyError/AttributeError on these: a file-level CaseError, not a crash
    path = _bad_scalar_file(tmp_path, key)
    cases, errors = load_file(path)
    assert cases == [] and len(errors) == 1
    (err,) = errors
    assert isinstance(err, CaseError)
    assert (err.file, err.case, err.line) == (str(path), None, 5)
    assert str(err).startswith(f"{path}:5: {BAD_SCALARS[key][1]}"), str(err)
    assert "\n" not in str(err) and len(str(err)) < 1000
    folder_cases, folder_errors = collect([tmp_path])
    assert folder_cases == [] and len(folder_errors) == 1
    assert (folder_errors[0].file, folder_errors[0].line) == (str(path), 5)
    assert str(folder_errors[0]) == str(err)


STILL_ESCAPING = {  # key: (the line, the tag the message must name)
    "empty-int": ("seed: !!int", "!!int"),
    "sign-only-int": ("seed: !!int +", "!!int"),
    "empty-float": ("rtol: !!float", "!!float"),
    "underscore-float": ("rtol: !!float _", "!!float"),
    "map-tag-on-scalar": ("tags: !!map abc", "!!map"),
    "map-tag-on-list": ("tags: !!map [1]", "!!map"),
}


@pytest.mark.parametrize("key", sorted(STILL_ESCAPING))
def test_empty_or_misplaced_tagged_values_are_case_errors(key: str, tmp_path: Path, loader: str) -> None:
    line, tag = STILL_ESCAPING[key]
    path = tmp_path / f"{key}.yaml"
    path.write_text(f"cases:\n  - name: {key}\n    expr: x\n    inputs: {{x: 1.0}}\n    {line}\n")
    cases, errors = load_file(path)
    assert cases == [] and len(errors) == 1
    (err,) = errors
    assert (err.file, err.case, err.line) == (str(path), None, 5)
    assert str(err).startswith(f"{path}:5: invalid YAML: ") and tag in str(err), str(err)


@pytest.mark.slow
def test_cli_reports_bad_scalar_values_without_a_traceback(tmp_path: Path) -> None:
    for key in BAD_SCALARS:
        _bad_scalar_file(tmp_path, key)
    proc = subprocess.run([_symgrad_executable(), "check", "."], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    for key, (_, text) in BAD_SCALARS.items():
        assert f"{key}.yaml:5: {text}" in out, key
    assert f"{len(BAD_SCALARS)} invalid case files or cases" in out


def _bomb(levels: int, leaf: str, width: int = 9) -> list[str]:
    lines = ["x-bomb:", f"  - &l0 [{', '.join([leaf] * width)}]"]
    lines += [f"  - &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return lines


def _run_limited(code: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
    """Run ``code`` in a child with 3 GB of address space, killed after ``timeout`` seconds."""
    def limit() -> None:  # pragma: no cover - runs in the child
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              preexec_fn=limit if os.name == "posix" else None)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(exc.cmd, -9, "", f"timed out after {timeout} s")


def test_billion_laughs_is_one_file_level_error_naming_max_elements(peak_bytes: PeakBytes) -> None:
    path = HOSTILE / "billion_laughs.yaml"
    (cases, errors), peak = peak_bytes(load_file, path)
    assert peak < 10_000_000  # counted with aliases shared, never expanded
    assert cases == [] and len(errors) == 1
    (err,) = errors
    assert (err.file, err.case, err.line) == (str(path), None, None)
    prefix, _, rest = str(err).partition("values in the file: ")
    assert prefix == f"{path}: " and rest, str(err)
    count = int(rest.split()[0])
    assert count >= 5 * 9**9  # x-bomb and four cases each hold *l8: 9**9 leaves apiece
    assert rest == f"{count} exceeds the limit max_elements=50000000 (raise it with --limit max_elements=N)"


@pytest.mark.slow
def test_alias_bomb_in_any_key_is_refused_promptly(tmp_path: Path) -> None:
    lines = _bomb(10, '"lol"') + ["cases:"]
    keys = ("name", "tags", "mode", "dtype", "wrt", "seed", "order", "rtol", "description", "skip")
    for i, key in enumerate(keys):
        case = {"name": f"c{i}", "expr": "x", "inputs": "{x: 1.0}", key: "*l9"}
        lines += [f"  - {k}: {v}" if j == 0 else f"    {k}: {v}" for j, (k, v) in enumerate(case.items())]
    path = tmp_path / "bombs.yaml"
    path.write_text("\n".join(lines) + "\n")
    proc = _run_limited(textwrap.dedent(f"""
        from symgrad.checking.cases import load_file
        cases, errors = load_file({str(path)!r})
        assert cases == [] and len(errors) == 1, errors
        (err,) = errors
        assert (err.case, err.line) == (None, None), err
        assert "values in the file" in str(err) and "exceeds the limit max_elements=50000000" in str(err), err
        assert len(str(err)) < 1000
        print("ok")
    """))
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]


@pytest.mark.slow
def test_alias_bomb_under_the_element_limit_is_shown_boundedly(tmp_path: Path) -> None:
    lines = _bomb(8, '"lol"', width=8) + ["cases:", "  - name: *l7", "    expr: x", "    inputs: {x: 1.0}"]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    if not Path("/proc/self/status").exists():
        pytest.skip("measures peak memory with /proc/self/status (Linux)")
    proc = _run_limited(textwrap.dedent(f"""
        from symgrad.checking.cases import load_file

        def peak_kb():  # VmHWM: this process's peak RSS (ru_maxrss would include the forking parent's)
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

        before = peak_kb()
        cases, errors = load_file({str(path)!r})
        grown = peak_kb() - before
        assert cases == [] and len(errors) == 1, errors
        (err,) = errors
        assert err.line == 11 and "name must match" in str(err) and len(str(err)) < 1000, err
        assert grown < 50_000, f"peak memory grew by {{grown}} kB"
        print("ok")
    """))
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]


def test_alias_amplified_literals_are_bounded_per_file(tmp_path: Path) -> None:
    lines = _bomb(5, "1.0") + ["cases:"]  # *l4 is 9**5 = 59 049 elements, under the limit alone
    for i in range(6):
        lines += [f"  - name: amp{i}", "    expr: sum(x)", "    inputs:", "      x: *l4"]
    path = tmp_path / "amplified.yaml"
    path.write_text("\n".join(lines) + "\n")
    cases, errors = load_file(path, limits=Limits(max_elements=100_000))
    assert cases == [] and len(errors) == 1
    (err,) = errors
    assert (err.file, err.case, err.line) == (str(path), None, None)
    assert "values in the file" in str(err) and "exceeds the limit max_elements=100000" in str(err)
    # a bound of the file, not of one array: raised, every case loads with its 59 049 elements
    cases, errors = load_file(path, limits=Limits(max_elements=1_000_000))
    assert errors == [] and [c.name for c in cases] == [f"amp{i}" for i in range(6)]
    assert all(c.make_inputs()["x"].size == 9**5 for c in cases)


def test_file_size_is_limited(tmp_path: Path, peak_bytes: PeakBytes) -> None:
    assert DEFAULT.max_file_bytes == 1_000_000
    path = tmp_path / "huge.yaml"
    path.write_text("cases:\n  - name: huge\n    expr: " + "x+" * 5_000_000 + "x\n    inputs: {x: 1.0}\n")
    size = path.stat().st_size
    (cases, (err,)), peak = peak_bytes(load_file, path)
    assert peak < 1_000_000  # checked before reading
    assert cases == [] and (err.file, err.case, err.line) == (str(path), None, None)
    assert str(err) == (f"{path}: file size: {size} exceeds the limit max_file_bytes=1000000 "
                        "(raise it with --limit max_file_bytes=N)")
    # in a folder too: a file too big to read is still reported when a line starts with `cases:`
    folder_cases, folder_errors = collect([tmp_path])
    assert folder_cases == [] and [str(e) for e in folder_errors] == [str(err)]
    # and the limit can be set either way
    good = HOSTILE / GOOD
    small = Limits(max_file_bytes=good.stat().st_size - 1)
    _, (refused,) = load_file(good, limits=small)
    assert "max_file_bytes" in str(refused) and refused.line is None
    cases, errors = load_file(good, limits=small.with_overrides(max_file_bytes=good.stat().st_size))
    assert errors == [] and cases


def test_deep_yaml_nesting_names_a_line(loader: str) -> None:
    path = HOSTILE / "deep_input_list.yaml"
    cases, (err,) = load_file(path)
    assert cases == [] and (err.file, err.case, err.line) == (str(path), None, 6)
    assert str(err) == f"{path}:6: invalid YAML: nested deeper than the limit max_yaml_depth=100"
    assert "RecursionError" not in str(err)


def test_max_yaml_depth_can_be_raised(tmp_path: Path, loader: str) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("cases:\n  - name: deep\n    expr: x\n    inputs:\n      x: " + "[" * 150 + "1.0" + "]" * 150 + "\n")
    _, (err,) = load_file(path)
    assert err.line == 5 and "max_yaml_depth=100" in str(err)
    _, (err,) = load_file(path, limits=Limits(max_yaml_depth=200))
    assert "nested deeper" not in str(err) and "max_ndim=8" in str(err) and err.case == "deep"


@pytest.mark.parametrize("text", ["[" * 200_000 + "]" * 200_000, "{a: " * 150_000 + "1" + "}" * 150_000],
                         ids=["flow-sequences", "flow-mappings"])
@pytest.mark.slow
def test_a_million_byte_nesting_is_an_error_not_a_crash(text: str, tmp_path: Path) -> None:
    # libyaml's composer would recurse in C until the process dies; in a subprocess, so a crash fails this test
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    code = ("import sys\nfrom symgrad.checking.cases import load_file\n_, errors = load_file(sys.argv[1])\n"
            "print(errors[0].line, str(errors[0]).split(': ', 1)[1])\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "1 invalid YAML: nested deeper than the limit max_yaml_depth=100\n"


def test_both_yaml_parsers_read_the_shipped_cases_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    if cases_module._CLoader is None:
        pytest.skip("PyYAML was built without libyaml")
    root = Path(__file__).resolve().parent.parent / "cases"
    files = sorted(root.glob("*.yaml"))
    fast = [read_data(f) for f in files]
    monkeypatch.setattr(cases_module, "_CLoader", None)
    slow = [read_data(f) for f in files]

    def lines(obj: Any) -> Any:  # the data with every recorded line number, recursively
        if isinstance(obj, dict):
            return (getattr(obj, "line", None), sorted(getattr(obj, "key_lines", {}).items()),
                    {k: lines(v) for k, v in obj.items()})
        if isinstance(obj, list):
            return (getattr(obj, "line", None), getattr(obj, "item_lines", None), [lines(v) for v in obj])
        return obj

    assert [lines(d) for d in fast] == [lines(d) for d in slow]
    assert lines(fast[0]) != lines(yaml.safe_load((files[0]).read_text()))  # the twin: plain data has no lines


def test_non_utf8_case_file_in_a_folder_is_reported(tmp_path: Path) -> None:
    shutil.copy(HOSTILE / "not_utf8.yaml", tmp_path)
    (tmp_path / "unrelated.yaml").write_bytes(b"title: caf\xe9\n")  # not UTF-8, not a case file: skipped
    cases, errors = collect([tmp_path])
    assert cases == [] and len(errors) == 1
    (err,) = errors
    assert (err.file, err.case, err.line) == (str(tmp_path / "not_utf8.yaml"), None, None)
    assert "cannot read file: 'utf-8' codec can't decode" in str(err)


@pytest.mark.parametrize("expr", ["2**63*x", "2**64*x", "10**20*x"])
def test_integer_constant_powers_beyond_int64_are_exact(expr: str) -> None:
    case = case_from_dict({"name": "big-int", "expr": expr, "inputs": {"x": [1.0, 2.0]}})
    report = run_case(case)
    assert report.status == "pass", report.table()
