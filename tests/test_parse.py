"""The expression parser: grammar, precedence, names, limits, refusals and round trips.

Every accepted form has a twin that shows the neighbouring refusal or a different tree.
"""

from __future__ import annotations

import ast
import math
import re
import sys
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from symgrad import ops
from symgrad.ir.expr import Call, Const, Expr, Var, to_source
from symgrad.ir.limits import Limits
from symgrad.ir.parse import ParseError, parse

NAMES = ("a", "b", "c", "x", "y", "z")


def same_tree(left: Expr, right: Expr) -> bool:
    """Structural equality: node types, op identity, const values (and their types), names, params."""
    if type(left) is not type(right):
        return False
    if isinstance(left, Const):
        return (type(left.value) is type(right.value) and left.value == right.value  # type: ignore[union-attr]
                and left.name == right.name)  # type: ignore[union-attr]
    if isinstance(left, Var):
        return left.name == right.name  # type: ignore[union-attr]
    assert isinstance(left, Call) and isinstance(right, Call)
    return (left.op is right.op and left.params == right.params and len(left.args) == len(right.args)
            and all(same_tree(a, b) for a, b in zip(left.args, right.args)))


def C(op: str, *args: Expr, **params: Any) -> Call:
    return Call(ops.lookup(op), tuple(args), tuple(sorted(params.items())))  # type: ignore[arg-type]


a, b, c, x, y, z = (Var(n) for n in NAMES)


def refused(text: str, names: tuple[str, ...] | None = NAMES, **limits: int) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse(text, names, Limits(**limits) if limits else Limits())
    return info.value


def assert_parses(text: str, expected: Expr, names: tuple[str, ...] | None = NAMES) -> None:
    got = parse(text, names)
    assert same_tree(got, expected), f"{text!r} parsed as {got!r}, expected {expected!r}"


def test_same_tree_helper_distinguishes_trees() -> None:
    assert same_tree(C("add", x, Const(1)), C("add", x, Const(1)))
    assert not same_tree(C("add", x, Const(1)), C("add", x, Const(1.0)))  # int vs float
    assert not same_tree(C("add", x, y), C("sub", x, y))
    assert not same_tree(C("sum", x, axis=0), C("sum", x, axis=1))
    assert not same_tree(Var("x"), Const(1))


# ---------------------------------------------------------------- precedence and associativity


@pytest.mark.parametrize("text, expected", [
    ("-a**2", C("neg", C("pow", a, Const(2)))),
    ("(-a)**2", C("pow", C("neg", a), Const(2))),
    ("a - b - c", C("sub", C("sub", a, b), c)),
    ("a - (b - c)", C("sub", a, C("sub", b, c))),
    ("2**3**2", C("pow", Const(2), C("pow", Const(3), Const(2)))),
    ("(2**3)**2", C("pow", C("pow", Const(2), Const(3)), Const(2))),
    ("a*b + c", C("add", C("mul", a, b), c)),
    ("a*(b + c)", C("mul", a, C("add", b, c))),
    ("a / b * c", C("mul", C("div", a, b), c)),
    ("a / (b * c)", C("div", a, C("mul", b, c))),
    ("a @ b * c", C("mul", C("matmul", a, b), c)),
    ("a**-b", C("pow", a, C("neg", b))),
    ("-a*b", C("mul", C("neg", a), b)),
    ("-(a*b)", C("neg", C("mul", a, b))),
    ("--a", C("neg", C("neg", a))),
    ("+a", a),
    ("+-+a", C("neg", a)),
    ("((a))", a),
])
def test_precedence(text: str, expected: Expr) -> None:
    assert_parses(text, expected)


def test_precedence_twins_differ() -> None:
    assert not same_tree(parse("-a**2", NAMES), parse("(-a)**2", NAMES))
    assert not same_tree(parse("a - b - c", NAMES), parse("a - (b - c)", NAMES))
    assert not same_tree(parse("2**3**2"), parse("(2**3)**2"))


# ---------------------------------------------------------------- literals, constants, aliases


def test_number_literals_keep_their_type() -> None:
    assert type(parse("3").value) is int  # type: ignore[attr-defined]
    assert type(parse("3.0").value) is float  # type: ignore[attr-defined]
    assert parse("1_000").value == 1000  # type: ignore[attr-defined]
    assert parse("2.5e-3").value == 2.5e-3  # type: ignore[attr-defined]
    assert parse("0x1f").value == 31  # type: ignore[attr-defined]
    assert_parses("-2", C("neg", Const(2)))
    assert not same_tree(parse("-2"), Const(-2))


def test_constants() -> None:
    pi, e = parse("pi"), parse("e")
    assert isinstance(pi, Const) and pi.value == math.pi and pi.name == "pi"
    assert isinstance(e, Const) and e.value == math.e and e.name == "e"
    assert_parses("2*pi", C("mul", Const(2), Const(math.pi, name="pi")))
    err = refused("pi(2)")
    assert err.reason == "'pi' is not a function" and err.column == 1


@pytest.mark.parametrize("alias, name", [
    ("arcsin", "asin"), ("arccos", "acos"), ("arctan", "atan"), ("arctanh", "atanh"),
    ("absolute", "abs"), ("expit", "sigmoid"), ("stop_gradient", "detach"),
])
def test_aliases_map_to_one_op(alias: str, name: str) -> None:
    got, canonical = parse(f"{alias}(x)"), parse(f"{name}(x)")
    assert isinstance(got, Call) and got.op is ops.lookup(name)
    assert same_tree(got, canonical)


def test_alias_of_binary_op_and_twin() -> None:
    assert_parses("arctan2(y, x)", C("atan2", y, x))
    assert_parses("power(x, 2)", C("pow", x, Const(2)))
    assert same_tree(parse("pow(x, 2)"), parse("x**2"))
    err = refused("arcsine(x)")
    assert err.reason == "unknown function 'arcsine'; did you mean 'arcsin'?"
    assert err.column == 1 and err.token == "arcsine"


def test_every_public_op_is_callable_by_name_and_alias() -> None:
    for op in ops.public_ops():
        for name in (op.name, *op.aliases):
            args = ", ".join(["x", "y", "z"][: op.arity])
            text = f"{name}({args})"
            if op.samples:  # ops with required params (reshape, index ...): their first example, printed
                call = Call(op, tuple(Var(a) for a in ["x", "y", "z"][: op.arity]), tuple(sorted(op.samples[0][1].items())))
                text = to_source(call).replace(f"{op.name}(", f"{name}(", 1)
            if op.kind == ops.CONDITION:  # conditions only in where's: less(x, y) there
                got = parse(f"where({text}, x, y)").args[0]  # type: ignore[attr-defined]
            else:
                got = parse(text)
            assert isinstance(got, Call) and got.op is op


def test_internal_ops_are_not_part_of_the_language() -> None:
    for name in ("sum_to", "index_put", "step", "clone", "polygamma"):
        assert refused(f"{name}(x)").reason.startswith(f"unknown function {name!r}")


def test_function_used_as_a_value_is_refused() -> None:
    err = refused("x + sin")
    assert err.reason == "function 'sin' used without calling it" and err.column == 5


# ---------------------------------------------------------------- axis keyword


@pytest.mark.parametrize("text, params", [
    ("sum(x)", ()),
    ("sum(x, axis=None)", ()),
    ("sum(x, axis=0)", (("axis", 0),)),
    ("mean(x, axis=-1)", (("axis", -1),)),
    ("max(x, axis=(0, 1))", (("axis", (0, 1)),)),
    ("logsumexp(x, axis=(1,))", (("axis", (1,)),)),
    ("amin(x, axis=+1)", (("axis", 1),)),
])
def test_axis_keyword(text: str, params: tuple) -> None:
    got = parse(text)
    assert isinstance(got, Call) and got.params == params


@pytest.mark.parametrize("text, reason, column", [
    ("sin(x, axis=0)", "sin() takes no keyword arguments", 8),
    ("sum(x, keepdims=1)", "keepdims must be True or False, not '1'", 17),
    ("sum(x, keepdim=True)", "unknown keyword 'keepdim' for sum(); did you mean 'keepdims'?", 8),
    ("sum(x, axis=1.5)", "axis must be an integer or a tuple of integers, not '1.5'", 13),
    ("sum(x, axis=[0])", "axis must be an integer or a tuple of integers, not '[0]'", 13),
    ("sum(x, axis=x)", "axis must be an integer or a tuple of integers, not 'x'", 13),
    ("sum(x, axis=True)", "axis must be an integer or a tuple of integers, not 'True'", 13),
    ("sum(x, axis=(0, 0))", "repeated axis in '(0, 0)'", 13),
    ("sum(x, axis=1+1)", "axis must be an integer or a tuple of integers, not '1+1'", 13),
    ("sum(x, 0)", "sum() takes 1 positional argument (2 given)", 1),
])
def test_axis_refusals(text: str, reason: str, column: int) -> None:
    err = refused(text)
    assert err.reason == reason and err.column == column


def test_axis_is_bounded_by_max_ndim() -> None:
    assert parse("sum(x, axis=-8)").params == (("axis", -8),)  # type: ignore[attr-defined]
    err = refused("sum(x, axis=8)")
    assert "max_ndim=8" in err.reason and err.column == 13


# ---------------------------------------------------------------- names


def test_declared_names() -> None:
    assert_parses("a + b", C("add", a, b), names=("a", "b"))
    err = refused("a + q", names=("a", "b"))
    assert err.reason == "no input given for 'q'" and err.column == 5 and err.token == "q"
    assert str(err) == "no input given for 'q' at column 5: a + q"


def test_undeclared_names_become_vars_without_a_name_list() -> None:
    assert_parses("a + q", C("add", a, Var("q")), names=None)
    assert refused("a + q", names=("a",)).token == "q"


def test_input_names_may_not_shadow_ops_or_constants() -> None:
    assert refused("x", names=("x", "sin")).reason == "input name 'sin' shadows the function 'sin'"
    assert refused("x", names=("x", "arcsin")).reason == "input name 'arcsin' shadows the function 'arcsin'"
    assert refused("x", names=("e",)).reason == "input name 'e' shadows the constant 'e'"
    assert refused("x", names=("1x",)).reason == "input name '1x' is not a valid identifier"
    assert same_tree(parse("x", names=("x", "sine")), x)


def test_declared_input_is_not_callable() -> None:
    err = refused("x(2)")
    assert err.reason == "'x' is not a function" and err.column == 1


def test_dunder_names_refused_even_without_a_name_list() -> None:
    assert refused("__builtins__", names=None).reason == "name '__builtins__' is not allowed"
    assert same_tree(parse("builtins", names=None), Var("builtins"))


# ---------------------------------------------------------------- refusals, with their column


@pytest.mark.parametrize("text, column, token, reason", [
    ("x + y.__class__", 5, "y.__class__", "attribute access 'y.__class__' is not allowed"),
    ("x + y[x]", 7, "x", "an index must be an integer constant, a slice of them or '...', not 'x'"),
    ("x + 'a'", 5, "'a'", "string literal \"'a'\" is not allowed"),
    ("x + b'a'", 5, "b'a'", "bytes literal \"b'a'\" is not allowed"),
    ("x + f'{y}'", 5, "f'{y}'", "f-string \"f'{y}'\" is not allowed"),
    ("x + 1j", 5, "1j", "complex number literal '1j' is not allowed"),
    ("x + True", 5, "True", "boolean literal 'True' is not allowed"),
    ("x + None", 5, "None", "None literal 'None' is not allowed"),
    ("x + (lambda: 1)", 6, "lambda: 1", "lambda 'lambda: 1' is not allowed"),
    ("sum([i for i in x])", 5, "[i for i in x]", "comprehension '[i for i in x]' is not allowed"),
    ("sum(i for i in x)", 4, "(i for i in x)", "generator expression '(i for i in x)' is not allowed"),
    ("x + (y := 2)", 6, "y := 2", "assignment expression 'y := 2' is not allowed"),
    ("sin(*x)", 5, "*x", "starred expression '*x' is not allowed"),
    ("sum(x, **k)", 8, "**", "'**' arguments are not allowed in sum()"),
    ("x if y else z", 1, "x if y else z", "conditional expression 'x if y else z' is not allowed"),
    ("x + (y < z)", 6, "y < z", "comparison 'y < z' is not allowed outside where()'s condition"),
    ("x or y", 1, "x or y", "boolean operator 'x or y' is not allowed"),
    ("not x", 1, "not", "operator 'not' is not allowed"),
    ("~x", 1, "~", "operator '~' is not allowed outside where()'s condition"),
    ("x | y", 3, "|", "operator '|' is not allowed outside where()'s condition"),
    ("x & y", 3, "&", "operator '&' is not allowed outside where()'s condition"),
    ("x ^ y", 3, "^", "operator '^' is not allowed"),
    ("x << y", 3, "<<", "operator '<<' is not allowed"),
    ("(x) // y", 5, "//", "operator '//' is not allowed"),
    ("x % y", 3, "%", "operator '%' is not allowed"),
    ("__import__('os')", 1, "__import__", "unknown function '__import__'"),
    ("exec('1')", 1, "exec", "unknown function 'exec'"),
    ("x + eval('1')", 5, "eval", "unknown function 'eval'"),
    ("open('f')", 1, "open", "unknown function 'open'"),
    ("getattr(x, 'y')", 1, "getattr", "unknown function 'getattr'"),
    ("qqq(x)", 1, "qqq", "unknown function 'qqq'"),
    ("x.sin()", 1, "x.sin", "attribute access 'x.sin' is not allowed"),
    ("sin(x)(y)", 1, "sin(x)", "only the table's functions can be called, not 'sin(x)'"),
    ("sin(x, y)", 1, "sin", "sin() takes 1 positional argument (2 given)"),
    ("atan2(x)", 1, "atan2", "atan2() takes 2 positional arguments (1 given)"),
    ("exp()", 1, "exp", "exp() takes 1 positional argument (0 given)"),
    ("x, y", 1, "x, y", "tuple 'x, y' is not allowed"),
    ("[x]", 1, "[x]", "list '[x]' is not allowed"),
    ("{x: y}", 1, "{x: y}", "dict '{x: y}' is not allowed"),
    ("...", 1, "...", "Ellipsis literal '...' is not allowed"),
])
def test_refusal_classes(text: str, column: int, token: str, reason: str) -> None:
    err = refused(text)
    assert (err.reason, err.column, err.token) == (reason, column, token)
    assert str(err) == f"{reason} at column {column}: {text}"
    assert err.text == text


def test_refusal_twins_are_accepted() -> None:  # the nearest accepted form of several refusals
    assert_parses("x + y", C("add", x, y))
    assert_parses("x / y", C("div", x, y))
    assert_parses("x @ y", C("matmul", x, y))
    assert_parses("x + 1.0", C("add", x, Const(1.0)))
    assert_parses("sin(x)", C("sin", x))


@pytest.mark.parametrize("text, column, token", [
    ("x = 1", 3, "="),
    ("x; y", 2, ";"),
    ("x y", 3, "y"),
    ("import os", 1, "import"),
    ("x +", 4, None),
    ("sin(x", 4, "("),
    (")", 1, ")"),
    ("  x $", 5, "$"),
    ("ab + $", 6, "$"),
    ("x\n+ y", 3, "+"),
    ("(x\n+ y $)", 8, "$"),
])
def test_syntax_errors_carry_the_column(text: str, column: int, token: str | None) -> None:
    err = refused(text)
    assert err.reason.startswith("syntax error") and err.column == column and err.token == token


def test_column_counts_characters_not_bytes() -> None:
    # names are ASCII (hardening round 2): the first non-ASCII character is refused, at its character column
    err = refused("y + éé", names=("y",))
    assert err.column == 5 and err.token == "é" and "non-ASCII character" in err.reason


def test_leading_whitespace_and_newlines_are_fine() -> None:
    assert_parses("  x +\ty", C("add", x, y))
    assert_parses("\n(x\n + y)\n", C("add", x, y))
    assert refused("  x.y").column == 3


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_text_is_refused(text: str) -> None:
    err = refused(text)
    assert err.reason == "empty expression" and err.column is None


def test_nul_byte_is_refused() -> None:
    err = refused("x + \x00y")
    assert err.reason == "NUL character is not allowed" and err.column == 5


@pytest.mark.parametrize("value", [b"x + y", 3, None, ["x"]])
def test_non_str_input_is_refused(value: Any) -> None:
    with pytest.raises(ParseError, match="an expression must be a str, not"):
        parse(value)


def test_parse_error_is_a_value_error_with_attributes() -> None:
    err = refused("foo + x")
    assert isinstance(err, ValueError)
    assert (err.text, err.column, err.token, err.reason) == ("foo + x", 1, "foo", "no input given for 'foo'")
    assert str(err) == "no input given for 'foo' at column 1: foo + x"


def test_parse_error_pickles() -> None:
    import pickle

    err = refused("x + foo(y)")
    again = pickle.loads(pickle.dumps(err))
    assert (again.text, again.reason, again.column, again.token, str(again)) == (
        err.text, err.reason, err.column, err.token, str(err))


def test_long_text_is_truncated_in_the_message() -> None:
    text = "x + " * 30 + "q"
    err = refused(text)
    assert err.column == len(text) and err.text == text
    assert len(str(err)) < 160 and str(err).startswith("no input given for 'q' at column 121: ...")


# ---------------------------------------------------------------- limits


def test_max_length_is_checked_before_ast_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = ast.parse
    monkeypatch.setattr(ast, "parse", lambda src, *a, **k: calls.append(src) or real(src, *a, **k))
    err = refused("x+" * 5 + "x", max_length=10)
    assert "max_length=10" in err.reason and calls == []
    assert same_tree(parse("x+" * 4 + "x", limits=Limits(max_length=10)), parse("x+x+x+x+x"))
    assert len(calls) == 2


def test_max_depth() -> None:
    assert isinstance(parse("sin(sin(sin(x)))", limits=Limits(max_depth=4)), Call)
    err = refused("sin(sin(sin(sin(x))))", max_depth=4)
    assert "max_depth=4" in err.reason and err.column == 17  # the innermost, fifth level
    assert "max_depth=64" in refused("-" * 65 + "x").reason
    assert isinstance(parse("-" * 63 + "x"), Call)


@pytest.mark.parametrize("text", ["(" * 300 + "x" + ")" * 300, "-" * 9000 + "x", "x" + "+x" * 4000])
def test_nesting_that_python_itself_refuses(text: str) -> None:
    assert re.match(r"nesting depth(: \d+)? exceeds the limit max_depth=64", refused(text).reason)
    big = Limits(max_depth=100_000)
    with pytest.raises(ParseError, match="nesting too deep for Python's parser"):
        parse(text, NAMES, big)


def test_the_verdict_on_deep_nesting_does_not_depend_on_the_recursion_limit() -> None:
    # tinygrad raises the recursion limit to 10 000 on import: the same text must get the same refusal
    text, big = "x" + "+x" * 4000, Limits(max_depth=100_000)
    old = sys.getrecursionlimit()
    try:
        for limit in (old, 20_000):
            sys.setrecursionlimit(limit)
            with pytest.raises(ParseError, match="nesting too deep for Python's parser"):
                parse(text, NAMES, big)
    finally:
        sys.setrecursionlimit(old)


def test_raised_depth_limit_beyond_pythons_stack_is_still_a_parse_error() -> None:
    text = "sin(" * 180 + "x" + ")" * 180  # fine for ast.parse, deeper than max_depth=64
    assert "max_depth=64" in refused(text).reason
    assert isinstance(parse(text, NAMES, Limits(max_depth=181)), Call)


def test_names_must_not_be_a_single_string() -> None:
    with pytest.raises(TypeError, match="not one str"):
        parse("x", names="xy")  # type: ignore[arg-type]
    assert same_tree(parse("x", names=["x", "y"]), x)


def test_max_nodes() -> None:
    assert isinstance(parse("x+x+x", limits=Limits(max_nodes=5)), Call)
    assert "max_nodes=4" in refused("x+x+x", max_nodes=4).reason


def test_max_int_digits() -> None:
    assert parse("9" * 30).value == int("9" * 30)  # type: ignore[attr-defined]
    err = refused("1 + " + "9" * 31)
    assert "max_int_digits=30" in err.reason and err.column == 5
    assert parse("9" * 31, limits=Limits(max_int_digits=31)).value == int("9" * 31)  # type: ignore[attr-defined]


def test_int_literal_beyond_pythons_own_cap() -> None:  # 3.11 refuses > 4300 digits inside ast.parse
    err = refused("x + " + "7" * 5000)
    assert "max_int_digits=30" in err.reason and err.column == 5
    err = refused("x + " + "7" * 5000, max_int_digits=10_000)
    assert "exceeds Python's limit of 4300" in err.reason and err.column == 5


@pytest.mark.parametrize("text", [
    "9**9**9**9", "((9**9)**9999)**9999", "10.0**400*1e300", "2**100000", "2**-100000",
    "1e400", "(2**100)**(2**100)", "abs(-2)**10**9", "exp(1000)", "10**200*10**200", "x + 7**1000",
    "sum(3)**99999", "-(9**999)", "1/3**1000", "(1 + 1)**4000", "2.0**1e6", "10.0**300", "1e-301",
    "9e299 + 2e299",
])
def test_max_const_digits(text: str) -> None:
    err = refused(text)
    assert "max_const_digits=300" in err.reason


@pytest.mark.parametrize("text", [
    "9**9", "2**900*x", "1**(10**29)", "0**(10**29)", "(-1)**(10**29)", "10.0**299", "1e299 + 1e299",
    "1e-300", "-1e299*9.99",
    "exp(690)", "x**100000", "sin(10**29)", "10**200 - 10**200", "1/0", "log(0)", "(2**100)**2",
])
def test_constants_within_the_limit(text: str) -> None:
    assert isinstance(parse(text), Expr)


def test_max_const_digits_can_be_raised() -> None:
    assert isinstance(parse("2**2000", limits=Limits(max_const_digits=700)), Call)
    assert "max_const_digits=600" in refused("2**2000", max_const_digits=600).reason


def test_const_limit_points_at_the_first_oversized_subexpression() -> None:
    err = refused("x + 9**9**9**9")
    assert err.column == 8 and err.token == "9**9**9"


# ---------------------------------------------------------------- round trip


ROUND_TRIP = [
    "3*a**3 - b**2", "-a**2", "(-a)**2", "a - b - c", "a - (b - c)", "2**3**2", "(2**3)**2",
    "a/(b*c)", "a/b/c", "a**-b", "a**(-b)**c", "-(a + b)", "--a", "a @ b @ c", "a @ (b @ c)",
    "sum(x, axis=-1)", "max(x, axis=(0, 1))", "arcsin(x)", "pi*e", "1e299*x", "0.1 + x",
    "logsumexp(x*y, axis=0)/mean(z)", "atan2(-y, x - 1)", "hypot(x, y)**0.5", "transpose(a) @ b",
    "-2**-2", "x - -y", "x*-y", "detach(x)*x", "1_000*x", "2.5e-10",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip(text: str) -> None:
    tree = parse(text)
    again = parse(to_source(tree))
    assert same_tree(tree, again), (text, to_source(tree))


def test_round_trip_twin_keeps_distinct_trees_distinct() -> None:
    assert to_source(parse("a - (b - c)")) != to_source(parse("a - b - c"))
    assert to_source(parse("(-a)**2")) != to_source(parse("-a**2"))


PUBLIC = [op for op in ops.public_ops() if op.kind != ops.CONDITION]  # conditions: only in where's, below
UNARY = [op for op in PUBLIC if op.arity == 1]
BINARY = [op for op in PUBLIC if op.arity == 2]
COMPARISONS = [op for op in ops.public_ops() if op.kind == ops.CONDITION and op.arity == 2
               and op not in (ops.logical_and, ops.logical_or)]
AXES = st.one_of(
    st.none(), st.integers(-3, 3),
    st.lists(st.integers(-3, 3), unique=True, max_size=3).map(tuple),
)
LEAVES = st.one_of(
    st.sampled_from(["x", "y", "z"]).map(Var),
    st.integers(0, 10**12).map(Const),
    st.one_of(st.just(0.0), st.floats(1e-6, 1e6)).map(Const),
    st.sampled_from(sorted(ops.CONSTANTS)).map(lambda n: Const(ops.CONSTANTS[n], name=n)),
)


def _call(op: ops.Op, args: tuple[Expr, ...], axis: Any) -> Call:
    params = (("axis", axis),) if "axis" in op.params and axis is not None else ()
    if op.samples:  # shapes and indexing: the params of the op's first example
        params = tuple(sorted(op.samples[0][1].items()))
    return Call(op, args, params)


def _extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    return st.one_of(
        st.builds(lambda op, a, axis: _call(op, (a,), axis), st.sampled_from(UNARY), children, AXES),
        st.builds(lambda op, a, b: _call(op, (a, b), None), st.sampled_from(BINARY), children, children),
        st.builds(lambda op, a, b, c: Call(ops.where, (Call(op, (a, b)), c, a)), st.sampled_from(COMPARISONS),
                  children, children, children),
    )


TREES = st.recursive(LEAVES, _extend, max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(TREES)
@pytest.mark.slow
def test_round_trip_property(tree: Expr) -> None:
    text = to_source(tree)
    try:
        again = parse(text, names=("x", "y", "z"))
    except ParseError as err:
        assume("max_const_digits" not in err.reason)  # a random constant subtree may be huge
        raise
    assert same_tree(tree, again), text
    assert to_source(again) == text


def test_keyword_parameters_take_literals_of_their_kind() -> None:
    assert parse("elu(x, alpha=-2)").kwargs == {"alpha": -2.0}
    assert parse("hardtanh(x, min_val=-0.5, max_val=2)").kwargs == {"min_val": -0.5, "max_val": 2.0}
    for text, reason in (("elu(x, alpha=y)", "alpha must be a real number literal"),
                         ("elu(x, alpha=True)", "alpha must be a real number literal"),
                         ("leaky_relu(x, negative_slope=1e999)", "negative_slope must be a real number literal"),
                         ("elu(x, beta=1.0)", "unknown keyword 'beta' for elu()")):
        err = refused(text)
        assert err.reason.startswith(reason), (text, err.reason)
        assert err.column is not None and err.column > text.index(",")
