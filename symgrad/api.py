"""The library API: ``check``, ``assert_gradients`` and friends, for assertions in users' tests.

A thin shell over :func:`~symgrad.checking.runner.run_case`.  An expression is a string
(parsed) or a Python function of symgrad ops, traced once: the traced IR goes to the
runner as it is (validated as the parser validates text), never printed and parsed again.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import Any, Union

import numpy as np

from symgrad import backends
from symgrad.backends.function import FunctionBackend, describe
from symgrad.checking.cases import KEYS, Case, case_from_dict
from symgrad.checking.report import Report
from symgrad.checking.runner import Options, run_case
from symgrad.ir.expr import Expr, numpy_eval, trace, trace_inputs, variables
from symgrad.ir.parse import did_you_mean

ExprLike = Union[str, Expr, Callable[..., Any]]  # noqa: UP007

__all__ = ["GradientMismatch", "assert_gradients", "check", "check_function", "make_case"]


class GradientMismatch(AssertionError):
    """Raised by :func:`assert_gradients`; its message is the table the CLI prints."""

    def __init__(self, report: Report):
        self.report = report
        super().__init__(report.table())


def make_case(expr: ExprLike, inputs: dict[str, Any] | None = None, **kwargs: Any) -> Case:
    """A validated case from keyword arguments: case keys (``order=2``) and inputs (``a=[2., 3.]``).

    ``expr`` is an expression string, an IR tree, or a Python function of symgrad ops, traced
    once; its parameter names are the input names.  A tree is checked as it is (``case.expr``
    is its source text, for display).  Use ``inputs={...}`` for an input named like a case key.

    Args:
        expr: the expression: a string, an IR tree or a function of symgrad ops.
        inputs: inputs given as a mapping (for names that collide with a case key).

    Keyword Args:
        order: 1, 2 or 3: order k checks every order 1..k (default 1).
        wrt: the input names to differentiate (default all; the others are constants).
        expect: ``{name or "x,y": expression string or values}`` the gradients must equal.
        value: the forward output's expected value (expression string or values).
        grad_output: the ``gradient=`` of ``backward``: values, ``"random"`` or a generator
            such as ``{"normal": [0, 1]}`` (default ones).
        dtype: ``"float64"`` (default), ``"float32"``, or ``"float16"``/``"bfloat16"`` (torch, jax).
        device: ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"`` (torch, jax; skipped without that device).
        rtol: relative tolerance (default by dtype: 1e-7 for float64, 1.3e-6 for float32, 1e-3 for float16, 1.6e-2 for bfloat16).
        atol: absolute tolerance (default by dtype: 1e-7 for float64, 1e-5 for float32).
        seed: seeds the random inputs and ``grad_output`` (default 0).
        mode: ``"auto"`` (default), ``"elementwise"`` or ``"expanded"``.
        reference: ``"float"`` (default) or ``"exact"`` (mpmath, rounded once).
        mode_ad: ``"reverse"`` (default: the VJP), ``"forward"`` (the JVP, order 1) or ``"both"``.
        tangent: forward mode's tangent: values, ``"random"`` (default) or a generator, or
            ``{name: one of those}``; its shape defaults to the input's.
        name, tags, skip, xfail, description: as in a case file.
        **inputs: every other keyword is an input: a number, nested list, numpy array, tensor,
            or generator (``{"uniform": [-1, 1], "shape": [10]}``).

    Returns:
        The :class:`~symgrad.checking.cases.Case`, validated as a case file's would be.

    Raises:
        CaseError: an invalid key or input, with the reason.
        TypeError: a keyword that is neither a case key nor a name of the expression.
    """
    ir = None if isinstance(expr, str) else expr if isinstance(expr, Expr) else trace(expr)
    keys = {k: v for k, v in kwargs.items() if k in KEYS}
    data: dict[str, Any] = {"name": keys.pop("name", "check"), **keys}
    if ir is None:
        data["expr"] = expr
    data["inputs"] = {**{k: v for k, v in kwargs.items() if k not in KEYS}, **(inputs or {})}
    data["inputs"] = {k: _plain(v) for k, v in data["inputs"].items()}
    for key in ("grad_output", "value"):
        if key in data:
            data[key] = _plain(data[key])
    if "expect" in data:
        data["expect"] = {k: v if isinstance(v, str) else _plain(v) for k, v in data["expect"].items()}
    case = case_from_dict(data, ir=ir)
    assert case.ir is not None
    names = variables(case.ir) + ([] if isinstance(expr, (str, Expr)) else trace_inputs(expr))  # unused ones too
    unused = [k for k in kwargs if k not in KEYS and k not in names]
    if unused:  # most likely a misspelt case key, such as ordr=2
        raise TypeError(f"{unused[0]!r} is neither a case key ({', '.join(KEYS)}) nor a name in "
                        f"{case.expr!r}" + did_you_mean(unused[0], KEYS))
    return case


def _plain(value: Any) -> Any:
    """Tensors as the nested lists a case file would hold; real numpy arrays pass as they are."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return value
    if hasattr(value, "tolist") and not isinstance(value, (dict, str)):
        return value.tolist()
    return value


def check(expr: ExprLike, *, backend: Any = "symgrad", exact: bool | None = None,
          inputs: dict[str, Any] | None = None, **kwargs: Any) -> Report:
    """Check the gradients of ``expr`` at the given inputs; ``bool(report)`` is the verdict.

    sympy differentiates ``expr``; the backend's tape computes the same gradients; the two
    are compared element by element (see the docs' "Verdicts and tolerances").

    Example:
        >>> import symgrad
        >>> bool(symgrad.check("3*a**3 - b**2", a=[2., 3.], b=[6., 4.], order=2))
        True

    Args:
        expr: an expression string, or a Python function of symgrad ops (traced once; its
            parameter names are the input names).
        backend: the engine checked: ``"symgrad"`` (default), ``"torch"``, ``"autograd"``, a
            registered name, or a :class:`~symgrad.backends.base.Backend`.
        exact: ``True`` for the mpmath reference (default: as ``reference`` says).
        inputs: inputs given as a mapping (for names that collide with a case key).

    Keyword Args:
        order: 1, 2 or 3: order k checks every order 1..k (default 1).
        wrt: the input names to differentiate (default all; the others are constants).
        expect: ``{name or "x,y": expression string or values}`` the gradients must equal.
        value: the forward output's expected value (expression string or values).
        grad_output: the ``gradient=`` of ``backward``: values, ``"random"`` or a generator
            such as ``{"normal": [0, 1]}`` (default ones).
        dtype: ``"float64"`` (default), ``"float32"``, or ``"float16"``/``"bfloat16"`` (torch, jax).
        device: ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"`` (torch, jax; skipped without that device).
        rtol: relative tolerance (default by dtype: 1e-7 for float64, 1.3e-6 for float32, 1e-3 for float16, 1.6e-2 for bfloat16).
        atol: absolute tolerance (default by dtype: 1e-7 for float64, 1e-5 for float32).
        seed: seeds the random inputs and ``grad_output`` (default 0).
        mode: ``"auto"`` (default), ``"elementwise"`` or ``"expanded"``.
        reference: ``"float"`` (default) or ``"exact"`` (mpmath, rounded once).
        mode_ad: ``"reverse"`` (default: the VJP), ``"forward"`` (the JVP, order 1) or ``"both"``.
        tangent: forward mode's tangent: values, ``"random"`` (default) or a generator, or
            ``{name: one of those}``; its shape defaults to the input's.
        name, tags, skip, xfail, description: as in a case file.
        **inputs: every other keyword is an input: a number, nested list, numpy array, tensor,
            or generator (``{"uniform": [-1, 1], "shape": [10]}``).

    Returns:
        A :class:`~symgrad.checking.report.Report` (``status``, ``table()``, ``to_dict()``, ...).

    Raises:
        BackendUnavailable: ``backend`` is unknown or its package is not installed.
        CaseError: an invalid key or input.
    """
    if isinstance(backend, str):
        try:
            backends.get(backend)
        except backends.BackendUnavailable:
            raise  # unknown or not installed: a usage error, not a report
        except Exception:  # found but broken when built: the report's error
            pass
    case = make_case(expr, inputs, **kwargs)
    return run_case(case, options=_options(backend, exact))


@functools.lru_cache(maxsize=32)
def _cached_options(backend: str, exact: bool | None) -> Options:
    return Options(backend=backend, exact=exact)


def _options(backend: Any, exact: Any) -> Options:
    """The run's Options; for a backend by name, one shared instance (Options is frozen, building one costs)."""
    if isinstance(backend, str) and (exact is None or isinstance(exact, bool)):
        return _cached_options(backend, exact)
    return Options(backend=backend, exact=exact)


def assert_gradients(expr: ExprLike, *, backend: Any = "symgrad", exact: bool | None = None,
                     inputs: dict[str, Any] | None = None, **kwargs: Any) -> Report:
    """Like :func:`check`, but raise :class:`GradientMismatch` (an AssertionError) unless it passes.

    Example:
        >>> import symgrad
        >>> _ = symgrad.assert_gradients("x**2", x=[1., 2.], expect={"x": "2*x"})

    Args:
        expr: an expression string or a Python function of symgrad ops.
        backend: the engine checked (default ``"symgrad"``), as for :func:`check`.
        exact: ``True`` for the mpmath reference.
        inputs: inputs given as a mapping (for names that collide with a case key).

    Keyword Args:
        order: 1, 2 or 3: order k checks every order 1..k (default 1).
        wrt: the input names to differentiate (default all; the others are constants).
        expect: ``{name or "x,y": expression string or values}`` the gradients must equal.
        value: the forward output's expected value (expression string or values).
        grad_output: the ``gradient=`` of ``backward``: values, ``"random"`` or a generator
            such as ``{"normal": [0, 1]}`` (default ones).
        dtype: ``"float64"`` (default), ``"float32"``, or ``"float16"``/``"bfloat16"`` (torch, jax).
        device: ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"`` (torch, jax; skipped without that device).
        rtol: relative tolerance (default by dtype: 1e-7 for float64, 1.3e-6 for float32, 1e-3 for float16, 1.6e-2 for bfloat16).
        atol: absolute tolerance (default by dtype: 1e-7 for float64, 1e-5 for float32).
        seed: seeds the random inputs and ``grad_output`` (default 0).
        mode: ``"auto"`` (default), ``"elementwise"`` or ``"expanded"``.
        reference: ``"float"`` (default) or ``"exact"`` (mpmath, rounded once).
        mode_ad: ``"reverse"`` (default: the VJP), ``"forward"`` (the JVP, order 1) or ``"both"``.
        tangent: forward mode's tangent: values, ``"random"`` (default) or a generator, or
            ``{name: one of those}``; its shape defaults to the input's.
        name, tags, skip, xfail, description: as in a case file.
        **inputs: every other keyword is an input: a number, nested list, numpy array, tensor,
            or generator (``{"uniform": [-1, 1], "shape": [10]}``).

    Returns:
        The passing :class:`~symgrad.checking.report.Report`.

    Raises:
        GradientMismatch: the report did not pass; its message is the failure table.
    """
    report = check(expr, backend=backend, exact=exact, inputs=inputs, **kwargs)
    if not report:
        raise GradientMismatch(report)
    return report


def check_function(fn: Callable[..., Any], reference: ExprLike, *, backend: Any = None, grad_output: Any = None,
                   exact: bool | None = None, inputs: dict[str, Any] | None = None,
                   **kwargs: Any) -> Report:
    """Check a user's own function ``fn`` (its value and its gradients) against ``reference``.

    ``fn`` takes and returns the backend's tensors: a custom ``torch.autograd.Function.apply``,
    a function of symgrad ops on ``symgrad.Tensor``s, ... ``reference`` is an expression
    string whose free names are ``fn``'s parameters; sympy differentiates it.  The inputs
    and case keys (``order=2``, ``rtol=``, ``dtype=``, ``seed=``) are keyword arguments as
    for :func:`check`.  ``fn`` gets the inputs positionally in the order of its signature
    (for ``*args`` callables such as ``Function.apply``: in the order the inputs are given).

    ``grad_output`` is the ``gradient=`` of the VJP.  By default it is a random array
    (drawn from ``seed``), not ones: a backward that forgets to multiply by the incoming
    gradient is invisible with ones.  Pass ``grad_output=1.0`` for ones.

    A function that raises, returns the wrong shape, or returns something that is not a
    tensor of the backend makes the report an error saying which; a gradient that comes
    back ``None`` for an input on the graph is a failure.

    Args:
        fn: the function checked; it takes and returns the backend's tensors.
        reference: the expression ``fn`` should compute (a string or a function of symgrad ops).
        backend: the engine ``fn`` runs on (default: ``"symgrad"`` for a function written with
            symgrad, as ``import symgrad as torch`` or a ``symgrad.autograd.Function``, else ``"torch"``).
        grad_output: the incoming gradient (default: random, from ``seed``).
        exact: ``True`` for the mpmath reference.
        inputs: inputs given as a mapping (for names that collide with a case key).

    Keyword Args:
        order: 1, 2 or 3: order k checks every order 1..k (default 1).
        wrt: the input names to differentiate (default all; the others are constants).
        expect: ``{name or "x,y": expression string or values}`` the gradients must equal.
        value: the forward output's expected value (expression string or values).
        dtype: ``"float64"`` (default), ``"float32"``, or ``"float16"``/``"bfloat16"`` (torch, jax).
        device: ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"`` (torch, jax; skipped without that device).
        rtol: relative tolerance (default by dtype: 1e-7 for float64, 1.3e-6 for float32, 1e-3 for float16, 1.6e-2 for bfloat16).
        atol: absolute tolerance (default by dtype: 1e-7 for float64, 1e-5 for float32).
        seed: seeds the random inputs and ``grad_output`` (default 0).
        mode: ``"auto"`` (default), ``"elementwise"`` or ``"expanded"``.
        reference: ``"float"`` (default) or ``"exact"`` (mpmath, rounded once).
        mode_ad: ``"reverse"`` (default: the VJP), ``"forward"`` (the JVP, order 1) or ``"both"``.
        tangent: forward mode's tangent: values, ``"random"`` (default) or a generator, or
            ``{name: one of those}``; its shape defaults to the input's.
        name, tags, skip, xfail, description: as in a case file.
        **inputs: every other keyword is an input: a number, nested list, numpy array, tensor,
            or generator (``{"uniform": [-1, 1], "shape": [10]}``).

    Returns:
        A :class:`~symgrad.checking.report.Report`.
    """
    given = {**{k: v for k, v in kwargs.items() if k not in KEYS}, **(inputs or {})}
    names = _argument_names(fn, list(given))
    kwargs.setdefault("name", re.sub(r"[^A-Za-z0-9_.-]+", "", describe(fn)) or "function")
    case = make_case(reference, inputs, **kwargs)
    if grad_output is None:
        grad_output = _random_grad_output(case)
    case = make_case(reference, inputs, grad_output=_plain(grad_output), **kwargs)
    wrapped = FunctionBackend(backends.get(written_with(fn) if backend is None else backend), fn, names)
    return run_case(case, options=Options(backend=wrapped, exact=exact))


def written_with(fn: Callable[..., Any]) -> str:
    """``"symgrad"`` when ``fn`` is written with symgrad, else ``"torch"``: a function whose code names
    the symgrad module or one of its objects (``import symgrad as torch`` included), or the ``apply``
    of a ``symgrad.autograd.Function``."""
    def ours(value: Any) -> bool:
        module = value.__name__ if inspect.ismodule(value) else getattr(type(value), "__module__", "")
        if inspect.isclass(value) or inspect.isfunction(value):
            module = getattr(value, "__module__", "") or ""
        return module == "symgrad" or module.startswith("symgrad.")

    if ours(fn):  # symgrad.sin itself
        return "symgrad"
    owner = getattr(fn, "__self__", None)  # Function.apply: a method bound to the Function's class
    if inspect.isclass(owner) and any(ours(c) for c in owner.__mro__[:-1]):
        return "symgrad"
    target = inspect.unwrap(fn)
    code = getattr(target, "__code__", None)
    if code is None:
        return "torch"
    cells = {}
    for name, cell in zip(code.co_freevars, getattr(target, "__closure__", None) or ()):
        try:
            cells[name] = cell.cell_contents
        except ValueError:  # a cell not filled yet
            pass
    scope = {**getattr(target, "__globals__", {}), **cells}
    codes = [code]
    while codes:  # the function's code and the code of the lambdas and functions inside it
        c = codes.pop()
        if any(n in scope and ours(scope[n]) for n in (*c.co_names, *c.co_freevars)):
            return "symgrad"
        codes.extend(k for k in c.co_consts if inspect.iscode(k))
    return "torch"


def _random_grad_output(case: Case) -> np.ndarray:
    """Magnitudes in [0.5, 1.5], random signs, of the reference's output shape; drawn from the case's seed."""
    shape = case.output_shape
    if shape is None:  # not inferable statically: evaluate the reference
        assert case.ir is not None
        shape = np.shape(numpy_eval(case.ir, case.make_inputs()))
    rng = np.random.default_rng([case.seed, 1])  # independent of the inputs' draw
    return rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def _argument_names(fn: Callable[..., Any], given: list[str]) -> list[str]:
    """The input names in the order ``fn`` takes them: its signature, else the order given."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # builtins such as torch.tanh
        return given
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return given
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is p.empty]
    if sorted(positional) != sorted(given):
        if len(positional) == len(given) and not set(positional) & set(given):
            return given  # positional names unrelated to the inputs (torch.tanh(input)): keep the order given
        raise TypeError(f"{fn!r} takes ({', '.join(positional)}) but the inputs are "
                        f"{', '.join(given) or '(none)'}: name the inputs after its parameters")
    return positional
