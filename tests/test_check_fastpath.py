"""The fast paths of a warm ``symgrad.check``: the blocked comparison, the in-process caches, the shared
forward.  Each fast result is held against the reference path (or a fresh computation), and each
passing check has a twin that must fail."""

from __future__ import annotations

import numpy as np
import pytest
from test_compare_fast import _both  # the comparison by the fast path and by the reference path

import symgrad
import symgrad.checking.compare as C


def _same(fast, full):
    f, g = fast.to_dict(), full.to_dict()
    assert str(f) == str(g), (f, g)  # str: nan == nan


def test_an_undefined_element_does_not_hide_an_infinite_reference():
    # the reference is inf at one element and nan (undefined) at another: a finite tape value must fail
    fast, full = _both(np.array([0.0, 5.0]), np.array([np.nan, np.inf]))
    assert not fast.passed and fast.mismatched == 1 and fast.worst_index == (1,)
    _same(fast, full)
    fast, full = _both(np.array([0.0, np.inf]), np.array([np.nan, np.inf]))  # twin: equal infinities pass
    assert fast.passed and fast.undefined == 1
    _same(fast, full)


N = 3 * C._BLOCK + 17  # several blocks and a ragged last one


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    e = rng.normal(size=N) * 10.0 ** rng.integers(-5, 5, size=N)
    return e * (1 + 1e-9 * rng.normal(size=N)), e


def test_blocked_stats_equal_the_full_path_across_blocks():
    a, e = _arrays()
    fast, full = _both(a, e)
    assert fast.passed and fast.max_ulp > 0
    _same(fast, full)
    rng = np.random.default_rng(3)
    undefined, kink = rng.random(N) < 0.05, rng.random(N) < 0.05
    fast, full = _both(a, e, undefined=undefined, at_kink=kink)
    assert fast.passed and fast.undefined == np.count_nonzero(undefined) and fast.at_kink > 0
    _same(fast, full)


def test_the_worst_element_in_a_late_block_and_the_first_of_ties():
    e = np.ones(N)
    a = e.copy()
    late = 2 * C._BLOCK + 5
    a[late] = 1 + 1e-8  # the largest error, in the third block
    a[7] = 1 + 5e-9
    fast, full = _both(a, e)
    assert fast.passed and fast.worst_index == (late,)
    _same(fast, full)
    a[C._BLOCK + 1] = 1 + 1e-8  # a tie in an earlier block: the first one is the worst, as argmax picks
    fast, full = _both(a, e)
    assert fast.worst_index == (C._BLOCK + 1,)
    _same(fast, full)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_opposite_signs_near_zero_count_their_ulps(dtype):
    # a large atol lets values of opposite signs pass: their ULP distance must not come from a wrapped
    # difference of bit patterns (the same-sign shortcut must not apply)
    a, e = _arrays(1)
    a[:50], e[:50] = 1e-9, -1e-9
    a[60], e[60] = -0.0, 0.0
    fast, full = _both(a, e, atol=1e-6, dtype=dtype)
    assert fast.passed
    _same(fast, full)


def test_one_wrong_element_in_a_million_fails_with_its_index_count_and_ulp():
    rng = np.random.default_rng(0)
    e = rng.uniform(0.5, 2.0, 10**6)
    a = e.copy()
    good = C.compare("x", a, e, rtol=1e-7, atol=1e-7)
    assert good.passed and good.max_ulp == 0
    a[654_321] = e[654_321] * (1 + 1e-6)  # the twin: one element off by 1e-6 relative
    bad = C.compare("x", a, e, rtol=1e-7, atol=1e-7)
    assert not bad.passed and bad.mismatched == 1 and bad.worst_index == (654_321,)
    assert bad.ulp == C.ulp_distance(a[654_321], e[654_321])[()] and bad.ulp > 1000
    assert bad.rel_err == pytest.approx(1e-6, rel=1e-6)
    assert symgrad.check("x**2", x=e) and not symgrad.check("x**2", x=e, expect={"x": "2*x + where(x > 1.9999, 1e-3, 0.0)"})


def test_rounded_literals_are_cached_per_tree_and_dtype():
    from symgrad.ir.expr import Const
    from symgrad.ir.parse import parse
    from symgrad.symbolic import round_literals

    tree = parse("maximum(x, 0.1) * pi")
    r32 = round_literals(tree, np.dtype(np.float32))
    assert r32 is round_literals(tree, np.dtype(np.float32))  # a hit: the same tree back
    consts = sorted(n.value for n in r32.walk() if isinstance(n, Const))
    assert consts == sorted([float(np.float32(0.1)), float(np.float32(np.pi))])
    # the twins: float64 keeps the literals, float16 rounds them its own way
    assert round_literals(tree, np.dtype(np.float64)) is tree
    r16 = round_literals(tree, np.dtype(np.float16))
    assert sorted(n.value for n in r16.walk() if isinstance(n, Const)) == sorted(
        [float(np.float16(0.1)), float(np.float16(np.pi))])
    plain = parse("x * 0.5")  # exact in float32: the tree itself, every time
    assert round_literals(plain, np.dtype(np.float32)) is plain


def test_mode_facts_are_cached_per_tree_and_mode():
    x = np.linspace(0.5, 2.0, 6)
    assert symgrad.check("sum(x * x)", x=x).mode == "elementwise"
    assert symgrad.check("sum(x * x)", x=x, mode="expanded").mode == "expanded"  # the twin: another mode
    assert symgrad.check("cumsum(x) * x", x=x).mode == "expanded"
    for _ in range(2):  # refused every time, never cached as an answer
        report = symgrad.check("cumsum(x) * x", x=x, mode="elementwise")
        assert report.status == "error" and "elementwise" in report.reason
    # a kink in one expression is not carried to another sharing its text prefix
    assert symgrad.check("abs(x) + x", x=np.array([0.0, 1.0]))
    assert not symgrad.check("abs(x) + x", x=np.array([0.0, 1.0]), expect={"x": [2.0, 2.0]})


@pytest.mark.parametrize("expr", [
    "3*a**3 - b**2 + sin(a)*exp(-b) + tanh(a*b) + log(a+b)",  # shared nodes
    "relu(a - 1) * b + abs(a) / b",  # kinks: the written forward of every node
    "sqrt(a - 1) + b",  # nan where a < 1, a constant derivative in b
    "where(a > 1, a*b, b**2) + log(a - 1.5)",
])
def test_blocked_reference_is_bitwise_the_whole_one(expr):
    from symgrad.ir.parse import parse
    from symgrad.symbolic import differentiate, engine

    rng = np.random.default_rng(4)
    n = 5 * engine._BLOCK + 3
    inputs = {"a": rng.uniform(0.0, 2.0, n), "b": rng.uniform(-2.0, 2.0, n)}
    inputs["a"][:5] = [0.0, 1.0, np.inf, 1.5, np.nan]
    tree = parse(expr)
    blocked = differentiate(tree, inputs, ["a", "b"])
    saved = engine._BLOCK
    engine._BLOCK = 10 * n  # the whole arrays at once
    try:
        whole = differentiate(tree, inputs, ["a", "b"])
    finally:
        engine._BLOCK = saved
    np.testing.assert_array_equal(blocked.value, whole.value)
    for seq, d in whole.derivatives.items():
        np.testing.assert_array_equal(blocked.derivatives[seq].value, d.value)
        np.testing.assert_array_equal(blocked.derivatives[seq].undefined, d.undefined)
    # the twin: a wrong gradient in one element of a late block still fails
    clean = {"a": rng.uniform(1.6, 2.0, n), "b": rng.uniform(0.5, 2.0, n)}
    right = differentiate(tree, clean, ["a", "b"]).derivatives[("b",)].value
    assert symgrad.check(expr, inputs=clean, expect={"b": right})
    wrong = right.copy()
    wrong[n - 2] += 1e-3
    report = symgrad.check(expr, inputs=clean, expect={"b": wrong})
    assert not report and any(c.name == "expect b" and c.mismatched == 1 and c.worst_index == (n - 2,)
                              for c in report.comparisons)
