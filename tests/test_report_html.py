"""The HTML report (``symgrad check --format html``): parsed with html5lib, and loaded in a real browser."""

import json
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from symgrad.backends import Backend, get
from symgrad.checking.cases import load_cases
from symgrad.checking.html import rerun_with_arrays, to_html
from symgrad.checking.report import Report
from symgrad.checking.runner import Options, run_case
from symgrad.cli import main

html5lib = pytest.importorskip("html5lib")

NS = "{http://www.w3.org/1999/xhtml}"
SVG = "{http://www.w3.org/2000/svg}"
BUGGY_SOURCE = textwrap.dedent('''\
    """The symgrad tape with every first derivative off by 1e-3 where its input is positive."""
    import numpy as np

    from symgrad.backends import Backend, get


    class BuggyBackend(Backend):
        name = "buggy"

        def gradients(self, expr, inputs, wrt, order, grad_output):
            forward, grads = get("symgrad").gradients(expr, inputs, wrt, order, grad_output)
            out = dict(grads)
            for seq, g in grads.items():
                if len(seq) == 1 and g is not None:
                    out[seq] = g + 1e-3 * (np.asarray(inputs[seq[0]]) > 0)
            return forward, out
''')

CASES = """\
cases:
  - name: grid
    expr: sin(x) * y
    inputs: {x: [[-1.0, 0.5, 2.0], [0.25, -0.5, 3.0]], y: [[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]]}
    tags: [smooth, matrix]
  - name: negative-only
    expr: x**2
    inputs: {x: [-1.0, -2.0]}
    tags: [poly]
  - name: known-bad
    expr: x**3
    inputs: {x: [1.0, 2.0]}
    xfail: planted bug
"""


class Buggy(Backend):
    """In-process twin of BUGGY_SOURCE: off by 1e-3 where the input is positive."""

    name = "buggy"

    def gradients(self, expr, inputs, wrt, order, grad_output):
        forward, grads = get("symgrad").gradients(expr, inputs, wrt, order, grad_output)
        return forward, {s: (g + 1e-3 * (np.asarray(inputs[s[0]]) > 0) if len(s) == 1 and g is not None else g)
                         for s, g in grads.items()}


def parse(page: str):
    """html5lib in strict mode: a parse error raises (what a browser would silently repair)."""
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=True).parse(page)


def cases_from(tmp_path: Path, text: str = CASES, name: str = "cases.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_cases(path)


def suite(tmp_path: Path, backend=None, text: str = CASES, name: str = "cases.yaml"):
    cases = cases_from(tmp_path, text, name)
    opts = Options(backend=backend or Buggy(), arrays=False)
    tasks = [(c, opts) for c in cases]
    reports = [run_case(c, options=opts) for c in cases]
    return cases, tasks, reports


def page_for(tmp_path: Path, backend=None, text: str = CASES, name: str = "cases.yaml") -> tuple[str, list]:
    cases, tasks, reports = suite(tmp_path, backend, text, name)
    page = to_html(reports, [], 1.5, 1, tags={(c.file, c.name): c.tags for c in cases},
                   details=rerun_with_arrays(reports, tasks))
    return page, reports


def elements(tree, tag: str, ns: str = NS) -> list:
    return list(tree.iter(f"{ns}{tag}"))


def by_class(tree, cls: str) -> list:
    return [e for e in tree.iter() if cls in (e.get("class") or "").split()]


def text_of(el) -> str:
    return "".join(el.itertext())


# ---------------------------------------------------------------- structure


def test_page_parses_and_has_a_row_per_case_with_its_verdict(tmp_path):
    page, reports = page_for(tmp_path)
    tree = parse(page)
    rows = by_class(tree, "case")
    assert [r.get("data-status") for r in rows] == [r.status for r in reports] == ["fail", "pass", "xfail"]
    assert json.loads(rows[0].get("data-tags")) == ["smooth", "matrix"]
    assert "grid" in text_of(rows[0]) and "FAIL" in text_of(rows[0])
    summary = text_of(tree.find(f".//{NS}p[@id='summary']"))
    assert summary.startswith("1 passed, 1 failed, 1 xfailed, 0 errors in 1.50 s; exit code 1")
    # the tag filter offers every tag, the status filter every status present
    tag_options = [o.get("value") for o in tree.find(f".//{NS}select[@id='tag-filter']")]
    assert tag_options == ["", "matrix", "poly", "smooth"]
    status_options = [o.get("value") for o in tree.find(f".//{NS}select[@id='status-filter']")]
    assert status_options == ["", "pass", "fail", "xfail"]


def test_strict_parse_rejects_broken_markup():
    """Twin: the strict parser is what catches a page the writer got wrong."""
    with pytest.raises(html5lib.html5parser.ParseError):
        parse("<!DOCTYPE html><html><head><title>x</title></head><body><p>a</div></body></html>")


def test_each_failure_has_its_table_and_plots(tmp_path):
    page, reports = page_for(tmp_path)
    tree = parse(page)
    sections = by_class(tree, "failure")
    assert [s.get("id") for s in sections] == ["case-0"]  # only the failure; pass and xfail have none
    table = by_class(sections[0], "failure-table")[0]
    header = [text_of(th) for th in table.iter(f"{NS}th")]
    assert header[:3] == ["input", "formula", "mismatched"] and "max ulp" in header
    cells = {text_of(tr[0]): [text_of(td) for td in tr] for tr in table.iter(f"{NS}tr") if tr[0].tag == f"{NS}td"}
    failed = {c.name: c for c in reports[0].failed_comparisons}
    assert set(failed) == {"x"} and cells["y"][2] == "ok" and cells["x"][2] == f"{failed['x'].mismatched}/6" == "4/6"
    assert cells["value"][2] == "ok"
    svgs = elements(sections[0], "svg", SVG)
    assert len(svgs) == 3  # per failed input (x; y is negative, so right): values, ULPs, the 2-D grid
    titles = [text_of(s.find(f"{SVG}title")) for s in svgs]
    assert titles[:3] == ["x: tape and reference", "x: error in ULPs, log scale",
                          "x: where the mismatches lie (2 x 3)"]
    # the grid marks exactly the mismatched elements: x > 0 at (0, 1), (0, 2), (1, 0), (1, 2)
    cells = [text_of(t) for t in svgs[2].iter(f"{SVG}title")][1:]
    assert cells == ["(0, 1) mismatched", "(0, 2) mismatched", "(1, 0) mismatched", "(1, 2) mismatched"]
    # the values plot rings the same elements
    rings = [c for c in svgs[0].iter(f"{SVG}circle") if c.get("r") == "4"]
    assert len(rings) == 4


def test_a_passing_suite_has_no_failure_section_or_plots(tmp_path):
    """Twin of the above: the correct tape, the same cases, nothing drawn."""
    page, reports = page_for(tmp_path, backend="symgrad")
    tree = parse(page)
    assert [r.status for r in reports] == ["pass", "pass", "xpass"]
    sections = by_class(tree, "failure")
    assert [s.get("data-status") for s in sections] == ["xpass"]
    assert elements(tree, "svg", SVG) == []  # an xpass has no mismatch to draw
    assert "exit code 1" in text_of(tree.find(f".//{NS}p[@id='summary']"))


def test_one_dimensional_failure_has_no_grid(tmp_path):
    text = "cases:\n  - name: line\n    expr: x**2\n    inputs: {x: [-1.0, 1.0, 2.0]}\n"
    page, _ = page_for(tmp_path, text=text)
    titles = [text_of(s.find(f"{SVG}title")) for s in elements(parse(page), "svg", SVG)]
    assert titles == ["x: tape and reference", "x: error in ULPs, log scale"]


# ---------------------------------------------------------------- self-contained, escaped


def fetches(tree) -> list[str]:
    """Anything the page would load: src/href/action/srcset other than in-page anchors, link/object/iframe."""
    found = []
    for el in tree.iter():
        tag = el.tag.split("}")[-1] if isinstance(el.tag, str) else ""
        if tag in ("link", "iframe", "object", "embed", "img", "image", "base", "use"):
            found.append(tag)
        for key, value in el.attrib.items():
            name = key.split("}")[-1]
            if name in ("src", "srcset", "action", "formaction", "data", "poster") or name.startswith("on"):
                found.append(f"{tag} {name}={value}")
            if name == "href" and not value.startswith("#"):
                found.append(f"{tag} href={value}")
    return found


def test_page_is_self_contained(tmp_path):
    page, _ = page_for(tmp_path)
    tree = parse(page)
    assert fetches(tree) == []
    csp = [m.get("content") for m in elements(tree, "meta") if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp and csp[0].startswith("default-src 'none'")
    scripts = elements(tree, "script")
    assert len(scripts) == 1 and scripts[0].get("src") is None
    rest = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in rest and "https://" not in rest and "url(" not in rest and "@import" not in rest


def test_fetch_detector_sees_a_fetch():
    """Twin: a page that loads something is caught by the same check."""
    tree = parse('<!DOCTYPE html><html><head><title>x</title><link rel="stylesheet" href="https://cdn/x.css">'
                 '</head><body><img src="x.png"></body></html>')
    assert fetches(tree) == ["link", "link href=https://cdn/x.css", "img", "img src=x.png"]


HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>'


def hostile_report() -> Report:
    from symgrad.checking.compare import compare

    c = compare("x", np.array([1.0, 2.5]), np.array([1.0, 2.0]), rtol=1e-7, atol=1e-7, formula=HOSTILE)
    c.note = HOSTILE
    return Report(name=HOSTILE, status="fail", file=f"{HOSTILE}.yaml", line=3, backend=HOSTILE,
                  mode="elementwise", expr=HOSTILE, comparisons=[c], reason=HOSTILE + "\u202e\x1b[2J")


def test_hostile_names_expressions_and_messages_stay_text():
    r = hostile_report()
    page = to_html([r, Report(name="err", status="error", reason=HOSTILE, traceback=HOSTILE)], [HOSTILE], 0.1, 2,
                   tags={(r.file, r.name): [HOSTILE, '"quoted"']})
    tree = parse(page)
    assert len(elements(tree, "script")) == 1  # ours, nothing injected
    assert fetches(tree) == []
    assert elements(tree, "img") == []
    text = text_of(tree.find(f"{NS}body"))
    assert text.count(HOSTILE) >= 8  # shown literally: name, file, backend, expression, formula, note, reason
    assert "\u202e" not in page and "\x1b" not in page and "\\u202e\\x1b[2J" in text
    row = by_class(tree, "case")[0]
    assert json.loads(row.get("data-tags")) == [HOSTILE, '"quoted"']
    tag_options = [o.get("value") for o in tree.find(f".//{NS}select[@id='tag-filter']")]
    assert tag_options == ["", '"quoted"', HOSTILE]


def test_injection_detector_sees_raw_markup():
    """Twin: the same checks catch the markup when it is pasted in unescaped."""
    page = to_html([Report(name="fine", status="pass")], [], 0.1, 0)
    tree = parse(page.replace("<td>fine</td>", f"<td>{HOSTILE}</td>"))
    assert len(elements(tree, "script")) == 2
    assert fetches(tree) and elements(tree, "img")


# ---------------------------------------------------------------- reruns


class Flaky(Backend):
    """Wrong on its first call only: the rerun passes."""

    name = "flaky"
    calls = 0

    def gradients(self, expr, inputs, wrt, order, grad_output):
        type(self).calls += 1
        forward, grads = get("symgrad").gradients(expr, inputs, wrt, order, grad_output)
        if type(self).calls == 1:
            grads = {s: g + 1.0 for s, g in grads.items()}
        return forward, grads


def test_rerun_keeps_arrays_of_failures_only(tmp_path):
    cases, tasks, reports = suite(tmp_path)
    details = rerun_with_arrays(reports, tasks)
    assert list(details) == [0]  # the fail; the pass and the xfail are not rerun
    assert details[0].gradients[("x",)].tape.shape == (2, 3)
    assert rerun_with_arrays(reports, tasks, limit=0) == {}


def test_rerun_that_does_not_reproduce_is_left_out(tmp_path):
    """A nondeterministic engine: its rerun's arrays would show a pass, so no plots and a note."""
    Flaky.calls = 0
    text = "cases:\n  - name: once\n    expr: x**2\n    inputs: {x: [1.0, 2.0]}\n"
    cases, tasks, reports = suite(tmp_path, backend=Flaky(), text=text)
    assert reports[0].status == "fail"
    details = rerun_with_arrays(reports, tasks)
    assert details == {}
    page = to_html(reports, [], 0.1, 1, details=details)
    assert elements(parse(page), "svg", SVG) == [] and "rerun did not reproduce" in page


# ---------------------------------------------------------------- the command


@pytest.fixture
def buggy_module(tmp_path, monkeypatch):
    (tmp_path / "buggy_html_backend.py").write_text(BUGGY_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "buggy_html_backend:BuggyBackend"
    sys.modules.pop("buggy_html_backend", None)


def test_cli_writes_the_page(tmp_path, buggy_module):
    (tmp_path / "cases.yaml").write_text(CASES)
    out = tmp_path / "report.html"
    res = CliRunner().invoke(main, ["check", str(tmp_path / "cases.yaml"), "--backend", buggy_module,
                                    "--timeout", "0", "--format", "html", "-o", str(out)])
    assert res.exit_code == 1, res.output
    tree = parse(out.read_text())
    assert [r.get("data-status") for r in by_class(tree, "case")] == ["fail", "pass", "xfail"]
    assert len(elements(tree, "svg", SVG)) == 3
    assert json.loads(by_class(tree, "case")[0].get("data-tags")) == ["smooth", "matrix"]


def test_cli_page_of_the_correct_tape(tmp_path):
    """Twin: the default tape passes the same cases (the xfail becomes an xpass); nothing drawn."""
    (tmp_path / "cases.yaml").write_text(CASES)
    out = tmp_path / "report.html"
    res = CliRunner().invoke(main, ["check", str(tmp_path / "cases.yaml"), "--timeout", "0", "--format", "html",
                                    "-o", str(out)])
    assert res.exit_code == 1, res.output  # the xpass
    tree = parse(out.read_text())
    assert [r.get("data-status") for r in by_class(tree, "case")] == ["pass", "pass", "xpass"]
    assert elements(tree, "svg", SVG) == []


def test_cli_page_lists_invalid_files(tmp_path):
    (tmp_path / "bad.yaml").write_text("cases:\n  - name: broken\n    expr: x +\n    inputs: {x: [1.0]}\n")
    res = CliRunner().invoke(main, ["check", str(tmp_path), "--timeout", "0", "--format", "html"])
    assert res.exit_code == 2
    tree = parse(res.stdout[res.stdout.index("<!DOCTYPE"):])
    errors = tree.find(f".//{NS}ul[@id='file-errors']")
    assert errors is not None and "broken" in text_of(errors)


# ---------------------------------------------------------------- in a browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                                  args=CHROMIUM_ARGS)
        except Exception as exc:  # a Chromium that cannot start here (no display libraries, say)
            pytest.skip(f"Chromium does not start: {exc}")
        yield b
        b.close()


def open_page(browser, path: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, problems


def visible_statuses(page) -> list[str]:
    return page.eval_on_selector_all("tr.case", "rows => rows.filter(r => !r.hidden && r.offsetParent !== null)"
                                                ".map(r => r.dataset.status)")


@pytest.mark.slow
def test_in_chromium_loads_filters_and_shows_the_failure_table(tmp_path, browser):
    page_html, _ = page_for(tmp_path)
    path = tmp_path / "report.html"
    path.write_text(page_html)
    page, problems = open_page(browser, path)
    try:
        assert visible_statuses(page) == ["fail", "pass", "xfail"]
        assert page.text_content("#shown") == "3 of 3 shown"
        page.select_option("#status-filter", "fail")
        assert visible_statuses(page) == ["fail"] and page.text_content("#shown") == "1 of 3 shown"
        page.select_option("#status-filter", "")
        page.select_option("#tag-filter", "poly")
        assert visible_statuses(page) == ["pass"]
        assert not page.is_visible("section.failure")  # the failure's section follows the filter too
        page.select_option("#tag-filter", "smooth")
        table = page.locator("section.failure table.failure-table").first
        assert table.is_visible()
        box = table.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 40
        shot = table.screenshot(path=str(tmp_path / "failure-table.png"))
        assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 2000
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        svg_box = page.locator("section.failure svg").first.bounding_box()
        assert svg_box is not None and svg_box["width"] > 400
        assert problems == []
    finally:
        page.close()


@pytest.mark.slow
def test_in_chromium_a_script_error_is_seen(tmp_path, browser):
    """Twin: the same listeners report a broken page (so 'no console errors' above means something)."""
    page_html, _ = page_for(tmp_path)
    path = tmp_path / "broken.html"
    path.write_text(page_html.replace('getElementById("status-filter")', 'getElementById("no-such")'))
    page, problems = open_page(browser, path)
    try:
        assert any(p.startswith("pageerror") for p in problems)
        page.select_option("#status-filter", "fail")
        assert visible_statuses(page) == ["fail", "pass", "xfail"]  # and the filter does nothing
    finally:
        page.close()


def test_cli_hostile_file_name_and_tags_stay_text(tmp_path, buggy_module):
    hostile = tmp_path / "<img src=x onerror=alert(1)>.yaml"
    hostile.write_text('cases:\n  - name: line\n    expr: x**2\n    inputs: {x: [1.0, -1.0]}\n'
                       '    tags: ["<b>bold</b>", "</script><script>alert(2)</script>"]\n')
    out = tmp_path / "report.html"
    res = CliRunner().invoke(main, ["check", str(hostile), "--backend", buggy_module, "--timeout", "0",
                                    "--format", "html", "-o", str(out)])
    assert res.exit_code == 1, res.output
    tree = parse(out.read_text())
    assert elements(tree, "img") == [] and elements(tree, "b") == [] and len(elements(tree, "script")) == 1
    assert fetches(tree) == []
    row = by_class(tree, "case")[0]
    assert "<img src=x onerror=alert(1)>.yaml:2" in text_of(row)
    assert json.loads(row.get("data-tags")) == ["<b>bold</b>", "</script><script>alert(2)</script>"]
