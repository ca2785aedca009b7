"""The op table is the single source of truth: what each entry declares is what the rest derives and obeys.

Each check that passes for every op has a twin that shows it failing on a wrong entry.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import sympy

import symgrad
from symgrad import fuzzing
from symgrad.ir import ops
from symgrad.ir.limits import Limits
from symgrad.ir.ops import Domain, Op
from symgrad.ir.parse import ParseError, parse
from symgrad.symbolic import functions, prove
from symgrad.tape import graph as tape

Example = tuple[tuple[Any, ...], dict[str, Any]]

_SHAPE_PAIRS = [((2, 3), (3, 2)), ((3,), (2, 3)), ((2, 3), (3,)), ((2, 3), (1, 3))]
_MATMUL_SHAPES = [((2, 3), (3, 4)), ((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,))]


def _draw(op: Op, shapes: list[tuple[int, ...]], rng: np.random.Generator) -> tuple[Any, ...]:
    """Arguments of the given shapes inside the op's domain (a joint domain's sample for every argument)."""
    domains = op.domain * len(shapes) if op.domain[0].joint else op.domain
    return tuple(d.draw(rng, s) for d, s in zip(domains, shapes))


def examples(op: Op, seed: int = 0) -> list[Example]:
    """In-domain ``(args, params)`` for ``op``, derived from its kind, domain and parameters."""
    rng = np.random.default_rng(seed)
    if op.samples:  # the op's own examples (indexing, concatenate ...)
        return [(_draw(op, list(shapes), rng), dict(params)) for shapes, params in op.samples]
    if "shape" in op.params:  # reshape, broadcast_to, sum_to: the pairs its forward takes
        out = []
        for src, dst in _SHAPE_PAIRS:
            args = _draw(op, [src], rng)
            try:  # forward and back
                ans = op.forward(*args, shape=dst)
                ok = np.shape(ans) == dst and np.shape(op.vjps[0](ans, ans, *args, shape=dst)) == src
            except ValueError:
                ok = False
            if ok:
                out.append((args, {"shape": dst}))
        return out
    if "dtype" in op.params:
        return [(_draw(op, [(2, 3)], rng), {"dtype": np.dtype(np.float32)})]
    if op.kind == ops.REDUCTION:
        return [(_draw(op, [(2, 3)], rng), {"axis": axis}) for axis in (None, 0, -1, (0, 1))]
    if op is ops.matmul:
        return [(_draw(op, list(pair), rng), {}) for pair in _MATMUL_SHAPES]
    if op.kind == ops.LINALG:
        return [(_draw(op, [(2, 3)], rng), {})]
    # elementwise: equal shapes, and the first argument broadcast against the others
    same = [(3,)] * op.arity
    broadcast = [(2, 3)] + [(3,)] * (op.arity - 1)
    return [(_draw(op, same, rng), {}), (_draw(op, broadcast, rng), {})]


def _ids(items: list[Op]) -> list[str]:
    return [op.name for op in items]


ALL = ops.all_ops()
DIFFERENTIABLE = [op for op in ALL if op.differentiable]


# ---------------------------------------------------------------- saves: a VJP reads only what it declares


def _placeholder(value: Any) -> tape._Meta:
    return tape._Meta(np.shape(value), np.asarray(value).dtype)


def _vjp_runs(op: Op, i: int, args: tuple, params: dict, declared_only: bool, tensors: bool) -> np.ndarray:
    """VJP ``i`` of ``op`` at ``args``; with ``declared_only`` everything it does not declare is a placeholder."""
    with np.errstate(all="ignore"):
        ans = np.asarray(op.forward(*args, **params))
    rng = np.random.default_rng(1)
    g: Any = rng.uniform(0.5, 1.5, ans.shape)
    keep = set(op.saves[i]) if declared_only else {"ans", *op.args}
    values: list[Any] = [ans, *args]
    if tensors:  # as the tape runs VJPs with create_graph=True: on tensors, recording
        values = [symgrad.tensor(v, requires_grad=v.dtype.kind == "f") for v in values]
        g = symgrad.tensor(g)
    values = [v if name in keep else _placeholder(np.asarray(v)) for name, v in zip(("ans", *op.args), values)]
    with symgrad.enable_grad() if tensors else symgrad.no_grad(), np.errstate(all="ignore"):
        out = op.vjps[i](g, *values, **params)
    return np.asarray(out._data if isinstance(out, symgrad.Tensor) else out)


def check_saves(op: Op) -> None:
    """Every VJP of ``op`` runs with only what ``op.saves`` declares, and gives the same gradient."""
    for args, params in examples(op):
        for i, vjp in enumerate(op.vjps):
            if vjp is None:
                continue
            for tensors in (False, True):
                full = _vjp_runs(op, i, args, params, declared_only=False, tensors=tensors)
                declared = _vjp_runs(op, i, args, params, declared_only=True, tensors=tensors)
                np.testing.assert_array_equal(declared, full)


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=_ids(DIFFERENTIABLE))
def test_every_vjp_runs_on_what_its_op_declares_saved(op: Op) -> None:
    assert examples(op), f"no example inputs for {op.name}"
    check_saves(op)


@pytest.mark.parametrize("op, wrong", [
    (ops.sin, ("ans",)),  # sin's VJP reads x
    (ops.exp, ("x",)),  # exp's reads its output
    (ops.mul, (("x",), ("y",))),  # swapped: d/dx of x*y reads y
    (ops.div, (("y",), ("y",))),  # d/dy of x/y reads x too
    (ops.max, ("ans",)),  # the ties need x
])
def test_a_wrong_saves_declaration_is_caught(op: Op, wrong: Any) -> None:
    with pytest.raises(TypeError, match="does not declare in saves"):
        check_saves(dataclasses.replace(op, saves=wrong))


def test_the_tape_keeps_exactly_what_is_declared() -> None:
    x = symgrad.tensor([0.5, 1.0], requires_grad=True)
    c = symgrad.tensor([2.0, 3.0])
    for op, arg in ((ops.sin, (x,)), (ops.exp, (x,)), (ops.mul, (x, c)), (ops.hypot, (x, c)), (ops.add, (x, c))):
        node = op(*arg).grad_fn
        declared = set(op.saves[0])  # only the first input requires grad
        assert (node.ans is not None) == ("ans" in declared), op.name
        for name, kept in zip(op.args, node.inputs):
            assert isinstance(kept, tape._Meta) == (name not in declared), (op.name, name)


def test_backward_through_a_wrong_declaration_fails_loudly() -> None:
    wrong = dataclasses.replace(ops.sin, saves=("ans",))
    x = symgrad.tensor([0.5, 1.0], requires_grad=True)
    y = wrong(x)
    with pytest.raises(TypeError):
        y.sum().backward()


def test_declarations_are_checked_when_registered() -> None:
    with pytest.raises(ValueError, match="declare what its VJPs read"):
        ops.defop("undeclared_test_op", np.sin, lambda g, ans, x: g * ops.cos(x))
    with pytest.raises(ValueError, match="must name 'ans' or its arguments"):
        Op("typo_test_op", 1, np.sin, (lambda g, ans, x: g,), saves=("z",))
    with pytest.raises(ValueError, match="linear"):
        Op("linear_test_op", 1, np.sin, (lambda g, ans, x: g,), saves=("x",), linear=True)
    assert "undeclared_test_op" not in ops.OPS
    # an unregistered op (a user's) saves everything unless told otherwise
    assert Op("user_op", 2, np.add, (None, None)).saves == ((), ())
    assert Op("user_op", 1, np.sin, (lambda g, ans, x: g,)).saves == (("ans", "x"),)


def test_linear_ops_save_nothing_and_survive_a_second_backward() -> None:
    linear = [op for op in ALL if op.linear]
    assert {op.name for op in linear} >= {"add", "sub", "neg", "sum", "mean", "transpose", "cast"}
    assert all(not any(op.saves) for op in linear)
    x = symgrad.tensor([1.0, 2.0], requires_grad=True)
    y = (x + 1.0).sum()
    y.backward()
    y.backward()  # nothing was saved, so nothing was freed
    assert x.grad.tolist() == [2.0, 2.0]


# ---------------------------------------------------------------- domain


@pytest.mark.parametrize("op", ALL, ids=_ids(ALL))
def test_inputs_drawn_from_the_domain_are_inside_it_and_finite(op: Op) -> None:
    for args, params in examples(op):
        assert np.all(op.inside(*args)), op.name
        with np.errstate(all="raise"):
            assert np.all(np.isfinite(op.forward(*args, **params))), op.name


@pytest.mark.parametrize("op, outside", [
    (ops.log, (-1.0,)), (ops.sqrt, (0.0,)), (ops.asin, (1.0,)), (ops.acosh, (1.0,)), (ops.log1p, (-1.0,)),
    (ops.div, (1.0, 0.0)), (ops.logit, (1.0,)), (ops.hypot, (0.0, 0.0)), (ops.atan2, (0.0, -1.0)),
    (ops.pow, (-2.0, 0.5)),
])
def test_points_outside_the_domain_are_not_inside(op: Op, outside: tuple) -> None:
    assert not np.all(op.inside(*(np.array(v) for v in outside)))


def test_the_fuzzer_knows_every_guard_a_domain_names() -> None:
    guards = {d.guard for d in Domain if d.guard is not None}
    for guard in guards:
        assert fuzzing._guard(lambda strategy: False, guard, ops.sin(symgrad.parse("x"))) is not None
    with pytest.raises(ValueError, match="unknown guard"):
        fuzzing._guard(lambda strategy: False, "no-such-guard", symgrad.parse("x"))


def test_domain_texts_name_the_arguments() -> None:
    assert ops.div.domain_text == "y != 0"
    assert ops.atan2.domain_text.startswith("(y, x) != (0, 0)")
    assert ops.log.domain_text == "x > 0" and ops.sin.domain_text == ""
    assert ops.matmul.domain_text == "1-D or 2-D operands"


# ---------------------------------------------------------------- constants' sizes (max_const_digits)

UNARY = [op for op in ops.public_ops() if op.kind == ops.ELEMENTWISE and op.arity == 1]


def _refused(text: str, limits: Limits = Limits()) -> bool:
    try:
        parse(text, [], limits)
    except ParseError as err:
        assert "max_const_digits" in err.reason, err
        return True
    return False


def test_the_issue_example_is_refused() -> None:
    assert _refused("sqrt(10**200)**10000")
    assert not _refused("sqrt(10**200)**10000", Limits(max_const_digits=10**7))  # the twin: raised limit


@pytest.mark.parametrize("op", UNARY, ids=_ids(UNARY))
def test_every_unary_op_is_sized(op: Op) -> None:
    """``op(c)**10000`` is refused exactly when op(c) has more than 300 digits to the 10000th power."""
    c = float(Domain.draw(op.domain[0], np.random.default_rng(3), ()))
    value = float(op.forward(c))
    digits = abs(math.log10(abs(value))) * 10000 if value else 0.0
    assert _refused(f"{op.name}({c!r})**10000") == (digits > 301), (op.name, c, value)


def test_an_op_without_any_size_entry_cannot_bypass_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    new = Op("cube_root_test", 1, np.cbrt, (lambda g, ans, x: g,), saves=())
    monkeypatch.setitem(ops.OPS, new.name, new)
    assert _refused("cube_root_test(10**200)**10000")
    assert _refused("cube_root_test(1e300 * 1e300)")  # an overflow is too big to count
    assert not _refused("cube_root_test(8.0)**2")


def test_overflow_inside_a_forward_is_refused() -> None:
    assert _refused("expm1(1000)")
    assert not _refused("log(0) + 1")  # not a finite real: not sized (nor refused) by this limit


# ---------------------------------------------------------------- plain sympy forms


def test_every_convention_class_has_a_plain_form() -> None:
    derivative_only = {functions.tie_share}  # appears only inside derivatives, never proved about
    assert set(prove._PLAIN) == set(functions.CUSTOM) - derivative_only
    x, y = sympy.symbols("x y", real=True)
    assert prove._plain(functions.relu(x)) == sympy.Max(x, 0)
    assert prove._plain(functions.maxn(x, y)) == sympy.Max(x, y)
    assert prove.prove_equal(functions.softplus(x), sympy.log(1 + sympy.exp(x))) is True


def test_a_wrong_plain_form_is_disproved(monkeypatch: pytest.MonkeyPatch) -> None:
    x = sympy.Symbol("x", real=True)
    monkeypatch.setitem(prove._PLAIN, functions.softplus, lambda v: sympy.log(2 + sympy.exp(v)))
    assert prove.prove_equal(functions.softplus(x), sympy.log(1 + sympy.exp(x))) is False


def test_ir_never_imports_sympy() -> None:
    import subprocess
    import sys

    code = "import sys, symgrad.ir.ops, symgrad.ir.parse, symgrad.ir.expr; print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- generated functions and methods

METHODS = [op for op in ops.public_ops() if op.kind in (ops.ELEMENTWISE, ops.REDUCTION)]


@pytest.mark.parametrize("op", METHODS, ids=_ids(METHODS))
def test_every_op_is_a_module_function_and_a_tensor_method(op: Op) -> None:
    assert getattr(symgrad, op.name) is op
    (args, params), *_ = examples(op)
    t = symgrad.tensor(args[0])
    rest = [symgrad.tensor(a) for a in args[1:]]
    out = getattr(t, op.name)(*rest, **params) if op.name != "detach" else t.detach()
    np.testing.assert_allclose(np.asarray(out), op.forward(*args, **params))


def test_reduction_methods_take_dim_or_axis() -> None:
    x = symgrad.tensor([[1.0, 5.0], [3.0, 2.0]], requires_grad=True)
    assert x.max(dim=0).values.tolist() == [3.0, 5.0] and x.max(axis=1).tolist() == [5.0, 3.0]  # dim=: torch's (values, indices)
    assert x.logsumexp(0).grad_fn.name() == "LogsumexpBackward0"
    assert x.sum(dim=[0, 1]).grad_fn.name() == "SumBackward1" and x.sum().grad_fn.name() == "SumBackward0"
    assert repr(x.prod(1)) == "tensor([5., 6.], grad_fn=<ProdBackward1>)"


def _op_name_tables(module: Any) -> list[str]:
    """Module-level dicts and sets with three or more op names among their keys."""
    names = {op.name for op in ALL}
    return [attr for attr, value in vars(module).items()
            if not attr.startswith("__") and isinstance(value, (dict, set, frozenset))
            and len({k for k in value if isinstance(k, str)} & names) >= 3]


def _walk_tables() -> Iterator[str]:
    """Side tables keyed by op name outside ops.py and the engine adapters (each adapter's map is keyed by Op)."""
    import importlib
    import pkgutil

    allowed = {"symgrad.ir.ops", "symgrad.ops", "symgrad.checking.workers.preload"}
    for info in pkgutil.walk_packages(symgrad.__path__, "symgrad."):
        if info.name not in allowed:
            module = importlib.import_module(info.name)
            yield from (f"{info.name}.{attr}" for attr in _op_name_tables(module))


def test_no_side_table_keyed_by_op_name() -> None:
    assert list(_walk_tables()) == []


def test_a_side_table_keyed_by_op_name_is_found() -> None:
    import types

    module = types.ModuleType("fake")
    module._GUARDS = {"log": "positive", "sqrt": "positive", "asin": "unit"}  # type: ignore[attr-defined]
    assert _op_name_tables(module) == ["_GUARDS"]
