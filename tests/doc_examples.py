"""Finding and running the examples of the README and of docs/ (tests/test_readme.py, tests/test_docs.py).

Fenced blocks are found by their language; ```console blocks give ``$ `` commands with the output
lines shown under them; ``print(...)   # -> TEXT`` lines give the text a ```python block must print.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

try:
    import fcntl
except ImportError:  # Windows: every documented command runs for each test that shows it
    fcntl = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 300

FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
NEEDS = re.compile(r"^\s*#\s*needs:\s*([\w., ]+)$", re.M)
PRINT_EXPECT = re.compile(r"^\s*print\(.*\)\s*#\s*->\s?(.*)$")
TIME = re.compile(r"\bin \d+(?:\.\d+)? s\b")
CHECK_SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed(?:, (\d+) xpassed)?(?:, \d+ skipped)?(?:, \d+ xfailed)?, "
                           r"(\d+) errors in \d+(?:\.\d+)? s$")
FUZZ_SUMMARY = re.compile(r"^\d+ checked: \d+ passed, \d+ undefined-skipped, (\d+) failed, (\d+) errors\b")


# ---------------------------------------------------------------- extraction


def blocks(text: str, lang: str | None = None) -> list[tuple[str, str, int]]:
    """``(lang, body, line)`` of every fenced block (``line``: 1-based line of the fence)."""
    found = []
    for m in FENCE.finditer(text):
        if lang is None or m.group(1) == lang:
            found.append((m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1))
    return found


def console_commands(text: str) -> list[tuple[str, list[str], int]]:
    """``(command, expected output lines, line)`` for every ``$ `` line of the ```console blocks."""
    commands = []
    for _, body, line in blocks(text, "console"):
        for i, row in enumerate(body.splitlines()):
            if row.startswith("$ "):
                commands.append((row[2:], [], line + 1 + i))
            elif row.strip() and commands:
                commands[-1][1].append(row.rstrip())
    return commands


def print_expectations(code: str) -> list[str]:
    """The ``# -> TEXT`` comments of ``print(...)`` lines, in order."""
    return [m.group(1).rstrip() for m in map(PRINT_EXPECT.match, code.splitlines()) if m]


def check_prints(code: str, stdout: str) -> None:
    """Every ``# -> TEXT`` must be printed, in order, as a whole line."""
    lines = [line.rstrip() for line in stdout.splitlines()]
    pos = 0
    for want in print_expectations(code):
        try:
            pos = lines.index(want, pos) + 1
        except ValueError:
            raise AssertionError(f"expected the line {want!r} in the output (in order):\n{stdout}") from None


def expected_exit_code(output_lines: list[str]) -> int:
    """The exit code the README's table gives for the summary line shown (0 when none is shown)."""
    for line in output_lines:
        m = CHECK_SUMMARY.match(line)
        if m:
            failed, xpassed, errors = int(m.group(2)), int(m.group(3) or 0), int(m.group(4))
            return 2 if errors else 1 if failed or xpassed else 0
        m = FUZZ_SUMMARY.match(line)
        if m:
            return 1 if int(m.group(1)) or int(m.group(2)) else 0
    return 0


def normalise(line: str) -> str:
    # times vary, and so does how many fuzz examples a loaded machine discards (hypothesis's
    # generation adapts to how long examples take); everything else must match
    return DISCARDED.sub("(N discarded)", TIME.sub("in T s", line.rstrip()))


DISCARDED = re.compile(r"\(\d+ discarded\)")




def symgrad_exe() -> list[str]:
    exe = shutil.which("symgrad")
    return [exe] if exe else [sys.executable, "-m", "symgrad.cli"]


def run(argv: list[str], cwd: Path = ROOT, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, env=env, **kw)


def symgrad(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return run(symgrad_exe() + list(args), cwd=cwd)


def run_once(argv: list[str], files: dict[str, str] | None = None, in_folder: bool = False
             ) -> subprocess.CompletedProcess:
    """``run(argv)`` from the repository root, once per test session: the README and the pages of docs/
    show some commands and blocks several times, and every test of them reads the exit code and output
    of the one real run.  ``files`` are written to a fresh folder first (``{folder}`` in ``argv`` is its
    path); ``in_folder`` runs the command there instead of the root.  The results are kept in the
    session's shared folder (tests/conftest.py), one file per command under a lock, so pytest-xdist's
    workers share them too; without that folder every call runs its command."""
    shared = os.environ.get("SYMGRAD_TEST_SHARED_DIR")
    if not shared or fcntl is None:
        return _run_in(argv, files or {}, in_folder, Path(tempfile.mkdtemp(prefix="symgrad-doc-")))
    key = hashlib.sha256(json.dumps([argv, files, in_folder], sort_keys=True).encode()).hexdigest()[:32]
    result = Path(shared) / f"run-{key}.json"
    with _locked(Path(f"{result}.lock")):
        if result.exists():
            got = json.loads(result.read_text(encoding="utf-8"))
            return subprocess.CompletedProcess(argv, got["returncode"], got["stdout"], got["stderr"])
        folder = Path(shared) / f"files-{key}"
        folder.mkdir()
        proc = _run_in(argv, files or {}, in_folder, folder)
        result.write_text(json.dumps({"returncode": proc.returncode, "stdout": proc.stdout,
                                      "stderr": proc.stderr}), encoding="utf-8")
        return proc


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` (created), held by one process of the session at a time."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_in(argv: list[str], files: dict[str, str], in_folder: bool, folder: Path) -> subprocess.CompletedProcess:
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return run([arg.replace("{folder}", str(folder)) for arg in argv], cwd=folder if in_folder else ROOT)


def needs(*modules: str) -> None:
    for mod in modules:
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"needs {mod}")


# ---------------------------------------------------------------- running the examples


def run_python_block(code: str, where: str = "") -> None:
    """Run a ```python block in a fresh interpreter (under pytest when it defines ``def test_...``,
    with the plugin's fixtures); its ``# needs:`` modules must be installed, its ``# ->`` lines printed."""
    for m in NEEDS.finditer(code):
        needs(*[mod.strip() for mod in m.group(1).split(",") if mod.strip()])
    if re.search(r"^def test_\w+\(", code, re.M):
        proc = run_once([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_doc_block.py"],
                        files={"test_doc_block.py": code}, in_folder=True)
        assert proc.returncode == 0, f"{where}\n{proc.stdout}{proc.stderr}"
        n_tests = len(re.findall(r"^def test_", code, re.M))
        assert re.search(rf"\b{n_tests} passed\b", proc.stdout), f"{where}\n{proc.stdout}"
        return
    proc = run_once([sys.executable, "{folder}/doc_block.py"], files={"doc_block.py": code})
    assert proc.returncode == 0, f"{where}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    check_prints(code, proc.stdout)


def run_console_command(command: str, output: list[str], where: str = "") -> None:
    """Run a ``$ symgrad ...`` or ``$ pytest ...`` line: the exit code the summary shown implies, and
    every output line shown (times and discard counts normalised)."""
    argv = shlex.split(command, comments=True)
    needs(*[mod for mod in ("torch", "autograd") if mod in argv])
    if argv[:2] == ["symgrad", "plot"]:
        needs("matplotlib")
    if argv[:2] == ["symgrad", "fuzz"]:
        needs("hypothesis")
    if argv[0] == "symgrad":
        proc = run_once(symgrad_exe() + argv[1:])
    else:
        assert argv[0] == "pytest", command
        if "-n" in argv:
            needs("xdist")
        proc = run_once([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *argv[1:]])
    want = expected_exit_code(output)
    assert proc.returncode == want, f"{where}: {command}: exit {proc.returncode}, expected {want}\n" \
                                    f"{proc.stdout}{proc.stderr}"
    got = [normalise(row) for row in proc.stdout.splitlines()]
    for row in output:
        assert normalise(row) in got, f"{where}: {command}: {row!r} not in the output:\n{proc.stdout}"
    if argv[0] == "pytest":
        assert re.search(r"\b[1-9]\d* passed\b", proc.stdout) and " failed" not in proc.stdout, proc.stdout
