"""The ``symgrad`` command: through click's CliRunner and as the installed executable."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from symgrad.cli import main
from symgrad.ops import public_ops

ROOT = Path(__file__).resolve().parent.parent
SYMGRAD = shutil.which("symgrad")
needs_exe = pytest.mark.skipif(SYMGRAD is None, reason="the symgrad executable is not installed")

GOOD = """\
cases:
  - name: tutorial-Q
    expr: 3*a**3 - b**2
    inputs: {a: [2.0, 3.0], b: [6.0, 4.0]}
    grad_output: [1.0, 1.0]
    expect: {a: 9*a**2, b: -2*b}
    tags: [tutorial]
  - name: sin-exp
    expr: sin(x) * exp(x)
    inputs: {x: {uniform: [0.1, 2.0], shape: [4]}}
    tags: [smooth]
  - name: relu-kink
    expr: relu(x) * x
    inputs: {x: [-1.0, 0.0, 1.0]}
    tags: [kink]
"""

WRONG = """\
cases:
  - name: wrong-expect
    expr: x**2
    inputs: {x: [1.0, 2.0]}
    expect: {x: 3*x}
  - name: fine-after-wrong
    expr: x**3
    inputs: {x: [1.0, 2.0]}
"""

INVALID = """\
cases:
  - name: broken
    expr: x +
    inputs: {x: [1.0]}
"""

SLOW = """\
cases:
  - name: quick-before
    expr: x*2
    inputs: {x: [1.0]}
  - name: hangs
    expr: slow*2
    inputs: {slow: [1.0]}
  - name: quick-after
    expr: x**2
    inputs: {x: [3.0]}
"""

SLEEPY = Path(__file__).parent / "data" / "sleepy_backend.py"


@pytest.fixture
def suite(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    return tmp_path


def split_runner():
    """A CliRunner whose ``result.stdout`` holds stdout only (click < 8.2 needs mix_stderr=False)."""
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps them apart already
        return CliRunner()


def invoke(*args, env=None):
    runner = CliRunner()
    return runner.invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def run_exe(*args, env=None, cwd=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([SYMGRAD, *[str(a) for a in args]], capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=300)


def json_cases(text):
    doc = json.loads(text)
    for c in doc["cases"]:
        c.pop("duration")
    doc["summary"].pop("seconds")
    return doc


# ================================================================ CliRunner


@pytest.mark.slow
def test_check_passes_and_prints_the_summary(suite):
    res = invoke("check", suite)
    assert res.exit_code == 0, res.output
    assert res.output.strip().splitlines()[-1].startswith("3 passed, 0 failed, 0 errors in ")
    assert "\r" not in res.output and "\x1b[" not in res.output  # no progress, no colour off a TTY


def test_mismatch_exits_1_with_the_table(tmp_path):
    (tmp_path / "wrong.yaml").write_text(WRONG)
    res = invoke("check", tmp_path)
    assert res.exit_code == 1
    assert "FAIL wrong-expect" in res.output and "expect x" in res.output and "2/2" in res.output
    assert "1 passed, 1 failed, 0 errors" in res.output


def test_invalid_file_exits_2_and_other_cases_still_run(suite):
    (suite / "zz_bad.yaml").write_text(INVALID)
    res = invoke("check", suite)
    assert res.exit_code == 2
    assert "zz_bad.yaml:3: case 'broken': expr does not parse" in res.output
    assert "3 passed, 0 failed, 0 errors" in res.output


def test_missing_path_exits_2(tmp_path):
    res = invoke("check", tmp_path / "nope")
    assert res.exit_code == 2 and "no such file or folder" in res.output


def test_json_on_stdout_is_only_json(suite):
    (suite / "wrong.yaml").write_text(WRONG)
    res = split_runner().invoke(main, ["check", str(suite), "--format", "json"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["version"] == 1
    assert doc["summary"]["passed"] == 4 and doc["summary"]["failed"] == 1 and doc["summary"]["exit_code"] == 1
    names = [c["name"] for c in doc["cases"]]
    assert names == ["tutorial-Q", "sin-exp", "relu-kink", "wrong-expect", "fine-after-wrong"]
    wrong = doc["cases"][3]
    assert wrong["status"] == "fail" and wrong["file"].endswith("wrong.yaml") and wrong["line"] == 2
    cmp = next(c for c in wrong["comparisons"] if c["name"] == "expect x")
    assert cmp["mismatched"] == 2 and cmp["worst_index"] == [1] and cmp["max_abs"] == 2.0


def test_json_reports_file_errors(suite):
    (suite / "bad.yaml").write_text(INVALID)
    res = split_runner().invoke(main, ["check", str(suite), "--format", "json"])
    assert res.exit_code == 2
    doc = json.loads(res.stdout)
    assert doc["summary"]["file_errors"] == 1 and doc["summary"]["passed"] == 3
    assert doc["file_errors"][0]["case"] == "broken" and doc["file_errors"][0]["line"] == 3
    assert "bad.yaml" in res.stderr  # errors also on stderr


def test_junit_output_file(suite, tmp_path):
    (suite / "wrong.yaml").write_text(WRONG)
    out = tmp_path / "report.xml"
    res = invoke("check", suite, "--format", "junit", "--output", out)
    assert res.exit_code == 1
    root = ET.parse(out).getroot()
    cases = list(root.iter("testcase"))
    assert len(cases) == 5
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["wrong-expect"]
    assert failed[0].get("classname").endswith("wrong.yaml")
    assert "expect x" in failed[0].find("failure").text


def test_text_output_file(tmp_path):
    (tmp_path / "wrong.yaml").write_text(WRONG)
    out = tmp_path / "report.txt"
    res = invoke("check", tmp_path, "-o", out)
    assert res.exit_code == 1 and res.output == ""
    text = out.read_text()
    assert "FAIL wrong-expect" in text and "1 passed, 1 failed, 0 errors" in text


@pytest.mark.parametrize("args, expected", [
    (["-k", "tutorial"], ["tutorial-Q"]),
    (["-k", "not tutorial"], ["sin-exp", "relu-kink"]),
    (["-k", "sin or relu"], ["sin-exp", "relu-kink"]),
    (["-k", "(sin or relu) and not kink"], ["sin-exp"]),
    (["-k", "e and not (Q or exp)"], ["relu-kink"]),
    (["--tag", "smooth", "--tag", "kink"], ["sin-exp", "relu-kink"]),
    (["--skip-tags", "smooth,kink"], ["tutorial-Q"]),
    (["--skip-tags", "smooth", "--skip-tags", "tutorial"], ["relu-kink"]),
])
def test_selection(suite, args, expected):
    res = split_runner().invoke(main, ["check", str(suite), "--format", "json", *args])
    assert res.exit_code == 0, res.output
    assert [c["name"] for c in json.loads(res.stdout)["cases"]] == expected


def test_bad_keyword_is_a_usage_error(suite):
    res = invoke("check", suite, "-k", "sin and")
    assert res.exit_code == 2 and "column 8" in res.output


def test_exitfirst(tmp_path):
    (tmp_path / "a.yaml").write_text(WRONG)
    (tmp_path / "b.yaml").write_text(GOOD)
    res = invoke("check", tmp_path, "-x")
    assert res.exit_code == 1
    assert "0 passed, 1 failed, 0 errors" in res.output and "stopped after the first failure" in res.output


def test_jobs_2_equals_jobs_1(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(WRONG)
    shutil.copy(ROOT / "cases" / "tutorial.yaml", tmp_path / "c.yaml")
    one = split_runner().invoke(main, ["check", str(tmp_path), "--format", "json", "-j", "1"])
    two = split_runner().invoke(main, ["check", str(tmp_path), "--format", "json", "-j", "2"])
    auto = split_runner().invoke(main, ["check", str(tmp_path), "--format", "json", "-j", "auto"])
    assert one.exit_code == two.exit_code == auto.exit_code == 1
    assert json_cases(one.stdout) == json_cases(two.stdout) == json_cases(auto.stdout)
    t1 = invoke("check", tmp_path, "-j", "1", "--timeout", "0").output.splitlines()[:-1]
    t2 = invoke("check", tmp_path, "-j", "2").output.splitlines()[:-1]
    assert t1 == t2  # identical text apart from the timing line


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_bad_jobs(suite, value):
    assert invoke("check", suite, "-j", value).exit_code == 2


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.slow
def test_timeout_is_an_error_and_the_next_case_passes(tmp_path, monkeypatch, jobs):
    shutil.copy(SLEEPY, tmp_path / "sleepy_cli_plugin.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "slow.yaml").write_text(SLOW)
    res = invoke("check", tmp_path / "slow.yaml", "--backend", "sleepy_cli_plugin:SleepyBackend",
                 "--timeout", "1", "-j", jobs)
    assert res.exit_code == 2
    assert "ERROR hangs: timed out after 1 s" in res.output
    assert "2 passed, 0 failed, 1 errors" in res.output


def test_several_backends(tmp_path, monkeypatch):
    shutil.copy(SLEEPY, tmp_path / "sleepy_cli_plugin2.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "good.yaml").write_text(GOOD)
    res = split_runner().invoke(main, [
        "check", str(tmp_path / "good.yaml"), "--format", "json", "--backend", "symgrad",
        "--backend", "sleepy_cli_plugin2:SleepyBackend"])
    assert res.exit_code == 0, res.stderr
    got = [(c["name"], c["backend"]) for c in json.loads(res.stdout)["cases"]]
    assert got[:2] == [("tutorial-Q", "symgrad"), ("tutorial-Q", "sleepy_cli_plugin2:SleepyBackend")]
    assert len(got) == 6


def test_unknown_backend_is_an_error(suite):
    res = invoke("check", suite, "--backend", "nonesuch")
    assert res.exit_code == 2 and "unknown backend 'nonesuch'" in res.output


def test_limit_option(tmp_path):
    (tmp_path / "big.yaml").write_text(textwrap.dedent("""\
        cases:
          - name: deep
            expr: sin(sin(sin(sin(sin(sin(x))))))
            inputs: {x: [0.5]}
        """))
    res = invoke("check", tmp_path, "--limit", "max_depth=4")
    assert res.exit_code == 2 and "max_depth" in res.output
    assert invoke("check", tmp_path, "--limit", "max_depth=64").exit_code == 0
    bad = invoke("check", tmp_path, "--limit", "no_such_limit=3")
    assert bad.exit_code == 2 and "unknown limit" in bad.output
    assert invoke("check", tmp_path, "--limit", "max_depth").exit_code == 2


def test_tolerance_dtype_and_verbose_options(tmp_path):
    (tmp_path / "wrong.yaml").write_text(WRONG)
    assert invoke("check", tmp_path, "--atol", "10").exit_code == 0
    res = invoke("check", tmp_path, "--dtype", "float32", "-v", "--exact")
    assert res.exit_code == 1
    assert any(line.startswith("PASS ") and "fine-after-wrong" in line  # -v lists passes too
               for line in res.output.splitlines())


def test_verbose_shows_tracebacks(tmp_path):
    (tmp_path / "bad_backend.yaml").write_text(GOOD)
    res = invoke("check", tmp_path, "--backend", "json:loads", "-v", "--timeout", "0")
    assert res.exit_code == 2
    assert "Traceback" in res.output


def test_colour_flags(suite):
    (suite / "wrong.yaml").write_text(WRONG)
    # CliRunner is not a TTY: never colour, whatever the flags
    for extra in ([], ["--no-color"]):
        assert "\x1b[" not in invoke("check", suite, *extra).output
    assert "\x1b[" not in invoke("check", suite, env={"NO_COLOR": "1"}).output


def test_check_help_documents_exit_codes():
    res = invoke("check", "--help")
    assert res.exit_code == 0
    for text in ("Exit codes:", "0  every case passed", "1  a gradient mismatched", "2  usage error",
                 "--format", "--timeout", "-j, --jobs", "--skip-tags", "--limit", "--no-color"):
        assert text in res.output


def test_ops_lists_the_op_table():
    res = invoke("ops")
    assert res.exit_code == 0
    ops = public_ops()
    for op in ops:
        assert any(line.split()[0] == op.name for line in res.output.splitlines() if line.strip()), op.name
        for alias in op.aliases:
            assert alias in res.output
    assert "relu'(0) = 0" in res.output and "ties: 1/2 to each argument" in res.output
    assert f"{len(ops)} ops" in res.output
    doc = json.loads(invoke("ops", "--format", "json").output)
    assert [d["name"] for d in doc] == [op.name for op in ops]
    relu = next(d for d in doc if d["name"] == "relu")
    assert relu["arity"] == 1 and relu["kink"]
    assert next(d for d in doc if d["name"] == "sum")["params"] == ["axis", "keepdims"]


def test_grad_command_still_works():
    res = invoke("grad", "3*a**3 - b**2", "--at", "a=2,3", "--at", "b=6,4")
    assert res.exit_code == 0, res.output
    assert "9*a**2" in res.output and "PASS" in res.output


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_plot_renders_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "relu.png"
    res = invoke("plot", "relu(x) * sin(x) + maximum(x, y)", "--wrt", "x", "--range", "-2", "2", "--at", "y=0.5",
                 "-o", out, "--points", "101")
    assert res.exit_code == 0, res.output
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    assert "kinks: relu at 0, maximum at 0.5" in res.output


def test_plot_data_marks_kinks_and_undefined_points():
    from symgrad.plot import compute

    data = compute("abs(x) + log(x + 1)", "x", -2, 1, points=31)
    assert [name for _, name in data.kinks] == ["abs"]
    assert data.undefined[:10].all() and not data.undefined[11:].any()


def test_plot_usage_errors():
    assert invoke("plot", "x*y", "--wrt", "x", "--range", "0", "1").exit_code == 2  # y missing
    assert invoke("plot", "x", "--wrt", "x", "--range", "1", "0").exit_code == 2


def test_plot_without_matplotlib(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    res = invoke("plot", "x", "--wrt", "x", "--range", "0", "1", "-o", tmp_path / "x.png")
    assert res.exit_code == 2
    assert 'pip install "symgrad[plot]"' in res.output
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_shipped_cases_pass():
    res = invoke("check", ROOT / "cases", "-j", "2")
    assert res.exit_code == 0, res.output


# ================================================================ the installed executable


@needs_exe
@pytest.mark.slow
def test_exe_pass_and_mismatch(suite, tmp_path):
    ok = run_exe("check", suite)
    assert ok.returncode == 0 and "3 passed, 0 failed, 0 errors in" in ok.stdout
    assert "\r" not in ok.stdout and "\x1b[" not in ok.stdout  # a pipe: no progress, no colour
    (suite / "wrong.yaml").write_text(WRONG)
    bad = run_exe("check", suite)
    assert bad.returncode == 1 and "FAIL wrong-expect" in bad.stdout


@needs_exe
@pytest.mark.slow
def test_exe_invalid_file_exits_2(suite):
    (suite / "bad.yaml").write_text(INVALID)
    res = run_exe("check", suite)
    assert res.returncode == 2
    assert "case 'broken'" in res.stdout and "3 passed, 0 failed, 0 errors" in res.stdout


@needs_exe
@pytest.mark.slow
def test_exe_json_junit_and_jobs(suite, tmp_path):
    (suite / "wrong.yaml").write_text(WRONG)
    one = run_exe("check", suite, "--format", "json", "-j", "1")
    two = run_exe("check", suite, "--format", "json", "-j", "2")
    assert one.returncode == two.returncode == 1
    assert json_cases(one.stdout) == json_cases(two.stdout)
    assert json.loads(one.stdout)["summary"]["failed"] == 1
    junit = run_exe("check", suite, "--format", "junit", "-k", "wrong-expect or tutorial")
    root = ET.fromstring(junit.stdout)
    assert [c.get("name") for c in root.iter("testcase")] == ["tutorial-Q", "wrong-expect"]
    assert junit.returncode == 1


@needs_exe
@pytest.mark.slow
def test_exe_timeout(tmp_path):
    shutil.copy(SLEEPY, tmp_path / "sleepy_exe_plugin.py")
    (tmp_path / "slow.yaml").write_text(SLOW)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    res = run_exe("check", tmp_path / "slow.yaml", "--backend", "sleepy_exe_plugin:SleepyBackend",
                  "--timeout", "1", env=env)
    assert res.returncode == 2
    assert "ERROR hangs: timed out after 1 s" in res.stdout and "2 passed, 0 failed, 1 errors" in res.stdout


@needs_exe
@pytest.mark.slow
def test_exe_ops_plot_and_help(tmp_path):
    ops = run_exe("ops")
    assert ops.returncode == 0 and "logsumexp" in ops.stdout
    helped = run_exe("check", "--help")
    assert "Exit codes:" in helped.stdout
    if pytest.importorskip("matplotlib"):
        out = tmp_path / "p.png"
        res = run_exe("plot", "abs(x)", "--wrt", "x", "--range", "-1", "1", "-o", out)
        assert res.returncode == 0, res.stderr
        assert out.read_bytes()[:8] == PNG_MAGIC


def _pty_run(args, env):
    """Run the executable with stdout on a pseudo-terminal; return (exit code, everything it wrote)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([SYMGRAD, *map(str, args)], stdout=slave, stderr=slave, env={**os.environ, **env})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=120), b"".join(chunks).decode(errors="replace")


@needs_exe
@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
@pytest.mark.slow
def test_exe_progress_and_colour_on_a_tty(suite):
    (suite / "wrong.yaml").write_text(WRONG)
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    code, out = _pty_run(["check", suite], {**env, "NO_COLOR": ""})
    assert code == 1
    assert "\r\x1b[K[" in out and "passed" in out  # the updating progress line
    assert "\x1b[31m" in out or "\x1b[1m\x1b[31m" in out or "\x1b[31;1m" in out or "\x1b[" in out
    code, plain = _pty_run(["check", suite, "--no-color"], env)
    assert code == 1 and "\r\x1b[K[" in plain and "\x1b[3" not in plain
    code, plain = _pty_run(["check", suite], {**env, "NO_COLOR": "1"})
    assert "\x1b[3" not in plain
    code, quiet = _pty_run(["check", suite, "--format", "json"], env)
    assert "\r\x1b[K" not in quiet and json.loads(quiet.replace("\r\n", "\n"))["version"] == 1
