"""Optimizers that update parameters in place from their ``.grad`` (PyTorch's ``torch.optim``)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from symgrad.tape.graph import Tensor


def _params(params: Iterable[Tensor]) -> list[Tensor]:
    out = list(params)
    if not out:
        raise ValueError("optimizer got an empty parameter list")
    return out


class SGD:
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        self.params = _params(params)
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self._buffers: list[np.ndarray | None] = [None] * len(self.params)

    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p._grad is None:
                continue
            d = p._grad._data
            if self.weight_decay:
                d = d + self.weight_decay * p._data
            if self.momentum:
                buf = self._buffers[i]
                buf = np.array(d, copy=True) if buf is None else self.momentum * buf + d
                self._buffers[i] = buf
                d = buf
            p._data -= self.lr * d  # in place: the parameter stays the same tensor

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p._grad = None
            elif p._grad is not None:
                p._grad._data = np.zeros_like(p._grad._data)


class Adam:
    """Adam (Kingma and Ba), as ``torch.optim.Adam`` computes it (bias-corrected; optional AMSGrad)."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False):
        self.params = _params(params)
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        self.lr, self.betas, self.eps, self.weight_decay, self.amsgrad = lr, tuple(betas), eps, weight_decay, amsgrad
        n = len(self.params)
        self._m: list[np.ndarray | None] = [None] * n
        self._v: list[np.ndarray | None] = [None] * n
        self._vmax: list[np.ndarray | None] = [None] * n
        self._steps = [0] * n

    def step(self) -> None:
        b1, b2 = self.betas
        for i, p in enumerate(self.params):
            if p._grad is None:
                continue
            g = p._grad._data
            if self.weight_decay:
                g = g + self.weight_decay * p._data
            if self._m[i] is None:
                self._m[i], self._v[i] = np.zeros_like(p._data), np.zeros_like(p._data)
            self._steps[i] += 1
            t = self._steps[i]
            m = self._m[i] = b1 * self._m[i] + (1 - b1) * g  # type: ignore[operator]
            v = self._v[i] = b2 * self._v[i] + (1 - b2) * g * g  # type: ignore[operator]
            if self.amsgrad:
                v = self._vmax[i] = v if self._vmax[i] is None else np.maximum(self._vmax[i], v)  # type: ignore[arg-type]
            denom = np.sqrt(v) / np.sqrt(1 - b2 ** t) + self.eps
            p._data -= (self.lr / (1 - b1 ** t)) * m / denom  # in place: the parameter stays the same tensor

    zero_grad = SGD.zero_grad
