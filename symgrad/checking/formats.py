"""Report writers: text (with a TTY progress line), JSON (schema version 1) and JUnit XML.

Pure functions of a list of :class:`~symgrad.report.Report` plus the file
errors; the CLI decides where their output goes.
"""

from __future__ import annotations

import json
import platform
import shutil
import socket
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from importlib.metadata import version
from typing import IO, Any

import click

from symgrad.checking.compare import json_float
from symgrad.checking.escape import escape, escape_tree
from symgrad.checking.report import Report

__all__ = ["JSON_VERSION", "Progress", "counts", "style_status", "to_json", "to_junit", "to_json_dict"]

JSON_VERSION = 1

_COLORS = {"pass": "green", "fail": "red", "error": "red", "xpass": "red", "skip": "yellow", "xfail": "yellow"}


def counts(reports: Iterable[Report]) -> Counter:
    return Counter(r.status for r in reports)


def _version() -> str:
    try:
        return version("symgrad")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


# ===================================================================== JSON


def _error_dict(err: Any) -> dict:
    return {
        "file": getattr(err, "file", None),
        "line": getattr(err, "line", None),
        "case": getattr(err, "case", None),
        "reason": getattr(err, "reason", str(err)),
        "message": str(err),
    }


def _case_dict(r: Report) -> dict:
    comparisons = []
    for c in r.comparisons:
        d = c.to_dict()
        comparisons.append({
            "name": d["name"],
            "formula": d["formula"],
            "passed": d["passed"],
            "shape": d["shape"],
            "size": d["size"],
            "mismatched": d["mismatched"],
            "undefined": d["undefined"],
            "at_kink": d["at_kink"],  # at a kink (rounding): defined, not compared
            "widened": d["widened"],  # elements whose float32 tolerance conditioning widened
            "widened_by": d["widened_by"],  # the largest widening (allowed / default tolerance)
            "worst_index": d["worst_index"],
            "tape": d["actual"],
            "reference": d["expected"],
            "max_abs": d["max_abs"],
            "max_rel": d["max_rel"],
            "max_ulp": d["max_ulp"],
            "abs_err": d["abs_err"],  # at the worst element
            "rel_err": d["rel_err"],
            "ulp": d["ulp"],
            "grad_output": d["grad_output"],  # "" when ones; else its source
            "grad_output_value": d["grad_output_value"],  # at the worst element
            "rtol": d["rtol"],
            "atol": d["atol"],
            "note": d["note"],
        })
    return {
        "id": r.id,
        "file": r.file,
        "line": None if r.line is None else int(r.line),
        "name": r.name,
        "backend": r.backend,
        "status": r.status,
        "duration": json_float(round(float(r.duration), 6)),
        "mode": r.mode,
        "expr": r.expr,
        "reason": r.reason,
        "traceback": r.traceback,
        "comparisons": comparisons,
    }


def to_json_dict(reports: Sequence[Report], file_errors: Sequence[Any], seconds: float, exit_code: int) -> dict:
    """The JSON report as a dict (see the README's "Command line" section for the schema)."""
    n = counts(reports)
    return escape_tree({
        "version": JSON_VERSION,
        "symgrad": _version(),
        "summary": {
            "total": len(reports),
            "passed": n["pass"],
            "failed": n["fail"],
            "errors": n["error"],
            "skipped": n["skip"],
            "xfailed": n["xfail"],
            "xpassed": n["xpass"],
            "file_errors": len(file_errors),
            "seconds": round(float(seconds), 6),
            "exit_code": int(exit_code),
        },
        "file_errors": [_error_dict(e) for e in file_errors],
        "cases": [_case_dict(r) for r in reports],
    })


def to_json(reports: Sequence[Report], file_errors: Sequence[Any], seconds: float, exit_code: int) -> str:
    """Strict JSON (non-finite numbers are the strings ``"inf"``, ``"-inf"``, ``"nan"``)."""
    return json.dumps(to_json_dict(reports, file_errors, seconds, exit_code), indent=2, allow_nan=False) + "\n"


# ===================================================================== JUnit XML


def _junit_name(r: Report, multi_backend: bool) -> str:
    return f"{r.name}[{r.backend}]" if multi_backend else r.name


def to_junit(reports: Sequence[Report], file_errors: Sequence[Any], seconds: float,
             suite_name: str = "symgrad") -> str:
    """JUnit XML as CI systems read it: one ``testcase`` per case and backend.

    ``classname`` is the case file; a failure (or xpass) carries the failure table
    as text, an error its reason (and traceback), skip and xfail a ``skipped``
    element.  An invalid case file is a ``testcase`` with an ``error``.
    """
    n = counts(reports)
    multi = len({r.backend for r in reports}) > 1
    suite = ET.Element("testsuite", {
        "name": suite_name,
        "tests": str(len(reports) + len(file_errors)),
        "failures": str(n["fail"] + n["xpass"]),
        "errors": str(n["error"] + len(file_errors)),
        "skipped": str(n["skip"] + n["xfail"]),
        "time": f"{seconds:.3f}",
        "timestamp": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "hostname": socket.gethostname() or platform.node(),
    })
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", {"name": "symgrad", "value": _version()})
    for err in file_errors:
        file = getattr(err, "file", None) or "<unknown>"
        case = getattr(err, "case", None)
        tc = ET.SubElement(suite, "testcase", {"classname": file, "name": case or "(case file)", "time": "0"})
        if getattr(err, "line", None) is not None:
            tc.set("line", str(err.line))
        e = ET.SubElement(tc, "error", {"type": "CaseError", "message": str(err)})
        e.text = str(err)
    for r in reports:
        attrs = {"classname": r.file or "<api>", "name": _junit_name(r, multi), "time": f"{r.duration:.3f}"}
        if r.file:
            attrs["file"] = r.file
        if r.line is not None:
            attrs["line"] = str(r.line)
        tc = ET.SubElement(suite, "testcase", attrs)
        if r.status in ("fail", "xpass"):
            el = ET.SubElement(tc, "failure", {
                "type": "GradientMismatch" if r.status == "fail" else "XPass",
                "message": r.summary_line(),
            })
            el.text = r.table()
        elif r.status == "error":
            el = ET.SubElement(tc, "error", {"type": "error", "message": r.reason or "error"})
            el.text = r.table(verbose=True)
        elif r.status in ("skip", "xfail"):
            reason = r.reason or ""
            ET.SubElement(tc, "skipped", {"message": f"xfail: {reason}" if r.status == "xfail" else reason})
        if r.status != "pass" and r.expr:
            ET.SubElement(tc, "system-out").text = r.expr
    root = ET.Element("testsuites", {
        "name": suite_name, "tests": suite.get("tests", "0"), "failures": suite.get("failures", "0"),
        "errors": suite.get("errors", "0"), "skipped": suite.get("skipped", "0"), "time": f"{seconds:.3f}",
    })
    root.append(suite)
    for el in root.iter():  # well-formed XML 1.0 whatever a file name or reason holds
        for key, value in el.attrib.items():
            el.set(key, escape(value))
        if el.text:
            el.text = escape(el.text, newlines=True)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ===================================================================== text


def style_status(text: str, status: str, color: bool) -> str:
    if not color:
        return text
    return click.style(text, fg=_COLORS.get(status), bold=True if status in ("fail", "error", "xpass") else None)


def styled_table(r: Report, verbose: bool, color: bool) -> str:
    """``Report.table`` with its first word coloured by status."""
    text = r.table(verbose=verbose)
    if not color:
        return text
    head, sep, rest = text.partition(" ")
    return style_status(head, r.status, color) + sep + rest


def styled_summary(summary: str, reports: Sequence[Report], color: bool) -> str:
    if not color:
        return summary
    n = counts(reports)
    bad = n["fail"] or n["error"] or n["xpass"]
    return style_status(summary, "fail" if bad else "pass", color)


class Progress:
    """A single updating line on a terminal: ``[ 57/200]  50 passed  3 failed  1 errors  running name 2.1 s``.

    ``start(case, options, slot)`` marks a case as running (``run_suite``'s ``on_start``),
    ``update(report)`` as done; the line names the case that has been running longest, with its elapsed time
    (``+N`` more when several run at once), and a background thread redraws it every
    ``tick`` seconds so that a slow case is seen while it runs.  ``clear()`` wipes the line
    (before other output), ``draw()`` puts it back; hold ``lock`` around both and the output
    between them.  Only used when the stream is a TTY; every method is a no-op when
    ``enabled`` is false.  ``clock`` is for tests (default ``time.monotonic``).
    """

    def __init__(self, total: int, stream: IO[str] | None = None, color: bool = False, enabled: bool = True,
                 clock: Callable[[], float] | None = None, tick: float = 0.5):
        self.total, self.done = total, 0
        self.stream = stream if stream is not None else sys.stdout
        self.color, self.enabled = color, enabled and total > 0
        self.n: Counter = Counter()
        self.shown = False
        self.clock = clock or time.monotonic
        self.tick = tick
        self.running: dict[Any, tuple[str | None, str, float]] = {}  # slot -> (file, name, start)
        self.lock = threading.RLock()
        self._ticker: threading.Thread | None = None

    def start(self, case: Any, options: Any = None, slot: Any = 0) -> None:
        """``case`` (anything with ``file`` and ``name``) began running in ``slot`` (a worker's task),
        which ends the case that ran there before."""
        with self.lock:
            self.running[slot] = (case.file, case.name, self.clock())
            if self.enabled and self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, name="symgrad-progress", daemon=True)
                self._ticker.start()
            self.draw()

    def update(self, report: Report) -> None:
        with self.lock:
            self.done += 1
            self.n[report.status] += 1
            for slot, (file, name, _) in sorted(self.running.items(), key=lambda item: item[1][2]):
                if (file, name) == (report.file, report.name):
                    del self.running[slot]
                    break
            self.draw()

    def _tick(self) -> None:
        while True:
            time.sleep(self.tick)
            with self.lock:
                if not self.enabled:
                    self._ticker = None
                    return
                if self.running and self.shown:
                    self.draw()

    def _current(self) -> str:
        """``running NAME 2.1 s`` for the case running longest, ``(+N)`` for the others; "" when none."""
        if not self.running:
            return ""
        _, name, started = min(self.running.values(), key=lambda item: item[2])
        others = len(self.running) - 1
        elapsed = max(0.0, self.clock() - started)
        return f"running {escape(name)} {elapsed:.1f} s" + (f" (+{others})" if others else "")

    def _line(self) -> str:
        digits = len(str(self.total))
        plain = [f"[{self.done:>{digits}}/{self.total}]"]
        styled = list(plain)
        for status, word in (("pass", "passed"), ("fail", "failed"), ("error", "errors"),
                             ("skip", "skipped"), ("xfail", "xfailed"), ("xpass", "xpassed")):
            if self.n[status] or status in ("pass", "fail", "error"):
                text = f"{self.n[status]} {word}"
                plain.append(text)
                styled.append(style_status(text, status, self.color) if self.n[status] else text)
        # one terminal row, or "\r" cannot rewrite it: drop the running case, then cut
        columns = max(20, shutil.get_terminal_size((80, 24)).columns) - 1
        line, rich = "  ".join(plain), "  ".join(styled)
        current = self._current()
        if current and len(line) + 2 + len(current) <= columns:
            return rich + "  " + current
        return rich if len(line) <= columns else line[:columns]

    def draw(self) -> None:
        with self.lock:
            if not self.enabled:
                return
            self.stream.write("\r\x1b[K" + self._line())
            self.stream.flush()
            self.shown = True

    def clear(self) -> None:
        with self.lock:
            if self.enabled and self.shown:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self.shown = False
