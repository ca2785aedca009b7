"""Traced functions as people write them: the tape's methods, numpy's functions, numpy constants, defaults."""

import numpy as np
import pytest

import symgrad
from symgrad.api import make_case
from symgrad.ir import ops
from symgrad.ir.expr import Call, Var, numpy_eval, to_source, trace, trace_inputs, variables
from symgrad.ir.parse import parse
from symgrad.ir.tracing import MAX_CONSTANT_ELEMENTS


def src(fn) -> str:
    return to_source(trace(fn))


def same_tree(a, b) -> bool:
    return to_source(a) == to_source(b)


# ---------------------------------------------------------------- the tape's methods


def test_methods_as_on_the_tape():
    assert src(lambda x: x.tanh()) == "tanh(x)"
    assert src(lambda x: x.sum(axis=0)) == "sum(x, axis=0)"
    assert src(lambda x: x.sum(dim=1, keepdim=True)) == "sum(x, axis=1, keepdims=True)"
    assert src(lambda x: x.T) == "transpose(x)" == src(lambda x: x.t())
    assert src(lambda x: x.softmax(-1)) == "softmax(x, axis=-1)"
    assert src(lambda x: x.clamp(0.0, 1.0)) == src(lambda x: x.clip(0.0, 1.0)) == "clip(x, 0.0, 1.0)"
    assert src(lambda x: x.elu(alpha=2.0)) == "elu(x, alpha=2.0)"
    assert src(lambda x: x.permute(1, 0)) == "transpose(x, axes=(1, 0))"
    assert src(lambda x: x.reshape(2, 3)) == src(lambda x: x.view((2, 3))) == "reshape(x, shape=(2, 3))"
    assert src(lambda x: x.unsqueeze(0)) == "expand_dims(x, axis=0)"
    assert src(lambda x: abs(x)) == "abs(x)"


def test_every_elementwise_op_reduction_and_scan_is_a_method():
    x = Var("x")
    for op in ops.public_ops():
        if op.kind not in (ops.ELEMENTWISE, ops.REDUCTION, ops.SCAN):
            continue
        others = [Var("y"), Var("z")][: op.arity - 1]
        out = getattr(x, op.name)(*others)
        assert isinstance(out, Call) and out.op is op, op.name


def test_traced_methods_check_the_gradient():
    """The method-traced reference is what it says: a right tape passes, a wrong derivative fails."""
    ok = symgrad.check(lambda x: x.tanh().sum(axis=0) + x.T.sum(), x=[[0.3, 1.2], [-1.0, 2.0]])
    assert ok.status == "pass"
    bad = symgrad.check(lambda x: x.tanh().sum(axis=0), x=[[0.3, 1.2], [-1.0, 2.0]], expect={"x": "1 - tanh(x)"})
    assert bad.status == "fail"


def test_a_method_the_ir_has_not_is_an_attribute_error():
    with pytest.raises(AttributeError):
        trace(lambda x: x.backward())


# ---------------------------------------------------------------- numpy ufuncs and functions

# every op of the table that numpy has by one of its names: a call, the inputs, and numpy's own result
X = np.array([[0.3, -1.2, 0.7], [1.5, 0.2, -0.4]])
Y = np.array([[1.1, 0.5, -2.0], [0.25, 2.5, 1.0]])
SQUARE = np.array([[2.0, 0.5], [0.3, 1.5]])
POSITIVE = np.abs(X) + 0.5  # log, sqrt, ...
UNIT = np.clip(X, -0.9, 0.9)  # arcsin, arctanh
ABOVE_ONE = np.abs(X) + 1.1  # arccosh

FUNCTIONS = {  # name -> (call on the traced values / arrays, inputs)
    "where": (lambda x, y: np.where(x, x, y), (X, Y)),
    "clip": (lambda x: np.clip(x, -0.5, 0.5), (X,)),
    "round": (lambda x: np.round(x), (X * 3,)),
    "sum": (lambda x: np.sum(x, axis=0), (X,)),
    "mean": (lambda x: np.mean(x, axis=1, keepdims=True), (X,)),
    "prod": (lambda x: np.prod(x, 0), (X,)),
    "max": (lambda x: np.max(x, axis=1), (X,)),
    "amax": (lambda x: np.amax(x), (X,)),
    "min": (lambda x: np.min(x, axis=0), (X,)),
    "amin": (lambda x: np.amin(x, axis=1), (X,)),
    "var": (lambda x: np.var(x, axis=0, ddof=1), (X,)),
    "std": (lambda x: np.std(x), (X,)),
    "cumsum": (lambda x: np.cumsum(x, axis=0), (X,)),
    "cumprod": (lambda x: np.cumprod(x, axis=-1), (X,)),
    "norm": (lambda x: np.linalg.norm(x, axis=0), (X,)),
    "transpose": (lambda x: np.transpose(x, (1, 0)), (X,)),
    "reshape": (lambda x: np.reshape(x, (3, 2)), (X,)),
    "broadcast_to": (lambda x: np.broadcast_to(x, (4, 2, 3)), (X,)),
    "expand_dims": (lambda x: np.expand_dims(x, 1), (X,)),
    "squeeze": (lambda x: np.squeeze(x, axis=0), (X[:1],)),
    "flip": (lambda x: np.flip(x, axis=1), (X,)),
    "concatenate": (lambda x, y: np.concatenate((x, y, x), axis=1), (X, Y)),
    "stack": (lambda x, y: np.stack((x, y), axis=-1), (X, Y)),
    "einsum": (lambda x, y: np.einsum("ij,kj->ik", x, y), (X, Y)),
    "det": (lambda x: np.linalg.det(x), (SQUARE,)),
    "inv": (lambda x: np.linalg.inv(x), (SQUARE,)),
    "solve": (lambda x, y: np.linalg.solve(x, y), (SQUARE, SQUARE[:, :1])),
    "trace": (lambda x: np.trace(x), (SQUARE,)),
}
DOMAIN = {"log": POSITIVE, "log2": POSITIVE, "log10": POSITIVE, "log1p": POSITIVE, "sqrt": POSITIVE,
          "arcsin": UNIT, "arccos": UNIT, "arctanh": UNIT, "asin": UNIT, "acos": UNIT, "atanh": UNIT,
          "arccosh": ABOVE_ONE, "acosh": ABOVE_ONE, "power": POSITIVE, "pow": POSITIVE, "reciprocal": POSITIVE,
          "divide": POSITIVE, "true_divide": POSITIVE}


def numpy_names() -> dict[str, object]:
    """Every name (op name or alias) of a public op that numpy (or numpy.linalg) has."""
    found = {}
    for op in ops.public_ops():
        for name in (op.name, *op.aliases):
            f = getattr(np, name, None) or getattr(np.linalg, name, None)
            if callable(f):
                found[name] = f
    return found


UFUNCS = sorted(n for n, f in numpy_names().items() if isinstance(f, np.ufunc))


def test_the_tables_numpy_names_are_all_covered():
    """Adding an op that numpy has without a case here fails this test."""
    assert set(numpy_names()) == set(UFUNCS) | set(FUNCTIONS)


@pytest.mark.parametrize("name", UFUNCS)
def test_numpy_ufunc_traces_into_its_op(name):
    ufunc = getattr(np, name)
    op = ops.lookup(name)
    ir = trace(lambda x, y: ufunc(*(x, y)[: ufunc.nin]))
    assert isinstance(ir, Call) and ir.op is op
    a = DOMAIN.get(name, X)
    b = np.abs(Y) + 0.5 if name not in ("matmul",) else Y.T
    inputs = {"x": a, "y": b}
    np.testing.assert_allclose(numpy_eval(ir, inputs), ufunc(*(a, b)[: ufunc.nin]), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_numpy_function_traces_into_its_op_with_numpys_meaning(name):
    call, arrays = FUNCTIONS[name]
    ir = trace(call)
    assert any(isinstance(n, Call) and n.op is ops.lookup(name) for n in ir.walk())
    inputs = dict(zip(trace_inputs(call), arrays))
    np.testing.assert_allclose(numpy_eval(ir, inputs), call(*arrays), rtol=1e-12)
    assert same_tree(parse(to_source(ir), list(inputs)), ir)  # and it round-trips through the parser


def test_a_mistranslated_keyword_would_be_seen():
    """Twin: the value comparison above tells numpy's ddof=1 from the default (a dropped keyword)."""
    ir = trace(lambda x: np.var(x, axis=0, ddof=1))
    assert not np.allclose(numpy_eval(ir, {"x": X}), np.var(X, axis=0))


def test_numpy_traced_reference_checks_a_function():
    torch = pytest.importorskip("torch")
    ok = symgrad.check_function(lambda x: torch.sin(x) * x, lambda x: np.sin(x) * x, x=[0.3, 1.2])
    assert ok.status == "pass"
    wrong = symgrad.check_function(lambda x: torch.cos(x) * x, lambda x: np.sin(x) * x, x=[0.3, 1.2])
    assert wrong.status == "fail"


@pytest.mark.parametrize("call,message", [
    (lambda x: np.fabs(x), "numpy.fabs is not an op of symgrad's expression language; use symgrad.abs"),
    (lambda x: np.rint(x), "numpy.rint is not an op of symgrad's expression language; use symgrad.round"),
    (lambda x: np.diff(x), "numpy.diff is not an op of symgrad's expression language; symgrad has no op for it"),
    (lambda x: np.sinc(x), "numpy.sinc is not an op of symgrad's expression language; write sin(pi*x)/(pi*x)"),
    (lambda x: np.sum(x, dtype=np.float32), "numpy.sum(..., dtype=<class 'numpy.float32'>) has no counterpart in "
                                            "symgrad.sum (its parameters: axis, keepdims)"),
    (lambda x: np.round(x, 2), "numpy.round(..., decimals=2) has no counterpart in symgrad.round"),
    (lambda x: np.add.reduce(x), "numpy.add.reduce on a traced value is not supported; use the reductions"),
    (lambda x: np.exp(x, out=np.empty(2)), "numpy.exp(..., out=...) on a traced value is not supported"),
    (lambda x: np.cosh(x) + np.logaddexp2(x, x), "numpy.logaddexp2 is not an op of symgrad's expression language; "
                                                 "use symgrad.logaddexp"),
])
def test_numpy_without_a_symgrad_op_is_refused_by_name(call, message):
    with pytest.raises(TypeError) as info:
        trace(call)
    assert str(info.value).startswith(message)


def test_refusal_suggests_the_nearest_op():
    with pytest.raises(TypeError, match=r"numpy.spacing is not an op"):
        trace(lambda x: np.spacing(x))
    with pytest.raises(TypeError, match=r"did you mean symgrad\.sign\?"):
        trace(lambda x: np.signbit(x))


def test_supported_twins_of_the_refused_trace():
    """Twin: the counterparts the refusals name do trace."""
    assert src(lambda x: np.abs(x)) == "abs(x)"
    assert src(lambda x: np.round(x)) == "round(x)"
    assert src(lambda x: np.sum(x, axis=0)) == "sum(x, axis=0)"
    assert src(lambda x: np.positive(x)) == "x"


def test_numpy_scalars_are_plain_literals():
    assert src(lambda x: np.float64(2.0) * x) == "2.0*x"
    assert src(lambda x: x + np.float32(0.5)) == "x + 0.5"


# ---------------------------------------------------------------- numpy arrays as constants


def test_small_numpy_array_is_a_constant_with_its_values_in_the_ir():
    ir = trace(lambda x: x * np.array([1.0, -2.0]))
    assert to_source(ir) == "x*stack((1.0, -2.0), axis=0)"
    assert variables(ir) == ["x"]
    np.testing.assert_array_equal(numpy_eval(ir, {"x": np.array([3.0, 4.0])}), [3.0, -8.0])
    left = trace(lambda x: np.array([[1.0, 2.0], [3.0, 4.0]]) @ x)  # numpy's operator hands over to the IR
    np.testing.assert_array_equal(numpy_eval(left, {"x": np.eye(2)}), [[1.0, 2.0], [3.0, 4.0]])
    one = trace(lambda x: x + np.array([5.0]))
    np.testing.assert_array_equal(numpy_eval(one, {"x": np.array([1.0, 2.0])}), [6.0, 7.0])


def test_constant_array_gradients_check():
    ok = symgrad.check(lambda x: np.sin(x) * np.array([1.0, -2.0]), x=[0.3, 1.2], order=2)
    assert ok.status == "pass"
    wrong = symgrad.check(lambda x: np.sin(x) * np.array([1.0, -2.0]), x=[0.3, 1.2],
                          expect={"x": "cos(x) * stack((1.0, 2.0))"})
    assert wrong.status == "fail"  # twin: the sign of the constant's second value matters


def test_constant_array_on_torch():
    pytest.importorskip("torch")
    assert symgrad.check(lambda x: x * np.array([1.0, -2.0]), x=[0.3, 1.2], backend="torch").status == "pass"


def test_large_or_odd_arrays_are_refused():
    with pytest.raises(ValueError, match=rf"a numpy array of 100 elements \(shape \(100,\)\) as a constant: at "
                                         rf"most {MAX_CONSTANT_ELEMENTS}.*pass it as an input"):
        trace(lambda x: x * np.ones(100))
    with pytest.raises(TypeError, match="cannot use a numpy array of complex128"):
        trace(lambda x: x * np.array([1j, 2.0]))
    with pytest.raises(ValueError, match="cannot use the constant nan"):
        trace(lambda x: x * np.array([np.nan, 1.0]))


# ---------------------------------------------------------------- parameters: defaults and unused ones


def test_parameter_with_a_default_is_a_constant():
    assert trace_inputs(lambda x, c=2.0: x * c) == ["x"]
    assert src(lambda x, c=2.0: x * c) == "x*2.0"
    assert src(lambda x, w=np.array([1.0, 3.0]): x * w) == "x*stack((1.0, 3.0), axis=0)"
    report = symgrad.check(lambda x, c=2.0: x ** c, x=[0.5, 1.5], expect={"x": "2*x"})
    assert report.status == "pass"


def test_a_default_is_not_an_input():
    """Twin: naming the defaulted parameter as an input is the usual unknown-name error."""
    with pytest.raises(TypeError, match=r"'c' is neither a case key .* nor a name in 'x\*2.0'"):
        symgrad.check(lambda x, c=2.0: x * c, x=[0.5], c=[3.0])


def test_unused_parameter_is_still_an_input():
    report = symgrad.check(lambda x, y: x * 2, x=[0.5, 1.5], y=[1.0, 2.0])
    assert report.status == "pass"
    assert [c.name for c in report.comparisons] == ["value", "x", "y"]
    case = make_case(lambda x, y: x * 2, x=[0.5], y=[1.0])
    assert list(case.inputs) == ["x", "y"]


def test_unused_parameter_with_check_function():
    torch = pytest.importorskip("torch")
    report = symgrad.check_function(lambda x, y: torch.sin(x) + 0 * y, lambda x, y: np.sin(x), x=[0.3], y=[1.0])
    assert report.status == "pass"


def test_a_misspelt_key_is_still_refused():
    """Twin: parameters count as names, other keywords are still checked."""
    with pytest.raises(TypeError, match=r"'ordr' is neither a case key .*did you mean 'order'\?"):
        symgrad.check(lambda x, y: x * 2, x=[0.5], y=[1.0], ordr=2)
