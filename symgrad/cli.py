"""The ``symgrad`` command: ``check`` runs case files, ``grad`` checks one expression."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

import click

EXIT_CODES = """\b
Exit codes:
  0  every case passed (skips and expected failures allowed)
  1  a gradient mismatched
  2  usage error, invalid case file, or a case that errored"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="symgrad")
def main() -> None:
    """Check reverse-mode automatic differentiation against exact symbolic derivatives."""


@main.command(epilog=EXIT_CODES)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--backend", "backends", multiple=True, help="Tape backend to check (repeatable); default symgrad.")
@click.option("-k", "keyword", default=None, help="Only cases whose name contains this text.")
@click.option("--tag", "tags", multiple=True, help="Only cases with this tag (repeatable).")
@click.option("-x", "--exitfirst", is_flag=True, help="Stop after the first failure or error.")
@click.option("--rtol", type=float, default=None, help="Override every case's rtol.")
@click.option("--atol", type=float, default=None, help="Override every case's atol.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default=None, help="Override every case's dtype.")
@click.option("--exact", is_flag=True, default=None, help="Reference from mpmath at 50 digits, rounded once.")
@click.option("-v", "--verbose", is_flag=True, help="Show every case and tracebacks of errors.")
def check(paths: tuple[str, ...], backends: tuple[str, ...], keyword: Optional[str], tags: tuple[str, ...],
          exitfirst: bool, rtol: Optional[float], atol: Optional[float], dtype: Optional[str],
          exact: Optional[bool], verbose: bool) -> None:
    """Run every case in the case files and folders PATHS (default: cases/)."""
    from .cases import collect
    from .report import exit_code, summarize
    from .runner import Options, run_case

    start = time.perf_counter()
    cases, file_errors = collect(paths or ("cases",))
    for err in file_errors:
        click.echo(f"ERROR {err}", err=True)
    if keyword:
        cases = [c for c in cases if keyword in c.name]
    if tags:
        cases = [c for c in cases if set(tags) & set(c.tags)]
    reports = []
    for backend in backends or ("symgrad",):
        options = Options(backend=backend, exact=exact, rtol=rtol, atol=atol, dtype=dtype)
        for case in cases:
            report = run_case(case, options=options)
            reports.append(report)
            if verbose or report.status in ("fail", "error", "xpass"):
                click.echo(report.table(verbose=verbose) if report.status != "pass" else report.summary_line())
            if exitfirst and report.status in ("fail", "error", "xpass"):
                break
        else:
            continue
        break
    click.echo(summarize(reports, time.perf_counter() - start))
    sys.exit(exit_code(reports, len(file_errors)))


def _parse_at(values: tuple[str, ...]) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for item in values:
        name, sep, numbers = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=V1,V2,..., got {item!r}", param_hint="--at")
        try:
            parsed = [float(v) for v in numbers.split(",")]
        except ValueError:
            raise click.BadParameter(f"not a list of numbers: {numbers!r}", param_hint="--at") from None
        inputs[name.strip()] = parsed[0] if len(parsed) == 1 else parsed
    return inputs


@main.command(epilog=EXIT_CODES)
@click.argument("expr")
@click.option("--at", "at", multiple=True, metavar="NAME=V1,V2,...", help="An input's values (repeatable).")
@click.option("--grad-output", default=None, metavar="V1,V2,...", help="The gradient= passed to backward.")
@click.option("--backend", default="symgrad", show_default=True)
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@click.option("--order", type=click.IntRange(1, 3), default=1, show_default=True)
def grad(expr: str, at: tuple[str, ...], grad_output: Optional[str], backend: str, dtype: str, order: int) -> None:
    """Print EXPR's value, sympy's derivatives, the tape's gradients and the verdict."""
    import numpy as np

    from . import backends
    from .api import make_case
    from .cases import CaseError
    from .runner import run_case
    from .symbolic import differentiate

    kwargs: dict[str, Any] = {"dtype": dtype, "order": order}
    if grad_output is not None:
        kwargs["grad_output"] = [float(v) for v in grad_output.split(",")]
    try:
        case = make_case(expr, _parse_at(at), **kwargs)
    except CaseError as exc:
        raise click.UsageError(str(exc)) from None
    inputs = case.make_inputs()
    report = run_case(case, backend=backend)
    if report.status == "error":
        click.echo(report.table())
        sys.exit(2)
    with np.printoptions(precision=10):
        from .runner import _numpy_value

        g_out = case.make_grad_output(np.shape(_numpy_value(case.ir, inputs)))
        sym = differentiate(case.ir, inputs, case.wrt_names, order=order, grad_output=g_out, mode=case.mode)
        value, grads = backends.get(backend).gradients(case.ir, inputs, case.wrt_names, order, g_out)
        click.echo(f"value      {expr} = {value}")
        for seq, d in sym.derivatives.items():
            label = "d/d" + " d/d".join(seq)
            click.echo(f"{label:<10} sympy: {d.formula}")
            click.echo(f"{'':<10} sympy: {d.value}")
            click.echo(f"{'':<10} tape:  {grads.get(seq)}")
    click.echo(report.table() if report.status != "pass" else f"PASS ({report.mode}, {report.backend})")
    sys.exit(0 if report else 1)


if __name__ == "__main__":  # pragma: no cover
    main()
