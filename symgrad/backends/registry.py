"""Backends by name: built-ins, ``register()`` and the ``symgrad.backends`` entry-point group."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from symgrad.backends.base import Backend, BackendUnavailable

if TYPE_CHECKING:
    from importlib import metadata

Factory = Callable[[], Backend]

_FACTORIES: dict[str, Factory] = {}
_INSTANCES: dict[str, Backend] = {}


def _symgrad() -> Backend:
    from symgrad.backends.symgrad_tape import SymgradBackend

    return SymgradBackend()


def _torch() -> Backend:
    from symgrad.backends.torch_backend import TorchBackend  # imports torch only now

    return TorchBackend()


def _autograd() -> Backend:
    from symgrad.backends.autograd_backend import AutogradBackend

    return AutogradBackend()


def _jax() -> Backend:
    from symgrad.backends.jax_backend import JaxBackend

    return JaxBackend()


def _tinygrad() -> Backend:
    from symgrad.backends.tinygrad_backend import TinygradBackend

    return TinygradBackend()


def _mygrad() -> Backend:
    from symgrad.backends.mygrad_backend import MygradBackend

    return MygradBackend()


# built-ins, loaded on first use: `import symgrad` never imports torch
_FACTORIES.update({"symgrad": _symgrad, "torch": _torch, "autograd": _autograd, "jax": _jax,
                   "tinygrad": _tinygrad, "mygrad": _mygrad})


def register(name: str, backend: Backend | Factory) -> None:
    """Make ``backend`` (an instance, or a callable that builds one) available as ``name``.

    A name registered here wins over an entry point of the same name; registering a
    built-in's name replaces the built-in.
    """
    _INSTANCES.pop(name, None)
    _FACTORIES[name] = backend if callable(backend) and not isinstance(backend, Backend) else (lambda: backend)


def _entry_points() -> None:
    """Engines installed as plugins: ``[project.entry-points."symgrad.backends"] name = "pkg.mod:Factory"``.

    The entry point names a :class:`Backend` subclass, a callable returning a backend,
    or a backend instance; it is loaded on first use.  (importlib.metadata is imported only here: it
    costs more than the rest of the registry, and the built-ins do not need it.)
    """
    from importlib import metadata

    for ep in metadata.entry_points(group="symgrad.backends"):
        _FACTORIES.setdefault(ep.name, _from_entry_point(ep))


def _from_entry_point(ep: metadata.EntryPoint) -> Factory:
    def factory() -> Backend:
        obj = ep.load()
        backend = obj if isinstance(obj, Backend) else obj()
        if not isinstance(backend, Backend):
            raise TypeError(f"entry point {ep.name!r} ({ep.value}) gave {type(backend).__name__}, not a "
                            f"symgrad.backends.Backend")
        if not backend.name:
            backend.name = ep.name
        return backend

    return factory


def available() -> list[str]:
    _entry_points()
    return sorted(_FACTORIES)


def get(backend: str | Backend) -> Backend:
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
