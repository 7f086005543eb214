"""%files lines for real paths, escaped for rpm 4.18's layers of parsing.

A %files line is read (1) by the spec parser, which splits on whitespace
unless the name is in double quotes (inside them a backslash is literal and
a double quote ends them); the name is then macro-expanded more than once
(rpmGenPath), so no number of "%%" stands for one "%"; if it holds a glob
character (* ? [ ] { }), (2) popt splits it again on whitespace, taking
backslashes and quotes as escapes, and (3) glob() matches it. Found by building
(tests/rpm/test_rpm_names.py). So:

- a plain name goes in double quotes; one with a double quote and no
  whitespace goes bare;
- anything else is written as a glob: each glob character as a one-character
  class ("[*]"), a backslash as glob's escaped one, whitespace and quotes
  escaped for popt, and "%" and the double quote as "?" (any one character),
  which is accepted only when no other path of the package matches.

Names with control characters never get here (rpm refuses them; so does
mgmt_pkg.rpm.payload).
"""

from __future__ import annotations

import fnmatch
import re
from typing import List, Sequence

from mgmt_pkg.errors import InvalidInput
from mgmt_pkg.rpm.payload import Entry, shown

__all__ = ["files_lines", "quote_path"]

_GLOB = set("*?[]")
# What no escape spells in a glob (rpm expands "%", a quote ends the name, glob()
# expands braces even in a class): each matched by "?".
_WILDCARD = set('%"{}')


def quote_path(path: str, all_paths: Sequence[str] = ()) -> str:
    """``path`` as a %files token that names exactly that path."""
    spaced = bool(re.search(r"\s", path))
    if not (_GLOB & set(path) or _WILDCARD - {'"'} & set(path) or ('"' in path and spaced)):
        return path if '"' in path else f'"{path}"'
    pattern = []
    for char in path:
        if char in _GLOB:
            pattern.append(f"[{char}]")
        elif char == "\\":
            pattern.append("\\" * 4)  # glob's escaped backslash, each doubled for popt
        elif char in _WILDCARD:  # checked below
            pattern.append("?")
        elif char.isspace() or char == "'":
            pattern.append("\\" + char)  # popt would split or unquote here
        else:
            pattern.append(char)
    if _WILDCARD & set(path):
        _check_unique(path, all_paths)
    return '"' + "".join(pattern) + '"'


def _check_unique(path: str, all_paths: Sequence[str]) -> None:
    wildcard = "".join("?" if c in _WILDCARD else f"[{c}]" if c in "*?[" else c for c in path)
    others = [p for p in all_paths if p != path and fnmatch.fnmatchcase(p, wildcard)]
    if others:
        raise InvalidInput(
            f"{shown(path)}: rpm's %files cannot tell it from {shown(others[0])} "
            '(each % " { } in such a name is matched as any one character); rename one'
        )


def files_lines(entries: Sequence[Entry]) -> List[str]:
    """One %files line per entry: %attr always, %config(noreplace) and %dir as flagged.

    Directories that are not owned are left out: they exist in the build root
    only to hold what is listed.
    """
    paths = [e.path for e in entries]
    lines = []
    for entry in entries:
        if entry.kind == "dir" and not entry.owned:
            continue
        mode = "-" if entry.kind == "symlink" else f"{entry.mode:04o}"
        flags = [f"%attr({mode},{entry.user},{entry.group})"]
        if entry.kind == "dir":
            flags.append("%dir")
        if entry.config:
            flags.append("%config(noreplace)")
        lines.append(" ".join([*flags, quote_path(entry.path, paths)]))
    return lines
