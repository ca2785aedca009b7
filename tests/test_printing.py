"""Tensor printing, character for character as PyTorch's ``torch/_tensor_str.py``.

The expected strings are what PyTorch prints after
``torch.set_default_dtype(torch.float64)``: symgrad makes Python floats
float64 (documented in DESIGN.md), so a float64 tensor shows no ``dtype=``
suffix and a float32 one shows ``dtype=torch.float32``.  Apart from that
suffix the layout rules are PyTorch's defaults: precision 4, threshold 1000
elements, 3 edge items, line width 80.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import symgrad as torch

INF, NAN = math.inf, math.nan


@pytest.mark.parametrize(
    "data, kwargs, expected",
    [
        # floats that are all integers print as "100." with a common width
        ([100.0, 200.0], {}, "tensor([100., 200.])"),
        ([-12.0, -8.0], {}, "tensor([-12.,  -8.])"),
        ([1.0, 2.0], {}, "tensor([1., 2.])"),
        ([0.0, 0.0], {}, "tensor([0., 0.])"),
        ([100000000.0], {}, "tensor([100000000.])"),  # 1e8 itself is not above the sci threshold
        # fixed point with 4 decimals
        ([0.9, 1.9], {}, "tensor([0.9000, 1.9000])"),
        ([-1.5, 2.25], {}, "tensor([-1.5000,  2.2500])"),
        ([123.456, 1.0], {}, "tensor([123.4560,   1.0000])"),
        # scientific notation: max/min > 1000, max > 1e8 or min < 1e-4 (nonzero finite values)
        ([1e-5, 1e3], {}, "tensor([1.0000e-05, 1.0000e+03])"),
        ([5e-5, 1.0], {}, "tensor([5.0000e-05, 1.0000e+00])"),
        ([1.0, 1001.0], {}, "tensor([1.0000e+00, 1.0010e+03])"),
        ([1e9, 1.0], {}, "tensor([1.0000e+09, 1.0000e+00])"),
        ([-2e8, 3e8], {}, "tensor([-2.0000e+08,  3.0000e+08])"),
        ([0.0, 1e-5], {}, "tensor([0.0000e+00, 1.0000e-05])"),  # zeros do not decide the mode
        # booleans and integers
        ([True, True], {}, "tensor([True, True])"),
        ([True, False], {}, "tensor([ True, False])"),
        ([1, 2, 3], {}, "tensor([1, 2, 3])"),
        ([1, -20], {}, "tensor([  1, -20])"),
        ([1, 2], {"dtype": np.int32}, "tensor([1, 2], dtype=torch.int32)"),
        # 0-d tensors
        (3.0, {}, "tensor(3.)"),
        (0.5, {}, "tensor(0.5000)"),
        (-0.0, {}, "tensor(-0.)"),
        (3, {}, "tensor(3)"),
        (True, {}, "tensor(True)"),
        (1e-7, {}, "tensor(1.0000e-07)"),
        # non-finite values
        ([INF, NAN], {}, "tensor([inf, nan])"),
        ([1.0, INF], {}, "tensor([1., inf])"),
        ([1.5, INF, -INF, NAN], {}, "tensor([1.5000,    inf,   -inf,    nan])"),
        ([1e-5, NAN], {}, "tensor([1.0000e-05,        nan])"),
        # float32 shows its dtype (float64 is the default)
        ([1.0, 2.0], {"dtype": torch.float32}, "tensor([1., 2.], dtype=torch.float32)"),
        ([0.1, 0.2], {"dtype": torch.float32}, "tensor([0.1000, 0.2000], dtype=torch.float32)"),
        ([1.0, 2.0], {"dtype": torch.float64}, "tensor([1., 2.])"),
        # empty tensors
        ([], {}, "tensor([])"),
        ([], {"dtype": torch.int64}, "tensor([], dtype=torch.int64)"),
        ([], {"dtype": torch.float32}, "tensor([], dtype=torch.float32)"),
        (np.zeros((0, 3)), {}, "tensor([], size=(0, 3))"),
    ],
)
def test_repr(data: Any, kwargs: dict[str, Any], expected: str) -> None:
    t = torch.tensor(data, **kwargs)
    assert repr(t) == expected
    assert str(t) == expected


# ---------------------------------------------------------------- twins: what PyTorch does not print


@pytest.mark.parametrize(
    "data, kwargs, not_expected",
    [
        ([100.0, 200.0], {}, "tensor([100.0, 200.0])"),  # no trailing zero in integer mode
        ([-12.0, -8.0], {}, "tensor([-12., -8.])"),  # padded to a common width
        ([0.9, 1.9], {}, "tensor([0.9, 1.9])"),  # always 4 decimals
        ([1e-5, 1e3], {}, "tensor([1.0000e-05, 1000.0000])"),
        (3.0, {}, "tensor(3)"),  # a float is not an int
        (3, {}, "tensor(3.)"),
        ([1.0, 2.0], {}, "tensor([1., 2.], dtype=torch.float64)"),  # float64 is the default here
        ([1.0, 2.0], {"dtype": torch.float32}, "tensor([1., 2.])"),
        ([1, 2], {}, "tensor([1, 2], dtype=torch.int64)"),
    ],
)
def test_repr_is_not(data: Any, kwargs: dict[str, Any], not_expected: str) -> None:
    assert repr(torch.tensor(data, **kwargs)) != not_expected


# ---------------------------------------------------------------- autograd suffixes


def test_requires_grad_suffix() -> None:
    assert repr(torch.tensor([1.0, 2.0], requires_grad=True)) == "tensor([1., 2.], requires_grad=True)"
    assert repr(torch.tensor([0.9, 1.9], requires_grad=True)) == "tensor([0.9000, 1.9000], requires_grad=True)"
    assert repr(torch.tensor([1.0, 2.0], requires_grad=False)) == "tensor([1., 2.])"


def test_grad_fn_suffix_replaces_requires_grad() -> None:
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    assert repr(100 * x) == "tensor([100., 200.], grad_fn=<MulBackward0>)"
    assert repr(x.sum()) == "tensor(3., grad_fn=<SumBackward0>)"
    assert repr(-2 * x) == "tensor([-2., -4.], grad_fn=<MulBackward0>)"


def test_dtype_comes_before_grad_suffixes() -> None:
    x = torch.tensor([1.0, 2.0], dtype=torch.float32, requires_grad=True)
    assert repr(x) == "tensor([1., 2.], dtype=torch.float32, requires_grad=True)"
    assert repr(x * 2) == "tensor([2., 4.], dtype=torch.float32, grad_fn=<MulBackward0>)"


def test_no_grad_results_have_no_suffix() -> None:
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with torch.no_grad():
        assert repr(x * 2) == "tensor([2., 4.])"
    assert repr(x.detach()) == "tensor([1., 2.])"


def test_print_of_the_tutorial() -> None:
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    assert f"{x} {100 * x}" == "tensor([1., 2.], requires_grad=True) tensor([100., 200.], grad_fn=<MulBackward0>)"


# ---------------------------------------------------------------- layout: several dimensions, wrapping


def test_two_dimensions() -> None:
    assert repr(torch.tensor([[1.0, 2.0], [3.0, 4.0]])) == "tensor([[1., 2.],\n        [3., 4.]])"
    assert repr(torch.tensor([[1.0, 2.0], [3.0, 4.5]])) == "tensor([[1.0000, 2.0000],\n        [3.0000, 4.5000]])"
    assert repr(torch.tensor([[1, 20], [300, 4]])) == "tensor([[  1,  20],\n        [300,   4]])"


def test_three_dimensions_separate_blocks_with_a_blank_line() -> None:
    t = torch.tensor(np.arange(8.0).reshape(2, 2, 2))
    assert repr(t) == (
        "tensor([[[0., 1.],\n"
        "         [2., 3.]],\n"
        "\n"
        "        [[4., 5.],\n"
        "         [6., 7.]]])"
    )


def test_long_vector_wraps_at_80_columns() -> None:
    # width 3 ("29."), 5 per element with ", ": floor((80 - 7) / 5) = 14 per line
    assert repr(torch.tensor(np.arange(30.0))) == (
        "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
        "        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,\n"
        "        28., 29.])"
    )


def test_suffix_goes_to_a_new_line_when_the_line_is_full() -> None:
    t = torch.tensor(np.arange(1, 10) / 2, requires_grad=True)  # 9 elements of width 6 fill the line
    assert repr(t) == (
        "tensor([0.5000, 1.0000, 1.5000, 2.0000, 2.5000, 3.0000, 3.5000, 4.0000, 4.5000],\n"
        "       requires_grad=True)"
    )
    # the suffix must fit within 80 columns counting the quirk of _add_suffixes (line length + 1 + 2)
    eight = torch.tensor(np.arange(1, 9) / 2, requires_grad=True)  # 71 characters: 73 + 20 > 80
    assert repr(eight).endswith("4.0000],\n       requires_grad=True)")
    five = torch.tensor(np.arange(1, 6) / 2, requires_grad=True)
    assert repr(five) == "tensor([0.5000, 1.0000, 1.5000, 2.0000, 2.5000], requires_grad=True)"


def test_more_than_1000_elements_are_summarised() -> None:
    assert repr(torch.tensor(np.arange(2000))) == "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"
    assert repr(torch.tensor(np.arange(2000.0))) == (
        "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n"
        "        1.9990e+03])"
    )
    assert "..." not in repr(torch.tensor(np.arange(1000)))  # the threshold is "more than 1000"


def test_summarised_matrix() -> None:
    t = torch.tensor(np.arange(1100).reshape(100, 11))
    assert repr(t) == (
        "tensor([[   0,    1,    2,  ...,    8,    9,   10],\n"
        "        [  11,   12,   13,  ...,   19,   20,   21],\n"
        "        [  22,   23,   24,  ...,   30,   31,   32],\n"
        "        ...,\n"
        "        [1067, 1068, 1069,  ..., 1075, 1076, 1077],\n"
        "        [1078, 1079, 1080,  ..., 1086, 1087, 1088],\n"
        "        [1089, 1090, 1091,  ..., 1097, 1098, 1099]])"
    )


def test_formatter_uses_only_the_shown_elements_when_summarising() -> None:
    # the middle value 0.5 is not shown, so it does not switch the tensor out of integer mode
    data = np.arange(2000.0)
    data[1000] = 0.5
    assert repr(torch.tensor(data)).startswith("tensor([0.0000e+00, 1.0000e+00")  # sci from the corners
    small = np.ones(1001)
    small[500] = 0.5
    assert repr(torch.tensor(small)) == "tensor([1., 1., 1.,  ..., 1., 1., 1.])"


def test_size_and_dtype_reprs() -> None:
    assert repr(torch.tensor([[1.0, 2.0]]).shape) == "torch.Size([1, 2])"
