"""The default backend: symgrad's own tape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from symgrad import tape
from symgrad.backends.base import Capabilities, TapeBackend
from symgrad.ir.expr import Expr
from symgrad.ir.ops import Op
from symgrad.tape.forward import jvp


class SymgradBackend(TapeBackend):
    name = "symgrad"
    tensor_name = "symgrad.Tensor"
    capabilities = Capabilities(forward=True, forward_note="symgrad.func.jvp: the double-VJP trick on the table's VJPs")

    def leaf(self, array: np.ndarray, requires_grad: bool) -> Any:
        return tape.Tensor._make(array) if not requires_grad else tape.tensor(array, requires_grad=True)

    def walk(self, expr: Expr, leaves: dict[str, Any]) -> Any:
        # numpy's errors ignored once for the whole walk, as each op would set them: its own _quiet is then a no-op
        token = tape.graph._quiet()
        try:
            return super().walk(expr, leaves)
        finally:
            tape.graph._loud(token)

    def apply(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        return tape.graph.apply_table(op, args, params)  # the table's std (ddof 0), not torch.std's

    def grad(self, output: Any, inputs: list[Any], grad_output: np.ndarray | None,
             create_graph: bool) -> list[Any | None]:
        if not isinstance(output, tape.Tensor) or not output.requires_grad:
            return [None] * len(inputs)  # the output does not depend on any input
        seed = None if grad_output is None else tape.Tensor._make(np.asarray(grad_output, dtype=output.dtype.dtype))
        # The driver differentiates several gradients that share this graph above order 1 (no seed);
        # at order 1 (one call with a seed) saved tensors go as soon as backward has used them.
        return list(tape.grad(output, inputs, seed, retain_graph=create_graph or seed is None,
                              create_graph=create_graph,
                              allow_unused=True))

    def forward_jvp(self, fn: Callable[..., Any], primals: list[np.ndarray],
                    tangents: list[np.ndarray]) -> tuple[Any, Any | None]:
        return jvp(fn, [tape.Tensor._make(p) for p in primals],
                   [tape.Tensor._make(np.asarray(t, dtype=p.dtype)) for p, t in zip(primals, tangents)])

    def sum(self, value: Any) -> Any:
        return value.sum()

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value._data if isinstance(value, tape.Tensor) else value)

    def is_tensor(self, value: Any) -> bool:
        return isinstance(value, tape.Tensor)
