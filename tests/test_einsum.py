"""Issue 15: einsum in full - one operand, three or more (folded into einsums of two), repeated
indices in an operand (traces, diagonals), indices summed in one operand only, '...' broadcasting and
the implicit output - with twins where a planted wrong VJP or a wrong expectation fails."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

import symgrad
from symgrad.backends.symgrad_tape import SymgradBackend
from symgrad.checking.cases.files import load_file
from symgrad.checking.runner import run_case
from symgrad.ir import ops
from symgrad.ir.expr import numpy_eval, to_source, trace, trace_inputs
from symgrad.ir.parse import parse

RNG = np.random.default_rng(11)

# (subscripts, operand shapes): every part of numpy's subscript language
FORMS = [
    ("ii->", [(3, 3)]), ("ii->i", [(3, 3)]), ("ii", [(3, 3)]), ("ba", [(3, 2)]), ("bii->bi", [(2, 3, 3)]),
    ("ij,jk", [(2, 3), (3, 4)]), ("ii,ij->j", [(3, 3), (3, 4)]), ("ij,jk->k", [(2, 3), (3, 4)]),
    ("ij,kk->jk", [(2, 3), (3, 3)]), ("...ij,...jk->...ik", [(2, 1, 2, 3), (3, 3, 2)]),
    ("i...,i...", [(3, 2), (3, 2)]), ("...ii->...i", [(2, 3, 3)]), ("iji->ij", [(2, 3, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]), ("i,ij,j->", [(3,), (3, 3), (3,)]),
    ("ij,jk,kk,kl->il", [(2, 3), (3, 3), (3, 3), (3, 2)]), ("...i,...ij,...j", [(2, 3), (1, 3, 3), (3,)]),
]


def _inputs(shapes: list[tuple[int, ...]]) -> dict[str, np.ndarray]:
    return {f"x{i}": RNG.normal(size=s) for i, s in enumerate(shapes)}


def _expr(subscripts: str, n: int) -> str:
    return f"sum(sin(einsum({subscripts!r}, {', '.join(f'x{i}' for i in range(n))})))"


@pytest.mark.parametrize("subscripts, shapes", FORMS, ids=[f[0] for f in FORMS])
def test_forward_is_numpys_einsum(subscripts: str, shapes: list) -> None:
    xs = [RNG.normal(size=s) for s in shapes]
    np.testing.assert_allclose(ops.einsum(subscripts, *xs), np.einsum(subscripts, *xs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("subscripts, shapes", FORMS, ids=[f[0] for f in FORMS])
def test_every_form_passes_at_order_2_and_prints_back(subscripts: str, shapes: list) -> None:
    inputs = _inputs(shapes)
    expr = _expr(subscripts, len(shapes))
    e = parse(expr, list(inputs))
    assert to_source(parse(to_source(e), list(inputs))) == to_source(e)
    r = symgrad.check(expr, inputs=inputs, order=2)
    assert r.status == "pass", r.table()


@pytest.mark.parametrize("subscripts, shapes", FORMS, ids=[f[0] for f in FORMS])
def test_the_tape_agrees_with_torch_at_order_2(subscripts: str, shapes: list) -> None:
    torch = pytest.importorskip("torch")
    xs = [RNG.normal(size=s) for s in shapes]
    ours = [symgrad.tensor(x, requires_grad=True) for x in xs]
    theirs = [torch.tensor(x, requires_grad=True) for x in xs]
    out, tout = symgrad.einsum(subscripts, *ours), torch.einsum(subscripts, *theirs)
    assert out.grad_fn is not None and tuple(out.shape) == tuple(tout.shape)
    g = RNG.normal(size=tuple(tout.shape))
    first = symgrad.autograd.grad(out, ours, symgrad.tensor(g), create_graph=True)
    tfirst = torch.autograd.grad(tout, theirs, torch.tensor(g), create_graph=True)
    second = symgrad.autograd.grad(sum((f ** 2).sum() for f in first) + (ours[0] ** 3).sum(), ours)
    tsecond = torch.autograd.grad(sum((f ** 2).sum() for f in tfirst) + (theirs[0] ** 3).sum(), theirs)
    for a, b in zip((*first, *second), (*tfirst, *tsecond)):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)


class _WrongEinsum(SymgradBackend):
    """symgrad's tape with einsum's VJPs spreading the gradient over every element of a repeated
    index instead of the diagonal only (identity matrices replaced by ones)."""

    name = "wrong-einsum"

    def __init__(self) -> None:
        def spread(k: int) -> Any:
            right = ops.einsum.vjps[k]

            def vjp(g: Any, ans: Any, a: Any, b: Any, subscripts: str) -> Any:
                real_eye = np.eye
                np.eye = lambda n, *args, **kw: np.ones((n, n))  # type: ignore[assignment]
                try:
                    return right(g, ans, a, b, subscripts)
                finally:
                    np.eye = real_eye
            return vjp
        self._wrong = dataclasses.replace(ops.einsum, vjps=(spread(0), spread(1)))

    def apply(self, op: Any, args: list[Any], params: dict[str, Any]) -> Any:
        return super().apply(self._wrong if op is ops.einsum else op, args, params)


@pytest.mark.parametrize("subscripts, shapes", [f for f in FORMS if ops.einsum_repeats(f[0])],
                         ids=[f[0] for f in FORMS if ops.einsum_repeats(f[0])])
def test_a_vjp_that_forgets_the_diagonal_fails(subscripts: str, shapes: list) -> None:
    inputs = _inputs(shapes)
    r = symgrad.check(_expr(subscripts, len(shapes)), inputs=inputs, backend=_WrongEinsum())
    assert r.status == "fail", r.table()


def test_the_trace_gradient_is_the_identity_and_its_twin() -> None:
    a = RNG.normal(size=(3, 3)).tolist()
    assert symgrad.check('einsum("ii->", a)', inputs={"a": a}, expect={"a": np.eye(3).tolist()}).status == "pass"
    assert symgrad.check('einsum("ii->", a)', inputs={"a": a}, expect={"a": np.ones((3, 3)).tolist()}).status == "fail"


def test_one_operand_and_three_fold_into_einsums_of_two() -> None:
    e = parse('einsum("ij,jk,kl->il", a, b, c)', ["a", "b", "c"])
    assert to_source(e) == "einsum('ik,kl->il', einsum('ij,jk->ik', a, b), c)"
    assert to_source(parse('einsum("ii", a)', ["a"])) == "einsum('ii->', a)"
    assert to_source(parse('einsum("ij,jk", a, b)', ["a", "b"])) == "einsum('ij,jk->ik', a, b)"
    assert to_source(parse('einsum("...ij,...jk,...kl", a, b, c)', ["a", "b", "c"])) == (
        "einsum('...ik,...kl->...il', einsum('...ij,...jk->...ik', a, b), c)")


def test_implicit_output_is_numpys_alphabetical_order() -> None:
    a, b = np.ones((2, 3)), np.ones((4, 5))
    assert ops.einsum("bA,aB", a, b).shape == np.einsum("bA,aB", a, b).shape == (3, 5, 4, 2)


def test_a_case_file_with_a_wrong_operand_count_names_file_case_and_position(tmp_path: Any) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text('cases:\n  - name: three-named\n    expr: einsum("ij,jk,kl->il", a, b)\n'
                    '    inputs: {a: [[1.0]], b: [[2.0]]}\n  - name: fine\n    expr: einsum("ii", a)\n'
                    '    inputs: {a: [[1.0, 2.0], [3.0, 4.0]]}\n')
    cases, errors = load_file(path)
    assert [c.name for c in cases] == ["fine"] and run_case(cases[0]).status == "pass"
    (error,) = errors
    text = str(error)
    assert "bad.yaml" in text and "three-named" in text and "3 operand(s), the call gives 2" in text, text
    assert "column 9" in text or ":9" in text or "^" in text, text


def test_engines_without_a_form_skip_with_the_reason() -> None:
    pytest.importorskip("autograd")
    r = symgrad.check('einsum("ii->i", a)', inputs={"a": np.eye(2)}, backend="autograd")
    assert r.status == "skip" and "repeated in one operand" in str(r), str(r)
    assert symgrad.check('einsum("ij,jk", a, a)', inputs={"a": np.eye(2)}, backend="autograd").status == "pass"


TRACED = [("ii", lambda x0: np.einsum("ii", x0), [(3, 3)]),
          ("ij,jk,kl->il", lambda x0, x1, x2: np.einsum("ij,jk,kl->il", x0, x1, x2), [(2, 3), (3, 4), (4, 2)]),
          ("...ij,...jk", lambda x0, x1: np.einsum("...ij,...jk", x0, x1), [(2, 2, 3), (3, 2)])]


@pytest.mark.parametrize("subscripts, call, shapes", TRACED, ids=[t[0] for t in TRACED])
def test_numpy_einsum_traces_into_the_fold(subscripts: str, call: Any, shapes: list) -> None:
    xs = [RNG.normal(size=s) for s in shapes]
    ir = trace(call)
    inputs = dict(zip(trace_inputs(call), xs))
    np.testing.assert_allclose(numpy_eval(ir, inputs), np.einsum(subscripts, *xs), rtol=1e-12)
    assert not np.allclose(numpy_eval(ir, inputs), np.einsum(subscripts, *xs) + 1e-3, rtol=1e-12)  # the comparison sees a change
