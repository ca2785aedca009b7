"""Forward mode (issue 18): ``symgrad.func.jvp``, each backend's JVP, ``mode_ad``/``tangent`` and ``--ad``.

Every "passes" test has a twin: an engine whose JVP is wrong while its VJP is right FAILS in
forward mode and PASSES in reverse mode, and the reverse."""

from __future__ import annotations

import json

import numpy as np
import pytest

import symgrad
from symgrad.backends.base import Capabilities
from symgrad.backends.symgrad_tape import SymgradBackend
from symgrad.checking.cases import CaseError
from symgrad.checking.cases.schema import case_from_dict
from symgrad.checking.forward import reference_jvp
from symgrad.checking.runner import Options, run_case
from symgrad.ir.parse import parse

A = {"a": [0.5, 1.0, 2.0], "b": [1.5, -1.0, 0.25]}


def jvp_of(report: symgrad.Report):
    return next(c for c in report.comparisons if c.name == "jvp")


# ---------------------------------------------------------------- symgrad.func.jvp


def test_func_jvp_matches_the_analytic_jvp():
    x = symgrad.tensor([1.0, 2.0, 3.0])
    y = symgrad.tensor([0.5, 1.0, 2.0])
    tx, ty = symgrad.tensor([1.0, -1.0, 0.5]), symgrad.tensor([0.0, 2.0, 1.0])
    out, jv = symgrad.func.jvp(lambda a, b: symgrad.sin(a) * b ** 2, (x, y), (tx, ty))
    xa, ya, txa, tya = (t.numpy() for t in (x, y, tx, ty))
    np.testing.assert_allclose(out.numpy(), np.sin(xa) * ya ** 2)
    np.testing.assert_allclose(jv.numpy(), np.cos(xa) * ya ** 2 * txa + np.sin(xa) * 2 * ya * tya)
    assert not out.requires_grad and not jv.requires_grad


def test_func_jvp_of_a_non_elementwise_function_and_its_twin():
    x = symgrad.tensor([1.0, 2.0, 3.0])
    t = symgrad.tensor([1.0, 1.0, 1.0])
    _, jv = symgrad.func.jvp(lambda a: a.sum() * a, (x,), (t,))
    np.testing.assert_allclose(jv.numpy(), [9.0, 12.0, 15.0])  # d/de sum(x + e t)(x + e t)
    _, jv_wrong = symgrad.func.jvp(lambda a: a.sum() * a, (x,), (symgrad.tensor([1.0, 0.0, 0.0]),))
    assert not np.allclose(jv_wrong.numpy(), [9.0, 12.0, 15.0])  # the tangent matters


def test_func_jvp_refuses_a_tangent_of_another_shape():
    with pytest.raises(ValueError, match="tangent 0 has shape"):
        symgrad.func.jvp(symgrad.sin, (symgrad.tensor([1.0, 2.0]),), (symgrad.tensor([1.0]),))


def test_func_jvp_of_a_constant_function_is_zero():
    out, jv = symgrad.func.jvp(lambda a: symgrad.tensor([1.0, 2.0]), (symgrad.tensor([3.0, 4.0]),),
                               (symgrad.tensor([1.0, 1.0]),))
    assert np.all(jv.numpy() == 0)


def test_func_jvp_agrees_with_torch_func_jvp():
    torch = pytest.importorskip("torch")
    x, t = np.array([0.3, -1.2, 2.0]), np.array([1.0, 0.5, -2.0])
    _, ours = symgrad.func.jvp(lambda a: symgrad.tanh(a) * symgrad.exp(a), (symgrad.tensor(x),), (symgrad.tensor(t),))
    _, theirs = torch.func.jvp(lambda a: torch.tanh(a) * torch.exp(a), (torch.tensor(x),), (torch.tensor(t),))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


# ---------------------------------------------------------------- the reference


@pytest.mark.parametrize("expr, shapes", [
    ("sum(sin(a) * b)", {"a": (3,), "b": (3,)}),          # scalar output
    ("sin(a) * b", {"a": (2, 3), "b": (3,)}),             # elementwise, b broadcast
    ("a @ b", {"a": (2, 3), "b": (3, 2)}),                # row by row
])
def test_reference_jvp_is_the_jacobian_times_the_tangent(expr, shapes):
    rng = np.random.default_rng(1)
    inputs = {n: rng.normal(size=s) for n, s in shapes.items()}
    tangents = {n: rng.normal(size=s) for n, s in shapes.items()}
    ir = parse(expr, list(shapes))
    ref = reference_jvp(ir, inputs, list(shapes), tangents)
    # central differences along the tangent: a float check of the exact reference
    h = 1e-6
    plus = symgrad.ir.expr.numpy_eval(ir, {n: inputs[n] + h * tangents[n] for n in shapes})
    minus = symgrad.ir.expr.numpy_eval(ir, {n: inputs[n] - h * tangents[n] for n in shapes})
    np.testing.assert_allclose(ref.jvp, (plus - minus) / (2 * h), rtol=1e-6, atol=1e-8)
    assert not ref.undefined.any()
    # twin: the contraction depends on the tangent (a reference that ignored it would match anything)
    other = reference_jvp(ir, inputs, list(shapes), {n: 2 * t for n, t in tangents.items()})
    np.testing.assert_allclose(other.jvp, 2 * ref.jvp, rtol=1e-12)


def test_reference_jvp_is_undefined_where_a_derivative_is():
    ir = parse("log(a) * b", ["a", "b"])
    ref = reference_jvp(ir, {"a": np.array([-1.0, 2.0]), "b": np.array([1.0, 1.0])}, ["a", "b"],
                        {"a": np.ones(2), "b": np.ones(2)})
    assert ref.undefined.tolist() == [True, False]


# ---------------------------------------------------------------- the runner, on every engine


FORWARD_ENGINES = ["symgrad", "torch", "jax", "autograd"]


@pytest.mark.parametrize("backend", FORWARD_ENGINES)
@pytest.mark.parametrize("ad", ["forward", "both"])
def test_forward_mode_passes_on_engines_that_have_it(backend, ad):
    r = symgrad.check("sin(a) * b**2 + sum(a)", **A, mode_ad=ad, backend=backend)
    assert r.status == "pass", r.table()
    names = [c.name for c in r.comparisons]
    assert "jvp" in names and (("a" in names) == (ad == "both"))


@pytest.mark.parametrize("backend", ["tinygrad", "mygrad"])
def test_forward_mode_is_skipped_with_the_reason_where_the_engine_has_none(backend):
    r = symgrad.check("sin(a) * b", **A, mode_ad="both", backend=backend)
    assert r.status == "skip" and "forward mode" in r.reason and "no forward-mode AD" in r.reason
    assert symgrad.check("sin(a) * b", **A, backend=backend).status == "pass"  # twin: reverse mode runs


class WrongJvp(SymgradBackend):
    """symgrad's tape with a planted forward-mode bug: the JVP of every op is doubled; VJPs are right."""

    name = "wrong-jvp"

    def forward_jvp(self, fn, primals, tangents):
        out, jv = super().forward_jvp(fn, primals, tangents)
        return out, jv * 2.0


class WrongVjp(SymgradBackend):
    """The reverse: the VJPs are doubled; the JVP is right."""

    name = "wrong-vjp"

    def gradients(self, expr, inputs, wrt, order, grad_output):
        value, grads = super().gradients(expr, inputs, wrt, order, grad_output)
        return value, {k: None if g is None else g * 2.0 for k, g in grads.items()}


def test_a_wrong_jvp_fails_in_forward_mode_and_passes_in_reverse_mode():
    assert symgrad.check("sin(a) * b", **A, backend=WrongJvp()).status == "pass"
    r = symgrad.check("sin(a) * b", **A, backend=WrongJvp(), mode_ad="forward")
    assert r.status == "fail"
    assert [c.name for c in r.comparisons if not c.passed] == ["jvp"]
    assert "jvp" in r.table()
    assert symgrad.check("sin(a) * b", **A, backend=WrongJvp(), mode_ad="both").status == "fail"


def test_a_wrong_vjp_fails_in_reverse_mode_and_passes_in_forward_mode():
    assert symgrad.check("sin(a) * b", **A, backend=WrongVjp(), mode_ad="forward").status == "pass"
    r = symgrad.check("sin(a) * b", **A, backend=WrongVjp())
    assert r.status == "fail" and "jvp" not in [c.name for c in r.comparisons]
    r = symgrad.check("sin(a) * b", **A, backend=WrongVjp(), mode_ad="both")
    assert r.status == "fail" and jvp_of(r).passed


def test_a_backend_that_declares_no_forward_mode_is_skipped_never_passed():
    class NoForward(SymgradBackend):
        name = "no-forward"
        capabilities = Capabilities(forward_note="planted")

    r = symgrad.check("sin(a) * b", **A, backend=NoForward(), mode_ad="forward")
    assert r.status == "skip" and "forward mode (planted)" in r.reason


def test_forward_mode_with_every_element_undefined_is_an_error_not_a_pass():
    r = symgrad.check("log(a)", a=[-1.0, -2.0], mode_ad="forward")
    assert r.status == "error" and "nothing compared" in r.reason


def test_forward_mode_float32():
    r = symgrad.check("sum(exp(a) * b)", a={"normal": [0, 1], "shape": [50]}, b={"normal": [0, 1], "shape": [50]},
                      mode_ad="forward", dtype="float32")
    assert r.status == "pass", r.table()
    wrong = symgrad.check("sum(exp(a) * b)", a={"normal": [0, 1], "shape": [50]},
                          b={"normal": [0, 1], "shape": [50]}, mode_ad="forward", dtype="float32",
                          backend=WrongJvp())
    assert wrong.status == "fail"


# ---------------------------------------------------------------- user functions: check_function


def _torch_cube(jvp_factor: float, backward_factor: float):
    torch = pytest.importorskip("torch")

    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            ctx.x = x
            return x ** 3

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return grad_output * backward_factor * x ** 2

        @staticmethod
        def jvp(ctx, tangent):
            return tangent * jvp_factor * ctx.x ** 2

    return Cube.apply


def test_torch_function_with_a_wrong_jvp_fails_forward_and_passes_reverse():
    cube = _torch_cube(jvp_factor=2.0, backward_factor=3.0)
    x = {"x": [0.5, 1.0, -2.0]}
    assert symgrad.check_function(cube, "x**3", backend="torch", **x).status == "pass"
    r = symgrad.check_function(cube, "x**3", backend="torch", **x, mode_ad="forward")
    assert r.status == "fail" and not jvp_of(r).passed


def test_torch_function_with_a_wrong_backward_passes_forward_and_fails_reverse():
    cube = _torch_cube(jvp_factor=3.0, backward_factor=2.0)
    x = {"x": [0.5, 1.0, -2.0]}
    assert symgrad.check_function(cube, "x**3", backend="torch", **x, mode_ad="forward").status == "pass"
    assert symgrad.check_function(cube, "x**3", backend="torch", **x).status == "fail"
    both = symgrad.check_function(cube, "x**3", backend="torch", **x, mode_ad="both")
    assert both.status == "fail" and jvp_of(both).passed


def test_torch_function_without_jvp_is_skipped_in_forward_mode():
    torch = pytest.importorskip("torch")

    class NoJvp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x ** 2

    r = symgrad.check_function(NoJvp.apply, "x**3", backend="torch", x=[1.0, 2.0], mode_ad="forward")
    assert r.status == "skip" and "jvp function" in r.reason


def test_jax_custom_jvp_wrong_rule_fails_forward_and_right_rule_passes():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    def make(factor):
        @jax.custom_jvp
        def f(x):
            return jnp.sin(x)

        f.defjvp(lambda p, t: (jnp.sin(p[0]), factor * jnp.cos(p[0]) * t[0]))
        return f

    assert symgrad.check_function(make(1.0), "sin(x)", backend="jax", x=[1.0, 2.0], mode_ad="forward").status == "pass"
    assert symgrad.check_function(make(2.0), "sin(x)", backend="jax", x=[1.0, 2.0], mode_ad="forward").status == "fail"


def test_jax_custom_vjp_is_skipped_in_forward_mode():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (g * jnp.cos(x),))
    r = symgrad.check_function(f, "sin(x)", backend="jax", x=[1.0, 2.0], mode_ad="forward")
    assert r.status == "skip" and "custom_vjp" in r.reason
    assert symgrad.check_function(f, "sin(x)", backend="jax", x=[1.0, 2.0]).status == "pass"


def test_symgrad_function_whose_backward_leaves_the_tape_fails_forward_mode():
    class OffTape(symgrad.autograd.Function):
        """Right VJP, computed in numpy: no graph, so the double-VJP trick has no JVP to find."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return symgrad.tensor(g.detach().numpy() * 3 * x.detach().numpy() ** 2)

    x = {"x": [0.5, 1.0, -2.0]}
    assert symgrad.check_function(OffTape.apply, "x**3", **x).status == "pass"
    assert symgrad.check_function(OffTape.apply, "x**3", **x, mode_ad="forward").status == "fail"


# ---------------------------------------------------------------- case keys


def case(**kw):
    return case_from_dict({"name": "c", "expr": "sin(a) * b", "inputs": {"a": [1.0, 2.0], "b": [3.0, 4.0]}, **kw})


@pytest.mark.parametrize("kw, message", [
    ({"mode_ad": "sideways"}, "mode_ad must be one of reverse, forward, both"),
    ({"mode_ad": "forward", "order": 2}, "mode_ad forward checks order 1"),
    ({"mode_ad": "forward", "expect": {"a": "cos(a)*b"}}, "use mode_ad both"),
    ({"tangent": {"c": [1.0, 1.0]}}, "tangent names 'c'"),
    ({"tangent": [1.0, 2.0, 3.0]}, "does not broadcast to the input's shape"),
    ({"tangent": "sideways"}, "is not a number, a list, 'random' or a generator"),
    ({"tangent": [1.0, float("nan")]}, "nan"),
])
def test_bad_forward_keys_are_errors_naming_the_key(kw, message):
    with pytest.raises(CaseError, match=message):
        case(**kw)


def test_good_forward_keys_load():
    assert case().mode_ad == "reverse"
    c = case(mode_ad="both", order=2, expect={"a": "cos(a)*b"}, tangent={"a": [1.0, 0.0]})
    t = c.make_tangents({"a": (2,), "b": (2,)})
    assert t["a"].tolist() == [1.0, 0.0] and t["b"].shape == (2,)


def test_tangents_are_seeded_and_leave_the_inputs_alone():
    plain, with_t = case(), case(tangent={"normal": [0, 2]})
    assert [np.array_equal(plain.make_inputs()[n], with_t.make_inputs()[n]) for n in "ab"] == [True, True]
    first = plain.make_tangents({"a": (2,), "b": (2,)})
    again = plain.make_tangents({"a": (2,), "b": (2,)})
    assert all(np.array_equal(first[n], again[n]) for n in "ab")
    other_seed = case(seed=1).make_tangents({"a": (2,), "b": (2,)})
    assert not np.array_equal(first["a"], other_seed["a"])  # twin: the seed changes them


def test_the_tangent_key_decides_the_jvp():
    one = run_case(case(mode_ad="forward", tangent={"a": [1.0, 1.0], "b": [0.0, 0.0]}))
    assert one.status == "pass"
    c = jvp_of(one)
    i = c.worst_index[0]
    assert c.expected == pytest.approx(np.cos([1.0, 2.0][i]) * [3.0, 4.0][i])  # J t = cos(a) b t_a, t_b = 0
    other = jvp_of(run_case(case(mode_ad="forward", tangent={"a": [0.0, 0.0], "b": [1.0, 1.0]})))
    assert other.expected == pytest.approx(np.sin([1.0, 2.0][other.worst_index[0]]))  # twin: J t = sin(a) t_b
    assert "tangent a: literal, b: literal" in c.note


def test_options_ad_overrides_the_case_key():
    c = case(mode_ad="forward")
    r = run_case(c, options=Options(ad="reverse"))
    assert "jvp" not in [x.name for x in r.comparisons]
    r = run_case(case(order=2, expect={"a": "cos(a)*b"}), options=Options(ad="forward"))
    assert r.status == "pass" and "not checked (reverse mode only)" in jvp_of(r).note


# ---------------------------------------------------------------- reports and the command line


def test_reports_name_the_jvp(tmp_path):
    from symgrad.checking import formats, html

    r = symgrad.check("sin(a) * b", **A, backend=WrongJvp(), mode_ad="both")
    d = r.to_dict()
    assert [c["name"] for c in d["comparisons"]][-1] == "jvp"
    json.dumps(d)
    assert "jvp" in r.table()
    assert "jvp" in formats.to_junit([r], [], 0.1)
    assert '"jvp"' in formats.to_json([r], [], 0.1, 1)
    assert ">jvp<" in html.to_html([r], [], 0.1, 1)
    passing = symgrad.check("sin(a) * b", **A, mode_ad="both")
    assert "<failure" not in formats.to_junit([passing], [], 0.1)  # twin: a right JVP is no failure


def test_cli_ad_option(tmp_path):
    from click.testing import CliRunner

    from symgrad.cli import main

    f = tmp_path / "c.yaml"
    f.write_text("cases:\n  - name: s\n    expr: sin(a) * b\n    inputs: {a: [1.0, 2.0], b: [3.0, 4.0]}\n")
    res = CliRunner().invoke(main, ["check", str(f), "--ad", "forward", "--format", "json"])
    assert res.exit_code == 0, res.output
    assert '"jvp"' in res.output
    res = CliRunner().invoke(main, ["check", str(f), "--format", "json"])
    assert res.exit_code == 0 and '"jvp"' not in res.output  # twin: reverse mode by default
    res = CliRunner().invoke(main, ["check", str(f), "--ad", "forward", "--backend", "tinygrad"])
    assert res.exit_code == 0 and "skip" in res.output.lower()
