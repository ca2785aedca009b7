"""Tensor printing, character for character as PyTorch's ``torch/_tensor_str.py`` does it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from symgrad.tape.dtypes import default_dtype

PRECISION = 4
THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80


class _Formatter:
    """Chooses integer, fixed or scientific notation and a common width from all the values."""

    def __init__(self, values: np.ndarray):
        self.floating = values.dtype.kind == "f"
        self.int_mode, self.sci_mode, self.max_width = True, False, 1
        flat = values.reshape(-1)
        if not self.floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(str(v)))
            return
        finite = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
        if finite.size == 0:
            return
        lo, hi = float(np.abs(finite).min()), float(np.abs(finite).max())
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        if self.int_mode:
            self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8
            widths = [len(f"{v:.{PRECISION}e}") if self.sci_mode else len(f"{v:.0f}") + 1 for v in finite.tolist()]
        else:
            self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
            fmt = f"{{:.{PRECISION}{'e' if self.sci_mode else 'f'}}}"
            widths = [len(fmt.format(v)) for v in finite.tolist()]
        self.max_width = max(self.max_width, *widths)

    def format(self, value: Any) -> str:
        if self.floating:
            value = float(value)
            if self.sci_mode:
                text = f"{value:{self.max_width}.{PRECISION}e}"
            elif self.int_mode:
                text = f"{value:.0f}" + ("" if math.isinf(value) or math.isnan(value) else ".")
            else:
                text = f"{value:.{PRECISION}f}"
        else:
            text = str(value)
        return (self.max_width - len(text)) * " " + text


def _summarized(a: np.ndarray) -> np.ndarray:
    """The corner elements PyTorch shows (and formats by) when a tensor is too big to print."""
    if a.ndim == 0:
        return a
    if a.shape[0] > 2 * EDGEITEMS:
        a = np.concatenate([a[:EDGEITEMS], a[-EDGEITEMS:]])
    if a.ndim == 1:
        return a
    return np.stack([_summarized(row) for row in a])


def _vector(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    per_line = max(1, int(math.floor((LINEWIDTH - indent) / (fmt.max_width + 2))))  # noqa: RUF046
    if summarize and a.shape[0] > 2 * EDGEITEMS:
        data = [fmt.format(v) for v in a[:EDGEITEMS]] + [" ..."] + [fmt.format(v) for v in a[-EDGEITEMS:]]
    else:
        data = [fmt.format(v) for v in a]
    lines = [", ".join(data[i : i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if a.ndim == 0:
        return fmt.format(a.item())
    if a.ndim == 1:
        return _vector(a, indent, summarize, fmt)
    if summarize and a.shape[0] > 2 * EDGEITEMS:
        rows = [_nested(a[i], indent + 1, summarize, fmt) for i in range(EDGEITEMS)] + ["..."]
        rows += [_nested(a[i], indent + 1, summarize, fmt) for i in range(len(a) - EDGEITEMS, len(a))]
    else:
        rows = [_nested(a[i], indent + 1, summarize, fmt) for i in range(a.shape[0])]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _dtype_name(dtype: np.dtype) -> str:
    return "torch." + ("bool" if dtype.kind == "b" else dtype.name)


def tensor_repr(t: Any) -> str:
    """``tensor([0.9000, 1.9000], requires_grad=True)`` and the like."""
    a = t._data
    prefix = "tensor("
    indent = len(prefix)
    suffixes = []
    if a.size == 0:
        body = "[]"
        if a.ndim != 1:
            suffixes.append(f"size={tuple(a.shape)}")
        if a.dtype != default_dtype():  # no element to tell an int64 from a float: PyTorch names any non-default dtype
            suffixes.append(f"dtype={_dtype_name(a.dtype)}")
    else:
        if a.dtype not in (default_dtype().dtype, np.dtype("int64"), np.dtype("bool")):
            suffixes.append(f"dtype={_dtype_name(a.dtype)}")
        summarize = a.size > THRESHOLD
        body = _nested(a, indent, summarize, _Formatter(_summarized(a) if summarize else a))
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name().rpartition('::')[2]}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    out = [prefix + body]
    last = len(out[0]) - out[0].rfind("\n") + 1
    for suffix in suffixes:
        if last + len(suffix) + 2 > LINEWIDTH:
            out.append(",\n" + " " * indent + suffix)
            last = indent + len(suffix)
        else:
            out.append(", " + suffix)
            last += len(suffix) + 2
    return "".join(out) + ")"
