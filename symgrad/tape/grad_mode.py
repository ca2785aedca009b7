"""Whether ops record the graph: ``no_grad``, ``enable_grad`` and ``set_grad_enabled``, as context managers and
decorators."""

from __future__ import annotations

import functools
from typing import Any

_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


class _GradMode:
    """Context manager and decorator that sets whether ops record the graph.

    Usable as ``with no_grad():``, ``@no_grad()`` or, as in PyTorch 2, bare ``@no_grad``.
    """

    enabled = True

    def __new__(cls, orig_func: Any = None) -> Any:
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)  # bare decorator

    def __init__(self, orig_func: Any = None) -> None:
        self.prev: list[bool] = []

    def __enter__(self) -> None:
        global _grad_enabled
        self.prev.append(_grad_enabled)
        _grad_enabled = self.enabled

    def __exit__(self, *exc: Any) -> None:
        global _grad_enabled
        _grad_enabled = self.prev.pop()

    def __call__(self, fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Ops inside record no graph."""

    enabled = False


class enable_grad(_GradMode):
    """Inside a ``no_grad`` block, ops record the graph again."""

    enabled = True



class set_grad_enabled(_GradMode):
    """``torch.set_grad_enabled(mode)``: sets grad mode at once; as a context manager, until the block ends."""

    def __new__(cls, mode: bool) -> Any:
        return object.__new__(cls)

    def __init__(self, mode: bool) -> None:
        global _grad_enabled
        self.enabled = bool(mode)
        self.prev = [_grad_enabled]
        _grad_enabled = self.enabled

    def __enter__(self) -> None:
        pass  # already set by the call

    def __exit__(self, *exc: Any) -> None:
        global _grad_enabled
        _grad_enabled = self.prev[0]
