"""Rounding at a jump: where the float forward and the exact value fall on different sides of a
jump (sign, a comparison in where's condition) or of a bound (hardtanh, clip), the element is at
a kink, not a mismatch; an element every comparison skips makes the case an error, never a pass.

0.9*sigmoid(0) + 0.05 is exactly 0.5 in floats and 0.5 + 1e-17 to sympy (0.9 is not 9/10):
the two forwards take different branches there.  Found by the fuzzer as false alarms.
"""

from __future__ import annotations

import numpy as np
import pytest

import symgrad

torch = pytest.importorskip("torch")

AT_HALF = "0.9*sigmoid(x) + 0.05"


@pytest.mark.parametrize("backend", ["symgrad", "torch"])
def test_sign_at_a_rounding_jump_is_at_a_kink_not_a_mismatch(backend: str) -> None:
    report = symgrad.check(f"sign(logit({AT_HALF})) * x + x", x=[0.0, 1.0], backend=backend)
    assert report.status == "pass", report
    value = next(c for c in report.comparisons if c.name == "value")
    assert value.at_kink == 1 and value.mismatched == 0


def test_a_jump_everywhere_at_a_kink_checks_nothing_and_is_an_error() -> None:
    report = symgrad.check(f"sign(logit({AT_HALF}))", x=0.0, backend="torch")
    assert report.status == "error"
    assert report.reason.startswith("nothing compared: every defined element at a kink in value, x")


def test_a_wrong_value_beside_the_jump_still_fails() -> None:
    def wrong(x):  # right at the jump, 1% off at x = 1
        return torch.sign(torch.logit(0.9 * torch.sigmoid(x) + 0.05)) * x * 1.01 + x

    report = symgrad.check_function(wrong, f"sign(logit({AT_HALF})) * x + x", inputs={"x": [0.0, 1.0]})
    assert report.status == "fail"
    value = next(c for c in report.comparisons if c.name == "value")
    assert value.at_kink == 1 and value.mismatched == 1


def test_a_condition_at_the_jump_is_not_a_false_fail() -> None:
    expr = f"where({AT_HALF} > 0.5, 1.0 + x, x)"
    report = symgrad.check(expr, x=[0.0, 2.0], backend="torch")
    assert report.status == "pass", report

    def wrong(x):  # the branch swapped away from the jump
        return torch.where(0.9 * torch.sigmoid(x) + 0.05 > 0.5, x, 1.0 + x)

    assert symgrad.check_function(wrong, expr, inputs={"x": [0.0, 2.0]}).status == "fail"


def test_hardtanh_at_a_rounded_bound_is_at_a_kink_in_float32() -> None:
    # in float32 the argument rounds to exactly max_val = 1 (gradient 0); exactly it is just inside
    expr = f"-hardtanh((abs(1.0) + 0.5)**logit({AT_HALF}))"
    report = symgrad.check(expr, x=[0.0, 0.3], dtype="float32")
    assert report.status == "pass", report
    grad = next(c for c in report.comparisons if c.name == "x")
    assert grad.at_kink == 1

    def wrong(x):  # the bound inclusive: gradient 1 where x = max_val, and 2% off inside
        y = 1.5 ** torch.logit(0.9 * torch.sigmoid(x) + 0.05)
        return -torch.clamp(y, -1.0, 1.0) * 1.02

    assert symgrad.check_function(wrong, expr, inputs={"x": np.array([0.0, 0.3], dtype=np.float32)},
                                  dtype="float32").status == "fail"


@pytest.mark.parametrize("op", ["sign", "less", "greater_equal", "eq", "not_equal", "floor", "ceil", "round"])
def test_the_value_jumps_are_declared_in_the_op_table(op: str) -> None:
    entry = symgrad.ir.ops.OPS[op]
    assert entry.jumps and entry.kink_at is not None


@pytest.mark.parametrize("op", ["abs", "relu", "maximum", "hardtanh", "clip", "elu", "selu", "leaky_relu"])
def test_kinks_of_the_derivative_only_are_not_jumps(op: str) -> None:
    entry = symgrad.ir.ops.OPS[op]
    assert not entry.jumps and entry.kink_at is not None


# Found by the 10 000-expression fuzz run in float64: logit(AT_HALF) is 0 in floats and 4e-17 to sympy
@pytest.mark.parametrize("backend", ["symgrad", "torch"])
def test_ceil_across_a_rounding_jump_is_at_a_kink(backend: str) -> None:
    # ceil(0) = 0 in floats, ceil(4e-17) = 1 exactly: the value at x = 0 is at a kink, x = 2 is compared
    report = symgrad.check(f"ceil(logit({AT_HALF})) + x", x=[0.0, 2.0], backend=backend)
    assert report.status == "pass", report
    value = next(c for c in report.comparisons if c.name == "value")
    assert value.at_kink == 1 and value.mismatched == 0


def test_a_wrong_ceil_beside_the_rounding_jump_still_fails() -> None:
    def wrong(x):  # floor where ceil is meant: 1 lower at x = 2, where nothing is at a kink
        return torch.floor(torch.logit(0.9 * torch.sigmoid(x) + 0.05)) + x

    report = symgrad.check_function(wrong, f"ceil(logit({AT_HALF})) + x", inputs={"x": [0.0, 2.0]})
    assert report.status == "fail"
    value = next(c for c in report.comparisons if c.name == "value")
    assert value.at_kink == 1 and value.mismatched == 1


@pytest.mark.parametrize("op", ["elu", "selu", "leaky_relu"])
def test_an_activation_kink_that_rounding_decides_is_not_a_false_fail(op: str) -> None:
    # the argument is 0 in floats (the x <= 0 branch) and just positive exactly (the x > 0 branch)
    report = symgrad.check(f"{op}(logit({AT_HALF})) * x", x=[0.0, 2.0], backend="torch")
    assert report.status == "pass", report
    grad = next(c for c in report.comparisons if c.name == "x")
    assert grad.at_kink == 1 and grad.mismatched == 0


def test_a_wrong_activation_gradient_beside_the_kink_still_fails() -> None:
    class WrongElu(torch.autograd.Function):  # elu's forward, with the negative branch's slope 10% off
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return torch.nn.functional.elu(u)

        @staticmethod
        def backward(ctx, g):
            (u,) = ctx.saved_tensors
            return torch.where(u > 0, g, g * torch.exp(u) * 1.1)

    def wrong(x):
        return WrongElu.apply(torch.logit(0.9 * torch.sigmoid(x) + 0.05) - 2.0 * x) * x

    expr = f"elu(logit({AT_HALF}) - 2.0 * x) * x"
    assert symgrad.check(expr, x=[0.0, 2.0], backend="torch").status == "pass"
    report = symgrad.check_function(wrong, expr, inputs={"x": [0.0, 2.0]})
    assert report.status == "fail"
    grad = next(c for c in report.comparisons if c.name == "x")
    assert grad.at_kink == 1 and grad.mismatched == 1
