"""Backends by name: built-ins, ``register()`` and the ``symgrad.backends`` entry-point group."""

from __future__ import annotations

from importlib import metadata
from typing import Callable, Union

from .base import Backend, BackendUnavailable

Factory = Callable[[], Backend]

_FACTORIES: dict[str, Factory] = {}
_INSTANCES: dict[str, Backend] = {}


def _symgrad() -> Backend:
    from .symgrad_tape import SymgradBackend

    return SymgradBackend()


_FACTORIES["symgrad"] = _symgrad


def register(name: str, backend: Union[Backend, Factory]) -> None:
    """Make ``backend`` (an instance, or a callable that builds one) available as ``name``."""
    _INSTANCES.pop(name, None)
    _FACTORIES[name] = backend if callable(backend) and not isinstance(backend, Backend) else (lambda: backend)


def _entry_points() -> None:
    for ep in metadata.entry_points(group="symgrad.backends"):
        _FACTORIES.setdefault(ep.name, ep.load)


def available() -> list[str]:
    _entry_points()
    return sorted(_FACTORIES)


def get(backend: Union[str, Backend]) -> Backend:
    """The backend called ``backend`` (or ``backend`` itself when it already is one)."""
    if isinstance(backend, Backend):
        return backend
    if backend not in _FACTORIES:
        _entry_points()
    if backend not in _FACTORIES:
        raise BackendUnavailable(f"unknown backend {backend!r}; available: {', '.join(available())}")
    if backend not in _INSTANCES:
        _INSTANCES[backend] = _FACTORIES[backend]()
    return _INSTANCES[backend]
