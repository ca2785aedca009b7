"""Which cases run: ``-k`` expressions (as pytest's: names, ``and``/``or``/``not``, parentheses) and tags."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from symgrad.checking.cases import Case



class KeywordError(ValueError):
    """A malformed ``-k`` expression; the message names the column."""


_TOKEN = re.compile(r"\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<word>[^\s()]+))")
_KEYWORDS = ("and", "or", "not")


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        m = _TOKEN.match(text, pos)
        assert m is not None  # every non-space character starts some token
        kind = m.lastgroup or "word"
        value = m.group(kind)
        start = m.start(kind)
        if kind == "word" and value in _KEYWORDS:
            kind = value
        tokens.append((kind, value, start + 1))
        pos = m.end()
    tokens.append(("end", "", len(text) + 1))
    return tokens


class _Parser:
    """``expr := or; or := and ('or' and)*; and := not ('and' not)*; not := 'not' not | '(' or ')' | WORD``."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, expected: str) -> KeywordError:
        kind, value, col = self.peek()
        got = "end of input" if kind == "end" else repr(value)
        return KeywordError(f"-k {self.text!r}: at column {col}: expected {expected}; got {got}")

    def parse(self) -> Callable[[str], bool]:
        if self.peek()[0] == "end":
            raise self.fail("a name, 'not' or '('")
        node = self.parse_or()
        if self.peek()[0] != "end":
            raise self.fail("'and', 'or' or end of input")
        return node

    def parse_or(self) -> Callable[[str], bool]:
        return self._chain("or", self.parse_and, any)

    def parse_and(self) -> Callable[[str], bool]:
        return self._chain("and", self.parse_not, all)

    def _chain(self, word: str, operand: Callable[[], Callable[[str], bool]],
               combine: Callable[[Iterable[bool]], bool]) -> Callable[[str], bool]:
        """``operand (word operand)*``, combined with ``any`` or ``all``."""
        parts = [operand()]
        while self.peek()[0] == word:
            self.take()
            parts.append(operand())
        if len(parts) == 1:
            return parts[0]
        ps = tuple(parts)
        return lambda name: combine(p(name) for p in ps)

    def parse_not(self) -> Callable[[str], bool]:
        kind, value, _ = self.peek()
        if kind == "not":
            self.take()
            inner = self.parse_not()
            return lambda name: not inner(name)
        if kind == "lp":
            self.take()
            inner = self.parse_or()
            if self.peek()[0] != "rp":
                raise self.fail("')'")
            self.take()
            return inner
        if kind == "word":
            self.take()
            needle = value.lower()
            return lambda name: needle in name.lower()
        raise self.fail("a name, 'not' or '('")


def compile_keyword(text: str) -> Callable[[str], bool]:
    """A predicate on case names from a pytest-style ``-k`` expression (never ``eval``).

    A word matches a name containing it (case-insensitively, as pytest);
    ``and``, ``or``, ``not`` and parentheses combine words, ``not`` binding
    tightest and ``or`` loosest.  Raises :class:`KeywordError` naming the column.
    """
    return _Parser(text).parse()


def select(cases: Iterable[Case], keyword: str | None = None, tags: Iterable[str] = (),
           skip_tags: Iterable[str] = ()) -> list[Case]:
    """The cases matching ``keyword`` (a ``-k`` expression), having any of ``tags``, and none of ``skip_tags``."""
    match = compile_keyword(keyword) if keyword and keyword.strip() else None
    want, unwanted = set(tags), set(skip_tags)
    out = []
    for case in cases:
        if match is not None and not match(case.name):
            continue
        if want and not want & set(case.tags):
            continue
        if unwanted & set(case.tags):
            continue
        out.append(case)
    return out


