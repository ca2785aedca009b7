"""The ``symgrad`` command: ``check`` runs case files, ``grad`` checks one expression."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Optional

import click

EXIT_CODES = """\b
Exit codes:
  0  every case passed (skips and expected failures allowed)
  1  a gradient mismatched, or an expected failure passed
  2  usage error, invalid case file, or a case that errored or timed out"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="symgrad")
def main() -> None:
    """Check reverse-mode automatic differentiation against exact symbolic derivatives."""


class _Jobs(click.ParamType):
    name = "N|auto"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        if str(value).strip().lower() == "auto":
            from symgrad.checking.suite import default_jobs

            return default_jobs()
        try:
            n = int(value)
        except ValueError:
            self.fail(f"expected a number of workers or 'auto', got {value!r}", param, ctx)
        if n < 1:
            self.fail(f"needs at least 1 worker, got {n}", param, ctx)
        return n


def _parse_limits(values: tuple[str, ...]) -> Any:
    from symgrad.ir.limits import DEFAULT

    overrides: dict[str, int] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        try:
            if not sep:
                raise ValueError
            overrides[name.strip()] = int(raw.replace("_", ""))
        except ValueError:
            raise click.BadParameter(f"expected NAME=INTEGER, got {item!r}", param_hint="--limit") from None
    try:
        return DEFAULT.with_overrides(**overrides)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--limit") from None


def _use_color(no_color: bool, stream: Any) -> bool:
    if no_color or os.environ.get("NO_COLOR"):
        return False
    return _isatty(stream)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@main.command(epilog=EXIT_CODES)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--backend", "backends", multiple=True, metavar="NAME|MODULE:ATTR",
              help="Tape backend to check (repeatable: each case is reported per backend); default symgrad.")
@click.option("-k", "keyword", default=None, metavar="EXPR",
              help="Only cases whose name matches EXPR: substrings with and/or/not/parentheses, as pytest -k.")
@click.option("--tag", "tags", multiple=True, help="Only cases with this tag (repeatable: any of them).")
@click.option("--skip-tags", "skip_tags", multiple=True, metavar="TAG[,TAG...]",
              help="Leave out cases with any of these tags (repeatable, comma-separated).")
@click.option("-x", "--exitfirst", is_flag=True, help="Stop after the first failure or error.")
@click.option("-j", "--jobs", type=_Jobs(), default="1", show_default=True,
              help="Worker processes; 'auto' = one per CPU.")
@click.option("--timeout", type=click.FloatRange(min=0), default=60.0, show_default=True, metavar="SECONDS",
              help="Stop a case after this long and report it as an error; 0 = no limit (and no worker process).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text", show_default=True,
              help="Report format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report to this file instead of stdout.")
@click.option("--rtol", type=float, default=None, help="Override every case's rtol.")
@click.option("--atol", type=float, default=None, help="Override every case's atol.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default=None, help="Override every case's dtype.")
@click.option("--exact", is_flag=True, default=None, help="Reference from mpmath at 50 digits, rounded once.")
@click.option("--limit", "limits", multiple=True, metavar="NAME=N",
              help="Raise a size limit, e.g. --limit max_nodes=10000 (repeatable).")
@click.option("--no-color", is_flag=True, help="No colour (also: the NO_COLOR environment variable).")
@click.option("-v", "--verbose", is_flag=True, help="Show every case and tracebacks of errors.")
def check(paths: tuple[str, ...], backends: tuple[str, ...], keyword: Optional[str], tags: tuple[str, ...],
          skip_tags: tuple[str, ...], exitfirst: bool, jobs: int, timeout: float, fmt: str, output: Optional[str],
          rtol: Optional[float], atol: Optional[float], dtype: Optional[str], exact: Optional[bool],
          limits: tuple[str, ...], no_color: bool, verbose: bool) -> None:
    """Run every case in the case files and folders PATHS (default: cases/).

    Text reports print each failure's table and a summary line; --format json
    or junit write machine-readable reports (to stdout, or --output FILE).
    Progress and colour appear only on a terminal.
    """
    from symgrad.checking.suite import KeywordError, prestart, run_suite, select

    start = time.perf_counter()
    prestart(jobs, timeout)  # first: the workers' imports overlap with ours and with reading the case files
    from symgrad.checking import formats
    from symgrad.checking.cases import collect
    from symgrad.checking.report import exit_code, summarize
    from symgrad.checking.runner import Options

    lim = _parse_limits(limits)
    if keyword:
        try:
            from symgrad.checking.suite import compile_keyword

            compile_keyword(keyword)
        except KeywordError as exc:
            raise click.BadParameter(str(exc), param_hint="-k") from None
    skip = tuple(t.strip() for item in skip_tags for t in item.split(",") if t.strip())

    stdout = sys.stdout  # (CliRunner redirects it too)
    to_stdout = output is None
    text = fmt == "text"
    tty = _isatty(stdout)
    color = text and to_stdout and _use_color(no_color, stdout)
    progress = formats.Progress(0, stdout, color=_use_color(no_color, stdout), enabled=False)
    out_lines: list[str] = []

    def emit(line: str, styled: Optional[str] = None) -> None:
        """A line of the text report: to stdout (around the progress line) or kept for --output."""
        if not text:
            return
        if to_stdout:
            progress.clear()
            click.echo(styled if styled is not None and color else line, color=color)
            progress.draw()
        else:
            out_lines.append(line)

    cases, file_errors = collect(paths or ("cases",), limits=lim)
    for err in file_errors:
        if text and to_stdout:
            emit(f"ERROR {err}", formats.style_status("ERROR", "error", color) + f" {err}")
        else:
            click.echo(f"ERROR {err}", err=True)
            if text:
                out_lines.append(f"ERROR {err}")
    cases = select(cases, keyword, tags, skip)
    options = [Options(backend=b, exact=exact, rtol=rtol, atol=atol, dtype=dtype, limits=lim, arrays=False)
               for b in (backends or ("symgrad",))]
    progress = formats.Progress(len(cases) * len(options), stdout, color=_use_color(no_color, stdout),
                                enabled=text and tty)

    def on_report(report: Any) -> None:
        if report.status in ("fail", "error", "xpass"):
            emit(report.table(verbose=verbose), formats.styled_table(report, verbose, color))
        elif verbose:
            line = report.summary_line()
            head, sep, rest = line.partition(" ")
            emit(line, formats.style_status(head, report.status, color) + sep + rest)
        if not text and report.status == "error" and verbose:
            click.echo(report.table(verbose=True), err=True)

    try:
        result = run_suite(cases, options, jobs=jobs, timeout=timeout or None, exitfirst=exitfirst,
                           on_complete=progress.update, on_report=on_report)
    finally:
        progress.clear()
        progress.enabled = False
    reports = result.reports
    seconds = time.perf_counter() - start
    code = exit_code(reports, len(file_errors))
    if text:
        if result.stopped_early:
            emit("stopped after the first failure (-x)")
        if file_errors:
            n = len(file_errors)
            emit(f"{n} invalid case file{'s' if n != 1 else ''} or case{'s' if n != 1 else ''} (see above)")
        summary = summarize(reports, seconds)
        emit(summary, formats.styled_summary(summary, reports, color))
        body = "\n".join(out_lines) + "\n" if out_lines else ""
    elif fmt == "json":
        body = formats.to_json(reports, file_errors, seconds, code)
    else:
        body = formats.to_junit(reports, file_errors, seconds)
    if output is not None:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(body)
        except OSError as exc:
            click.echo(f"symgrad: cannot write {output}: {exc}", err=True)
            sys.exit(2)
        if not text:
            click.echo(summarize(reports, seconds), err=True)
    elif not text:
        stdout.write(body)
        stdout.flush()
    sys.exit(code)


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

    from symgrad.api import make_case
    from symgrad.checking.cases import CaseError
    from symgrad.checking.runner import run_case

    kwargs: dict[str, Any] = {"dtype": dtype, "order": order}
    if grad_output is not None:
        kwargs["grad_output"] = [float(v) for v in grad_output.split(",")]
    try:
        case = make_case(expr, _parse_at(at), **kwargs)
    except CaseError as exc:
        raise click.UsageError(str(exc)) from None
    from symgrad.checking.suite import resolve_backend

    report = run_case(case, backend=resolve_backend(backend))
    if report.status in ("error", "skip"):  # nothing was compared
        click.echo(report.table())
        sys.exit(2)
    with np.printoptions(precision=10):
        click.echo(f"value      {expr} = {report.value}")
        for seq, g in report.gradients.items():
            label = "d/d" + " d/d".join(seq)
            click.echo(f"{label:<10} sympy: {g.formula}")
            click.echo(f"{'':<10} sympy: {g.reference}")
            click.echo(f"{'':<10} tape:  {g.tape}")
    click.echo(report.table() if report.status != "pass" else f"PASS ({report.mode}, {report.backend})")
    sys.exit(0 if report else 1)


@main.command("ops")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def ops_command(fmt: str) -> None:
    """List every op of the expression language, straight from the op table."""
    import json

    from symgrad.ir.ops import public_ops

    rows = []
    for op in public_ops():
        rows.append({
            "name": op.name,
            "infix": op.infix or "",
            "arity": op.arity,
            "args": list(op.args),
            "aliases": list(op.aliases),
            "params": list(op.params),
            "kind": op.kind,
            "domain": op.domain_text,
            "kink": op.kink,
            "linear": op.linear,
            "saves": [list(s) for s in op.saves],
        })
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return

    def saves(r: dict) -> str:
        per = [", ".join(s) or "nothing" for s in r["saves"]]
        if len(set(per)) == 1:
            return per[0]
        return "; ".join(f"d/d{a}: {p}" for a, p in zip(r["args"], per))

    head = ["op", "arity", "aliases", "params", "kind", "domain", "at non-differentiable points", "linear", "saves"]
    table = [head] + [[
        r["name"] + (f" ({r['infix']})" if r["infix"] else ""),
        str(r["arity"]),
        ", ".join(r["aliases"]) or "-",
        ", ".join(f"{p}=" for p in r["params"]) or "-",
        r["kind"],
        r["domain"] or "-",
        r["kink"] or "-",
        "yes" if r["linear"] else "-",
        saves(r),
    ] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for n, row in enumerate(table):
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))
    click.echo(f"\n{len(rows)} ops; constants: pi, e; saves: what the tape keeps for the VJPs")


def _parse_scalars(values: tuple[str, ...]) -> dict[str, Any]:
    return _parse_at(values)


@main.command("plot", epilog="Needs matplotlib: pip install \"symgrad[plot]\" (exit 2 with a message when absent).")
@click.argument("expr")
@click.option("--wrt", required=True, metavar="NAME", help="The input swept over --range.")
@click.option("--range", "range_", nargs=2, type=float, required=True, metavar="LO HI", help="The sweep of --wrt.")
@click.option("--at", "at", multiple=True, metavar="NAME=V", help="Fix another input (repeatable).")
@click.option("--points", type=click.IntRange(2, 1_000_000), default=401, show_default=True,
              help="Points of the sweep.")
@click.option("-o", "--output", default="symgrad-plot.png", show_default=True, type=click.Path(dir_okay=False),
              help="Image file (png, svg, pdf by extension).")
@click.option("--backend", default="symgrad", show_default=True)
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
def plot_command(expr: str, wrt: str, range_: tuple[float, float], at: tuple[str, ...], points: int, output: str,
                 backend: str, dtype: str) -> None:
    """Plot f, sympy's f', the tape's f' and the ULP error over a sweep of one input.

    Kinks (relu, abs, maximum, ... at their non-differentiable points) and points
    where the derivative is undefined are marked.
    """
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        click.echo('symgrad plot needs matplotlib: pip install "symgrad[plot]"', err=True)
        sys.exit(2)
    from symgrad.checking.cases import CaseError
    from symgrad.plot import MatplotlibMissing, compute, render
    from symgrad.checking.suite import resolve_backend

    lo, hi = range_
    if not lo < hi:
        raise click.BadParameter(f"LO must be below HI, got {lo:g} {hi:g}", param_hint="--range")
    try:
        data = compute(expr, wrt, lo, hi, _parse_scalars(at), points=points, backend=resolve_backend(backend),
                       dtype=dtype)
    except (CaseError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    try:
        render(data, output)
    except MatplotlibMissing as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    kinks = ", ".join(f"{name} at {z:.6g}" for z, name in data.kinks) or "none"
    import numpy as np

    finite = data.ulp[np.isfinite(data.ulp)]
    worst = f"{finite.max():.3g}" if finite.size else "-"
    click.echo(f"wrote {output}: d/d{wrt} {expr}; max error {worst} ULP; kinks: {kinks}; "
               f"undefined points: {int(data.undefined.sum())}; {data.verdict}")
    sys.exit(0 if data.verdict == "PASS" else 1)  # the picture is written either way


def _parse_shape(text: str) -> tuple[int, ...]:
    text = text.strip().lower()
    if text in ("", "()", "scalar"):
        return ()
    try:
        shape = tuple(int(p) for p in text.replace("x", ",").strip("()").split(",") if p.strip())
    except ValueError:
        raise click.BadParameter(f"expected a shape such as 'scalar', '3' or '2,3', got {text!r}",
                                 param_hint="--shape") from None
    if len(shape) > 2 or any(n < 1 or n > 8 for n in shape):
        raise click.BadParameter(f"shapes have at most 2 dimensions of 1..8 elements, got {text!r}",
                                 param_hint="--shape")
    return shape



@main.command("fuzz", epilog="""\b
Exit codes:
  0  every expression checked passed (undefined elements are classified, not failures)
  1  a gradient mismatched or a case errored (each shrunk case saved under --out)
  2  usage error (unknown op or backend, bad option)""")
@click.option("--count", type=click.IntRange(min=0), default=100, show_default=True,
              help="Expressions to check.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same expressions, same verdicts.")
@click.option("--max-depth", type=click.IntRange(0, 12), default=4, show_default=True,
              help="Nesting depth of ops (domain wrappers not counted).")
@click.option("--ops", "op_names", default=None, metavar="NAME,NAME,...",
              help="Only these ops (aliases accepted; e.g. sin,exp,add,mul); default every op.")
@click.option("--backend", default="symgrad", show_default=True,
              help="Backend to check: a name, or module:attr (a Backend instance, class or factory).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="cases/regressions",
              show_default=True, help="Folder for the shrunk failing cases.")
@click.option("--no-save", is_flag=True, help="Do not write failing cases.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@click.option("--shape", "shape_texts", multiple=True, metavar="SHAPE",
              help="Input shape (repeatable): 'scalar', '3', '2,3'. Default: scalar, 3 and 2,3.")
@click.option("--max-failures", type=click.IntRange(min=1), default=5, show_default=True,
              help="Stop after this many failures.")
@click.option("--timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds per check (0: none); a check that times out is listed, not failed.")
@click.option("-v", "--verbose", is_flag=True, help="Print every checked expression and its verdict.")
def fuzz(count: int, seed: int, max_depth: int, op_names: Optional[str], backend: str,
                 out_dir: str, no_save: bool, dtype: str, shape_texts: tuple[str, ...], max_failures: int,
                 timeout: float, verbose: bool) -> None:
    """Check random expressions from the op table; shrink failures with hypothesis and save them."""
    try:
        import hypothesis  # noqa: F401  (fuzzing needs it; say so before starting)
    except ImportError:
        raise click.UsageError("symgrad fuzz needs hypothesis: pip install hypothesis") from None
    from symgrad.backends import BackendUnavailable
    from symgrad.fuzzing import DEFAULT_SHAPES, FuzzResult, fuzz as run_fuzz, resolve_ops

    try:
        table = resolve_ops(op_names)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ops") from None
    shapes = tuple(_parse_shape(t) for t in shape_texts) or DEFAULT_SHAPES

    def progress(result: "FuzzResult") -> None:
        if verbose:
            expr, verdict = result.history[-1]
            click.echo(f"{verdict.upper():9} {expr}")

    try:
        from symgrad.checking.suite import resolve_backend

        result = run_fuzz(count=count, seed=seed, max_depth=max_depth, ops=table, backend=resolve_backend(backend),
                      out_dir=None if no_save else out_dir, dtype=dtype, shapes=shapes,
                      max_failures=max_failures, progress=progress, timeout=timeout or None)
    except BackendUnavailable as exc:
        raise click.UsageError(str(exc)) from None
    for f in result.failures:
        click.echo(f.report.table())
        if f.original != f.expr:
            click.echo(f"  shrunk from: {f.original}")
        click.echo(f"  inputs: {f.data.get('inputs')}")  # printed with --no-save too
        if f.path is not None:
            again = "" if f.reproduced else " (WARNING: the saved case did not fail again)"
            click.echo(f"  saved: {f.path}  (symgrad check --backend {result.backend} {f.path}){again}")
        click.echo("")
    for data in result.slow:
        click.echo(f"TIMEOUT (> {timeout:g} s) {data['expr']}  inputs {data['inputs']}")
    if result.stopped:
        click.echo(f"note: {result.stopped}")
    click.echo(result.summary())
    sys.exit(0 if result else 1)


@main.command("mutate", epilog="""\b
Exit codes:
  0  every observable mutant was killed
  1  a mutant survived (listed: op, argument, kind)
  2  usage error (unknown op or kind, bad -k) or an invalid case file""")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--ops", "op_names", default=None, metavar="NAME,NAME,...", help="Only mutate these ops (aliases accepted).")
@click.option("--kinds", default=None, metavar="KIND,KIND,...",
              help="Mutation kinds: sign, scale, swap, ignore-g, not-differentiable-again (default all).")
@click.option("-k", "keyword", default=None, metavar="EXPR", help="Only cases whose name matches EXPR (as check -k).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="Also list each killed mutant and the case that killed it.")
def mutate(paths: tuple[str, ...], op_names: Optional[str], kinds: Optional[str], keyword: Optional[str], fmt: str,
           verbose: bool) -> None:
    """Measure how strong the cases in PATHS (default: cases/) are: plant bugs in the op table's
    VJPs (one at a time), run the cases that use the op on symgrad's tape, count the bugs caught."""
    import json

    from symgrad import mutation
    from symgrad.checking.cases import collect
    from symgrad.checking.suite import KeywordError, compile_keyword, select

    split = (lambda text: [t.strip() for t in text.split(",") if t.strip()])
    kind_list = tuple(split(kinds)) if kinds else mutation.KINDS
    try:
        mutation.mutants(split(op_names) if op_names else None, kind_list)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--kinds" if "kind" in str(exc) else "--ops") from None
    if keyword:
        try:
            compile_keyword(keyword)
        except KeywordError as exc:
            raise click.BadParameter(str(exc), param_hint="-k") from None
    cases, file_errors = collect(paths or ("cases",))
    for err in file_errors:
        click.echo(f"ERROR {err}", err=True)
    if file_errors:
        sys.exit(2)
    cases = select(cases, keyword, (), ())
    report = mutation.run(cases, split(op_names) if op_names else None, kind_list)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(report.text(verbose=verbose))
    sys.exit(0 if report else 1)


if __name__ == "__main__":  # pragma: no cover
    main()
