"""How symgrad starts worker processes: the start method, the fork server, ``-j auto``.

This package imports the standard library only (and its :mod:`.lifetime` and
:mod:`.preload` submodules are never imported here): the CLI calls
:func:`prestart` before numpy and sympy are loaded, so that the fork server's
imports of them overlap with the CLI's own and with the reading of case
files.  :mod:`symgrad.checking.suite.pool` runs the workers.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing import forkserver
from typing import Any

__all__ = ["DEFAULT_TIMEOUT", "PRELOAD", "context", "default_jobs", "prestart"]

DEFAULT_TIMEOUT = 60.0  # seconds per case

# imported once in the fork server rather than in every worker: see .preload
PRELOAD = ["symgrad.checking.workers.preload"]


def default_jobs() -> int:
    """``-j auto``: the number of CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def context(main: bool = False) -> Any:
    """``forkserver`` (preloaded) where the platform has it, else ``spawn``; never ``fork``, which is
    unsafe with threaded numpy/BLAS.  ``main``: the server also imports the parent's main script,
    which each worker would otherwise import for itself (the ``symgrad`` script: the CLI's modules).
    Only for a server not yet running."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["__main__", *PRELOAD] if main else PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def prestart(jobs: int = 1, timeout: float | None = DEFAULT_TIMEOUT, main: bool = False) -> None:
    """Start the fork server now (when the run will need workers), so that its imports of
    numpy and sympy overlap with the caller's collection of case files.  ``main``: as for
    :func:`context` (the CLI, whose script guards its ``main()`` call, passes True)."""
    if jobs <= 1 and not timeout:
        return
    if context(main).get_start_method() == "forkserver":
        try:
            forkserver.ensure_running()
        except Exception:  # pragma: no cover - the pool will try again and report
            pass
