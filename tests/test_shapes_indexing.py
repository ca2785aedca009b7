"""Indexing, slicing and shape ops (issue 15, part B): the parser's refusals (with positions) and
their accepted twins, the tape's grad_fn names against torch's, and checks that pass with their
failing twins."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from symgrad.ir import ops
from symgrad.ir.expr import numpy_eval, to_source
from symgrad.ir.parse import ParseError, parse

NAMES = ["x", "y"]


@pytest.mark.parametrize("text, column, token", [
    ("x[i]", 3, "i"),              # a name inside the brackets
    ("x[y]", 3, "y"),              # an input inside the brackets
    ("sin(x)[1 + 1]", 8, "1 + 1"),  # an expression
    ("x[0, 1:y]", 8, "y"),          # a name as a slice bound
    ("x[[0, 1]]", 3, "[0, 1]"),     # an array
    ("x[1.0]", 3, "1.0"),           # a float
    ("x[None]", 3, "None"),
    ("x['a']", 3, "'a'"),           # a string
    ("x[::0]", 5, "0"),             # a zero step
    ("x[..., ...]", 8, "..."),      # two ellipses
    ("reshape(x, (a, 2))", 13, "a"),
    ("reshape(x, (-1, -1))", 12, "(-1, -1)"),
    ("concatenate(x, axis=0)", 1, "concatenate"),
    ("sin('a')", 5, "'a'"),         # strings stay refused outside einsum
])
def test_refused_with_position(text: str, column: int, token: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text, NAMES)
    assert (info.value.column, info.value.token) == (column, token), str(info.value)


@pytest.mark.parametrize("text", [  # the nearest accepted twins of the refusals above
    "x[1]", "x[0, 1:3]", "x[1:-1]", "x[::2]", "x[..., -1]", "x[::-1]", "reshape(x, (2, -1))",
    "concatenate((x, y), axis=0)", "stack((x, y, x), axis=-1)", "transpose(x, axes=(1, 0))",
])
def test_accepted_twins_round_trip(text: str) -> None:
    e = parse(text, NAMES)
    assert to_source(parse(to_source(e), NAMES)) == to_source(e)
    x = np.arange(6.0).reshape(2, 3)
    want = {"x[1]": x[1], "x[::-1]": x[::-1], "x[..., -1]": x[..., -1],
            "stack((x, y, x), axis=-1)": np.stack((x, x + 1, x), axis=-1)}.get(text)
    got = numpy_eval(e, {"x": x, "y": x + 1})
    if want is not None:
        np.testing.assert_array_equal(got, want)


KEYS = [1, -1, (slice(None), 0), slice(1, 3), slice(None, None, 2), (Ellipsis, -1), (0, slice(1, None)),
        slice(None), (slice(None), slice(None)), (Ellipsis,), (slice(0, 2), 1), slice(None, None, -1)]


@pytest.mark.parametrize("key", KEYS, ids=[repr(k) for k in KEYS])
def test_tape_getitem_grad_and_grad_fn_as_torch(key: object) -> None:
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(0).normal(size=(2, 3, 4))
    x = symgrad.tensor(data, requires_grad=True)
    y = x[key]
    try:
        tx = torch.tensor(data, requires_grad=True)
        ty = tx[key]
    except ValueError:  # torch has no negative steps: flip instead
        tx = torch.tensor(data, requires_grad=True)
        ty = tx.flip(0)
        assert y.grad_fn.name() == "SliceBackward0"
    else:
        assert y.grad_fn.name() == ty.grad_fn.name()
    g = np.random.default_rng(1).normal(size=y.shape)
    (y * symgrad.tensor(g)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
    assert np.any(x.grad.numpy() == 0) or y.shape == x.shape  # the other elements get 0


def test_tape_getitem_differentiates_twice() -> None:
    x = symgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (g,) = symgrad.autograd.grad((x[1:] ** 3).sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), [0.0, 12.0, 27.0])
    (h,) = symgrad.autograd.grad(g.sum(), [x])
    np.testing.assert_allclose(h.numpy(), [0.0, 12.0, 18.0])


def test_tape_advanced_index_with_grad_is_recorded_and_plain_is_not() -> None:
    x = symgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x[np.array([0, 2, 2])]  # torch's IndexBackward0 (symgrad/tape/selection.py)
    assert y.grad_fn.name() == "IndexBackward0"
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 2.0]  # a repeated index gets its gradients summed
    np.testing.assert_array_equal(x.detach()[np.array([0, 2])].numpy(), [1.0, 3.0])
    assert x.detach()[np.array([0, 2])].grad_fn is None


@pytest.mark.parametrize("make, want", [
    (lambda t: symgrad.reshape(t, shape=(3, 2)), "ViewBackward0"),
    (lambda t: symgrad.transpose(t, axes=(1, 0)), "PermuteBackward0"),
    (lambda t: symgrad.expand_dims(t, axis=0), "UnsqueezeBackward0"),
    (lambda t: symgrad.squeeze(symgrad.expand_dims(t, axis=0), axis=0), "SqueezeBackward1"),
    (lambda t: symgrad.squeeze(symgrad.expand_dims(t, axis=0), axis=(0,)), "SqueezeBackward2"),
    (lambda t: symgrad.flip(t, axis=0), "FlipBackward0"),
    (lambda t: symgrad.broadcast_to(t, shape=(4, 2, 3)), "ExpandBackward0"),
    (lambda t: symgrad.concatenate(t, t, axis=0), "CatBackward0"),
    (lambda t: symgrad.stack(t, t, axis=0), "StackBackward0"),
])
def test_shape_ops_grad_fn_names(make: object, want: str) -> None:
    x = symgrad.tensor(np.ones((2, 3)), requires_grad=True)
    assert make(x).grad_fn.name() == want  # type: ignore[operator]


# ---------------------------------------------------------------- checks and their failing twins


@pytest.mark.parametrize("expr", ["x[1] * 3", "concatenate((x, x * 2), axis=0)", "flip(x, axis=0) * x"])
def test_check_passes_and_its_wrong_expect_twin_fails(expr: str) -> None:
    x = [[1.0, 2.0], [3.0, 4.0]]
    assert symgrad.check(expr, x=x)
    assert not symgrad.check(expr, x=x, expect={"x": [[1.0, 1.0], [1.0, 1.0]]})


def test_a_wrong_index_backward_is_caught() -> None:
    """A custom torch function taking row 0 whose backward scatters into the wrong row fails the check;
    its twin with the right backward passes."""
    torch = pytest.importorskip("torch")

    def row0(wrong_row: int) -> object:
        class Row0(torch.autograd.Function):
            @staticmethod
            def forward(ctx: object, x: object) -> object:  # type: ignore[override]
                return x[0].clone()

            @staticmethod
            def backward(ctx: object, g: object) -> object:  # type: ignore[override]
                out = torch.zeros(2, 2, dtype=g.dtype)
                out[wrong_row] = g
                return out

        return Row0.apply

    case = dict(x=[[1.0, 2.0], [3.0, 4.0]], grad_output=[2.0, -1.0])
    assert symgrad.check_function(row0(0), "x[0]", **case)
    assert not symgrad.check_function(row0(1), "x[0]", **case)


# ---------------------------------------------------------------- linear algebra: einsum's string, det, inv ...


@pytest.mark.parametrize("text, column, token", [
    ('einsum("ij,jk->ik;", x, y)', 18, ";"),      # a character outside [a-zA-Z,.>-]
    ('einsum("ij,jk->i k", x, y)', 17, " "),
    ('einsum("ij,jk,kl->il", x, y)', 9, "i"),     # three operands named, two given
    ('einsum("ij", x, y)', 9, "i"),
    ('einsum("...j,jk->k", x, y)', 18, "k"),      # '...' in an operand and not in the output
    ('einsum("i.j,jk->ik", x, y)', 10, "."),
    ('einsum("i....j,jk->ik", x, y)', 10, "."),
    ('einsum("i-j,jk->ik", x, y)', 10, "-"),
    ('einsum("ij,jk->i>k", x, y)', 17, ">"),
    ('einsum("ij,jk-ik", x, y)', 14, "-"),
    ('einsum("ij,jk->ikz", x, y)', 18, "z"),
    ('einsum("ij,jk->iki", x, y)', 18, "i"),      # an output index twice
    ('einsum("ij,jk->i,k", x, y)', 17, ","),
    ('einsum("...i...,jk->ik", x, y)', 13, "."),
    ('einsum("ij,jk->...ik", x, y)', 16, "."),    # '...' in the output only
    ('einsum(x, y)', 8, "x"),
    ("einsum(r'ij,jk->ik', x, y)", 8, "r'ij,jk->ik'"),
    ('det("ij")', 5, '"ij"'),                     # strings anywhere else stay refused
    ('x + "a"', 5, '"a"'),
])
def test_einsum_strings_refused_with_position(text: str, column: int, token: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text, NAMES)
    assert (info.value.column, info.value.token) == (column, token), str(info.value)


@pytest.mark.parametrize("text, want", [  # the accepted twins
    ('einsum("ij,jk->ik", x, y)', lambda a, b: a @ b),
    ("einsum('ij,kj->ik', x, y)", lambda a, b: a @ b.T),
    ('einsum("ij,ij->ji", x, y)', lambda a, b: (a * b).T),
    ('einsum("ii,jk->ik", x, y)', lambda a, b: np.einsum("ii,jk->ik", a, b)),  # a diagonal inside one operand
    ('einsum("ii->", x)', lambda a, b: np.trace(a)),
    ('einsum("ii->i", x)', lambda a, b: np.diagonal(a)),
    ('einsum("ij,jk", x, y)', lambda a, b: a @ b),                              # implicit output
    ('einsum("ba", x)', lambda a, b: a.T),
    ('einsum("ij,jk->k", x, y)', lambda a, b: a.sum(0) @ b),                    # summed in one operand only
    ('einsum("ij,jk,kl->il", x, y, x)', lambda a, b: a @ b @ a),
    ('einsum("...j,kj->...k", x, y)', lambda a, b: a @ b.T),
    ('einsum("i...,i...", x, y)', lambda a, b: (a * b).sum(0)),
    ("det(x)", lambda a, b: np.linalg.det(a)),
    ("inv(x)", lambda a, b: np.linalg.inv(a)),
    ("solve(x, y)", lambda a, b: np.linalg.solve(a, b)),
    ("trace(x)", lambda a, b: np.trace(a)),
])
def test_linalg_accepted_and_evaluated(text: str, want: object) -> None:
    a = np.array([[4.0, 1.0], [0.5, 3.0]])
    b = np.array([[1.0, 2.0], [3.0, -1.0]])
    e = parse(text, NAMES)
    assert to_source(parse(to_source(e), NAMES)) == to_source(e)
    np.testing.assert_allclose(numpy_eval(e, {"x": a, "y": b}), want(a, b))  # type: ignore[operator]


def test_linalg_grad_fn_names_as_torch() -> None:
    torch = pytest.importorskip("torch")
    data = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
    x, tx = symgrad.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    pairs = [(symgrad.det(x), torch.linalg.det(tx)), (symgrad.inv(x), torch.linalg.inv(tx)),
             (symgrad.solve(x, x), torch.linalg.solve(tx, tx)), (symgrad.trace(x), torch.trace(tx)),
             (symgrad.einsum(x, x, subscripts="ij,jk->ik"), torch.einsum("ij,jk->ik", tx, tx)),
             (symgrad.einsum(x, x, subscripts="ij,ij->ij"), torch.einsum("ij,ij->ij", tx, tx))]
    for ours, theirs in pairs:
        assert ours.grad_fn.name() == theirs.grad_fn.name()


def test_linalg_forwards_refuse_what_the_vjps_do_not_cover() -> None:
    with pytest.raises(ValueError, match=r"square matrix or a stack of them \(\.\.\., n, n\)"):
        ops.det.forward(np.ones((2, 3, 2)))  # stacks of square matrices only (tests/test_linalg_batched.py)
    with pytest.raises(ValueError, match="einsum subscripts"):
        ops.einsum.forward(np.ones((2, 2)), np.ones((2, 2)), subscripts="ii,jk,k->k")
    assert ops.det.forward(np.eye(3)) == 1.0


@pytest.mark.parametrize("expr", ["det(x)", "trace(x @ x)", "sum(inv(x))", "sum(solve(x, x[0]))",
                                  'sum(einsum("ij,kj->ik", x, x))'])
def test_linalg_check_passes_and_its_wrong_expect_twin_fails(expr: str) -> None:
    x = [[4.0, 1.0], [0.5, 3.0]]
    assert symgrad.check(expr, x=x, order=2)
    assert not symgrad.check(expr, x=x, expect={"x": [[1.0, 0.0], [0.0, 1.0]]})
