"""The one escaping function for untrusted text (file names, skip reasons, expressions) in reports.

Every writer (the terminal text, JSON, JUnit XML) passes what came from a case file or the file
system through :func:`escape`: control characters (C0, DEL, C1), line and paragraph separators,
bidi embeddings, overrides and isolates (Trojan Source), other invisible format characters, and
lone surrogates (what a non-UTF-8 file name decodes to) become visible ``\\xNN`` / ``\\uNNNN``
escapes.  The result holds no character that moves the cursor, changes the terminal, starts a
new line, reorders the text, or cannot be encoded as UTF-8 or written in XML 1.0.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# C0 and DEL and C1, separators, bidi controls, lone surrogates, BOM/zero-width; \n and \t apart
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029" + _BIDI + "\u200b-\u200d\u2060\ufeff"
                     "\ud800-\udfff\ufff9-\ufffb\ufffe\uffff]")
_NEWLINES = re.compile("[\n\t]")


def _code(match: re.Match) -> str:
    c = match.group()
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def escape(text: Any, *, newlines: bool = False) -> str:
    """``text`` with every unsafe character shown as an escape; ``newlines``: keep ``\\n`` and ``\\t``."""
    text = "" if text is None else str(text)
    out = _UNSAFE.sub(_code, text)
    if not newlines:
        out = _NEWLINES.sub(_code, out)
    if not out.isascii():  # other invisible format characters (category Cf), rare
        out = "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) == "Cf" else c for c in out)
    return out


def escape_tree(obj: Any) -> Any:
    """Every string of a JSON-like tree (dicts, lists), keys too, escaped."""
    if isinstance(obj, str):
        return escape(obj, newlines=True)
    if isinstance(obj, dict):
        return {escape_tree(k): escape_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [escape_tree(v) for v in obj]
    return obj
