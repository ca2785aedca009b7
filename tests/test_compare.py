"""Tests for symgrad.compare: tolerances, elementwise comparison, ULP distance."""

import json
import math

import numpy as np
import pytest

from symgrad.checking.compare import DEFAULT_TOLERANCES, Comparison, compare, tolerances, ulp_distance

F64 = DEFAULT_TOLERANCES["float64"]


def cmp(actual, expected, rtol=1e-7, atol=1e-7, **kw):
    return compare("a", actual, expected, rtol=rtol, atol=atol, **kw)


# ----------------------------------------------------------------- tolerances


def test_default_tolerances_follow_torch_assert_close():
    assert tolerances("float64") == (1e-7, 1e-7)
    assert tolerances("float32") == (1.3e-6, 1e-5)
    assert tolerances(np.float32) == (1.3e-6, 1e-5)
    assert tolerances(np.dtype("float64")) == (1e-7, 1e-7)


def test_tolerance_overrides_one_at_a_time():
    assert tolerances("float32", rtol=1e-3) == (1e-3, 1e-5)
    assert tolerances("float32", atol=0) == (1.3e-6, 0.0)
    assert tolerances("float64", rtol="1e-6", atol="1e-9") == (1e-6, 1e-9)  # YAML 1.1 strings


@pytest.mark.parametrize("bad", [-1e-7, float("nan"), float("inf"), "abc", True])
def test_bad_tolerance_values_are_refused(bad):
    with pytest.raises(ValueError):
        tolerances("float64", rtol=bad)


def test_unsupported_dtype_is_refused():
    with pytest.raises(ValueError, match="unsupported"):
        tolerances("int64")
    with pytest.raises(ValueError):
        tolerances("float8")


# ----------------------------------------------------------------- boundary


def test_element_at_tolerance_boundary_passes():
    # |a - e| == atol + rtol*|e| exactly (values chosen to be exact in binary)
    c = cmp([1.5], [1.0], rtol=0.25, atol=0.25)
    assert c.passed and c.mismatched == 0


def test_element_just_outside_tolerance_boundary_fails():
    c = cmp([np.nextafter(1.5, 2.0)], [1.0], rtol=0.25, atol=0.25)
    assert not c.passed and c.mismatched == 1


def test_relative_part_scales_with_reference():
    assert cmp([1e6 + 0.05], [1e6], rtol=1e-7, atol=0).passed
    assert not cmp([1.05], [1.0], rtol=1e-7, atol=0).passed


def test_tutorial_gradient_passes_and_wrong_one_fails():
    a = np.array([2.0, 3.0])
    good = compare("a", 9 * a**2, [36.0, 81.0], rtol=F64[0], atol=F64[1], formula="9*a**2")
    assert good.passed and good.formula == "9*a**2"
    assert good.max_abs == 0.0 and good.max_ulp == 0.0 and good.worst_index is not None

    bad = compare("a", [36.0, 82.0], [36.0, 81.0], rtol=F64[0], atol=F64[1], formula="9*a**2")
    assert not bad.passed
    assert bad.mismatched == 1 and bad.size == 2 and bad.shape == (2,)
    assert bad.worst_index == (1,)
    assert (bad.actual, bad.expected) == (82.0, 81.0)
    assert bad.max_abs == 1.0
    assert bad.max_rel == pytest.approx(1 / 81)
    assert bad.max_ulp == 2.0**46  # 81 and 82 lie in [64, 128): spacing 2**-46


def test_worst_index_is_largest_error_over_tolerance_ratio():
    # abs error 1e-3 at index 0 (huge reference) is within tolerance; 1e-6 at index 2 (zero reference) is not
    c = cmp([1e6 + 1e-3, 1.0, 1e-6], [1e6, 1.0, 0.0], rtol=1e-7, atol=1e-7)
    assert c.mismatched == 1
    assert c.worst_index == (2,)
    assert c.max_abs == pytest.approx(1e-3)  # the max over all elements, not the worst one's
    assert c.max_rel == math.inf  # nonzero error against a zero reference


def test_worst_index_multidimensional():
    exp = np.zeros((2, 3))
    act = exp.copy()
    act[1, 2] = 0.5
    act[0, 1] = 0.25
    c = cmp(act, exp)
    assert c.worst_index == (1, 2) and c.mismatched == 2 and c.shape == (2, 3) and c.size == 6
    assert c.actual == 0.5 and c.expected == 0.0


# ----------------------------------------------------------------- infinities and nan


def test_equal_infinities_pass():
    c = cmp([np.inf, -np.inf, 1.0], [np.inf, -np.inf, 1.0])
    assert c.passed and c.undefined == 0
    assert c.max_abs == 0.0 and c.max_ulp == 0.0


def test_opposite_infinities_fail():
    c = cmp([np.inf], [-np.inf])
    assert not c.passed and c.mismatched == 1
    assert c.max_abs == math.inf and c.max_ulp == math.inf


def test_finite_against_infinity_fails_even_with_relative_tolerance():
    # atol + rtol*inf == inf would let anything pass; it must not
    assert not cmp([1e300], [np.inf], rtol=1e-7).passed
    assert not cmp([np.inf], [1.0], rtol=1.0, atol=1.0).passed


def test_nan_reference_is_undefined_not_counted():
    c = cmp([1.0, 123.0], [1.0, np.nan])
    assert c.passed
    assert c.undefined == 1 and c.mismatched == 0
    assert c.worst_index == (0,)


def test_nan_reference_does_not_hide_a_real_mismatch():
    c = cmp([2.0, 123.0], [1.0, np.nan])
    assert not c.passed
    assert c.undefined == 1 and c.mismatched == 1 and c.worst_index == (0,)


def test_nan_actual_where_reference_defined_is_mismatch():
    c = cmp([np.nan, 1.0], [1.0, 1.0])
    assert not c.passed and c.mismatched == 1
    assert c.worst_index == (0,) and math.isnan(c.actual)
    assert c.max_ulp == math.inf


def test_nan_actual_where_reference_undefined_is_not_mismatch():
    c = cmp([np.nan, 1.0], [np.nan, 1.0])
    assert c.passed and c.undefined == 1


def test_caller_undefined_mask():
    c = cmp([5.0, 1.0], [1.0, 1.0], undefined=np.array([True, False]))
    assert c.passed and c.undefined == 1 and c.mismatched == 0
    c = cmp([5.0, 1.0], [1.0, 1.0], undefined=np.array([False, True]))
    assert not c.passed and c.undefined == 1 and c.mismatched == 1


def test_all_undefined_has_no_worst_element():
    c = cmp([1.0, 2.0], [np.nan, np.nan])
    assert c.passed and c.undefined == 2
    assert c.worst_index is None and c.actual is None and c.expected is None
    assert (c.max_abs, c.max_rel, c.max_ulp) == (0.0, 0.0, 0.0)


def test_no_warnings_from_inf_and_nan(recwarn):
    cmp([np.inf, np.nan, 0.0, 1.0], [np.inf, 1.0, 0.0, 0.0], rtol=0, atol=0)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


# ----------------------------------------------------------------- shapes


def test_shape_mismatch_is_a_failure_with_note():
    c = cmp([1.0, 2.0], [1.0, 2.0, 3.0])
    assert not c.passed
    assert c.mismatched == 3 and c.size == 3 and c.shape == (3,)
    assert c.note == "shape (2,) != (3,)"
    assert c.worst_index is None


def test_scalar_against_array_is_not_broadcast():
    c = cmp(1.0, [1.0, 1.0])
    assert not c.passed and "shape () != (2,)" in c.note


def test_matching_shapes_have_no_note():
    c = cmp([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert c.passed and c.note == ""


def test_zero_d_arrays():
    good = cmp(np.array(2.0), np.array(2.0))
    assert good.passed and good.shape == () and good.size == 1 and good.worst_index == ()
    bad = cmp(np.array(2.5), 2.0)
    assert not bad.passed and bad.mismatched == 1 and bad.worst_index == ()
    assert bad.actual == 2.5 and bad.expected == 2.0


def test_empty_arrays_pass_and_shape_mismatched_empty_fails():
    assert cmp(np.zeros((0,)), np.zeros((0,))).passed
    assert not cmp(np.zeros((1,)), np.zeros((0,))).passed


# ----------------------------------------------------------------- float32


def test_float32_defaults_accept_float32_rounding():
    rtol, atol = tolerances("float32")
    x = np.linspace(0.1, 3.0, 50)
    tape = np.sin(x.astype(np.float32)) * np.float32(3)
    assert compare("x", tape, 3 * np.sin(x), rtol=rtol, atol=atol, dtype="float32").passed
    # ... which float64's defaults reject
    rtol64, atol64 = tolerances("float64")
    assert not compare("x", tape, 3 * np.sin(x), rtol=rtol64, atol=atol64).passed


def test_float32_defaults_reject_a_real_error():
    rtol, atol = tolerances("float32")
    c = compare("x", np.float32([1.0, 2.001]), [1.0, 2.0], rtol=rtol, atol=atol, dtype="float32")
    assert not c.passed and c.worst_index == (1,)


def test_ulp_counted_in_comparison_dtype():
    one32 = np.float32(1.0)
    nxt = np.nextafter(one32, np.float32(2))
    c = compare("x", [nxt], [1.0], rtol=0, atol=0, dtype="float32")
    assert c.max_ulp == 1.0 and not c.passed
    c64 = compare("x", [float(nxt)], [1.0], rtol=0, atol=0, dtype="float64")
    assert c64.max_ulp == 2.0**29  # one float32 step is 2**29 float64 steps near 1


# ----------------------------------------------------------------- ulp_distance


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x", [1.0, -1.0, 1e-30, 3.5e20, 0.0])
def test_ulp_of_adjacent_floats_is_one(dtype, x):
    a = dtype(x)
    up = np.nextafter(a, dtype(np.inf))
    assert ulp_distance(a, up, dtype) == 1
    assert ulp_distance(up, a, dtype) == 1
    assert ulp_distance(a, a, dtype) == 0
    two = np.nextafter(up, dtype(np.inf))
    assert ulp_distance(a, two, dtype) == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ulp_across_zero(dtype):
    tiny = np.nextafter(dtype(0), dtype(1))  # smallest subnormal
    assert ulp_distance(-tiny, tiny, dtype) == 2
    assert ulp_distance(-0.0, 0.0, dtype) == 0
    assert ulp_distance(-tiny, 0.0, dtype) == 1
    assert ulp_distance(-tiny, -0.0, dtype) == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ulp_infinities_and_nan(dtype):
    big = np.finfo(dtype).max
    assert ulp_distance(np.inf, np.inf, dtype) == 0
    assert ulp_distance(-np.inf, -np.inf, dtype) == 0
    assert ulp_distance(big, np.inf, dtype) == 1
    assert ulp_distance(np.inf, -np.inf, dtype) == np.inf
    assert ulp_distance(np.nan, 1.0, dtype) == np.inf
    assert ulp_distance(1.0, np.nan, dtype) == np.inf
    # the whole finite line (no int64 overflow for float64)
    assert np.isfinite(ulp_distance(-big, big, dtype))
    assert ulp_distance(-big, big, dtype) > 0


def test_ulp_emits_no_overflow_warning(recwarn):
    big = np.finfo(np.float64).max
    ulp_distance(np.float64(-big), np.float64(-0.0), np.float64)
    ulp_distance(np.array([-big, 1.0]), np.array([big, -1.0]), np.float64)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_ulp_float64_full_range_exact_count():
    big = np.finfo(np.float64).max
    expected = 2 * 0x7FEFFFFFFFFFFFFF  # bit pattern of max, counted on each side of zero
    assert ulp_distance(-big, big, np.float64) == float(expected)


def test_ulp_elementwise_arrays_and_casting():
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([1.0, np.nextafter(2.0, 3.0), 3.0])
    np.testing.assert_array_equal(ulp_distance(a, b, "float64"), [0, 1, 0])
    # cast to float32 first: a float64 step is below float32 resolution
    np.testing.assert_array_equal(ulp_distance(a, b, "float32"), [0, 0, 0])
    assert ulp_distance(1.0, 2.0, "float64").shape == ()


def test_ulp_refuses_non_float_dtype():
    with pytest.raises(ValueError):
        ulp_distance([1], [2], np.int64)


# ----------------------------------------------------------------- to_dict


def test_comparison_to_dict_is_json_and_round_trips():
    c = cmp([np.inf, np.nan, 2.0], [-np.inf, 1.0, 1.0], formula="9*a**2")
    d = c.to_dict()
    text = json.dumps(d, allow_nan=False)  # no bare NaN/Infinity tokens
    back = json.loads(text)
    assert back["max_abs"] == "inf" and back["max_ulp"] == "inf"
    assert back["shape"] == [3] and back["worst_index"] in ([0], [1])
    assert back["passed"] is False and back["mismatched"] == 3
    again = Comparison.from_dict(back)
    assert again.shape == (3,) and again.max_abs == math.inf
    assert again.to_dict() == d


def test_comparison_to_dict_nan_value_serialised_as_string():
    c = cmp([np.nan], [1.0])
    d = json.loads(json.dumps(c.to_dict(), allow_nan=False))
    assert d["actual"] == "nan" and d["expected"] == 1.0
    assert math.isnan(Comparison.from_dict(d).actual)


def test_comparison_to_dict_plain_types():
    c = cmp(np.float32([1.0, 2.0]), [1.0, 2.0])
    d = c.to_dict()
    for key in ("size", "mismatched", "undefined"):
        assert type(d[key]) is int
    for key in ("max_abs", "max_rel", "max_ulp", "rtol", "atol", "actual", "expected"):
        assert type(d[key]) is float
    assert all(type(i) is int for i in d["worst_index"])
