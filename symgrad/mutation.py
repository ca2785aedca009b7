"""Mutation testing of the op table's VJPs: how strong is a case suite?

A gradient checker is only as good as its cases.  To measure a suite, symgrad plants
bugs in its own backward rules and counts how many the suite notices.  Each *mutant*
is one VJP (one op, one argument) changed in one way:

=========================  ===============================================================
``sign``                   the gradient negated
``scale``                  the gradient times (1 + 1e-4)
``swap``                   (two-argument ops) the other argument's VJP
``ignore-g``               the incoming gradient ``g`` replaced by ones (``g = 1`` hides it)
``not-differentiable-again``  right values, computed in plain numpy: ``create_graph`` cannot
                           differentiate them, so only order >= 2 cases can see it
=========================  ===============================================================

The cases whose expression uses the op run on symgrad's tape with the mutant in place
(fastest first, stopping at the first case that notices).  A mutant is *killed* when a
case that passes on the unmutated tape fails or errors, and *survives* otherwise.

Some mutants cannot be noticed by any input (``swap`` on ``add``: both VJPs are ``g``).
They are found by evaluating the original and the mutated VJP, and their derivatives,
on random inputs and a random ``g``; when they agree everywhere the mutant is
*equivalent* and not counted.  The score is killed / (mutants - equivalent).

How a mutant is applied: :class:`MutantBackend` is symgrad's tape backend that, for every
node of the case's expression that uses the op, records a copy of the op whose VJP is
mutated (``dataclasses.replace(op, vjps=...)``).  The op table itself is never changed,
so there is nothing to restore, a crash cannot leave a mutant behind, and other threads
or worker processes are unaffected.  The ops inside the VJPs (the ``cos`` of ``sin``'s
VJP) stay the table's: a mutant is a wrong backward rule where the user's expression
uses the op.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from symgrad import tape
from symgrad.backends.symgrad_tape import SymgradBackend
from symgrad.checking.runner import Options, run_case
from symgrad.ir import ops
from symgrad.ir.expr import Call
from symgrad.ir.ops import Op

KINDS = ("sign", "scale", "swap", "ignore-g", "not-differentiable-again")
SCALE = 1.0 + 1e-4

__all__ = ["KINDS", "Mutant", "MutantBackend", "MutantResult", "MutationReport", "is_equivalent", "mutants",
           "mutated_op", "run"]


@dataclass(frozen=True)
class Mutant:
    """One planted bug: the VJP of ``op``'s argument number ``arg``, changed by ``kind``."""

    op: str
    arg: int
    kind: str

    @property
    def arg_name(self) -> str:
        """The argument's name in the VJP's signature (``x``, ``y``, ``a``), else ``arg<i>``."""
        code = getattr(ops.OPS[self.op].vjps[self.arg], "__code__", None)
        names = code.co_varnames[2:code.co_argcount] if code is not None else ()
        return names[self.arg] if self.arg < len(names) else f"arg{self.arg}"

    def __str__(self) -> str:
        return f"{self.op} {self.arg_name} {self.kind}"


# ---------------------------------------------------------------- building mutants


def _ones_like(g: Any) -> Any:
    if isinstance(g, tape.Tensor):
        return tape.Tensor._make(np.ones(g.shape, dtype=g.dtype))  # a constant: no graph
    a = np.asarray(g)
    return np.ones(a.shape, dtype=a.dtype if a.dtype.kind == "f" else np.float64)


def _plain(value: Any) -> Any:
    return value._data if isinstance(value, tape.Tensor) else value


def _mutate_vjp(op: Op, arg: int, kind: str) -> Callable[..., Any]:
    vjp = op.vjps[arg]
    if vjp is None:
        raise ValueError(f"{op.name} has no VJP for argument {arg}")
    if kind == "sign":
        return lambda g, ans, *args, **params: -vjp(g, ans, *args, **params)
    if kind == "scale":
        return lambda g, ans, *args, **params: vjp(g, ans, *args, **params) * SCALE
    if kind == "swap":
        other = op.vjps[1 - arg] if op.arity == 2 else None
        if other is None:
            raise ValueError(f"swap needs a two-argument op with two VJPs, not {op.name}")
        return other
    if kind == "ignore-g":
        return lambda g, ans, *args, **params: vjp(_ones_like(g), ans, *args, **params)
    if kind == "not-differentiable-again":
        def detached(g: Any, ans: Any, *args: Any, **params: Any) -> Any:
            value = np.asarray(_plain(vjp(_plain(g), _plain(ans), *map(_plain, args), **params)))
            taped = any(isinstance(a, tape.Tensor) for a in (g, ans, *args))  # create_graph is on
            return tape.Tensor._make(value) if taped else value

        return detached
    raise ValueError(f"unknown mutation kind {kind!r} (known: {', '.join(KINDS)})")


def mutated_op(mutant: Mutant) -> Op:
    """A copy of the op with the one VJP mutated; the table's op is untouched."""
    op = ops.OPS[mutant.op]
    vjps = list(op.vjps)
    vjps[mutant.arg] = _mutate_vjp(op, mutant.arg, mutant.kind)
    return dataclasses.replace(op, vjps=tuple(vjps))


def mutants(op_names: Iterable[str] | None = None, kinds: Sequence[str] = KINDS) -> list[Mutant]:
    """Every mutant of the public ops (or of ``op_names``, aliases accepted), in table order."""
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown mutation kind {kind!r} (known: {', '.join(KINDS)})")
    if op_names is None:
        table = ops.public_ops()
    else:
        table, unknown = [], []
        for name in op_names:
            op = ops.lookup(name)
            if op is None:
                unknown.append(name)
            elif op not in table:
                table.append(op)
        if unknown:
            known = ", ".join(op.name for op in ops.public_ops())
            raise ValueError(f"unknown op{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; known: {known}")
    out = []
    for op in table:
        for arg, vjp in enumerate(op.vjps):
            if vjp is None:
                continue
            for kind in kinds:
                if kind == "swap" and not (op.arity == 2 and all(v is not None for v in op.vjps)):
                    continue
                out.append(Mutant(op.name, arg, kind))
    return out


class MutantBackend(SymgradBackend):
    """symgrad's tape, with one op of the expression replaced by its mutated copy."""

    def __init__(self, mutant: Mutant):
        self.mutant = mutant
        self._target = ops.OPS[mutant.op]
        self._replacement = mutated_op(mutant)

    def apply(self, op: Op, args: list[Any], params: dict[str, Any]) -> Any:
        return super().apply(self._replacement if op is self._target else op, args, params)


# ---------------------------------------------------------------- equivalent mutants

_PROBE_RANGES = ((0.2, 0.8), (1.2, 3.0), (-2.0, 2.0), (-0.8, -0.2))


def _probe_params(op: Op) -> dict[str, Any]:
    """The params of the op's first example (indexing, reshape ...), else none."""
    return dict(op.samples[0][1]) if op.samples else {}


def _probe_shapes(op: Op) -> list[tuple[int, ...]]:
    if op.samples:  # shapes and indexing, linear algebra: the op's first example
        return list(op.samples[0][0])
    if op is ops.matmul:
        return [(2, 3), (3, 4)]  # not square: a swapped VJP has the wrong shape
    if op.kind == ops.ELEMENTWISE:
        return [(5,)] * op.arity
    return [(3, 4)] * op.arity


def _vjp_and_derivatives(op: Op, vjp: Callable[..., Any], xs: list[np.ndarray], g: np.ndarray,
                         r: np.ndarray) -> list[np.ndarray]:
    """The VJP's value, then d/d(g, x...) of sum(VJP * r) as create_graph records it."""
    gt = tape.tensor(g, requires_grad=True)
    leaves = [tape.tensor(x, requires_grad=True) for x in xs]
    params = _probe_params(op)
    ans = tape.graph.apply_table(op, leaves, params)  # the table's op (std with ddof 0), not torch's
    v = vjp(gt, ans, *leaves, **params)
    v = v if isinstance(v, tape.Tensor) else tape.Tensor._make(np.asarray(v))
    out = [v._data]
    s = (v * r).sum()  # type: ignore[attr-defined]  # Tensor.sum is generated from the op table
    if not s.requires_grad:
        return out + [np.zeros_like(a) for a in (g, *xs)]
    grads = tape.grad(s, [gt, *leaves], allow_unused=True)
    return out + [np.zeros_like(a) if d is None else d._data for a, d in zip((g, *xs), grads)]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if np.shape(a) != np.shape(b):
        return False
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a)
    return bool(np.all(np.abs(a[ok] - b[ok]) <= 1e-9 * np.abs(a[ok])))


def is_equivalent(mutant: Mutant, seed: int = 0) -> bool:
    """Whether no input can tell the mutant from the original: their VJPs and its derivatives
    agree at random inputs from several ranges (where the original is finite) and a random g."""
    op = ops.OPS[mutant.op]
    original, mutated = op.vjps[mutant.arg], mutated_op(mutant).vjps[mutant.arg]
    assert original is not None and mutated is not None
    rng = np.random.default_rng(seed)
    compared = False
    for lo, hi in _PROBE_RANGES:
        xs = [rng.uniform(lo, hi, size=s) for s in _probe_shapes(op)]
        with np.errstate(all="ignore"):
            try:
                ans = op.forward(*xs, **_probe_params(op))
                g = rng.normal(size=np.shape(ans))
                r = rng.normal(size=np.shape(original(g, ans, *xs, **_probe_params(op))))
                expected = _vjp_and_derivatives(op, original, xs, g, r)
            except (ValueError, ArithmeticError):
                continue  # the original cannot run here (domain)
            if not np.any(np.isfinite(expected[0])):
                continue
            compared = True
            try:
                actual = _vjp_and_derivatives(op, mutated, xs, g, r)
            except Exception:
                return False
        if not all(_same(e, a) for e, a in zip(expected, actual)):
            return False
    return compared


# ---------------------------------------------------------------- running a suite against the mutants


def ops_of(case: Any) -> set[str]:
    """The names of the ops a case's expression uses."""
    return {n.op.name for n in case.ir.walk() if isinstance(n, Call)} if case.ir is not None else set()


@dataclass
class MutantResult:
    mutant: Mutant
    status: str  # "killed", "survived", "equivalent"
    killed_by: str = ""  # the case id that noticed it
    cases_run: int = 0
    cases_available: int = 0  # the baseline-passing cases that use the op

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.mutant.op, "argument": self.mutant.arg_name, "arg_index": self.mutant.arg,
                "kind": self.mutant.kind, "status": self.status, "killed_by": self.killed_by or None,
                "cases_run": self.cases_run, "cases_available": self.cases_available}


@dataclass
class MutationReport:
    results: list[MutantResult] = field(default_factory=list)
    cases: int = 0  # cases selected
    baseline_failures: list[str] = field(default_factory=list)  # cases not passing unmutated: not used
    seconds: float = 0.0

    def _count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def killed(self) -> int:
        return self._count("killed")

    @property
    def equivalent(self) -> int:
        return self._count("equivalent")

    @property
    def observable(self) -> int:
        return len(self.results) - self.equivalent

    @property
    def survivors(self) -> list[MutantResult]:
        return [r for r in self.results if r.status == "survived"]

    @property
    def score(self) -> float:
        return self.killed / self.observable if self.observable else 1.0

    def __bool__(self) -> bool:
        return not self.survivors

    def summary(self) -> str:
        return (f"mutation score: {self.killed}/{self.observable} observable mutants killed "
                f"({100 * self.score:.1f}%); {self.equivalent} equivalent (not counted); "
                f"{self.cases} cases in {self.seconds:.1f} s")

    def text(self, verbose: bool = False) -> str:
        lines = []
        for name in self.baseline_failures:
            lines.append(f"NOT USED  {name} (does not pass on the unmutated tape)")
        for r in self.results:
            if r.status == "survived":
                why = "no case uses the op" if not r.cases_available else f"{r.cases_available} cases ran"
                lines.append(f"SURVIVED  {r.mutant}  ({why})")
            elif verbose and r.status == "killed":
                lines.append(f"killed    {r.mutant}  by {r.killed_by}")
        eq = [str(r.mutant) for r in self.results if r.status == "equivalent"]
        if eq:
            lines.append("equivalent (not counted): " + ", ".join(eq))
        lines.append(self.summary())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"killed": self.killed, "observable": self.observable, "equivalent": self.equivalent,
                "score": self.score, "cases": self.cases, "seconds": self.seconds,
                "baseline_failures": self.baseline_failures,
                "survivors": [r.to_dict() for r in self.survivors],
                "mutants": [r.to_dict() for r in self.results]}


def run(cases: Sequence[Any], op_names: Iterable[str] | None = None, kinds: Sequence[str] = KINDS,
        options: Any = None, on_result: Callable[[MutantResult], None] | None = None) -> MutationReport:
    """Run ``cases`` against every mutant (of ``op_names``, of ``kinds``), in this process."""
    start = time.perf_counter()
    todo = mutants(op_names, kinds)  # unknown ops or kinds: ValueError before anything runs
    options = options or Options()
    report = MutationReport(cases=len(cases))
    targets = {m.op for m in todo}
    baseline: list[tuple[float, Any]] = []
    for case in cases:
        if not ops_of(case) & targets:
            continue  # no mutant can reach it
        r = run_case(case, options=dataclasses.replace(options, backend="symgrad"))
        if r.status == "pass":
            baseline.append((r.duration, case))
        elif r.status != "skip":
            report.baseline_failures.append(case.id)
    baseline.sort(key=lambda item: item[0])  # fastest first: most mutants die at their first case
    users: dict[str, list[Any]] = {}
    for _, case in baseline:
        for name in ops_of(case):
            users.setdefault(name, []).append(case)
    for m in todo:
        result = MutantResult(m, "survived", cases_available=len(users.get(m.op, [])))
        if is_equivalent(m):
            result.status = "equivalent"
        else:
            backend = MutantBackend(m)
            for case in users.get(m.op, []):
                result.cases_run += 1
                if run_case(case, options=dataclasses.replace(options, backend=backend)).status in ("fail", "error"):
                    result.status, result.killed_by = "killed", case.id
                    break
        report.results.append(result)
        if on_result is not None:
            on_result(result)
    report.seconds = time.perf_counter() - start
    return report
