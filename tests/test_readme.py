"""Keep the README true: every example in it runs.

What is checked, block by block:

* every ```python block runs in a fresh interpreter from the repository root; a block
  with a comment line ``# needs: MODULE`` is skipped when MODULE is not installed, a
  block defining ``def test_...`` is run by pytest (its fixtures come from the symgrad
  plugin), and a ``print(...)   # -> TEXT`` line must print TEXT;
* every ``$ symgrad ...`` and ``$ pytest ...`` line of a ```console block runs from the
  repository root; the output lines shown under it must appear (times normalised), and
  its exit code must be the one the README's exit-code table gives for that summary;
* the ``symgrad ...`` commands of the ```bash blocks run (``pip install`` and the test
  suite itself are not re-run);
* the ```yaml example equals its case in ``cases/tutorial.yaml``; the ```toml snippet
  does what the text says; the JSON schema, the JUnit description, the exit-code
  table, the option table and the command synopsis match what the CLI really does.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import doc_examples
import pytest
import yaml
from doc_examples import (
    CHECK_SUMMARY,
    FUZZ_SUMMARY,
    ROOT,
    blocks,
    check_prints,
    console_commands,
    expected_exit_code,
    print_expectations,
    run,
    run_console_command,
    run_once,
    run_python_block,
    symgrad,
)

README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")
PYTHON = blocks(TEXT, "python")
CONSOLE = console_commands(TEXT)


# ---------------------------------------------------------------- the extractor itself


def test_extractor_finds_the_readme_examples():
    assert len(PYTHON) >= 5
    assert len(CONSOLE) >= 7
    assert {cmd.split()[0] for cmd, _, _ in CONSOLE} == {"symgrad", "pytest"}
    assert len(blocks(TEXT, "yaml")) == 1 and len(blocks(TEXT, "toml")) == 1
    assert len(blocks(TEXT, "bash")) == 2
    # every fence is closed: the blocks found cover every ``` line
    fences = sum(1 for line in TEXT.splitlines() if line.startswith("```"))
    assert fences == 2 * len(blocks(TEXT))


def test_extractor_twin_on_a_synthetic_document():
    doc = textwrap.dedent("""\
        text
        ```python
        print(1)   # -> 1
        ```
        ```text
        $ symgrad not-a-console-block
        ```
        ```console
        $ symgrad check x.yaml
        1 passed, 1 failed, 0 errors in 0.10 s
        ```
        """)
    assert [(lang, line) for lang, _, line in blocks(doc)] == [("python", 2), ("text", 5), ("console", 8)]
    assert console_commands(doc) == [("symgrad check x.yaml", ["1 passed, 1 failed, 0 errors in 0.10 s"], 9)]
    assert blocks("no fences here") == [] and console_commands("no fences") == []
    assert expected_exit_code(["1 passed, 1 failed, 0 errors in 0.10 s"]) == 1
    assert expected_exit_code(["1 passed, 0 failed, 1 xpassed, 0 errors in 0.10 s"]) == 1
    assert expected_exit_code(["1 passed, 0 failed, 2 errors in 0.10 s"]) == 2
    assert expected_exit_code(["3 passed, 0 failed, 0 errors in 0.41 s"]) == 0


def test_print_expectations_twin():
    code = "print(1)   # -> 1\nprint(2)   # -> 2\nprint(3)   # a remark, not an expectation\n"
    assert print_expectations(code) == ["1", "2"]
    check_prints(code, "1\n2\n3\n")
    with pytest.raises(AssertionError):
        check_prints(code, "1\n3\n")  # 2 is missing
    with pytest.raises(AssertionError):
        check_prints(code, "2\n1\n")  # out of order
    # the tutorial block keeps its checked outputs
    assert len(print_expectations(PYTHON[0][1])) == 2


@pytest.mark.skipif(doc_examples.fcntl is None, reason="without fcntl every call runs its command")
def test_run_once_runs_each_command_once_and_keeps_its_failure(tmp_path):
    counter = tmp_path / "runs"
    touch = [sys.executable, "-c", f"import sys; open({str(counter)!r}, 'a').write('x'); print('one'); sys.exit(3)"]
    first, again = run_once(touch), run_once(touch)
    assert (first.returncode, first.stdout) == (again.returncode, again.stdout) == (3, "one\n")
    assert counter.read_text() == "x"  # the second call read the first one's result
    # the twin: another command, or the same one over other files, is a run of its own
    assert run_once([sys.executable, "-c", "print('two')"]).stdout == "two\n"
    script = [sys.executable, "{folder}/f.py"]
    assert run_once(script, files={"f.py": "print('a')"}).stdout == "a\n"
    assert run_once(script, files={"f.py": "print('b')"}).stdout == "b\n"
    cwd = [sys.executable, "-c", "import os; print(os.getcwd())"]
    assert run_once(cwd).stdout.strip() == str(ROOT)
    assert run_once(cwd, files={}, in_folder=True).stdout.strip() != str(ROOT)


# ---------------------------------------------------------------- ```python blocks


@pytest.mark.parametrize("code,line", [(b, n) for _, b, n in PYTHON], ids=[f"line{n}" for _, _, n in PYTHON])
@pytest.mark.slow
def test_python_block(code, line):
    run_python_block(code, f"README.md:{line}")


# ---------------------------------------------------------------- ```console blocks


@pytest.mark.parametrize("command,output,line", CONSOLE, ids=[f"line{n}" for _, _, n in CONSOLE])
@pytest.mark.slow
def test_console_command(command, output, line):
    run_console_command(command, output, f"README.md:{line}")


def test_console_summaries_have_the_documented_shape():
    summaries = [line for _, out, _ in CONSOLE for line in out if " passed, " in line]
    assert summaries, "the README shows no summary line"
    for line in summaries:
        assert CHECK_SUMMARY.match(line) or FUZZ_SUMMARY.match(line), line
    # the shape DESIGN.md and the text promise: N passed, N failed, N errors in T s
    assert "`N passed, N failed, N errors in T s`" in TEXT


@pytest.mark.slow
def test_bash_blocks_symgrad_commands_run():
    commands = [part.strip() for _, body, _ in blocks(TEXT, "bash") for line in body.splitlines()
                for part in line.split("&&") if part.strip().startswith("symgrad ")]
    assert commands == ["symgrad check cases/"]
    for command in commands:
        proc = symgrad(*shlex.split(command)[1:])
        assert proc.returncode == 0, proc.stdout + proc.stderr
        m = CHECK_SUMMARY.match(proc.stdout.splitlines()[-1])
        assert m and int(m.group(1)) > 100 and m.group(2) == "0" and m.group(4) == "0", proc.stdout


# ---------------------------------------------------------------- yaml, toml


def test_yaml_example_is_the_case_in_cases_tutorial_yaml():
    (_, body, _), = blocks(TEXT, "yaml")
    shown = yaml.safe_load(body)["cases"]
    assert len(shown) == 1
    shipped = {c["name"]: c for c in yaml.safe_load((ROOT / "cases/tutorial.yaml").read_text())["cases"]}
    assert shown[0]["name"] in shipped
    assert shown[0] == shipped[shown[0]["name"]]
    assert shown[0] != shipped["tutorial-Q-sum"]  # the comparison can fail


@pytest.mark.slow
def test_toml_snippet_collects_case_folders_and_leaves_test_yaml_alone(tmp_path):
    (_, body, _), = blocks(TEXT, "toml")
    (tmp_path / "pyproject.toml").write_text(body, encoding="utf-8")
    (tmp_path / "cases").mkdir()
    (tmp_path / "tests").mkdir()
    shutil.copy(ROOT / "cases/tutorial.yaml", tmp_path / "cases/tutorial.yaml")
    shutil.copy(ROOT / "cases/tutorial.yaml", tmp_path / "tests/fixture.yaml")  # a YAML fixture: data
    (tmp_path / "tests/test_a.py").write_text("def test_a():\n    pass\n")
    proc = run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    items = [line for line in proc.stdout.splitlines() if "::" in line]
    assert "tests/test_a.py::test_a" in items
    assert "cases/tutorial.yaml::tutorial-Q" in items
    assert not [i for i in items if i.startswith("tests/fixture.yaml")]
    assert len(items) == 4


# ---------------------------------------------------------------- reports: JSON, JUnit, exit codes

CASES = """\
cases:
  - name: fine
    expr: x**2
    inputs: {x: [1.0, 2.0]}
  - name: wrong-expect
    expr: x**2
    inputs: {x: [1.0, 2.0]}
    expect: {x: 3*x}
  - name: skipped
    expr: x
    inputs: {x: 1.0}
    skip: not today
  - name: expected-to-fail
    expr: x**2
    inputs: {x: 1.0}
    expect: {x: 3*x}
    xfail: a wrong expect
  - name: broken
    expr: x +* 2
    inputs: {x: 1.0}
"""


@pytest.fixture(scope="module")
def case_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("readme") / "x.yaml"
    path.write_text(CASES)
    return path


def _json_schema() -> dict:
    found = [body for _, body, _ in blocks(TEXT, "text") if '"version": 1' in body]
    assert len(found) == 1
    return json.loads(re.sub(r"\s+#[^\n]*", "", found[0]))


@pytest.mark.slow
def test_json_schema_matches_a_real_report(case_file):
    schema = _json_schema()
    proc = symgrad("check", str(case_file), "--format", "json", "--timeout", "0")
    real = json.loads(proc.stdout)
    assert proc.returncode == 2 == real["summary"]["exit_code"]  # an invalid case: exit code 2
    assert schema.keys() == real.keys()
    assert schema["summary"].keys() == real["summary"].keys()
    assert real["file_errors"] and all(e.keys() == schema["file_errors"][0].keys() for e in real["file_errors"])
    assert real["file_errors"][0]["reason"].startswith("expr does not parse")
    case_keys = schema["cases"][0].keys() - {"comparisons"}
    assert case_keys and len(real["cases"]) == 4
    for case in real["cases"]:
        assert case.keys() - {"comparisons"} == case_keys
        for comparison in case.get("comparisons", []):
            assert comparison.keys() == schema["cases"][0]["comparisons"][0].keys()
    assert any(case.get("comparisons") for case in real["cases"])
    wrong = next(c for c in real["cases"] if c["name"] == "wrong-expect")
    assert [c["name"] for c in wrong["comparisons"]] == ["value", "x", "expect x"]
    assert {c["status"] for c in real["cases"]} == {"pass", "fail", "skip", "xfail"}


def test_json_schema_twin_is_not_vacuous():
    schema = _json_schema()
    assert len(schema["summary"]) >= 10 and len(schema["cases"][0]) >= 12
    assert len(schema["cases"][0]["comparisons"][0]) >= 15


@pytest.mark.slow
def test_junit_matches_the_description(case_file, tmp_path):
    out = tmp_path / "report.xml"
    proc = symgrad("check", str(case_file), "--format", "junit", "-o", str(out), "--timeout", "0")
    assert proc.returncode == 2 and proc.stdout == ""
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "symgrad"
    cases = {tc.get("name"): tc for tc in suite.iter("testcase")}
    for name in ("fine", "wrong-expect", "skipped", "expected-to-fail"):
        assert {"classname", "name", "file", "line", "time"} <= set(cases[name].keys())
    assert cases["fine"].find("*") is None
    assert "mismatched" in cases["wrong-expect"].find("failure").text
    assert cases["skipped"].find("skipped") is not None and cases["expected-to-fail"].find("skipped") is not None
    assert any(tc.find("error") is not None for tc in suite.iter("testcase"))  # the invalid case


def _exit_code_table() -> dict[int, str]:
    section = TEXT[TEXT.index("Exit codes of `symgrad check`"):]
    rows = re.findall(r"^\| (\d) \| (.*) \|$", section[:section.index("\n\n", section.index("| code"))], re.M)
    return {int(code): meaning for code, meaning in rows}


@pytest.mark.slow
def test_exit_code_table(tmp_path):
    table = _exit_code_table()
    assert sorted(table) == [0, 1, 2]
    files = {
        0: "cases:\n  - {name: ok, expr: x**2, inputs: {x: 2.0}}\n"
           "  - {name: xf, expr: x**2, inputs: {x: 2.0}, expect: {x: 3*x}, xfail: known}\n",
        1: "cases:\n  - {name: bad, expr: x**2, inputs: {x: 2.0}, expect: {x: 3*x}}\n",
        2: "cases:\n  - {name: broken, expr: 'x +* 2', inputs: {x: 2.0}}\n",
    }
    assert "expected failure" in table[0] and "mismatched" in table[1] and "invalid case file" in table[2]
    for code, text in files.items():
        path = tmp_path / f"c{code}.yaml"
        path.write_text(text)
        proc = symgrad("check", str(path), "--timeout", "0")
        assert proc.returncode == code, (code, proc.stdout, proc.stderr)
    xpass = tmp_path / "xpass.yaml"  # "or an expected failure passed"
    xpass.write_text("cases:\n  - {name: xp, expr: x**2, inputs: {x: 2.0}, xfail: not really}\n")
    assert "expected failure passed" in table[1]
    assert symgrad("check", str(xpass), "--timeout", "0").returncode == 1
    assert symgrad("check", "--no-such-option").returncode == 2  # usage error


# ---------------------------------------------------------------- option table and synopsis


def test_check_options_are_real():
    section = TEXT[TEXT.index("Options of `symgrad check`"):]
    section = section[:section.index("\n\n", section.index("| option"))]
    options = set(re.findall(r"`(--?[a-z][a-z-]*)", section))
    assert len(options) >= 15
    help_text = symgrad("check", "--help").stdout
    missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", help_text)]
    assert missing == []
    assert "--no-such-option" not in help_text  # the twin: a made-up option is not found


def test_command_synopsis():
    (_, body, _), = [b for b in blocks(TEXT, "text") if b[1].startswith("symgrad check")]
    lines = [line.split("#")[0] for line in body.splitlines() if line.strip()]
    subcommands = [line.split()[1] for line in lines]
    assert subcommands == ["check", "grad", "ops", "plot", "fuzz"]
    for line, sub in zip(lines, subcommands):
        proc = symgrad(sub, "--help")
        assert proc.returncode == 0, proc.stderr
        for option in re.findall(r"(?<![\w-])--?[a-z][a-z-]*", line):
            assert option in proc.stdout, (sub, option)


# ---------------------------------------------------------------- limits of untrusted case files


def test_file_limits_are_the_documented_ones(tmp_path):
    from symgrad.checking.cases import collect
    from symgrad.ir.limits import Limits

    limits, text = Limits(), " ".join(TEXT.split())
    assert limits.max_file_bytes == 1_000_000 and "`max_file_bytes`, 1 MB by default" in text
    assert limits.max_yaml_depth == 100 and "`max_yaml_depth`, 100" in text
    assert limits.max_elements == 50_000_000 and "max_elements=50000000" in text

    big = tmp_path / "big.yaml"
    big.write_text("cases:\n" + "# padding\n" * 20)
    _, errors = collect([str(big)], limits=Limits(max_file_bytes=100))
    assert len(errors) == 1 and "max_file_bytes" in str(errors[0])

    deep = tmp_path / "deep.yaml"
    deep.write_text("cases: " + "[" * 150 + "]" * 150 + "\n")
    _, errors = collect([str(deep)])
    assert len(errors) == 1 and "max_yaml_depth" in str(errors[0])

    bomb = tmp_path / "bomb.yaml"  # a few hundred bytes, 10**9 values with aliases expanded
    lines = ["a0: &a0 [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"]
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, "
              f"*a{i-1}]" for i in range(1, 9)]
    bomb.write_text("\n".join(lines) + "\ncases: []\n")
    assert bomb.stat().st_size < 1000
    _, errors = collect([str(bomb)])
    assert len(errors) == 1 and "max_elements" in str(errors[0])

    fine = tmp_path / "fine.yaml"  # the twin: a small ordinary file loads
    fine.write_text("cases:\n  - {name: ok, expr: x**2, inputs: {x: 2.0}}\n")
    cases, errors = collect([str(fine)], limits=Limits(max_file_bytes=100))
    assert errors == [] and len(cases) == 1
