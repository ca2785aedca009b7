"""The progress line names the case that is running, with its elapsed time, on a terminal only."""

import io
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from symgrad.checking.formats import Progress
from symgrad.checking.report import Report

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def case(name: str, file: str = "cases.yaml"):
    return SimpleNamespace(name=name, file=file)


def last_line(stream: io.StringIO) -> str:
    return stream.getvalue().rsplit("\r\x1b[K", 1)[-1]


def test_running_case_and_its_elapsed_time():
    clock, stream = Clock(), io.StringIO()
    p = Progress(3, stream, clock=clock, tick=3600)
    p.start(case("slow-one"))
    assert last_line(stream) == "[0/3]  0 passed  0 failed  0 errors  running slow-one 0.0 s"
    clock.now += 3.25
    p.draw()
    assert last_line(stream).endswith("running slow-one 3.2 s")
    p.update(Report(name="slow-one", status="pass", file="cases.yaml"))
    assert last_line(stream) == "[1/3]  1 passed  0 failed  0 errors"  # done: no longer named
    p.enabled = False


def test_a_finished_case_is_not_shown_as_running():
    """Twin: the line would show a case still marked running; the report of another leaves it there."""
    clock, stream = Clock(), io.StringIO()
    p = Progress(3, stream, clock=clock, tick=3600)
    p.start(case("slow-one"))
    p.update(Report(name="other", status="pass", file="cases.yaml"))
    assert last_line(stream).endswith("running slow-one 0.0 s")
    p.enabled = False


def test_several_running_the_longest_first():
    clock, stream = Clock(), io.StringIO()
    p = Progress(5, stream, clock=clock, tick=3600)
    p.start(case("first"), None, 1)
    clock.now += 2
    p.start(case("second"), None, 2)
    clock.now += 1
    p.draw()
    assert last_line(stream).endswith("running first 3.0 s (+1)")
    # a new start in slot 1 means "first" ended there (a worker runs its task's cases in turn)
    p.start(case("third"), None, 1)
    assert last_line(stream).endswith("running second 1.0 s (+1)")
    p.update(Report(name="second", status="fail", file="cases.yaml"))
    assert last_line(stream).endswith("1 failed  0 errors  running third 0.0 s")
    p.enabled = False


def test_hostile_name_is_escaped_and_a_long_one_dropped(monkeypatch):
    stream = io.StringIO()
    p = Progress(1, stream, clock=Clock(), tick=3600)
    p.start(case("bad\x1b[2Jname"))
    assert "\x1b[2J" not in last_line(stream) and "running bad\\x1b[2Jname" in last_line(stream)
    monkeypatch.setenv("COLUMNS", "40")
    p.start(case("x" * 60))
    assert last_line(stream) == "[0/1]  0 passed  0 failed  0 errors"  # one row: the name goes
    p.enabled = False


class Counting(io.StringIO):
    def __init__(self, wanted: int) -> None:
        super().__init__()
        self.writes, self.wanted, self.enough = 0, wanted, threading.Event()

    def write(self, text: str) -> int:
        self.writes += 1
        if self.writes >= self.wanted:
            self.enough.set()
        return super().write(text)


def test_the_line_redraws_while_a_case_runs():
    clock, stream = Clock(), Counting(4)
    p = Progress(1, stream, clock=clock, tick=0.01)
    p.start(case("slow-one"))
    clock.now += 7
    assert stream.enough.wait(30), "no redraw while the case ran"
    p.enabled = False
    assert "running slow-one 7.0 s" in stream.getvalue()


def test_disabled_progress_writes_nothing_and_starts_no_thread():
    """Twin: off a terminal the same calls leave the stream empty."""
    stream = Counting(1)
    p = Progress(1, stream, clock=Clock(), tick=0.01, enabled=False)
    p.start(case("slow-one"))
    p.update(Report(name="slow-one", status="pass", file="cases.yaml"))
    p.clear()
    assert stream.getvalue() == "" and p._ticker is None


# ---------------------------------------------------------------- the command, on a pseudo-terminal

SLOW_BACKEND = textwrap.dedent('''\
    import time

    from symgrad.backends import Backend, get


    class SlowBackend(Backend):
        name = "slow"

        def gradients(self, expr, inputs, wrt, order, grad_output):
            if "slow" in inputs:
                time.sleep(1.6)
            return get("symgrad").gradients(expr, inputs, wrt, order, grad_output)
''')
CASES = """\
cases:
  - name: quick-one
    expr: x**2
    inputs: {x: [1.0]}
  - name: slow-one
    expr: slow**2
    inputs: {slow: [1.0]}
"""


def command(tmp_path: Path, *extra: str) -> list[str]:
    (tmp_path / "slow_progress_backend.py").write_text(SLOW_BACKEND)
    (tmp_path / "cases.yaml").write_text(CASES)
    return [sys.executable, "-c", "from symgrad.cli import main; main()", "check", str(tmp_path / "cases.yaml"),
            "--backend", "slow_progress_backend:SlowBackend", *extra]


def environment(tmp_path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]), COLUMNS="120")
    env.pop("NO_COLOR", None)
    return env


def on_pty(argv: list[str], env: dict) -> tuple[int, str]:
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
@pytest.mark.parametrize("extra", [("--timeout", "0"), ("-j", "2")], ids=["in-process", "workers"])
def test_terminal_shows_the_running_case_with_its_time(tmp_path, extra):
    code, out = on_pty(command(tmp_path, *extra, "--no-color"), environment(tmp_path))
    assert code == 0, out
    assert "running slow-one" in out
    # redrawn while it ran: a second or more into its 1.6 s
    assert re.search(r"running slow-one 1\.\d s", out), out
    assert "2 passed, 0 failed, 0 errors" in out


@pytest.mark.slow
def test_piped_output_has_no_progress_line(tmp_path):
    """Twin: the same run into a pipe, as tests and scripts read it: no progress, no carriage returns."""
    proc = subprocess.run(command(tmp_path, "--timeout", "0"), capture_output=True, text=True,
                          env=environment(tmp_path), cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "running" not in proc.stdout and "\r" not in proc.stdout
    assert proc.stdout.strip().startswith("2 passed, 0 failed, 0 errors")
