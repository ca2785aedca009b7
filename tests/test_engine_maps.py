"""Every engine adapter's map is called, not only listed: each op's function on each installed engine
(mapped, found by name, or the op's composite), forward and one gradient, on inputs drawn from the op's
domain, against the op's numpy forward and the VJPs of the table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from test_op_table import examples

from symgrad import backends
from symgrad.backends.base import Unsupported
from symgrad.ir import ops
from symgrad.ir.ops import Domain, Op

ENGINES = ["torch", "autograd", "jax", "tinygrad", "mygrad"]


def _backend(name: str) -> Any:
    pytest.importorskip(name)
    return backends.get(name)


def _engine_grads(name: str, b: Any, op: Op, args: tuple, params: dict, g: np.ndarray) -> tuple[Any, list]:
    """The engine's forward value and gradient with ``g`` w.r.t. every float argument (None: no gradient)."""
    floats = [i for i, a in enumerate(args) if np.asarray(a).dtype.kind == "f"]
    if name == "torch":
        import torch

        leaves = [torch.tensor(a, requires_grad=i in floats) for i, a in enumerate(args)]
        out = b.apply(op, leaves, params)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            return b.to_numpy(out), [None] * len(args)
        grads = torch.autograd.grad(out, [leaves[i] for i in floats], torch.tensor(g, dtype=out.dtype),
                                    allow_unused=True)
        by_index = dict(zip(floats, grads))
        return b.to_numpy(out), [None if by_index.get(i) is None else by_index[i].numpy() for i in range(len(args))]
    if name == "jax":
        import jax
        import jax.numpy as jnp

        with b.session():
            def at_jax(i: int) -> Callable[[Any], Any]:
                return lambda v: b.apply(op, [v if j == i else jnp.asarray(a) for j, a in enumerate(args)], params)

            value = np.asarray(at_jax(0)(jnp.asarray(args[0])))
            grads: list = [None] * len(args)
            for i in floats:
                out, pull = jax.vjp(at_jax(i), jnp.asarray(args[i]))
                grads[i] = np.asarray(pull(jnp.asarray(g, dtype=out.dtype))[0])
            return value, grads
    if name in ("tinygrad", "mygrad"):  # tapes: the adapter's own leaf / grad
        leaves = [b.leaf(np.asarray(a), requires_grad=i in floats) for i, a in enumerate(args)]
        out = b.apply(op, leaves, params)
        tape_grads = b.grad(out, [leaves[i] for i in floats], g, create_graph=False)
        by_index = dict(zip(floats, tape_grads))
        return b.to_numpy(out), [None if by_index.get(i) is None else b.to_numpy(by_index[i])
                                 for i in range(len(args))]
    import autograd

    def at(i: int) -> Callable[[Any], Any]:
        return lambda v: b.apply(op, [v if j == i else a for j, a in enumerate(args)], params)

    value = np.asarray(b.apply(op, list(args), params))
    grads: list = [None] * len(args)
    for i in floats:
        vjp, _ = autograd.make_vjp(at(i))(args[i])
        grads[i] = np.asarray(vjp(g))
    return value, grads


def check_engine_op(name: str, b: Any, op: Op) -> None:
    """The engine's ``op`` agrees with the table at every example: forward, and the gradient of each argument."""
    ran = 0
    for k, (args, params) in enumerate(examples(op, seed=5)):
        with np.errstate(all="ignore"):
            ans = np.asarray(op.forward(*args, **params))
            g = np.random.default_rng(k).uniform(0.5, 1.5, ans.shape)
            try:
                value, grads = _engine_grads(name, b, op, args, params, g)
            except Unsupported:  # a form the engine declares it lacks (autograd's einsum with a diagonal)
                continue
            ran += 1
            np.testing.assert_allclose(value, ans, rtol=1e-10, atol=1e-12, err_msg=f"{name} {op.name} forward")
            for i, vjp in enumerate(op.vjps):
                got = grads[i]
                if vjp is None:  # no gradient flows: the engine gives none, or zeros
                    assert got is None or not np.any(got), f"{name} {op.name}: a gradient for argument {i}"
                    continue
                if np.asarray(args[i]).dtype.kind != "f":
                    continue
                want = ops.unbroadcast(np.asarray(vjp(g, ans, *args, **params)), np.shape(args[i]))
                assert got is not None, f"{name} {op.name}: no gradient for argument {i}"
                np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12,
                                           err_msg=f"{name} {op.name} gradient of argument {i}")
    assert ran, f"{name} {op.name}: the engine refused every example"


OPS = ops.engine_ops()
# engine results that differ from the table by more than the test's 1e-10 (see docs/engine-bugs.md):
# asserted to fail, so a fixed engine shows up here
KNOWN = {("tinygrad", n): "tinygrad's float64 asin/acos/atan/erf are float32-accurate"
         for n in ("asin", "acos", "atan", "erf")}


# JAX and tinygrad compile every op for every shape (JAX: 30 ms each): a minute of the quick loop, so slow
COMPILING = {"jax", "tinygrad"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in COMPILING else n for n in ENGINES])
@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_every_engine_function_is_called_and_agrees(name: str, op: Op) -> None:
    b = _backend(name)
    if op not in b.ops and op.composite is None:
        pytest.skip(f"{name} has no {op.name} (an internal op no composite uses)")
    declared = getattr(__import__(f"symgrad.backends.{name}_backend", fromlist=["UNSUPPORTED"]), "UNSUPPORTED", {})
    if op in declared and op not in b.capabilities.ops:
        pytest.skip(f"{name} declares {op.name} unsupported: {declared[op]}")
    if (name, op.name) in KNOWN:
        with pytest.raises(AssertionError, match=f"{op.name} (forward|gradient)"):
            check_engine_op(name, b, op)
        return
    check_engine_op(name, b, op)


@pytest.mark.parametrize("name", ENGINES)
def test_every_public_op_resolves_on_every_engine(name: str) -> None:
    b = _backend(name)
    module = __import__(f"symgrad.backends.{name}_backend", fromlist=["UNSUPPORTED"])
    for op in ops.public_ops():
        how = ("mapped" if op in module._mapped() else "by name" if op in b.ops
               else "composite" if op.composite is not None else module.UNSUPPORTED.get(op))
        assert how, f"{name} cannot run {op.name}: map it, give it a composite, or declare it unsupported"
    # every op a composite uses runs on the engine itself
    for op in ops.public_ops():
        if op.composite is not None and op not in b.ops and op not in module.UNSUPPORTED:
            from symgrad.ir.expr import Call, Var, as_expr

            used = [n.op for n in as_expr(op.composite(*map(Var, op.args))).walk() if isinstance(n, Call)]
            assert all(u in b.ops for u in used), (name, op.name, [u.name for u in used if u not in b.ops])


@pytest.mark.parametrize("name", ENGINES)
def test_a_wrong_mapping_is_caught(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    b = _backend(name)
    cos = b.ops[ops.cos]
    monkeypatch.setitem(b.ops, ops.sin, cos)  # the wrong function
    with pytest.raises(AssertionError, match="sin forward"):
        check_engine_op(name, b, ops.sin)
    monkeypatch.setitem(b.ops, ops.detach, lambda x: x)  # the right value, but a gradient flows
    with pytest.raises(AssertionError, match="a gradient for argument 0"):
        check_engine_op(name, b, ops.detach)
    monkeypatch.setitem(b.ops, ops.relu, b.ops[ops.abs])  # right on x > 0 only: the domain draws both signs
    with pytest.raises(AssertionError, match="relu forward"):
        check_engine_op(name, b, ops.relu)


def _twice_sin(composite: Callable[..., Any]) -> Op:
    return Op("twice_sin_test", 1, lambda x: 2 * np.sin(x), (lambda g, ans, x: 2 * g * ops.cos(x),),
              saves=("x",), domain=Domain.POSITIVE, composite=composite)


@pytest.mark.parametrize("name", ENGINES)
def test_an_op_the_engine_lacks_runs_as_its_composite_inside_its_domain(name: str) -> None:
    b = _backend(name)
    op = _twice_sin(lambda x: 2.0 * ops.sin(x))
    assert op not in b.ops
    check_engine_op(name, b, op)
    with pytest.raises(Unsupported, match=r"not all finite \(x > 0\)"):
        b.apply(op, [np.array([-1.0, 1.0])], {})
    with pytest.raises(AssertionError, match="forward"):  # a wrong composite is caught
        check_engine_op(name, b, _twice_sin(lambda x: 3.0 * ops.sin(x)))


@pytest.mark.parametrize("name", ENGINES)
def test_an_op_without_function_or_composite_is_unsupported(name: str) -> None:
    b = _backend(name)
    op = Op("nowhere_test", 1, np.sin, (lambda g, ans, x: g * ops.cos(x),), saves=("x",))
    with pytest.raises(Unsupported, match="op 'nowhere_test'"):
        b.apply(op, [np.array([1.0])], {})
