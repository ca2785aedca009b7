"""pytest plugin: symgrad case files as test items, options and fixtures.

Installed with the package through the ``pytest11`` entry point, so ``pip install symgrad``
is enough::

    pytest cases/                      # one test item per case: cases/tutorial.yaml::tutorial-Q
    pytest cases/ -m tutorial          # tags are markers
    pytest cases/ --symgrad-backend torch --symgrad-dtype float32
    pytest cases/ -n auto              # pytest-xdist: collection is deterministic

Collection follows pytest's documented non-Python collection (``pytest_collect_file``, a
:class:`pytest.File` per case file, a :class:`pytest.Item` per case).  Only YAML files that are
symgrad case files (:func:`symgrad.cases.is_case_file`: a top-level mapping with a ``cases``
key) are collected; a CI config or any other YAML is never opened as a test and never breaks
collection.

* An invalid case **file** is a collection error for that file (pytest then stops before
  running anything, as for a Python module that fails to import, unless
  ``--continue-on-collection-errors`` is given).
* An invalid **case** in a valid file is an item that errors at setup with the
  :class:`~symgrad.cases.CaseError` message; the other cases of the file run.
* ``skip:`` is pytest's skip, ``xfail:`` pytest's strict xfail (an unexpected pass fails, as
  ``symgrad check`` counts it), a backend lacking an op skips the item, ``tags:`` are markers.

Ini options (``[tool.pytest.ini_options]``, ``pytest.ini``, ...) mirror the command-line ones;
the command line wins.  ``symgrad_paths`` lists case folders: a bare ``pytest`` adds them to
the folders it runs, and YAML case files elsewhere are then only collected when a path on the
command line holds them.
"""

from __future__ import annotations

import sys

import pytest

# Assertion rewriting must be registered before the module is imported.
if "symgrad.api" not in sys.modules:  # pragma: no branch - guarded: never warn on re-import
    pytest.register_assert_rewrite("symgrad.api")

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from symgrad._lazy import lazy

# the heavy modules (numpy, sympy) load only when a case file or fixture needs them (see symgrad._lazy)
_api = lazy("symgrad.api")
_backends = lazy("symgrad.backends")
_cases = lazy("symgrad.checking.cases")
_limits = lazy("symgrad.ir.limits")
_runner = lazy("symgrad.checking.runner")
_suite = lazy("symgrad.checking.suite")

if TYPE_CHECKING:
    from symgrad.checking.cases import Case, CaseError
    from symgrad.checking.report import Report
    from symgrad.checking.runner import Options

__all__ = ["CaseFile", "CaseItem", "CaseMismatch", "CaseRunError"]

YAML_SUFFIXES = (".yaml", ".yml")
DTYPES = ("float64", "float32", "float16", "bfloat16")  # the 16-bit ones on torch and jax
DEFAULT_BACKEND = "symgrad"

_OPTIONS = pytest.StashKey["Options"]()
_ROOTS = pytest.StashKey[Optional[list]]()  # None: every case file pytest visits is collected  # noqa: UP045
_MARKERS = pytest.StashKey[set]()


# ---------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("symgrad", "symgrad: gradient checks against sympy")
    group.addoption("--symgrad-backend", dest="symgrad_backend", default=None, metavar="NAME|MODULE:ATTR",
                    help="tape backend the case files and the symgrad_check fixture use "
                         f"(default: ini symgrad_backend, else {DEFAULT_BACKEND!r}).")
    group.addoption("--symgrad-exact", dest="symgrad_exact", action="store_true", default=None,
                    help="reference from mpmath at high precision, rounded once, for every case.")
    group.addoption("--symgrad-rtol", dest="symgrad_rtol", type=float, default=None, metavar="RTOL",
                    help="override every case's rtol.")
    group.addoption("--symgrad-atol", dest="symgrad_atol", type=float, default=None, metavar="ATOL",
                    help="override every case's atol.")
    group.addoption("--symgrad-dtype", dest="symgrad_dtype", choices=DTYPES, default=None,
                    help="override every case's dtype.")
    parser.addini("symgrad_backend", "symgrad: tape backend (like --symgrad-backend).", default="")
    parser.addini("symgrad_exact", "symgrad: exact (mpmath) references for every case (like --symgrad-exact).",
                  type="bool", default=False)
    parser.addini("symgrad_rtol", "symgrad: override every case's rtol (like --symgrad-rtol).", default="")
    parser.addini("symgrad_atol", "symgrad: override every case's atol (like --symgrad-atol).", default="")
    parser.addini("symgrad_dtype", "symgrad: override every case's dtype (like --symgrad-dtype).", default="")
    parser.addini("symgrad_paths", "symgrad: folders of case files; a bare `pytest` runs them too, and "
                  "case files elsewhere are collected only when named on the command line.",
                  type="paths", default=[])


def _tolerance(config: pytest.Config, name: str) -> float | None:
    value = config.getoption(f"symgrad_{name}")
    if value is None:
        text = str(config.getini(f"symgrad_{name}") or "").strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            raise pytest.UsageError(f"ini symgrad_{name}: not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise pytest.UsageError(f"symgrad {name} must be a non-negative number, got {value!r}")
    return float(value)


def _resolve_options(config: pytest.Config) -> Options:
    backend = config.getoption("symgrad_backend") or str(config.getini("symgrad_backend") or "").strip()
    backend = backend or DEFAULT_BACKEND
    exact = True if (config.getoption("symgrad_exact") or config.getini("symgrad_exact")) else None
    dtype = config.getoption("symgrad_dtype") or str(config.getini("symgrad_dtype") or "").strip() or None
    if dtype is not None and dtype not in DTYPES:
        raise pytest.UsageError(f"ini symgrad_dtype: must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if backend != DEFAULT_BACKEND:  # check the name now: one clear error, not one per case
        try:
            # module:attr (a Backend instance, class or factory) is registered under that spelling, as
            # `symgrad check --backend module:attr` does; in each xdist worker too (each resolves its options)
            backend = _suite.resolve_backend(backend)
            _backends.get(backend)
        except _backends.BackendUnavailable as exc:
            raise pytest.UsageError(f"--symgrad-backend: {exc}") from None
    return _runner.Options(backend=backend, exact=exact, rtol=_tolerance(config, "rtol"),
                   atol=_tolerance(config, "atol"), dtype=dtype, arrays=False)  # items keep their reports


def _options(config: pytest.Config) -> Options:
    if _OPTIONS not in config.stash:
        config.stash[_OPTIONS] = _resolve_options(config)
    return config.stash[_OPTIONS]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "symgrad: a symgrad YAML case (every collected case has it)")
    config.stash[_MARKERS] = _registered_markers(config)
    config.stash[_OPTIONS] = _resolve_options(config)
    _configure_paths(config)


def pytest_report_header(config: pytest.Config) -> str | None:
    opts = config.stash.get(_OPTIONS, None)
    if opts is None or (opts.backend == DEFAULT_BACKEND and opts.exact is None and opts.rtol is None
                        and opts.atol is None and opts.dtype is None):
        return None
    parts = [f"backend={opts.backend}"]
    parts += [f"{k}={getattr(opts, k)}" for k in ("exact", "rtol", "atol", "dtype") if getattr(opts, k) is not None]
    return "symgrad: " + ", ".join(parts)


# ---------------------------------------------------------------- where case files are collected


def _configure_paths(config: pytest.Config) -> None:
    """``symgrad_paths``: extend a bare run's arguments and restrict YAML collection to them."""
    folders = [Path(p) for p in config.getini("symgrad_paths")]
    if not folders:
        config.stash[_ROOTS] = None
        return
    invocation = Path(config.invocation_params.dir)
    explicit = config.args_source == pytest.Config.ArgsSource.ARGS
    given = [_arg_path(a, invocation) for a in config.args]
    if not explicit:  # bare `pytest` (testpaths or the current folder): run the case folders too
        for folder in folders:
            if not folder.is_dir():
                config.issue_config_time_warning(
                    pytest.PytestConfigWarning(f"symgrad_paths: no such folder: {folder}"), stacklevel=2)
                continue
            if not any(_within(folder, g) for g in given):
                config.args.append(str(folder))
    config.stash[_ROOTS] = folders + (given if explicit else [])


def _arg_path(arg: str, invocation: Path) -> Path:
    path = Path(str(arg).split("::", 1)[0])
    return (path if path.is_absolute() else invocation / path).resolve()


def _within(path: Path, root: Path) -> bool:
    path, root = path.resolve(), root.resolve()
    return path == root or root in path.parents


def _collectable(config: pytest.Config, file_path: Path) -> bool:
    roots = config.stash.get(_ROOTS, None)
    return roots is None or any(_within(file_path, r) for r in roots)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> CaseFile | None:
    if file_path.suffix not in YAML_SUFFIXES:
        return None
    if not _collectable(parent.config, file_path):
        return None

    if not _cases.is_case_file(file_path):  # CI configs, docker-compose.yml, ...: never collected
        return None
    return CaseFile.from_parent(parent, path=file_path)


# ---------------------------------------------------------------- collection nodes


def _display_path(config: pytest.Config, path: Path) -> str:
    """The file as the user names it: relative to where pytest was invoked when inside it."""
    try:
        return os.path.relpath(path, config.invocation_params.dir) if _within(
            path, Path(config.invocation_params.dir)) else str(path)
    except ValueError:  # another drive
        return str(path)


def _registered_markers(config: pytest.Config) -> set:
    return {line.split(":", 1)[0].split("(", 1)[0].strip() for line in config.getini("markers")}


class CaseFile(pytest.File):
    """A symgrad case file: one :class:`CaseItem` per case, in the order of the file."""

    def collect(self) -> Iterator[CaseItem]:
        shown = _display_path(self.config, self.path)
        try:  # what load_file does, keeping a file-level error apart from the errors of single cases
            cases, errors = _cases.load_data(self.path, _cases.read_data(self.path), _limits.DEFAULT)
        except _cases.CaseError as exc:  # the whole file is invalid: a collection error for this file only
            raise self.CollectError(f"invalid symgrad case file: {_cases.CaseError(exc.reason, shown, exc.line)}") from None
        entries: list[tuple[int, int, Any]] = []
        for i, case in enumerate(cases):
            case.file = shown
            entries.append((case.line or 0, i, case))
        for i, err in enumerate(errors):
            entries.append((err.line or 0, len(cases) + i, _cases.CaseError(err.reason, shown, err.line, err.case)))
        used: set[str] = set()
        for _, _, entry in sorted(entries, key=lambda e: (e[0], e[1])):  # the order of the file
            if isinstance(entry, _cases.CaseError):
                name = entry.case or "invalid-case"
                if name in used or entry.case is None:  # node ids stay unique
                    name = f"{name}@line{entry.line}"
                used.add(name)
                yield CaseItem.from_parent(self, name=name, error=entry)
            else:
                used.add(entry.name)
                yield CaseItem.from_parent(self, name=entry.name, case=entry)


def _skip_here(reason: str) -> BaseException:
    """pytest.skip's exception, reported at the case (reportinfo) rather than in this module."""
    try:
        return pytest.skip.Exception(reason, _use_item_location=True)  # what skip markers do
    except TypeError:  # a pytest without the keyword: the location is this module
        return pytest.skip.Exception(reason)


class CaseMismatch(Exception):
    """A case's gradients (or values) do not match: ``args[0]`` is the failure table, a string."""

    def __init__(self, report: Report, verbose: bool = False):
        super().__init__(report.table(verbose=verbose))
        self.report = report


class CaseRunError(Exception):
    """A case could not be run (an exception inside symgrad or the backend): reason and traceback."""

    def __init__(self, report: Report, verbose: bool = False):
        super().__init__(report.table(verbose=verbose))
        self.report = report


class CaseItem(pytest.Item):
    """One case of a case file, run by :func:`symgrad.runner.run_case` with the session's options."""

    def __init__(self, *, case: Case | None = None, error: CaseError | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.case = case
        self.error = error
        self.report: Report | None = None
        self.add_marker("symgrad")
        if case is None:
            return
        for tag in case.tags:
            self._add_tag(tag)
        # the case's own skip/xfail, else the one its per-backend maps give the session's backend,
        # exactly as `symgrad check` picks them (run_case)
        backend = _options(self.config).backend
        name = backend if isinstance(backend, str) else backend.name
        skip = case.skip or case.skip_on.get(name)
        xfail = case.xfail or case.xfail_on.get(name)
        if skip:
            self.add_marker(pytest.mark.skip(reason=skip))
        if xfail:  # strict: an unexpected pass fails, as `symgrad check` counts it; errors stay errors
            self.add_marker(pytest.mark.xfail(reason=xfail, strict=True, raises=CaseMismatch))

    def _add_tag(self, tag: str) -> None:
        if not tag or tag.startswith("_") or tag in {"skip", "skipif", "xfail", "parametrize", "usefixtures"}:
            return  # not usable as a marker name; the tag still reaches the report
        seen = self.config.stash.setdefault(_MARKERS, set())
        if tag not in seen:  # tags are data: register them so --strict-markers accepts them
            self.config.addinivalue_line("markers", f"{tag}: symgrad case tag")
            seen.add(tag)
        self.add_marker(tag)

    @property
    def line(self) -> int | None:
        if self.case is not None:
            return self.case.line
        return self.error.line if self.error is not None else None

    def setup(self) -> None:
        if self.error is not None:  # an invalid case: an error of this item only
            pytest.fail(f"invalid symgrad case: {self.error}", pytrace=False)

    def runtest(self) -> None:
        assert self.case is not None
        verbose = (self.config.getoption("verbose") or 0) > 0
        report = _runner.run_case(self.case, options=_options(self.config))
        self.report = report
        if report.status in ("pass", "xpass"):  # xpass: pytest's xfail marker reports it
            return
        if report.status == "skip":  # the case's skip, or a backend lacking an op
            raise _skip_here(report.reason or "skipped")
        if report.status in ("fail", "xfail"):  # xfail: pytest's xfail marker reports it
            raise CaseMismatch(report, verbose)
        raise CaseRunError(report, verbose)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, (CaseMismatch, CaseRunError)):
            return str(excinfo.value)  # a plain string survives pytest-xdist's report serialisation
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.line
        return self.path, (line - 1 if line else 0), f"symgrad case: {self.name}"


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def symgrad_backend(pytestconfig: pytest.Config) -> str:
    """The backend name of the session (``--symgrad-backend`` / ini ``symgrad_backend``)."""
    backend = _options(pytestconfig).backend
    return backend if isinstance(backend, str) else backend.name


@pytest.fixture
def symgrad_check(pytestconfig: pytest.Config) -> Callable[..., Report]:
    """:func:`symgrad.assert_gradients` bound to the session's backend, exactness and tolerances.

    ``symgrad_check("3*a**3 - b**2", a=[2., 3.], b=[6., 4.])`` returns the passing
    :class:`~symgrad.report.Report` or raises :class:`~symgrad.GradientMismatch` (an
    AssertionError whose message is the failure table).  Keywords given in the call win over the
    session's settings.
    """
    opts = _options(pytestconfig)

    def check(expr: Any, **kwargs: Any) -> Report:
        __tracebackhide__ = True
        kwargs.setdefault("backend", opts.backend)
        if opts.exact is not None:
            kwargs.setdefault("exact", opts.exact)
        for key in ("rtol", "atol", "dtype"):
            if getattr(opts, key) is not None:
                kwargs.setdefault(key, getattr(opts, key))
        try:
            return _api.assert_gradients(expr, **kwargs)
        except _api.GradientMismatch as exc:  # raised again here: the traceback ends at the test's call
            raise _api.GradientMismatch(exc.report) from None

    return check
