"""The one error type of case files: ``file:line: case 'name': reason``."""

from __future__ import annotations

from symgrad.checking.escape import escape


class CaseError(ValueError):
    """An invalid case or case file; ``str()`` is ``file:line: case 'name': reason``."""

    def __init__(self, reason: str, file: str | None = None, line: int | None = None,
                 case: str | None = None):
        self.reason, self.file, self.line, self.case = reason, file, line, case
        super().__init__(self._format())

    def _format(self) -> str:  # escaped: a file name or reason cannot forge a line or drive the terminal
        where = escape(self.file) or ("<case>" if self.line is not None else "")
        if where and self.line is not None:
            where = f"{where}:{self.line}"
        prefix = f"{where}: " if where else ""
        if self.case is not None:
            prefix += f"case {escape(repr(self.case))}: "
        return prefix + escape(self.reason)

    def __reduce__(self) -> tuple:  # picklable (pytest-xdist, multiprocessing)
        return (CaseError, (self.reason, self.file, self.line, self.case))

