"""The disk cache of compiled derivatives (symgrad/symbolic/diskcache.py): a hit gives what compiling
gives; a swapped, corrupt, foreign or stale entry is never used; an unsafe directory is refused.
Every test that shows the cache used has a twin where it must not be."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy
from click.testing import CliRunner

from symgrad.cli import main
from symgrad.symbolic import diskcache
from symgrad.symbolic import functions as s
from symgrad.symbolic.compile import Compiled

ROOT = Path(__file__).resolve().parent.parent
x, y = sympy.Symbol("x", real=True), sympy.Symbol("y", real=True)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache directory for one test; the entries' folder is returned."""
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SYMGRAD_CACHE", raising=False)
    sub = diskcache.cache_dir()
    assert sub is not None
    return sub


def compiled(outputs: list[Any], args: list[sympy.Symbol] | None = None) -> Any:
    """A fresh Compiled (no in-process cache in the way): its numpy function goes through the disk cache."""
    return Compiled(args or [x, y], outputs).numpy


def entries(sub: Path) -> list[Path]:
    return sorted(sub.glob("*.json"))


def delta(before: dict[str, int], name: str) -> int:
    return diskcache.stats()[name] - before[name]


# ---------------------------------------------------------------- hits and misses


def test_second_compile_is_a_hit_with_the_same_values(cache: Path) -> None:
    expr = [sympy.sin(x) * sympy.exp(-y), s.relu(x - y) + sympy.log(1 + x**2)]
    at = (np.array([-1.0, 0.0, 2.5]), np.array([0.5, 0.0, -3.0]))
    before = diskcache.stats()
    first = compiled(expr)(*at)
    assert delta(before, "misses") == 1 and len(entries(cache)) == 1
    second = compiled(expr)(*at)
    assert delta(before, "hits") == 1
    np.testing.assert_array_equal(np.array(first), np.array(second))  # bitwise


def test_cache_off_neither_reads_nor_writes(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled([x * y])
    assert len(entries(cache)) == 1
    monkeypatch.setenv("SYMGRAD_CACHE", "0")
    before = diskcache.stats()
    assert diskcache.cache_dir() is None
    compiled([x * y])  # the twin of the hit above: off means no hit
    compiled([x + y])
    assert delta(before, "hits") == 0 and delta(before, "misses") == 0
    assert len(entries(cache)) == 1


@pytest.mark.parametrize("other", [
    [x * y + 1],  # another expression
    [y * x + sympy.Float(1.0000000000000002)],  # a float one ulp away
    [sympy.Symbol("x") * y + 1],  # the same name without real=True
    [x * y + 1, x],  # one output more
])
def test_another_expression_never_hits(cache: Path, other: list[Any]) -> None:
    compiled([x * y + sympy.Float(1.0)])
    before = diskcache.stats()
    compiled(other)
    assert delta(before, "hits") == 0 and delta(before, "misses") == 1
    compiled([x * y + sympy.Float(1.0)])  # the twin: the first expression again hits
    assert delta(before, "hits") == 1


def test_argument_order_is_part_of_the_key(cache: Path) -> None:
    f = compiled([x - y], [x, y])
    g = compiled([x - y], [y, x])  # same output, arguments swapped: a miss, and the right function
    assert f(3.0, 1.0) == [2.0] and g(3.0, 1.0) == [-2.0]


def test_keys_differ_for_everything_the_code_depends_on() -> None:
    base = ("lambdify", "numpy", False, [x, y], [x * y], [], [])
    variants = [
        ("lambdify", "numpy", True, [x, y], [x * y], [], []),  # stored order
        ("lambdify", "numpy", False, [x, y], [x * y], [(y, x + 1)], []),  # a let-bound definition
        ("lambdify", "numpy", False, [x, y], [x * y], [], [x]),  # a shared subexpression
        ("lambdify", "numpy", False, [x, y], [sympy.Integer(2) * y], [], []),
        ("lambdify", "numpy", False, [x, y], [x * y * sympy.Rational(1, 3)], [], []),
    ]
    keys = {diskcache.entry_key(v) for v in variants}
    assert len(keys) == len(variants) and diskcache.entry_key(base) not in keys
    assert diskcache.entry_key(base) == diskcache.entry_key(("lambdify", "numpy", False, [x, y], [x * y], [], []))


def test_another_version_is_a_miss(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled([sympy.cos(x) + y])
    before = diskcache.stats()
    compiled([sympy.cos(x) + y])
    assert delta(before, "hits") == 1  # the twin: same environment, a hit
    monkeypatch.setattr(diskcache, "_environment", lambda: "another symgrad, sympy or numpy")
    compiled([sympy.cos(x) + y])
    assert delta(before, "hits") == 1 and delta(before, "misses") == 1


# ---------------------------------------------------------------- damaged and swapped entries


def test_swapped_entries_are_detected_and_recomputed(cache: Path) -> None:
    compiled([x + y])
    (a,) = entries(cache)
    compiled([x * y])
    (b,) = [p for p in entries(cache) if p != a]
    text_a, text_b = a.read_text(), b.read_text()
    a.write_text(text_b)
    b.write_text(text_a)
    before = diskcache.stats()
    assert compiled([x + y])(2.0, 5.0) == [7.0]  # not x*y = 10
    assert compiled([x * y])(2.0, 5.0) == [10.0]
    assert delta(before, "hits") == 0 and delta(before, "misses") == 2
    # recomputed entries replace the swapped ones: now both hit
    assert compiled([x + y])(2.0, 5.0) == [7.0] and delta(before, "hits") == 1


def test_the_key_check_is_what_stops_a_swapped_entry(cache: Path) -> None:
    """The twin of the test above: an entry whose stored key is rewritten to the one asked for *is*
    executed (which is why only a private directory is read, and why the key must be checked)."""
    compiled([x + y])
    (a,) = entries(cache)
    compiled([x * y])
    (b,) = [p for p in entries(cache) if p != a]
    forged = json.loads(b.read_text())
    forged["key"] = a.stem
    a.write_text(json.dumps(forged))
    assert compiled([x + y])(2.0, 5.0) == [10.0]


@pytest.mark.parametrize("damage", [
    lambda t: t[: len(t) // 2],  # truncated
    lambda t: "",  # empty
    lambda t: "\x00\xff garbage",
    lambda t: "[1, 2, 3]",  # JSON, not an entry
    lambda t: json.dumps({**json.loads(t), "source": "def broken(:\n"}),  # source that does not compile
    lambda t: json.dumps({**json.loads(t), "name": "not_there"}),
    lambda t: json.dumps({**json.loads(t), "format": 999}),
    lambda t: json.dumps({**json.loads(t), "imports": {"sin": ["os", "system"]}}),  # a module not allowed
    lambda t: json.dumps({**json.loads(t), "imports": "numpy"}),
])
def test_a_damaged_entry_is_a_miss_never_an_error(cache: Path, damage: Any) -> None:
    compiled([sympy.atan(x) * y])
    (path,) = entries(cache)
    intact = path.read_text()
    before = diskcache.stats()
    path.write_text(damage(intact))
    assert compiled([sympy.atan(x) * y])(1.0, 4.0) == [np.pi]
    assert delta(before, "hits") == 0 and delta(before, "misses") == 1
    path.write_text(intact)  # the twin: the intact entry is a hit
    compiled([sympy.atan(x) * y])
    assert delta(before, "hits") == 1


# ---------------------------------------------------------------- who may write the directory


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="no file owners on this system")
@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_a_directory_others_can_write_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int) -> None:
    root = tmp_path / "shared"
    root.mkdir()
    os.chmod(root, mode)
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(root))
    monkeypatch.delenv("SYMGRAD_CACHE", raising=False)
    assert diskcache.cache_dir() is None
    before = diskcache.stats()
    assert compiled([x - 2 * y])(1.0, 1.0) == [-1.0]  # still compiled, without the cache
    assert delta(before, "misses") == 0 and not list(root.rglob("*.json"))
    os.chmod(root, 0o700)  # the twin: private, it is used
    diskcache._usable.cache_clear()
    assert diskcache.cache_dir() is not None


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="no file owners on this system")
def test_a_file_others_can_write_is_refused(cache: Path) -> None:
    compiled([sympy.tanh(x) + y])
    (path,) = entries(cache)
    before = diskcache.stats()
    os.chmod(path, 0o666)
    compiled([sympy.tanh(x) + y])
    assert delta(before, "hits") == 0 and delta(before, "refused") >= 1
    os.chmod(path, 0o600)  # the twin
    compiled([sympy.tanh(x) + y])
    assert delta(before, "hits") == 1


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_a_directory_or_file_owned_by_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "theirs"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(root))
    monkeypatch.delenv("SYMGRAD_CACHE", raising=False)
    sub = diskcache.cache_dir()
    assert sub is not None
    compiled([x**3 + y])
    (path,) = entries(sub)
    os.chown(path, 54321, 54321)
    before = diskcache.stats()
    compiled([x**3 + y])
    assert delta(before, "hits") == 0
    os.chown(path, os.getuid(), os.getgid())  # the twin
    compiled([x**3 + y])
    assert delta(before, "hits") == 1
    os.chown(root, 54321, 54321)
    diskcache._usable.cache_clear()
    assert diskcache.cache_dir() is None


def test_a_symlinked_entry_is_not_followed(cache: Path, tmp_path: Path) -> None:
    compiled([sympy.sinh(x) * y])
    (path,) = entries(cache)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(path.read_text())
    path.unlink()
    path.symlink_to(elsewhere)
    before = diskcache.stats()
    compiled([sympy.sinh(x) * y])
    assert delta(before, "hits") == 0


def test_new_directories_are_private(cache: Path) -> None:
    assert cache.stat().st_mode & 0o777 == 0o700 and cache.parent.stat().st_mode & 0o777 == 0o700
    compiled([x / y])
    assert all(p.stat().st_mode & 0o077 == 0 for p in entries(cache))


def test_a_full_cache_drops_its_least_recently_used_entries(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diskcache, "_PRUNE_EVERY", 1)
    compiled([x + 10 * y])
    (first,) = entries(cache)
    size = first.stat().st_size
    monkeypatch.setattr(diskcache, "_MAX_TOTAL", int(size * 2.5))  # room for two entries
    os.utime(first, (1, 1))  # the oldest
    compiled([x + 11 * y])
    assert len(entries(cache)) == 2  # the twin: under the limit, nothing is dropped
    compiled([x + 12 * y])  # now over it: the oldest goes, the newest stays
    left = entries(cache)
    assert first not in left and len(left) < 3
    assert any(json.loads(p.read_text())["key"] == p.stem for p in left)


# ---------------------------------------------------------------- where it lives


def test_location_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SYMGRAD_CACHE", "SYMGRAD_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert diskcache._location() == tmp_path / "home" / ".cache" / "symgrad"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert diskcache._location() == tmp_path / "xdg" / "symgrad"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "mine"))
    assert diskcache._location() == tmp_path / "mine"
    for off in ("0", "false", "off", "no"):
        monkeypatch.setenv("SYMGRAD_CACHE", off)
        assert diskcache._location() is None
    monkeypatch.setenv("SYMGRAD_CACHE", "1")
    assert diskcache._location() == tmp_path / "mine"


def test_the_test_suite_never_uses_the_users_cache() -> None:
    assert Path(os.environ["SYMGRAD_CACHE_DIR"]).resolve() != (Path.home() / ".cache" / "symgrad").resolve()


def test_clear_removes_the_entries(cache: Path) -> None:
    compiled([x + 3 * y])
    compiled([x + 4 * y])
    assert diskcache.clear() == 2 and not entries(cache)


# ---------------------------------------------------------------- the shells


CASES = """
cases:
  - name: good
    expr: 3*a**3 - b**2 + sin(a)*exp(-b) + KONST
    inputs: {a: [2.0, 3.0], b: [6.0, 4.0]}
  - name: wrong-expect
    expr: 3*a**3
    inputs: {a: [2.0, 3.0]}
    expect: {a: 9*a}
  - name: expanded
    expr: sum(softmax(x) * log(x))
    inputs: {x: [0.5, 1.5, 2.5]}
    mode: expanded
"""


def _run_cli(path: Path, *flags: str) -> Any:
    return CliRunner().invoke(main, ["check", str(path), "--timeout", "0", "-v", *flags])


def test_cli_no_cache_flag(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CASES.replace("KONST", "7"))
    off = _run_cli(path, "--no-cache")
    assert off.exit_code == 1, off.output
    assert not entries(cache) and os.environ.get("SYMGRAD_CACHE") != "0"  # restored after the command
    path.write_text(CASES.replace("KONST", "8"))  # another expression: this process has not compiled it yet
    on = _run_cli(path)  # the twin: without the flag, entries are written
    assert on.exit_code == 1 and entries(cache)
    assert "PASS" in on.output and "FAIL" in on.output


def _check_in_subprocess(path: Path, env: dict[str, str]) -> tuple[int, list[tuple[str, str]]]:
    out = path.parent / "r.json"
    proc = subprocess.run([sys.executable, "-c", "from symgrad.cli import main; main()", "check", str(path),
                           "--format", "json", "-o", str(out)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=300)
    data = json.loads(out.read_text())
    return proc.returncode, sorted((c["id"], c["status"]) for c in data["cases"])


@pytest.mark.slow
def test_cold_warm_and_no_cache_give_the_same_verdicts(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CASES.replace("KONST", "1"))
    env = {"SYMGRAD_CACHE_DIR": str(tmp_path / "cache")}
    cold = _check_in_subprocess(path, env)
    assert list((tmp_path / "cache").rglob("*.json"))
    warm = _check_in_subprocess(path, env)
    off = _check_in_subprocess(path, {**env, "SYMGRAD_CACHE": "0"})
    assert cold == warm == off
    assert cold[0] == 1 and ("c.yaml::wrong-expect", "fail") in [(i.split("/")[-1], st) for i, st in cold[1]]
