"""The tape keeps only what backward needs, frees it after use, and never aliases gradients."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import symgrad as torch
from symgrad.tape import graph as tape


def _live(arr_ref: weakref.ref) -> bool:
    gc.collect()
    return arr_ref() is not None


def test_a_node_saves_only_what_its_vjp_reads():
    a = torch.tensor([0.5, 1.0], requires_grad=True)
    b = torch.tensor([2.0, 3.0], requires_grad=True)
    e = torch.exp(a)  # exp's VJP reads its output, not its input
    assert e.grad_fn.ans is not None and isinstance(e.grad_fn.inputs[0], tape._Meta)
    s = torch.sin(a)  # sin's VJP reads its input, not its output
    assert s.grad_fn.ans is None and s.grad_fn.inputs[0] is a
    m = a * 3.0  # scaling by a number keeps the number (torch saves it: no second backward), not a's data
    assert m.grad_fn.saves and m.grad_fn.inputs[1] == 3.0 and isinstance(m.grad_fn.inputs[0], tape._Meta)
    c = torch.tensor([1.0, 1.0])  # mul by a constant tensor: only the VJP of a runs, and it reads c
    p = a * c
    assert p.grad_fn.inputs[1] is c and isinstance(p.grad_fn.inputs[0], tape._Meta)
    q = a + b  # add saves nothing, not even its inputs' data
    assert all(isinstance(x, tape._Meta) for x in q.grad_fn.inputs) and not q.grad_fn.saves


def test_intermediates_are_not_kept_alive_by_the_graph():
    a = torch.tensor(np.linspace(0.5, 2.0, 1000), requires_grad=True)
    x = a * 2.0
    mid_ref = weakref.ref(x._data)
    y = torch.tanh(x)  # tanh's VJP reads its output, not x
    del x
    assert not _live(mid_ref)  # the graph does not keep the product alive
    y.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 2.0 * (1 - np.tanh(2.0 * a.detach().numpy()) ** 2))


@pytest.mark.slow
def test_saved_tensors_are_freed_after_backward():
    a = torch.tensor(np.linspace(0.5, 2.0, 1000), requires_grad=True)
    s = torch.sin(a * 2.0)  # sin saves its input, a * 2.0
    saved = weakref.ref(s.grad_fn.inputs[0]._data)
    out = s.sum()
    del s
    assert _live(saved)
    out.backward()
    assert not _live(saved)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        out.backward()


def test_retain_graph_keeps_them():
    a = torch.tensor([0.5, 1.0], requires_grad=True)
    out = torch.sin(a * 2.0).sum()
    out.backward(retain_graph=True)
    out.backward()
    np.testing.assert_allclose(a.grad.numpy(), 2 * 2.0 * np.cos(2 * np.array([0.5, 1.0])))


def test_linear_graphs_can_be_run_twice():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    out = (a + a - 3.0).sum()
    out.backward()
    out.backward()
    np.testing.assert_array_equal(a.grad.numpy(), [4.0, 4.0])


def test_grad_is_never_the_callers_array():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    g = torch.tensor([5.0, 7.0])
    (a + 0.0).backward(g)
    assert not np.shares_memory(a.grad.numpy(), g.numpy())
    a.grad.zero_()
    np.testing.assert_array_equal(g.numpy(), [5.0, 7.0])


def test_fresh_gradients_are_owned_once():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    y = a * a * 3.0  # several contributions accumulate in place into one fresh buffer
    ga, gb = torch.autograd.grad(y.sum(), [a, a])
    np.testing.assert_array_equal(ga.numpy(), [6.0, 12.0])
    assert not np.shares_memory(ga.numpy(), gb.numpy())
    b = torch.tensor([1.0, 2.0], requires_grad=True)
    z = b + b  # add hands its incoming gradient to both inputs: the same array twice
    z.backward(torch.tensor([1.0, 1.0]))
    np.testing.assert_array_equal(b.grad.numpy(), [2.0, 2.0])


def test_retained_grad_and_leaf_grad_do_not_alias():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    h = torch.exp(a) * 1.0
    h.retain_grad()
    k = h * 2.0
    (k + h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [3.0, 3.0])
    np.testing.assert_allclose(a.grad.numpy(), 3.0 * np.exp([1.0, 2.0]))
    assert not np.shares_memory(h.grad.numpy(), a.grad.numpy())


def test_accumulation_across_calls_and_float32():
    a = torch.tensor([1.0, 2.0], dtype=torch.float32, requires_grad=True)
    for _ in range(3):
        (a * a).sum().backward()
    assert a.grad.dtype == np.float32
    np.testing.assert_array_equal(a.grad.numpy(), [6.0, 12.0])


def test_create_graph_still_records_the_backward_pass():
    a = torch.tensor([0.5, 1.5], requires_grad=True)
    (g,) = torch.autograd.grad(torch.exp(torch.sin(a)).sum(), a, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), a)
    x = np.array([0.5, 1.5])
    np.testing.assert_allclose(h.numpy(), np.exp(np.sin(x)) * (np.cos(x) ** 2 - np.sin(x)))
