"""The cached evaluation plan behind ``evaluate``, ``numpy_eval``, ``walk`` and ``variables``: the same
calls in the same order and the same values as an uncached interpreter, values freed after their last
use, and no tree kept alive by its plan.  Each check has a twin that fails when the plan is wrong."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import numpy as np
import pytest

from symgrad.ir import expr as ir_expr
from symgrad.ir.expr import Call, Const, Expr, Var, evaluate, numpy_eval, variables
from symgrad.ir.parse import parse

TEXTS = [
    "3*a**3 - b**2 + sin(a)*exp(-b) + tanh(a*b) + log(a+b)",
    "a*a",  # one node twice as the arguments of one call
    "a",  # a leaf at the root
    "2.5",
    "sum(a * b, axis=0) + mean(a)",
    "where(a > b, a, b) * maximum(a, 0.5)",
    "-4.0 + 2.0**3 * a",  # a subtree of literals alone
]


def _uncached(expr: Expr, leaf: Any, call: Any) -> Any:
    """The interpreter without a plan: a post-order walk by recursion, each shared node once."""
    done: dict[int, Any] = {}

    def visit(node: Expr) -> Any:
        if id(node) not in done:
            done[id(node)] = (call(node, [visit(a) for a in node.args]) if isinstance(node, Call)
                              else leaf(node))
        return done[id(node)]

    return visit(expr)


def _recorded(expr: Expr, interpret: Any) -> tuple[Any, list[str]]:
    log: list[str] = []

    def leaf(node: Expr) -> str:
        text = repr(node)
        log.append(text)
        return text

    def call(node: Call, args: list[str]) -> str:
        text = f"{node.op.name}({', '.join(args)})"
        log.append(text)
        return text

    return interpret(expr, leaf, call), log


def _shared_tree() -> Expr:
    a, b = Var("a"), Var("b")
    s = ir_expr.ops.sin(a * b)  # used three times, by two parents
    return (s + s) * (s - Const(1.0)) + b


@pytest.mark.parametrize("text", TEXTS)
def test_the_plan_makes_the_calls_of_the_uncached_interpreter_in_its_order(text: str) -> None:
    e = parse(text)
    for _ in range(2):  # the second run takes the cached plan
        assert _recorded(e, evaluate) == _recorded(e, _uncached)


def test_a_shared_subtree_is_evaluated_once_per_run() -> None:
    e = _shared_tree()
    result, log = _recorded(e, evaluate)
    assert (result, log) == _recorded(e, _uncached)
    assert sum(entry.startswith("sin(") for entry in log) == 1


def test_the_twin_a_wrong_plan_in_the_cache_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    e, other = parse("sin(a) * b"), parse("sin(b) * a")
    monkeypatch.setitem(ir_expr._PLANS, e, ir_expr._build_plan(other))
    assert _recorded(e, evaluate) != _recorded(e, _uncached)


def test_values_are_freed_after_their_last_use() -> None:
    class Value:
        pass

    e = _shared_tree()
    refs: dict[str, weakref.ref] = {}
    alive_at: dict[str, list[str]] = {}

    def leaf(node: Expr) -> Value:
        return Value()

    def call(node: Call, args: list[Value]) -> Value:
        alive_at[node.op.name] = [k for k, r in refs.items() if r() is not None]
        out = Value()
        refs[node.op.name] = weakref.ref(out)
        return out

    result = evaluate(e, leaf, call)
    # sin's value is last used by mul: gone by the add at the root, while mul's own value is still held
    assert "sin" not in alive_at["add"] and "mul" in alive_at["add"]
    # the twin: before its last use (the sub), sin's value is alive
    assert "sin" in alive_at["sub"]
    assert refs["add"]() is result


def test_a_plan_does_not_keep_its_tree_alive() -> None:
    e = parse("cosh(a) * 3.25 + a") * Var("q")  # built outside the parse cache
    evaluate(e, lambda n: 1.0, lambda n, a: sum(a))
    list(e.walk())
    gone = weakref.ref(e)
    assert e in ir_expr._PLANS  # the twin: cached while the tree lives
    del e
    gc.collect()
    assert gone() is None


def test_walk_and_variables_come_from_the_plan_and_stay_fresh() -> None:
    e = parse("b * sin(a) + b")
    nodes = list(e.walk())
    assert nodes == list(e._walk()) and nodes[-1] is e  # the uncached post-order
    assert len(nodes) == len({id(n) for n in nodes})
    names = variables(e)
    assert names == ["b", "a"]
    names.append("z")  # a caller's list is its own: the cache does not change
    assert variables(e) == ["b", "a"]


def _numpy_uncached(e: Expr, inputs: dict[str, Any], literal_rule: bool = True) -> np.ndarray:
    """numpy_eval as callbacks of the uncached interpreter (the shape it had before the plan)."""

    def leaf(node: Expr) -> Any:
        return inputs[node.name] if isinstance(node, Var) else float(node.value)  # type: ignore[attr-defined]

    def call(node: Call, args: list[Any]) -> Any:
        out = node.op.forward(*args, **node.kwargs)
        if literal_rule and isinstance(out, np.floating) and all(isinstance(a, float) for a in args):
            out = float(out)
        return out

    with np.errstate(all="ignore"):
        return np.asarray(_uncached(e, leaf, call))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("text", TEXTS)
def test_numpy_eval_is_bitwise_the_uncached_forward(text: str, dtype: Any) -> None:
    rng = np.random.default_rng(5)
    inputs = {"a": rng.uniform(0.1, 2.0, (3, 4)).astype(dtype), "b": rng.uniform(0.1, 2.0, (3, 4)).astype(dtype)}
    e = parse(text)
    want = _numpy_uncached(e, inputs)
    for _ in range(2):
        got = numpy_eval(e, inputs)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()


def test_the_twin_the_literal_rule_is_what_keeps_float32() -> None:
    e = parse("-4.0 + 2.0**3 * a")
    a = np.array([1.5, 2.5], dtype=np.float32)
    assert numpy_eval(e, {"a": a}).dtype == np.float32
    assert _numpy_uncached(e, {"a": a}, literal_rule=False).dtype == np.float64  # without it: widened


def test_numpy_eval_values_keep_and_each() -> None:
    e = _shared_tree()
    inputs = {"a": np.array([0.5, 1.0]), "b": np.array([2.0, -1.0])}
    every = numpy_eval(e, inputs, values=True)
    sin = next(n for n in e.walk() if isinstance(n, Call) and n.op.name == "sin")
    assert set(every) == {id(n) for n in e.walk()}
    np.testing.assert_array_equal(every[id(sin)], np.sin(inputs["a"] * inputs["b"]))
    np.testing.assert_array_equal(every[id(e)], numpy_eval(e, inputs))
    kept: dict[int, Any] = {id(sin): None}
    root = numpy_eval(e, inputs, keep=kept)
    np.testing.assert_array_equal(kept[id(sin)], every[id(sin)])
    np.testing.assert_array_equal(root, every[id(e)])
    rounded = numpy_eval(e, inputs, each=lambda v: np.round(np.asarray(v), 1))
    assert not np.array_equal(rounded, root)  # the twin: `each` applies at every node
    np.testing.assert_array_equal(rounded, np.round(rounded, 1))


def test_ops_used_and_is_elementwise_come_from_the_plan() -> None:
    from symgrad.ir import ops
    from symgrad.ir.expr import is_elementwise, ops_used

    e = parse("sin(a) * b + sin(b)")
    assert ops_used(e) == {ops.sin, ops.mul, ops.add}
    assert is_elementwise(e)
    reduced = parse("sum(sin(a) * b, axis=0)")
    assert ops.sum in ops_used(reduced)
    assert not is_elementwise(reduced)  # the twin: one reduction anywhere makes it not elementwise


@pytest.mark.parametrize("shapes", [[], [(3,)], [(3, 4), (3, 4)], [(3, 1), (1, 4)], [(4,), (3, 4), ()], [(2, 3), (2, 3), (3,)]])
def test_broadcast_shape_is_numpys(shapes: list[tuple[int, ...]]) -> None:
    from symgrad.ir.expr import broadcast_shape

    assert broadcast_shape(shapes) == np.broadcast_shapes(*shapes)


def test_broadcast_shape_refuses_what_numpy_refuses() -> None:
    from symgrad.ir.expr import broadcast_shape

    assert broadcast_shape([(3,), (3,)]) == (3,)
    with pytest.raises(ValueError):
        broadcast_shape([(3,), (4,)])


def test_a_new_tree_at_a_dead_trees_address_gets_its_own_plan() -> None:
    # trees die and new ones are built, often at the same address: a plan cached by id() would be stale
    a, b = Var("a"), Var("b")
    inputs = {"a": np.array([0.5, 2.0]), "b": np.array([3.0, -1.0])}
    for i in range(200):
        e = (a * float(i)) + b if i % 2 else ir_expr.ops.sin(b) * a - float(i)
        want = inputs["a"] * float(i) + inputs["b"] if i % 2 else np.sin(inputs["b"]) * inputs["a"] - float(i)
        np.testing.assert_array_equal(numpy_eval(e, inputs), want)
        assert variables(e) == (["a", "b"] if i % 2 else ["b", "a"])
        del e
        if i % 50 == 0:
            gc.collect()
