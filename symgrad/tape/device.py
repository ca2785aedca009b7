"""``torch.device``: symgrad's tape runs on the CPU only, so ``"cpu"`` is the one device it accepts."""

from __future__ import annotations

from typing import Any


class device:
    """``device("cpu")`` (or ``"cpu:0"``, ``device("cpu", 0)``); anything else is a clear error."""

    __slots__ = ("type", "index")

    def __init__(self, type: Any, index: int | None = None):
        if isinstance(type, device):
            type, index = type.type, type.index  # type: ignore[has-type]
        text = str(type)
        kind, _, number = text.partition(":")
        if kind != "cpu":
            raise RuntimeError(f"symgrad's tape runs on the CPU only; device {text!r} is not available")
        self.type = "cpu"
        self.index = int(number) if number else index

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"


CPU = device("cpu")


def check(where: Any) -> None:
    """Accept ``None``, ``"cpu"`` or a cpu :class:`device`; raise on any other."""
    if where is not None:
        device(where)
