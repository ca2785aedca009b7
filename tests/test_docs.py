"""Keep docs/ true: every example on every page runs, as tests/test_readme.py does for the README.

What is checked, page by page:

* every ```python block runs in a fresh interpreter from the repository root (``# needs: MODULE``
  skips it without MODULE; a block defining ``def test_...`` runs under pytest with the plugin's
  fixtures); each ``print(...)   # -> TEXT`` line must print TEXT;
* every ``$ symgrad ...`` and ``$ pytest ...`` line of a ```console block runs; the output lines
  shown under it must appear (times normalised) and its exit code must match the summary shown;
* every ```yaml block with a ``cases`` list loads, and each of its cases passes -- unless the block
  starts with ``# refused: TEXT``, when loading it must fail with TEXT;
* every ```toml block parses;
* docs/ops.md is what ``docs/gen_ops.py`` makes of the op table today (refresh it with
  ``PYTHONPATH=$PWD python docs/gen_ops.py``), every case key, generator and CLI command is
  documented, every page is in mkdocs.yml's nav, and the README's links into docs/ resolve.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from doc_examples import ROOT, blocks, console_commands, needs, run, run_console_command, run_python_block

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
TEXTS = {p.name: p.read_text(encoding="utf-8") for p in PAGES}
REFUSED = re.compile(r"^#\s*refused:\s*(.+)$", re.M)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _gather(lang: str) -> list[tuple[str, str, int]]:
    return [(name, body, line) for name, text in TEXTS.items() for _, body, line in blocks(text, lang)]


PYTHON = _gather("python")
YAML = _gather("yaml")
TOML = _gather("toml")
CONSOLE = [(name, cmd, out, line) for name, text in TEXTS.items() for cmd, out, line in console_commands(text)]


def _ids(items: list) -> list[str]:
    return [f"{item[0]}:{item[-1]}" for item in items]


# ---------------------------------------------------------------- the extraction itself


def test_every_page_has_examples_and_closed_fences():
    assert {"index.md", "getting-started.md", "cases.md", "expressions.md", "ops.md", "cli.md", "library.md",
            "pytest.md", "backends.md", "verdicts.md", "untrusted.md", "performance.md", "api.md"} <= set(TEXTS)
    assert len(PYTHON) >= 15 and len(CONSOLE) >= 10 and len(YAML) >= 8
    for name, text in TEXTS.items():
        fences = sum(1 for line in text.splitlines() if line.startswith("```"))
        assert fences == 2 * len(blocks(text)), name


def test_refused_marker_twin():
    doc = textwrap.dedent("""\
        ```yaml
        # refused: duplicate key
        cases: []
        ```
        ```yaml
        cases: []
        ```
        """)
    found = [REFUSED.search(body) for _, body, _ in blocks(doc, "yaml")]
    assert found[0] and found[0].group(1) == "duplicate key" and found[1] is None


# ---------------------------------------------------------------- ```python blocks


@pytest.mark.parametrize("page,code,line", PYTHON, ids=_ids(PYTHON))
@pytest.mark.slow
def test_python_block(page, code, line):
    run_python_block(code, f"{page}:{line}")


# ---------------------------------------------------------------- ```console blocks


@pytest.mark.parametrize("page,command,output,line", CONSOLE, ids=_ids(CONSOLE))
@pytest.mark.slow
def test_console_command(page, command, output, line):
    run_console_command(command, output, f"{page}:{line}")


# ---------------------------------------------------------------- ```yaml and ```toml blocks


def _load(body: str, tmp_path: Path):
    from symgrad.checking.cases import collect

    path = tmp_path / "example.yaml"
    path.write_text(body, encoding="utf-8")
    return collect([str(path)])


@pytest.mark.parametrize("page,body,line", YAML, ids=_ids(YAML))
def test_yaml_example(page, body, line, tmp_path):
    from symgrad.checking.runner import run_case

    data = yaml.safe_load(body) if not REFUSED.search(body) else None
    refused = REFUSED.search(body)
    if data is not None and not (isinstance(data, dict) and "cases" in data):
        pytest.skip("not a case file")  # a fragment (none today)
    cases, errors = _load(body, tmp_path)
    if refused:
        assert cases == [] and len(errors) == 1, (page, line, errors)
        assert refused.group(1).strip() in str(errors[0]), (page, line, str(errors[0]))
        return
    assert errors == [], (page, line, [str(e) for e in errors])
    assert len(cases) == len(data["cases"])
    for case in cases:
        report = run_case(case)
        assert report.status == "pass", f"{page}:{line}: {case.name}\n{report.table()}"


def test_yaml_example_twin(tmp_path):
    """The same check fails on a wrong expectation and on a misspelt key."""
    from symgrad.checking.runner import run_case

    cases, errors = _load("cases:\n  - {name: w, expr: x**2, inputs: {x: 2.0}, expect: {x: 3*x}}\n", tmp_path)
    assert errors == [] and run_case(cases[0]).status == "fail"
    cases, errors = _load("cases:\n  - {name: w, expr: x**2, inputs: {x: 2.0}, ordr: 2}\n", tmp_path)
    assert cases == [] and "did you mean 'order'?" in str(errors[0])


def test_yaml_pitfalls_are_what_the_page_says(tmp_path):
    (pitfalls,) = [body for page, body, _ in YAML if "pitfall-exponent" in body]
    cases, errors = _load(pitfalls, tmp_path)
    assert errors == [] and cases[0].rtol == 1e-6 and cases[1].expr == "-on"
    assert "1e-6" in str(yaml.safe_load("x: 1e-6")["x"])  # YAML 1.1 indeed reads it as a string
    _, errors = _load("cases:\n  - {name: d, expr: x, expr: y, inputs: {x: 1.0}}\n", tmp_path)
    assert "duplicate key 'expr'" in str(errors[0])
    _, errors = _load("cases:\n  - {name: t, expr: x, inputs: {x: 1.0}, tags: [1]}\n", tmp_path)
    assert "tags must be a list of strings" in str(errors[0])
    _, errors = _load("cases:\n  - {name: v, expr: x, inputs: {x: 1.0}, value: .nan}\n", tmp_path)
    assert "nan cannot be checked" in str(errors[0])


@pytest.mark.parametrize("page,body,line", TOML, ids=_ids(TOML))
def test_toml_example_parses(page, body, line):
    needs("tomllib")  # Python 3.11+
    import tomllib

    assert tomllib.loads(body)


# ---------------------------------------------------------------- generated and complete


def _gen_ops():
    spec = importlib.util.spec_from_file_location("gen_ops", DOCS / "gen_ops.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ops_page_is_generated_from_the_op_table():
    gen = _gen_ops()
    rows = gen.rows()
    assert gen.render(rows) == TEXTS["ops.md"], (
        "docs/ops.md is out of date with the op table: run  PYTHONPATH=$PWD python docs/gen_ops.py")
    from symgrad.ir.ops import public_ops

    for op in public_ops():
        assert f"| `{op.name}` |" in TEXTS["ops.md"]
        if op.kink:
            assert op.kink.replace("|", "\\|") in TEXTS["ops.md"]


def test_ops_page_twin_a_changed_table_is_noticed():
    gen = _gen_ops()
    rows = gen.rows()
    extra = dict(rows[0], name="frobnicate", infix="", aliases=[], kink="frobnicate'(0) = 0")
    assert gen.render(rows + [extra]) != TEXTS["ops.md"]
    changed = [dict(r, kink="made up") if r["name"] == "abs" else r for r in rows]
    assert gen.render(changed) != TEXTS["ops.md"]


def test_case_reference_documents_every_key_and_generator():
    from symgrad.checking.cases.schema import DTYPES, FILE_KEYS, KEYS, MODES, REFERENCES, SPEC_KINDS

    text = TEXTS["cases.md"]
    rows = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)? \|", text, re.M))
    documented = {k for row in rows for k in row if k}
    assert set(KEYS) <= documented, set(KEYS) - documented
    for word in (*FILE_KEYS, *SPEC_KINDS, *DTYPES, *MODES, *REFERENCES, "random"):
        assert re.search(rf"[`{{]{word}\b", text), word
    assert "made_up_key" not in documented  # the twin: the row parser does not accept anything


def test_cli_page_documents_every_command_and_option():
    from click.testing import CliRunner

    from symgrad.cli import main

    text = TEXTS["cli.md"]
    for name in main.commands:
        assert f"## `symgrad {name}`" in text, name
        help_text = CliRunner().invoke(main, [name, "--help"]).output
        assert help_text
    check_help = CliRunner().invoke(main, ["check", "--help"]).output
    for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", check_help):
        assert option in text, option


def test_every_page_is_in_the_nav_and_every_link_resolves():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    listed = {page for entry in nav for page in entry.values()}
    assert set(TEXTS) <= listed, set(TEXTS) - listed
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = [(ROOT, link) for link in LINK.findall(readme) if link.startswith("docs/")]
    links += [(DOCS, link) for text in TEXTS.values() for link in LINK.findall(text) if "://" not in link]
    assert len([1 for base, _ in links if base == ROOT]) >= 10
    missing = [link for base, link in links if not (base / link).is_file()]
    assert missing == []
    assert not (DOCS / "no-such-page.md").is_file()  # the twin: a missing target is noticed


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    needs("mkdocs", "mkdocstrings", "material")
    proc = run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "cases" / "index.html").is_file()


# ---------------------------------------------------------------- docstrings


def _undocumented(fn, keys=()) -> list[str]:
    """Parameters and case keys that ``fn``'s docstring does not name (a one-line docstring names none)."""
    import inspect

    doc = inspect.getdoc(fn) or ""
    if len(doc.splitlines()) < 3:
        return ["(one line)"]
    params = [p.name for p in inspect.signature(fn).parameters.values() if p.kind != p.VAR_KEYWORD]
    return [name for name in (*params, *keys) if not re.search(rf"\b{re.escape(name)}\b", doc)]


def test_public_functions_document_their_keywords():
    import symgrad
    import symgrad.api
    from symgrad.checking.cases.schema import KEYS

    for fn in (symgrad.check, symgrad.assert_gradients, symgrad.api.make_case):
        assert _undocumented(fn, KEYS) == [], fn.__name__
    assert _undocumented(symgrad.check_function, [k for k in KEYS if k not in ("grad_output", "expr")]) == []
    for fn in (symgrad.load_cases, symgrad.run_case):
        assert _undocumented(fn) == [], fn.__name__
    import pydoc

    assert len(pydoc.render_doc(symgrad.check, renderer=pydoc.plaintext).splitlines()) > 20


def test_docstring_check_twin():
    def one_line(x, *, order=1):
        """Does a thing."""

    def forgets_order(x, *, order=1):
        """Does a thing.

        Args:
            x: the input.
        """

    assert _undocumented(one_line) == ["(one line)"]
    assert _undocumented(forgets_order) == ["order"]
    assert _undocumented(forgets_order, ["wrt"]) == ["order", "wrt"]


def test_refused_syntax_table_shows_the_real_messages():
    from symgrad.ir.parse import ParseError, parse

    rows = re.findall(r"^\| `([^`]+)`(?: with only `x` given)? \| `([^`]+)`.*\|$", TEXTS["expressions.md"], re.M)
    rows = [(text, message) for text, message in rows if not text.startswith("max_")]  # the limits table
    assert len(rows) >= 10
    for text, message in rows:
        with pytest.raises(ParseError) as info:
            parse(text, names=["x"])
        assert message.split(" (")[0] in str(info.value), (text, str(info.value))
    with pytest.raises(pytest.fail.Exception), pytest.raises(ParseError):  # the twin: a text that parses
        parse("sin(x)", names=["x"])
