"""The agent's source as the bundle ships it: comments and docstrings blanked.

Every host of every cold run receives the bundle, and about a third of the
agent's source is prose for the people who read this repository (measured:
mgmt's own files are 277 kB deflated as written, 173 kB blanked). On a host
the prose has no reader: the code is run, and read only in a traceback, which
shows one line. So comments and docstrings are blanked, as mitogen does for
the modules it ships, and nothing else is touched: every line keeps its
number (a traceback from a host names the line in this repository), and each
file's syntax tree is checked to be the original's but for its docstrings'
text, so the shipped code is the tested code.

Not python-minifier (PyPI): it writes the program anew from its syntax tree,
which renumbers every line. A docstring becomes ``""`` (a body that is only a
docstring still has a statement); a coding declaration (PEP 263) is kept.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from typing import Iterator, List, Tuple

# PEP 263: a coding declaration on line 1 or 2 decides how the file is read.
CODING = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+")
# vermin's exemption of a line guarded for older Pythons: the bundle is checked
# for Python 3.6 as shipped (tests/packaging/test_bundle.py), so a comment that
# holds one stays whole.
VERMIN_PRAGMA = re.compile(r"\b(novermin|novm)\b")


def blank_prose(source: str, filename: str = "<source>") -> str:
    """``source`` with its comments and docstrings blanked, every line where it was.

    Line ends become "\\n", as Python reads a source file (a form feed or a
    U+2028 stays a character of its line). Raises ValueError if the source does
    not parse, or if the result would not be the same program (it never should:
    a check, not an expected outcome).
    """
    bom = "\ufeff" if source.startswith("\ufeff") else ""  # Python skips it: kept as is
    source = source[len(bom) :].replace("\r\n", "\n").replace("\r", "\n")
    lines = source.split("\n")
    try:
        comments = [
            token.start
            for token in tokenize.generate_tokens(io.StringIO(source).readline)
            if token.type == tokenize.COMMENT and not VERMIN_PRAGMA.search(token.string)
        ]
        docstrings = _docstrings(source)
    except (SyntaxError, tokenize.TokenError) as err:
        raise ValueError(f"{filename}: not Python: {err}") from None
    for row, column in comments:
        if not (row <= 2 and CODING.match(lines[row - 1])):
            lines[row - 1] = lines[row - 1][:column].rstrip()
    for first, column, last, end_column in reversed(docstrings):
        column, end_column = _chars(lines[first], column), _chars(lines[last], end_column)
        rest = lines[last][end_column:]
        if rest.strip():
            continue  # more code after it on its line (a ";"): left as written
        lines[first : last + 1] = [lines[first][:column] + '""' + rest] + [""] * (last - first)
    blanked = "\n".join(lines)
    try:
        same = _shape(blanked, filename) == _shape(source, filename)
    except SyntaxError:
        same = False
    if not same:
        raise ValueError(f"{filename}: blanking its comments and docstrings changed its code")
    return bom + blanked


def _docstrings(source: str) -> List[Tuple[int, int, int, int]]:
    """(first line index, column, last line index, end column) of each docstring,
    in order; columns in UTF-8 bytes, as the ast gives them."""
    found = []
    for node in _docstring_nodes(ast.parse(source)):
        assert node.end_lineno is not None and node.end_col_offset is not None
        found.append((node.lineno - 1, node.col_offset, node.end_lineno - 1, node.end_col_offset))
    return sorted(found)


def _docstring_nodes(tree: ast.Module) -> Iterator[ast.Constant]:
    for node in ast.walk(tree):
        kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        if isinstance(node, kinds) and node.body and _is_text(node.body[0]):
            yield node.body[0].value  # type: ignore[attr-defined]


def _chars(line: str, offset: int) -> int:
    """The ast's column ``offset`` (UTF-8 bytes into ``line``) in characters."""
    return len(line.encode("utf-8")[:offset].decode("utf-8"))


def _is_text(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _shape(source: str, filename: str) -> Tuple[str, List[object]]:
    """The syntax tree, docstrings' text left out, and the line of each node."""
    tree = ast.parse(source, filename)
    for text in list(_docstring_nodes(tree)):
        text.value = ""
    return ast.dump(tree), [getattr(node, "lineno", None) for node in ast.walk(tree)]
