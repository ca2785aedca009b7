"""The setup and reference fast paths of a check give what the general path gives: literal inputs
need no random generator, the default grad_output needs no full-shape weights.  Each has a twin."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from symgrad.api import make_case
from symgrad.symbolic import differentiate


def test_literal_inputs_are_fresh_copies_without_a_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    a = np.array([0.5, 1.5, 2.5])
    case = make_case("a * b", a=a, b=[1.0, 2.0, 3.0])

    def no_generator(*args: object) -> None:
        raise AssertionError("a generator for literal inputs")

    monkeypatch.setattr(np.random, "default_rng", no_generator)
    got = case.make_inputs()
    np.testing.assert_array_equal(got["a"], a)
    assert got["a"] is not a and not np.shares_memory(got["a"], a)
    got["a"][0] = 9.0
    assert case.make_inputs()["a"][0] == 0.5
    # the twin: a random input does need it
    drawn = make_case("a * b", a=a, b={"uniform": [0, 1], "shape": [3]})
    with pytest.raises(AssertionError, match="generator"):
        drawn.make_inputs()


def test_a_float64_array_is_held_as_a_read_only_view_until_the_inputs_are_made() -> None:
    a = np.array([0.5, 1.5, 2.5])
    case = make_case("a * 2", a=a)
    got = case.make_inputs()["a"]
    held = case.specs["a"].data
    assert np.shares_memory(held, a) and not held.flags.writeable  # no copy, and nothing can write to it
    assert a.flags.writeable and got.flags.writeable and not np.shares_memory(got, a)
    # the twin: an array of another dtype is converted, a copy of its own
    b = a.astype(np.float32)
    case32 = make_case("b * 2", b=b)
    case32.make_inputs()
    assert not np.shares_memory(case32.specs["b"].data, b) and case32.specs["b"].data.dtype == np.float64


def test_random_inputs_after_a_literal_draw_the_seeded_stream() -> None:
    case = make_case("a * b * c", a=[1.0, 2.0], b={"normal": [0, 1], "shape": [2]},
                     c={"linspace": [0, 1, 2]}, seed=7)
    got = case.make_inputs()
    want = np.random.default_rng(7).normal(0, 1, size=(2,))
    np.testing.assert_array_equal(got["b"], want)
    np.testing.assert_array_equal(got["c"], [0.0, 1.0])
    other = make_case("a * b * c", a=[1.0, 2.0], b={"normal": [0, 1], "shape": [2]},
                      c={"linspace": [0, 1, 2]}, seed=8).make_inputs()
    assert not np.array_equal(other["b"], got["b"])  # the twin: another seed, other numbers


@pytest.mark.parametrize("text", ["3*a**3 - b**2 + sin(a)*exp(-b) + tanh(a*b) + log(a+b)", "sum(a * b)", "mean(sin(a) / b)"])
def test_default_grad_output_gives_the_bits_of_explicit_ones(text: str) -> None:
    rng = np.random.default_rng(1)
    inputs = {"a": rng.uniform(0.5, 2, (3, 5)), "b": rng.uniform(0.5, 2, (3, 5))}
    shape = () if text.startswith(("sum", "mean")) else (3, 5)
    default = differentiate(parse_ir(text), inputs, ["a", "b"])
    ones = differentiate(parse_ir(text), inputs, ["a", "b"], grad_output=np.ones(shape))
    twice = differentiate(parse_ir(text), inputs, ["a", "b"], grad_output=np.full(shape, 2.0))
    for seq, d in default.derivatives.items():
        assert d.value.tobytes() == ones.derivatives[seq].value.tobytes()
        # the twin: a grad_output of 2 doubles every element (exactly: times 2 is exact)
        assert twice.derivatives[seq].value.tobytes() == (2 * d.value).tobytes() != d.value.tobytes()


def test_exact_reference_with_the_default_grad_output() -> None:
    x = np.array([0.25, 0.5, 2.0])
    assert symgrad.check("sin(x) * x", x=x, exact=True)
    assert not symgrad.check("sin(x) * x", x=x, exact=True, expect={"x": "cos(x) * x"})  # the twin


def test_a_nan_in_the_written_forward_marks_its_elements_undefined() -> None:
    x = np.array([-1.0, 0.5, 2.0])
    result = differentiate(parse_ir("log(x) * x"), {"x": x}, ["x"])
    assert np.isnan(result.value[0]) and np.isnan(result.derivatives[("x",)].value[0])
    assert not np.isnan(result.derivatives[("x",)].value[1:]).any()  # the twin: the defined ones stay numbers


def parse_ir(text: str):  # type: ignore[no-untyped-def]
    from symgrad.ir.parse import parse

    return parse(text)


def test_check_shares_one_options_per_backend_name_and_exact() -> None:
    from symgrad.api import _options

    assert _options("symgrad", None) is _options("symgrad", None)
    assert _options("symgrad", True).exact is True and _options("symgrad", None).exact is None  # the twin
    assert _options("torch", None).backend == "torch"
    backend = symgrad.backends.get("symgrad")
    assert _options(backend, None).backend is backend  # an instance: not cached, but used as given
