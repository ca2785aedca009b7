"""``Tensor.register_hook``: a function run on the gradient of a tensor during backward.

The hook gets the tensor's whole gradient (summed over its uses) and may return a tensor to replace
it: for a leaf, what goes into ``.grad`` (or what ``autograd.grad`` returns); for a non-leaf, what
its ``grad_fn`` passes on (and what ``retain_grad`` keeps).  The engine runs them (``graph._run_hooks``)
from the tensor's node: its ``grad_fn``, or a leaf's ``AccumulateGrad``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from symgrad.tape.graph import Tensor, _edge

_ids = itertools.count()


class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` unregisters the hook (twice is harmless)."""

    def __init__(self, hooks: dict, key: int):
        self._hooks, self.id = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<torch.utils.hooks.RemovableHandle object at {id(self):#x}>"


def register_hook(self: Tensor, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
    """Run ``hook(grad)`` each time a gradient for this tensor is computed; a returned tensor replaces it."""
    if not self.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    node = _edge(self)  # the grad_fn, or the leaf's AccumulateGrad (made now if need be)
    assert node is not None
    if node.hooks is None:
        node.hooks = {}
    key = next(_ids)
    node.hooks[key] = hook
    return RemovableHandle(node.hooks, key)


Tensor.register_hook = register_hook  # type: ignore[attr-defined]
