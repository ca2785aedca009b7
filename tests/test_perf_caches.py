"""The in-process caches behind a fast check (parse, node orders, expression keys, compiled plans)
never hand one expression's, dtype's or order's result to another: each hit has a twin that must miss."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from symgrad.ir.expr import Var, variables
from symgrad.ir.limits import DEFAULT, Limits
from symgrad.ir.parse import ParseError, parse
from symgrad.symbolic.forms import Keyed


def test_parse_cache_hit_returns_the_same_tree() -> None:
    assert parse("sin(a) * b") is parse("sin(a) * b")


def test_parse_cache_keys_on_the_declared_names() -> None:
    parse("a + c")  # cached without declared names
    with pytest.raises(ParseError):
        parse("a + c", names=["a", "b"])  # the twin: c is undeclared, the cache must not hide it
    assert variables(parse("a + c", names=["a", "c"])) == ["a", "c"]


def test_parse_cache_keys_on_the_limits() -> None:
    text = "+".join(["a"] * 40)
    parse(text)
    with pytest.raises(ParseError):
        parse(text, limits=Limits(max_nodes=10))  # the same text under tighter limits is refused
    assert parse(text, limits=DEFAULT) is parse(text)


def test_parse_errors_are_not_cached_as_results() -> None:
    for _ in range(2):
        with pytest.raises(ParseError):
            parse("a +")


def test_walk_order_of_a_new_tree_sees_its_new_nodes() -> None:
    inner = parse("sin(a)")
    assert [type(n).__name__ for n in inner.walk()] == ["Var", "Call"]
    outer = inner * Var("b")  # built on a walked subtree
    assert variables(outer) == ["a", "b"]
    assert len(list(outer.walk())) == 4
    assert len(list(inner.walk())) == 2  # the subtree's own order is unchanged


def test_keyed_by_text_and_names() -> None:
    assert Keyed(parse("a * b")) == Keyed(parse("a * b"))
    assert Keyed(parse("a * b")) != Keyed(parse("b * a"))


def test_repeated_check_does_not_reuse_another_expressions_derivative() -> None:
    x = np.linspace(0.5, 2.0, 7)
    assert symgrad.check("x**3", x=x, expect={"x": "3*x**2"})
    # the twin, checked right after with a warm cache: a different expression, the same inputs
    assert not symgrad.check("x**3", x=x, expect={"x": "3*x**3"})
    assert symgrad.check("x**4", x=x, expect={"x": "4*x**3"})
    assert not symgrad.check("x**4", x=x, expect={"x": "3*x**2"})


def test_repeated_check_keys_on_order_and_dtype() -> None:
    x = np.linspace(0.5, 2.0, 7)
    first = symgrad.check("sin(x)", x=x, order=1)
    second = symgrad.check("sin(x)", x=x, order=2)
    assert [c.name for c in first.comparisons] == ["value", "x"]
    assert [c.name for c in second.comparisons] == ["value", "x", "x,x"]
    r32 = symgrad.check("sin(x)", x=x, dtype="float32")
    assert r32 and r32.reference_value.dtype == np.float32
    assert symgrad.check("sin(x)", x=x).reference_value.dtype == np.float64


def test_scalar_ulp_distance_matches_the_vectorised_one() -> None:
    from symgrad.checking.compare import _ulp_one, ulp_distance

    rng = np.random.default_rng(3)
    special = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e308, 3.5e38, -3.5e38, 1e-45, 1e-40]
    values = special + list(rng.normal(size=12)) + list(rng.normal(size=6) * 1e-300)
    for dtype in ("float64", "float32"):
        got = np.array([[_ulp_one(a, e, dtype) for e in values] for a in values])
        want = ulp_distance(np.array(values)[:, None], np.array(values)[None, :], dtype)
        assert np.array_equal(got, want)
    assert _ulp_one(1.0, float(np.nextafter(1.0, 2.0)), "float64") == 1.0
    assert _ulp_one(1.0, float(np.nextafter(1.0, 2.0)), "float32") == 0.0  # the twin: rounds to one float32
    assert _ulp_one(-0.0, 5e-324, "float64") == 1.0
    assert _ulp_one(np.inf, -np.inf, "float64") == np.inf
