"""Case files on disk: reading (size-checked, UTF-8), loading a file's cases, finding case files in folders."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from symgrad.checking.cases.errors import CaseError
from symgrad.checking.cases.schema import Case, load_data
from symgrad.checking.cases.yaml_loading import _load_yaml
from symgrad.ir.limits import DEFAULT, LimitExceeded, Limits


def _kind(mode: int) -> str:
    for test, word in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return word
    return "not a regular file"


def _read_bytes(path: Path, limits: Limits, head: int | None = None) -> bytes:
    """At most ``max_file_bytes`` bytes of a regular file (``head``: only that many); CaseError otherwise.

    Symlinks are followed, then anything but a regular file (a FIFO would block, ``/dev/zero`` never
    ends) is refused before it is read; the size is checked on what is read, not on ``st_size``.
    """
    try:
        real = path.resolve(strict=True)
        info = os.stat(real)
        if not stat.S_ISREG(info.st_mode):
            shown = f" (a link to {real})" if real != path.absolute() else ""
            raise CaseError(f"cannot read file: {_kind(info.st_mode)}{shown}, not a regular file", str(path))
        if head is None and info.st_size > limits.max_file_bytes:  # a big st_size is believed; a small one is not
            raise CaseError(str(LimitExceeded("max_file_bytes", info.st_size, limits.max_file_bytes, "file size")),
                            str(path))
        # O_NONBLOCK: should a FIFO be swapped in after the check, opening it does not wait for a writer
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise CaseError("cannot read file: not a regular file", str(path))
            want = limits.max_file_bytes + 1 if head is None else head
            data = f.read(want)
    except OSError as exc:
        raise CaseError(f"cannot read file: {exc.strerror or exc}", str(path)) from None
    except RuntimeError as exc:  # a symlink loop (Path.resolve)
        raise CaseError(f"cannot read file: {exc}", str(path)) from None
    if head is None and len(data) > limits.max_file_bytes:
        raise CaseError(str(LimitExceeded("max_file_bytes", f"more than {limits.max_file_bytes} bytes",
                                          limits.max_file_bytes, "file size")), str(path))
    return data


def _read_text(path: Path, limits: Limits) -> str:
    """The file's text; CaseError when too big, unreadable, not a regular file or not UTF-8."""
    data = _read_bytes(path, limits)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        hint = _utf16_hint(data)
        raise CaseError(f"cannot read file: {exc}{hint}", str(path)) from None


def _utf16_hint(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:64]:
        return " (it looks like UTF-16 or UTF-32: save it as UTF-8)"
    return ""


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
            raw = _read_bytes(path, limits, head=1 << 16)
        except CaseError:
            return True, None  # not readable at all: reported (load_file names the reason)
        heads = [raw.decode("utf-8", errors="replace")]
        if _utf16_hint(raw):
            heads += [raw.decode(enc, errors="replace") for enc in ("utf-16", "utf-32")]
        return any(_TOP_CASES.search(h) for h in heads), None
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


def _yaml_files(folder: Path) -> tuple[list[Path], list[CaseError]]:
    """The ``*.yaml``/``*.yml`` entries under ``folder`` (symlinked folders are not entered), sorted,
    and an error for every sub-folder that cannot be listed (never skipped silently)."""
    errors: list[CaseError] = []

    def unreadable(exc: OSError) -> None:
        errors.append(CaseError(f"cannot read folder: {exc.strerror or exc}", exc.filename or str(folder)))

    found = [Path(root) / name for root, _dirs, names in os.walk(folder, onerror=unreadable)
             for name in names if name.endswith((".yaml", ".yml"))]
    return sorted(found, key=lambda p: p.as_posix()), errors


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
            files, folder_errors = _yaml_files(path)
            errors += folder_errors
            for file in files:
                ok, data = _looks_like_case_file(file, limits)
                if not ok:
                    continue
                found, errs = load_file(file, limits) if data is None else _safe_load(file, data, limits)
                cases += found
                errors += errs
        elif path.exists() or path.is_symlink():
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
