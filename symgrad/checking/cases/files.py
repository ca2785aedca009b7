"""Case files on disk: reading (size-checked, UTF-8), loading a file's cases, finding case files in folders."""

from __future__ import annotations

import re
from pathlib import Path
from collections.abc import Iterable, Mapping
from typing import Any

from symgrad.checking.cases.errors import CaseError
from symgrad.checking.cases.schema import Case, load_data
from symgrad.checking.cases.yaml_loading import _load_yaml
from symgrad.ir.limits import DEFAULT, LimitExceeded, Limits


def _read_text(path: Path, limits: Limits) -> str:
    """The file's text; CaseError when too big, unreadable or not UTF-8 (checked before reading it all)."""
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            raise CaseError(str(LimitExceeded("max_file_bytes", size, limits.max_file_bytes, "file size")),
                            str(path))
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseError(f"cannot read file: {exc}", str(path)) from None


def read_data(path: Path, limits: Limits = DEFAULT) -> Any:
    """The loaded YAML; CaseError when unreadable or invalid."""
    return _load_yaml(_read_text(path, limits), str(path), limits)


def load_file(path: str | Path, limits: Limits = DEFAULT) -> tuple[list[Case], list[CaseError]]:
    """The valid cases of one file and an error per invalid case; a file-level error gives ``([], [error])``."""
    path = Path(path)
    try:
        return load_data(path, read_data(path, limits), limits)
    except CaseError as exc:
        return [], [exc]


_TOP_CASES = re.compile(r"^cases\s*:", re.MULTILINE)


def _looks_like_case_file(path: Path, limits: Limits = DEFAULT) -> tuple[bool, Any]:
    """(is a case file, loaded data or None). Unreadable files count when a line starts with ``cases:``."""
    try:
        text = _read_text(path, limits)
    except CaseError:
        try:  # too big or not UTF-8: still reported when it looks like a case file
            with path.open("rb") as f:
                head = f.read(1 << 16).decode("utf-8", errors="replace")
        except OSError:
            return False, None
        return bool(_TOP_CASES.search(head)), None
    if "cases" not in text:  # cheap: most unrelated YAML never mentions it
        return False, None
    try:
        data = _load_yaml(text, str(path), limits)
    except CaseError:
        return bool(_TOP_CASES.search(text)), None
    return isinstance(data, Mapping) and "cases" in data, data


def is_case_file(path: str | Path) -> bool:
    """Whether ``path`` is a symgrad case file: a YAML mapping with a top-level ``cases`` key.

    A file that does not parse counts when one of its lines starts with ``cases:``, so a
    broken case file is reported rather than silently skipped.
    """
    path = Path(path)
    return path.is_file() and _looks_like_case_file(path)[0]


def _yaml_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()),
                  key=lambda p: p.as_posix())


def collect(paths: Iterable[str | Path], limits: Limits = DEFAULT) -> tuple[list[Case], list[CaseError]]:
    """Cases and errors of every file and folder given (folders: ``*.yaml``/``*.yml``, recursively, sorted).

    In a folder, YAML files that are not case files (see :func:`is_case_file`) are skipped;
    a file named explicitly is always loaded.  A missing path is an error.
    """
    cases: list[Case] = []
    errors: list[CaseError] = []
    for raw in [paths] if isinstance(paths, (str, Path)) else paths:
        path = Path(raw)
        if path.is_dir():
            for file in _yaml_files(path):
                ok, data = _looks_like_case_file(file, limits)
                if not ok:
                    continue
                found, errs = load_file(file, limits) if data is None else _safe_load(file, data, limits)
                cases += found
                errors += errs
        elif path.exists():
            found, errs = load_file(path, limits)
            cases += found
            errors += errs
        else:
            errors.append(CaseError("no such file or folder", str(path)))
    return cases, errors


def _safe_load(path: Path, data: Any, limits: Limits) -> tuple[list[Case], list[CaseError]]:
    try:
        return load_data(path, data, limits)
    except CaseError as exc:
        return [], [exc]


def load_cases(*paths: str | Path, limits: Limits = DEFAULT) -> list[Case]:
    """Every case of the files and folders given; raises the first :class:`CaseError`.

    Args:
        *paths: case files and folders (folders: ``*.yaml``/``*.yml`` recursively, sorted;
            YAML files without a top-level ``cases`` list are skipped).
        limits: the size limits (:class:`~symgrad.ir.limits.Limits`) applied while reading.

    Returns:
        The validated cases, in file order.

    Raises:
        CaseError: the first invalid file or case (use :func:`collect` for all of them).
    """
    cases, errors = collect(paths, limits)
    if errors:
        raise errors[0]
    return cases
