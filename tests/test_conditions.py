"""Issue 15: comparisons and ``& | ~`` in where()'s condition, each check with a twin that fails."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from symgrad.ir import ops
from symgrad.ir.expr import Call, Var, to_source
from symgrad.ir.parse import ParseError, check_ir, parse

X = {"x": [-1.5, 0.0, 0.5, 2.0], "y": [1.0, 2.0, 0.5, -3.0]}


@pytest.mark.parametrize("symbol, op", [("<", ops.less), ("<=", ops.less_equal), (">", ops.greater),
                                        (">=", ops.greater_equal), ("==", ops.eq), ("!=", ops.not_equal)])
def test_each_comparison_parses_to_its_op_and_prints_back(symbol: str, op: ops.Op) -> None:
    text = f"where(x {symbol} y, x, y)"
    e = parse(text)
    assert isinstance(e, Call) and e.op is ops.where and e.args[0].op is op  # type: ignore[attr-defined]
    assert to_source(e) == text
    assert to_source(parse(f"where({op.name}(x, y), x, y)")) == text  # by name, inside the condition


def test_chains_and_logical_operators_fold_and_round_trip() -> None:
    e = parse("where(0 < x < 1, x, y)")
    cond = e.args[0]  # type: ignore[attr-defined]
    assert cond.op is ops.logical_and and [a.op for a in cond.args] == [ops.less, ops.less]
    for text in ["where((x > 0) & ~(y <= 1) | c, x, y)", "where(~c, x, y)", "where(c & (x != y), x, y)",
                 "where(sin(x) + 1 >= y*2, x, y)", "where((x > 0) | (y > 0) & (x < y), x, y)"]:
        e = parse(text)
        assert repr(parse(to_source(e))) == repr(e), text


@pytest.mark.parametrize("text, column, start", [
    ("x + (y < z)", 6, "comparison 'y < z' is not allowed outside where()'s condition"),
    ("where(x, x > 0, y)", 10, "comparison 'x > 0' is not allowed outside where()'s condition"),
    ("where(x > (y > 1), x, y)", 12, "comparison 'y > 1' is not allowed outside"),
    ("sin(x < 1)", 5, "comparison 'x < 1' is not allowed outside"),
    ("less(x, y)", 1, "less() is a condition, allowed only as where()'s first argument"),
    ("where(x > 0 and y > 0, x, y)", 7, "operator 'and' is not allowed; write '&'"),
    ("where(not x, x, y)", 7, "operator 'not' is not allowed; write '~'"),
    ("where(x is y, x, y)", 7, "operator 'is' is not allowed"),
    ("x & (y > 0)", 3, "operator '&' is not allowed outside where()'s condition"),
    ("~x", 1, "operator '~' is not allowed outside where()'s condition"),
])
def test_conditions_elsewhere_are_refused_with_the_position(text: str, column: int, start: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert info.value.reason.startswith(start) and info.value.column == column, (info.value.reason, info.value.column)


def test_traced_conditions_are_checked_as_parsed_ones() -> None:
    x = Var("x")
    assert check_ir(symgrad.where((x > 0) & ~(x < -1), x, -x)) == "where((x > 0) & (~(x < -1)), x, -x)"
    for bad in ((x > 0) * x, symgrad.where(x > 0, x > 1, x), x > 0):
        with pytest.raises(ParseError, match="is a condition, allowed only as where"):
            check_ir(bad)


@pytest.mark.parametrize("backend", ["symgrad", "torch", "autograd"])
def test_where_with_comparisons_passes_at_order_2_with_random_grad_output(backend: str) -> None:
    pytest.importorskip({"symgrad": "numpy"}.get(backend, backend))
    g = [0.3, -1.2, 0.7, 2.0]
    for expr in ["where(x > 0, x * y, sin(x))", "where((x >= 0) & (y < 1.5) | (x == y), x**2 * y, exp(y))",
                 "where(~(x * y != 1), x, y * y)"]:
        r = symgrad.check(expr, inputs=X, grad_output=g, order=2, backend=backend)
        assert r.status == "pass" and r.mode == "elementwise", r.table()


def test_where_gives_the_gradient_to_the_chosen_branch_only_and_its_twin() -> None:
    # x = 0 is the jump: x > 0 is false there, so the y-branch (0.0) is chosen and x gets 0
    inputs = {"x": [-1.0, 0.0, 2.0]}
    assert symgrad.check("where(x > 0, 3 * x, 0.0)", inputs=inputs, expect={"x": [0.0, 0.0, 3.0]}).status == "pass"
    assert symgrad.check("where(x > 0, 3 * x, 0.0)", inputs=inputs, expect={"x": [0.0, 3.0, 3.0]}).status == "fail"
    assert symgrad.check("where(x >= 0, 3 * x, 0.0)", inputs=inputs, expect={"x": [0.0, 3.0, 3.0]}).status == "pass"


def _both_branches(x: symgrad.Tensor) -> symgrad.Tensor:
    """A wrong where: the right value, but the gradient of the x-branch reaches every element."""
    value = symgrad.where(x > 0, 3 * x, 0.0 * x)
    return value.detach() + 3 * (x - x.detach())


def test_a_function_that_sends_gradient_to_both_branches_fails_against_where() -> None:
    right = symgrad.check_function(lambda x: symgrad.where(x > 0, 3 * x, 0.0 * x), "where(x > 0, 3 * x, 0.0)",
                                   backend="symgrad", x=[-1.0, 0.5, 2.0])
    assert right.status == "pass", right.table()
    wrong = symgrad.check_function(_both_branches, "where(x > 0, 3 * x, 0.0)", backend="symgrad", x=[-1.0, 0.5, 2.0])
    assert wrong.status == "fail"


def test_expanded_mode_takes_conditions_on_reductions() -> None:
    inputs = {"x": np.full((2, 3), 0.3), "w": np.arange(6.0).reshape(3, 2) * 0.2}
    r = symgrad.check("sum(where(~(x @ w > 0.5), x @ w, 0.0))", inputs=inputs, order=2)
    assert r.status == "pass" and r.mode == "expanded", r.table()
    assert symgrad.check("sum(where(~(x @ w > 0.5), x @ w, 0.0))", inputs=inputs, wrt=["w"],
                         expect={"w": [[0.3, 0.0], [0.3, 0.0], [0.3, 0.0]]}).status == "fail"


def test_a_comparison_at_a_rounding_jump_is_not_a_false_failure() -> None:
    # 0.1 * 3 is 0.30000000000000004 in floats, above the literal 0.3; the exact product of the
    # float 0.1 by 3 is above it too, so both take the same branch and the case is compared
    r = symgrad.check("where(x * 3 > 0.3, x * x, -x)", inputs={"x": [0.1, 0.2]})
    assert r.status == "pass", r.table()
