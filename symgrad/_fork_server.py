"""Imported by the fork server only (the last name of :data:`symgrad.suite._PRELOAD`): a quick exit.

The fork server inherits the ``symgrad`` process's stdout and stderr, and exits
after it.  Whoever reads that output through a pipe (a CI runner,
``subprocess.run``, ``symgrad check | tee``) waits for the server too, and an
ordinary interpreter exit with sympy and numpy loaded spends about 0.1 s
tearing their modules down.  The server has nothing to clean up, so it leaves
with ``os._exit`` as soon as its exit begins.  Its workers never run this (a
forked worker ends with ``os._exit`` already).
"""

import atexit
import os
import sys


def _exit_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # pragma: no cover - a closed stream
            pass
    os._exit(0)


atexit.register(_exit_now)  # registered last, so it runs first
