"""The HTML report: one self-contained page (inline CSS, SVG and a little JS; nothing fetched).

:func:`to_html` is a pure function of the reports, like the other writers in
:mod:`symgrad.checking.formats`.  A suite runs with ``Options(arrays=False)``, so
the arrays behind a failure's plots come from :func:`rerun_with_arrays`, which
runs the failed cases once more in this process, keeping their arrays.

Every string that came from a case file or the file system (names, expressions,
reasons, tags, file names) goes through :func:`~symgrad.checking.escape.escape`
and then :func:`html.escape`: it is text on the page, never markup.  The page's
Content-Security-Policy forbids every fetch; its one script is a constant.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from symgrad.checking.compare import Comparison, ulp_distance
from symgrad.checking.escape import escape
from symgrad.checking.formats import _version
from symgrad.checking.report import STATUSES, Report, summarize
from symgrad.checking.runner import run_case

__all__ = ["MAX_PLOTTED", "rerun_with_arrays", "to_html"]

MAX_PLOTTED = 50  # failures rerun for their plots; the rest get their table only
_MAX_POINTS = 2000  # elements drawn in a plot (evenly spaced beyond that)
_MAX_GRID = 96  # rows and columns drawn in a mismatch grid
_W, _H, _PAD = 540, 170, 58  # plot size and left margin, in px

_COLORS = {"pass": "#1a7f37", "fail": "#cf222e", "error": "#cf222e", "xpass": "#cf222e",
           "skip": "#9a6700", "xfail": "#9a6700"}
_TAPE, _REF, _BAD, _UNDEF = "#d9730d", "#0969da", "#cf222e", "#8c959f"

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1f2328}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.4em 0 .4em}h3{font-size:1em;margin:0}
table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:2px 6px;text-align:left;
vertical-align:top}th{background:#f6f8fa}code,pre{font:12px/1.35 ui-monospace,monospace}
pre{background:#f6f8fa;padding:6px;overflow:auto;white-space:pre-wrap}
.badge{display:inline-block;min-width:3.5em;text-align:center;color:#fff;border-radius:3px;
font-weight:600;font-size:12px;padding:0 4px}
.failure{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;margin:10px 0}
.plots{display:flex;flex-wrap:wrap;gap:12px;margin-top:6px}figure{margin:0}
figcaption{font-size:12px;color:#59636e;max-width:520px}.filters{margin:.6em 0}
.filters label{margin-right:1em}.muted{color:#59636e}
"""

# the page's only script: the status and tag filters (no data of the report in it)
_JS = """
(function () {
  var status = document.getElementById("status-filter");
  var tag = document.getElementById("tag-filter");
  var shown = document.getElementById("shown");
  function apply() {
    var n = 0, total = 0;
    document.querySelectorAll("[data-status]").forEach(function (el) {
      var tags = JSON.parse(el.getAttribute("data-tags") || "[]");
      var ok = (status.value === "" || el.getAttribute("data-status") === status.value) &&
               (tag.value === "" || tags.indexOf(tag.value) >= 0);
      el.hidden = !ok;
      if (el.tagName === "TR") { total++; if (ok) n++; }
    });
    shown.textContent = n + " of " + total + " shown";
  }
  status.addEventListener("change", apply);
  tag.addEventListener("change", apply);
  apply();
})();
"""


def _t(text: Any, newlines: bool = False) -> str:
    """Untrusted text as HTML text or attribute value: escaped twice (invisible characters, then markup)."""
    return html.escape(escape(text, newlines=newlines), quote=True)


def _num(x: float) -> str:
    return f"{x:.4g}"


def _ulps(x: float) -> str:
    return f"{x:.0f} ulp" if x < 1e4 else f"{x:.1e} ulp".replace("e+", "e")


def _key(r: Report) -> tuple[str | None, str]:
    return r.file, r.name


# ===================================================================== reruns


def rerun_with_arrays(reports: Sequence[Report], tasks: Sequence[tuple[Any, Any]],
                      limit: int = MAX_PLOTTED) -> dict[int, Report]:
    """The first ``limit`` failed or xpassed reports run again here with their arrays, by index.

    ``tasks`` are the suite's (case, options) pairs in its order (``reports[i]``
    is ``tasks[i]``'s).  A rerun whose status differs from the report's (a
    nondeterministic engine) is left out: its arrays would not show that failure.
    """

    out: dict[int, Report] = {}
    for i, (report, (case, opts)) in enumerate(zip(reports, tasks)):
        if len(out) >= limit:
            break
        if report.status not in ("fail", "xpass") or (case.file, case.name) != _key(report):
            continue
        again = run_case(case, options=replace(opts, arrays=True))
        if again.status == report.status:
            out[i] = again
    return out


# ===================================================================== plots


def _arrays(c: Comparison, detail: Report) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(tape, reference, undefined) behind comparison ``c``, flattened; None when not kept."""
    if c.name == "value":
        tape, ref = detail.value, detail.reference_value
        if tape is None or ref is None:
            return None
        undefined = np.isnan(np.asarray(ref, dtype=float))
    else:
        g = detail.gradients.get(tuple(c.name.split(",")))
        if g is None or g.tape is None:
            return None
        tape, ref, undefined = g.tape, g.reference, g.undefined
    try:
        tape, ref, undefined = np.broadcast_arrays(np.asarray(tape), np.asarray(ref), np.asarray(undefined, bool))
    except ValueError:  # shapes the comparison itself refused
        return None
    return tape, ref, undefined


def _mismatch(tape: np.ndarray, ref: np.ndarray, undefined: np.ndarray, c: Comparison) -> np.ndarray:
    """Where ``|tape - ref| > atol + rtol*|ref|`` (equal infinities agree), undefined elements apart."""
    t, r = tape.astype(float), ref.astype(float)
    with np.errstate(all="ignore"):
        close = (t == r) | (np.abs(t - r) <= c.atol + c.rtol * np.abs(r))
    return ~close & ~undefined


def _ulp_dtype(tape: np.ndarray) -> str:
    name = tape.dtype.name
    return name if name in ("float32", "float16", "bfloat16") else "float64"


def _sample(n: int) -> np.ndarray:
    return np.arange(n) if n <= _MAX_POINTS else np.unique(np.linspace(0, n - 1, _MAX_POINTS).astype(int))


def _frame(title: str, lo: str, hi: str, n: int, body: list[str]) -> str:
    h = _H
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{h + 34}" role="img">',
             f"<title>{_t(title)}</title>",
             f'<rect x="{_PAD}" y="4" width="{_W - _PAD - 6}" height="{h - 8}" fill="#fff" stroke="#8c959f"/>',
             f'<text x="{_PAD - 4}" y="14" font-size="10" text-anchor="end">{_t(hi)}</text>',
             f'<text x="{_PAD - 4}" y="{h - 6}" font-size="10" text-anchor="end">{_t(lo)}</text>',
             f'<text x="{_PAD}" y="{h + 8}" font-size="10">0</text>',
             f'<text x="{_W - 6}" y="{h + 8}" font-size="10" text-anchor="end">{n - 1}</text>',
             f'<text x="{(_W + _PAD) // 2}" y="{h + 8}" font-size="10" text-anchor="middle">element (flat index)</text>']
    return "\n".join(parts + body) + "\n</svg>"


def _xy(n: int, lo: float, hi: float) -> tuple[Any, Any]:
    span = hi - lo if hi > lo else 1.0

    def x(i: int) -> float:
        return _PAD + 4 + (_W - _PAD - 14) * (i / max(1, n - 1))

    def y(v: float) -> float:
        return _H - 8 - (_H - 20) * ((v - lo) / span)

    return x, y


def _legend(items: list[tuple[str, str]]) -> list[str]:
    out, x = [], _PAD
    for color, label in items:
        out.append(f'<rect x="{x}" y="{_H + 16}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{x + 14}" y="{_H + 25}" font-size="11">{_t(label)}</text>')
        x += 24 + 7 * len(label)
    return out


def _svg_values(tape: np.ndarray, ref: np.ndarray, bad: np.ndarray, name: str) -> str:
    """Tape and reference over the elements; mismatched elements ringed in red."""
    idx = _sample(tape.size)
    t, r = tape.ravel().astype(float)[idx], ref.ravel().astype(float)[idx]
    finite = np.concatenate([t[np.isfinite(t)], r[np.isfinite(r)]])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    x, y = _xy(tape.size, lo, hi)
    body = []
    for values, color in ((r, _REF), (t, _TAPE)):
        pts = " ".join(f"{x(int(i)):.1f},{y(v):.1f}" for i, v in zip(idx, values) if math.isfinite(v))
        if pts:
            body.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.2"/>')
        if len(idx) <= 200:
            body.extend(f'<circle cx="{x(int(i)):.1f}" cy="{y(v):.1f}" r="2" fill="{color}"/>'
                        for i, v in zip(idx, values) if math.isfinite(v))
    flat_bad = bad.ravel()[idx]
    for i, v in zip(idx[flat_bad], t[flat_bad]):
        cy = y(v) if math.isfinite(v) else 10.0  # a non-finite tape value: at the top
        body.append(f'<circle cx="{x(int(i)):.1f}" cy="{cy:.1f}" r="4" fill="none" stroke="{_BAD}"/>')
    body += _legend([(_TAPE, "tape"), (_REF, "reference"), (_BAD, "mismatched")])
    return _frame(f"{name}: tape and reference", _num(lo), _num(hi), tape.size, body)


def _svg_ulps(tape: np.ndarray, ref: np.ndarray, bad: np.ndarray, undefined: np.ndarray, name: str) -> str:
    """The error in ULPs over the elements, on a log scale (log10(1 + ulp)); infinite at the top."""
    idx = _sample(tape.size)
    ulp = ulp_distance(tape.ravel(), ref.ravel(), _ulp_dtype(tape))[idx]
    undef = undefined.ravel()[idx]
    flat_bad = bad.ravel()[idx]
    finite = ulp[np.isfinite(ulp) & ~undef]
    top = max(1.0, float(np.log10(1 + finite.max())) if finite.size else 1.0)
    x, y = _xy(tape.size, 0.0, top)
    body = []
    for i, u, b, d in zip(idx, ulp, flat_bad, undef):
        if d:
            body.append(f'<line x1="{x(int(i)):.1f}" x2="{x(int(i)):.1f}" y1="{_H - 8}" y2="{_H - 14}" '
                        f'stroke="{_UNDEF}"/>')
            continue
        v = top if not math.isfinite(u) else float(np.log10(1 + u))
        body.append(f'<circle cx="{x(int(i)):.1f}" cy="{y(v):.1f}" r="{3 if b else 2}" '
                    f'fill="{_BAD if b else _REF}"/>')
    body += _legend([(_REF, "within tolerance"), (_BAD, "mismatched"), (_UNDEF, "undefined")])
    return _frame(f"{name}: error in ULPs, log scale", "0 ulp", _ulps(10 ** top - 1), tape.size, body)


def _svg_grid(bad: np.ndarray, undefined: np.ndarray, name: str) -> str:
    """A 2-D input's elements as cells: mismatched red, undefined grey, the rest green."""
    rows, cols = bad.shape
    shown_r, shown_c = min(rows, _MAX_GRID), min(cols, _MAX_GRID)
    cell = max(3, min(24, 320 // max(shown_r, shown_c)))
    w, h = shown_c * cell, shown_r * cell
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w + 2}" height="{h + 2}" role="img">',
             f"<title>{_t(name)}: where the mismatches lie ({rows} x {cols})</title>",
             f'<rect x="1" y="1" width="{w}" height="{h}" fill="#aceebb" stroke="#8c959f"/>']
    for (i, j) in zip(*np.nonzero(bad[:shown_r, :shown_c] | undefined[:shown_r, :shown_c])):
        color, what = (_BAD, "mismatched") if bad[i, j] else (_UNDEF, "undefined")
        parts.append(f'<rect x="{1 + j * cell}" y="{1 + i * cell}" width="{cell}" height="{cell}" '
                     f'fill="{color}"><title>({i}, {j}) {what}</title></rect>')
    return "\n".join(parts) + "\n</svg>"


def _plots(c: Comparison, detail: Report | None) -> str:
    if detail is None:
        return ""
    arrays = _arrays(c, detail)
    if arrays is None:
        return '<p class="muted">no arrays to plot for this comparison</p>'
    tape, ref, undefined = arrays
    bad = _mismatch(tape, ref, undefined, c)
    name = c.name
    figs = [(_svg_values(tape, ref, bad, name), f"{name}: tape (orange) and reference (blue) over the "
                                                f"{tape.size} elements in flat (C) order"),
            (_svg_ulps(tape, ref, bad, undefined, name), f"{name}: distance in ULPs "
                                                         f"({_ulp_dtype(tape)}), log scale")]
    if tape.ndim == 2:
        cut = " (the first rows and columns)" if max(tape.shape) > _MAX_GRID else ""
        figs.append((_svg_grid(bad, undefined, name), f"{name}: where the mismatches lie in the "
                                                      f"{tape.shape[0]} x {tape.shape[1]} array{cut}"))
    note = ""
    if int(bad.sum()) != c.mismatched:  # kinks and float32 widening, which the marks do not model
        note = (f'<p class="muted">marks use atol + rtol*|reference| alone: {int(bad.sum())} marked, '
                f"{c.mismatched} counted (elements at a kink or with a widened float32 tolerance)</p>")
    if tape.size > _MAX_POINTS:
        note += f'<p class="muted">plots show {_MAX_POINTS} evenly spaced elements of {tape.size}</p>'
    inner = "".join(f'<figure class="plot">{svg}<figcaption>{_t(cap)}</figcaption></figure>' for svg, cap in figs)
    return f'<div class="plots">{inner}</div>{note}'


# ===================================================================== page


def _badge(status: str) -> str:
    return (f'<span class="badge" style="background:{_COLORS.get(status, "#59636e")}">'
            f"{_t(status.upper())}</span>")


def _attrs(r: Report, tags: Sequence[str]) -> str:
    return f'data-status="{_t(r.status)}" data-tags="{_t(json.dumps([escape(t) for t in tags]))}"'


def _table(r: Report) -> str:
    rows = r.comparison_rows()
    if not rows:
        return ""
    head = "".join(f"<th>{_t(h)}</th>" for h in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_t(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    return f'<table class="failure-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _failure(i: int, r: Report, tags: Sequence[str], detail: Report | None) -> str:
    parts = [f'<section class="failure" id="case-{i}" {_attrs(r, tags)}>',
             f"<h3>{_badge(r.status)} {_t(r.name)} <span class=\"muted\">[{_t(r.backend)}] "
             f"{_t(r.location)}</span></h3>"]
    if r.expr:
        parts.append(f"<p><code>{_t(r.expr)}</code>{' (' + _t(r.mode) + ')' if r.mode else ''}</p>")
    if r.reason:
        parts.append(f"<p>{_t(r.reason)}</p>")
    parts.append(_table(r))
    if r.comparisons:
        rtols = {(c.rtol, c.atol) for c in r.comparisons}
        if len(rtols) == 1:
            rtol, atol = next(iter(rtols))
            parts.append(f'<p class="muted">tolerance: |tape - reference| &lt;= atol + rtol*|reference| with '
                         f"rtol={_t(f'{rtol:g}')}, atol={_t(f'{atol:g}')}; abs/rel err and ulp at the worst "
                         "index, max over all compared elements</p>")
    for c in r.failed_comparisons:
        parts.append(_plots(c, detail))
    if r.status == "error" and r.traceback:
        parts.append(f"<details><summary>traceback</summary><pre>{_t(r.traceback, newlines=True)}</pre></details>")
    parts.append(f"<details><summary>as text</summary><pre>{_t(r.table(), newlines=True)}</pre></details>")
    parts.append("</section>")
    return "\n".join(parts)


def to_html(reports: Sequence[Report], file_errors: Sequence[Any], seconds: float, exit_code: int, *,
            tags: Mapping[tuple[str | None, str], Sequence[str]] | None = None,
            details: Mapping[int, Report] | None = None, title: str = "symgrad check") -> str:
    """One self-contained HTML page: summary, a filterable row per case, each failure's table and plots.

    Args:
        reports: the suite's reports, in order.
        file_errors: the invalid case files and cases (listed first).
        seconds: the run's wall time.
        exit_code: the run's exit code (shown in the summary).
        tags: each case's tags by ``(file, name)``, for the tag filter.
        details: reports with arrays by index into ``reports`` (:func:`rerun_with_arrays`), for the plots.
        title: the page title.
    """
    tags = tags or {}
    details = details or {}
    n = Counter(r.status for r in reports)
    all_tags = sorted({escape(t) for r in reports for t in tags.get(_key(r), ())})
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
           '<meta name="viewport" content="width=device-width,initial-scale=1">',
           f"<title>{_t(title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{_t(title)}</h1>",
           f'<p id="summary">{_t(summarize(reports, seconds))}; exit code {int(exit_code)}; '
           f"symgrad {_t(_version())}</p>",
           '<table id="counts"><tr>' + "".join(f"<th>{_badge(s)}</th>" for s in STATUSES) + "</tr><tr>"
           + "".join(f"<td>{n[s]}</td>" for s in STATUSES) + "</tr></table>"]
    if file_errors:
        out.append(f"<h2>Invalid case files or cases ({len(file_errors)})</h2><ul id=\"file-errors\">")
        out.extend(f"<li>{_t(err)}</li>" for err in file_errors)
        out.append("</ul>")
    status_opts = "".join(f'<option value="{s}">{s} ({n[s]})</option>' for s in STATUSES if n[s])
    tag_opts = "".join(f'<option value="{t_}">{t_}</option>' for t_ in map(_t, all_tags))
    out += ["<h2>Cases</h2>",
            '<div class="filters"><label>status <select id="status-filter"><option value="">all</option>'
            f'{status_opts}</select></label><label>tag <select id="tag-filter"><option value="">all</option>'
            f'{tag_opts}</select></label><span id="shown" class="muted"></span></div>',
            '<table id="cases"><thead><tr><th>verdict</th><th>case</th><th>backend</th><th>where</th>'
            "<th>expression</th><th>tags</th><th>seconds</th><th>summary</th></tr></thead><tbody>"]
    bad = [(i, r) for i, r in enumerate(reports) if r.status in ("fail", "error", "xpass")]
    linked = {i for i, _ in bad}
    for i, r in enumerate(reports):
        case_tags = list(tags.get(_key(r), ()))
        name = f'<a href="#case-{i}">{_t(r.name)}</a>' if i in linked else _t(r.name)
        summary = r.summary_line().partition(" ")[2].partition(": ")[2]
        out.append(f'<tr class="case" {_attrs(r, case_tags)}><td>{_badge(r.status)}</td><td>{name}</td>'
                   f"<td>{_t(r.backend)}</td><td>{_t(r.location)}</td><td><code>{_t(r.expr)}</code></td>"
                   f"<td>{_t(', '.join(case_tags))}</td><td>{r.duration:.3f}</td><td>{_t(summary)}</td></tr>")
    out.append("</tbody></table>")
    if bad:
        out.append(f"<h2>Failures and errors ({len(bad)})</h2>")
        out.extend(_failure(i, r, list(tags.get(_key(r), ())), details.get(i)) for i, r in bad)
        if any(r.status in ("fail", "xpass") and i not in details for i, r in bad):
            out.append(f'<p class="muted">plots for the first {MAX_PLOTTED} failures only (or none where a '
                       "rerun did not reproduce the failure)</p>")
    out.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(out) + "\n"
