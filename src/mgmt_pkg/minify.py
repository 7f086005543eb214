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
from typing import Dict, Iterator, List, Tuple

# PEP 263: a coding declaration on line 1 or 2 decides how the file is read.
CODING = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+")
# vermin's exemption of a line guarded for older Pythons: the bundle is checked
# for Python 3.6 as shipped (tests/packaging/test_bundle.py), so it stays.
VERMIN_PRAGMA = re.compile(r"#\s*(novermin|novm)\b")


def blank_prose(source: str, filename: str = "<source>") -> str:
    """``source`` with its comments and docstrings blanked, every line where it was.

    Raises ValueError if the result would not be the same program (it never
    should: a check, not an expected outcome).
    """
    lines = source.splitlines(keepends=True)
    cut: Dict[int, int] = {}  # line index -> column where a comment starts
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        row, column = token.start
        if token.type != tokenize.COMMENT or VERMIN_PRAGMA.match(token.string):
            continue
        if not (row <= 2 and CODING.match(lines[row - 1])):
            cut[row - 1] = column
    for index, column in cut.items():
        ending = lines[index][len(lines[index].rstrip("\r\n")) :]
        lines[index] = lines[index][:column].rstrip() + ending
    for first, column, last, end_column in reversed(_docstrings(source)):
        column, end_column = _chars(lines[first], column), _chars(lines[last], end_column)
        rest = lines[last][end_column:]
        if rest.strip():
            continue  # more code after it on its line (a ";"): left as written
        lines[first : last + 1] = [lines[first][:column] + '""' + rest] + ["\n"] * (last - first)
    blanked = "".join(lines)
    if _shape(blanked, filename) != _shape(source, filename):
        raise ValueError(f"{filename}: blanking its comments and docstrings changed its code")
    return blanked


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
