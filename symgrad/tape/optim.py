"""Optimizers that update parameters in place from their ``.grad`` (PyTorch's ``torch.optim``)."""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from symgrad.tape.graph import Tensor


class SGD:
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        self.params = list(params)
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self._buffers: list[Optional[np.ndarray]] = [None] * len(self.params)

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
