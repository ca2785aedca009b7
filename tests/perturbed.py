"""Deliberately wrong backends shared by the tests (registered on import): the failing twins' engines."""

from __future__ import annotations

import numpy as np

from symgrad import backends
from symgrad.backends.symgrad_tape import SymgradBackend


class PerturbB(SymgradBackend):
    """symgrad's tape, but the gradient of ``b`` is off by 0.5 at element 1."""

    name = "api-wrong-b"

    def gradients(self, expr, inputs, wrt, order, grad_output):
        value, grads = super().gradients(expr, inputs, wrt, order, grad_output)
        for seq, g in grads.items():
            if seq[-1] == "b" and g is not None:
                g = np.array(g, copy=True, order="C")  # C order: reshape(-1) is a view (a transposed gradient too)
                g.reshape(-1)[min(1, g.size - 1)] += 0.5
                grads[seq] = g
        return value, grads


class PerturbAll(SymgradBackend):
    """Every gradient moved by 1% of (1 + |g|): never equal to the right one, zero included."""

    name = "api-wrong-all"

    def gradients(self, expr, inputs, wrt, order, grad_output):
        value, grads = super().gradients(expr, inputs, wrt, order, grad_output)
        with np.errstate(invalid="ignore"):  # inf + inf*... at kinks such as sqrt'(0)
            return value, {k: None if g is None else g + 0.01 * (1 + abs(g)) for k, g in grads.items()}

    def jvp(self, expr, inputs, wrt, tangents):  # forward mode (mode_ad: forward cases) wrong alike
        value, jt = super().jvp(expr, inputs, wrt, tangents)
        with np.errstate(invalid="ignore"):
            return value, jt + 0.01 * (1 + abs(jt))


backends.register("api-wrong-b", PerturbB())
backends.register("api-wrong-all", PerturbAll)  # a factory works too
