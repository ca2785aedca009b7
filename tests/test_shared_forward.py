"""The written forward, evaluated once, lends the values of some of its nodes to the lambdified reference
(symbolic/engine.py: _shared_pattern): the reference must come out bitwise the same as without it."""

import numpy as np
import pytest

import symgrad
from symgrad.ir.expr import numpy_eval
from symgrad.ir.parse import parse
from symgrad.symbolic import engine

EXPRS = [
    "3*a**3 - b**2 + sin(a)*exp(-b) + tanh(a*b) + log(a+b)",
    "sin(a) * cos(a) + tan(a - b)",
    "exp(-a) * sinh(a*b) / cosh(b)",
    "log(a) + log(b - a)",  # nan where written and formula are undefined
    "tanh(a*b) * tanh(a*b) + exp(a + b)",
    # constant powers: the printed code computes x**3 and x**-2 with ops.power, as the written forward does
    "a**3 + b",
    "(a + b)**3 * sin(a)",
    "a**-2 - b**3",
    "exp(a) * (a - b)**-2 + a**1.5",
]
POWERS = EXPRS[-4:]
NASTY = np.array([0.5, -1.5, 0.0, -0.0, 1e-310, 700.0, -800.0, np.inf, -np.inf, np.nan, 3.0, 0.1, 1.7, -2.3, 0.37, 5.9])


def _plan(text):
    e = parse(text)
    return e, engine._elementwise_plan(engine.Keyed(e), ("a", "b"), 1)


@pytest.mark.parametrize("text", EXPRS)
def test_shared_values_give_the_same_bits(text):
    e, plan = _plan(text)
    assert plan.shared, "nothing shared: the test would check nothing"
    a = np.repeat(NASTY, NASTY.size)
    b = np.tile(NASTY, NASTY.size)
    arrays = {"a": a, "b": b}
    with np.errstate(all="ignore"):
        shared, root = engine._reference(plan, e, arrays, None)
        plain = plan.compiled.numpy(a, b)
    for x, y in zip(shared, plain):
        np.testing.assert_array_equal(np.broadcast_to(x, a.shape).view(np.int64),
                                      np.broadcast_to(y, a.shape).view(np.int64))
    np.testing.assert_array_equal(root, numpy_eval(e, arrays, np.float64))


@pytest.mark.parametrize("text", ["sin(-a) + b", "cos(-a) * b", "exp(log(a)) * b", "log(exp(a)) + b",
                                  "sin(a*a) + b", "exp(a - a) * b", "sin(2*a) + b",
                                  # (a*b)**3 is a**3*b**3 and (-a)**3 is -a**3 to sympy; numpy's ** has a**2
                                  "(a*b)**3 + b", "(-a)**3 + b", "a**2 + b"])
def test_nodes_sympy_rewrites_are_not_shared(text):
    # sin(-a) is -sin(a) to sympy, exp(log(a)) is a: the written value is not what the formula computes
    _, plan = _plan(text)
    assert plan.shared == ()


@pytest.mark.parametrize("text", POWERS)
def test_a_constant_power_of_an_input_is_shared(text):
    _, plan = _plan(text)
    assert any(p[0] == "pow" for p in plan.shared)


def test_a_shared_node_is_found_again_in_an_equal_expression():
    _, plan = _plan("sin(a)*exp(-b)")
    assert [p for p, _ in plan.shared] == ["sin", "exp"]
    e2 = parse("sin(a)*exp(-b)")  # a new tree: its nodes are found by pattern, not by identity
    a, b = np.linspace(-2, 2, 7), np.linspace(1, 3, 7)
    out, _ = engine._reference(plan, e2, {"a": a, "b": b}, None)
    np.testing.assert_array_equal(out[1], np.cos(a) * np.exp(-b))


def test_check_with_shared_nodes_passes_and_its_twin_with_a_wrong_gradient_fails():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 2, 1000), rng.uniform(0.5, 2, 1000)
    assert symgrad.check("sin(a)*exp(-b) + tanh(a*b)", a=a, b=b)
    bad = symgrad.check("sin(a)*exp(-b) + tanh(a*b)", a=a, b=b, expect={"a": "cos(a)*exp(-b)"})
    assert not bad and any(c.name == "expect a" and not c.passed for c in bad.comparisons)


def test_a_shared_node_that_cse_splits_is_still_taken_from_the_written_forward():
    # log(a + b) and 1/(a + b) share a + b: CSE names it, and the log is then log of that name
    import inspect

    _, plan = _plan("log(a+b) + 1/(a+b) + b")
    assert [p for p, _ in plan.shared] == ["log"]
    assert "log(" not in inspect.getsource(plan.compiled.numpy_shared)
    assert "log(" in inspect.getsource(plan.compiled.numpy)  # the twin: without the shared value, it is computed


def test_a_shared_node_that_cse_names_whole_after_splitting_it_is_still_taken_from_the_written_forward():
    # (a + b)**3 * sin(a): CSE names a + b (used by the derivative's (a + b)**2), then the cube whole
    import inspect

    _, plan = _plan("(a + b)**3 * sin(a)")
    assert ("pow", ("add", "a", "b"), 3.0) in plan.shared
    assert "_power(" not in inspect.getsource(plan.compiled.numpy_shared)
    assert "_power(" in inspect.getsource(plan.compiled.numpy)  # the twin: without the shared value, it is computed
