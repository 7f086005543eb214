"""A kickstart's lines as pykickstart reads them."""

from __future__ import annotations

from typing import List, Optional

__all__ = ["CountingLines"]


class CountingLines:
    """pykickstart's PutBackIterator over a file's lines, knowing the number of the current one.

    A line put back is read again next: it is not counted twice.
    """

    def __init__(self, lines: List[str]):
        self._lines = iter(lines)
        self._back: Optional[str] = None
        self.number = 0

    def __iter__(self) -> CountingLines:
        return self

    def __next__(self) -> str:
        self.number += 1
        if self._back is not None:
            line, self._back = self._back, None
            return line
        return next(self._lines)

    next = __next__

    def put(self, line: str) -> None:
        self._back = line
        self.number -= 1
