"""``x**3`` and ``x**-2`` as torch computes them (``x*x*x``, ``1/(x*x)``), on the tape, in the written
forward and in the printed reference (ir/ops.py: power; symbolic/compile.py: _print_Pow).  That the
reference's powers are bitwise the written forward's is tests/test_shared_forward.py's."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from symgrad.ir import ops
from symgrad.mutation import Mutant, MutantBackend

RNG = np.random.default_rng(7)
X = np.concatenate([RNG.uniform(-30.0, 30.0, 20000), [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-310, 1e200, -3.0]])


def bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(np.int64 if a.dtype == np.float64 else np.int32)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("c", [3, -2, 3.0])
def test_the_tape_computes_torchs_bits(dtype, c):
    torch = pytest.importorskip("torch")
    x = X.astype(dtype)
    with np.errstate(all="ignore"):
        ours = (symgrad.tensor(x) ** c).numpy()
        plain = np.power(x, dtype(c))
    theirs = (torch.tensor(x) ** c).numpy()
    np.testing.assert_array_equal(bits(ours), bits(theirs))
    # the twin: numpy's pow is not torch's there, so the comparison above can fail
    assert (bits(plain) != bits(theirs)).any()


def test_other_exponents_and_dtypes_keep_numpys_power():
    x = X[:100]
    with np.errstate(all="ignore"):
        for c in (4, 1.5, -3, 2):
            np.testing.assert_array_equal(bits(ops.power(x, c)), bits(np.power(x, c)))
        h = x.astype(np.float16)
        assert ops.power(h, 3).dtype == np.float16
        np.testing.assert_array_equal(ops.power(h, 3).view(np.int16), np.power(h, 3).view(np.int16))
    assert ops.power(2, 3) == 8 and type(ops.power(2, 3)) is not float  # numbers: np.power's integers


def test_a_cube_check_passes_and_its_twin_with_a_wrong_gradient_fails():
    x = np.linspace(-2.0, 3.0, 11) + 0.05
    assert symgrad.check("x**3 - x**-2", x=x).status == "pass"
    # the twin: pow's VJP off by 1e-4 of itself
    wrong = MutantBackend(Mutant("pow", 0, "scale"))
    assert symgrad.check("x**3 - x**-2", x=x, backend=wrong).status == "fail"
