"""Timing and memory helpers shared by the benchmark scripts (not a test module).

Contenders are timed in one process, interleaved: every repeat runs each
contender once, in a rotated order, so drift of the machine (other processes,
frequency scaling) hits all of them alike; the reported figure is the median.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
# "cold" means compiling the reference: the disk cache of compiled derivatives would hide it
os.environ.setdefault("SYMGRAD_CACHE", "0")


def alternate(contenders: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1,
              cpu: dict[str, float] | None = None, threaded: Collection[str] = ()) -> dict[str, float]:
    """Median seconds per contender, interleaved over ``repeats`` rounds.  ``cpu``, when given, receives
    the median CPU seconds of the same calls: on a loaded machine wall time also counts the time others
    held the cores.  A contender named in ``threaded`` works on threads of its own (JAX's) and is charged
    the whole process's CPU time; every other one only its calling thread's, because a threaded
    contender's pool keeps spinning after it returns (JAX's doubled symgrad's process CPU time at 1e5); the
    next contender starts once the process has settled."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            clock = time.process_time if name in threaded else time.thread_time
            gc.collect()
            c, t = clock(), time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - t)
            cpus[name].append(clock() - c)
            if name in threaded:
                settle()
    if cpu is not None:
        cpu.update({n: statistics.median(v) for n, v in cpus.items()})
    return {n: statistics.median(v) for n, v in times.items()}


def settle(limit: float = 1.0, step: float = 0.01) -> None:
    """Wait (at most ``limit`` seconds) until no thread of the process is busy. JAX's pool spins on a core
    for about 130 ms after ``check_grads`` returns, OpenMP's threads for a while too: the next contender,
    above all one on two threads, would otherwise share its cores with them."""
    end = time.perf_counter() + limit
    while time.perf_counter() < end:
        c = time.process_time()
        time.sleep(step)
        if time.process_time() - c < step / 10:
            return


def wall(cmd: list[str], repeats: int, env: dict[str, str] | None = None, cwd: str | None = None) -> tuple[float, str]:
    """Median wall time of a subprocess, and the output of its last run."""
    times, out = [], ""
    for _ in range(repeats):
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
        times.append(time.perf_counter() - t)
        out = proc.stdout + proc.stderr
    return statistics.median(times), out


def optional(module: str) -> Any:
    """The module, or None when the contender is not installed."""
    try:
        return __import__(module)
    except ImportError:
        return None


# ---------------------------------------------------------------- memory, in the current process


def _status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux >= 4.0); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_now() -> int:
    value = _status("VmRSS")
    if value is not None:
        return value
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        return 0


def rss_peak() -> int:
    value = _status("VmHWM")
    if value is not None:
        return value
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def fmt_time(seconds: float) -> str:
    if seconds != seconds:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(x: float | None) -> str:
    if x is None or x != x:
        return "absent"
    if x >= 100:
        return f"{x:,.0f}x"
    return f"{x:.2f}x"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def python() -> str:
    return sys.executable
