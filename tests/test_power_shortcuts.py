"""``x**3`` and ``x**-2`` as torch computes them (``x*x*x``, ``1/(x*x)``), on the tape, in the written
forward and in the printed reference (ir/ops.py: power; symbolic/compile.py: _print_Pow)."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from symgrad.ir import ops
from symgrad.ir.expr import numpy_eval
from symgrad.ir.parse import parse
from symgrad.mutation import Mutant, MutantBackend
from symgrad.symbolic import engine

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


@pytest.mark.parametrize("text", ["a**3 + b", "(a + b)**3 * sin(a)", "a**-2 - b**3", "exp(a) * (a - b)**-2"])
def test_reference_prints_the_shortcuts_and_matches_the_written_forward(text):
    e = parse(text)
    plan = engine._elementwise_plan(engine.Keyed(e), ("a", "b"), 1)
    assert any(p[0] == "pow" for p in plan.shared), "the cube is not shared: nothing checked"
    a, b = X[:500], X[500:1000]
    with np.errstate(all="ignore"):
        shared, root = engine._reference(plan, e, {"a": a, "b": b}, None)
        plain = plan.compiled.numpy(a, b)  # every power computed by the printed code itself
        written = numpy_eval(e, {"a": a, "b": b}, np.float64)
    for x, y in zip(shared, plain):
        np.testing.assert_array_equal(bits(np.broadcast_to(x, a.shape)), bits(np.broadcast_to(y, a.shape)))
    np.testing.assert_array_equal(bits(root), bits(written))


def test_a_cube_check_passes_and_its_twin_with_a_wrong_gradient_fails():
    x = np.linspace(-2.0, 3.0, 11) + 0.05
    assert symgrad.check("x**3 - x**-2", x=x).status == "pass"
    # the twin: pow's VJP off by 1e-4 of itself
    wrong = MutantBackend(Mutant("pow", 0, "scale"))
    assert symgrad.check("x**3 - x**-2", x=x, backend=wrong).status == "fail"
