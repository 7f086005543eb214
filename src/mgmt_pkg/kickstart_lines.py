"""A kickstart's lines as pykickstart reads them, and what a line cannot hold.

pykickstart (and anaconda) split a kickstart with str.splitlines(), which
breaks at more than \\n: what the author sees as one line can be several to
them. These checks keep the two views the same.
"""

from __future__ import annotations

import unicodedata
from typing import List, Optional

from mgmt_pkg.errors import InvalidInput

__all__ = ["BOM", "CountingLines", "check_line_characters", "odd_line_break"]

BOM = "\ufeff"


def check_line_characters(text: str, source: str) -> None:
    """InvalidInput naming ``source:LINE`` for a character a kickstart line cannot hold.

    A control character other than tab (NUL above all: no command line or
    script can carry it) passes pykickstart but not anaconda; a line or
    paragraph separator (or \\v, \\f, \\x85, a lone \\r) is a line break to
    pykickstart that an editor does not show. Lines are counted at \\n, as an
    editor counts them; \\r\\n endings are fine. A byte order mark, which
    editors on Windows write and do not show, is read by pykickstart and
    anaconda as part of the first command ("Unknown command: " and nothing
    to see): it is named as such.
    """
    for number, line in enumerate(text.split("\n"), 1):
        if BOM in line:
            raise InvalidInput(
                f"{source}:{number}: holds U+FEFF, a byte order mark, which anaconda reads as "
                "part of the line; save the file as UTF-8 without a BOM"
            )
        for char in line.removesuffix("\r"):
            category = unicodedata.category(char)
            if (category == "Cc" and char != "\t") or category in ("Zl", "Zp"):
                raise InvalidInput(
                    f"{source}:{number}: holds U+{ord(char):04X}, a control character or "
                    "line break a kickstart line cannot hold"
                )


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


def odd_line_break(text: str) -> Optional[str]:
    """``line N holds U+XXXX`` for the first break, other than \\n, that str.splitlines() splits at.

    pykickstart reads the kickstart with splitlines(): such a break would make
    a line of its own there that no one sees in the template.
    """
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the text's last newline ends a line, it starts none
    if text.splitlines() == lines:
        return None
    for number, line in enumerate(lines, 1):
        for char in line:
            if len(f"a{char}b".splitlines()) > 1:
                return f"line {number} holds U+{ord(char):04X}"
    return "a line break other than \\n"  # not reached: a split needs a break
