"""torch's surface on symgrad's tape, against torch itself: reductions with torch's signatures (norm,
std/var with correction, amax/amin, keepdim), picking ops with gradients (sort, max(dim=), advanced
indexing), tensor hooks, and in-place ops on tensors in a graph with torch's version counter.

Each check runs the same call under symgrad and torch and compares values, node names and first
and second derivatives; each has a twin showing a wrong gradient or a wrong name is caught.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import symgrad
from symgrad.tape import selection

torch = pytest.importorskip("torch")

DATA = [[1.0, 3.0, 3.0], [0.0, 0.0, 2.0], [-1.5, 0.5, 4.0]]  # ties, a zero row part, negatives


def _run(module, call, data=DATA):
    """Value, node name, gradient and second-order gradient of ``call(x)`` under ``module``."""
    x = module.tensor(data, dtype=module.double, requires_grad=True)
    y = call(x)
    w = module.arange(y.numel(), dtype=module.double).reshape(tuple(y.shape)) + 1
    (g,) = module.autograd.grad((y * y * w).sum(), x, create_graph=True)
    (gg,) = module.autograd.grad((g * g).sum(), x, allow_unused=True)
    gg = np.zeros(np.shape(data)) if gg is None else gg.detach().numpy()
    return y.grad_fn.name(), y.detach().numpy(), g.detach().numpy(), gg


def differences(ours, theirs) -> list[str]:
    bad = [] if ours[0] == theirs[0] else [f"node {ours[0]} != {theirs[0]}"]
    for what, a, b in zip(("value", "gradient", "second-order gradient"), ours[1:], theirs[1:]):
        if np.shape(a) != np.shape(b) or not np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True):
            bad.append(f"{what}: {a!r} != {b!r}")
    return bad


REDUCTIONS = [
    ("norm", lambda t: t.norm()), ("norm-dim", lambda t: t.norm(dim=1)), ("norm-p1", lambda t: t.norm(1, dim=0)),
    ("norm-inf", lambda t: t.norm(p=math.inf, dim=1)), ("norm-p3-keep", lambda t: t.norm(3, 1, True)),
    ("norm-fro-tuple", lambda t: t.norm("fro", (0, 1), keepdim=True)), ("norm-half", lambda t: (t + 2).norm(0.5, 0)),  # p < 1: second derivatives are inf at 0
    ("norm-neg-inf", lambda t: t.norm(-math.inf, 1)),
    ("std", lambda t: t.std()), ("std-dim", lambda t: t.std(1)), ("std-biased", lambda t: t.std(False)),
    ("std-dim-unbiased-keep", lambda t: t.std(0, False, True)), ("std-correction", lambda t: t.std(dim=1, correction=0)),
    ("std-correction2", lambda t: t.std(dim=(0, 1), correction=2, keepdim=True)),
    ("var", lambda t: t.var()), ("var-dim", lambda t: t.var(0)), ("var-list", lambda t: t.var([0, 1])),
    ("var-keep", lambda t: t.var(1, keepdim=True)), ("var-unbiased-kw", lambda t: t.var(dim=1, unbiased=False)),
    ("amax", lambda t: t.amax()), ("amax-dim", lambda t: t.amax(1)), ("amin-tuple-keep", lambda t: t.amin((0, 1), True)),
    ("amin-dim-keep", lambda t: t.amin(dim=0, keepdim=True)),
    ("sum-keep", lambda t: t.sum(1, keepdim=True)), ("sum-tuple", lambda t: t.sum((0, 1))),
    ("mean-keep", lambda t: t.mean(dim=0, keepdim=True)), ("prod-keep", lambda t: t.prod(1, keepdim=True)),
    ("logsumexp-keep", lambda t: t.logsumexp(1, keepdim=True)), ("max-keep", lambda t: t.max(1, keepdim=True).values),
    ("min-keep", lambda t: t.min(0, True)[0]),
]


@pytest.mark.parametrize("label, call", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reduction_as_torch(label, call) -> None:
    assert differences(_run(symgrad, call), _run(torch, call)) == []


def test_reduction_twin_population_std_is_not_torchs_default() -> None:
    """numpy's default (ddof 0) where torch's is 1: caught in value and gradient."""
    bad = differences(_run(symgrad, lambda t: t.std(1, correction=0)), _run(torch, lambda t: t.std(1)))
    assert any(b.startswith("value") for b in bad) and any(b.startswith("gradient") for b in bad)


def test_reduction_twin_a_wrong_norm_gradient_is_caught(monkeypatch) -> None:
    from symgrad.tape import reductions
    right = reductions._norm_vjp
    wrong = dataclasses.replace(reductions.norm_op, vjps=(lambda *a, **k: right(*a, **k) * 1.01,))
    monkeypatch.setattr(reductions, "norm_op", wrong)
    bad = differences(_run(symgrad, lambda t: t.norm(dim=1)), _run(torch, lambda t: t.norm(dim=1)))
    assert bad and bad[0].startswith("gradient")


def test_reduction_twin_a_wrong_node_name_is_caught() -> None:
    assert differences(_run(symgrad, lambda t: t.amax(1)), _run(torch, lambda t: t.max(1).values))


def test_std_takes_unbiased_or_correction_not_both() -> None:
    with pytest.raises(TypeError, match="not both"):
        symgrad.ones(3).std(0, True, correction=1)


PICKS = [
    ("sort", lambda t: t.sort(1).values), ("sort-desc", lambda t: t.sort(dim=0, descending=True).values),
    ("max-dim", lambda t: t.max(dim=1).values), ("min-dim-keep", lambda t: t.min(0, keepdim=True).values),
    ("index-list", lambda t: t[[0, 2, 0]]), ("index-arrays", lambda t: t[[0, 1], [2, 0]]),
    ("index-mask", lambda t: t[t > 0.7]), ("index-slice-array", lambda t: t[1:, [0, 0]]),
    ("index-tensor", lambda t: t[symgrad.tensor([2, 2]) if isinstance(t, symgrad.Tensor) else torch.tensor([2, 2])]),
    ("index-none", lambda t: t[None]), ("index-none-mid", lambda t: t[:, None]), ("select", lambda t: t[0]),
    ("slice", lambda t: t[:, 1:]), ("select-last", lambda t: t[..., 2]),
]


@pytest.mark.parametrize("label, call", PICKS, ids=[p[0] for p in PICKS])
def test_pick_as_torch(label, call) -> None:
    assert differences(_run(symgrad, call), _run(torch, call)) == []


def test_pick_twin_max_dim_does_not_share_ties() -> None:
    """x.max(dim) sends the gradient to the element its index names; sharing it among ties (as amax) is caught."""
    ties = [[2.0, 2.0, 1.0]]
    ours = _run(symgrad, lambda t: t.max(dim=1).values, ties)
    assert ours[2].tolist() == [[4.0, 0.0, 0.0]]
    assert differences(_run(symgrad, lambda t: t.amax(1), ties), _run(torch, lambda t: t.max(dim=1).values, ties))


def test_pick_twin_a_wrong_scatter_is_caught(monkeypatch) -> None:
    right = selection._put_forward
    monkeypatch.setattr(selection, "_put_forward", lambda g, flat, shape: np.roll(right(g, flat, shape), 1))
    selection._TAKES.clear()
    selection._PUTS.clear()
    try:
        bad = differences(_run(symgrad, lambda t: t.sort(1).values), _run(torch, lambda t: t.sort(1).values))
    finally:
        selection._TAKES.clear()
        selection._PUTS.clear()
    assert any(b.startswith("gradient") for b in bad)


def test_sort_and_max_return_torchs_named_tuples() -> None:
    for call in (lambda t: t.sort(1, descending=True), lambda t: t.max(0), lambda t: t.min(1, keepdim=True)):
        ours = call(symgrad.tensor(DATA, requires_grad=True))
        theirs = call(torch.tensor(DATA, requires_grad=True))
        assert repr(ours) == repr(theirs)
        values, indices = ours
        assert values is ours.values and indices.tolist() == theirs.indices.tolist()


def test_argmax_and_argsort_as_torch() -> None:
    for call in (lambda t: t.argmax(), lambda t: t.argmax(1), lambda t: t.argmin(0, keepdim=True),
                 lambda t: t.argmax(keepdim=True), lambda t: t.argsort(1), lambda t: t.argsort(0, descending=True)):
        ours, theirs = call(symgrad.tensor(DATA)), call(torch.tensor(DATA))
        assert ours.tolist() == theirs.tolist() and tuple(ours.shape) == tuple(theirs.shape)
    assert symgrad.tensor(DATA).argmax().tolist() != symgrad.tensor(DATA).argmin().tolist()  # twin


def test_an_index_out_of_bounds_raises() -> None:
    x = symgrad.ones(3, requires_grad=True)
    with pytest.raises(IndexError):
        x[[0, 5]]


# ---------------------------------------------------------------- register_hook


def _hooked(module, double_leaf: bool = True, remove: bool = False):
    """A leaf hook, two hooks on a non-leaf (one that only looks) and one on the output; what each saw."""
    seen = []
    x = module.tensor([1.0, 2.0], dtype=module.double, requires_grad=True)
    handle = x.register_hook(lambda g: g * 2 if double_leaf else None)
    y = x * 3
    y.retain_grad()
    y.register_hook(lambda g: seen.append(g.tolist()))
    y.register_hook(lambda g: g + 1)
    z = (y * y).sum()
    z.register_hook(lambda g: g * 10)
    if remove:
        handle.remove()
    z.backward()
    (again,) = module.autograd.grad((x * x).sum(), x)
    return seen, x.grad.tolist(), y.grad.tolist(), again.tolist()


def test_hooks_as_torch() -> None:
    ours = _hooked(symgrad)
    assert ours == _hooked(torch)
    assert ours == ([[60.0, 120.0]], [366.0, 726.0], [61.0, 121.0], [4.0, 8.0])


def test_hooks_twin_a_hook_that_is_ignored_or_removed_is_seen() -> None:
    assert _hooked(symgrad, double_leaf=False) != _hooked(torch)
    assert _hooked(symgrad, remove=True) == _hooked(torch, remove=True) != _hooked(symgrad)


def test_hook_with_create_graph_is_differentiated() -> None:
    res = []
    for module in (symgrad, torch):
        a = module.tensor([2.0], dtype=module.double, requires_grad=True)
        b = a ** 2
        b.register_hook(lambda g, a=a: g * a)
        (g,) = module.autograd.grad(b.sum(), a, create_graph=True)
        (gg,) = module.autograd.grad(g.sum(), a)
        res.append((g.tolist(), gg.tolist(), g.grad_fn.name()))
    assert res[0] == res[1] == ([8.0], [8.0], "MulBackward0")  # 2 a^2, then 4 a; twin: not 4 (hook ignored)


@pytest.mark.parametrize("hook, error", [
    (lambda g: g.sum(), "hook '<lambda>' has changed the size of value"),
    (lambda g: 1.0, "expected Variable, but hook returned 'float'"),
    (lambda g: g.float(), "hook '<lambda>' has changed the type of value (was torch.DoubleTensor got torch.FloatTensor)"),
])
def test_a_bad_hook_result_raises_torchs_error(hook, error) -> None:
    texts = []
    for module in (symgrad, torch):
        w = module.tensor([1.0, 2.0], dtype=module.double, requires_grad=True) * 1
        w.register_hook(hook)
        with pytest.raises((RuntimeError, TypeError)) as info:
            w.sum().backward()
        texts.append(str(info.value))
    assert texts[0] == texts[1] == error


def test_no_hook_on_a_tensor_without_grad() -> None:
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require gradient"):
        symgrad.ones(2).register_hook(lambda g: g)
