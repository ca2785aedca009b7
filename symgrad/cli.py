"""The ``symgrad`` command: ``check`` runs case files, ``grad`` checks one expression."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import sys
import time
from typing import Any

import click
import yaml

from symgrad._lazy import lazy

# the modules behind the commands, loaded when a command first uses them (see symgrad._lazy)
np = lazy("numpy")
_api = lazy("symgrad.api")
_backends = lazy("symgrad.backends")
_cases = lazy("symgrad.checking.cases")
_formats = lazy("symgrad.checking.formats")
_html = lazy("symgrad.checking.html")
_fuzzing = lazy("symgrad.fuzzing")
_limits = lazy("symgrad.ir.limits")
_mutation = lazy("symgrad.mutation")
_options = lazy("symgrad.checking.options")
_ops = lazy("symgrad.ir.ops")
_plot = lazy("symgrad.plot")
_report = lazy("symgrad.checking.report")
_runner = lazy("symgrad.checking.runner")
_suite = lazy("symgrad.checking.suite")
_workers = lazy("symgrad.checking.workers")  # stdlib only: used before numpy is loaded

# symgrad.ir.precision.PRECISIONS (spelled out: --help loads no numpy); float16 and bfloat16 run on
# the engines that declare them (torch, jax) and are skipped with the reason on the others
DTYPE_CHOICES = ["float64", "float32", "float16", "bfloat16"]


def _device(value: str | None) -> str | None:
    """A --device value: cpu, cuda or cuda:N (the case key's spelling)."""
    import re

    if value is not None and not re.fullmatch(r"cpu|cuda(?::[0-9]{1,3})?", value):
        raise click.BadParameter(f"expected cpu, cuda or cuda:N, got {value!r}", param_hint="--device")
    return value

EXIT_CODES = """\b
Exit codes:
  0  every case passed (skips and expected failures allowed)
  1  a gradient mismatched, or an expected failure passed
  2  usage error, invalid case file, or a case that errored or timed out
130  interrupted (ctrl-C, SIGINT)
143  terminated (SIGTERM); workers are stopped as for ctrl-C"""

EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


GRAD_EXIT_CODES = """\b
Exit codes:
  0  every compared element matched (undefined elements are listed, not compared)
  1  a gradient or the value mismatched
  2  usage error: the expression does not parse, a bad --at, an unknown backend,
     or nothing could be compared (every element undefined)"""


class _Group(click.Group):
    """``symgrad --help`` lists each command's whole one-line summary, wrapped, never cut at '...'."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, cmd.get_short_help_str(limit=10_000)) for name, cmd in
                ((n, self.get_command(ctx, n)) for n in self.list_commands(ctx)) if cmd is not None and not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _backend(name: str, hint: str = "--backend") -> str:
    """``name`` when it names a usable backend; else one usage error (exit 2) before any case runs."""
    try:
        _backends.get(_suite.resolve_backend(name))
    except _backends.BackendUnavailable as exc:  # unknown, not installed, or an unimportable module:attr
        raise click.BadParameter(str(exc), param_hint=hint) from None
    except Exception:  # found but broken when built: each case reports it as its error, with the traceback
        pass
    return name


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where ctrl-C would be, so that it cleans up the same way."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


class _Main(_Group):
    """The command group: an interrupted run exits 130 (SIGINT) or 143 (SIGTERM), not 1 (a mismatch)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            previous = signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError, AttributeError):  # not the main thread, or no SIGTERM
            previous = None
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            click.echo("\nAborted!" if not isinstance(exc, _Terminated) else "\nTerminated.", err=True)
            ctx.exit(EXIT_TERMINATED if isinstance(exc, _Terminated) else EXIT_INTERRUPTED)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="symgrad")
def main() -> None:
    """Check reverse-mode automatic differentiation against exact symbolic derivatives."""


class _Jobs(click.ParamType):
    name = "N|auto"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        if str(value).strip().lower() == "auto":
            return _workers.default_jobs()
        try:
            n = int(value)
        except ValueError:
            self.fail(f"expected a number of workers or 'auto', got {value!r}", param, ctx)
        if n < 1:
            self.fail(f"needs at least 1 worker, got {n}", param, ctx)
        return n


def _parse_limits(values: tuple[str, ...]) -> Any:
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
        return _limits.DEFAULT.with_overrides(**overrides)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--limit") from None


def _use_color(no_color: bool, stream: Any) -> bool:
    if no_color or os.environ.get("NO_COLOR"):
        return False
    return _isatty(stream)


def _no_disk_cache() -> None:
    """SYMGRAD_CACHE=0 for this command (symgrad/symbolic/diskcache.py reads it), restored after it."""
    old = os.environ.get("SYMGRAD_CACHE")
    os.environ["SYMGRAD_CACHE"] = "0"
    click.get_current_context().call_on_close(
        lambda: os.environ.pop("SYMGRAD_CACHE") if old is None else os.environ.update(SYMGRAD_CACHE=old))


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
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit", "html"]), default="text",
              show_default=True, help="Report format; html: one self-contained page with plots of each failure.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report to this file instead of stdout.")
@click.option("--rtol", type=float, default=None, help="Override every case's rtol.")
@click.option("--atol", type=float, default=None, help="Override every case's atol.")
@click.option("--dtype", type=click.Choice(DTYPE_CHOICES), default=None, help="Override every case's dtype.")
@click.option("--device", default=None, metavar="cpu|cuda|cuda:N", callback=lambda c, p, v: _device(v),
              help="Override every case's device (torch, jax); without a GPU, cuda cases are skipped.")
@click.option("--exact", is_flag=True, default=None, help="Reference from mpmath at 50 digits, rounded once.")
@click.option("--ad", type=click.Choice(["reverse", "forward", "both"]), default=None,
              help="Override every case's mode_ad: check the VJP (reverse), the JVP (forward: order 1; "
                   "expect and higher orders are not checked) or both. A backend without forward mode skips.")
@click.option("--limit", "limits", multiple=True, metavar="NAME=N",
              help="Raise a size limit, e.g. --limit max_nodes=10000 (repeatable).")
@click.option("--no-color", is_flag=True, help="No colour (also: the NO_COLOR environment variable).")
@click.option("--no-cache", is_flag=True, help="Compile every derivative afresh: no disk cache (also: SYMGRAD_CACHE=0).")
@click.option("-v", "--verbose", is_flag=True, help="Show every case and tracebacks of errors.")
def check(paths: tuple[str, ...], backends: tuple[str, ...], keyword: str | None, tags: tuple[str, ...],
          skip_tags: tuple[str, ...], exitfirst: bool, jobs: int, timeout: float, fmt: str, output: str | None,
          rtol: float | None, atol: float | None, dtype: str | None, device: str | None, exact: bool | None,
          limits: tuple[str, ...], no_color: bool, verbose: bool, ad: str | None = None, no_cache: bool = False) -> None:
    """Run every case in the case files and folders PATHS (default: cases/).

    Text reports print each failure's table and a summary line; --format json
    or junit write machine-readable reports, html one page with plots of each
    failure (to stdout, or --output FILE).
    Progress and colour appear only on a terminal.
    """
    start = time.perf_counter()
    if no_cache:  # an environment variable, so that the workers (forked from here) see it too
        _no_disk_cache()
    _workers.prestart(jobs, timeout, main=True)  # first: the workers' imports overlap with ours and with reading the case files

    lim = _parse_limits(limits)
    for name in backends:
        _backend(name)
    if keyword:
        try:
            _suite.compile_keyword(keyword)
        except _suite.KeywordError as exc:
            raise click.BadParameter(str(exc), param_hint="-k") from None
    skip = tuple(t.strip() for item in skip_tags for t in item.split(",") if t.strip())

    stdout = sys.stdout  # (CliRunner redirects it too)
    to_stdout = output is None
    text = fmt == "text"
    tty = _isatty(stdout)
    color = text and to_stdout and _use_color(no_color, stdout)
    progress = _formats.Progress(0, stdout, color=_use_color(no_color, stdout), enabled=False)
    out_lines: list[str] = []

    def emit(line: str, styled: str | None = None) -> None:
        """A line of the text report: to stdout (around the progress line) or kept for --output."""
        if not text:
            return
        if to_stdout:
            with progress.lock:  # the progress line's own thread redraws it
                progress.clear()
                click.echo(styled if styled is not None and color else line, color=color)
                progress.draw()
        else:
            out_lines.append(line)

    cases, file_errors = _cases.collect(paths or ("cases",), limits=lim)
    for err in file_errors:
        if text and to_stdout:
            emit(f"ERROR {err}", _formats.style_status("ERROR", "error", color) + f" {err}")
        else:
            click.echo(f"ERROR {err}", err=True)
            if text:
                out_lines.append(f"ERROR {err}")
    cases = _suite.select(cases, keyword, tags, skip)
    options = [_options.Options(backend=b, exact=exact, rtol=rtol, atol=atol, dtype=dtype, device=device, limits=lim,
                               arrays=False)
               for b in (backends or ("symgrad",))]
    if ad:  # forward mode (issue 18): replaces each case's mode_ad
        options = [dataclasses.replace(o, ad=ad) for o in options]
    progress = _formats.Progress(len(cases) * len(options), stdout, color=_use_color(no_color, stdout),
                                enabled=text and tty)

    def on_report(report: Any) -> None:
        if report.status in ("fail", "error", "xpass"):
            emit(report.table(verbose=verbose), _formats.styled_table(report, verbose, color))
        elif verbose:
            line = report.summary_line()
            head, sep, rest = line.partition(" ")
            emit(line, _formats.style_status(head, report.status, color) + sep + rest)
        if not text and report.status == "error" and verbose:
            click.echo(report.table(verbose=True), err=True)

    try:
        result = _suite.run_suite(cases, options, jobs=jobs, timeout=timeout or None, exitfirst=exitfirst,
                           on_complete=progress.update, on_report=on_report, on_start=progress.start)
    finally:
        progress.clear()
        progress.enabled = False
    reports = result.reports
    seconds = time.perf_counter() - start
    code = _report.exit_code(reports, len(file_errors))
    if text:
        if result.stopped_early:
            emit("stopped after the first failure (-x)")
        if file_errors:
            n = len(file_errors)
            emit(f"{n} invalid case file{'s' if n != 1 else ''} or case{'s' if n != 1 else ''} (see above)")
        summary = _report.summarize(reports, seconds)
        emit(summary, _formats.styled_summary(summary, reports, color))
        body = "\n".join(out_lines) + "\n" if out_lines else ""
    elif fmt == "json":
        body = _formats.to_json(reports, file_errors, seconds, code)
    elif fmt == "html":  # the failures run once more here, keeping the arrays their plots need
        tasks = [(case, opts) for case in cases for opts in options]
        body = _html.to_html(reports, file_errors, seconds, code, tags={(c.file, c.name): c.tags for c in cases},
                             details=_html.rerun_with_arrays(reports, tasks))
    else:
        body = _formats.to_junit(reports, file_errors, seconds)
    if output is not None:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(body)
        except OSError as exc:
            click.echo(f"symgrad: cannot write {output}: {exc}", err=True)
            sys.exit(2)
        if not text:
            click.echo(_report.summarize(reports, seconds), err=True)
    elif not text:
        stdout.write(body)
        stdout.flush()
    sys.exit(code)


def _parse_at(values: tuple[str, ...]) -> dict[str, Any]:
    """``NAME=V1,V2,...`` or ``NAME=[[1,2],[3,4]]`` (a nested list, read as YAML data, never evaluated)."""
    inputs: dict[str, Any] = {}
    for item in values:
        name, sep, numbers = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=V1,V2,... or NAME=[[V,V],[V,V]], got {item!r}", param_hint="--at")
        if numbers.strip().startswith("["):
            inputs[name.strip()] = _nested_list(numbers)
            continue
        try:
            parsed = [float(v) for v in numbers.split(",")]
        except ValueError:
            raise click.BadParameter(f"not a list of numbers: {numbers!r}", param_hint="--at") from None
        inputs[name.strip()] = parsed[0] if len(parsed) == 1 else parsed
    return inputs


def _nested_list(text: str) -> Any:
    def numbers_only(value: Any) -> bool:
        if isinstance(value, list):
            return bool(value) and all(numbers_only(v) for v in value)
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    if not numbers_only(value):
        raise click.BadParameter(f"not a nested list of numbers: {text!r}", param_hint="--at")
    return value


@main.command(epilog=GRAD_EXIT_CODES)
@click.argument("expr")
@click.option("--at", "at", multiple=True, metavar="NAME=V1,V2,...",
              help="An input's values (repeatable); a 2-D input as NAME=\"[[1,2],[3,4]]\".")
@click.option("--grad-output", default=None, metavar="V1,V2,...", help="The gradient= passed to backward.")
@click.option("--backend", default="symgrad", show_default=True, metavar="NAME|MODULE:ATTR",
              help="Backend to check: a name, or module:attr (a Backend instance, class or factory).")
@click.option("--dtype", type=click.Choice(DTYPE_CHOICES), default="float64", show_default=True)
@click.option("--order", type=click.IntRange(1, 3), default=1, show_default=True)
def grad(expr: str, at: tuple[str, ...], grad_output: str | None, backend: str, dtype: str, order: int) -> None:
    """Print EXPR's value, sympy's derivatives, the tape's gradients and the verdict."""

    kwargs: dict[str, Any] = {"dtype": dtype, "order": order}
    if grad_output is not None:
        kwargs["grad_output"] = [float(v) for v in grad_output.split(",")]
    _backend(backend)
    try:
        case = _api.make_case(expr, _parse_at(at), **kwargs)
    except _cases.CaseError as exc:
        raise click.UsageError(exc.reason) from None  # one expression: no case name to show
    report = _runner.run_case(case, backend=_suite.resolve_backend(backend))
    if report.status in ("error", "skip"):  # nothing was compared
        click.echo(f"{report.status.upper()}: {report.reason}")
        sys.exit(2)

    def show(prefix: str, value: Any) -> None:  # a 2-D array's rows stay aligned under the first
        click.echo(prefix + str(value).replace("\n", "\n" + " " * len(prefix)))

    with np.printoptions(precision=10):
        show(f"value      {expr} = ", report.value)
        for seq, g in report.gradients.items():
            label = "d/d" + " d/d".join(seq)
            click.echo(f"{label:<10} sympy: {g.formula}")
            show(f"{'':<10} sympy: ", g.reference)
            show(f"{'':<10} tape:  ", g.tape)
            if np.any(g.undefined):
                click.echo(f"{'':<10} undefined at {int(np.sum(g.undefined))} of {np.size(g.undefined)} "
                           f"elements (sympy's derivative is nan there): not compared")
    undefined = [c for c in report.comparisons if getattr(c, "undefined", 0)]
    verdict = f"PASS ({report.mode}, {report.backend})"
    if undefined:
        verdict += "; undefined: " + ", ".join(f"{c.name} {c.undefined}/{c.size}" for c in undefined)
    click.echo(report.table() if report.status != "pass" else verdict)
    sys.exit(0 if report else 1)


@main.command("ops")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def ops_command(fmt: str) -> None:
    """List every op of the expression language, straight from the op table."""
    rows: list[dict[str, Any]] = []
    for op in _ops.public_ops():
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
@click.option("--backend", default="symgrad", show_default=True, metavar="NAME|MODULE:ATTR",
              help="Backend to check: a name, or module:attr (a Backend instance, class or factory).")
@click.option("--dtype", type=click.Choice(DTYPE_CHOICES), default="float64", show_default=True)
def plot_command(expr: str, wrt: str, range_: tuple[float, float], at: tuple[str, ...], points: int, output: str,
                 backend: str, dtype: str) -> None:
    """Plot f, sympy's f', the tape's f' and the ULP error over a sweep of one input.

    Kinks (relu, abs, maximum, ... at their non-differentiable points) and points
    where the derivative is undefined are marked.
    """
    if importlib.util.find_spec("matplotlib") is None:
        click.echo('symgrad plot needs matplotlib: pip install "symgrad[plot]"', err=True)
        sys.exit(2)

    _backend(backend)
    lo, hi = range_
    if not lo < hi:
        raise click.BadParameter(f"LO must be below HI, got {lo:g} {hi:g}", param_hint="--range")
    try:
        data = _plot.compute(expr, wrt, lo, hi, _parse_scalars(at), points=points, backend=_suite.resolve_backend(backend),
                       dtype=dtype)
    except (_cases.CaseError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    try:
        _plot.render(data, output)
    except _plot.MatplotlibMissing as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    kinks = ", ".join(f"{name} at {z:.6g}" for z, name in data.kinks) or "none"
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
@click.option("--dtype", type=click.Choice(DTYPE_CHOICES), default="float64", show_default=True)
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda|cuda:N",
              callback=lambda c, p, v: _device(v), help="Where the engine's tensors live (torch, jax).")
@click.option("--shape", "shape_texts", multiple=True, metavar="SHAPE",
              help="Input shape (repeatable): 'scalar', '3', '2,3'. Default: scalar, 3 and 2,3.")
@click.option("--max-failures", type=click.IntRange(min=1), default=5, show_default=True,
              help="Stop after this many root causes (a shrunk failure's ops; repeats are grouped).")
@click.option("--order", type=click.IntRange(1, 3), default=1, show_default=True, help="Derivative order checked.")
@click.option("--range", "range_text", default=None, metavar="LO,HI",
              help="Draw input values from [LO, HI] (default -3,3), e.g. -100,100.")
@click.option("--known", "known_ops", multiple=True, metavar="OP[,OP...]",
              help="A known bug to step past: a shrunk failure using only these ops is counted as known, "
                   "not failed (repeatable).")
@click.option("--exclude-ops", "exclude_ops", default=None, metavar="NAME,NAME,...",
              help="Never generate these ops, not even in domain guards.")
@click.option("--timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds per check (0: none); a check that times out is listed, not failed.")
@click.option("-v", "--verbose", is_flag=True, help="Print every checked expression and its verdict.")
def fuzz(count: int, seed: int, max_depth: int, op_names: str | None, backend: str,
                 out_dir: str, no_save: bool, dtype: str, device: str, shape_texts: tuple[str, ...],
                 max_failures: int, order: int, range_text: str | None, known_ops: tuple[str, ...], exclude_ops: str | None,
                 timeout: float, verbose: bool) -> None:
    """Check random expressions from the op table; shrink failures with hypothesis and save them."""
    if importlib.util.find_spec("hypothesis") is None:  # fuzzing needs it: say so before starting
        raise click.UsageError("symgrad fuzz needs hypothesis: pip install hypothesis") from None

    try:
        table = _fuzzing.resolve_ops(op_names)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ops") from None
    shapes = tuple(_parse_shape(t) for t in shape_texts) or _fuzzing.DEFAULT_SHAPES
    extra: dict[str, Any] = {"order": order}
    if device != "cpu":
        extra["device"] = device
    for hint, key, text in (("--known", "known_ops", ",".join(known_ops)), ("--exclude-ops", "exclude_ops", exclude_ops)):
        if text:
            try:
                extra[key] = _fuzzing.resolve_ops(text)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint=hint) from None
    if range_text is not None:
        try:
            extra["value_range"] = _fuzzing.check_range([float(v) for v in range_text.split(",")])
        except ValueError as exc:
            raise click.BadParameter(f"expected LO,HI with LO < HI, got {range_text!r} ({exc})",
                                     param_hint="--range") from None

    def progress(result: Any) -> None:  # a FuzzResult
        if verbose:
            expr, verdict = result.history[-1]
            click.echo(f"{verdict.upper():9} {expr}")

    try:
        result = _fuzzing.fuzz(count=count, seed=seed, max_depth=max_depth, ops=table, backend=_suite.resolve_backend(backend),
                      out_dir=None if no_save else out_dir, dtype=dtype, shapes=shapes,
                      max_failures=max_failures, progress=progress, timeout=timeout or None, **extra)
    except (_backends.BackendUnavailable, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    for f in result.failures:
        click.echo(f.report.table())
        click.echo(f"  cause: {f.cause}" + (f" ({f.repeats} shrunk failures)" if f.repeats > 1 else ""))
        if f.original != f.expr:
            click.echo(f"  shrunk from: {f.original}")
        click.echo(f"  inputs: {f.data.get('inputs')}")  # printed with --no-save too
        if f.path is not None:
            again = "" if f.reproduced else " (WARNING: the saved case did not fail again)"
            click.echo(f"  saved: {f.path}  (symgrad check --backend {result.backend} {f.path}){again}")
        if f.save_error:
            click.echo(f"  not saved: {f.save_error}", err=True)
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
def mutate(paths: tuple[str, ...], op_names: str | None, kinds: str | None, keyword: str | None, fmt: str,
           verbose: bool) -> None:
    """Measure how strong the cases in PATHS (default: cases/) are: plant bugs in the op table's
    VJPs (one at a time), run the cases that use the op on symgrad's tape, count the bugs caught."""

    split = (lambda text: [t.strip() for t in text.split(",") if t.strip()])  # noqa: E731
    kind_list = tuple(split(kinds)) if kinds else _mutation.KINDS
    try:
        _mutation.mutants(split(op_names) if op_names else None, kind_list)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--kinds" if "kind" in str(exc) else "--ops") from None
    if keyword:
        try:
            _suite.compile_keyword(keyword)
        except _suite.KeywordError as exc:
            raise click.BadParameter(str(exc), param_hint="-k") from None
    cases, file_errors = _cases.collect(paths or ("cases",))
    for err in file_errors:
        click.echo(f"ERROR {err}", err=True)
    if file_errors:
        sys.exit(2)
    cases = _suite.select(cases, keyword, (), ())
    report = _mutation.run(cases, split(op_names) if op_names else None, kind_list)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(report.text(verbose=verbose))
    sys.exit(0 if report else 1)


if __name__ == "__main__":  # pragma: no cover
    main()
