"""A tie or kink that libm rounding decides is *at a kink (rounding)*, not a verdict.

Where the fuzzer ran, numpy's ``sinh(erfc(-1.0))`` was ``0x1.89ee6ef3e95b5p+1`` and torch's an ulp above it
(on an AVX2 machine without AVX-512, numpy's is torch's: which ulp is machine-dependent).  In the fuzz case
below the engine folds the constant side of ``maximum`` with numpy and computes the x side on a tensor:
numpy's forward sees a tie (1/2 to each side), torch does not (all of it to x).  Which one is right
depends on the libm, so the element is counted and not compared.  A tie made only of inputs, exact
literals and correctly rounded ops is compared as before, its convention included.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from test_kinks import engine, kinks

import symgrad
from symgrad.backends.symgrad_tape import SymgradBackend
from symgrad.ir import ops

FUZZ = "(abs(maximum(sinh(erfc(x)), sinh(erfc(-1.0)))) + 0.5)**x"  # fuzz-84090c8274c4 (seed 14, torch)
X = [0.0, 0.0, -1.0]  # element 2 is the tie
NUMPY = float(ops.sinh.forward(ops.erfc.forward(-1.0)))  # what the op table folds the constant side to
NEXT = float(np.nextafter(NUMPY, np.inf))  # torch's value where the fuzzer ran
FOUND = float.fromhex("0x1.89ee6ef3e95b5p+1")  # numpy's value there

# the ops whose float result every engine gets alike (IEEE rounds it once, or no arithmetic is done): a
# new op is not correctly rounded unless its entry says so, and then it is added here
CORRECTLY_ROUNDED = {
    "abs", "add", "broadcast_to", "cast", "ceil", "clip", "clone", "concatenate", "copysign", "detach",
    "div", "eq", "expand_dims", "flip", "floor", "greater", "greater_equal", "hardtanh", "index",
    "index_put", "less", "less_equal", "logical_and", "logical_not", "logical_or", "max", "maximum",
    "min", "minimum", "mul", "neg", "not_equal", "reciprocal", "relu", "reshape", "round", "sign", "sqrt",
    "square", "squeeze", "stack", "step", "sub", "transpose", "where",
}


class WrongAt(SymgradBackend):
    """symgrad's tape, with 0.5 added to element ``index`` of every gradient."""

    name = "libm-wrong-at"

    def __init__(self, index: int) -> None:
        self.index = index

    def gradients(self, expr, inputs, wrt, order, grad_output):  # type: ignore[no-untyped-def]
        value, grads = super().gradients(expr, inputs, wrt, order, grad_output)
        for seq, g in grads.items():
            g = np.array(g, copy=True, order="C")  # C order: reshape(-1) is a view (a transposed gradient too)
            g.reshape(-1)[self.index] += 0.5
            grads[seq] = g
        return value, grads


def test_the_libm_values_differ_as_the_fuzzer_found() -> None:
    torch = pytest.importorskip("torch")
    assert abs(NUMPY - FOUND) <= math.ulp(FOUND)  # FOUND, or an ulp above it on another machine's libm
    got = float(torch.sinh(torch.erfc(torch.tensor(-1.0, dtype=torch.float64))))
    assert abs(got - NUMPY) <= math.ulp(NUMPY)  # an ulp above numpy's on the torch the fuzzer ran
    # Python's own libm is another: math.erfc is two ulps above the op table's erfc here
    assert abs(float(np.sinh(math.erfc(-1.0))) - NUMPY) <= 4 * math.ulp(NUMPY)


@pytest.mark.parametrize("backend", ["symgrad", "torch"])
def test_the_fuzz_case_passes_with_the_tie_at_a_kink(backend: str) -> None:
    report = symgrad.check(FUZZ, backend=engine(backend), x=X, grad_output="random")
    assert report.status == "pass", report.table()
    assert kinks(report) == {"x": 1}
    assert "at a kink (rounding) x 1/3" in report.summary_line()


def test_a_wrong_gradient_beside_the_libm_tie_still_fails() -> None:
    report = symgrad.check(FUZZ, backend=WrongAt(0), x=X, grad_output="random")
    assert report.status == "fail"
    assert {c.name: c.mismatched for c in report.comparisons if not c.passed} == {"x": 1}
    # the same error at the tie itself is not compared: that is the element rounding decides
    assert symgrad.check(FUZZ, backend=WrongAt(2), x=X, grad_output="random").status == "pass"


def test_a_wrong_gradient_beside_the_libm_tie_fails_on_torch() -> None:
    torch = pytest.importorskip("torch")
    c = NUMPY

    def wrong(x):  # 1% off in the exponent: wrong at the x = 0 elements, not only at the tie
        return (torch.abs(torch.maximum(torch.sinh(torch.erfc(x)), torch.tensor(c, dtype=x.dtype))) + 0.5) ** (1.01 * x)

    assert symgrad.check_function(wrong, FUZZ, inputs={"x": X}).status == "fail"


@pytest.mark.parametrize("backend", ["symgrad", "torch"])
def test_a_kink_argument_an_ulp_off_zero_through_libm_is_at_a_kink(backend: str) -> None:
    # numpy's x side is NUMPY, an ulp below the literal: no tie in numpy, a tie in torch's libm
    expr = f"maximum(sinh(erfc(x)), {NEXT!r}) * x"
    report = symgrad.check(expr, backend=engine(backend), x=[-1.0, 0.5])
    assert report.status == "pass", report.table()
    assert kinks(report) == {"x": 1}


def test_a_kink_argument_beyond_the_window_is_compared() -> None:
    torch = pytest.importorskip("torch")
    far = NUMPY
    for _ in range(5):  # 5 ulps above numpy's x side: no libm rounds that far
        far = float(np.nextafter(far, np.inf))
    expr = f"maximum(sinh(erfc(x)), {far!r}) * x"
    report = symgrad.check(expr, x=[-1.0, 0.5])
    assert report.status == "pass" and not kinks(report), report.table()

    def wrong(x):  # x wins there: as if the branch were the other one
        s = torch.sinh(torch.erfc(x))
        return torch.where(s >= far - 1e-12, s, torch.tensor(far, dtype=x.dtype)) * x

    assert symgrad.check_function(wrong, expr, inputs={"x": [-1.0, 0.5]}).status == "fail"


@pytest.mark.parametrize("expr", ["maximum(x, 0.5)", "maximum(x*2, 1.0)", "minimum(sqrt(x), 0.5) + abs(x - 0.25)"])
def test_a_tie_without_libm_is_still_compared(expr: str) -> None:
    x = [0.25, 0.5, 2.0]  # a tie at 0.25 or 0.5: exact, in every engine
    report = symgrad.check(expr, x=x)
    assert report.status == "pass" and not kinks(report), report.table()


def test_a_wrong_tie_share_without_libm_still_fails() -> None:
    torch = pytest.importorskip("torch")
    half, one = torch.tensor(0.5, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    pairs = {  # expression: (torch's own, one that gives all of the tie to x as if x won it)
        "maximum(x, 0.5)": (lambda x: torch.maximum(x, half), lambda x: torch.where(x >= 0.5, x, half)),
        "maximum(x*2, 1.0)": (lambda x: torch.maximum(x * 2, one), lambda x: torch.where(x * 2 >= 1.0, x * 2, one)),
    }
    for expr, (right, whole_to_x) in pairs.items():
        assert symgrad.check_function(right, expr, inputs={"x": [0.5, 2.0]}).status == "pass", expr
        report = symgrad.check_function(whole_to_x, expr, inputs={"x": [0.5, 2.0]})
        assert report.status == "fail" and not kinks(report), expr


def test_exact_libm_values_keep_the_tie_compared() -> None:
    # sin(0) = 0 and exp(0) = 1 in every libm; elu returns its argument above 0: the convention is checked
    for expr, x in (("maximum(sin(x), 0.0)", 0.0), ("maximum(exp(x), 1.0)", 0.0), ("maximum(elu(x), 0.75)", 0.75)):
        report = symgrad.check(expr, x=[x, 2.0])
        assert report.status == "pass" and not kinks(report), expr
        assert symgrad.check(expr, x=[x, 2.0], backend=WrongAt(0)).status == "fail", expr


def test_a_libm_tie_in_a_max_reduction_is_at_a_kink() -> None:
    # max over [sinh(erfc(x)), NEXT]: one ulp apart in numpy, a tie in torch's libm
    expr = f"max(stack((sinh(erfc(x)), {NEXT!r})))"
    report = symgrad.check(expr, x=-1.0, mode="expanded")
    assert kinks(report) == {"x": 1}
    # a unique maximum of libm values is no tie: compared
    unique = symgrad.check("max(sinh(erfc(x)))", x=[-1.0, 0.0], mode="expanded")
    assert unique.status == "pass" and not kinks(unique), unique.table()
    assert symgrad.check("max(sinh(erfc(x)))", x=[-1.0, 0.0], mode="expanded", backend=WrongAt(0)).status == "fail"


def test_every_op_says_whether_it_is_correctly_rounded() -> None:
    table = {op.name: op.correctly_rounded for op in ops.OPS.values()}
    assert {name for name, cr in table.items() if cr} == CORRECTLY_ROUNDED
    # not: libm functions, pow, the sums whose order differs between engines
    # (square and reciprocal are: x*x and 1/x, one IEEE operation in every engine, as mul and div)
    assert not any(table[n] for n in ("sinh", "erfc", "exp", "pow", "sum", "mean", "matmul", "cumsum"))
    assert ops.Op("custom", 1, np.sin, (None,)).correctly_rounded is False  # a user's op: not unless it says so


def test_a_float32_tie_of_tanh_is_at_a_kink() -> None:
    # float32 tanh(arctanh(0.75)) rounds to 0.75: a tie in numpy's float32 forward, not in every libm's
    x = np.array([np.arctanh(np.float32(0.75)), 0.1], dtype=np.float32)
    report = symgrad.check("maximum(tanh(x), 0.75)", dtype="float32", x=x)
    assert report.status == "pass" and kinks(report) == {"x": 1}
    assert symgrad.check("maximum(tanh(x), 0.75)", dtype="float32", x=x, backend=WrongAt(1)).status == "fail"


def test_float32_ties_are_judged_in_float32_ulps() -> None:
    from symgrad.ir.expr import numpy_eval
    from symgrad.ir.parse import parse

    s32 = numpy_eval(parse("sinh(erfc(x))", names=["x"]), {"x": np.array(-1.0, dtype=np.float32)})
    up = np.float32(s32)
    for _ in range(2):  # 2 float32 ulps (1e-7 apart): far beyond float64's window, inside float32's
        up = np.nextafter(up, np.float32(np.inf))
    expr = f"maximum(sinh(erfc(x)), {float(up)!r}) * x"
    assert kinks(symgrad.check(expr, x=[-1.0, 0.5], dtype="float32")) == {"x": 1}
    assert not kinks(symgrad.check(expr, x=[-1.0, 0.5], dtype="float64"))


@pytest.mark.parametrize("expr, near", [
    ("maximum(sinh(erfc(x)), y)", "sinh(erfc(x))"), ("abs(exp(x) - y) + relu(tanh(x)*y)", "exp(x)"),
    ("clip(sin(x), y, 2.0)", "sin(x)"), ("sign(sinh(x) - y) * x", "sinh(x)"), ("where(cosh(x) > y, x, y)", "cosh(x)"),
    ("floor(exp(x) / y)", "exp(x)"), ("minimum(y / sin(x), 3.0)", "3.0 * sin(x)"),
])
def test_the_cheap_bound_never_drops_a_mark(expr: str, near: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # _may_reach skips the box where no element can be near a kink; it must never skip a marked one
    from symgrad.ir.expr import Call, numpy_eval
    from symgrad.ir.parse import parse
    from symgrad.symbolic import kinks as K

    rng = np.random.default_rng(1)
    x = rng.uniform(0.1, 2.0, 400)
    ir = parse(expr, names=["x", "y"])
    nodes = [n for n in ir.walk() if isinstance(n, Call) and n.op.kink_at is not None]
    y = numpy_eval(parse(near, names=["x"]), {"x": x})  # y on the kink, a few ulps beside it, or far from it
    for i, step in enumerate(rng.integers(-8, 9, x.size)):
        for _ in range(abs(step)):
            y[i] = np.nextafter(y[i], np.inf * step)
    y[::3] = rng.uniform(-2.0, 2.0, y[::3].size)
    for dt in (np.float64, np.float32):
        arrays = {"x": x.astype(dt), "y": y.astype(dt)}
        floats = numpy_eval(ir, arrays, values=True)
        centers = [K._kink_value(n, floats) for n in nodes]
        cheap = K._libm_marks(ir, nodes, centers, floats, np.dtype(dt))
        monkeypatch.setattr(K, "_may_reach", lambda *a: True)
        full = K._libm_marks(ir, nodes, centers, floats, np.dtype(dt))
        monkeypatch.undo()
        for c, g in zip(cheap, full):
            if g is None:
                assert c is None
            else:
                assert np.array_equal(np.zeros(g.shape, dtype=bool) if c is None else c, g)
        if dt == np.float64:  # the data reach the kinks: the comparison is not of two empty sets
            assert any(g is not None and g.any() for g in full)


@pytest.mark.parametrize("backend", ["symgrad", "torch"])
def test_a_jump_on_a_libm_value_is_at_a_kink(backend: str) -> None:
    # numpy's sign is 0 there, torch's 1 (its x side an ulp above the literal): the value itself
    expr = f"sign(sinh(erfc(x)) - {NUMPY!r}) + x"
    report = symgrad.check(expr, backend=engine(backend), x=[-1.0, 0.5])
    assert report.status == "pass", report.table()
    assert kinks(report) == {"value": 1, "x": 1}


def test_a_jump_away_from_its_jump_stops_the_libm_uncertainty() -> None:
    # ceil(cbrt(0.5)) is 1 in every libm; the outer ceil at exactly 1 is a jump of an exact value: compared
    expr = "ceil(ceil(cbrt(abs(x) + 0.5))) * x"
    report = symgrad.check(expr, x=[0.0, 1.0])
    assert report.status == "pass" and not kinks(report), report.table()
    assert symgrad.check(expr, x=[0.0, 1.0], backend=WrongAt(0)).status == "fail"


def test_a_tie_of_one_computation_with_itself_is_compared() -> None:
    # both sides are the same libm computation: equal in every engine, so the convention (1/2 each) is checked
    report = symgrad.check("maximum(sin(x), sin(x))", x=[0.3, -1.0])
    assert report.status == "pass" and not kinks(report), report.table()
    assert symgrad.check("maximum(sin(x), sin(x))", x=[0.3, -1.0], backend=WrongAt(0)).status == "fail"
    # a different computation of the same number is not: sin(x) against numpy's folded sin(0.3)
    assert kinks(symgrad.check("maximum(sin(x), sin(0.3))", x=[0.3, -1.0])) == {"x": 1}


def _largest_elementwise_and_bound(op: ops.Op, rng: np.random.Generator) -> tuple[float, float]:
    # one node of ``op`` on random arguments (a condition first for where): the largest size per element,
    # and the bound over all elements the cheap pre-check uses
    from symgrad.ir.expr import Var
    from symgrad.symbolic import kinks as K

    args = [Var(f"x{i}") for i in range(op.arity)]
    node = op(*args)
    values = [rng.uniform(-3.0, 3.0, 50) * 10.0 ** rng.integers(-3, 4, 50) for _ in args]
    if op is ops.where:
        values[0] = values[0] > 0
    floats: dict[int, Any] = {id(a): v for a, v in zip(args, values)}
    floats[id(node)] = op.forward(*values)
    sizes = rng.uniform(0.0, 5.0, (op.arity, 50))  # what the arguments' own subtrees carried
    results = []
    for terms in (K._Terms(floats), K._Bounds(floats)):
        for a, s in zip(args, sizes):
            terms.sizes[id(a)] = s if type(terms) is K._Terms else float(s.max())
        results.append(float(np.max(K._sizes([node], terms)[id(node)])))
    return results[0], results[1]


@pytest.mark.parametrize("name", sorted({op.name for op in ops.OPS.values() if op.error_scale is not None}))
def test_an_error_scale_rule_bounds_itself_over_all_elements(name: str) -> None:
    # the cheap pre-check (_may_reach) runs each op's error_scale on bounds: it must never come out below
    # the rule per element, or a mark is dropped
    rng = np.random.default_rng(3)
    for _ in range(20):
        each, bound = _largest_elementwise_and_bound(ops.OPS[name], rng)
        assert each <= bound * (1 + 1e-12), (name, each, bound)


def test_a_rule_that_divides_without_over_fails_the_bound() -> None:
    # the twin: a division by a magnitude (the largest, in the bound) instead of t.over is no bound
    rule = ops.div.error_scale
    object.__setattr__(ops.div, "error_scale", lambda t: t.s[0] / t.v[1])
    try:
        rng = np.random.default_rng(3)
        assert any(e > b for e, b in (_largest_elementwise_and_bound(ops.div, rng) for _ in range(20)))
    finally:
        object.__setattr__(ops.div, "error_scale", rule)


def test_the_ops_with_an_error_scale_rule() -> None:
    # the arithmetic that carries a term's rounding on; every other op's result is a new term
    assert {op.name for op in ops.OPS.values() if op.error_scale is not None} == {"add", "sub", "mul", "div", "neg", "where"}
