"""rpm's rules for the values of a spec, as checks that name the option.

A check returns the value unchanged or raises InvalidInput ("--option:
reason", exit 2). Each rule is what rpm 4.18 accepts, or a safe subset of it,
confirmed by building (tests/rpm/test_roundtrip.py drives random inputs).
"""

from __future__ import annotations

import re
import unicodedata
from typing import List, Optional, Tuple

from mgmt_pkg.errors import InvalidInput

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
    "parse_dependency",
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


def check_text(option: str, value: str, multiline: bool = False) -> str:
    """Refuse what rpm would change or drop: control characters, invalid
    UTF-8, and whitespace that rpm strips from the ends of values and lines."""
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
        if multiline and line.lstrip().startswith("%"):
            raise refuse(option, f"{where}starts with '%', which rpm reads as a section")
        if multiline and line.lstrip().startswith("#"):
            raise refuse(option, f"{where}starts with '#', which rpm drops as a comment")
    if multiline and not lines[-1]:
        raise refuse(option, f"{shown} ends with a blank line, which rpm drops")
    return value


def check_name(value: str, option: str = "--name") -> str:
    """The package's own name: rpm's rule, and no "-" at the end, where it
    would run into the version ("foo--1-1.noarch.rpm" reads as "foo-" only
    by counting dashes from the right, and Fedora uses "-" only between words)."""
    if len(value) > NAME_MAX:
        raise refuse(option, f"{quoted(value)} is longer than {NAME_MAX} characters")
    if not _NAME.match(value) or ".." in value:
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
    if not re.fullmatch(r"(https?|ftp)://[^\s/]+\.[^\s/]+(/\S*)?", value):
        raise refuse(option, f"{quoted(value)} is not an http, https or ftp URL (without spaces)")
    return value


# Dependencies, as rpm 4.18 reads Requires:, Provides:, Conflicts: and
# Obsoletes: (build/parseReqs.c, lib/rpmds.c). A name starts with a letter,
# digit, "_" or "/" (a file); it may hold a capability in balanced parentheses
# ("perl(Foo::Bar)", "libc.so.6()(64bit)", "font(:lang=en)"), where ":" and
# "=" are part of the name. Left out, though rpm would take them: "%" (a
# macro), "{}", quotes, "\\", "#", "," (rpm splits a line on it) and anything
# outside printable ASCII, so no value can change the spec around it.
_DEP_START = re.compile(r"[A-Za-z0-9_/]")
_DEP_CHAR = re.compile(r"[A-Za-z0-9._+\-/:;@=\[\]()]")
_COMPARISON = re.compile(r"[<>=!]+")
_COMPARISONS = ("<", "<=", "=", ">=", ">")
# Rich (boolean) dependencies, rpm 4.13+: only Requires: and Conflicts: take them.
_RICH_OPS = ("and", "or", "if", "unless", "else", "with", "without")
_RICH_NESTING = 16  # far more than any real one; keeps the recursion bounded
_RICH_WORD = re.compile(r"[^ \t)]+")
# rpm's record of which operators a group holds (rpmrichParseInternal).
_NO_WITH, _NO_AND, _NO_OR = 2, 4, 8
# The tag each option fills: what it may hold depends on it.
_KINDS = {"--conflicts": "Conflicts", "--provides": "Provides", "--replaces": "Obsoletes"}


class _DependencyParser:
    """One dependency string; errors quote it whole, then say what is wrong."""

    def __init__(self, text: str, option: str) -> None:
        self.text, self.option, self.pos = text, option, 0

    def fail(self, reason: str) -> Exception:
        return refuse(self.option, f"{quoted(self.text)}: {reason}")

    def skip_blanks(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def simple(self, inside: bool) -> Tuple[str, Optional[str], Optional[str]]:
        """name [OP evr]; inside a rich dependency a ")" ends it, as does a word."""
        text, start, depth = self.text, self.pos, 0
        while self.pos < len(text) and text[self.pos] not in " \t":
            char = text[self.pos]
            if depth == 0 and (char in "<>=!" or (char == ")" and inside)):
                break
            if not _DEP_CHAR.match(char):
                raise self.fail(f"{char!r} is not allowed in a dependency")
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth < 0:
                raise self.fail("a ')' has no '(' before it")
            self.pos += 1
        name = text[start : self.pos]
        if depth:
            raise self.fail("a '(' is not closed")
        if not name:
            raise self.fail("a name is missing")
        if not _DEP_START.match(name):
            raise self.fail(f"{name!r} does not start with a letter, digit, '_' or '/'")
        blanks = self.pos
        self.skip_blanks()
        match = _COMPARISON.match(text, self.pos)
        if not match:
            self.pos = blanks
            return name, None, None
        operator = match[0]
        allowed = _COMPARISONS + (() if inside or self.option != "--depends" else ("!=",))
        if operator == "!=" and operator not in allowed:
            raise self.fail("'!=' is only for a plain --depends (as a conflict)")
        if operator not in allowed:
            raise self.fail(f"{operator!r} is not one of {' '.join(allowed)}")
        self.pos = match.end()
        self.skip_blanks()
        start = self.pos
        while self.pos < len(text) and text[self.pos] not in " \t)":
            self.pos += 1
        evr = text[start : self.pos]
        if not evr:
            raise self.fail(f"a version is missing after {operator!r}")
        if name.startswith("/"):
            raise self.fail("a file dependency cannot have a version (rpm refuses it)")
        check_evr(evr, self.option, self.text)
        return name, operator, evr

    def rich(self, nesting: int) -> Tuple[str, int]:
        """A "(...)" group at self.pos -> (rpm's spelling of it, rpm's check bits)."""
        if nesting > _RICH_NESTING:
            raise self.fail(f"rich dependencies nested more than {_RICH_NESTING} deep")
        self.pos += 1  # the "("
        operands: List[str] = []
        operators: List[str] = []
        check = 0
        while True:
            self.skip_blanks()
            if self.pos == len(self.text):
                raise self.fail("a '(' is not closed")
            if self.text[self.pos] == ")":
                after = f"after {operators[-1]!r}" if operators else "inside '()'"
                raise self.fail(f"a dependency is missing {after}")
            if self.text[self.pos] == "(":
                inner, sub = self.rich(nesting + 1)
                if operators and operators[-1] in ("if", "unless"):
                    sub &= ~(_NO_AND | _NO_OR)
                check |= sub
                operands.append(inner)
            else:
                name, operator, evr = self.simple(inside=True)
                operands.append(name if operator is None else f"{name} {operator} {evr}")
            self.skip_blanks()
            if self.pos == len(self.text):
                raise self.fail("a '(' is not closed")
            if self.text[self.pos] == ")":
                break
            match = _RICH_WORD.match(self.text, self.pos)
            word = match[0] if match else ""
            if word not in _RICH_OPS:
                raise self.fail(f"{word!r} is not one of {', '.join(_RICH_OPS)}")
            chain = operators[-1] if operators else None
            if word == "else" and chain in ("if", "unless"):
                chain = None
            if chain and word != chain:
                raise self.fail(f"'{chain}' and '{word}' need parentheses to be combined")
            if chain and word not in ("and", "or", "with"):
                raise self.fail(f"only 'and', 'or' and 'with' can be repeated, not {word!r}")
            operators.append(word)
            self.pos = match.end()
        self.pos += 1  # the ")"
        first = operators[0] if operators else None
        last = operators[-1] if operators else None
        self.rich_check(first, check)
        check |= {"if": _NO_OR, "unless": _NO_AND}.get(first or "", 0)
        if last in ("and", "or"):
            check &= ~(_NO_AND | _NO_OR)
        if last not in (None, "with", "without", "or"):
            check |= _NO_WITH
        spelled = operands[0] + "".join(f" {o} {d}" for o, d in zip(operators, operands[1:]))
        return f"({spelled})", check

    def rich_check(self, operator: Optional[str], check: int) -> None:
        """rpm's rules for where "with", "if" and "unless" may appear."""
        if operator in ("with", "without") and check & _NO_WITH:
            raise self.fail(f"{operator!r} joins names or 'or' groups only")
        if operator in ("and", "if") and check & _NO_AND:
            raise self.fail("'unless' cannot be used here (rpm asks for 'or' instead)")
        if operator in ("or", "unless") and check & _NO_OR:
            raise self.fail("'if' cannot be used here (rpm asks for 'and' instead)")


def parse_dependency(text: str, option: str) -> Tuple[str, Optional[str], Optional[str]]:
    """'name' or 'name OP [epoch:]version[-release]' -> (name, OP, evr); a rich
    dependency '(a or b >= 2)' -> (its rpm spelling, None, None).

    OP may be "!=" (fpm's spelling of a conflict); only --depends takes it,
    as Conflicts: name = evr (see PhonyPackage.create). --provides takes no
    rich dependency and --replaces (Obsoletes:) only package names, as rpm."""
    kind = _KINDS.get(option, "Requires")
    parser = _DependencyParser(text, option)
    for char in text:
        if not (" " <= char <= "~" or char == "\t"):
            raise parser.fail(f"{char!r} is not allowed in a dependency")
    parser.skip_blanks()
    if parser.pos == len(text):
        raise refuse(option, f"{quoted(text)} is empty")
    if text[parser.pos] == "(":
        if kind not in ("Requires", "Conflicts"):
            raise parser.fail(f"rpm takes rich dependencies in Requires and Conflicts, not {kind}")
        spelled, check = parser.rich(1)
        parser.rich_check("or" if kind == "Conflicts" else "and", check)
        result: Tuple[str, Optional[str], Optional[str]] = (spelled, None, None)
    else:
        result = parser.simple(inside=False)
    parser.skip_blanks()
    if parser.pos != len(text):
        raise parser.fail(
            "not one dependency ('name', 'name OP version' with OP one of < <= = >= >, "
            "or a rich dependency in parentheses)"
        )
    if kind == "Obsoletes" and not (_NAME.match(result[0]) and ".." not in result[0]):
        raise parser.fail("rpm takes only package names in Obsoletes (letters, digits, '.-_+')")
    return result


def check_script(text: str, option: str) -> str:
    """A scriptlet body; rpm drops the whitespace at its end (files end in a newline)."""
    body = text.rstrip()
    if not body:
        raise refuse(option, "the script is empty")
    for number, line in enumerate(body.split("\n"), 1):
        # rpm finds "%if" and section names past leading blanks too.
        if line.lstrip().startswith("%"):
            raise refuse(option, f"line {number} starts with '%', which rpm reads as a section")
        if any(unicodedata.category(c) in ("Cc", "Cs") and c != "\t" for c in line):
            raise refuse(option, f"line {number} contains a control character")
    return body
