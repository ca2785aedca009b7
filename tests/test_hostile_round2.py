"""Hardening, round 2: each defect found by the second attack, reproduced and kept closed.

Hostile files live in ``tests/data/hostile/`` (their expected errors are in
``test_hostile_cases.WANT``); this module holds the tests that need more than loading one file.
"""


from __future__ import annotations

import os
from pathlib import Path

import pytest

from symgrad.checking.cases import CaseError, collect, load_file, schema

HOSTILE = Path(__file__).parent / "data" / "hostile"
BIG = "1" + "0" * 400


# ---------------------------------------------------------------- 1. huge integers


@pytest.mark.parametrize("key, text", [
    ("inputs", f"inputs: {{x: [1.0, {BIG}]}}"),
    ("grad_output", f"inputs: {{x: [1.0, 2.0]}}\n    grad_output: [1.0, {BIG}]"),
    ("expect", f"inputs: {{x: [1.0, 2.0]}}\n    expect: {{x: [2.0, {BIG}]}}"),
    ("value", f"inputs: {{x: [1.0, 2.0]}}\n    value: [2.0, {BIG}]"),
    ("seed", f"inputs: {{x: [1.0, 2.0]}}\n    seed: {BIG}"),
    ("defaults", None),
])
def test_huge_integer_is_an_error_of_its_case_only(key: str, text: str | None, tmp_path: Path) -> None:
    if text is None:  # inherited from defaults: every inheriting case is refused, its own twin runs
        body = (f"defaults:\n  value: [2.0, {BIG}]\ncases:\n  - name: bad\n    expr: x*2\n"
                f"    inputs: {{x: [1.0, 2.0]}}\n  - name: good\n    expr: x*2\n    inputs: {{x: [1.0, 2.0]}}\n"
                f"    value: null\n")
    else:
        body = (f"cases:\n  - name: bad\n    expr: x*2\n    {text}\n"
                f"  - name: good\n    expr: x*2\n    inputs: {{x: [1.0, 2.0]}}\n")
    (tmp_path / "big.yaml").write_text(body)
    (tmp_path / "other.yaml").write_text("cases:\n  - {name: other, expr: x, inputs: {x: 1.0}}\n")
    cases, errors = collect([tmp_path])
    assert sorted(c.name for c in cases) == ["good", "other"]
    assert [(e.case, Path(e.file or "").name) for e in errors] == [("bad", "big.yaml")]
    assert "too large" in errors[0].reason or "2**64-1" in errors[0].reason


def test_small_integers_in_lists_still_load(tmp_path: Path) -> None:  # the twin: the fast path still reads ints
    (tmp_path / "ok.yaml").write_text(f"cases:\n  - {{name: ok, expr: x*2, inputs: {{x: [1, {'9' * 300}]}}}}\n")
    (case,), errors = load_file(tmp_path / "ok.yaml")
    assert not errors and case.specs["x"].data[1] == float("9" * 300)


def test_an_unexpected_exception_in_one_case_is_that_case_s_error(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    real = schema.case_from_dict

    def flaky(data, **kw):  # type: ignore[no-untyped-def]
        if data.get("name") == "bad":
            raise OverflowError("int too large to convert to float")
        return real(data, **kw)

    monkeypatch.setattr(schema, "case_from_dict", flaky)
    (tmp_path / "f.yaml").write_text("cases:\n  - {name: bad, expr: x, inputs: {x: 1.0}}\n"
                                     "  - {name: good, expr: x, inputs: {x: 1.0}}\n")
    cases, errors = load_file(tmp_path / "f.yaml")
    assert [c.name for c in cases] == ["good"]
    (err,) = errors
    assert isinstance(err, CaseError) and (err.case, err.line) == ("bad", 2)
    assert "OverflowError" in err.reason


# ---------------------------------------------------------------- 2. len(inputs) ** order


def _many_inputs(n: int, order: int) -> dict:
    return {"name": "many", "expr": "x0*x1", "order": order, "inputs": {f"x{i}": 1.0 for i in range(n)}}


def test_derivative_sequences_are_counted_before_they_are_built(peak_bytes) -> None:  # type: ignore[no-untyped-def]
    def load() -> CaseError:
        with pytest.raises(CaseError) as info:
            schema.case_from_dict(_many_inputs(1000, 3))
        return info.value

    err, peak = peak_bytes(load)
    assert "max_derivatives=10000" in err.reason and "1001001000" in err.reason
    assert peak < 20_000_000  # nothing the size of 10**9 sequences was built


def test_derivative_limit_can_be_raised_and_small_cases_pass() -> None:  # the twin
    from symgrad.checking.runner import run_case
    from symgrad.ir.limits import Limits

    case = schema.case_from_dict(_many_inputs(20, 3), limits=Limits(max_derivatives=10_000))
    assert case.order == 3  # 20 + 400 + 8000 sequences: under the limit
    with pytest.raises(CaseError, match="max_derivatives=100 "):
        schema.case_from_dict(_many_inputs(20, 2), limits=Limits(max_derivatives=100))
    assert run_case(schema.case_from_dict(_many_inputs(3, 2))).status == "pass"


def test_run_case_checks_the_run_s_own_limit() -> None:  # a case validated under a larger limit
    from symgrad.checking.runner import Options, run_case
    from symgrad.ir.limits import Limits

    case = schema.case_from_dict(_many_inputs(20, 2))
    report = run_case(case, options=Options(limits=Limits(max_derivatives=100)))
    assert report.status == "error" and "max_derivatives" in report.reason


# ---------------------------------------------------------------- 3. exact rationals, expand


TINY_POWER = "x*(1+10**-29)**(10**29)"  # 1.0 in floats, a rational of ~6e30 digits in sympy


def test_exact_rational_power_is_refused_by_every_entry_point(capsys: pytest.CaptureFixture) -> None:
    import symgrad
    from symgrad.cli import main
    from symgrad.ir.limits import LimitExceeded
    from symgrad.ir.parse import ParseError, check_ir, parse

    with pytest.raises(ParseError, match=r"exact constant.s numerator and denominator.*max_const_digits=300"):
        parse(TINY_POWER, ["x"])
    with pytest.raises(CaseError, match="max_const_digits"):
        symgrad.check(TINY_POWER, x=1.0)
    # an IR built in Python is sized as text is (no parse: check_ir)
    from symgrad.ir.limits import Limits
    raised = Limits(max_const_digits=10**23)
    ir = parse("x*(1+10**-29)**(10**20)", ["x"], raised)  # under the limit with it raised
    with pytest.raises(LimitExceeded, match="exact constant"):
        check_ir(ir, ["x"])
    assert check_ir(ir, ["x"], raised)
    with pytest.raises(SystemExit) as info:  # symgrad grad: an error, at once, without a timeout
        main(["grad", TINY_POWER, "--at", "x=1.0"], standalone_mode=True)
    assert info.value.code == 2 and "max_const_digits" in capsys.readouterr().err


@pytest.mark.parametrize("expr", ["x*(2/3)**100", "x*(1/3)**200", "10.0**299*x", "x*(1+10**-5)**20",
                                  "x*(3/2)**(5/2)", "x*pi**10"])
def test_moderate_exact_constants_still_pass(expr: str) -> None:  # the twin: no false refusals
    import symgrad
    assert symgrad.check(expr, x=1.0).status == "pass"


def test_exact_constant_in_a_file_is_refused_under_pytest(pytester: pytest.Pytester) -> None:
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "c.yaml").write_text(
        f"cases:\n  - {{name: bomb, expr: '{TINY_POWER}', inputs: {{x: 1.0}}}}\n"
        "  - {name: fine, expr: 'x*(2/3)**3', inputs: {x: 1.0}}\n")
    from importlib import metadata
    installed = any(ep.name == "symgrad" for ep in metadata.entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "symgrad.pytest_plugin"]  # a source checkout without the entry point
    result = pytester.runpytest("cases", "-q", "-p", "no:cacheprovider", *plugin)
    result.assert_outcomes(passed=1, errors=1)
    assert "max_const_digits" in result.stdout.str()


def test_expand_in_the_expect_proof_is_bounded(peak_bytes) -> None:  # type: ignore[no-untyped-def]
    import sympy

    from symgrad.symbolic.prove import prove_equal

    x = sympy.Symbol("x", real=True)
    big = (x + 1) ** 1000000
    same = 1000000 * (x + 1) ** 999999 * (sympy.sin(x) ** 2 + sympy.cos(x) ** 2)
    verdict, peak = peak_bytes(prove_equal, sympy.diff(big, x), same)
    assert verdict is None and peak < 50_000_000  # unproved (compared numerically), not expanded
    assert prove_equal((x + 1) ** 3, x**3 + 3 * x**2 + 3 * x + 1) is True  # small powers: still proved
    assert prove_equal((x + 1) ** 3, x**3 + 3 * x**2 + 3 * x + 2) is False


def test_expect_of_a_huge_power_is_checked_numerically(tmp_path: Path) -> None:
    from symgrad.checking.runner import run_case

    text = ("cases:\n"
            "  - {name: right, expr: '(x+1)**1000000', inputs: {x: -1e-7},\n"
            "     expect: {x: '1000000*(x+1)**999999*(sin(x)**2+cos(x)**2)'}}\n"
            "  - {name: wrong, expr: '(x+1)**1000000', inputs: {x: -1e-7},\n"
            "     expect: {x: '1000001*(x+1)**999999*(sin(x)**2+cos(x)**2)'}}\n")
    (tmp_path / "p.yaml").write_text(text)
    cases, errors = load_file(tmp_path / "p.yaml")
    assert not errors
    assert [run_case(c).status for c in cases] == ["pass", "fail"]


# ---------------------------------------------------------------- 4, 9. files that are not plain readable files

GOOD_CASE = "cases:\n  - {name: good, expr: x*2, inputs: {x: [1.0, 2.0]}}\n"


def _errors_by_file(errors: list[CaseError]) -> dict[str, str]:
    return {Path(e.file or "").name: e.reason for e in errors}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_and_devices_are_refused_before_reading(tmp_path: Path, peak_bytes) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "good.yaml").write_text(GOOD_CASE)
    os.mkfifo(tmp_path / "fifo.yaml")  # opening it for reading would wait for a writer forever
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")  # reading it never ends
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    for named in ([tmp_path], [tmp_path / n for n in ("good.yaml", "fifo.yaml", "zero.yaml", "dangling.yaml")]):
        (cases, errors), peak = peak_bytes(collect, named)
        assert [c.name for c in cases] == ["good"]
        by_file = _errors_by_file(errors)
        assert by_file.keys() == {"fifo.yaml", "zero.yaml", "dangling.yaml"}
        assert "a FIFO, not a regular file" in by_file["fifo.yaml"]
        assert "a character device (a link to /dev/zero), not a regular file" in by_file["zero.yaml"]
        assert "No such file or directory" in by_file["dangling.yaml"]
        assert peak < 5_000_000


def test_reading_stops_after_max_file_bytes(tmp_path: Path, peak_bytes) -> None:  # type: ignore[no-untyped-def]
    from symgrad.checking.cases import files
    from symgrad.ir.limits import Limits

    path = tmp_path / "big.yaml"
    path.write_text("cases:\n" + "#" * 3_000_000)
    real_stat = os.stat  # a file whose st_size says 0 (as /proc's do), or that grows after the stat

    def small_stat(p, *a, **k):  # type: ignore[no-untyped-def]
        st = real_stat(p, *a, **k)
        return os.stat_result((*st[:6], 0, *st[7:])) if str(p).endswith("big.yaml") else st

    reads: list[int] = []
    real_fdopen = os.fdopen

    class Spy:  # records how much was asked for: st_size is not trusted, the read is bounded
        def __init__(self, f):  # type: ignore[no-untyped-def]
            self.f = f

        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, *a):  # type: ignore[no-untyped-def]
            self.f.close()

        def fileno(self) -> int:
            return self.f.fileno()

        def read(self, n: int = -1) -> bytes:
            reads.append(n)
            return self.f.read(n)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(files.os, "fdopen", lambda fd, mode: Spy(real_fdopen(fd, mode)))
        mp.setattr(files.os, "stat", small_stat)
        (_, (err,)), peak = peak_bytes(load_file, path)
    assert reads == [1_000_001] and "more than 1000000 bytes exceeds the limit max_file_bytes" in err.reason
    assert peak < 3_000_000
    (err,) = load_file(path, Limits(max_file_bytes=4_000_000))[1]  # the limit can be raised: read whole
    assert "'cases' must be a list" in err.reason
    path.write_text(GOOD_CASE)  # the twin: a small file is read whole
    assert [c.name for c in load_file(path)[0]] == ["good"]


def test_unreadable_file_and_folder_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # runs as any user (root reads mode 000): the OS's refusal is simulated
    from symgrad.checking.cases import files

    (tmp_path / "good.yaml").write_text(GOOD_CASE)
    (tmp_path / "locked.yaml").write_text(GOOD_CASE.replace("good", "locked"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.yaml").write_text(GOOD_CASE.replace("good", "inner"))
    real_open, real_scandir = os.open, os.scandir

    def deny_open(path, *a, **k):  # type: ignore[no-untyped-def]
        if str(path).endswith("locked.yaml"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    def deny_scandir(path="."):  # type: ignore[no-untyped-def]
        if str(path).endswith("sub"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(files.os, "open", deny_open)
    monkeypatch.setattr(os, "scandir", deny_scandir)
    cases, errors = collect([tmp_path])
    assert [c.name for c in cases] == ["good"]
    by_file = _errors_by_file(errors)
    assert by_file == {"locked.yaml": "cannot read file: Permission denied",
                       "sub": "cannot read folder: Permission denied"}
    monkeypatch.undo()  # the twin: readable again, everything loads
    cases, errors = collect([tmp_path])
    assert sorted(c.name for c in cases) == ["good", "inner", "locked"] and not errors


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="running as root: mode 000 is readable (the monkeypatched test above covers it)")
def test_mode_000_file_and_folder_are_errors(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD_CASE)
    locked = tmp_path / "locked.yaml"
    locked.write_text(GOOD_CASE.replace("good", "locked"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "inner.yaml").write_text(GOOD_CASE.replace("good", "inner"))
    locked.chmod(0)
    sub.chmod(0)
    try:
        cases, errors = collect([tmp_path])
    finally:
        sub.chmod(0o755)
        locked.chmod(0o644)
    assert [c.name for c in cases] == ["good"]
    assert _errors_by_file(errors).keys() == {"locked.yaml", "sub"}


# ---------------------------------------------------------------- 5, 12. signals: nothing left behind, exit codes

SLEEPY = Path(__file__).parent / "data" / "sleepy_backend.py"
SLOW_CASES = "".join(f"  - {{name: slow{i}, expr: 'x*slow+{i}', inputs: {{x: 1.0, slow: 1.0}}}}\n" for i in range(3))


def _session_pids(sid: int) -> list[int]:
    """Live processes of session ``sid`` (the run was started in a session of its own)."""
    try:
        import psutil  # type: ignore[import-not-found]
    except ImportError:
        psutil = None
    if psutil is not None:
        out = []
        for proc in psutil.process_iter(["pid", "status"]):
            try:
                if os.getsid(proc.pid) == sid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                    out.append(proc.pid)
            except (OSError, psutil.Error):
                continue
        return out
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, _ppid, _pgrp, session = text[text.rindex(")") + 2:].split()[:4]
        if int(session) == sid and state != "Z":
            out.append(int(entry))
    return out


def _default_sigint() -> None:
    """In the child: ctrl-C as a terminal delivers it, whatever the test process inherited or set up
    (a SIGINT ignored or blocked there is ignored or blocked in every child it starts)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _start_slow_run(tmp_path: Path, prelude: str = ""):  # type: ignore[no-untyped-def]
    import subprocess
    import sys
    import time

    (tmp_path / "sleepy_backend.py").write_text(SLEEPY.read_text())
    (tmp_path / "slow.yaml").write_text("cases:\n" + SLOW_CASES)
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(tmp_path)]))
    proc = subprocess.Popen([sys.executable, "-c", prelude + "from symgrad.cli import main; main()", "check", "-j", "2",
                             "--timeout", "0", "--backend", "sleepy_backend:SleepyBackend", "slow.yaml"],
                            cwd=tmp_path, env=env, start_new_session=True, preexec_fn=_default_sigint,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(600):  # the run, the fork server, the resource tracker and two busy workers
        if len(_session_pids(proc.pid)) >= 5:
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the workers never started")
    time.sleep(0.5)  # both workers are inside the slow case
    return proc


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("signame, code", [("SIGTERM", 143), ("SIGKILL", -9), ("SIGINT", 130)])
def test_a_killed_run_leaves_no_process_behind(signame: str, code: int, tmp_path: Path) -> None:
    import signal
    import time

    proc = _start_slow_run(tmp_path)
    sid = proc.pid
    proc.send_signal(getattr(signal, signame))
    try:
        proc.wait(timeout=60)
        left: list[int] = []
        for _ in range(300):  # bounded polling: the children get their own SIGKILL from the kernel
            left = _session_pids(sid)
            if not left:
                break
            time.sleep(0.1)
        assert left == [], f"left behind after {signame}: {left}"
        assert proc.returncode == code
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert "Traceback" not in err
    finally:
        for pid in _session_pids(sid):  # never leave the test's own children running
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.communicate()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_ctrl_c_before_the_workers_announce_their_cases_still_stops_them(tmp_path: Path) -> None:
    # on a loaded machine a worker can take a group before the parent reads its start message;
    # never reading them makes that race certain: the parent must still kill every worker, not wait
    import signal
    import subprocess

    proc = _start_slow_run(tmp_path, "from symgrad.checking.suite import pool; "
                                     "pool._Pool._drain = lambda self, queue: None; ")
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        assert proc.returncode == 130
    except subprocess.TimeoutExpired:
        pytest.fail("ctrl-C waited for workers busy with a case it never heard of")
    finally:
        for pid in _session_pids(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.communicate()


def test_die_with_parent_asks_the_kernel_on_linux() -> None:
    import sys

    from symgrad.checking.workers import lifetime

    if sys.platform.startswith("linux"):
        assert lifetime._prctl_pdeathsig() is True
    else:
        assert lifetime._prctl_pdeathsig() is False


def test_interrupt_exits_130_and_sigterm_143(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from symgrad import cli
    from symgrad.checking import suite

    (tmp_path / "c.yaml").write_text(GOOD_CASE)

    def interrupted(*a, **k):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    def terminated(*a, **k):  # type: ignore[no-untyped-def]
        cli._on_sigterm(15, None)

    for fake, code, text in ((interrupted, 130, "Aborted!"), (terminated, 143, "Terminated.")):
        monkeypatch.setattr(suite, "run_suite", fake)
        res = CliRunner().invoke(cli.main, ["check", str(tmp_path / "c.yaml")])
        assert res.exit_code == code, res.output
        assert text in res.output and "Traceback" not in res.output
    monkeypatch.undo()  # the twin: not interrupted, exit 0
    assert CliRunner().invoke(cli.main, ["check", str(tmp_path / "c.yaml")]).exit_code == 0
    assert "130  interrupted" in cli.EXIT_CODES and "143  terminated" in cli.EXIT_CODES


# ---------------------------------------------------------------- 6. defaults inherited by many cases


def _defaults_file(tmp_path: Path, elements: int, cases: int) -> Path:
    values = ", ".join(["1.0"] * elements)
    lines = ["defaults:", f"  value: [{values}]", "cases:"]
    lines += [f"  - {{name: c{i}, expr: 'x*0+1', inputs: {{x: {{uniform: [0, 1], shape: [{elements}]}}}}}}"
              for i in range(cases)]
    path = tmp_path / "defaults.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_inherited_defaults_count_once_per_case(tmp_path: Path, peak_bytes) -> None:  # type: ignore[no-untyped-def]
    from symgrad.ir.limits import Limits

    path = _defaults_file(tmp_path, 2_000, 60)  # 120 000 values as the cases see them
    (cases, errors), peak = peak_bytes(load_file, path, Limits(max_elements=100_000))
    assert cases == [] and len(errors) == 1 and peak < 50_000_000  # refused before 60 copies were read
    assert "defaults counted once per case" in errors[0].reason and "max_elements=100000" in errors[0].reason
    assert errors[0].line == 1  # the defaults key
    # the twin: with room for them, every case loads and inherits the value
    cases, errors = load_file(path, Limits(max_elements=200_000))
    assert not errors and len(cases) == 60 and all(len(c.value) == 2_000 for c in cases)


def test_defaults_a_case_overrides_are_not_counted(tmp_path: Path) -> None:
    from symgrad.ir.limits import Limits

    values = ", ".join(["1.0"] * 2_000)
    text = (f"defaults:\n  value: [{values}]\ncases:\n"
            + "".join(f"  - {{name: c{i}, expr: x, inputs: {{x: 1.0}}, value: 1.0}}\n" for i in range(60)))
    (tmp_path / "o.yaml").write_text(text)
    cases, errors = load_file(tmp_path / "o.yaml", Limits(max_elements=100_000))
    assert not errors and len(cases) == 60


# ---------------------------------------------------------------- 7, 8. injection into the terminal and the reports

CONTROL_CORPUS = (
    [chr(c) for c in range(0x00, 0x20)] + ["\x7f"] + [chr(c) for c in range(0x80, 0xA0)]
    + [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u2028", "\u2029", "\u200e", "\u200f", "\u061c", "\ufeff", "\udc80", "\udcff", "\ud800"]
    + ["\x1b]0;owned\x07", "\x1b[2J", "\r\n999 passed, 0 failed, 0 errors"]
)


def _unsafe(text: str) -> list[str]:
    import unicodedata

    return [c for c in text if c not in "\n" and ((not c.isprintable() and c != " ")
                                                  or unicodedata.category(c) in ("Cf", "Cs", "Zl", "Zp"))]


@pytest.mark.parametrize("bad", CONTROL_CORPUS, ids=lambda s: "+".join(f"U{ord(c):04X}" for c in s[:3]))
def test_escape_leaves_no_unsafe_character(bad: str) -> None:
    from symgrad.checking.escape import escape

    text = f"a{bad}b"
    out = escape(text)
    assert _unsafe(out) == [] and "\n" not in out and out.startswith("a") and out.endswith("b")
    out.encode("utf-8")  # lone surrogates are gone: always encodable
    assert _unsafe(text) or "\n" in text  # the twin: the corpus is unsafe as written
    assert escape("plain x**2 + y, tab-free") == "plain x**2 + y, tab-free"  # ordinary text unchanged


def test_escape_keeps_newlines_only_when_asked() -> None:
    from symgrad.checking.escape import escape

    assert escape("a\nb") == "a\\x0ab" and escape("a\nb", newlines=True) == "a\nb"
    assert escape("a\x1bb", newlines=True) == "a\\x1bb"


@pytest.mark.parametrize("bad", ["\x1b]0;owned\x07", "\u202e", "\x00", "\x9b2J", "\u2066"])
def test_expressions_refuse_comments_controls_and_bidi(bad: str) -> None:
    from symgrad.ir.parse import ParseError, parse

    with pytest.raises(ParseError, match="is not allowed"):
        parse(f"x + 1 {bad}", ["x"])
    with pytest.raises(ParseError, match="comments"):
        parse("x  # looks harmless", ["x"])
    assert parse("x +\t1", ["x"]) is not None  # the twin: blanks are fine


HOSTILE_NAME = "evil\n999 passed, 0 failed, 0 errors in 0.01 s\n\x1b]0;owned\x07\u202e.yaml"


def _write_injection_suite(folder: Path) -> None:
    folder.mkdir()
    (folder / HOSTILE_NAME).write_text("cases:\n  - {name: bad, expr: 'x +* 1', inputs: {x: 1.0}}\n")
    (folder / "reasons.yaml").write_text(
        "cases:\n"
        "  - {name: skipped, expr: x, inputs: {x: 1.0}, skip: \"\\e]0;title\\a\\e[2J\\nPASS forged\\u202e\"}\n"
        "  - {name: xfailed, expr: x**2, inputs: {x: 1.0}, expect: {x: 3*x}, xfail: \"\\0\\x9b\\u2066oops\"}\n"
        "  - {name: good, expr: x*2, inputs: {x: 1.0}}\n")


@pytest.mark.parametrize("fmt", ["text", "json", "junit"])
def test_no_raw_control_character_reaches_any_output_format(fmt: str, tmp_path: Path) -> None:
    import json
    import xml.etree.ElementTree as ET

    from click.testing import CliRunner

    from symgrad import cli

    _write_injection_suite(tmp_path / "suite")
    res = CliRunner().invoke(cli.main, ["check", "--format", fmt, str(tmp_path / "suite")])
    out = res.output
    assert res.exit_code == 2, out
    assert "Traceback" not in out
    assert _unsafe(out) == [], [hex(ord(c)) for c in _unsafe(out)]
    lines = out.splitlines()
    assert not any(line.startswith("999 passed") for line in lines)  # no forged summary line
    assert not any(line.startswith("PASS forged") for line in lines)
    if fmt == "json":
        body = out[out.index("{"):out.rindex("}") + 1]
        data = json.loads(body)
        assert any("999 passed" in e["file"] for e in data["file_errors"])  # named, escaped
    if fmt == "junit":
        ET.fromstring(out[out.index("<?xml"):].split("\n", 1)[1].rsplit("</testsuites>", 1)[0] + "</testsuites>")
    if fmt == "text":
        assert "evil\\x0a999 passed" in out and "\\x1b]0;owned\\x07" in out and "\\u202e" in out


@pytest.mark.skipif(os.name != "posix", reason="bytes file names")
def test_a_non_utf8_file_name_is_escaped_in_every_report(tmp_path: Path) -> None:
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    suite = tmp_path / "suite"
    suite.mkdir()
    try:
        with open(os.path.join(os.fsencode(suite), b"bad\xff\xfe.yaml"), "w") as f:
            f.write("cases:\n  - {name: broken, expr: 'x +* 1', inputs: {x: 1.0}}\n")
    except OSError:
        pytest.skip("the file system refuses non-UTF-8 names")
    (suite / "good.yaml").write_text(GOOD_CASE)
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONIOENCODING="utf-8:strict", LC_ALL="C.UTF-8")
    for fmt in ("text", "json", "junit"):
        out = tmp_path / f"report.{fmt}"
        proc = subprocess.run([sys.executable, "-c", "from symgrad.cli import main; main()", "check", "-j", "1",
                               "--format", fmt, "-o", str(out), str(suite)],
                              env=env, capture_output=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert b"Traceback" not in proc.stderr and b"UnicodeEncodeError" not in proc.stderr
        text = out.read_text(encoding="utf-8")
        if fmt == "json":
            import json
            text = json.loads(text)["file_errors"][0]["file"]
        assert "bad\\udcff\\udcfe.yaml" in text, text[:500]
        if fmt == "junit":
            ET.fromstring(text.split("\n", 1)[1])
    proc = subprocess.run([sys.executable, "-c", "from symgrad.cli import main; main()", "check", str(suite)],
                          env=env, capture_output=True, timeout=120)  # stdout, strict UTF-8
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr
    assert b"bad\\udcff\\udcfe.yaml" in proc.stdout + proc.stderr


# ---------------------------------------------------------------- 10. the parser accepts only the language


@pytest.mark.parametrize("expr, message", [
    ("sum(x, axis=0, axis=1)", "keyword argument 'axis' repeated in sum()"),
    ("ｘ+1", "non-ASCII character 'ｘ' (U+FF58) is not allowed"),
    ("x+\u0663", "non-ASCII character"),
])
def test_parser_refuses_what_python_would_not_run_or_reads_differently(expr: str, message: str) -> None:
    from symgrad.ir.parse import ParseError, parse

    with pytest.raises(ParseError) as info:
        parse(expr, ["x"])
    assert message in str(info.value)
    assert parse("sum(x, axis=0)", ["x"]) is not None  # the twin


def test_case_files_refuse_non_ascii_digits_and_names() -> None:
    with pytest.raises(CaseError, match="non-numeric value"):
        schema.case_from_dict({"name": "a", "expr": "x", "inputs": {"x": "\u0663"}})
    with pytest.raises(CaseError, match="names are ASCII"):
        schema.case_from_dict({"name": "a", "expr": "x", "inputs": {"ｘ": 1.0}})
    with pytest.raises(CaseError, match="seed must be"):
        schema.case_from_dict({"name": "a", "expr": "x", "inputs": {"x": 1.0}, "seed": "\u0663"})
    case = schema.case_from_dict({"name": "a", "expr": "x", "inputs": {"x": "3"}, "seed": "7"})  # the twin
    assert float(case.specs["x"].data) == 3.0 and case.seed == 7


# ---------------------------------------------------------------- done when: all of it at once


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists() or not hasattr(os, "mkfifo"), reason="needs Linux")
@pytest.mark.parametrize("fmt", ["text", "json", "junit"])
def test_a_folder_of_every_hostile_input_beside_good_cases(fmt: str, tmp_path: Path) -> None:
    import json
    import shutil
    import subprocess
    import sys
    import time
    import xml.etree.ElementTree as ET

    from test_hostile_cases import WANT

    suite = tmp_path / "suite"
    shutil.copytree(HOSTILE, suite)
    os.mkfifo(suite / "fifo.yaml")
    (suite / "zero.yaml").symlink_to("/dev/zero")
    _write_injection_suite(suite / "injection")
    with open(os.path.join(os.fsencode(suite), b"latin1-\xe9.yaml"), "w") as f:
        f.write("cases:\n  - {name: latin, expr: 'x +* 1', inputs: {x: 1.0}}\n")
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONIOENCODING="utf-8:strict")
    proc = subprocess.Popen([sys.executable, "-c", "from symgrad.cli import main; main()", "check", "-j", "2",
                             "--timeout", "60", "--format", fmt, str(suite)],
                            cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out_b, err_b = proc.communicate(timeout=600)
    finally:
        proc.kill()
    left: list[int] = []
    for _ in range(100):
        left = _session_pids(proc.pid)
        if not left:
            break
        time.sleep(0.1)
    assert left == [], "processes left behind"
    out, err = out_b.decode("utf-8"), err_b.decode("utf-8")
    both = out + err
    assert proc.returncode == 2, both[-2000:]
    # JSON and JUnit carry an errored case's traceback as data, by design; no traceback of symgrad itself
    assert "Traceback" not in (both if fmt == "text" else err)
    assert _unsafe(both) == [], [hex(ord(c)) for c in _unsafe(both)][:10]
    assert not any(line.startswith("999 passed") for line in both.splitlines())
    files = {f"{suite}/{name}" for name in WANT if WANT[name].errors and WANT[name].in_folders}
    files |= {f"{suite}/fifo.yaml", f"{suite}/zero.yaml", f"{suite}/latin1-\\udce9.yaml"}
    if fmt == "json":
        data = json.loads(out)
        named = {e["file"] for e in data["file_errors"]}
        status = {c["name"]: c["status"] for c in data["cases"]}
    else:
        if fmt == "junit":
            ET.fromstring(out.split("\n", 1)[1])
        named = {f for f in files if f in both}
        status = {}
    assert files <= named, sorted(files - named)
    if status:
        assert {status[n] for n in ("good-sin", "good-tutorial-Q", "twin", "good")} == {"pass"}
        assert status["skipped"] == "skip" and status["xfailed"] == "xfail"
    if fmt == "text":
        for name in ("good-sin", "good-tutorial-Q", "good"):
            assert f"FAIL {name}" not in both and f"ERROR {name}" not in both
        error_lines = [line for line in both.splitlines() if line.startswith("ERROR ")]
        assert all(line.count("ERROR ") == 1 for line in error_lines)  # one error, one line
