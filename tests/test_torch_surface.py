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


# torch's functions as well as its methods: torch.std(t) is torch's (correction 1), whatever the spelling
FUNCTIONS = [
    ("torch.std", lambda m, t: m.std(t)), ("torch.var", lambda m, t: m.var(t)),
    ("torch.std-dim", lambda m, t: m.std(t, 1)), ("torch.var-dim-kw", lambda m, t: m.var(t, dim=0)),
    ("torch.std-keepdim", lambda m, t: m.std(t, 1, keepdim=True)),
    ("torch.var-dim-unbiased-keep", lambda m, t: m.var(t, 0, False, True)),
    ("torch.std-unbiased-false", lambda m, t: m.std(t, unbiased=False)),
    ("torch.std-unbiased-positional", lambda m, t: m.std(t, False)),
    ("torch.var-correction", lambda m, t: m.var(t, correction=0)),
    ("torch.std-dim-correction", lambda m, t: m.std(t, dim=(0, 1), correction=2)),
    ("torch.var-keepdim-only", lambda m, t: m.var(t, keepdim=True)),
    ("torch.norm", lambda m, t: m.norm(t)), ("torch.norm-p-dim", lambda m, t: m.norm(t, 1, 0)),
    ("torch.clamp-min", lambda m, t: m.clamp(t, min=0.5)), ("torch.clamp-max", lambda m, t: m.clamp(t, max=1.0)),
    ("torch.clamp-positional", lambda m, t: m.clamp(t, 0.0, 2.0)),
    ("torch.clamp-min-positional", lambda m, t: m.clamp(t, 0.5)),
    ("torch.clamp-tensor", lambda m, t: m.clamp(t, min=m.zeros(3, dtype=m.double))),
    ("torch.clip", lambda m, t: m.clip(t, -1.0, 1.0)), ("torch.clip-max", lambda m, t: m.clip(t, max=0.5)),
    ("torch.clamp_min", lambda m, t: m.clamp_min(t, 0.5)), ("torch.clamp_max", lambda m, t: m.clamp_max(t, 1.0)),
    ("torch.clamp_min-tensor", lambda m, t: m.clamp_min(t, m.ones(3, dtype=m.double))),
    ("clip-method", lambda m, t: t.clip(0.0, 2.0)), ("clamp-method-max", lambda m, t: t.clamp(max=1.0)),
    ("clamp_min-method", lambda m, t: t.clamp_min(0.5)), ("clamp_max-method", lambda m, t: t.clamp_max(1.0)),
    ("clamp_min_-inplace", lambda m, t: (t * 1).clamp_min_(0.5)),
    ("clamp_max_-inplace", lambda m, t: (t * 1).clamp_max_(1.0)),
]


def _as(module, call):
    return _run(module, lambda t: call(module, t))


@pytest.mark.parametrize("label, call", FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_function_spelling_as_torch(label, call) -> None:
    assert differences(_as(symgrad, call), _as(torch, call)) == []


def test_function_spelling_twin_the_tables_std_is_not_torch_std() -> None:
    """The table's std (numpy's ddof 0), what a case file's ``std(x)`` means, is caught against torch.std(t)."""
    from symgrad.ir import ops
    from symgrad.tape.graph import apply_table
    table = _run(symgrad, lambda t: apply_table(ops.std, (t,), {}))
    bad = differences(table, _as(torch, lambda m, t: m.std(t)))
    assert any(b.startswith("value") for b in bad) and any(b.startswith("gradient") for b in bad)


def test_function_spelling_twin_clip_named_as_the_table_is_caught() -> None:
    from symgrad.ir import ops
    from symgrad.tape.graph import apply_table
    table = _run(symgrad, lambda t: apply_table(ops.clip, (t, -1.0, 1.0), {}))
    assert differences(table, _as(torch, lambda m, t: m.clip(t, -1.0, 1.0))) == ["node ClipBackward0 != ClampBackward1"]


def test_clamp_min_needs_its_bound_and_clamp_a_bound() -> None:
    with pytest.raises(TypeError):
        symgrad.clamp_min(symgrad.ones(2))
    with pytest.raises(RuntimeError, match="At least one of 'min' or 'max'"):
        symgrad.clamp(symgrad.ones(2))


@pytest.mark.parametrize("expr", ["std(x)", "var(x)", "std(x, keepdims=True)", "var(x, axis=0)"])
def test_case_files_std_stays_numpys(expr) -> None:
    """In the expression language std/var keep numpy's ddof 0 on symgrad's tape, as sympy reads them."""
    x = np.array([[1.0, 2.5, 4.0], [3.0, 0.5, 9.0]])
    assert symgrad.check(expr, x=x)


def test_case_files_std_twin_torchs_spelling_in_the_backend_fails(monkeypatch) -> None:
    """Had the checking backend called the torch-facing std (correction 1), the check would fail."""
    from symgrad.backends.symgrad_tape import SymgradBackend
    monkeypatch.setattr(SymgradBackend, "apply", lambda self, op, args, params: op(*args, **params))
    assert not symgrad.check("std(x)", x=np.array([1.0, 2.5, 4.0]))


PICKS = [
    ("sort", lambda t: t.sort(1).values), ("sort-desc", lambda t: t.sort(dim=0, descending=True).values),
    ("max-dim", lambda t: t.max(dim=1).values), ("min-dim-keep", lambda t: t.min(0, keepdim=True).values),
    ("index-list", lambda t: t[[0, 2, 0]]), ("index-arrays", lambda t: t[[0, 1], [2, 0]]),
    ("index-mask", lambda t: t[t > 0.7]), ("index-slice-array", lambda t: t[1:, [0, 0]]),
    ("index-tensor", lambda t: t[symgrad.tensor([2, 2]) if isinstance(t, symgrad.Tensor) else torch.tensor([2, 2])]),
    ("index-none", lambda t: t[None]), ("index-none-mid", lambda t: t[:, None]), ("select", lambda t: t[0]),
    ("slice", lambda t: t[:, 1:]), ("select-last", lambda t: t[..., 2]),
    ("index-none-then-slice", lambda t: t[None, :, 1:]), ("index-select-after-none", lambda t: t[:, None, 0]),
    ("index-select-then-none", lambda t: t[0, None]), ("index-none-none", lambda t: t[None, ..., None]),
    ("index-0d-tensor", lambda t: t[symgrad.tensor(1) if isinstance(t, symgrad.Tensor) else torch.tensor(1)]),
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


# ---------------------------------------------------------------- in place, on tensors in a graph


def _names(node) -> list:
    return [None if n is None else type(n).__name__ if n.name().endswith("AccumulateGrad") else n.name()
            for n, _ in node.next_functions]


INPLACE = [
    ("add_", lambda m, y, x: y.add_(1.5)), ("add_-tensor", lambda m, y, x: y.add_(x)),
    ("add_-alpha", lambda m, y, x: y.add_(2.0, alpha=3)), ("sub_", lambda m, y, x: y.sub_(x * x)),
    ("mul_", lambda m, y, x: y.mul_(2)), ("mul_-tensor", lambda m, y, x: y.mul_(x)),
    ("div_", lambda m, y, x: y.div_(4)), ("div_-tensor", lambda m, y, x: y.div_(x + 3)),
    ("zero_", lambda m, y, x: y.zero_()), ("fill_", lambda m, y, x: y.fill_(0.5)),
    ("clamp_", lambda m, y, x: y.clamp_(min=1.0)), ("clamp_-both", lambda m, y, x: y.clamp_(0.5, 4.0)),
    ("chain", lambda m, y, x: y.mul_(x).add_(1).div_(2).sub_(x)),
    ("add_-tensor-alpha", lambda m, y, x: y.add_(x, alpha=-2.5)), ("sub_-tensor-alpha", lambda m, y, x: y.sub_(x * x, alpha=2)),
]


def _inplace_run(module, change):
    x = module.tensor([0.5, 1.0, 2.0], dtype=module.double, requires_grad=True)
    y = x * x + 1
    out = change(module, y, x)
    assert out is y and not y.is_leaf and y.requires_grad and y._version > 0
    names = (y.grad_fn.name(), _names(y.grad_fn))
    (g,) = module.autograd.grad((y * module.tensor([1.0, 2.0, 3.0], dtype=module.double)).sum() ** 2, x,
                                create_graph=True)
    (gg,) = module.autograd.grad(g.sum(), x)
    return names, y.detach().tolist(), g.detach().tolist(), gg.tolist()


@pytest.mark.parametrize("label, change", INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_on_a_non_leaf_records_as_torch(label, change) -> None:
    ours, theirs = _inplace_run(symgrad, change), _inplace_run(torch, change)
    assert ours[0] == theirs[0]
    for a, b in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_inplace_twin_a_graph_cut_at_the_old_value_is_caught(monkeypatch) -> None:
    from symgrad.ir import ops
    from symgrad.tape import inplace
    monkeypatch.setattr(symgrad.Tensor, "mul_", lambda self, o: inplace._apply(
        self, lambda old: ops.mul(old.detach(), o) + old * 0, lambda a: a * o, (o,)))
    ours, theirs = _inplace_run(symgrad, INPLACE[4][1]), _inplace_run(torch, INPLACE[4][1])
    assert ours[1] == theirs[1] and ours[2] != theirs[2]  # same values, wrong gradient


def test_augmented_assignment_records_as_torch() -> None:
    res = []
    for module in (symgrad, torch):
        x = module.tensor([1.0, 2.0], dtype=module.double, requires_grad=True)
        y = x * 3
        y += 1
        y *= x
        y -= 0.5
        y /= 2
        y.sum().backward()
        res.append((y.grad_fn.name(), _names(y.grad_fn), y.detach().tolist(), x.grad.tolist()))
    assert res[0] == res[1]
    assert res[0][3] == [3.5, 6.5]  # d/dx (3x + 1) x / 2: a twin for the values themselves


SAVED = {
    # an input saved by a later node, then changed (twice, or after an earlier in-place)
    "input": lambda m, x: (lambda z: ((z * z).sum(), z.mul_(2)))(x * 3),
    "twice": lambda m, x: (lambda z: ((z * z).sum(), z.add_(1), z.mul_(2)))(x * 3),
    "after-inplace": lambda m, x: (lambda z: (z.add_(1), (z * z).sum(), z.mul_(2)))(x * 3)[1:],
    # an op's saved output changed in place
    "output": lambda m, x: (lambda z: (z.sum(), z.add_(1)))(x.exp()),
    "function-input": lambda m, x: (lambda z: (z.sin().sum(), z.add_(1)))(x * 1),
    "mul_-self": lambda m, x: (lambda z: (z.mul_(z), z.sum())[::-1])(x * 1),
}


def _saved_error(module, label: str, modify: bool = True) -> str:
    x = module.tensor([1.0, 2.0, 3.0], dtype=module.double, requires_grad=True)
    if not modify:
        z = x.exp() if label == "output" else x * 3
        loss = (z * z).sum() if label != "output" else z.sum()
    else:
        loss = SAVED[label](module, x)[0]
    try:
        loss.backward()
    except RuntimeError as e:
        return str(e)
    return f"ok {x.grad.tolist()}"


@pytest.mark.parametrize("label", list(SAVED))
def test_a_saved_tensor_changed_in_place_raises_torchs_error(label) -> None:
    theirs = _saved_error(torch, label)
    assert theirs.startswith("one of the variables needed for gradient computation has been modified by an inpl")
    assert _saved_error(symgrad, label) == theirs


@pytest.mark.parametrize("label", ["input", "output"])
def test_saved_twin_unchanged_no_error(label) -> None:
    ours = _saved_error(symgrad, label, modify=False)
    assert ours.startswith("ok") and ours == _saved_error(torch, label, modify=False)


def test_inplace_on_a_leaf_that_requires_grad() -> None:
    for module in (symgrad, torch):
        w = module.tensor([1.0, 2.0], requires_grad=True)
        for change in (lambda: w.add_(1), lambda: w.zero_(), lambda: w.clamp_(0, 1), lambda: w.__imul__(2)):
            with pytest.raises(RuntimeError, match="^a leaf Variable that requires grad is being used in an "
                                                   "in-place operation.$"):
                change()
        with module.no_grad():
            w.mul_(2)  # allowed: an optimizer's update
        assert w.tolist() == [2.0, 4.0] and w._version == 1 and w.is_leaf


def test_inplace_makes_a_plain_tensor_part_of_the_graph() -> None:
    res = []
    for module in (symgrad, torch):
        x = module.tensor([1.0, 2.0], dtype=module.double, requires_grad=True)
        a = module.ones(2, dtype=module.double)
        a.add_(x)
        a.mul_(x)
        a.sum().backward()
        res.append((a.is_leaf, a.grad_fn.name(), _names(a.grad_fn), x.grad.tolist()))
    assert res[0] == res[1] == (False, "MulBackward0", ["AddBackward0", "AccumulateGrad"], [3.0, 5.0])


def test_retain_grad_follows_the_tensor_through_an_inplace_op() -> None:
    res = []
    for module in (symgrad, torch):
        x = module.tensor([1.0, 2.0], dtype=module.double, requires_grad=True)
        y = x * 1
        y.retain_grad()
        y.mul_(2)
        (y * y).sum().backward()
        res.append((y.grad.tolist(), x.grad.tolist()))
    assert res[0] == res[1] == ([4.0, 8.0], [8.0, 16.0])


def test_inplace_errors_as_torch() -> None:
    for module in (symgrad, torch):
        with pytest.raises(RuntimeError, match=r"output with shape \[3\] doesn't match the broadcast shape \[2, 3\]"):
            (module.ones(3, requires_grad=True) * 1).add_(module.ones(2, 3))
        with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
            module.ones(3, dtype=module.long).add_(1.5)


def test_functional_forms_as_torch() -> None:
    calls = [lambda m, t: m.sort(t, 1, descending=True).values, lambda m, t: m.argsort(t, dim=0),
             lambda m, t: m.argmax(t), lambda m, t: m.argmin(t, 1, keepdim=True), lambda m, t: m.norm(t, dim=1),
             lambda m, t: m.norm(t, 1)]
    for call in calls:
        ours = call(symgrad, symgrad.tensor(DATA, dtype=symgrad.double))
        theirs = call(torch, torch.tensor(DATA, dtype=torch.double))
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
        assert ours.dtype.name == str(theirs.dtype).split(".")[1]
    assert symgrad.norm(symgrad.tensor(DATA), 1).item() != symgrad.norm(symgrad.tensor(DATA)).item()  # twin: p matters


def test_std_with_numpys_keywords_is_the_tables() -> None:
    x = symgrad.tensor(DATA, requires_grad=True)
    assert np.allclose(x.std(axis=1).detach().numpy(), np.std(DATA, axis=1))  # numpy's ddof 0
    assert np.allclose(x.var(ddof=1).detach().numpy(), np.var(DATA, ddof=1))
    assert not np.allclose(x.std(1).detach().numpy(), np.std(DATA, axis=1))  # torch's dim: correction 1


# ---------------------------------------------------------------- a second backward through a freed graph

SECOND_BACKWARD = [
    ("mul-number", lambda m, x: x * 2), ("number-mul", lambda m, x: 2.5 * x), ("div-number", lambda m, x: x / 2),
    ("mul-bool", lambda m, x: x * True), ("affine", lambda m, x: x * 1.0 + 1), ("square", lambda m, x: x * x),
    ("exp", lambda m, x: x.exp()), ("pow", lambda m, x: x ** 2), ("clamp", lambda m, x: x.clamp(0, 1)),
    ("index-list", lambda m, x: x[[0, 1]]), ("mask", lambda m, x: x[x > 1]), ("max-dim", lambda m, x: x.max(0).values),
    ("sort", lambda m, x: x.sort().values),
    # nodes that save nothing: torch runs the second backward and accumulates again
    ("add-number", lambda m, x: x + 2), ("rsub", lambda m, x: 2 - x), ("neg", lambda m, x: -x),
    ("mean", lambda m, x: x.mean()), ("view", lambda m, x: x.view(3, 1)), ("select", lambda m, x: x[0]),
    ("slice", lambda m, x: x[1:]), ("cat", lambda m, x: m.cat([x, x])), ("add-tensor", lambda m, x: x + m.ones(3)),
]


def _backward_twice(module, call) -> tuple[str, list[float] | None]:
    x = module.tensor([1.0, 2.0, 3.0], dtype=module.double, requires_grad=True)
    y = call(module, x).sum()
    y.backward()
    try:
        y.backward()
    except RuntimeError as exc:
        return str(exc), None
    return "", x.grad.tolist()


@pytest.mark.parametrize("label, call", SECOND_BACKWARD, ids=[c[0] for c in SECOND_BACKWARD])
def test_second_backward_as_torch(label, call) -> None:
    assert _backward_twice(symgrad, call) == _backward_twice(torch, call)


def test_second_backward_twin_a_node_that_forgets_its_number_is_caught(monkeypatch) -> None:
    """Had x * 2 saved nothing (as symgrad once did), the second backward would run where torch's raises."""
    from symgrad.tape import graph
    monkeypatch.setattr(graph.Node, "free", lambda self: None)
    call = SECOND_BACKWARD[0][1]
    ours, theirs = _backward_twice(symgrad, call), _backward_twice(torch, call)
    assert ours[0] == "" and theirs[0].startswith("Trying to backward through the graph a second time")


def test_second_backward_through_a_shared_freed_node_raises_as_torch() -> None:
    """A new graph on top of a freed node (a = x * 2 used by two losses) fails at that node, as in torch."""
    def run(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        a = x * 2
        (a * a).sum().backward()
        b = (a * 3).sum()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            b.backward()
        return x.grad.tolist()
    assert run(symgrad) == run(torch)


# ---------------------------------------------------------------- copy_ on tensors in a graph

def _next_names(node) -> list:
    return [None if f is None else f.name() for f, _ in node.next_functions]


COPIES = [
    ("nonleaf-from-graph", lambda m, x, s: (x * 2).copy_(s * 3)),
    ("nonleaf-from-constant", lambda m, x, s: (x * 2).copy_(m.tensor([7.0, 8.0, 9.0], dtype=m.double))),
    ("constant-from-leaf", lambda m, x, s: m.zeros(3, dtype=m.double).copy_(s)),
    ("nonleaf-from-broadcast-leaf", lambda m, x, s: (x + 1).copy_(s)),
    ("float32-from-graph", lambda m, x, s: m.zeros(3, dtype=m.float).copy_(x * s)),
]


def _copy(module, call):
    x = module.tensor([1.0, 2.0, 3.0], dtype=module.double, requires_grad=True)
    s = module.tensor([5.0], dtype=module.double, requires_grad=True)
    y = call(module, x, s)
    loss = (y * module.tensor([1.0, 2.0, 3.0], dtype=y.dtype)).sum()
    loss.backward()
    grads = [None if t.grad is None else t.grad.tolist() for t in (x, s)]
    return y.tolist(), str(y.dtype)[-7:], y.grad_fn.name(), _next_names(y.grad_fn), y._version, grads


@pytest.mark.parametrize("label, call", COPIES, ids=[c[0] for c in COPIES])
def test_copy_into_a_graph_as_torch(label, call) -> None:
    assert _copy(symgrad, call) == _copy(torch, call)


def test_copy_twin_a_gradient_to_the_old_values_is_caught(monkeypatch) -> None:
    from symgrad.tape import inplace
    wrong = dataclasses.replace(inplace._copy_op, vjps=(lambda g, ans, old, src: g, lambda g, ans, old, src: g))
    monkeypatch.setattr(inplace, "_copy_op", wrong)
    call = COPIES[0][1]
    ours, theirs = _copy(symgrad, call), _copy(torch, call)
    assert ours[5][0] == [2.0, 4.0, 6.0] and theirs[5][0] == [0.0, 0.0, 0.0]


def test_copy_overwriting_a_saved_output_raises_as_torch() -> None:
    def run(m):
        x = m.tensor([1.0, 2.0], dtype=m.double, requires_grad=True)
        e = x.exp()
        total = e.sum()
        e.copy_(m.zeros(2, dtype=m.double))
        with pytest.raises(RuntimeError) as info:
            total.backward()
        return str(info.value)
    ours = run(symgrad)
    assert ours == run(torch) and "modified by an inplace operation" in ours


@pytest.mark.parametrize("label, call", [
    ("leaf", lambda m, x: x.copy_(m.ones(3))), ("shape", lambda m, x: (x * 1).copy_(m.ones(4))),
    ("shape-2d", lambda m, x: (x * 1).copy_(m.ones(2, 3))), ("shape-1-3", lambda m, x: (x * 1).copy_(m.ones(1, 3))),
    ("shape-inner", lambda m, x: m.ones(2, 3).copy_(m.ones(3, 2))), ("shape-narrow", lambda m, x: m.ones(2, 1).copy_(x)),
    ("shape-wide", lambda m, x: m.ones(2, 3).copy_(m.ones(4))),
])
def test_copy_misuse_raises_torchs_error(label, call) -> None:
    def run(m):
        with pytest.raises(RuntimeError) as info:
            call(m, m.ones(3, requires_grad=True))
        return str(info.value)
    assert run(symgrad) == run(torch)


def test_copy_without_grad_casts_and_counts_a_version() -> None:
    def run(m):
        i = m.zeros(3, dtype=m.int64)
        i.copy_(m.tensor([1.7, 2.0, -3.5]))
        x = m.ones(3, requires_grad=True)
        with m.no_grad():
            x.copy_(m.tensor([4.0, 5.0, 6.0]))
        return i.tolist(), x.tolist(), x._version, x.requires_grad, x.is_leaf
    assert run(symgrad) == run(torch)
    assert run(symgrad)[0] != [1.7, 2.0, -3.5]  # twin: the values are cast to the int tensor's dtype


# ---------------------------------------------------------------- error texts of common misuse, word for word

def _leafs(m):
    return m.tensor([1.0, 2.0, 3.0], requires_grad=True)


MISUSE = [
    ("backward-non-scalar", lambda m: (_leafs(m) * 2).backward()),
    ("grad-of-non-leaf", lambda m: (_leafs(m) * 2).grad),
    ("requires-grad-int-constructor", lambda m: m.tensor([1, 2], requires_grad=True)),
    ("requires-grad-int-ones", lambda m: m.ones(2, dtype=m.long, requires_grad=True)),
    ("requires-grad-int-arange", lambda m: m.arange(3, requires_grad=True)),
    ("requires-grad-int-method", lambda m: m.tensor([1, 2]).requires_grad_()),
    ("requires-grad-int-attribute", lambda m: setattr(m.tensor([1, 2]), "requires_grad", True)),
    ("requires-grad-false-non-leaf", lambda m: setattr(_leafs(m) * 2, "requires_grad", False)),
    ("requires-grad-true-non-leaf", lambda m: setattr(_leafs(m) * 2, "requires_grad", True)),
    ("requires-grad-method-false-non-leaf", lambda m: (_leafs(m) * 2).requires_grad_(False)),
    ("requires-grad-method-true-non-leaf", lambda m: (_leafs(m) * 2).requires_grad_().grad_fn.name()),
    ("inplace-on-leaf", lambda m: _leafs(m).add_(1)),
    ("numpy-requires-grad", lambda m: _leafs(m).numpy()),
    ("backward-without-grad", lambda m: m.tensor([1.0]).sum().backward()),
    ("item-of-several", lambda m: _leafs(m).item()),
    ("float-of-several", lambda m: float(_leafs(m))),
    ("float-of-one-requiring-grad", lambda m: float(m.ones(1, requires_grad=True))),
    ("int-of-several", lambda m: int(m.ones(3))),
    ("grad-non-scalar", lambda m: m.autograd.grad(_leafs(m) * 2, _leafs(m))),
    ("grad-unused-input", lambda m: m.autograd.grad((_leafs(m) * 2).sum(), [_leafs(m)])),
    ("grad-unused-second-input", lambda m: (lambda x: m.autograd.grad((x * 2).sum(), [x, _leafs(m)]))(_leafs(m))),
    ("grad-input-without-grad", lambda m: m.autograd.grad(_leafs(m).sum(), [m.ones(2)])),
    ("backward-gradient-shape", lambda m: (_leafs(m) * 2).backward(m.ones(2))),
    ("add-shapes", lambda m: m.ones(2, 3) + m.ones(2, 2)),
    ("mul-shapes-3d", lambda m: m.ones(4, 3) * m.ones(2, 1, 2)),
    ("matmul-2d", lambda m: m.ones(2, 3) @ m.ones(2, 3)),
    ("matmul-1d", lambda m: m.ones(3) @ m.ones(2)),
    ("matmul-2d-1d", lambda m: m.ones(2, 3) @ m.ones(2)),
    ("mm-shapes", lambda m: m.mm(m.ones(2, 3), m.ones(2, 3))),
    ("view-bad", lambda m: m.ones(3).view(2, 2)),
    ("view-minus-one", lambda m: m.ones(3).view(-1, 2)),
    ("reshape-bad", lambda m: m.ones(2, 3).reshape(4, 2)),
    ("retain-grad-without-grad", lambda m: m.ones(2).retain_grad()),
    ("backward-under-set-grad-enabled", lambda m: (lambda x: [m.set_grad_enabled(False), (x * 2).sum().backward()])(
        _leafs(m))),
    ("clamp-no-bounds", lambda m: m.clamp(m.ones(2))),
    ("index-out-of-range", lambda m: m.ones(2, 3)[5]), ("index-out-of-range-dim-1", lambda m: m.ones(2, 3)[0, 7]),
    ("sum-dim-out-of-range", lambda m: m.ones(2, 3).sum(3)), ("mean-dim-negative", lambda m: m.ones(2, 3).mean(-3)),
    ("sum-dim-of-0d", lambda m: m.tensor(1.0).sum(2)),
    ("sgd-no-params", lambda m: m.optim.SGD([], lr=0.1)), ("adam-no-params", lambda m: m.optim.Adam([], lr=0.1)),
    ("cat-sizes", lambda m: m.cat([m.ones(2, 3), m.ones(3, 2)])),
    ("cat-sizes-dim-1", lambda m: m.cat([m.ones(2, 3), m.ones(3, 2)], 1)),
    ("cat-sizes-third", lambda m: m.cat([m.ones(2, 3), m.ones(2, 3), m.ones(2, 2)])),
    ("cat-ranks", lambda m: m.cat([m.ones(2, 3), m.ones(3)])),
    ("cat-fits", lambda m: str(m.cat([m.ones(2, 3), m.ones(1, 3)], -2).shape)),
]


def _outcome(module, call) -> tuple:
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = call(module)
            result = ("ok", out if isinstance(out, str) else None)
        except Exception as exc:  # the error's class and text are what is compared
            result = (type(exc).__name__, str(exc))
        finally:
            module.set_grad_enabled(True)
    # "Converting a tensor with requires_grad=True to a scalar" comes once a process: not compared here
    return result, [str(w.message) for w in caught
                    if issubclass(w.category, UserWarning) and not str(w.message).startswith("Converting")]


def _torch_words(outcome: tuple) -> tuple:
    """torch's texts without the C++ location some warnings end with."""
    (kind, text), warned = outcome
    return (kind, text), [w.split(" (Triggered internally at")[0] for w in warned]


@pytest.mark.parametrize("label, call", MISUSE, ids=[c[0] for c in MISUSE])
def test_misuse_raises_torchs_words(label, call) -> None:
    assert _outcome(symgrad, call) == _torch_words(_outcome(torch, call))


def test_misuse_twin_the_texts_differ_between_spellings_of_one_mistake() -> None:
    """torch words the int-dtype mistake three ways; answering all three with one text would be caught."""
    texts = {_torch_words(_outcome(torch, call))[0][1] for label, call in MISUSE if label.startswith("requires-grad-int")}
    assert len(texts) == 3


def test_misuse_twin_a_shortened_text_is_caught(monkeypatch) -> None:
    from symgrad.tape import graph
    monkeypatch.setattr(graph, "_NON_LEAF_HINT", "")
    call = dict(MISUSE)["requires-grad-false-non-leaf"]
    assert _outcome(symgrad, call) != _torch_words(_outcome(torch, call))


def test_set_grad_enabled_as_a_context_manager_restores_the_mode() -> None:
    def run(m):
        x = _leafs(m)
        with m.set_grad_enabled(False):
            inside = (x * 2).requires_grad
        after = (x * 2).requires_grad
        m.set_grad_enabled(False)
        off = (x * 2).requires_grad
        m.set_grad_enabled(True)
        return inside, after, off
    assert run(symgrad) == run(torch) == (False, True, False)


def test_float_of_a_tensor_requiring_grad_warns_once() -> None:
    import warnings

    from symgrad.tape import graph
    graph._WARNED_SCALAR = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert float(symgrad.ones(1, requires_grad=True)) == 1.0
        float(symgrad.ones(1, requires_grad=True))
        float(symgrad.ones(1))
    assert [str(w.message).split()[0] for w in caught] == ["Converting"]


@pytest.mark.parametrize("label, call", [
    ("is_tensor", lambda m, x: (m.is_tensor(x), m.is_tensor(3.0), m.is_tensor([1.0]))),
    ("numel", lambda m, x: m.numel(x)),
    ("unsqueeze", lambda m, x: m.unsqueeze(x, 1).grad_fn.name()),
    ("flatten", lambda m, x: (m.flatten(x).grad_fn.name(), tuple(m.flatten(x, 1).shape))),
    ("permute", lambda m, x: (m.permute(x, (1, 0)).grad_fn.name(), m.permute(x, (1, 0)).tolist())),
    ("t", lambda m, x: (m.t(x).grad_fn.name(), m.t(x).tolist())),
])
def test_functional_forms_of_methods_as_torch(label, call) -> None:
    def run(m):
        return call(m, m.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True))
    assert run(symgrad) == run(torch)


def test_functional_forms_twin_a_wrong_node_name_is_caught() -> None:
    x = symgrad.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    tx = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert symgrad.t(x).grad_fn.name() != torch.transpose(tx, 0, 1).grad_fn.name()  # TBackward0, TransposeBackward0


@pytest.mark.parametrize("call", ["stack(ts, 1)", "stack(ts, dim=1)", "stack(ts, dim=-1)", "stack(ts)",
                                  "cat(ts, 0)", "cat(ts, dim=-1)"])
def test_stack_and_cat_read_a_dim_as_torch_does(call: str) -> None:
    real = pytest.importorskip("torch")
    outs = []
    for lib in (symgrad, real):
        a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        b = lib.tensor([4.0, 5.0, 6.0], requires_grad=True)
        ts = [a, b]
        fn = getattr(lib, call.split("(")[0])
        rest = call[call.index("(") + 4 : -1].lstrip(", ")
        kwargs = {k: int(v) for k, v in (p.split("=") for p in rest.split(", ") if "=" in p)} if rest else {}
        args = [int(p) for p in rest.split(", ") if p and "=" not in p]
        out = fn(ts, *args, **kwargs)
        weights = lib.arange(out.numel(), dtype=out.dtype).reshape(out.shape)
        (out * weights).sum().backward()
        outs.append((tuple(out.shape), out.detach().numpy().tolist(), a.grad.numpy().tolist(), b.grad.numpy().tolist()))
    assert outs[0] == outs[1]


def test_a_stack_dim_is_not_ignored() -> None:  # the twin: dim 1 and dim 0 differ, so the test above can fail
    ts = [symgrad.ones(3), symgrad.zeros(3)]
    assert symgrad.stack(ts, 1).shape == (3, 2) and symgrad.stack(ts, dim=1).shape == (3, 2)
    assert symgrad.stack(ts).shape == (2, 3)
