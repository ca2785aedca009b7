"""Hardening: hostile expression strings are refused with ParseError, quickly, and nothing runs.

The parser reads user text (case files, the CLI, the library API); it must never
evaluate it, never import, open or compile-to-run anything, and never raise
anything but ParseError, however the text is built.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symgrad.ir.expr import Expr
from symgrad.ir.parse import ParseError, parse

NAMES = ("x", "y", "z")

HOSTILE = [
    # attribute and subscript chains, dunder access
    "x.__class__",
    "x.__class__.__bases__[0].__subclasses__()",
    "().__class__.__base__.__subclasses__()",
    "(1).__class__",
    "pi.__class__",
    "x.real",
    "x.sin()",
    "sin.__call__(x)",
    "sin(x).T",
    "x[y]",  # integer-constant indexing is part of the language; names, arrays, strings inside are not
    "x[1:y]",
    "x['a']",
    "sin(x)[x.__class__]",
    "__builtins__",
    "__import__",
    # calls of anything but a table function
    "__import__('os').system('touch pwned')",
    "__import__('os')",
    "exec('import os')",
    "eval('1+1')",
    "open('pwned', 'w')",
    "open('pwned', 'w').write('x')",
    "getattr(x, '__class__')",
    "globals()",
    "locals()",
    "vars()",
    "compile('1', 'f', 'eval')",
    "breakpoint()",
    "input()",
    "print(x)",
    "foo(x)",
    "sin(x)(y)",
    "x(1)",
    "(lambda: __import__('os'))()",
    # lambdas, comprehensions, walrus, starred, **kwargs
    "lambda: 0",
    "lambda x: x",
    "[i for i in range(10)]",
    "{i for i in x}",
    "{i: i for i in x}",
    "sum(i for i in x)",
    "(y := 1)",
    "sin(*x)",
    "sum(**{'axis': 0})",
    # f-strings, strings, bytes, complex, booleans, None, Ellipsis, containers
    "f'{x}'",
    "f'{__import__(\"os\").system(\"touch pwned\")}'",
    "b'abc'",
    "'abc'",
    "x + 'abc'",
    "1j",
    "2 + 3j",
    "True",
    "None",
    "...",
    "[x, y]",
    "(x, y)",
    "{x}",
    "{'a': x}",
    # ternary, comparisons, boolean and bitwise operators
    "x if y else z",
    "x < y",
    "x == y",
    "0 < x < 1",
    "x and y",
    "not x",
    "~x",
    "x | y",
    "x ^ y",
    "x << 2",
    "x // y",
    "x % y",
    # unknown names and functions, wrong arity, bad keywords
    "os",
    "q + x",
    "sin(x, y)",
    "atan2(x)",
    "sin()",
    "sin(x, axis=0)",
    "sum(x, keepdims=1)",
    "sum(x, axis=x)",
    "sum(x, axis='0')",
    "sum(x, axis=(0, 0))",
    "sum(x, axis=10**100)",
    # statements and syntax errors
    "x = 1",
    "x; y",
    "import os",
    "await x",
    "yield x",
    "x +",
    ")",
    "x @@ y",
    "x\n= 1",
    "sin(x",
    # empty, NUL, surrogate
    "",
    "   \n\t ",
    "x\x00",
    "\ud800",
    # size: length, nesting, nodes, huge numbers
    "x" * 10_001,
    "(" * 5000 + "x" + ")" * 5000,
    "-" * 100_000 + "x",
    "-" * 9_000 + "x",
    "x" + "+x" * 4000,
    "sin(" * 2000 + "x" + ")" * 2000,
    "+" * 5000 + "x",
    "9**9**9**9",
    "((9**9)**9999)**9999",
    "10.0**400*1e300",
    "2**100000",
    "2**-100000",
    "1" * 5000,
    "1" * 31,
    "0x" + "f" * 9000,
    "1e999",
    "exp(exp(exp(exp(10))))",
    "abs(-2)**10**9",
]


def test_corpus_is_large_and_distinct() -> None:
    assert len(HOSTILE) >= 60
    assert len(set(HOSTILE)) == len(HOSTILE)


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:30]))
def test_hostile_text_is_refused_with_parse_error(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text, NAMES)
    err = info.value
    assert err.reason and err.text == text
    assert err.column is None or 1 <= err.column <= len(text) + 1


@pytest.mark.parametrize("text", [t for t in HOSTILE if t.strip() and "\x00" not in t and len(t) < 100],
                         ids=lambda t: repr(t[:30]))
def test_hostile_text_is_refused_without_a_name_list_too(text: str) -> None:
    if text in ("os", "q + x"):  # undeclared names are inputs when no names are given
        assert isinstance(parse(text), Expr)
        return
    with pytest.raises(ParseError):
        parse(text)


def _balanced(levels: int) -> str:
    """A balanced sum of 2**levels leaves: shallow, but many nodes."""
    return "x" if levels == 0 else f"({_balanced(levels - 1)}+{_balanced(levels - 1)})"


SIZE = {
    "x" * 10_001: "max_length",
    "(" * 5000 + "x" + ")" * 5000: "max_length",
    "-" * 9_000 + "x": "max_depth",
    "x" + "+x" * 4000: "max_depth",
    "+" * 5000 + "x": "max_depth",
    "sin(" * 100 + "x" + ")" * 100: "max_depth",
    "+".join(["x"] * 2001): "max_depth",
    _balanced(11): "max_nodes",
    "9**9**9**9": "max_const_digits",
    "((9**9)**9999)**9999": "max_const_digits",
    "10.0**400*1e300": "max_const_digits",
    "2**100000": "max_const_digits",
    "1e999": "max_const_digits",
    "1" * 5000: "max_int_digits",
    "0x" + "f" * 9000: "max_int_digits",
    "sum(x, axis=10**100)": "",  # refused as not an int literal
}


@pytest.mark.parametrize("text, limit", SIZE.items(), ids=lambda t: repr(t[:20]) if isinstance(t, str) else t)
def test_size_refusals_name_their_limit(text: str, limit: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text, NAMES)
    assert f"limit {limit}=" in info.value.reason if limit else "axis" in info.value.reason


def test_whole_corpus_is_refused_in_bounded_memory(peak_bytes: Callable[..., tuple[Any, int]]) -> None:
    # no clock: a limit that stops an input before it grows (9**9**9, deep nesting) keeps memory small
    def refuse_all() -> None:
        for text in HOSTILE:
            with pytest.raises(ParseError):
                parse(text, NAMES)

    _, peak = peak_bytes(refuse_all)
    assert peak < 20_000_000


def test_nothing_is_imported_opened_or_executed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    calls: list[tuple[str, Any]] = []
    real_import, real_open, real_compile = builtins.__import__, builtins.open, builtins.compile

    def spy_import(name: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(("import", name))
        return real_import(name, *args, **kwargs)

    def spy_open(*args: Any, **kwargs: Any) -> Any:
        calls.append(("open", args))
        return real_open(*args, **kwargs)

    def spy_compile(source: Any, filename: Any, mode: Any, flags: int = 0, *args: Any, **kwargs: Any) -> Any:
        # ast.parse compiles to an AST only; anything else would be code that could run
        if not flags & ast.PyCF_ONLY_AST:
            calls.append(("compile", source))
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def forbidden(name: str) -> Any:
        def spy(*args: Any, **kwargs: Any) -> Any:
            calls.append((name, args))
            raise AssertionError(f"{name} called")
        return spy

    monkeypatch.setattr(builtins, "__import__", spy_import)
    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(builtins, "compile", spy_compile)
    for name in ("eval", "exec", "breakpoint", "input"):
        monkeypatch.setattr(builtins, name, forbidden(name))
    calls.clear()  # monkeypatch.setattr itself imports inspect once the spy is in place
    outcomes = []
    try:
        for text in HOSTILE:
            try:
                parse(text, NAMES)
                outcomes.append("accepted")
            except ParseError:
                outcomes.append("refused")
    finally:
        monkeypatch.undo()
    assert calls == []
    assert outcomes == ["refused"] * len(HOSTILE)
    assert list(tmp_path.iterdir()) == []


def test_spies_would_see_an_import() -> None:  # the twin: the recorder above does record
    calls: list[str] = []
    real_import = builtins.__import__
    builtins.__import__ = lambda name, *a, **k: calls.append(name) or real_import(name, *a, **k)
    try:
        __import__("os")
    finally:
        builtins.__import__ = real_import
    assert calls == ["os"]


def test_a_plain_expression_passes_the_same_gate() -> None:  # the twin of the corpus
    assert isinstance(parse("3*x**3 - y**2 + sum(z, axis=-1)", NAMES), Expr)


# ---------------------------------------------------------------- fuzzing


def _parses_or_refuses(text: str, names: Any = NAMES) -> None:
    try:
        out = parse(text, names)
    except ParseError as err:
        assert isinstance(err.reason, str) and err.reason
        str(err)  # the message can always be built
    else:
        assert isinstance(out, Expr)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
@pytest.mark.slow
def test_fuzz_arbitrary_text(text: str) -> None:
    _parses_or_refuses(text)
    _parses_or_refuses(text, None)


TOKENS = st.sampled_from([
    "x", "y", "z", "q", "sin", "exp", "atan2", "sum", "max", "pi", "e", "os", "__import__",
    "__class__", "lambda", "import", "for", "in", "if", "else", "not", "and", "or", "yield",
    "await", "True", "None", "+", "-", "*", "/", "**", "@", "//", "%", "~", "|", "^", "<", "==",
    ".", ",", "(", ")", "[", "]", "{", "}", ":", "=", ":=", "'", '"', ";", "\n", "\\", "#",
    "0", "1", "2.5", "1e308", "9", "99999", "1j", "0x1f", "1_0", "axis=", "axis=-1", "axis=(0, 1)",
    "f'", "b'", "...",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(TOKENS, max_size=40), st.sampled_from(["", " "]))
def test_fuzz_token_sequences(tokens: list[str], sep: str) -> None:
    _parses_or_refuses(sep.join(tokens))
    _parses_or_refuses(sep.join(tokens), None)
