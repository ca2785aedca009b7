"""The fuzzer (issue 7): hypothesis-generated expressions, shrunk failures saved as case files."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

pytest.importorskip("hypothesis")

from symgrad import ops
from symgrad.backends import register
from symgrad.backends.symgrad_tape import SymgradBackend
from symgrad.checking.cases import load_file
from symgrad.checking.runner import run_case
from symgrad.cli import fuzz as fuzz_command
from symgrad.fuzzing import Example, fuzz, resolve_ops, well_conditioned
from symgrad.ir.expr import Call, Const, Var
from symgrad.ir.parse import parse

BUGGY = "test-sin-off-by-1pc"


class SinOffByOnePercent(SymgradBackend):
    """symgrad's tape with a planted bug: d/dx sin(x) = 1.01 cos(x) (not in the global op table)."""

    name = BUGGY
    _sin = dataclasses.replace(ops.sin, vjps=(lambda g, ans, x: 1.01 * g * ops.cos(x),))

    def apply(self, op, args, params):
        return super().apply(self._sin if op is ops.sin else op, args, params)


register(BUGGY, SinOffByOnePercent())


def _nodes(expr: str) -> list:
    return list(parse(expr).walk())


def _op_names(expr: str) -> set[str]:
    """The ops of an expression; a negative literal (``-2.0``, neg of a constant) is not an op use."""
    return {n.op.name for n in _nodes(expr)
            if isinstance(n, Call) and not (n.op is ops.neg and isinstance(n.args[0], Const))}


# ---------------------------------------------------------------- clean on our own tape


@pytest.mark.slow
def test_bounded_fuzz_is_clean_on_symgrad(tmp_path):
    result = fuzz(count=250, seed=0, max_depth=4, out_dir=tmp_path)
    assert [f.report.table() for f in result.failures] == []
    assert result.failed == 0 and result.errors == 0, result.summary()
    assert result.checked == 250
    assert result.passed + result.undefined + result.skipped == result.checked
    assert not list(tmp_path.iterdir())  # nothing to save
    # the mix is varied: many different expressions, elementwise and not
    exprs = {e for e, _ in result.history}
    # (hypothesis also mutates the inputs of an expression; how often depends on its version)
    assert len(exprs) >= 50
    used = set().union(*(_op_names(e) for e in exprs))
    assert len(used) >= 25, used
    assert used & {"sum", "mean", "prod", "max", "min", "logsumexp"} and used & {"matmul", "transpose"}


@pytest.mark.slow
def test_same_seed_same_expressions_same_verdicts(tmp_path):
    a = fuzz(count=30, seed=3, max_depth=3, out_dir=tmp_path)
    b = fuzz(count=30, seed=3, max_depth=3, out_dir=tmp_path)
    c = fuzz(count=30, seed=4, max_depth=3, out_dir=tmp_path)
    assert a.history == b.history and len(a.history) == 30
    assert (a.passed, a.undefined, a.failed, a.errors) == (b.passed, b.undefined, b.failed, b.errors)
    assert a.history != c.history


# ---------------------------------------------------------------- it finds real bugs


def test_planted_sin_bug_is_found_shrunk_and_saved(tmp_path):
    result = fuzz(count=300, seed=0, max_depth=4, backend=BUGGY, out_dir=tmp_path, max_failures=1)
    assert not result
    assert result.failed >= 1
    (failure,) = result.failures
    nodes = _nodes(failure.expr)
    assert "sin" in _op_names(failure.expr)
    assert len(nodes) <= 3, failure.expr  # e.g. sin(x)
    assert failure.report.status == "fail"
    # the saved file is a valid version-1 case file that reproduces the failure on that backend
    assert failure.path is not None and failure.path.parent == tmp_path
    data = yaml.safe_load(failure.path.read_text())
    assert data["version"] == 1
    (raw,) = data["cases"]
    assert raw["name"].startswith("fuzz-") and raw["expr"] == failure.expr
    assert all(isinstance(v, (float, list)) for v in raw["inputs"].values())
    cases, errors = load_file(failure.path)
    assert errors == [] and len(cases) == 1
    assert run_case(cases[0], backend=BUGGY).status == "fail"
    assert run_case(cases[0], backend="symgrad").status == "pass"  # the bug is the backend's
    assert failure.reproduced is True


@pytest.mark.slow
def test_same_fuzz_on_the_correct_backend_finds_nothing(tmp_path):
    result = fuzz(count=60, seed=0, max_depth=4, backend="symgrad", out_dir=tmp_path, max_failures=1)
    assert result and result.failures == [] and result.checked == 60


@pytest.mark.slow
def test_planted_bug_found_with_ops_restricted(tmp_path):
    result = fuzz(count=50, seed=1, max_depth=3, ops="sin,mul,add", backend=BUGGY, out_dir=tmp_path,
                  max_failures=1)
    (failure,) = result.failures
    assert failure.expr in ("sin(x)", "sin(y)", "sin(z)")


# ---------------------------------------------------------------- options


def test_ops_restricts_the_mix(tmp_path):
    result = fuzz(count=40, seed=2, max_depth=4, ops="sin,cos,add,arctan", out_dir=tmp_path)
    assert result.checked == 40 and result
    used = set().union(*(_op_names(e) for e, _ in result.history))
    assert used <= {"sin", "cos", "add", "atan"}
    assert len(used) >= 3


@pytest.mark.slow
def test_domain_ops_stay_in_their_domain(tmp_path):
    result = fuzz(count=60, seed=5, max_depth=3, ops="log,sqrt,asin,acos,acosh,atanh,log1p,div,prod,pow",
                  out_dir=tmp_path)
    assert result and result.checked == 60
    assert result.undefined == 0  # wrappers keep every argument inside its op's domain


@pytest.mark.slow
def test_shapes_and_non_elementwise_ops(tmp_path):
    result = fuzz(count=40, seed=6, max_depth=3, ops="matmul,transpose,sum,max,mul",
                  shapes=[(2, 3)], out_dir=tmp_path)
    assert result and result.checked == 40
    assert any("@" in e for e, _ in result.history)


def test_well_conditioned_rejects_points_outside_the_domain():
    x = Var("x")
    assert well_conditioned(Example(ops.log(x), {"x": np.array([1.0, 2.0])}, (2,)))
    assert not well_conditioned(Example(ops.log(x), {"x": np.array([1.0, -2.0])}, (2,)))
    assert not well_conditioned(Example(ops.atan2(x, x), {"x": np.array(0.0)}, ()))
    assert not well_conditioned(Example(ops.exp(ops.exp(x)), {"x": np.array(10.0)}, ()))
    assert well_conditioned(Example(ops.pow(x, Const(2.0)), {"x": np.array(-3.0)}, ()))
    assert not well_conditioned(Example(ops.pow(x, Const(0.5)), {"x": np.array(-3.0)}, ()))


def test_resolve_ops():
    assert [op.name for op in resolve_ops("arcsin, exp,sin")] == ["asin", "exp", "sin"]
    assert len(resolve_ops(None)) == len(ops.public_ops())
    with pytest.raises(ValueError, match="unknown op nope"):
        resolve_ops("sin,nope")


# ---------------------------------------------------------------- the command


def test_cli_clean_run_exits_0(tmp_path):
    out = tmp_path / "regressions"
    res = CliRunner().invoke(fuzz_command, ["--count", "20", "--seed", "1", "--max-depth", "3",
                                            "--ops", "sin,exp,mul", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "20 checked: " in res.output and "0 failed" in res.output
    assert not out.exists()


def test_cli_backend_bug_exits_1_and_saves_the_case(tmp_path):
    out = tmp_path / "regressions"
    res = CliRunner().invoke(fuzz_command, ["--count", "50", "--seed", "1", "--ops", "sin,add,mul",
                                            "--backend", BUGGY, "--out", str(out), "--max-failures", "1"])
    assert res.exit_code == 1, res.output
    assert "FAIL fuzz-" in res.output and "saved: " in res.output
    files = list(out.glob("fuzz-*.yaml"))
    assert len(files) == 1
    (case,), errors = load_file(files[0])
    assert not errors and "sin" in case.expr
    assert run_case(case, backend=BUGGY).status == "fail"


def test_cli_usage_errors_exit_2(tmp_path):
    res = CliRunner().invoke(fuzz_command, ["--count", "5", "--ops", "sin,nope", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "nope" in res.output
    res = CliRunner().invoke(fuzz_command, ["--count", "5", "--backend", "no-such-backend", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "no-such-backend" in res.output
    res = CliRunner().invoke(fuzz_command, ["--count", "5", "--shape", "2,x,y", "--out", str(tmp_path)])
    assert res.exit_code == 2


def test_cli_shapes_and_dtype(tmp_path):
    res = CliRunner().invoke(fuzz_command, ["--count", "10", "--shape", "4", "--shape", "scalar", "--dtype",
                                            "float32", "--ops", "tanh,mul,sum", "--out", str(tmp_path), "-v"])
    assert res.exit_code == 0, res.output
    assert res.output.count("PASS") + res.output.count("UNDEFINED") == 10


def test_a_check_that_times_out_is_listed_not_failed(tmp_path):
    result = fuzz(count=5, seed=0, max_depth=2, ops="sin,mul", out_dir=tmp_path, timeout=1e-6)
    assert result and result.failures == []
    assert result.timeouts == 10 and result.checked == 0 and "timed out" in result.stopped
    assert len(result.slow) == result.timeouts and all("expr" in d for d in result.slow)


def test_cli_read_only_out_folder_prints_the_failure_then_says_it_was_not_saved(tmp_path, monkeypatch):
    # hardening round 2: a PermissionError traceback hid the shrunk failure (simulated: root can write anywhere)
    from symgrad import fuzzing

    def read_only(data, out_dir):
        raise PermissionError(13, "Permission denied", str(out_dir))

    monkeypatch.setattr(fuzzing, "_save", read_only)
    out = tmp_path / "read-only"
    res = CliRunner().invoke(fuzz_command, ["--count", "50", "--seed", "1", "--ops", "sin,add,mul",
                                            "--backend", BUGGY, "--out", str(out), "--max-failures", "1"])
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "Traceback" not in res.output and "FAIL fuzz-" in res.output and "\n  saved: " not in res.output
    assert f"not saved: could not write the case to {out}: Permission denied" in res.output
    assert res.output.index("FAIL fuzz-") < res.output.index("not saved:")


# ---------------------------------------------------------------- issue 18: a fuzzer that keeps hunting


class CosSecondOrderBug(SymgradBackend):
    """d/dx sin(x) right, its own derivative 0.01 off: only a second derivative of sin shows it."""

    name = "test-sin-second-order-bug"
    # cos(x) + 0.01 (x - detach(x)): cos(x) in value, -sin(x) + 0.01 when differentiated again
    _sin = dataclasses.replace(ops.sin, vjps=(
        lambda g, ans, x: g * (ops.cos(x) + 0.01 * (x - ops.detach(x))),))

    def apply(self, op, args, params):
        return super().apply(self._sin if op is ops.sin else op, args, params)


class SinAndExpBugs(SinOffByOnePercent):
    """Two unrelated planted bugs: sin's derivative and exp's, each 1% off."""

    name = "test-sin-and-exp-bugs"
    _exp = dataclasses.replace(ops.exp, vjps=(lambda g, ans, x: 1.01 * g * ans,))

    def apply(self, op, args, params):
        return super().apply(self._exp if op is ops.exp else op, args, params)


def _nudged(backend, value, x, by):
    """``value`` with its gradient w.r.t. ``x`` off by ``by`` (elementwise), the value itself unchanged."""
    base = super(type(backend), backend)
    drift = base.apply(ops.sub, [x, base.apply(ops.detach, [x], {})], {})  # 0, with derivative 1
    return base.apply(ops.add, [value, base.apply(ops.mul, [drift, by], {})], {})


class IntPowBug(SymgradBackend):
    """An engine that keeps integer literals as ints and differentiates x**k wrongly for an int k >= 2 only."""

    name = "test-int-pow-bug"

    def constant(self, value, leaves):
        return value  # 2 stays an int, 2.0 a float

    def apply(self, op, args, params):
        ints = [isinstance(a, int) for a in args]
        args = [float(a) if i else a for a, i in zip(args, ints)]
        value = super().apply(op, args, params)
        if op is ops.pow and ints[1] and args[1] >= 2:
            return _nudged(self, value, args[0], 0.01)
        return value


class SinWrongFarOut(SymgradBackend):
    """sin's derivative wrong only where |x| > 10: outside the default input range [-3, 3]."""

    name = "test-sin-wrong-far-out"

    def apply(self, op, args, params):
        value = super().apply(op, args, params)
        if op is ops.sin:
            return _nudged(self, value, args[0], 0.01 * (np.abs(self.to_numpy(args[0])) > 10))
        return value


for _cls in (CosSecondOrderBug, SinAndExpBugs, IntPowBug, SinWrongFarOut):
    register(_cls.name, _cls())


def test_order_2_finds_a_bug_only_second_derivatives_show(tmp_path):
    clean = fuzz(count=25, seed=3, max_depth=2, ops="sin,mul,add", backend=CosSecondOrderBug.name, out_dir=None)
    assert clean and clean.checked == 25  # order 1: sin's derivative is right
    found = fuzz(count=25, seed=3, max_depth=2, ops="sin,mul,add", backend=CosSecondOrderBug.name, order=2,
                 out_dir=tmp_path, max_failures=1)
    (failure,) = found.failures
    assert failure.cause == "fail: sin" and failure.data["order"] == 2
    (case,), _ = load_file(failure.path)
    assert case.order == 2 and run_case(case, backend=CosSecondOrderBug.name).status == "fail"
    assert run_case(case, backend="symgrad").status == "pass"
    with pytest.raises(ValueError, match="order"):
        fuzz(count=1, order=4, out_dir=None)


def test_exponents_are_int_and_float_literals():
    # which example first shows each kind depends on hypothesis's generation: look at enough of them
    result = fuzz(count=80, seed=0, max_depth=2, ops="pow,add", out_dir=None)
    exprs = " ".join(e for e, _ in result.history)
    assert re.search(r"\*\*\(?-?[0-4](?![.\d])", exprs) and re.search(r"\*\*\(?-?[0-4]\.0", exprs), exprs


def test_an_int_exponent_bug_is_found():
    result = fuzz(count=60, seed=0, max_depth=2, ops="pow", backend=IntPowBug.name, out_dir=None, max_failures=1)
    (failure,) = result.failures
    assert re.search(r"\*\*[2-4](?![.\d])", failure.expr), failure.expr  # an int literal exponent


@pytest.mark.slow
def test_failures_are_grouped_by_root_cause_and_max_failures_counts_causes():
    one = fuzz(count=120, seed=0, max_depth=3, ops="sin,exp,add,mul", backend=BUGGY, out_dir=None, max_failures=3)
    causes = [f.cause for f in one.failures]
    assert len(set(causes)) == len(causes) and all("sin" in c for c in causes), causes
    # the bug was re-found more often than it has causes: grouped (repeats), and not counted by max_failures
    assert one.failed == sum(f.repeats for f in one.failures) > len(causes)
    # two bugs: exp's shrinks first (the table's order), and is one cause however often it is re-found
    two = fuzz(count=120, seed=0, max_depth=3, ops="sin,exp,add,mul", backend=SinAndExpBugs.name, out_dir=None,
               max_failures=4)
    causes = [f.cause for f in two.failures]
    assert "fail: exp" in causes and len(set(causes)) == len(causes) and two.failed > len(causes)


@pytest.mark.slow
def test_known_ops_step_past_a_known_bug_and_still_find_another():
    base = fuzz(count=60, seed=0, max_depth=3, ops="sin,add,mul", backend=BUGGY, out_dir=None, max_failures=100)
    past = fuzz(count=60, seed=0, max_depth=3, ops="sin,add,mul", backend=BUGGY, out_dir=None, max_failures=100,
                known_ops="sin")
    # the same examples: every failure that shrank to sin alone is now known, the others still fail
    assert past.known >= 1 and past.failed + past.known == base.failed and past.checked == base.checked == 60
    assert all(f.cause != "fail: sin" for f in past.failures)
    other = fuzz(count=60, seed=0, max_depth=3, ops="sin,add,mul", backend=BUGGY, out_dir=None, known_ops="cos,add")
    assert not other and other.known == 0 and all("sin" in f.cause for f in other.failures)  # not that bug
    # a shrunk failure that uses an op beside the known ones is not stepped past
    two = fuzz(count=120, seed=0, max_depth=3, ops="sin,exp,add,mul", backend=SinAndExpBugs.name, out_dir=None,
               known_ops=["exp"], max_failures=2)
    assert two.known >= 1 and not two and all(f.cause != "fail: exp" for f in two.failures)


@pytest.mark.slow
def test_exclude_ops_never_generates_them_not_even_in_guards():
    result = fuzz(count=40, seed=0, max_depth=3, ops="log,sin,add", backend=BUGGY, out_dir=None,
                  exclude_ops="sin,exp,softplus")
    assert result and result.checked == 40
    used = set().union(*(_op_names(e) for e, _ in result.history))
    assert not used & {"sin", "exp", "softplus"} and "log" in used
    assert not fuzz(count=40, seed=0, max_depth=3, ops="log,sin,add", backend=BUGGY, out_dir=None, max_failures=1)
    # exp's bug hides sin's (it shrinks first, as the table orders ops): excluding exp finds sin's
    two = fuzz(count=60, seed=0, max_depth=3, ops="sin,exp,add,mul", backend=SinAndExpBugs.name, out_dir=None,
               exclude_ops="exp", max_failures=1)
    assert [f.cause for f in two.failures] and "sin" in two.failures[0].cause


def test_range_draws_inputs_there_and_reaches_a_bug_outside_the_default():
    from hypothesis import given, settings

    from symgrad.fuzzing import expressions

    seen = []

    @settings(max_examples=30, database=None, deadline=None)
    @given(expressions("sin,add", max_depth=2, value_range=(20.0, 30.0)))
    def draw(example):
        seen.extend(float(v) for a in example.inputs.values() for v in np.ravel(a))

    draw()
    assert seen and all(20.0 <= v <= 30.0 for v in seen)
    assert fuzz(count=30, seed=0, max_depth=2, ops="sin,add", backend=SinWrongFarOut.name, out_dir=None)
    far = fuzz(count=30, seed=0, max_depth=2, ops="sin,add", backend=SinWrongFarOut.name, out_dir=None,
               value_range=(20.0, 30.0), max_failures=1)
    assert [f.cause for f in far.failures] and "sin" in far.failures[0].cause
    with pytest.raises(ValueError, match="LO < HI"):
        fuzz(count=1, value_range=(3.0, -3.0), out_dir=None)


@pytest.mark.slow
def test_cli_hunting_options(tmp_path):
    out = tmp_path / "never"
    res = CliRunner().invoke(fuzz_command, ["--count", "40", "--seed", "0", "--ops", "sin,add,mul", "--backend", BUGGY,
                                            "--no-save", "--out", str(out), "--max-failures", "1"])
    assert res.exit_code == 1, res.output
    assert "inputs: {" in res.output and "cause: fail: sin" in res.output and not out.exists()
    res = CliRunner().invoke(fuzz_command, ["--count", "30", "--seed", "0", "--ops", "sin,add,mul", "--backend", BUGGY,
                                            "--no-save", "--known", "sin"])
    assert res.exit_code == 0 and "known bugs" in res.output, res.output
    res = CliRunner().invoke(fuzz_command, ["--count", "30", "--seed", "3", "--max-depth", "2", "--ops", "sin,mul,add",
                                            "--backend", CosSecondOrderBug.name, "--no-save", "--order", "2",
                                            "--exclude-ops", "mul", "--range", "-1,1", "-v"])
    checked = [ln.split(None, 1)[1] for ln in res.output.splitlines() if ln.startswith(("PASS ", "FAIL "))]
    assert res.exit_code == 1 and checked and not any("*" in e for e in checked), res.output  # no mul
    for bad in (["--range", "3,1"], ["--range", "x"], ["--known", "nope"], ["--exclude-ops", "nope"], ["--order", "4"]):
        res = CliRunner().invoke(fuzz_command, ["--count", "1", "--no-save", *bad])
        assert res.exit_code == 2, (bad, res.output)


@pytest.mark.slow
def test_cli_backend_module_attr_on_fuzz_grad_and_plot(tmp_path):
    from symgrad.cli import main

    spec = "test_fuzz:SinOffByOnePercent"
    res = CliRunner().invoke(fuzz_command, ["--count", "30", "--ops", "sin,add", "--backend", spec, "--no-save",
                                            "--max-failures", "1"])
    assert res.exit_code == 1 and "cause: fail: sin" in res.output, res.output
    assert CliRunner().invoke(main, ["grad", "sin(x)", "--at", "x=0.5", "--backend", spec]).exit_code == 1
    assert CliRunner().invoke(main, ["grad", "sin(x)", "--at", "x=0.5"]).exit_code == 0
    pytest.importorskip("matplotlib")
    args = ["plot", "sin(x)", "--wrt", "x", "--range", "0", "1", "--points", "5", "-o", str(tmp_path / "p.png")]
    assert CliRunner().invoke(main, [*args, "--backend", spec]).exit_code == 1
    assert CliRunner().invoke(main, args).exit_code == 0


class NoExpNoSoftplus(SymgradBackend):
    """An engine declaring every op but exp and softplus (and abs): the guards must do without them."""

    name = "test-no-exp-softplus-abs"
    capabilities = dataclasses.replace(
        SymgradBackend.capabilities,
        ops=frozenset(op for op in ops.engine_ops() if op.name not in ("exp", "softplus", "abs")))


def test_domain_guards_stay_within_the_backends_declared_ops():
    result = fuzz(count=30, seed=0, max_depth=2, ops="log,sqrt,add", backend=NoExpNoSoftplus(), out_dir=None)
    assert result and result.checked == 30 and result.skipped == 0
    used = set().union(*(_op_names(e) for e, _ in result.history))
    assert "log" in used and not used & {"exp", "softplus", "abs"}, used
    # the twin: with every op declared, the guards do use them
    full = fuzz(count=30, seed=0, max_depth=2, ops="log,sqrt,add", out_dir=None)
    assert set().union(*(_op_names(e) for e, _ in full.history)) & {"exp", "softplus", "abs"}
