"""A cross-process cache of lambdified derivatives: the numpy source that sympy's ``lambdify`` writes.

Printing and compiling the reference's formulas is the largest single cost of a cold ``symgrad check``;
a suite run twice (or a pytest run after a check) compiles the same formulas again.  This module keeps
the generated source on disk, keyed by a hash of the sympy expressions themselves (their whole tree:
classes, symbols with their assumptions, exact numbers) and of everything that turns them into code
(symgrad's, sympy's, numpy's and Python's versions, and the source of the modules that print and name
the functions).  A key is thus a fact about the result, not about how it was reached: an expression
sympy differentiated differently (another symgrad checkout) has another key.

Safety: the cached source is Python that is executed on a hit, so it must be code symgrad wrote.  The
directory is created ``0o700``; a directory or file not owned by the current user, or writable by its
group or others, is never read (the cache is then off, silently).  Files are JSON (no pickle); an entry
holds its key, which must equal the key asked for; the names the code imports are checked against a
short list of modules.  A missing, truncated or corrupt entry is a miss: the formulas are compiled as
without a cache, and the entry is written again (atomically: a temporary file, then a rename).

Where: ``$SYMGRAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/symgrad``, else ``~/.cache/symgrad``.
``SYMGRAD_CACHE=0`` (or ``symgrad check --no-cache``) turns it off.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import importlib
import importlib.metadata
import json
import linecache
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import sympy

__all__ = ["cache_dir", "cached_function", "clear", "entry_key", "stats"]

FORMAT = 1  # of an entry; part of every key
_SUBDIR = f"lambdify-v{FORMAT}"
_MAX_BYTES = 256 * 2**20  # a larger file is no entry of ours
_MAX_TOTAL = 512 * 2**20  # the whole cache: beyond it, the least recently used entries go (see _prune)
_PRUNE_EVERY = 64  # stores between two looks at the total
# where the generated code's imported names may come from (lambdify's printers import from these)
_MODULES = ("numpy", "scipy.special", "math", "mpmath")
_OFF = ("0", "false", "no", "off")
# parameterless sympy atoms: their class is all there is to them
_SINGLETONS = frozenset({
    "Pi", "Exp1", "NaN", "ComplexInfinity", "Infinity", "NegativeInfinity", "Zero", "One", "NegativeOne", "Half",
    "ImaginaryUnit", "BooleanTrue", "BooleanFalse", "EulerGamma", "Catalan", "GoldenRatio", "TribonacciConstant",
    "EmptySet",
})
_counts = {"hits": 0, "misses": 0, "stores": 0, "refused": 0}


class _Uncacheable(Exception):
    """An expression this module cannot key faithfully (an atom of unknown kind): compile without the cache."""


# ---------------------------------------------------------------- where


def _location() -> Path | None:
    if os.environ.get("SYMGRAD_CACHE", "1").strip().lower() in _OFF:
        return None
    explicit = os.environ.get("SYMGRAD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "symgrad"
    return Path.home() / ".cache" / "symgrad"


def _private(st: os.stat_result) -> bool:
    """Owned by this user and writable by no one else (on systems with owners)."""
    if not hasattr(os, "getuid"):  # pragma: no cover - Windows: no owner bits to check
        return True
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


@functools.lru_cache(maxsize=8)
def _usable(root: str) -> Path | None:
    """The entries' directory under ``root``, created 0o700 if need be; None when it is not private."""
    try:
        path = Path(root)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        sub = path / _SUBDIR
        sub.mkdir(mode=0o700, exist_ok=True)
        for p in (path, sub):
            st = os.lstat(p)
            if not stat.S_ISDIR(st.st_mode) or not _private(st):
                return None
        return sub
    except (OSError, RuntimeError):  # unwritable, no home directory
        return None


def cache_dir() -> Path | None:
    """The directory entries are kept in, or None when the cache is off or the directory is refused."""
    root = _location()
    if root is None:
        return None
    sub = _usable(str(root))
    if sub is None:
        _counts["refused"] += 1
    return sub


def clear() -> int:
    """Remove every entry of the current cache directory; how many were removed."""
    sub = cache_dir()
    removed = 0
    if sub is not None:
        for p in sub.glob("*.json"):
            try:
                p.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def stats() -> dict[str, int]:
    """This process's hits, misses, stores and refused directories (for tests and benchmarks)."""
    return dict(_counts)


# ---------------------------------------------------------------- the key


def _source_digest(modules: Iterable[str]) -> str:
    h = hashlib.sha256()
    for name in modules:
        mod = sys.modules.get(name) or importlib.import_module(name)
        try:
            h.update(Path(mod.__file__ or "").read_bytes())
        except OSError:  # pragma: no cover - a zipped install: its version stands for it
            h.update(name.encode())
    return h.hexdigest()


@functools.cache
def _environment() -> str:
    """Everything besides the expressions that the generated code depends on."""
    try:
        version = importlib.metadata.version("symgrad")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        version = "source"
    code = _source_digest(["symgrad.symbolic.compile", "symgrad.symbolic.functions", "symgrad.ir.ops", __name__])
    return "|".join([str(FORMAT), version, sympy.__version__, np.__version__, sys.version, code])


class _Hasher:
    """A digest of sympy trees: class, atom data and the digests of the arguments, memoised by node."""

    def __init__(self) -> None:
        self.memo: dict[int, bytes] = {}
        self.keep: list[Any] = []  # the nodes hashed stay alive, so their ids stay theirs

    def __call__(self, e: Any) -> bytes:
        if isinstance(e, sympy.Basic):
            got = self.memo.get(id(e))
            if got is None:
                got = self.memo[id(e)] = self._node(e)
                self.keep.append(e)
            return got
        if isinstance(e, (bool, int, float, str)) or e is None:
            return hashlib.blake2b(f"{type(e).__name__}:{e!r}".encode(), digest_size=20).digest()
        if isinstance(e, (list, tuple)):
            return self._join(f"seq{len(e)}", [self(x) for x in e])
        raise _Uncacheable(type(e).__name__)

    @staticmethod
    def _join(head: str, parts: list[bytes]) -> bytes:
        h = hashlib.blake2b(head.encode(), digest_size=20)
        for p in parts:
            h.update(p)
        return h.digest()

    def _node(self, e: sympy.Basic) -> bytes:
        cls = type(e)
        head = f"{cls.__module__}.{cls.__qualname__}"
        if isinstance(e, sympy.Symbol):  # a Dummy's index differs in every process: then it never hits
            extra = f":{e.dummy_index}" if isinstance(e, sympy.Dummy) else ""
            return self._join(f"{head}:{e.name}{extra}:{sorted(e.assumptions0.items())}", [])
        if isinstance(e, sympy.Float):
            return self._join(f"{head}:{e._mpf_}:{e._prec}", [])
        if isinstance(e, sympy.Rational):  # Integer too
            return self._join(f"{head}:{e.p}/{e.q}", [])
        if not e.args:
            if cls.__name__ not in _SINGLETONS:
                raise _Uncacheable(head)
            return self._join(head, [])
        return self._join(f"{head}:{len(e.args)}", [self(a) for a in e.args])


def entry_key(parts: Any) -> str:
    """The key of a compilation of ``parts`` (sympy expressions, lists and plain values), as hex."""
    h = hashlib.sha256(_environment().encode())
    h.update(_Hasher()(parts))
    return h.hexdigest()


# ---------------------------------------------------------------- entries


def _read(path: Path) -> dict[str, Any] | None:
    """The entry at ``path``: None when absent, not a private regular file, or not well-formed JSON."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not _private(st) or st.st_size > _MAX_BYTES:
            _counts["refused"] += 1
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except (OSError, ValueError):  # truncated, corrupt, not UTF-8
        return None
    finally:
        os.close(fd)
    return data if isinstance(data, dict) else None


def _write(path: Path, data: dict[str, Any]) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")  # created 0o600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, path)
            _counts["stores"] += 1
            if _counts["stores"] % _PRUNE_EVERY == 0:
                _prune(path.parent, _MAX_TOTAL)
        except BaseException:
            os.unlink(tmp)
            raise
    except (OSError, TypeError, ValueError):  # a full disk or a read-only directory: no entry, no error
        pass


def _prune(sub: Path, limit: int) -> None:
    """Remove the least recently used entries (by mtime: a hit touches its entry) until the folder holds
    at most three quarters of ``limit`` bytes, when it holds more than ``limit``.  (A fuzzing run compiles
    thousands of expressions never seen again.)"""
    try:
        found = [(p.stat(), p) for p in sub.glob("*.json")]
    except OSError:
        return
    total = sum(st.st_size for st, _ in found)
    if total <= limit:
        return
    for st, p in sorted(found, key=lambda f: f[0].st_mtime):
        if total <= limit * 3 // 4:
            break
        try:
            p.unlink()
            total -= st.st_size
        except OSError:
            pass


def _imports(func: Any, namespace: dict[str, Any]) -> dict[str, list[str]] | None:
    """The names lambdify imported into ``func``'s globals beyond ``namespace``: name -> [module, attribute]
    (None when one of them comes from no module of _MODULES)."""
    out: dict[str, list[str]] = {}
    for name, value in func.__globals__.items():
        if name in namespace or name in ("builtins", "range", "__builtins__"):
            continue
        for mod in _MODULES:
            m = sys.modules.get(mod)
            if m is not None and getattr(m, name, None) is value:
                out[name] = [mod, name]
                break
        else:
            return None
    return out


def _load(data: dict[str, Any], key: str, namespace: dict[str, Any]) -> Callable[..., Any] | None:
    """The function of a verified entry; None when it is not an entry for ``key`` or does not compile."""
    source, name, imports = data.get("source"), data.get("name"), data.get("imports")
    if (data.get("format") != FORMAT or data.get("key") != key or not isinstance(source, str)
            or not isinstance(name, str) or not name.isidentifier() or not isinstance(imports, dict)):
        return None
    glob = dict(namespace)
    try:
        for local, (mod, attr) in imports.items():
            if mod not in _MODULES or not str(local).isidentifier():
                return None
            glob[local] = getattr(importlib.import_module(mod), attr)
        glob.update({"builtins": builtins, "range": range})
        filename = f"<symgrad-cache-{key[:16]}>"
        code = compile(source, filename, "exec")
        found: dict[str, Any] = {}
        exec(code, glob, found)  # source symgrad wrote, from a private directory, its key verified
        func = found[name]
    except Exception:  # a damaged entry: compile afresh
        return None
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return func if callable(func) else None


def cached_function(parts: Any, build: Callable[[], Callable[..., Any]],
                    namespace: Callable[[], dict[str, Any]]) -> Callable[..., Any]:
    """``build()`` (a function sympy's lambdify made of ``parts``), or its entry from the disk cache.

    ``namespace()`` gives the globals the generated code runs with (lambdify's ``modules`` dict)."""
    sub = cache_dir()
    if sub is None:
        return build()
    try:
        key = entry_key(parts)
    except (_Uncacheable, RecursionError):
        return build()
    path = sub / f"{key}.json"
    data = _read(path)
    if data is not None:
        func = _load(data, key, namespace())
        if func is not None:
            _counts["hits"] += 1
            try:
                os.utime(path)  # recently used: kept when the cache is pruned
            except OSError:
                pass
            return func
    _counts["misses"] += 1
    func = build()
    code = getattr(func, "__code__", None)
    held: Any = linecache.cache.get(code.co_filename) if code is not None else None  # lambdify registers it
    source = "".join(held[2]) if code is not None and held is not None and len(held) > 2 else None
    imports = _imports(func, namespace()) if source is not None else None
    if code is not None and source is not None and imports is not None:
        _write(path, {"format": FORMAT, "key": key, "name": code.co_name, "imports": imports, "source": source})
    return func
