"""What the fork server loads before it forks workers, and how it exits.

:data:`symgrad.checking.workers.PRELOAD` names this module as the server's
preload (after the parent's main script).  Importing it imports :data:`MODULES`
-- symgrad's runner, numpy and sympy, and what sympy and
lambdify import lazily on first use (a missing one is skipped) -- with the
garbage collector off (a fifth faster), then freezes what they built, so that
no worker's collections walk through it again.  ``scipy.special`` (large
``erf`` arrays) and ``sympy.physics.units`` (``sympy.simplify``, for proving an
``expect``) are left to the workers that meet them: together they cost about
0.2 s, which a suite that does not use them should not pay before its first
case.

The server inherits the ``symgrad`` process's stdout and stderr, and exits
after it.  Whoever reads that output through a pipe (a CI runner,
``subprocess.run``, ``symgrad check | tee``) waits for the server too, and an
ordinary interpreter exit with sympy and numpy loaded spends about 0.1 s
tearing their modules down.  The server has nothing to clean up, so it leaves
with ``os._exit`` once its exit handlers have run.  (A forked worker ends with
``os._exit`` already.)
"""

import atexit
import gc
import importlib
import os
import sys

MODULES = ["symgrad.checking.runner", "symgrad.symbolic", "symgrad.backends.symgrad_tape", "numpy.random",
           "sympy.sets.setexpr", "sympy.tensor.tensor", "sympy.assumptions.wrapper", "sympy.codegen.ast"]


def _exit_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # pragma: no cover - a closed stream
            pass
    os._exit(0)


def _preload() -> None:
    enabled = gc.isenabled()
    gc.disable()
    try:
        for name in MODULES:
            try:
                importlib.import_module(name)
            except ImportError:  # pragma: no cover - as the fork server itself does
                pass
    finally:
        if enabled:
            gc.enable()
        gc.freeze()


_preload()
# the server must not outlive the symgrad process (a SIGKILL runs no cleanup); its workers die with it
from symgrad.checking.workers.lifetime import die_with_parent  # noqa: E402

die_with_parent()
atexit.register(_exit_now)  # registered after every preloaded module's handlers, so it runs before them
