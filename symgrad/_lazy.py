"""The one place where symgrad defers imports.

``symgrad --help`` and a pytest session that collects no case file must not pay
for numpy and sympy (about half a second).  The CLI and the pytest plugin
therefore name the modules they use with :func:`lazy` at module level, and use
them as modules (``_runner.run_case(...)``): each attribute access imports the
module if it is not imported yet, and reads it from ``sys.modules`` otherwise,
so a test that swaps or reloads a module is always seen.  Everything else in
symgrad imports at module level as usual; optional engines (torch, jax, ...)
are imported by their adapters.
"""

import importlib
from typing import Any

__all__ = ["lazy"]


class _Module:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy(name: str) -> Any:
    """A stand-in for the module ``name`` that imports it on first use."""
    return _Module(name)
