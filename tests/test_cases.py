"""Case files: loading, line numbers, validation errors, input generation, collection."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from symgrad.checking.cases import (
    KEYS,
    Case,
    CaseError,
    case_from_dict,
    collect,
    is_case_file,
    load_cases,
    load_file,
)
from symgrad.ir.limits import Limits

DESIGN_EXAMPLE = """\
defaults:                  # optional: any case key but name and expr
  dtype: float64
cases:
  - name: tutorial-Q       # required; unique in the file; [A-Za-z0-9_.-]+
    expr: 3*a**3 - b**2    # required
    inputs:                # required: one entry per name in expr
      a: [2.0, 3.0]        # number or nested list
      b: [6.0, 4.0]
    grad_output: [1.0, 1.0]  # optional; like Q.backward(gradient=...); default ones
    expect:                # optional: what .grad must hold, checked as well
      a: 9*a**2            # an expression of the inputs ...
      b: [-12.0, -8.0]     # ... or literal values
  - name: random-broadcast
    expr: log(x) * sin(y)
    inputs:
      x: {uniform: [0.1, 3.0], shape: [3, 4]}
      y: {normal: [0.0, 1.0], shape: [4]}
    wrt: [x]               # optional; default all inputs; others are constants
    order: 2               # optional; 1 (default), 2 or 3
"""


def write(tmp_path: Path, text: str, name: str = "cases.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def one_case(tmp_path: Path, body: str, defaults: str = "") -> tuple[list[Case], list[CaseError], Path]:
    """A file with ``defaults`` (optional) and one case whose mapping starts on line 3 (or later)."""
    text = "version: 1\n" + (f"defaults:\n{textwrap.indent(textwrap.dedent(defaults), '  ')}" if defaults else "")
    text += "cases:\n  - " + textwrap.indent(textwrap.dedent(body).strip(), "    ")[4:] + "\n"
    path = write(tmp_path, text)
    cases, errors = load_file(path)
    return cases, errors, path


def only_error(tmp_path: Path, body: str, defaults: str = "") -> CaseError:
    cases, errors, path = one_case(tmp_path, body, defaults)
    assert cases == [] and len(errors) == 1, (cases, errors)
    err = errors[0]
    assert err.file == str(path)
    assert str(err).startswith(f"{path}:{err.line}: ")
    return err


VALID = """
name: ok
expr: a * b
inputs:
  a: [1.0, 2.0]
  b: 3
"""


# ---------------------------------------------------------------- the design's example


def test_design_example_loads_with_values_and_lines(tmp_path):
    path = write(tmp_path, DESIGN_EXAMPLE)
    cases, errors = load_file(path)
    assert errors == []
    q, rb = cases
    assert (q.name, q.line, q.file, q.id) == ("tutorial-Q", 4, str(path), f"{path}::tutorial-Q")
    assert (rb.name, rb.line) == ("random-broadcast", 13)
    assert q.expr == "3*a**3 - b**2" and q.wrt is None and q.wrt_names == ["a", "b"]
    assert q.expect == {"a": "9*a**2", "b": [-12.0, -8.0]} and set(q.expect_ir) == {"a"}
    assert q.order == 1 and q.dtype == "float64" and q.seed == 0 and q.mode == "auto"
    x = q.make_inputs()
    np.testing.assert_array_equal(x["a"], [2.0, 3.0])
    np.testing.assert_array_equal(x["b"], [6.0, 4.0])
    assert x["a"].dtype == np.float64
    np.testing.assert_array_equal(q.make_grad_output((2,)), [1.0, 1.0])
    assert q.output_shape == (2,)
    assert rb.wrt == ["x"] and rb.order == 2 and rb.output_shape == (3, 4)
    r = rb.make_inputs()
    assert r["x"].shape == (3, 4) and r["y"].shape == (4,)
    assert ((r["x"] >= 0.1) & (r["x"] <= 3.0)).all()
    assert rb.input_shapes == {"x": (3, 4), "y": (4,)}


def test_design_example_with_one_broken_case_keeps_the_other(tmp_path):
    path = write(tmp_path, DESIGN_EXAMPLE.replace("order: 2", "order: 4"))
    cases, errors = load_file(path)
    assert [c.name for c in cases] == ["tutorial-Q"]
    assert len(errors) == 1 and errors[0].case == "random-broadcast" and errors[0].line == 19
    assert "order must be one of 1, 2, 3" in str(errors[0])


def test_case_from_dict_without_file():
    case = case_from_dict({"name": "n", "expr": "x**2", "inputs": {"x": 2.0}})
    assert case.id == "n" and case.file is None and case.make_inputs()["x"].shape == ()
    with pytest.raises(CaseError) as info:
        case_from_dict({"name": "n", "expr": "x**2"})
    assert info.value.case == "n" and "missing required key 'inputs'" in str(info.value)


# ---------------------------------------------------------------- defaults


def test_defaults_merge_under_each_case(tmp_path):
    cases, errors, _ = one_case(tmp_path, VALID + "rtol: 0.5\n", defaults="dtype: float32\nrtol: 1e-3\ntags: [slow]\nseed: 7\n")
    assert errors == []
    (case,) = cases
    assert case.dtype == "float32" and case.tags == ["slow"] and case.seed == 7
    assert case.rtol == 0.5  # the case's own value wins
    assert case.make_inputs()["a"].dtype == np.float32
    assert case.make_grad_output((2,)).dtype == np.float32


@pytest.mark.parametrize("defaults, message", [
    ("name: x\n", "defaults may not set 'name'"),
    ("expr: x\n", "defaults may not set 'expr'"),
    ("bogus: 1\n", "unknown key 'bogus'"),
    ("dtype: float8\n", "dtype must be one of float64, float32, float16, bfloat16"),
])
def test_bad_defaults_are_a_file_error(tmp_path, defaults, message):
    cases, errors, path = one_case(tmp_path, VALID, defaults=defaults)
    assert cases == [] and len(errors) == 1
    assert message in str(errors[0]) and errors[0].line == 3 and str(errors[0]).startswith(f"{path}:3: ")


def test_defaults_not_a_mapping(tmp_path):
    path = write(tmp_path, "defaults: [1, 2]\ncases: []\n")
    cases, (err,) = load_file(path)
    assert cases == []
    assert "'defaults' must be a mapping" in str(err) and err.line == 1


# ---------------------------------------------------------------- validation errors


def test_unknown_key_names_file_case_line_and_known_keys(tmp_path):
    err = only_error(tmp_path, VALID + "bogus: 1\n")
    assert err.case == "ok" and err.line == 8
    assert "unknown key 'bogus'" in err.reason and "known: " + ", ".join(KEYS) in err.reason


def test_unknown_key_suggests_the_close_one(tmp_path):
    err = only_error(tmp_path, VALID + "rtoll: 1\n")
    assert "did you mean 'rtol'?" in err.reason


def test_missing_inputs(tmp_path):
    err = only_error(tmp_path, "name: m\nexpr: a\n")
    assert err.case == "m" and err.line == 3 and "missing required key 'inputs'" in err.reason


def test_missing_everything_lists_all_required(tmp_path):
    err = only_error(tmp_path, "description: hi\n")
    assert err.case is None and "'name', 'expr', 'inputs'" in err.reason


@pytest.mark.parametrize("name", ["has space", "semi;colon", "", "a/b"])
def test_bad_names(tmp_path, name):
    err = only_error(tmp_path, VALID.replace("name: ok", f"name: '{name}'"))
    assert "name must match" in err.reason and err.line == 3


def test_undeclared_name_in_expr(tmp_path):
    err = only_error(tmp_path, VALID.replace("a * b", "a * c"))
    assert err.case == "ok" and err.line == 4  # the expr key's line
    assert "expr does not parse" in err.reason and "'c'" in err.reason and "column" in err.reason


def test_unused_input_is_allowed(tmp_path):
    cases, errors, _ = one_case(tmp_path, VALID.replace("a * b", "a * 2"))
    assert errors == [] and cases[0].wrt_names == ["a", "b"]


def test_expr_syntax_error_is_reported(tmp_path):
    err = only_error(tmp_path, VALID.replace("a * b", "'a * (b'"))
    assert "expr does not parse" in err.reason


def test_inputs_that_do_not_broadcast(tmp_path):
    err = only_error(tmp_path, "name: nb\nexpr: a + b\ninputs:\n  a: [1, 2, 3]\n  b: [1, 2, 3, 4]\n")
    assert err.case == "nb" and "inputs do not broadcast: a (3,), b (4,)" in err.reason


def test_matmul_shapes_checked_without_requiring_broadcast(tmp_path):
    good = "name: mm\nexpr: a @ b\ninputs:\n  a: {uniform: [0, 1], shape: [2, 3]}\n  b: {uniform: [0, 1], shape: [3, 4]}\n"
    cases, errors, _ = one_case(tmp_path, good)
    assert errors == [] and cases[0].output_shape == (2, 4)
    err = only_error(tmp_path, good.replace("[3, 4]", "[5, 4]"))
    assert "shapes do not fit" in err.reason and "(2, 3) and (5, 4)" in err.reason


def test_non_numeric_input_names_the_input(tmp_path):
    err = only_error(tmp_path, VALID.replace("[1.0, 2.0]", "[1.0, abc]"))
    assert err.case == "ok" and err.line == 6 and "input 'a'" in err.reason and "'abc'" in err.reason


def test_boolean_input_refused(tmp_path):
    err = only_error(tmp_path, VALID.replace("b: 3", "b: true"))
    assert "input 'b'" in err.reason and "boolean" in err.reason and err.line == 7


@pytest.mark.parametrize("value", ["[1, [2, 3]]", "[[1, 2], [3]]", "[[1, 2], 3]"])
def test_ragged_input(tmp_path, value):
    err = only_error(tmp_path, VALID.replace("[1.0, 2.0]", value))
    assert "input 'a'" in err.reason and "ragged" in err.reason


def test_rectangular_nested_input_is_fine(tmp_path):
    cases, errors, _ = one_case(tmp_path, VALID.replace("[1.0, 2.0]", "[[1, 2], [3, 4]]"))
    assert errors == [] and cases[0].make_inputs()["a"].shape == (2, 2)


def test_unknown_key_in_input_spec(tmp_path):
    err = only_error(tmp_path, VALID.replace("[1.0, 2.0]", "{uniform: [0, 1], shap: [3]}"))
    assert "input 'a'" in err.reason and "unknown key 'shap'" in err.reason
    cases, errors, _ = one_case(tmp_path, VALID.replace("[1.0, 2.0]", "{uniform: [0, 1], shape: [3]}"))
    assert errors == [] and cases[0].make_inputs()["a"].shape == (3,)


def test_linspace_input(tmp_path):
    cases, errors, _ = one_case(tmp_path, VALID.replace("[1.0, 2.0]", "{linspace: [0, 1, 5]}"))
    assert errors == []
    np.testing.assert_allclose(cases[0].make_inputs()["a"], [0, 0.25, 0.5, 0.75, 1])
    err = only_error(tmp_path, VALID.replace("[1.0, 2.0]", "{linspace: [0, 1, -5]}"))
    assert "linspace" in err.reason


def test_huge_shape_refused_before_allocating(tmp_path, peak_bytes):
    text = VALID.replace("[1.0, 2.0]", "{uniform: [0, 1], shape: [100000, 100000, 100000]}")
    err, peak = peak_bytes(only_error, tmp_path, text)
    assert peak < 10_000_000  # nothing of the input's size was allocated
    assert "max_elements" in err.reason and "input 'a'" in err.reason and err.line == 6


def test_too_many_dimensions_and_negative_dims(tmp_path):
    err = only_error(tmp_path, VALID.replace("[1.0, 2.0]", "{normal: [0, 1], shape: [1, 1, 1, 1, 1, 1, 1, 1, 1]}"))
    assert "max_ndim" in err.reason
    err = only_error(tmp_path, VALID.replace("[1.0, 2.0]", "{normal: [0, 1], shape: [-2]}"))
    assert "non-negative" in err.reason


def test_limits_can_be_raised_or_lowered():
    data = {"name": "n", "expr": "x", "inputs": {"x": {"uniform": [0, 1], "shape": [10, 10]}}}
    case_from_dict(data)
    with pytest.raises(CaseError, match="max_elements=50"):
        case_from_dict(data, limits=Limits(max_elements=50))
    with pytest.raises(CaseError, match="max_elements"):
        case_from_dict(data).make_inputs(limits=Limits(max_elements=50))


def test_broadcast_result_is_limited():
    data = {"name": "n", "expr": "x * y", "inputs": {"x": {"uniform": [0, 1], "shape": [1000, 1]},
                                                      "y": {"uniform": [0, 1], "shape": [1, 1000]}}}
    assert case_from_dict(data).output_shape == (1000, 1000)
    with pytest.raises(CaseError, match="max_elements"):
        case_from_dict(data, limits=Limits(max_elements=10_000))


def test_duplicate_case_names(tmp_path):
    path = write(tmp_path, "cases:\n" + "".join(
        f"  - name: {n}\n    expr: x\n    inputs: {{x: 1}}\n" for n in ("twice", "other", "twice")))
    cases, errors = load_file(path)
    assert [c.name for c in cases] == ["twice", "other"]
    (err,) = errors
    assert err.case == "twice" and err.line == 8 and "duplicate case name (first at line 2)" in err.reason


def test_duplicate_keys_in_a_case_and_in_its_inputs(tmp_path):
    err = only_error(tmp_path, VALID + "expr: a\n")
    assert err.line == 8 and "duplicate key 'expr' (first at line 4)" in err.reason and err.case == "ok"
    err = only_error(tmp_path, VALID + "  a: 5\n")
    assert err.line == 8 and "duplicate key 'a' (first at line 6)" in err.reason


def test_duplicate_top_level_key_is_a_file_error(tmp_path):
    path = write(tmp_path, "cases: []\ncases:\n  - name: a\n    expr: x\n    inputs: {x: 1}\n")
    cases, errors = load_file(path)
    assert cases == [] and errors[0].line == 2 and "duplicate key 'cases'" in str(errors[0])


def test_invalid_yaml(tmp_path):
    path = write(tmp_path, "cases:\n  - name: a\n    expr: [unclosed\n")
    cases, errors = load_file(path)
    assert cases == [] and len(errors) == 1
    assert "invalid YAML" in str(errors[0]) and errors[0].file == str(path) and errors[0].line is not None


def test_python_tags_are_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = write(tmp_path, f"cases:\n  - !!python/object/apply:os.system ['touch {marker}']\n")
    cases, errors = load_file(path)
    assert cases == [] and len(errors) == 1
    assert "!!python/object/apply:os.system" in str(errors[0]) and "not allowed" in str(errors[0])
    assert errors[0].line == 2 and not marker.exists()
    path = write(tmp_path, "cases:\n  - name: a\n    expr: x\n    inputs: {x: !!python/name:os.getcwd ''}\n")
    assert "not allowed" in str(load_file(path)[1][0])


@pytest.mark.parametrize("text, message", [
    ("42\n", "got int"),
    ("- a\n- b\n", "got a list"),
    ("", "got an empty file"),
    ("cases: 3\n", "'cases' must be a list"),
    ("cases: {name: a}\n", "'cases' must be a list"),
    ("defaults: {}\n", "'cases' must be a list of cases, got nothing"),
    ("version: 2\ncases: []\n", "unsupported format version"),
])
def test_file_shape_errors(tmp_path, text, message):
    path = write(tmp_path, text)
    cases, errors = load_file(path)
    assert cases == [] and len(errors) == 1 and message in str(errors[0])
    assert str(errors[0]).startswith(str(path))


@pytest.mark.parametrize("item, message", [
    ("just-a-string", "a case must be a mapping, got a string"),
    ("[1, 2]", "a case must be a mapping, got a list"),
])
def test_case_that_is_not_a_mapping(tmp_path, item, message):
    path = write(tmp_path, f"cases:\n  - {item}\n  - name: fine\n    expr: x\n    inputs: {{x: 1}}\n")
    cases, errors = load_file(path)
    assert [c.name for c in cases] == ["fine"]
    assert message in str(errors[0]) and errors[0].line == 2


@pytest.mark.parametrize("key, value", [
    ("inputs", "[1, 2]"), ("inputs", "5"), ("expect", "[1, 2]"), ("expect", "nope"),
])
def test_scalar_or_list_where_a_mapping_belongs(tmp_path, key, value):
    body = VALID if key != "inputs" else "name: ok\nexpr: a * b\n"
    err = only_error(tmp_path, body + f"{key}: {value}\n")
    assert key in err.reason and "mapping" in err.reason and err.case == "ok"


@pytest.mark.parametrize("key, bad, good", [
    ("order", "4", "3"), ("dtype", "float8", "float16"), ("mode", "fast", "expanded"),
    ("reference", "mpmath", "exact"), ("seed", "-1", "12"), ("rtol", "-1e-3", "1e-3"),
    ("atol", "abc", "0"), ("tags", "[1, 2]", "[a, b]"), ("skip", "3", "true"),
    ("wrt", "[c]", "[b]"), ("wrt", "[]", "[a, b]"), ("expect", "{c: 1}", "{a: 3}"),
    ("expect", "{a: 'b +'}", "{a: b}"), ("value", "'a +'", "a * b"), ("value", "[1, 2, 3]", "[3, 6]"),
    ("grad_output", "[1, 2, 3]", "[1, 2]"), ("grad_output", "[x]", "2"),
])
def test_each_key_invalid_and_valid(tmp_path, key, bad, good):
    err = only_error(tmp_path, VALID + f"{key}: {bad}\n")
    assert key in err.reason and err.line == 8 and err.case == "ok"
    cases, errors, _ = one_case(tmp_path, VALID + f"{key}: {good}\n")
    assert errors == [] and len(cases) == 1


def test_scientific_notation_strings_are_numbers(tmp_path):
    cases, errors, _ = one_case(tmp_path, VALID + "rtol: 1e-6\natol: 2E-3\n")
    assert errors == [] and cases[0].rtol == 1e-6 and cases[0].atol == 2e-3
    cases, errors, _ = one_case(tmp_path, VALID.replace("[1.0, 2.0]", "[1e-6, 2e3]"))
    np.testing.assert_array_equal(cases[0].make_inputs()["a"], [1e-6, 2e3])
    err = only_error(tmp_path, VALID + "rtol: 1e-6abc\n")
    assert "rtol must be a non-negative number" in err.reason


def test_skip_and_xfail_reasons(tmp_path):
    cases, _, _ = one_case(tmp_path, VALID + "skip: true\nxfail: known bug\n")
    assert cases[0].skip == "skipped" and cases[0].xfail == "known bug"
    cases, _, _ = one_case(tmp_path, VALID)
    assert cases[0].skip is None and cases[0].xfail is None


def test_boolean_input_name_hints_at_quoting(tmp_path):
    err = only_error(tmp_path, "name: b\nexpr: x\ninputs:\n  x: 1\n  on: 2\n")
    assert "quote" in err.reason


# ---------------------------------------------------------------- reproducible inputs


RANDOM = """
name: r
expr: x * y + z
inputs:
  x: {uniform: [-1, 1], shape: [5]}
  z: [1, 2, 3, 4, 5]
  y: {normal: [0, 2], shape: [5]}
"""


def test_same_seed_same_inputs_different_seed_different(tmp_path):
    a = one_case(tmp_path, RANDOM + "seed: 3\n")[0][0].make_inputs()
    b = one_case(tmp_path, RANDOM + "seed: 3\n")[0][0].make_inputs()
    c = one_case(tmp_path, RANDOM + "seed: 4\n")[0][0].make_inputs()
    assert list(a) == ["x", "z", "y"]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["x"], c["x"]) and not np.array_equal(a["y"], c["y"])
    np.testing.assert_array_equal(a["z"], c["z"])


def test_random_inputs_follow_one_generator_in_listed_order(tmp_path):
    case = one_case(tmp_path, RANDOM + "seed: 3\n")[0][0]
    rng = np.random.default_rng(3)
    want_x = rng.uniform(-1, 1, size=(5,))
    want_y = rng.normal(0, 2, size=(5,))
    got = case.make_inputs()
    np.testing.assert_array_equal(got["x"], want_x)
    np.testing.assert_array_equal(got["y"], want_y)


def test_float32_inputs_are_the_float64_draw_rounded(tmp_path):
    f64 = one_case(tmp_path, RANDOM)[0][0].make_inputs()
    f32 = one_case(tmp_path, RANDOM + "dtype: float32\n")[0][0].make_inputs()
    assert f32["x"].dtype == np.float32
    np.testing.assert_array_equal(f32["x"], f64["x"].astype(np.float32))


def test_make_inputs_returns_fresh_arrays():
    case = case_from_dict({"name": "n", "expr": "x", "inputs": {"x": [1.0, 2.0]}})
    case.make_inputs()["x"][0] = 99
    assert case.make_inputs()["x"][0] == 1.0


def test_grad_output_broadcast_checked():
    case = case_from_dict({"name": "n", "expr": "x", "inputs": {"x": [1.0, 2.0]}, "grad_output": 2})
    np.testing.assert_array_equal(case.make_grad_output((2,)), [2.0, 2.0])
    np.testing.assert_array_equal(case.make_grad_output((3,)), [2.0, 2.0, 2.0])
    case = case_from_dict({"name": "n", "expr": "x", "inputs": {"x": [1.0, 2.0]}, "grad_output": [1, 2]})
    np.testing.assert_array_equal(case.make_grad_output((2,)), [1.0, 2.0])
    with pytest.raises(CaseError, match=r"grad_output of shape \(2,\) does not broadcast to the output shape \(3,\)"):
        case.make_grad_output((3,))


# ---------------------------------------------------------------- collection


CI_YAML = "name: CI\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
GOOD = "cases:\n  - name: {n}\n    expr: x\n    inputs: {{x: 1}}\n"


def test_collect_skips_unrelated_yaml_and_sorts(tmp_path):
    write(tmp_path, CI_YAML, ".github/workflows/ci.yml")
    write(tmp_path, "key: !Ref Something\n", "cloudformation.yaml")  # custom tags: not ours
    write(tmp_path, GOOD.format(n="b1"), "b.yaml")
    write(tmp_path, GOOD.format(n="a1"), "a.yml")
    write(tmp_path, GOOD.format(n="sub1"), "sub/z.yaml")
    write(tmp_path, "not yaml at all", "notes.txt")
    cases, errors = collect([tmp_path])
    assert errors == []
    assert [c.name for c in cases] == ["a1", "b1", "sub1"]
    assert is_case_file(tmp_path / "b.yaml") and not is_case_file(tmp_path / ".github/workflows/ci.yml")
    assert not is_case_file(tmp_path / "missing.yaml")


def test_collect_loads_an_explicitly_named_non_case_file(tmp_path):
    ci = write(tmp_path, CI_YAML, ".github/workflows/ci.yml")
    cases, errors = collect([ci])
    assert cases == [] and len(errors) == 1 and errors[0].file == str(ci)


def test_collect_reports_broken_case_file_in_a_folder(tmp_path):
    write(tmp_path, "cases:\n  - name: a\n    expr: [x\n", "broken.yaml")
    assert is_case_file(tmp_path / "broken.yaml")
    cases, errors = collect([tmp_path])
    assert cases == [] and len(errors) == 1 and "invalid YAML" in str(errors[0])


def test_collect_returns_case_errors_beside_the_good_cases(tmp_path):
    write(tmp_path, GOOD.format(n="good") + "  - name: bad\n    expr: y\n    inputs: {x: 1}\n"
          + "  - name: good2\n    expr: x\n    inputs: {x: 2}\n", "mixed.yaml")
    cases, errors = collect([tmp_path])
    assert [c.name for c in cases] == ["good", "good2"]
    assert len(errors) == 1 and errors[0].case == "bad" and errors[0].line == 6


def test_collect_missing_path_and_deterministic(tmp_path):
    write(tmp_path, GOOD.format(n="a"), "a.yaml")
    cases, errors = collect([tmp_path / "nope", tmp_path])
    assert [c.name for c in cases] == ["a"] and len(errors) == 1 and "no such file" in str(errors[0])
    assert [c.id for c in collect([tmp_path])[0]] == [c.id for c in collect([str(tmp_path)])[0]]


def test_load_cases_raises_the_first_error(tmp_path):
    write(tmp_path, GOOD.format(n="a"), "a.yaml")
    assert [c.name for c in load_cases(tmp_path)] == ["a"]
    write(tmp_path, GOOD.format(n="b") + "    bogus: 1\n", "b.yaml")
    with pytest.raises(CaseError, match="unknown key 'bogus'"):
        load_cases(tmp_path)


def test_case_error_formats_and_pickles():
    import pickle

    err = CaseError("unknown key 'bogus'", "cases/x.yaml", 12, "foo")
    assert str(err) == "cases/x.yaml:12: case 'foo': unknown key 'bogus'"
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.file, again.line, again.case, again.reason, str(again)) == (
        err.file, err.line, err.case, err.reason, str(err))
    assert str(CaseError("oops")) == "oops"


def test_input_named_like_a_case_key_keeps_its_own_line(tmp_path):
    body = "name: v\nexpr: value * 2\ninputs:\n  value: [1, x]\nvalue: [2, 4]\n"
    err = only_error(tmp_path, body)
    assert err.line == 6 and "input 'value'" in err.reason
    err = only_error(tmp_path, body.replace("[1, x]", "[1, 2]").replace("value: [2, 4]", "value: [2, 4, 6]"))
    assert err.line == 7 and err.reason.startswith("value: shape (3,)")


def test_extension_keys_hold_anchors_other_top_level_keys_refused(tmp_path):
    text = "x-shared: &pts [1.0, 2.0]\ncases:\n  - name: a\n    expr: x\n    inputs: {x: *pts}\n"
    cases, errors = load_file(write(tmp_path, text))
    assert errors == [] and cases[0].make_inputs()["x"].tolist() == [1.0, 2.0]
    cases, errors = load_file(write(tmp_path, text.replace("x-shared", "shared")))
    assert cases == [] and "unknown key 'shared'" in str(errors[0]) and errors[0].line == 1


def test_alias_bomb_is_refused_by_the_element_limit(tmp_path, peak_bytes):
    lines = ["x: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "cases:\n  - name: bomb\n    expr: x\n    inputs:\n" + "".join(f"      {ln}\n" for ln in lines)
    (cases, errors), peak = peak_bytes(load_file, write(tmp_path, text))
    assert peak < 10_000_000  # counted, never expanded
    # aliases expanded, the file holds over 10**9 values: one error for the whole file
    assert cases == [] and len(errors) == 1
    (err,) = errors
    assert err.case is None and err.line is None
    assert "values in the file: " in str(err) and "exceeds the limit max_elements=50000000" in str(err)
    assert int(str(err).split("values in the file: ")[1].split()[0]) > 10**9
