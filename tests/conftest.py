"""Shared test configuration."""

import atexit
import os
import shutil
import sys
import tempfile
import tracemalloc
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

pytest_plugins = ["pytester"]

# tests/data holds fixture files (some of them deliberately broken symgrad case files): data,
# never tests of this suite, whatever the symgrad pytest plugin would make of them.
collect_ignore_glob = ["data/*.yaml", "data/*.yml"]

# the disk cache of compiled derivatives (symgrad/symbolic/diskcache.py): a fresh directory per test
# process (subprocesses inherit it), never the user's ~/.cache/symgrad
os.environ["SYMGRAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="symgrad-test-cache-")
atexit.register(shutil.rmtree, os.environ["SYMGRAD_CACHE_DIR"], True)

# one directory for the whole session, shared by pytest-xdist's workers (they inherit the controller's
# environment, set here before they start): tests/doc_examples.py keeps there the result of each
# documented command, run once however many pages show it
if "SYMGRAD_TEST_SHARED_DIR" not in os.environ:
    os.environ["SYMGRAD_TEST_SHARED_DIR"] = tempfile.mkdtemp(prefix="symgrad-test-shared-")
    atexit.register(shutil.rmtree, os.environ["SYMGRAD_TEST_SHARED_DIR"], True)


def pytest_configure(config: pytest.Config) -> None:
    """JAX compiles every primitive for every shape it meets, most of a jax test's time: its persistent
    cache (in pytest's cache folder) keeps those executables between runs, between the xdist workers and
    for the CLI subprocesses.  An entry is keyed by the HLO, the compile options and jax's version, so a
    hit is the same executable, never another result.  A cache folder set by the user wins."""
    cache = getattr(config, "cache", None)
    if cache is None or "JAX_COMPILATION_CACHE_DIR" in os.environ or "jax" in sys.modules:
        return
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(cache.mkdir("jax-compilation"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # default 1 s: none of ours


@pytest.fixture
def peak_bytes() -> Callable[..., tuple[Any, int]]:
    """``peak_bytes(fn, *args)``: what ``fn`` returns, and the most memory it held at once (tracemalloc).

    Bounds work without a clock: a limit that stops a hostile input before it is read, expanded or
    allocated keeps the peak small whatever the machine's speed or load (numpy's arrays count too).
    """
    def measure(fn: Callable[..., Any], *args: Any) -> tuple[Any, int]:
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            result = fn(*args)
            return result, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    return measure


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow tests first, and among them the functions with the fewest parametrizations (a stable
    sort: the others keep their order).  pytest-xdist hands tests to its workers in this order, so the
    long single runs (fuzzing, documented commands, subprocesses) start at once, the sweeps split into
    hundreds of short items (the shipped cases on every engine) follow, and the short tests fill in at
    the end, keeping both workers busy instead of one finishing a long test alone."""
    def function(item: pytest.Item) -> tuple[str, str]:
        return item.nodeid.split("::", 1)[0], getattr(item, "originalname", item.name)

    sizes = Counter(map(function, items))
    slow = {item.nodeid for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (0, sizes[function(item)]) if item.nodeid in slow else (1, 0))
