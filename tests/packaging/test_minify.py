"""The agent's source as the bundle ships it: prose blanked, every line where it was."""

from __future__ import annotations

import ast
import io
import tokenize
import zipfile
from pathlib import Path

import pytest

import mgmt
from mgmt_pkg.bundle import build_bundle
from mgmt_pkg.minify import blank_prose

CASES = [
    # (what, source, shipped)
    ("a comment after code", "x = 1  # why\n", "x = 1\n"),
    ("a comment line", "# why\nx = 1\n", "\nx = 1\n"),
    ("a hash inside a string", "x = '# not a comment'  # one\n", "x = '# not a comment'\n"),
    ("a hash in an f-string", "y = f'{x} #'\n", "y = f'{x} #'\n"),
    ("a one-line docstring", 'def f():\n    """Doc."""\n    return 1\n',
     'def f():\n    ""\n    return 1\n'),
    ("a body that is only a docstring", 'class E(Exception):\n    """Doc."""\n',
     'class E(Exception):\n    ""\n'),
    ("a docstring of three lines", '"""One.\n\nThree."""\nimport os\n', '""\n\n\nimport os\n'),
    ("text before it that is not ASCII", 'def f(a="§"):\n    """§ doc."""\n',
     'def f(a="§"):\n    ""\n'),
    ("code after it on its line", 'def f():\n    """Doc."""; return 1\n',
     'def f():\n    """Doc."""; return 1\n'),
    ("a string that is no docstring", 'x = 1\n"""Not a docstring."""\n',
     'x = 1\n"""Not a docstring."""\n'),
    ("a coding declaration", "# -*- coding: utf-8 -*-\nx = 1  # why\n",
     "# -*- coding: utf-8 -*-\nx = 1\n"),
    ("an async function", 'async def f():\n    """Doc."""\n', 'async def f():\n    ""\n'),
    ("a vermin pragma", "gc.freeze()  # novermin\n", "gc.freeze()  # novermin\n"),
    ("a vermin pragma after another", "f()  # noqa: F401 novermin\n",
     "f()  # noqa: F401 novermin\n"),
    ("a form feed", "\x0c\nlong_name = 1\ny = 2  # c\n", "\x0c\nlong_name = 1\ny = 2\n"),
    ("a form feed before a docstring", '\x0c\ndef f():\n    """Doc."""\n',
     '\x0c\ndef f():\n    ""\n'),
    ("a line separator in a comment", "x = 1  # a\u2028b\n", "x = 1\n"),
    ("a byte order mark", '\ufeff"""Doc."""\nx = 1  # c\n', '\ufeff""\nx = 1\n'),
    ("CRLF line ends", 'x = 1  # c\r\ndef f():\r\n    """A\r\n    B."""\r\n',
     'x = 1\ndef f():\n    ""\n\n'),
    ("no newline at the end", "x = 1  # c", "x = 1"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "source", "shipped"), CASES, ids=[c[0] for c in CASES])
def test_prose_is_blanked_and_code_kept(what, source, shipped):
    assert blank_prose(source) == shipped, what


@pytest.mark.parametrize("source", ["def f(:\n", "x = '''open\n"])
def test_a_file_that_is_not_python_is_a_value_error_naming_it(source):
    with pytest.raises(ValueError, match=r"^m\.py: not Python"):
        blank_prose(source, "m.py")


def _comments(source: str) -> list:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [token.string for token in tokens if token.type == tokenize.COMMENT]


def _docstrings(source: str) -> list:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return [
        ast.get_docstring(node)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, kinds) and ast.get_docstring(node)
    ]


def test_the_bundle_ships_each_line_of_code_where_the_repository_has_it(tmp_path):
    """A traceback from a host names the line in this repository."""
    source = Path(mgmt.__file__).parent
    bundle = build_bundle(tmp_path / "mgmt").path
    with zipfile.ZipFile(bundle) as archive:
        shipped = {
            name[len("site-packages/") :]: archive.read(name).decode("utf-8")
            for name in archive.namelist()
            if name.startswith("site-packages/mgmt/") and name.endswith(".py")
        }
    assert len(shipped) > 50
    for name, text in shipped.items():
        original = (source.parent / name).read_text("utf-8").splitlines()
        lines = text.splitlines()
        assert len(lines) == len(original), name
        for number, (line, was) in enumerate(zip(lines, original), start=1):
            kept = line == "" or line.strip() == '""' or was.startswith(line)
            assert kept, f"{name}:{number}: {line!r} is not the repository's {was!r}"
        pragmas = [c for c in _comments(text) if "novermin" in c]
        assert _comments(text) == pragmas and _docstrings(text) == [], name


def test_the_agent_never_reads_a_docstring():
    """The bundle ships none: code that read one would run otherwise on a host."""
    source = Path(mgmt.__file__).parent
    readers = [
        f"{path.relative_to(source)}:{number}"
        for path in source.rglob("*.py")
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1)
        if "__doc__" in line or "getdoc" in line
    ]
    assert readers == []


def test_a_module_that_cannot_ship_fails_the_build_naming_it(tmp_path):
    import shutil

    from mgmt_pkg.errors import MgmtPkgError

    package = tmp_path / "mgmt"
    shutil.copytree(Path(mgmt.__file__).parent, package)
    (package / "broken.py").write_text("def f(:\n")
    with pytest.raises(MgmtPkgError, match=r"broken\.py: not Python"):
        build_bundle(tmp_path / "out" / "mgmt", package_dir=package)
    assert not (tmp_path / "out" / "mgmt").exists()
