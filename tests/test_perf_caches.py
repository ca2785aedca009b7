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
