"""grad_output generators: `{normal: [m, s]}`, `{uniform: [a, b]}`, `{linspace: ...}`, `random`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import symgrad
from symgrad.checking.cases import CaseError, case_from_dict, load_file
from symgrad.checking.runner import run_case
from symgrad.mutation import Mutant, MutantBackend

X = {"uniform": [0.5, 2.0], "shape": [2, 3]}
# symgrad's tape with sin's VJP computed with g = 1: right only when the incoming gradient is ones
IGNORES_G = MutantBackend(Mutant("sin", 0, "ignore-g"))


def case(**kw):
    return case_from_dict({"name": "g", "expr": "sin(x)", "inputs": {"x": X}, "seed": 5, **kw})


def test_normal_generator_is_drawn_after_the_inputs_with_the_output_shape() -> None:
    c = case(grad_output={"normal": [0.0, 2.0]})
    rng = np.random.default_rng(5)
    x = rng.uniform(0.5, 2.0, size=(2, 3))
    expected = rng.normal(0.0, 2.0, size=(2, 3))
    np.testing.assert_array_equal(c.make_inputs()["x"], x)
    np.testing.assert_array_equal(c.make_grad_output((2, 3)), expected)
    # adding a generator leaves the inputs' numbers alone
    np.testing.assert_array_equal(case().make_inputs()["x"], x)
    # deterministic: the same numbers from another, freshly validated case
    np.testing.assert_array_equal(case(grad_output={"normal": [0.0, 2.0]}).make_grad_output((2, 3)), expected)


def test_random_is_a_seeded_standard_normal() -> None:
    rng = np.random.default_rng(5)
    rng.uniform(0.5, 2.0, size=(2, 3))
    np.testing.assert_array_equal(case(grad_output="random").make_grad_output((2, 3)), rng.normal(size=(2, 3)))
    other = case_from_dict({"name": "g", "expr": "sin(x)", "inputs": {"x": X}, "seed": 6, "grad_output": "random"})
    assert not np.array_equal(other.make_grad_output((2, 3)), case(grad_output="random").make_grad_output((2, 3)))


def test_uniform_with_a_shape_broadcasts_and_linspace() -> None:
    g = case(grad_output={"uniform": [2.0, 3.0], "shape": [3]}).make_grad_output((2, 3))
    assert g.shape == (2, 3) and np.all((g >= 2.0) & (g <= 3.0))
    np.testing.assert_array_equal(g[0], g[1])  # one row of 3, broadcast
    g = case(grad_output={"linspace": [1.0, 2.0, 3]}).make_grad_output((2, 3))
    np.testing.assert_array_equal(g, [[1.0, 1.5, 2.0]] * 2)


def test_float32_gets_the_float64_draw_rounded_once() -> None:
    g64 = case(grad_output="random").make_grad_output((2, 3))
    g32 = case(grad_output="random", dtype="float32").make_grad_output((2, 3))
    assert g32.dtype == np.float32
    np.testing.assert_array_equal(g32, g64.astype(np.float32))


def test_a_random_grad_output_catches_a_vjp_that_ignores_g() -> None:
    assert run_case(case(grad_output="random")).status == "pass"
    assert run_case(case(grad_output={"normal": [0.0, 1.0]})).status == "pass"
    # the twin: the wrong VJP passes with g = 1 and fails with a random g
    assert run_case(case(), backend=IGNORES_G).status == "pass"
    assert run_case(case(grad_output="random"), backend=IGNORES_G).status == "fail"


def test_api_accepts_generators() -> None:
    assert symgrad.check("sin(x)", x=[0.5, 1.0, 2.0], grad_output="random")
    assert symgrad.check("sin(x)", x=[0.5, 1.0, 2.0], grad_output={"uniform": [-2.0, -1.0]})
    assert not symgrad.check("sin(x)", x=[0.5, 1.0, 2.0], grad_output="random", backend=IGNORES_G)


def test_fuzzer_cases_use_a_random_grad_output() -> None:
    from symgrad.fuzzing import Example, to_case_dict
    from symgrad.ir.parse import parse

    data = to_case_dict(Example(parse("sin(x)", names=["x"]), {"x": np.array([0.5, 1.0, 2.0])}, (3,)))
    assert data["grad_output"] == "random"
    assert run_case(case_from_dict(data)).status == "pass"
    assert run_case(case_from_dict(data), backend=IGNORES_G).status == "fail"


def test_errors_name_file_case_and_line(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    bad = {
        "word": "grad_output: rand",
        "std": "grad_output: {normal: [0, -1]}",
        "key": "grad_output: {normal: [0, 1], size: 3}",
        "two": "grad_output: {normal: [0, 1], uniform: [0, 1]}",
        "shape": "grad_output: {normal: [0, 1], shape: [4]}",
        "huge": "grad_output: {normal: [0, 1], shape: [100000, 100000]}",
    }
    text = "cases:\n" + "".join(
        f"  - name: {n}\n    expr: sin(x)\n    inputs: {{x: [1.0, 2.0, 3.0]}}\n    {line}\n" for n, line in bad.items())
    path.write_text(text)
    cases, errors = load_file(path)
    assert cases == []
    reasons = {e.case: e for e in errors}
    assert set(reasons) == set(bad)
    for i, name in enumerate(bad):
        err = reasons[name]
        assert err.file == str(path) and err.line == 4 * i + 5, (name, err.line)
    assert "'rand' is not a number, a list, 'random' or a generator" in str(reasons["word"])
    assert "normal std -1.0 is negative" in str(reasons["std"])
    assert "unknown key 'size'" in str(reasons["key"])
    assert "give exactly one of" in str(reasons["two"])
    assert "grad_output of shape (4,) does not broadcast to the output shape (3,)" in str(reasons["shape"])
    assert "max_elements" in str(reasons["huge"])


def test_generator_shape_checked_at_run_time_when_the_output_shape_is_unknown() -> None:
    # the runner passes the evaluated output shape when the case could not infer it
    c = case_from_dict({"name": "g", "expr": "sin(x)", "inputs": {"x": [1.0, 2.0, 3.0]},
                        "grad_output": {"normal": [0, 1], "shape": [3]}})
    assert c.make_grad_output((2, 3)).shape == (2, 3)
    with pytest.raises(CaseError, match=r"grad_output of shape \(3,\) does not broadcast to the output shape \(2,\)"):
        c.make_grad_output((2,))


def test_case_file_with_a_generator_in_defaults(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(textwrap.dedent("""\
        defaults:
          grad_output: random
        cases:
          - name: a
            expr: sin(x) * y
            inputs: {x: {uniform: [0, 1], shape: [4]}, y: 2.0}
        """))
    cases, errors = load_file(path)
    assert errors == [] and len(cases) == 1
    g = cases[0].make_grad_output((4,))
    assert g.shape == (4,) and not np.all(g == 1)
    assert run_case(cases[0]).status == "pass"
