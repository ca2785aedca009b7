"""Child processes that do not outlive their parent.

A worker can spin in sympy's C code for as long as a hostile case lasts; when the ``symgrad``
process is killed (``SIGKILL``: no handler runs), nothing would stop it.  :func:`die_with_parent`
asks Linux to send ``SIGKILL`` when the parent dies (``prctl(PR_SET_PDEATHSIG)``, through ctypes);
where that is not available, a daemon thread watches ``os.getppid()`` and leaves with
``os._exit`` when the process is re-parented (it runs only while the process is not holding the
interpreter in C code: a weaker promise).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

_PR_SET_PDEATHSIG = 1
_POLL = 0.5


def _prctl_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError, ValueError):  # no libc, no prctl
        return False


def die_with_parent() -> bool:
    """Make this process end when its parent does; True when the kernel guarantees it (Linux)."""
    parent = os.getppid()
    kernel = _prctl_pdeathsig()
    if os.getppid() != parent or parent == 1:  # the parent died before the request took effect
        os._exit(1)

    if kernel:  # no thread: the fork server forks, and a thread there would be copied into nothing
        return True

    def watch() -> None:
        while True:
            threading.Event().wait(_POLL)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="symgrad-parent-watch", daemon=True).start()
    return False
