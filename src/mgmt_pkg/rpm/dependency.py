"""rpm's grammar of a dependency, as a check that names the option.

``parse_dependency`` reads one value of -d/--depends, --provides, --conflicts
or --replaces as rpm 4.18 reads Requires:, Provides:, Conflicts: and
Obsoletes:, simple ("name", "name >= 1.0-1") or rich ("(a or b)"), and
returns it spelled as rpm writes it back, or raises InvalidInput (exit 2).
The other rules of a spec's values are in :mod:`mgmt_pkg.rpm.rules`.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

from mgmt_pkg.rpm.rules import check_evr, is_package_name, quoted, refuse

__all__ = ["parse_dependency"]

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
    if kind == "Obsoletes" and not is_package_name(result[0]):
        raise parser.fail("rpm takes only package names in Obsoletes (letters, digits, '.-_+')")
    return result
