"""Running a list of cases: which run (selection) and how (worker processes, timeouts, progress)."""

from symgrad.checking.suite.pool import DEFAULT_TIMEOUT, SuiteResult, default_jobs, prestart, resolve_backend, run_suite
from symgrad.checking.suite.selection import KeywordError, compile_keyword, select

__all__ = ["DEFAULT_TIMEOUT", "KeywordError", "SuiteResult", "compile_keyword", "default_jobs", "prestart",
           "resolve_backend", "run_suite", "select"]
