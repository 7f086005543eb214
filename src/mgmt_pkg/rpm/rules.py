"""rpm's rules for the values of a spec, as checks that name the option.

A check returns the value unchanged or raises InvalidInput ("--option:
reason", exit 2). Each rule is what rpm 4.18 accepts, or a safe subset of it,
confirmed by building (tests/rpm/test_rpm_roundtrip.py drives random inputs).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Optional

from mgmt_pkg.errors import InvalidInput
from mgmt_pkg.urls import url_problem

__all__ = [
    "EPOCH_MAX",
    "SOURCE_DATE_EPOCH_MAX",
    "check_evr",
    "check_license",
    "check_maintainer",
    "check_name",
    "check_script",
    "check_text",
    "check_url",
    "check_verrel",
    "is_package_name",
    "parse_integer",
    "quoted",
    "refuse",
]

# Name: alphanumerics and ".-_+"; rpm also allows "%{}", which are macros and
# so are refused here. Version/Release: alphanumerics and "._+~^". No ".." in any.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*\Z")
_VERREL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+~^]*\Z")
EPOCH_MAX = 2**31 - 1
# rpm stores times as 32-bit unsigned numbers.
SOURCE_DATE_EPOCH_MAX = 2**32 - 1
NAME_MAX = 100  # with a 64-character version and release, file names stay under 255 bytes
_SPDX_ID = re.compile(
    r"((DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+|[A-Za-z0-9.-]+\+?)\Z"
)
_MAINTAINER = re.compile(r"[^<>]*[^<>\s] <[^<>\s]+@[^<>\s]+>\Z")


def refuse(option: str, reason: str) -> InvalidInput:
    return InvalidInput(f"{option}: {reason}")


def parse_integer(option: str, text: str, maximum: int) -> int:
    """Every numeric option's one type: ASCII digits, 0..maximum.

    The length is checked before int() is called: Python refuses to convert
    more than 4,300 digits (a ValueError that would end as "internal error"),
    and a number of thousands of digits is out of range anyway.
    """
    if not (text.isascii() and text.isdigit()):
        raise refuse(option, f"{quoted(text)} is not a non-negative integer")
    significant = text.lstrip("0") or "0"
    if len(significant) > len(str(maximum)) or int(significant) > maximum:
        raise refuse(option, f"{quoted(text)} is not between 0 and {maximum}")
    return int(significant)


def quoted(text: str, limit: int = 200) -> str:
    """A value as an error message quotes it: repr, whole unless it is longer
    than any sane value (a name, a version or a path), then its start and length."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def check_text(option: str, value: str, multiline: bool = False, items: bool = False) -> str:
    """Refuse what rpm would change or drop: control characters, invalid
    UTF-8, and whitespace that rpm strips from the ends of values and lines.

    ``items``: each line will start with "-" in the spec (a %changelog entry's
    items), so a "%" or "#" at a line's start is text there, not a section or a comment.
    """
    shown = quoted(value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise refuse(option, f"{shown} is not valid UTF-8") from None
    lines = value.split("\n") if multiline else [value]
    if not value.strip():
        raise refuse(option, f"{shown} is {'blank' if value else 'empty'}")
    for number, line in enumerate(lines, 1):
        where = f"{shown}: line {number} " if multiline else f"{shown} "
        for char in line:
            # rpm keeps a tab inside a description's lines (indented lists, text from a file)
            if char == "\t" and multiline:
                continue
            if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp"):
                raise refuse(option, f"{where}contains control character {char!r}")
        if line != line.rstrip():
            raise refuse(option, f"{where}ends with whitespace, which rpm drops")
        if not multiline and line != line.lstrip():
            raise refuse(option, f"{shown} starts with whitespace, which rpm drops")
        if line.endswith("\\"):
            raise refuse(option, f"{where}ends with '\\', which rpm reads as a line continuation")
        # rpm checks both after macro expansion (and past leading blanks, as in
        # "  %if"), so no escape can help.
        if multiline and not items and line.lstrip().startswith("%"):
            raise refuse(option, f"{where}starts with '%', which rpm reads as a section")
        if multiline and not items and line.lstrip().startswith("#"):
            raise refuse(option, f"{where}starts with '#', which rpm drops as a comment")
    if multiline and not lines[-1]:
        raise refuse(option, f"{shown} ends with a blank line, which rpm drops")
    return value


def is_package_name(text: str) -> bool:
    """rpm's rule for a package's name (Name:, and what Obsoletes: may name)."""
    return bool(_NAME.match(text)) and ".." not in text


def check_name(value: str, option: str = "--name") -> str:
    """The package's own name: rpm's rule, and no "-" at the end, where it
    would run into the version ("foo--1-1.noarch.rpm" reads as "foo-" only
    by counting dashes from the right, and Fedora uses "-" only between words)."""
    if len(value) > NAME_MAX:
        raise refuse(option, f"{quoted(value)} is longer than {NAME_MAX} characters")
    if not is_package_name(value):
        raise refuse(
            option, f"{quoted(value)} is not a valid rpm name (letters, digits, '.-_+'; no '..')"
        )
    if value.endswith("-"):
        raise refuse(option, f"{quoted(value)} ends with '-', which runs into the version")
    return value


def check_verrel(value: str, option: str) -> str:
    if len(value) > 64:
        raise refuse(option, f"{quoted(value)} is longer than 64 characters")
    if not _VERREL.match(value) or ".." in value:
        raise refuse(
            option, f"{quoted(value)} is not valid (letters, digits, '._+~^'; no '-', no '..')"
        )
    return value


def check_license(value: str, option: str = "--license") -> str:
    """An SPDX expression by syntax (rpmlint and Fedora expect SPDX): ids, AND,
    OR, WITH and parentheses. The list of ids itself is not checked."""
    check_text(option, value)
    depth, want_operand = 0, True
    for token in re.findall(r"\(|\)|[^\s()]+", value):
        if token == "(" and want_operand:
            depth += 1
        elif token == ")" and not want_operand and depth > 0:
            depth -= 1
        elif token in ("AND", "OR", "WITH") and not want_operand:
            want_operand = True
        elif want_operand and _SPDX_ID.match(token):
            want_operand = False
        else:
            break
    else:
        if depth == 0 and not want_operand:
            return value
    raise refuse(option, f"{value!r} is not an SPDX expression (e.g. GPL-3.0-or-later)")


def check_evr(evr: str, option: str, whole: Optional[str] = None) -> None:
    """[epoch:]version[-release], each part by rpm's rules. Messages quote
    ``whole`` (the dependency the EVR is part of), then the part that is wrong."""
    where = f"{quoted(evr if whole is None else whole)}: "
    epoch, colon, rest = evr.rpartition(":")
    if colon:
        digits = epoch.lstrip("0") or "0"
        if not (epoch.isascii() and epoch.isdigit()):
            raise refuse(option, f"{where}the epoch {quoted(epoch)} is not a number")
        if len(digits) > len(str(EPOCH_MAX)) or int(digits) > EPOCH_MAX:
            raise refuse(option, f"{where}the epoch is not between 0 and {EPOCH_MAX}")
    version, dash, release = rest.partition("-")
    for part, value, present in (("version", version, True), ("release", release, dash)):
        if present and not value:
            raise refuse(option, f"{where}the {part} is empty")
        if present and (len(value) > 64 or not _VERREL.match(value) or ".." in value):
            raise refuse(
                option,
                f"{where}{part} {quoted(value)} is not valid "
                "(at most 64 letters, digits, '._+~^'; no '-', no '..')",
            )


def check_maintainer(value: str, option: str = "--maintainer") -> str:
    check_text(option, value)
    if not _MAINTAINER.match(value):
        raise refuse(option, f"{value!r} is not 'Name <email>'")
    if any(c in value for c in "%{}\\"):
        # It also goes into a macro definition (%packager), where an escape
        # would be expanded twice: refuse instead.
        raise refuse(option, f"{quoted(value)} contains one of % {{ }} \\")
    return value


def check_url(value: str, option: str = "--url") -> str:
    check_text(option, value)
    # rpm keeps a URL with spaces, but no tool that follows the link would.
    # A host with a dot, or an IPv6 address in brackets; the port is checked apart
    # (the regex alone let ":99999" through).
    shape = r"(https?|ftp)://(?:[^\s/\[\]]+\.[^\s/\[\]]+|\[[0-9A-Fa-f:.]+\](?::[0-9]+)?)(/\S*)?"
    if not re.fullmatch(shape, value):
        raise refuse(option, f"{quoted(value)} is not an http, https or ftp URL (without spaces)")
    problem = url_problem(value, ("http", "https", "ftp"))
    if problem is not None:
        raise refuse(option, f"{quoted(value)} is not a usable URL: {problem}")
    return value


def check_script(text: str, option: str) -> str:
    """A scriptlet body; rpm drops the whitespace at its end (files end in a newline)."""
    body = text.rstrip()
    if not body:
        raise refuse(option, "the script is empty")
    for number, line in enumerate(body.split("\n"), 1):
        # rpm finds "%if" and section names past leading blanks too.
        if line.lstrip().startswith("%"):
            raise refuse(option, f"line {number} starts with '%', which rpm reads as a section")
        bad = [c for c in line if unicodedata.category(c) in ("Cc", "Cs") and c != "\t"]
        if line.endswith("\r"):  # invisible in an editor; sh would take it as part of the line
            raise refuse(option, f"line {number} ends with '\\r' (Windows line ends): save "
                         "the file with Unix ones (dos2unix)")  # fmt: skip
        if bad:
            raise refuse(option, f"line {number} contains control character {bad[0]!r}")
        if "\ufeff" in line:  # "UTF-8 with BOM" editors: invisible, and sh's "not found"
            why = "a byte order mark, which sh reads as part of a command"
            raise refuse(option, f"line {number} holds U+FEFF, {why}: save the file as UTF-8 "
                         "without a BOM")  # fmt: skip
    return body
