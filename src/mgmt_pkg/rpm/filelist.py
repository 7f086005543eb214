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
  which is accepted only when no other path of the package matches; and every
  component of it holds a glob character (one character made a class if need
  be), since glob() finds a component without one by stat(), which misses
  dangling symlinks and names with a backslash (see _pattern).

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


def quote_path(path: str, all_paths: Sequence[str] = (), symlink: bool = False) -> str:
    """``path`` as a %files token that names exactly that path."""
    spaced = bool(re.search(r"\s", path))
    if not (_GLOB & set(path) or _WILDCARD - {'"'} & set(path) or ('"' in path and spaced)):
        return path if '"' in path else f'"{path}"'
    if _WILDCARD & set(path):
        _check_unique(path, all_paths)
    names = path.split("/")[1:]
    patterns = [_pattern(name) for name in names]
    if symlink and not _has_glob(patterns[-1]):
        raise InvalidInput(
            f"{shown(path)}: rpm's %files cannot list this symlink (glob() would follow it, "
            "and its name has no ASCII character to match it by); rename it"
        )
    return '"/' + "/".join(patterns) + '"'


def _spelled(char: str) -> str:
    if char in _GLOB:
        return f"[{char}]"
    if char in _WILDCARD:  # checked by _check_unique
        return "?"
    if char == "\\":
        return "\\" * 4  # glob's escaped backslash, each doubled for popt
    if char.isspace() or char == "'":
        return "\\" + char  # popt would split or unquote here
    return char


def _has_glob(pattern: str) -> bool:
    return "[" in pattern or "?" in pattern


def _pattern(name: str) -> str:
    """One component of the glob, with a glob character in it where it can.

    rpm's glob (rpmio/rpmglob.c) looks up a component without one with
    stat() or opendir(): that follows a symlink (a dangling one is "not
    found") and keeps glob's escapes (a backslash is "not found"). A
    one-character class ("[x]") makes it list the directory and match
    instead. Not on a leading "." (glob's FNM_PERIOD wants it literal), nor
    on a non-ASCII character (glob matches bytes there: "[é]" is two classes);
    "!" and "^" are escaped, as "[!" and "[^" would negate the class.
    """
    spelled = [_spelled(char) for char in name]
    if not _has_glob("".join(spelled)):
        fits = [i for i, char in enumerate(name) if char.isascii() and (i or char != ".")]
        plain = [i for i in fits if name[i].isalnum()]  # the simplest class
        for where in (plain + fits)[:1]:
            char = "\\\\" + name[where] if name[where] in "!^" else spelled[where]
            spelled[where] = f"[{char}]"
    return "".join(spelled)


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
        token = quote_path(entry.path, paths, symlink=entry.kind == "symlink")
        lines.append(" ".join([*flags, token]))
    return lines
