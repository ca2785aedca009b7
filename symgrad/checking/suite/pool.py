"""Running a list of cases: selection, worker processes, per-case timeouts, progress callbacks.

The CLI is a thin shell over :func:`select` and :func:`run_suite`; the library
can use them directly.

How cases run
-------------
* ``timeout=None`` (or 0) and ``jobs=1``: in this process, one after another.
* otherwise in worker processes of a :class:`concurrent.futures.ProcessPoolExecutor`
  (``forkserver`` where the platform has it, with symgrad, numpy and sympy
  preloaded in the server, else ``spawn``; never ``fork``, which is unsafe
  with threaded numpy/BLAS).  A *group* is a list of (case, backend) pairs
  sharing an expression, a mode and a backend (at most ``_GROUP_SIZE`` of
  them, so that the load still balances), run one after another by one
  worker: a worker caches its sympy work per expression, so cases that differ
  only in inputs, seed or dtype differentiate their expression once, as in a
  single process.  Cheap groups (small elementwise cases, most of a suite)
  are packed further into tasks of up to ``_PACK`` cases, smaller towards the
  end, so that the parent is not woken for every few milliseconds of work.
  With one worker, tasks are runs of up to ``_PACK`` consecutive cases, in
  input order (a heavy case, or one being run on its own, is a task by
  itself): one round trip through the parent per run rather than per case,
  which is most of a small case's cost in a worker.  All tasks are
  submitted up front, the likely costliest first; the executor keeps every
  worker fed.
* Each worker announces ``(token, pid, start time)`` on a queue when it starts
  a case (each case of a group has its own token), so the parent knows what
  runs where and since when.  A case over its ``timeout`` gets its worker
  killed (``SIGKILL``: sympy can spin in C code that no signal handler or
  exception interrupts).  That breaks the executor; the parent reports the
  overrun case as an error ``timed out after S s``, starts a fresh pool and
  resubmits the cases whose reports had not come back (those of the killed
  worker's group that had finished too: their reports died with it).  A
  worker that dies on its own (a crash, the OOM killer) is handled the same
  way, except for blame: if several cases were running, each of them is run
  again on its own (a pool of one worker, nothing else running), so that the
  death is pinned on the case that causes it; a case during which a worker
  dies twice while it runs alone is reported as an error instead of being
  retried forever.
* Reports come back in input order, identical whatever ``jobs`` is.

Backends reach workers by name (built-ins and the ``symgrad.backends`` entry
points), as an importable ``"module:attr"`` spec (see :func:`resolve_backend`),
or as a picklable :class:`~symgrad.backends.Backend` instance.  A backend
registered with :func:`symgrad.backends.register` at run time lives only in
the registering process: give it as ``"module:attr"`` to use it with worker
processes (or run with ``jobs=1, timeout=None``).
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import math
import os
import queue as _queue
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from symgrad import backends
from symgrad.checking.cases import Case
from symgrad.checking.options import Options
from symgrad.checking.report import Report
from symgrad.checking.workers import DEFAULT_TIMEOUT, context, default_jobs, prestart
from symgrad.checking.workers.lifetime import die_with_parent
from symgrad.ir.expr import is_elementwise

# the CLI starts the fork server (symgrad.checking.workers, stdlib only) before it imports this module
# the runner (and with it sympy) is imported where cases run (_run_one): a parent that hands its cases to
# workers never loads it
_RUNNER = "symgrad.checking.runner"
__all__ = ["DEFAULT_TIMEOUT", "SuiteResult", "default_jobs", "prestart", "resolve_backend", "run_suite"]

_POLL = 0.05  # seconds between checks of the start queue and deadlines
_MAX_CRASHES = 2  # a case running during this many unexplained worker deaths is an error
_GROUP_SIZE = 16  # at most this many cases sharing an expression go to a worker as one task
_PACK = 16  # cheap groups are packed into tasks of up to this many cases
_HEAVY = 1000.0  # a group whose _cost is this or more (expanded mode, for one) is a task of its own


# ===================================================================== backends


def resolve_backend(spec: Any) -> Any:
    """Make a ``"module:attr"`` backend spec usable by name in this process; return ``spec``.

    ``attr`` may be a :class:`~symgrad.backends.Backend` instance, a class or a
    factory; it is registered under the spec itself, so reports name it as the
    user wrote it.  Plain names and Backend instances are returned unchanged.
    """
    if not isinstance(spec, str) or ":" not in spec:
        return spec
    if spec in _RESOLVED:
        return spec
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise backends.BackendUnavailable(f"cannot load backend {spec!r}: {type(exc).__name__}: {exc}") from None
    if isinstance(obj, type):
        cls = obj
        backends.register(spec, lambda: _named(cls(), spec))
    elif isinstance(obj, backends.Backend):
        backends.register(spec, _named(obj, spec))
    elif callable(obj):
        backends.register(spec, lambda: _named(obj(), spec))
    else:
        raise backends.BackendUnavailable(f"backend {spec!r} is neither a Backend, a class nor a factory")
    _RESOLVED.add(spec)
    return spec


_RESOLVED: set[str] = set()


def _named(backend: Any, name: str) -> Any:
    if not getattr(backend, "name", ""):
        try:
            backend.name = name
        except AttributeError:
            pass
    return backend


# ===================================================================== running


@dataclass
class SuiteResult:
    reports: list[Report]
    seconds: float
    stopped_early: bool = False  # -x stopped the run


def _error(case: Case, options: Any, reason: str, duration: float = 0.0) -> Report:
    """The error report of a case that could not run (its own error is ``run_case``'s to report)."""
    return Report(name=case.name, status="error", file=case.file, line=case.line,
                  backend=_backend_name(options.backend), expr=case.expr, reason=reason, duration=duration)


def _backend_name(backend: Any) -> str:
    return backend if isinstance(backend, str) else getattr(backend, "name", type(backend).__name__)


def _bad(report: Report) -> bool:
    return report.status in ("fail", "error", "xpass")


def _run_one(case: Case, options: Any, parent_knows: bool = False) -> Report:
    start = time.perf_counter()
    try:
        resolve_backend(options.backend)
        if parent_knows and isinstance(options.backend, str):
            try:
                backends.get(options.backend)
            except backends.BackendUnavailable as exc:
                raise backends.BackendUnavailable(
                    f"{exc} (in a worker process: a backend registered with symgrad.backends.register() "
                    "at run time is not visible there; give it as module:attr, or run with --timeout 0 -j 1)"
                ) from None
    except Exception as exc:  # an unloadable module:attr spec is that case's error
        return _error(case, options, f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
    return importlib.import_module(_RUNNER).run_case(case, options=options)


# ---------------------------------------------------------------- worker side

_START_QUEUE: Any = None


def _init_worker(start_queue: Any, sys_path: list[str]) -> None:
    global _START_QUEUE
    _START_QUEUE = start_queue
    sys.path[:] = list(dict.fromkeys(sys_path + sys.path))
    try:  # a ctrl-C or SIGTERM belongs to the parent, which shuts the pool down
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):  # pragma: no cover
        pass
    die_with_parent()  # killed with the fork server, which dies with the symgrad process


def _work(items: list[tuple[int, Case, Any, bool]]) -> list[Report]:
    """Run a group's cases one after another, announcing each one's start; their reports, in order."""
    reports = []
    for token, case, options, parent_knows in items:
        if _START_QUEUE is not None:
            _START_QUEUE.put((token, os.getpid(), time.time()))
        reports.append(_run_one(case, options, parent_knows))
    return reports


def _kill(pid: int) -> None:
    try:
        os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    except (ProcessLookupError, PermissionError, OSError):
        pass


# ---------------------------------------------------------------- parent side


def run_suite(cases: Sequence[Case], options: Sequence[Any] | Any = None, *, jobs: int = 1,
              timeout: float | None = DEFAULT_TIMEOUT, exitfirst: bool = False,
              on_complete: Callable[[Report], None] | None = None,
              on_report: Callable[[Report], None] | None = None,
              on_start: Callable[[Case, Any, int], None] | None = None) -> SuiteResult:
    """Run every case with every :class:`~symgrad.runner.Options` in ``options`` (one per backend).

    Reports are ordered case by case, and for one case in the order of
    ``options``; the order and the reports' contents do not depend on ``jobs``.
    ``timeout`` (seconds per case; None or 0: none) makes a case that overruns
    an error.  ``exitfirst`` stops at the first fail, error or xpass in that
    order (the same prefix of reports whatever ``jobs`` is).  ``on_complete``
    sees each report as it finishes (progress displays); ``on_report`` sees
    them in the final order, as soon as all earlier ones are known.  ``on_start``
    sees each ``(case, options, slot)`` as it starts running (in a worker: when
    the parent hears of it, within ``_POLL`` seconds); ``slot`` numbers the task
    running it, whose cases run one after another, so a start in a slot ends
    the case that ran there before.
    """
    if options is None:
        options = [Options()]
    elif not isinstance(options, (list, tuple)):
        options = [options]
    tasks = [(case, opts) for case in cases for opts in options]
    timeout = float(timeout) if timeout else None
    start = time.perf_counter()
    emitter = _Emitter(len(tasks), exitfirst, on_complete, on_report)
    emitter.on_start = on_start
    if jobs <= 1 and timeout is None:
        for i, (case, opts) in enumerate(tasks):
            if on_start:
                on_start(case, opts, 0)
            emitter.add(i, _run_one(case, opts))
            if emitter.cutoff is not None:
                break
    else:
        _Pool(tasks, max(1, jobs), timeout, emitter).run()
    return SuiteResult(emitter.final(), time.perf_counter() - start, emitter.cutoff is not None
                       and emitter.cutoff < len(tasks) - 1)


class _Emitter:
    """Collects reports by index; calls back in completion order and in input order; tracks -x."""

    def __init__(self, n: int, exitfirst: bool, on_complete: Any, on_report: Any):
        self.results: list[Report | None] = [None] * n
        self.exitfirst = exitfirst
        self.cutoff: int | None = None  # index of the first bad report (with -x)
        self.next = 0
        self.on_complete, self.on_report = on_complete, on_report
        self.on_start: Callable[[Case, Any, int], None] | None = None

    def wanted(self, i: int) -> bool:
        return self.cutoff is None or i <= self.cutoff

    def add(self, i: int, report: Report) -> None:
        if not self.wanted(i):
            return
        self.results[i] = report
        if self.exitfirst and _bad(report):
            self.cutoff = i if self.cutoff is None else min(self.cutoff, i)
        if self.on_complete:
            self.on_complete(report)
        limit = len(self.results) if self.cutoff is None else self.cutoff + 1
        while self.next < limit and self.results[self.next] is not None:
            if self.on_report:
                self.on_report(self.results[self.next])
            self.next += 1

    def done(self) -> bool:
        limit = len(self.results) if self.cutoff is None else self.cutoff + 1
        return self.next >= limit

    def final(self) -> list[Report]:
        limit = len(self.results) if self.cutoff is None else self.cutoff + 1
        return [r for r in self.results[:limit] if r is not None]


class _Pool:
    """A process pool that survives killed workers: see the module docstring.

    ``tasks`` are (case, options) pairs, known by their index; a group (one
    executor task) is a list of indices.  Each time a case is submitted it
    gets a fresh token, which its worker announces when the case starts.
    """

    def __init__(self, tasks: list[tuple[Case, Any]], jobs: int, timeout: float | None, emitter: _Emitter):
        self.tasks = tasks
        self.jobs = min(jobs, max(1, len(tasks)))
        self.timeout = timeout
        self.emitter = emitter
        self.ctx = context()
        self.cost = [_cost(case) for case, _ in tasks]
        self.known = {id(opts): _known_here(opts.backend) for _, opts in tasks}
        self.todo = list(range(len(tasks)))  # indices not yet submitted to any executor
        self.alone: set[int] = set()  # indices to run in a group of their own (see _collect)
        self.isolate: set[int] = set()  # indices to run while nothing else runs (see _lost)
        self.crashes = [0] * len(tasks)
        self.token_index: dict[int, int] = {}
        self.next_token = 0
        # one executor's state (see _generation)
        self.futures: dict[cf.Future, list[int]] = {}  # group -> its cases' tokens, in order
        self.owner: dict[int, cf.Future] = {}  # token -> its group
        self.running: dict[cf.Future, tuple[int, int, float]] = {}  # group -> (token it runs, pid, start)
        self.killed: dict[int, int] = {}  # token -> pid we killed for overrunning
        self.suspects: set[int] = set()  # tokens running when last looked: those a worker death may be due to
        self.resubmit: list[int] = []  # indices to submit again in this executor (see _collect)

    def run(self) -> None:
        while self.todo and not self.emitter.done():
            isolated = [i for i in self.todo if i in self.isolate]
            # with one worker, a death while one of the isolated runs is that one's doing
            indices, jobs = (isolated, 1) if isolated else (self.todo, self.jobs)
            taken = set(indices)
            self.todo = [i for i in self.todo if i not in taken]
            self._generation(indices, jobs)

    def _groups(self, indices: list[int], jobs: int) -> list[list[int]]:
        """The wanted ``indices`` as groups sharing (expression, mode, backend), the likely costliest first
        (expanded mode, many elements), so that one big group does not start last and keep one worker busy
        while the others idle.  With one worker: runs of consecutive cases, in input order (see _runs)."""
        if jobs == 1:
            return self._runs(sorted(i for i in indices if self.emitter.wanted(i)))
        by_key: dict[Any, list[int]] = {}
        for i in sorted(i for i in indices if self.emitter.wanted(i)):
            case, opts = self.tasks[i]
            key = i if i in self.alone else (case.expr, case.mode, _backend_name(opts.backend))
            by_key.setdefault(key, []).append(i)
        size = _GROUP_SIZE
        groups = [same[k:k + size] for same in by_key.values() for k in range(0, len(same), size)]
        groups.sort(key=lambda g: (-sum(self.cost[i] for i in g), g[0]))
        return self._packed(groups, jobs)

    def _runs(self, indices: list[int]) -> list[list[int]]:
        """One worker's tasks: up to ``_PACK`` consecutive cheap cases each, in input order.  A heavy
        case, and one to be run alone or isolated (see _collect, _lost), is a task of its own."""
        tasks: list[list[int]] = []
        run: list[int] = []
        for i in indices:
            if self.cost[i] >= _HEAVY or i in self.alone or i in self.isolate:
                tasks += [run, [i]] if run else [[i]]
                run = []
                continue
            run.append(i)
            if len(run) == _PACK:
                tasks.append(run)
                run = []
        return tasks + [run] if run else tasks

    def _packed(self, groups: list[list[int]], jobs: int) -> list[list[int]]:
        """Cheap groups packed into tasks of up to ``_PACK`` cases, smaller as the end nears (the last
        tasks are single groups, so that the workers finish together).  A task per group would cost each
        cheap case a round trip through the parent, whose threads then compete with the workers for the
        CPU.  Heavy groups, and cases being run one by one (``self.alone``), stay tasks of their own."""
        tasks: list[list[int]] = []
        cheap: list[list[int]] = []
        for g in groups:
            (tasks if sum(self.cost[i] for i in g) >= _HEAVY or g[0] in self.alone else cheap).append(g)
        left, k = sum(map(len, cheap)), 0
        while k < len(cheap):
            want = min(_PACK, max(1, left // (2 * jobs)))
            task: list[int] = []
            while k < len(cheap) and (not task or len(task) + len(cheap[k]) <= want):
                task += cheap[k]
                k += 1
            tasks.append(task)
            left -= len(task)
        return tasks

    def _submit(self, executor: cf.ProcessPoolExecutor, finished: _queue.SimpleQueue, indices: list[int],
                jobs: int) -> None:
        """Submit ``indices`` as groups."""
        for group in self._groups(indices, jobs):
            tokens = list(range(self.next_token, self.next_token + len(group)))
            self.next_token += len(group)
            items = []
            for token, i in zip(tokens, group):
                self.token_index[token] = i
                case, opts = self.tasks[i]
                items.append((token, case, opts, self.known.get(id(opts), False)))
            fut = executor.submit(_work, items)
            self.futures[fut] = tokens
            self.owner.update(dict.fromkeys(tokens, fut))
            fut.add_done_callback(finished.put)

    def _generation(self, indices: list[int], jobs: int) -> None:
        """One executor's life: submit ``indices``, collect until done or the pool breaks."""
        queue = self.ctx.SimpleQueue()
        executor = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=self.ctx, initializer=_init_worker,
                                          initargs=(queue, list(sys.path)))
        self.futures, self.owner, self.running, self.killed, self.resubmit = {}, {}, {}, {}, []
        finished: _queue.SimpleQueue = _queue.SimpleQueue()  # futures as they finish (O(1), unlike cf.wait)
        try:
            self._submit(executor, finished, indices, jobs)
            # the executor wakes its manager thread before starting each worker, so the manager may not be
            # watching the last one it started and would miss its death while the others are busy (CPython
            # 3.11); one more submission, after every worker has started, wakes it again
            executor.submit(int)
            broken = started = False
            while self.futures and not self.emitter.done():
                done = []
                try:
                    done.append(finished.get(timeout=_POLL))
                    while True:
                        done.append(finished.get_nowait())
                except _queue.Empty:
                    pass
                self._drain(queue)
                self.suspects = {token for token, _, _ in self.running.values()}
                done = [f for f in done if f in self.futures]
                started = (started or bool(self.running)
                           or any(not f.cancelled() and not f.exception() for f in done))
                for fut in done:
                    broken = not self._collect(fut) or broken
                if broken:
                    if not started and not self.killed:
                        raise RuntimeError(
                            "symgrad's worker processes died before running any case; when calling "
                            "run_suite from a script, guard it with `if __name__ == '__main__':`")
                    self.todo.extend(self.resubmit)  # not submitted to this executor after all
                    self._broken()
                    break
                if self.resubmit:  # cases of a group whose reports could not come back: now one by one
                    self._submit(executor, finished, self.resubmit, jobs)
                    self.resubmit = []
                if self.emitter.cutoff is not None:
                    for fut, tokens in list(self.futures.items()):
                        if not any(self.emitter.wanted(self.token_index[t]) for t in tokens) and fut.cancel():
                            del self.futures[fut]
                self._check_deadlines()
        finally:
            self._shutdown(executor, queue)

    def _collect(self, fut: cf.Future) -> bool:
        """Hand a finished group's reports to the emitter; False if the pool broke under it."""
        tokens = self.futures.pop(fut)
        token_running = self.running.pop(fut, (None,))[0]
        try:
            reports = fut.result()
        except cf.process.BrokenProcessPool:
            self._lost(tokens, token_running)
            return False
        except Exception as exc:  # an unpicklable report, say: that case's error
            if len(tokens) > 1:  # but whose? run the group's cases one by one to find out
                self.alone.update(self.token_index[t] for t in tokens)
                self.resubmit.extend(self.token_index[t] for t in tokens)
                return True
            case, opts = self.tasks[self.token_index[tokens[0]]]
            reports = [_error(case, opts, f"{type(exc).__name__}: {exc}")]
        for token, report in zip(tokens, reports):
            self.emitter.add(self.token_index[token], report)
        return True

    def _lost(self, tokens: list[int], token_running: int | None) -> None:
        """A group's worker died: sort its cases into timed out, crashed and to-retry."""
        for token in tokens:
            i = self.token_index[token]
            case, opts = self.tasks[i]
            if token in self.killed:
                self.emitter.add(i, _error(case, opts, f"timed out after {self.timeout or 0.0:g} s", self.timeout or 0.0))
            elif token == token_running and not self.killed and len(self.suspects) > 1:
                self.isolate.add(i)  # one of several running when a worker died: retried on its own
                self.todo.append(i)
            elif token == token_running and not self.killed:
                self.crashes[i] += 1  # the only case running when a worker died on its own: the culprit?
                if self.crashes[i] >= _MAX_CRASHES:
                    self.emitter.add(i, _error(case, opts, "the worker process running this case died "
                                                           "(killed or crashed twice)"))
                else:
                    self.todo.append(i)
            else:  # not started, or finished with its report lost
                self.todo.append(i)

    def _broken(self) -> None:
        """The executor broke: settle its unfinished groups."""
        for fut in list(self.futures):
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self._collect(fut)
            else:
                self._lost(self.futures.pop(fut), self.running.pop(fut, (None,))[0])
        self.running.clear()

    def _drain(self, queue: Any) -> None:
        """Read the start announcements: a group runs the case it announced last."""
        while not queue.empty():
            token, pid, wall = queue.get()
            fut = self.owner.get(token)
            if fut in self.futures:
                self.running[fut] = (token, pid, time.monotonic() - max(0.0, time.time() - wall))
                if self.emitter.on_start:
                    self.emitter.on_start(*self.tasks[self.token_index[token]], id(fut))

    def _check_deadlines(self) -> None:
        if self.timeout is None:
            return
        now = time.monotonic()
        for token, pid, started in self.running.values():
            if token not in self.killed and now - started > self.timeout:
                self.killed[token] = pid
                _kill(pid)

    def _shutdown(self, executor: cf.ProcessPoolExecutor, queue: Any) -> None:
        for fut in self.futures:
            fut.cancel()
        if self.futures:  # stopped early (-x, ctrl-C) with groups still running: do not wait for them
            self._drain(queue)
            # every worker, not only those whose start we have heard of: one may have taken a group
            # and not yet announced it (then shutdown would wait for it, ctrl-C or not)
            pids = {pid for _, pid, _ in self.running.values()} | set(getattr(executor, "_processes", None) or ())
            for pid in pids:
                _kill(pid)
        executor.shutdown(wait=True, cancel_futures=True)


def _known_here(backend: Any) -> bool:
    """Whether this process knows a plain backend name (then a worker that does not gets a hint)."""
    if not isinstance(backend, str) or ":" in backend:
        return False
    try:
        backends.get(backend)
        return True
    except Exception:
        return False


def _cost(case: Case) -> float:
    """A rough guess of a case's run time, for scheduling only (never affects results)."""
    try:
        sizes = [math.prod(spec.shape) for spec in (case.specs or {}).values()]
        n = float(sum(sizes) or 1)
        expanded = case.mode == "expanded" or (case.mode == "auto" and case.ir is not None
                                               and not is_elementwise(case.ir))
        return (n * 1000.0 if expanded else math.log1p(n)) * case.order ** 2
    except Exception:  # pragma: no cover - a guess only
        return 0.0
