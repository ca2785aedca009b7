"""The fast comparison path (a few vectorised passes, taken when every element is within tolerance)
gives exactly the Comparison of the full path (every element's errors), on crafted arrays."""

import numpy as np
import pytest

import symgrad.checking.compare as C

TINY = np.nextafter(0.0, 1.0)  # the smallest subnormal
SUB = 2.5e-310
ROWS = {  # (actual, expected): each pair within tolerance
    "plain": ([1.0, 2.0, -3.0], [1.0, 2.0 + 1e-9, -3.0 - 1e-8]),
    "signed zeros": ([0.0, -0.0, 0.0, -0.0], [-0.0, 0.0, 0.0, -0.0]),
    "subnormals": ([TINY, -TINY, SUB, 0.0, -SUB], [-TINY, TINY, SUB * (1 + 1e-12), SUB, 0.0]),
    "infinities": ([np.inf, -np.inf, 5.0], [np.inf, -np.inf, 5.0]),
    "nan where undefined": ([np.nan, 1.0, 7.0], [np.nan, 1.0, np.nan]),
    "huge": ([1.7e308, -1.7e308, 1e300], [1.7e308 * (1 - 1e-9), -1.7e308, 1e300]),
    "opposite signs near 0": ([1e-9, -1e-9, 3.0], [-1e-9, 1e-9, 3.0]),
}


def _both(actual, expected, **kw):
    kw = {"rtol": 1e-7, "atol": 1e-7, **kw}
    fast = C.compare("a", actual, expected, **kw)
    saved = C._passing_stats
    C._passing_stats = lambda *a, **k: None  # the reference path only
    try:
        full = C.compare("a", actual, expected, **kw)
    finally:
        C._passing_stats = saved
    return fast, full


def _same(fast, full):
    f, g = fast.to_dict(), full.to_dict()
    assert f == g or (str(f) == str(g)), (f, g)  # str: nan == nan


@pytest.mark.parametrize("name", list(ROWS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fast_path_matches_full_path_when_within_tolerance(name, dtype):
    a, e = (np.array(v) for v in ROWS[name])
    atol = 1e-5 if dtype == "float32" else 1e-7
    fast, full = _both(a, e, dtype=dtype, atol=atol)
    assert fast.passed
    _same(fast, full)


@pytest.mark.parametrize("name", list(ROWS))
def test_twin_one_wrong_element_fails_on_both_paths(name):
    a, e = (np.array(v) for v in ROWS[name])
    i = int(np.flatnonzero(~np.isnan(e))[-1])
    wrong = a.copy()
    wrong[i] = e[i] * 1.01 + 1.0 if np.isfinite(e[i]) else 0.0
    fast, full = _both(wrong, e)
    assert not fast.passed and fast.mismatched == full.mismatched == 1
    assert fast.worst_index == (i,)
    _same(fast, full)


@pytest.mark.parametrize("wrong", [np.nan, 0.0, 1.7e308, -np.inf])
def test_finite_tape_against_an_infinite_reference_fails(wrong):
    a, e = np.array([1.0, wrong]), np.array([1.0, np.inf])
    fast, full = _both(a, e)
    assert not fast.passed
    _same(fast, full)


def test_masks_kinks_and_2d_shapes_agree():
    rng = np.random.default_rng(1)
    e = rng.normal(size=(30, 40))
    a = e * (1 + 1e-9 * rng.normal(size=e.shape))
    undefined, kink = rng.random(e.shape) < 0.1, rng.random(e.shape) < 0.1
    fast, full = _both(a, e, undefined=undefined, at_kink=kink)
    assert fast.passed and fast.at_kink > 0
    _same(fast, full)
    a[3, 5] = e[3, 5] + 1.0  # twin: a wrong element
    fast, full = _both(a, e, undefined=undefined & False, at_kink=kink & False)
    assert fast.mismatched == 1 and fast.worst_index == (3, 5)
    _same(fast, full)


def test_zero_d_and_empty_arrays():
    for a, e in [(np.float64(2.0), np.float64(2.0)), (np.zeros(0), np.zeros(0)), (np.nan, np.nan)]:
        fast, full = _both(a, e)
        _same(fast, full)
    fast, full = _both(np.float64(2.0), np.float64(3.0))  # twin
    assert not fast.passed
    _same(fast, full)


def test_a_large_random_array_agrees():
    rng = np.random.default_rng(2)
    e = rng.normal(size=10_000) * 10.0 ** rng.integers(-300, 300, size=10_000)
    a = e * (1 + 1e-8 * rng.normal(size=e.shape))
    fast, full = _both(a, e)
    assert fast.passed and fast.max_ulp > 0
    _same(fast, full)


# ------------------------------------------------ the ratio route: one largest error/tolerance decides a block


@pytest.mark.parametrize("n", [1, 2, 7, 16, 17, 100, 3000, C._BLOCK])
def test_numpy_argmax_returns_the_first_nan(n):
    # the fast route reads only the largest ratio: a nan (a nan or infinity on either side) must win it
    for pos in sorted({0, n // 2, n - 1}):
        r = np.linspace(0.0, 1.0, n)
        r[pos] = np.nan
        assert int(r.argmax()) == pos
        if pos + 1 < n:
            r[pos + 1] = np.nan  # the first of two
            assert int(r.argmax()) == pos
    r = np.linspace(0.0, 1.0, n)  # twin: without a nan, the largest
    assert int(r.argmax()) == n - 1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_elements_at_the_boundary_pass_exactly_when_within_tolerance(dtype):
    # |act - exp| and atol + rtol*|exp| one or two floats apart, around 1, huge, tiny and subnormal values
    # (the ratio <= 1 rule against diff <= allowed, element by element, each in a comparison of its own)
    rng = np.random.default_rng(5)
    rtol, atol = (1e-7, 1e-7) if dtype == "float64" else (1.3e-6, 1e-5)
    verdicts = set()
    for exp in [1.0, 3.0, -7.5, 1e300, -1e-300, 1e-310, 0.0, *rng.normal(size=6) * 10.0 ** rng.integers(-8, 8, 6)]:
        allowed = atol + rtol * abs(exp)
        for steps in (-2, -1, 0, 1, 2):
            d = allowed
            for _ in range(abs(steps)):
                d = float(np.nextafter(d, np.inf if steps > 0 else 0.0))
            for act in (exp + d, exp - d):
                if not np.isfinite(act):
                    continue
                within = abs(act - exp) <= allowed
                fast, full = _both(np.array([act, exp]), np.array([exp, exp]), rtol=rtol, atol=atol)
                assert fast.passed == full.passed == within, (exp, act)
                _same(fast, full)
                verdicts.add(within)
    assert verdicts == {True, False}  # the twin: some of these pairs fail


def test_zero_tolerance_at_equal_zeros_and_a_nan_actual():
    fast, full = _both(np.array([0.0, 1.0, -0.0]), np.array([0.0, 1.0, 0.0]), atol=0.0)  # 0/0 ratios
    assert fast.passed and fast.max_abs == 0.0
    _same(fast, full)
    fast, full = _both(np.array([0.0, np.nan, 0.0]), np.array([0.0, 1.0, 0.0]), atol=0.0)  # twin
    assert not fast.passed and fast.worst_index == (1,)
    _same(fast, full)


def test_an_infinite_reference_where_not_compared_and_where_compared():
    a, e = np.array([1.0, 5.0, 2.0]), np.array([1.0, np.inf, 2.0 + 1e-9])
    fast, full = _both(a, e, at_kink=np.array([False, True, False]))  # the infinity is not compared
    assert fast.passed and fast.at_kink == 1 and fast.worst_index == (2,)
    _same(fast, full)
    fast, full = _both(a, e)  # twin: compared, a finite tape value against inf fails
    assert not fast.passed and fast.worst_index == (1,)
    _same(fast, full)


def test_a_tolerance_that_overflows():
    # rtol > 1 makes atol + rtol*|exp| infinite for a finite reference: every finite tape value is within
    a, e = np.array([1e308, 3.0]), np.array([1.5e308, 3.0])
    fast, full = _both(a, e, rtol=10.0)
    assert fast.passed
    _same(fast, full)
    fast, full = _both(np.array([np.inf, 3.0]), e, rtol=10.0)  # twin: an infinite tape value is not
    assert not fast.passed and fast.worst_index == (0,)
    _same(fast, full)


# ------------------------------------------------ a slack (float32's conditioning allowance) on the fast path


def _slacked(n=3 * C._BLOCK + 17, seed=6):
    """float32-like errors, some beyond the default tolerance but within a slack that has nan and inf
    entries (no estimate: 0); several blocks and a ragged last one."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=n) * 10.0 ** rng.integers(-3, 3, size=n)
    a = e * (1 + 1e-7 * rng.normal(size=n))
    slack = np.abs(e) * 1e-4 * rng.random(n)
    slack[::97] = np.nan
    slack[5::89] = np.inf
    return a, e, slack


def test_a_slack_widens_on_the_fast_path_as_on_the_full_one():
    a, e, slack = _slacked()
    fast, full = _both(a, e, dtype="float32", rtol=1.3e-6, atol=1e-5, slack=slack)
    assert fast.passed and fast.widened > 0 and fast.widened_by > 1 and "widened" in fast.note
    _same(fast, full)
    undefined = np.zeros(a.shape, dtype=bool)
    undefined[::7] = True
    fast, full = _both(a, e, dtype="float32", rtol=1.3e-6, atol=1e-5, slack=slack, undefined=undefined)
    assert fast.passed and 0 < fast.widened < full.size - fast.undefined
    _same(fast, full)


def test_twin_an_element_beyond_its_slack_fails():
    a, e, slack = _slacked()
    i = 2 * C._BLOCK + 11
    a[i] = e[i] + 2 * max(slack[i] if np.isfinite(slack[i]) else 0.0, 1e-5 + 1.3e-6 * abs(e[i]))
    fast, full = _both(a, e, dtype="float32", rtol=1.3e-6, atol=1e-5, slack=slack)
    assert not fast.passed and fast.mismatched == 1 and fast.worst_index == (i,)
    _same(fast, full)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_opposite_signs_far_from_zero_within_a_slack_count_their_ulps(dtype):
    # a slack lets values of opposite signs pass at any size: no same-sign shortcut for the ULPs
    a, e = np.array([-0.5, 3.0, 2.0]), np.array([1.0, 3.0, 2.0])
    fast, full = _both(a, e, dtype=dtype, slack=np.array([2.0, 0.0, 0.0]))
    assert fast.passed and fast.widened == 1
    assert fast.max_ulp == float(C.ulp_distance(-0.5, 1.0, dtype)) > 1e9
    _same(fast, full)
    fast, full = _both(a, e, dtype=dtype, slack=np.array([1.0, 0.0, 0.0]))  # twin: 1.5 is beyond 1.0
    assert not fast.passed
    _same(fast, full)


def test_a_slack_without_an_estimate_does_not_widen():
    s = np.array([np.nan, np.inf, 2.0, 0.0, 1e-300])
    np.testing.assert_array_equal(C._slack_allowance(s, (2, 5)), np.broadcast_to(np.nan_to_num(s, nan=0.0, posinf=0.0),
                                                                                   (2, 5)))
    a, e = np.array([1.001, 1.001, 1.001]), np.array([1.0, 1.0, 1.0])
    for slack in (np.nan, np.inf):  # no estimate: the default tolerance, so 1e-3 fails
        c = C.compare("a", a, e, rtol=1e-7, atol=1e-7, slack=np.array([slack, 0.0, 0.0]))
        assert c.mismatched == 3 and c.widened == 0
    c = C.compare("a", a, e, rtol=1e-7, atol=1e-7, slack=np.array([2e-3, 0.0, 0.0]))  # twin: an estimate widens
    assert c.mismatched == 2 and c.widened == 1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bitwise_equal_blocks_report_zero_errors_as_the_full_path(dtype):
    # the shortcut for a block with no error at all, beside blocks with errors
    rng = np.random.default_rng(7)
    e = rng.normal(size=2 * C._BLOCK + 3)
    e[:9] = [0.0, -0.0, np.inf, -np.inf, 5e-324, -5e-324, 1.0, -1.0, 0.0]
    a = e.copy()
    a[:2] = [-0.0, 0.0]
    fast, full = _both(a, e, dtype=dtype)
    assert fast.passed and fast.max_abs == fast.max_rel == fast.max_ulp == 0.0
    _same(fast, full)
    a[C._BLOCK + 7] = np.nextafter(e[C._BLOCK + 7], np.inf)  # twin: one ulp off in the second block only
    fast, full = _both(a, e)
    assert fast.passed and fast.max_ulp == 1.0 and fast.worst_index == (C._BLOCK + 7,)
    _same(fast, full)
