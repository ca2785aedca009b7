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
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Sequence
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
    """A single updating line on a terminal: ``[ 57/200]  50 passed  3 failed  1 error  name``.

    ``clear()`` wipes it (before other output), ``draw()`` puts it back.  Only
    used when the stream is a TTY; every method is a no-op when ``enabled`` is false.
    """

    def __init__(self, total: int, stream: IO[str] | None = None, color: bool = False, enabled: bool = True):
        self.total, self.done = total, 0
        self.stream = stream if stream is not None else sys.stdout
        self.color, self.enabled = color, enabled and total > 0
        self.n: Counter = Counter()
        self.last = ""
        self.shown = False

    def update(self, report: Report) -> None:
        self.done += 1
        self.n[report.status] += 1
        self.last = report.name
        self.draw()

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
        # one terminal row, or "\r" cannot rewrite it: drop the case name, then cut
        columns = max(20, shutil.get_terminal_size((80, 24)).columns) - 1
        line, rich = "  ".join(plain), "  ".join(styled)
        if self.last and len(line) + 2 + len(self.last) <= columns:
            return rich + "  " + self.last
        return rich if len(line) <= columns else line[:columns]

    def draw(self) -> None:
        if not self.enabled:
            return
        self.stream.write("\r\x1b[K" + self._line())
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.enabled and self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False
