"""symengine (C++, on PyPI) measured as an accelerator of the reference: differentiation and lambdify.

    PYTHONPATH=$PWD python tests/benchmarks/symengine_bench.py [--suite] [--expanded] [PATH ...]

Two measurements, both in one process, sympy and symengine on the same expressions:

* ``--expanded`` (the default with ``--suite``): the expanded-mode benchmarks of the language and
  expanded issues (layer norm (8, 64), softmax cross-entropy (32, 10), ``logsumexp(z) - sum(y*z)`` and
  ``sum(tanh(A @ B))`` at a few sizes).  sympy: symgrad's own expanded plan (its reverse sweep through
  let-bound intermediates) and its lambdify.  symengine: the same forward, intermediates inlined,
  ``diff`` by every input symbol and ``Lambdify(cse=True)``.
* ``--suite``: every shipped case (float64, its own mode, wrt and order) as the symgrad reference
  compiles it.  For each compilation: symengine's ``Lambdify`` of the very expressions sympy compiled
  (lambdify alone), and, for elementwise plans, symengine's ``diff`` of the forward by the plan's
  sequences (differentiation and lambdify).  Values are compared with the reference's at the case's
  inputs: *bitwise* (to the last ulp), *within* the float64 tolerance of ``assert_close`` (rtol = atol
  = 1e-7), or *differ*; an expression symengine cannot convert exactly (a symgrad function class with
  PyTorch's convention becomes an opaque ``PyFunction`` whose derivative symengine takes to be 0, a
  silent false zero) is *not convertible*.

Ratios are sympy / symengine: above 1, symengine is the faster.  (Not a test module.)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

os.environ["SYMGRAD_CACHE"] = "0"  # measure compiling, not the disk cache
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [HERE]

RTOL = ATOL = 1e-7


def _symengine() -> Any:
    try:
        import symengine
    except ImportError:
        sys.exit("symengine is not installed: pip install symengine")
    return symengine


# ---------------------------------------------------------------- conversion


class NotConvertible(Exception):
    pass


def to_symengine(e: Any, se: Any) -> Any:
    """sympy -> symengine; refuses what symengine would hold as an opaque PyFunction (its derivative
    would be 0, silently) or cannot differentiate (Abs, sign, Max: ``Derivative(...)``, not compilable)."""
    out = se.sympify(e)
    for node in _walk(out):
        name = type(node).__name__
        if name in ("PyFunction", "FunctionSymbol", "Derivative", "Subs"):
            raise NotConvertible(f"{name} {str(node)[:40]}")
    return out


def _walk(e: Any) -> Any:
    seen, stack = set(), [e]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        yield n
        stack.extend(getattr(n, "args", ()))


def _check_derivable(exprs: list[Any]) -> None:
    for e in exprs:
        for node in _walk(e):
            if type(node).__name__ in ("Derivative", "Subs", "PyFunction"):
                raise NotConvertible(f"derivative {str(node)[:40]}")


def plain(e: Any) -> Any:
    """symgrad's smooth function classes (logsumexp, softplus, logaddexp, sigmoid) as plain sympy, so that
    symengine can hold them.  Only for timing the expanded benchmarks: the plain forms are not the stable
    ones symgrad evaluates (``log(sum(exp(z)))``), so their values are compared, not taken as identical."""
    import sympy

    from symgrad.symbolic import functions as s

    smooth = (s.logsumexp, s.softplus, s.logaddexp)

    def rewrite(n: Any) -> Any:
        return n._eval_rewrite_as_exp(*n.args) if isinstance(n, s.sigmoid) else n._eval_rewrite_as_log(*n.args)

    return e.replace(lambda n: isinstance(n, (*smooth, s.sigmoid)), rewrite) if isinstance(e, sympy.Basic) else e


def inline(defs: list[tuple[Any, Any]], outputs: list[Any], se: Any, budget: float,
           rewrite: Callable[[Any], Any] = lambda e: e) -> list[Any]:
    """The outputs with the let-bound definitions substituted, in symengine (``budget`` seconds at most)."""
    t0 = time.perf_counter()
    sub: dict[Any, Any] = {}
    for t, e in defs:
        sub[se.sympify(t)] = to_symengine(rewrite(e), se).xreplace(sub) if sub else to_symengine(rewrite(e), se)
        if time.perf_counter() - t0 > budget:
            raise NotConvertible(f"inlining took over {budget:.0f} s")
    return [to_symengine(rewrite(o), se).xreplace(sub) for o in outputs]


def lambdify_se(se: Any, args: list[Any], outputs: list[Any]) -> Callable[..., np.ndarray]:
    f = se.Lambdify([se.sympify(a) for a in args], outputs, cse=True, backend="lambda")

    def call(*values: Any) -> np.ndarray:
        stacked = np.stack(np.broadcast_arrays(*[np.asarray(v, dtype=np.float64) for v in values]), axis=-1)
        out = np.asarray(f(stacked))
        return np.moveaxis(out, -1, 0)  # outputs first, as lambdify's list

    return call


# ---------------------------------------------------------------- comparison


@dataclass
class Tally:
    bitwise: int = 0
    within: int = 0
    differ: int = 0
    not_convertible: int = 0
    failed: int = 0
    sympy_s: float = 0.0
    symengine_s: float = 0.0
    max_ulp: float = 0.0
    worst: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, ref: list[np.ndarray], got: np.ndarray) -> None:
        ulp, ok = 0.0, True
        for r, g in zip(ref, got):
            r = np.broadcast_to(np.asarray(r, dtype=np.float64), np.shape(g))
            same = (r == g) | (np.isnan(r) & np.isnan(g))
            if same.all():
                continue
            finite = np.isfinite(r) & np.isfinite(g)
            with np.errstate(all="ignore"):
                d = np.abs(r - g)
                u = np.where(finite & ~same, d / np.spacing(np.abs(r)), 0.0)
            ulp = max(ulp, float(np.max(u)) if u.size else 0.0)
            ok = ok and bool(np.all(same | (finite & (d <= ATOL + RTOL * np.abs(r)))))
            if not ok:
                break
        if ulp == 0.0 and ok:
            self.bitwise += 1
        elif ok:
            self.within += 1
        else:
            self.differ += 1
            self.worst.append(name)
        self.max_ulp = max(self.max_ulp, ulp) if ok else self.max_ulp

    def refuse(self, reason: str) -> None:
        self.not_convertible += 1
        key = reason.split()[0]
        self.reasons[key] = self.reasons.get(key, 0) + 1

    def line(self, what: str) -> str:
        ratio = self.sympy_s / self.symengine_s if self.symengine_s else math.nan
        return (f"{what}: {self.bitwise} bitwise, {self.within} within tolerance (max {self.max_ulp:.3g} ulp), "
                f"{self.differ} differ, {self.not_convertible} not convertible {self.reasons or ''}, "
                f"{self.failed} failed; time on the compared ones sympy {self.sympy_s:.2f} s, "
                f"symengine {self.symengine_s:.2f} s, ratio {ratio:.2f}x")


# ---------------------------------------------------------------- the shipped suite


@dataclass
class Record:
    case: str
    compiled: Any
    stored: bool  # expanded mode
    lambdify_s: float = 0.0
    args: tuple | None = None  # the first call's arguments (the plan's inputs only)
    values: list[np.ndarray] | None = None
    plan: Any = None
    plan_s: float = 0.0


def capture(paths: list[str]) -> list[Record]:
    """Run the shipped cases on symgrad's tape, recording each compilation of the reference: the plan,
    how long sympy took to build it and to lambdify it, and the arguments and values of its first call."""
    from symgrad.checking.cases import collect
    from symgrad.checking.runner import run_case
    from symgrad.symbolic import compile as comp
    from symgrad.symbolic import engine

    records: list[Record] = []
    current = {"case": ""}

    class Recording(comp.Compiled):
        def _wrap(self, kind: str, n_args: int) -> Any:
            t = time.perf_counter()
            fn = comp._lambdify(self.args, self.outputs, "numpy", self.defs, self.shared if kind == "shared" else (),
                                stored=self.stored)
            rec = self._record  # type: ignore[attr-defined]
            rec.lambdify_s += time.perf_counter() - t

            def call(*a: Any) -> Any:
                out = fn(*a)
                if rec.args is None:
                    rec.args = tuple(np.array(v, dtype=np.float64) for v in a[:n_args])
                    rec.values = [np.array(v, dtype=np.float64) for v in out]
                return out
            return call

        @property  # type: ignore[override]
        def numpy(self) -> Any:
            if "_np" not in self.__dict__:
                self.__dict__["_np"] = self._wrap("plain", len(self.args))
            return self.__dict__["_np"]

        @property  # type: ignore[override]
        def numpy_shared(self) -> Any:
            if "_nps" not in self.__dict__:
                self.__dict__["_nps"] = self._wrap("shared", len(self.args))
            return self.__dict__["_nps"]

    def wrap_plan(original: Any, stored: bool) -> Any:
        def plan(*a: Any) -> Any:
            t = time.perf_counter()
            p = original.__wrapped__(*a)
            rec = Record(current["case"], p.compiled, stored, plan=p, plan_s=time.perf_counter() - t)
            p.compiled.__class__ = Recording
            p.compiled._record = rec
            records.append(rec)
            return p
        return plan

    engine._elementwise_plan = wrap_plan(engine._elementwise_plan, False)
    engine._expanded_plan = wrap_plan(engine._expanded_plan, True)
    cases, _ = collect(paths)
    for case in cases:
        current["case"] = f"{case.file}::{case.name}"
        run_case(case, "symgrad", dtype="float64", exact=False, arrays=False)
    return records


def elementwise_symengine(rec: Record, se: Any) -> list[Any]:
    """The plan's outputs (forward, then each final derivative) from symengine's own ``diff`` of the forward."""
    plan = rec.plan
    f = to_symengine(plan.f, se)
    syms = {n: se.Symbol(n) for n in plan.names}
    done: dict[tuple, Any] = {(): f}
    out = [f]
    for seq in plan.derivs:
        for k in range(1, len(seq) + 1):
            if seq[:k] not in done:
                done[seq[:k]] = done[seq[:k - 1]].diff(syms[seq[k - 1]])
        out.append(done[seq])
    _check_derivable(out)
    return out


def suite(paths: list[str]) -> str:
    se = _symengine()
    records = [r for r in capture(paths) if r.args is not None]
    lam, dif = Tally(), Tally()
    for rec in records:
        c = rec.compiled
        # lambdify alone: symengine compiles the very expressions sympy compiled
        try:
            t = time.perf_counter()
            outs = inline(list(c.defs), list(c.outputs), se, 5.0)
            fn = lambdify_se(se, list(c.args), outs)
            got = fn(*rec.args)
            t_se = time.perf_counter() - t
            lam.add(rec.case, rec.values, got)
            lam.sympy_s += rec.lambdify_s
            lam.symengine_s += t_se
        except NotConvertible as exc:
            lam.refuse(str(exc))
        except Exception as exc:  # a benchmark: count it and go on
            lam.failed += 1
            lam.reasons[type(exc).__name__] = lam.reasons.get(type(exc).__name__, 0) + 1
        if rec.stored:
            continue
        # differentiation and lambdify, elementwise plans: symengine's diff of sympy's forward
        try:
            t = time.perf_counter()
            outs = elementwise_symengine(rec, se)
            fn = lambdify_se(se, list(c.args), outs)
            got = fn(*rec.args)
            t_se = time.perf_counter() - t
            dif.add(rec.case, rec.values, got)
            dif.sympy_s += rec.plan_s + rec.lambdify_s
            dif.symengine_s += t_se
        except NotConvertible as exc:
            dif.refuse(str(exc))
        except Exception as exc:
            dif.failed += 1
            dif.reasons[type(exc).__name__] = dif.reasons.get(type(exc).__name__, 0) + 1
    n_el = sum(not r.stored for r in records)
    lines = [f"shipped suite: {len(records)} compilations ({n_el} elementwise, {len(records) - n_el} expanded)",
             lam.line("symengine Lambdify of sympy's expressions (lambdify alone)"),
             dif.line("symengine diff + Lambdify of sympy's forward (elementwise plans)")]
    for what, tally in (("lambdify", lam), ("diff", dif)):
        if tally.worst:
            lines.append(f"  {what}, values beyond tolerance: {', '.join(tally.worst[:8])}")
    return "\n".join(lines)


# ---------------------------------------------------------------- expanded mode, the headline sizes


def expanded_cases() -> list[tuple[str, str, dict[str, np.ndarray], list[str]]]:
    """Smallest first (each row is printed as it is measured)."""
    from expanded_bench import matmul, softmax_ce
    from language_bench import BENCHES, _inputs

    out = []
    for n in (8, 32):
        kw = softmax_ce(n)
        out.append((f"softmax_ce n={n}", kw.pop("expr"), {k: v for k, v in kw.items() if k != "wrt"}, kw["wrt"]))
    for n in (3, 4):
        kw = matmul(n)
        out.append((f"sum(tanh(A@B)) {n}x{n}", kw.pop("expr"), kw, ["A", "B"]))
    for name in ("softmax_xent", "layer_norm"):
        expr, wrt = BENCHES[name]
        out.append((name, expr, _inputs(name), wrt))
    return out


def expanded() -> str:
    from check_bench import clear_symbolic_caches

    from symgrad.ir.parse import parse
    from symgrad.symbolic import engine
    from symgrad.symbolic.forms import Keyed

    se = _symengine()
    rows: list[str] = []
    print("expanded mode, sympy (symgrad's plan) vs symengine, same forward:", flush=True)
    for name, text, inputs, wrt in expanded_cases():
        clear_symbolic_caches()
        expr = parse(text, names=list(inputs))
        shapes = tuple((n, np.shape(inputs[n])) for n in engine.variables(expr))
        t = time.perf_counter()
        plan = engine._expanded_plan.__wrapped__(Keyed(expr), shapes, tuple(wrt), 1, False)
        t_diff = time.perf_counter() - t
        t = time.perf_counter()
        fn = plan.compiled.numpy
        t_lam = time.perf_counter() - t
        args = [float(a) for n, _ in shapes for a in np.asarray(inputs[n], dtype=np.float64).ravel()]
        ref = [np.float64(v) for v in fn(*args)]
        c = plan.compiled
        n_out = math.prod(plan.out_shape)
        try:
            t = time.perf_counter()
            fwd = inline(list(c.defs[: plan.n_forward]), list(c.outputs[:n_out]), se, 300.0, plain)
            loss = se.Add(*fwd)
            syms = [se.sympify(a) for a in c.args]
            active = {str(s) for n in wrt for s in plan.sym_names[n].ravel()}
            grads = [loss.diff(s) for s in syms if str(s) in active]
            t_se_diff = time.perf_counter() - t
            t = time.perf_counter()
            f = lambdify_se(se, list(c.args), [*fwd, *grads])
            t_se_lam = time.perf_counter() - t
            got = f(*args)
            tally = Tally()
            tally.add(name, [np.asarray(v) for v in ref], got)
            verdict = ("bitwise" if tally.bitwise else "within tol" if tally.within else "DIFFER") + \
                (f" ({tally.max_ulp:.3g} ulp)" if tally.within else "")
            rows.append(f"{name:<24} sympy diff {t_diff:7.2f} s  lambdify {t_lam:7.2f} s | symengine diff {t_se_diff:7.3f} s"
                        f"  Lambdify {t_se_lam:7.3f} s | ratio diff {t_diff / t_se_diff:6.1f}x  lambdify "
                        f"{t_lam / t_se_lam:6.1f}x  total {(t_diff + t_lam) / (t_se_diff + t_se_lam):6.1f}x | {verdict}")
        except NotConvertible as exc:
            rows.append(f"{name:<24} sympy diff {t_diff:7.2f} s  lambdify {t_lam:7.2f} s | symengine: not convertible ({exc})")
        print(rows[-1], flush=True)
    return "expanded mode, sympy (symgrad's plan) vs symengine, same forward: done"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("paths", nargs="*", default=[os.path.join(ROOT, "cases")])
    p.add_argument("--suite", action="store_true", help="the shipped suite only")
    p.add_argument("--expanded", action="store_true", help="the expanded-mode benchmarks only")
    a = p.parse_args()
    import symengine

    print(f"symengine {symengine.__version__}")
    if not a.suite:
        print(expanded(), flush=True)
    if not a.expanded:
        print(suite(a.paths), flush=True)


if __name__ == "__main__":
    main()
