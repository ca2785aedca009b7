"""The floating-point formats a case can ask for, as numpy dtypes.

``float64``, ``float32`` and ``float16`` are numpy's own; ``bfloat16`` is the ``ml_dtypes``
package's numpy dtype (the one JAX uses), imported only when a case asks for it.  The two
16-bit formats are *narrow*: numpy's float forward in them is emulated as engines on a CPU
compute them, each op in float32 and its result rounded to the format (see :func:`round_to`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir.expr import numpy_eval

__all__ = ["NARROW", "PRECISIONS", "epsilon", "is_narrow", "narrow_eval", "numpy_dtype", "round_to"]

PRECISIONS = ("float64", "float32", "float16", "bfloat16")
NARROW = ("float16", "bfloat16")


def numpy_dtype(dtype: Any) -> np.dtype:
    """``dtype`` (a name, numpy dtype or type) as a numpy dtype; ``"bfloat16"`` needs ``ml_dtypes``."""
    if isinstance(dtype, str) and dtype == "bfloat16":
        try:
            import ml_dtypes
        except ImportError as exc:  # pragma: no cover - ml_dtypes comes with jax and the torch extra
            raise ValueError("dtype bfloat16 needs the ml_dtypes package: pip install ml_dtypes") from exc
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def is_narrow(dtype: Any) -> bool:
    """Whether ``dtype`` is one of the 16-bit formats (float16, bfloat16)."""
    return numpy_dtype(dtype).name in NARROW


def epsilon(dtype: Any) -> float:
    """The gap between 1 and the next value of ``dtype``."""
    dt = numpy_dtype(dtype)
    if dt.name == "bfloat16":
        return 2.0**-7
    return float(np.finfo(dt).eps)


def round_to(value: Any, dtype: np.dtype) -> Any:
    """``value`` rounded to ``dtype`` and held in float32 (a narrow format's values are all float32's);
    non-float values (the booleans of a condition) pass unchanged."""
    a = np.asarray(value)
    if a.dtype.kind != "f" and a.dtype.name not in NARROW:
        return value
    with np.errstate(all="ignore"):
        return np.asarray(a.astype(dtype), dtype=np.float32)


def narrow_eval(expr: Any, inputs: dict[str, Any], dtype: np.dtype) -> dict[int, np.ndarray]:
    """Every node's value of ``expr`` as written, by ``id(node)``, as a CPU engine computes a 16-bit
    format: each op's numpy forward in float32, its result rounded to ``dtype`` (inputs and literals
    rounded too).  :func:`symgrad.ir.expr.numpy_eval`'s ``values=True`` for the narrow formats."""
    return numpy_eval(expr, inputs, values=True, each=lambda value: np.asarray(round_to(value, dtype)))
