"""One case in, one Report out: the symbolic reference and a backend's tape, compared.

The CLI (``check``, ``grad``, ``plot``, ``fuzz``), the library API and the pytest
plugin are thin shells over :func:`run_case`: none of them runs an engine itself.
The report carries the arrays behind its comparisons (forward values, and per
derivative the formula, reference, tape and undefined mask) unless
``Options(arrays=False)``, which a suite sets to keep its memory flat.  An
exception anywhere inside a case becomes that case's ``error`` with a one-line
reason; it never stops the other cases.
"""

from __future__ import annotations

import contextvars
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any, NamedTuple, TypeVar

import numpy as np

from symgrad import backends
from symgrad.backends.base import Backend, BackendError, Unsupported, check_gradients
from symgrad.checking.cases import Case
from symgrad.checking.cases.schema import expect_sequence
from symgrad.checking.compare import Comparison, compare, tolerances
from symgrad.checking.forward import make_tangents, reference_jvp
from symgrad.checking.options import Options  # defined apart: the parent of a worker pool needs no sympy
from symgrad.checking.report import Gradient, Report
from symgrad.checking.verdicts import grad_output_source, note_grad_output, unchecked
from symgrad.ir.expr import Expr, numpy_eval, ops_used, variables
from symgrad.ir.limits import check_derivatives
from symgrad.ir.precision import is_narrow, numpy_dtype
from symgrad.symbolic import differentiate, prove_equal, round_literals, to_sympy


def run_case(case: Case, backend: str | Backend | None = None, *, options: Options | None = None,
             **overrides: Any) -> Report:
    """Check one case; ``backend`` and ``overrides`` (exact, rtol, atol, dtype) tweak ``options``.

    Args:
        case: a validated case (from :func:`~symgrad.checking.cases.files.load_cases` or
            :func:`~symgrad.api.make_case`).
        backend: the engine checked: a name or a :class:`~symgrad.backends.base.Backend`
            (default: ``options.backend``, ``"symgrad"``).
        options: the run's :class:`Options` (default ``Options()``).
        **overrides: fields of :class:`Options` to replace: ``exact``, ``rtol``, ``atol``,
            ``dtype``, ``limits``, ``arrays``.

    Returns:
        The case's :class:`~symgrad.checking.report.Report`; an exception inside the case
        becomes its ``error`` status, never a raise.
    """
    opts = options or Options()
    if backend is not None:
        overrides["backend"] = backend
    if overrides:
        opts = replace(opts, **overrides)
    name = opts.backend if isinstance(opts.backend, str) else opts.backend.name
    report = Report(name=case.name, status="pass", file=case.file, line=case.line, backend=name, expr=case.expr)
    start = time.perf_counter()
    skip = case.skip or case.skip_on.get(name)
    if skip:
        report.status, report.reason = "skip", skip
        return report
    try:
        _check_ad(case, opts, report)
    except NotJudged as exc:
        report.status, report.reason = "skip", str(exc)
    except Unsupported as exc:
        report.status, report.reason = "skip", f"backend {name!r} lacks {exc}"
    except (Exception, RecursionError, MemoryError) as exc:  # isolation: the run goes on
        report.status = "error"
        report.reason = f"{type(exc).__name__}: {_one_line(_message(exc))}"
        report.traceback = traceback.format_exc()
    report.duration = time.perf_counter() - start
    xfail = case.xfail or case.xfail_on.get(name)
    if xfail and report.status in ("pass", "fail"):
        report.status = "xpass" if report.status == "pass" else "xfail"
        report.reason = report.reason or xfail
    return report


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # an exception whose __str__ raises must not stop the run
        return f"<unprintable {type(exc).__name__}>"


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " ".join(lines)[:300] if lines else "(no message)"


def _check_ad(case: Case, opts: Options, report: Report) -> None:
    """Reverse mode (:func:`_check`), forward mode (:func:`_check_forward`) or both, as ``mode_ad`` says."""
    ad = opts.ad or case.mode_ad
    if ad == "reverse":
        _check(case, opts, report)
        return
    lacking = backends.get(opts.backend).capabilities.lacks_forward()
    if lacking:  # before either runs: a case that asks for forward mode never passes without it
        raise Unsupported(lacking)
    if ad == "both":
        _check(case, opts, report)
    _check_forward(case, opts, report, reverse_ran=ad == "both")


class NotJudged(Exception):
    """A case symgrad cannot judge reliably: skipped with the reason, never passed or failed."""


class _Setup(NamedTuple):
    """What reverse and forward mode both start from: the case (its dtype overridden), tolerances, inputs."""

    case: Case
    dtype: np.dtype
    rtol: float
    atol: float
    exact: bool
    inputs: dict[str, np.ndarray]
    ir: Expr
    backend: Backend


def _setup(case: Case, opts: Options) -> _Setup:
    if opts.dtype and opts.dtype != case.dtype:
        case = replace(case, dtype=opts.dtype)
    rtol, atol = tolerances(case.dtype, opts.rtol if opts.rtol is not None else case.rtol,
                            opts.atol if opts.atol is not None else case.atol)
    exact = opts.exact if opts.exact is not None else case.reference == "exact"
    assert case.ir is not None, "case was not validated"
    return _Setup(case, numpy_dtype(case.dtype), rtol, atol, exact, case.make_inputs(opts.limits), case.ir,
                  backends.get(opts.backend))


def _check(case: Case, opts: Options, report: Report) -> None:
    case, dtype, rtol, atol, exact, inputs, ir, backend = _setup(case, opts)
    if case.order > 1 and is_narrow(case.dtype):
        # measured on the shipped suite: a correct torch is 2 to 346 ulp off at orders 2-3 in 16 bits,
        # beyond what the sampled allowance sees; a skip says so, where a FAIL would be false
        raise NotJudged(f"order {case.order} in {case.dtype} is not checked: symgrad's 16-bit tolerances "
                        "cover order 1 (rounding through a second backward pass is not bounded)")
    device = opts.device or case.device
    wrt = case.wrt_names
    check_derivatives([int(np.size(inputs[w])) for w in wrt], case.order, opts.limits)  # before building any
    lacking = backend.capabilities.lacks(ops_used(ir), case.order, case.dtype, device)
    if lacking:  # declared by the backend: skipped before the engine runs, with the reason
        raise Unsupported(lacking)
    # the forward shape decides the default grad_output: inferred by the case, else evaluated
    shape = case.output_shape if case.output_shape is not None else np.shape(numpy_eval(ir, _numpy_computable(inputs)))
    grad_output = case.make_grad_output(shape)
    # order k checks every order 1..k: a wrong first derivative can have a right second one
    # the default grad_output is ones: the reference needs no weights then (one pass less per derivative)
    ones = case.grad_output is None or bool(np.all(grad_output == 1))
    sym_g = None if case.grad_output is None else grad_output
    levels: dict[int, tuple[Any, dict]] = {}
    value: Any = None
    # literals rounded to the case's dtype, as the reference and the kink analysis hold them: an engine
    # folds sin(pi) from float32's pi in a float32 case, not from float64's
    engine_ir = round_literals(ir, dtype)

    def engine(j: int) -> tuple[Any, dict]:
        with backend.on_device(device):  # no such device here: Unsupported, a skip with the reason
            forward, grads = backend.gradients(engine_ir, inputs, wrt, j, grad_output)
        check_gradients(backend, forward, grads, inputs)
        return forward, grads

    def reference(j: int) -> Any:
        return differentiate(ir, inputs, wrt, order=j, grad_output=sym_g, mode=case.mode, exact=exact,
                             dtype=dtype, limits=opts.limits)

    together = case.order == 1 and sum(np.size(a) for a in inputs.values()) >= PARALLEL_SIZE
    for j in range(1, case.order + 1):
        (forward, grads), sym_j = _both(partial(engine, j), partial(reference, j), together)
        if j == 1:
            value = forward
        levels[j] = (sym_j, grads)
    sym = levels[1][0]
    report.mode = sym.mode
    g_source = grad_output_source(case.grad_output, case.seed)

    def check(name: str, actual: Any, expected: Any, undefined: Any = None, formula: str = "",
              nan_is_undefined: bool = True, at_kink: Any = None, slack: Any = None,
              bound: Any = None) -> Comparison:
        kw = dict(rtol=rtol, atol=atol, dtype=case.dtype, undefined=undefined, formula=formula,
                  nan_is_undefined=nan_is_undefined, at_kink=at_kink)
        c = compare(name, actual, expected, slack=slack, **kw)
        wider = bound() if bound is not None and not c.passed else None
        if wider is not None:  # beyond the sampled slack: judged again within the intermediates' rounding
            c = compare(name, actual, expected, slack=wider if slack is None else np.maximum(slack, wider), **kw)
        if not ones and name != "value" and not name.startswith("value "):
            note_grad_output(c, grad_output, g_source)
        report.comparisons.append(c)
        return c

    check("value", value, sym.value, None, "forward", slack=sym.value_slack,  # undefined where nan
          at_kink=sym.value_at_kink, bound=sym.value_bound)
    if opts.arrays:
        report.value, report.reference_value = np.asarray(value), np.asarray(sym.value)
    used = set(variables(ir))
    for sym_j, grads in levels.values():
        for seq, d in sym_j.derivatives.items():
            label = ",".join(seq)
            g = grads.get(seq)
            if opts.arrays:
                undefined = np.asarray(d.undefined, dtype=bool) | np.isnan(np.asarray(d.value, dtype=float))
                report.gradients[seq] = Gradient(seq, d.formula, np.asarray(d.value), g, undefined)
            if g is None:
                if seq[0] in used and np.any(d.value != 0):
                    c = check(label, np.full(np.shape(d.value), np.nan), d.value, d.undefined, d.formula)
                    c.note = "the backend returned no gradient (None) for an input on the graph"
                    continue
                g = np.zeros(np.shape(d.value), dtype=dtype)
            check(label, g, d.value, d.undefined, d.formula, at_kink=d.at_kink, slack=d.slack, bound=d.bound)
    if case.value is not None:
        check("value (expected)", value, _broadcast(_expected(case.value_ir, case.value, inputs, dtype),
                                                    np.shape(value)),
              np.isnan(np.asarray(sym.value, dtype=float)), nan_is_undefined=False)
    for name, raw in case.expect.items():
        sym_j, grads = levels[len(expect_sequence(name))]
        _check_expect(case, name, raw, inputs, grads, sym_j, check, grad_output)
    if any(not c.passed for c in report.comparisons):
        report.status = "fail"
    reason = unchecked(report.comparisons, ir, inputs, sym.value)
    if reason and report.status == "fail":  # a failure elsewhere stays a failure, with the reason
        report.reason = report.reason or reason
    elif reason:  # nothing compared is never a pass
        report.status, report.reason = "error", reason


# inputs of this many elements in all (first order): the reference runs beside the engine. Below it,
# starting a thread costs more than the overlap saves (tests/benchmarks/check_bench.py measures both)
PARALLEL_SIZE = 1 << 15

_A = TypeVar("_A")
_B = TypeVar("_B")


def _both(main: Callable[[], _A], side: Callable[[], _B], together: bool) -> tuple[_A, _B]:
    """``main()`` then ``side()``; ``together``, ``side()`` runs on a second thread meanwhile.

    The engine stays on the calling thread (torch's grad mode and JAX's tracing are per thread); the
    reference is numpy, which lets go of the GIL in its loops. Neither reads the other's results. An
    exception is raised as the sequential order would: ``main``'s first, after ``side`` has ended.
    """
    if not together:
        first = main()
        return first, side()
    out: list[tuple[bool, Any]] = []
    context = contextvars.copy_context()  # numpy's error state and the caller's other context

    def run() -> None:
        try:
            out.append((True, context.run(side)))
        except BaseException as exc:  # re-raised on the calling thread
            out.append((False, exc))

    thread = threading.Thread(target=run, name="symgrad-reference", daemon=True)
    thread.start()
    try:
        first = main()
    finally:
        thread.join()
    ok, second = out[0]
    if not ok:
        raise second
    return first, second


def _numpy_computable(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inputs, float16 and bfloat16 widened to float32: numpy's linalg has no 16-bit loops."""
    return {n: a.astype(np.float32) if is_narrow(a.dtype) else a for n, a in inputs.items()}


def _check_expect(case: Case, name: str, raw: Any, inputs: dict[str, np.ndarray], grads: dict, sym: Any,
                  check: Any, grad_output: np.ndarray) -> None:
    """``expect`` is what ``.grad`` must hold: compared with the tape, and proved against sympy."""
    dtype = numpy_dtype(case.dtype)
    seq = expect_sequence(name)  # "x" is .grad of x; "x,y" is d/dy of sum(d/dx), and so on
    g = grads.get(seq)
    g = np.zeros(inputs[seq[-1]].shape, dtype=dtype) if g is None else g
    ir = case.expect_ir.get(name)
    expected = _broadcast(_expected(ir, raw, inputs, dtype), np.shape(g))
    d = sym.derivatives.get(seq)
    # compared where sympy's derivative is defined; a nan expected there is a mismatch
    c = check(f"expect {name}", g, expected, None if d is None else d.undefined,
              str(raw) if ir is not None else "literal", nan_is_undefined=False,
              at_kink=None if d is None else d.at_kink, slack=None if d is None else d.slack)
    if case.order > 1 and len(seq) == 1:
        c.note = _join(c.note, "first-order gradient (.grad after backward)")
    if ir is None or d is None:
        return
    if d.sympy_expr is None:
        if c.passed:
            c.note = _join(c.note, "equal at the inputs only (expanded mode: not proved)")
        return
    full = np.broadcast_shapes(*(a.shape for a in inputs.values()))
    if not np.all(grad_output == 1) or any(inputs[n].shape != full for n in seq):
        c.note = _join(c.note, "checked at the inputs (grad_output or broadcasting scale the formula)")
        return
    proved = prove_equal(to_sympy(ir), d.sympy_expr)
    note = {True: "proved equal to sympy's derivative", False: "proved DIFFERENT from sympy's derivative",
            None: "equal at the inputs only (not proved)"}[proved]
    if proved is False and c.passed:
        note += " (equal at these inputs)"
    c.note = _join(c.note, note)


def _broadcast(expected: np.ndarray, shape: tuple) -> np.ndarray:
    """``expected`` broadcast to ``shape``; as it is when it does not broadcast (compare() then
    fails it with a note naming both shapes, rather than the case erroring)."""
    try:
        return np.broadcast_to(expected, shape)
    except ValueError:
        return expected


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _expected(ir: Expr | None, raw: Any, inputs: dict[str, np.ndarray], dtype: np.dtype) -> np.ndarray:
    if ir is not None:
        return numpy_eval(ir, _numpy_computable(inputs)).astype(dtype)
    return np.asarray(raw, dtype=dtype)


def _check_forward(case: Case, opts: Options, report: Report, *, reverse_ran: bool) -> None:
    """Forward mode for one case: appends the ``jvp`` comparison (and ``value`` when reverse mode did not run)."""
    case, dtype, rtol, atol, exact, inputs, ir, backend = _setup(case, opts)
    wrt = case.wrt_names
    lacking = (None if reverse_ran else
               backend.capabilities.lacks(ops_used(ir), 1, case.dtype))
    lacking = lacking or backend.capabilities.lacks_forward()
    if lacking:
        raise Unsupported(lacking)
    tangents = make_tangents(case, inputs, opts.limits)
    value, jv = backend.jvp(round_literals(ir, dtype), inputs, wrt, tangents)
    ref = reference_jvp(ir, inputs, wrt, tangents, mode=case.mode, exact=exact, dtype=dtype, limits=opts.limits)
    if not report.mode:
        report.mode = ref.mode

    def check(name: str, actual: Any, expected: Any, bound: Any = None, **kw: Any) -> Comparison:
        c = compare(name, actual, expected, rtol=rtol, atol=atol, dtype=case.dtype, **kw)
        wider = bound() if bound is not None and not c.passed else None
        if wider is not None:  # beyond the sampled slack: judged again within the intermediates' rounding
            slack = kw.pop("slack", None)
            c = compare(name, actual, expected, rtol=rtol, atol=atol, dtype=case.dtype, **kw,
                        slack=wider if slack is None else np.maximum(slack, wider))
        report.comparisons.append(c)
        return c

    new: list[Comparison] = []
    if not reverse_ran:
        new.append(check("value", value, ref.value, undefined=np.isnan(np.asarray(ref.value, dtype=float)),
                         formula="forward", slack=ref.value_slack, bound=ref.value_bound))
        if opts.arrays:
            report.value, report.reference_value = np.asarray(value), np.asarray(ref.value)
    jvp_np = np.asarray(jv)
    if jvp_np.dtype.kind == "f" and jvp_np.dtype != dtype:
        raise BackendError(f"backend {backend.name!r} returned a {jvp_np.dtype} JVP for "
                                         f"{case.dtype} inputs")
    c = check("jvp", jvp_np, ref.jvp, undefined=ref.undefined, formula=ref.formula, at_kink=ref.at_kink,
              slack=ref.slack, bound=ref.bound)
    c.note = "; ".join(p for p in (c.note, f"forward mode: J t with tangent {case.tangent_source()}") if p)
    skipped = [what for what, on in (("expect", bool(case.expect) and not reverse_ran),
                                     (f"order {case.order}", case.order > 1)) if on]
    if skipped and not reverse_ran:
        c.note += f"; {' and '.join(skipped)} not checked (reverse mode only)"
    elif case.order > 1:
        c.note += "; order 1 (higher orders are checked by reverse mode)"
    new.append(c)
    if not reverse_ran and case.value is not None:
        new.append(check("value (expected)", value,
                         _broadcast(_expected(case.value_ir, case.value, inputs, dtype), np.shape(value)),
                         undefined=np.isnan(np.asarray(ref.value, dtype=float)), nan_is_undefined=False))
    if any(not x.passed for x in new):
        report.status = "fail"
        return
    reason = unchecked(new, ir, inputs, ref.value)
    if reason and report.status == "pass":
        report.status, report.reason = "error", reason
