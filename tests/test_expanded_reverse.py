"""Expanded mode's reverse sweep through let-bound intermediates (issue 15, speed).

The reference differentiates each let-bound definition with sympy once and combines them by the chain
rule.  These tests check it against sympy differentiating the whole inlined expression (no bindings,
sympy's own ``diff``), and that a wrong gradient still fails: each agreement has a twin.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy

import symgrad
from symgrad.ir.expr import numpy_eval
from symgrad.ir.parse import parse
from symgrad.symbolic import engine
from symgrad.symbolic.compile import Compiled
from symgrad.symbolic.forms import LetBindings, object_eval, symbol_arrays

LAYER_NORM = "(x - mean(x, axis=-1, keepdims=True)) / sqrt(var(x, axis=-1, keepdims=True) + 1e-5) * w + b"
XENT = "-sum(t * log_softmax(z, axis=-1)) / 3"


def _inputs(name: str, rows: int, cols: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    if name == "layer_norm":
        return {"x": rng.normal(size=(rows, cols)), "w": rng.uniform(0.5, 1.5, cols), "b": rng.normal(size=cols)}
    t = np.zeros((rows, cols))
    t[np.arange(rows), rng.integers(0, cols, rows)] = 1.0
    return {"z": rng.normal(size=(rows, cols)), "t": t}


def _plain_sympy(text: str, inputs: dict[str, np.ndarray], wrt: list[str], order: int,
                 g: np.ndarray | None) -> dict[tuple[str, ...], np.ndarray]:
    """The derivatives by sympy's ``diff`` of the whole expression, no let-bindings, evaluated at 30 digits."""
    expr = parse(text)
    names = sorted(inputs)
    syms = symbol_arrays(tuple((n, inputs[n].shape) for n in names))
    out = object_eval(expr, syms)
    gs = np.ones(out.shape) if g is None else g
    loss = sympy.Add(*[sympy.Float(float(gi)) * oi for gi, oi in zip(np.ravel(gs), out.ravel())])
    args = [s for n in names for s in syms[n].ravel()]
    values = [mpmath.mpf(float(v)) for n in names for v in inputs[n].ravel()]

    def at(d: np.ndarray) -> np.ndarray:  # plain lambdify (no let-bindings), mpmath at 30 digits
        with mpmath.workdps(30):
            return np.array([float(v) for v in Compiled(args, list(d.ravel())).mpmath(*values)]).reshape(d.shape)

    result: dict[tuple[str, ...], np.ndarray] = {}
    losses = {(): loss}
    for level in range(1, order + 1):
        for prefix in [q for q in losses if len(q) == level - 1]:
            for n in wrt:
                d = np.empty(inputs[n].shape, dtype=object)
                for i in np.ndindex(*d.shape):
                    d[i] = sympy.diff(losses[prefix], syms[n][i])
                losses[prefix + (n,)] = sympy.Add(*d.ravel())
                result[prefix + (n,)] = at(d)
    return {q: v for q, v in result.items() if len(q) == order}


@pytest.mark.parametrize("name, text, wrt, shape, order", [
    ("layer_norm", LAYER_NORM, ["x", "w", "b"], (2, 5), 1),
    ("layer_norm", LAYER_NORM, ["x", "w"], (2, 3), 2),
    ("xent", XENT, ["z"], (3, 4), 1),
    ("xent", XENT, ["z"], (2, 3), 2),
])
def test_reverse_sweep_equals_sympy_on_the_inlined_expression(name: str, text: str, wrt: list[str],
                                                               shape: tuple[int, int], order: int) -> None:
    inputs = _inputs(name, *shape)
    expr = parse(text)
    g = None
    if name == "layer_norm":  # a random grad_output: the symbolic-g path
        g = np.random.default_rng(3).normal(size=np.shape(numpy_eval(expr, inputs)))
    got = engine.differentiate(expr, inputs, wrt, order=order, grad_output=g, mode="expanded")
    want = _plain_sympy(text, inputs, wrt, order, g)
    assert set(want) <= set(got.derivatives)
    for q, v in want.items():
        np.testing.assert_allclose(got.derivatives[q].value, v, rtol=1e-10, atol=1e-12)
        # twin: the same comparison tells a gradient off by 1e-6 in one element
        off = v.copy()
        off.flat[-1] += 1e-6 * (1 + abs(off.flat[-1]))
        assert not np.allclose(got.derivatives[q].value, off, rtol=1e-10, atol=1e-12)


def _torch_grads(name: str, inputs: dict[str, np.ndarray], wrt: list[str]) -> dict[str, np.ndarray]:
    torch = pytest.importorskip("torch")
    leaves = {k: torch.tensor(v, requires_grad=k in wrt) for k, v in inputs.items()}
    if name == "layer_norm":
        x, w, b = leaves["x"], leaves["w"], leaves["b"]
        y = ((x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5) * w + b).sum()
    else:
        y = -(leaves["t"] * torch.log_softmax(leaves["z"], dim=-1)).sum() / 3
    y.backward()
    return {k: leaves[k].grad.numpy() for k in wrt}


@pytest.mark.slow
@pytest.mark.parametrize("name, text, wrt, shape", [
    ("layer_norm", LAYER_NORM, ["x", "w", "b"], (8, 64)),
    ("xent", XENT, ["z"], (32, 10)),
])
def test_realistic_sizes_pass_and_a_wrong_gradient_fails(name: str, text: str, wrt: list[str],
                                                         shape: tuple[int, int]) -> None:
    inputs = _inputs(name, *shape)
    right = _torch_grads(name, inputs, wrt)
    assert symgrad.check(text, inputs=inputs, wrt=wrt, mode="expanded").status == "pass"
    assert symgrad.check(text, inputs=inputs, wrt=wrt, mode="expanded",
                         expect={k: v.tolist() for k, v in right.items()}).status == "pass"
    wrong = {k: v.copy() for k, v in right.items()}
    wrong[wrt[0]][3, 5] += 1e-4  # one element of one gradient
    assert symgrad.check(text, inputs=inputs, wrt=wrt, mode="expanded",
                         expect={k: v.tolist() for k, v in wrong.items()}).status == "fail"


def _forward_ops(rows: int, cols: int) -> int:
    syms = symbol_arrays((("x", (rows, cols)),))
    bind = LetBindings({str(s) for s in syms["x"].ravel()})
    object_eval(parse("var(x, axis=-1, keepdims=True)"), syms, bind)
    return sum(sympy.count_ops(e) for e in bind.defs.values())


def test_a_variance_binds_its_row_sum_once_so_the_forward_grows_linearly() -> None:
    small, large = _forward_ops(2, 8), _forward_ops(2, 32)
    assert large <= 5 * small  # 4x the symbols: about 4x the operations, not 16x


def test_without_the_bindings_the_variance_grows_quadratically(monkeypatch: pytest.MonkeyPatch) -> None:
    """The twin: with no subexpression wide enough to bind, the same measure shows the row repeated."""
    from sympy.core.parameters import distribute

    monkeypatch.setattr(LetBindings, "WIDE", 10**9)
    monkeypatch.setattr("symgrad.symbolic.forms.distribute", lambda on: distribute(True))  # sympy distributes
    small, large = _forward_ops(2, 8), _forward_ops(2, 32)
    assert large > 10 * small


def test_a_large_formula_is_printed_clipped_and_a_small_one_as_sympy_prints_it() -> None:
    big = symgrad.check(LAYER_NORM, inputs=_inputs("layer_norm", 4, 16), wrt=["x"], mode="expanded")
    comps = {c.name: c for c in big.comparisons}
    text = comps["x"].formula
    assert text.startswith("d/dx_0_0 = ") and len(text) <= len("d/dx_0_0 = ") + engine._FORMULA_CHARS
    assert "_t" not in text.split(" = ", 1)[1]  # the intermediates are inlined, not named


def test_the_clipped_printer_stops_at_its_budget() -> None:
    xs = sympy.symbols("a0:400", real=True)
    t = sympy.Symbol("_t0", real=True)
    text = engine._clipped(t * 2, {t: sympy.Add(*xs)}, 50)
    assert text.startswith("2*(a0 + a1") and len(text) <= 50 + engine._FORMULA_CHARS  # a subtree without names: sympy's text, cut
    assert engine._display(t * 2, {t: sympy.Add(*xs[:3])}) == sympy.sstr(2 * sympy.Add(*xs[:3]))


def test_a_chain_too_deep_to_inline_is_printed_with_its_names() -> None:
    xs = sympy.symbols("x0:3000", real=True)
    ts = sympy.symbols("_t0:3000", real=True)
    defs = {ts[0]: xs[0] * xs[1]}
    for k in range(1, 3000):
        defs[ts[k]] = ts[k - 1] * xs[k] + xs[k - 1]
    assert engine._display(2 * ts[-1], defs) == "2*_t2999"  # not a RecursionError
    assert engine._display(2 * ts[3], defs).startswith("2*")  # a short chain: inlined
    assert "_t" not in engine._display(2 * ts[3], defs)
