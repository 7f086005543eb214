"""`mgmt-pkg kickstart render` on bad templates, variables and outputs: exit 2, one line."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

URL = "http://10.0.0.1/os"


def render(*args: str, cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", "kickstart", "render", *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=cwd,
    )  # fmt: skip


def assert_one_line(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("mgmt-pkg: error: "), done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr


def test_a_template_that_includes_itself(tmp_path: Path):
    (tmp_path / "loop.ks.j2").write_text('{% include "loop.ks.j2" %}\n')
    done = render("loop.ks.j2", cwd=tmp_path)
    assert_one_line(done, "loop.ks.j2: the includes never end: loop.ks.j2:1 -> loop.ks.j2")


def test_templates_that_include_each_other(tmp_path: Path):
    (tmp_path / "main.ks.j2").write_text('text\n{% include "a.ks.j2" %}\n')
    (tmp_path / "a.ks.j2").write_text('{% include "b.ks.j2" %}\n')
    (tmp_path / "b.ks.j2").write_text('# b\n{% include "a.ks.j2" %}\n')
    done = render(str(tmp_path / "main.ks.j2"))
    assert_one_line(done, "main.ks.j2:2 -> a.ks.j2:1 -> b.ks.j2:2 -> a.ks.j2")


def test_a_macro_that_calls_itself(tmp_path: Path):
    (tmp_path / "m.ks.j2").write_text("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}\n")
    assert_one_line(render(str(tmp_path / "m.ks.j2")), "m.ks.j2: rendering recurses without end")


@pytest.mark.parametrize("included", [False, True], ids=["template", "included"])
def test_a_template_that_is_not_utf8(tmp_path: Path, included: bool):
    bad = tmp_path / "bad.ks.j2"
    bad.write_bytes(b"text\n\xff\xfetext\n")
    top = bad
    if included:
        top = tmp_path / "top.ks.j2"
        top.write_text('text\n{% include "bad.ks.j2" %}\n')
    assert_one_line(
        render(str(top)), f"template {bad}:2: not UTF-8 text (byte 5); save it as UTF-8"
    )


def test_a_choice_whose_default_is_not_a_choice(tmp_path: Path):
    template = tmp_path / "mode.ks.j2"
    template.write_text('{%- set mode = param("mode", ["a", "b"], "c") -%}\ntext\n')
    done = render(str(template))
    assert_one_line(done, f"{template}: declares mode with default 'c', which is not one of a, b")


def test_a_typed_default_that_does_not_fit(tmp_path: Path):
    template = tmp_path / "host.ks.j2"
    template.write_text('{%- set h = param("hostname", "hostname", "not a host") -%}\ntext\n')
    assert_one_line(render(str(template)), "declares hostname with default 'not a host'")


def test_a_variable_given_twice(tmp_path: Path):
    output = tmp_path / "x.ks"
    done = render("minimal", "--var", f"url={URL}", "--var", "url=http://10.0.0.2/os",
                  "-o", str(output))  # fmt: skip
    assert_one_line(done, "--var url: given twice")
    assert not output.exists()


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("", "--output: the path is empty"),
        ("nodir/x.ks", "--output nodir/x.ks: its directory nodir does not exist"),
        ("{tmp}", "is a directory; give a file name"),
    ],
    ids=["empty", "no-folder", "folder"],
)
def test_an_output_that_cannot_be_written(tmp_path: Path, output: str, message: str):
    done = render("minimal", "--var", f"url={URL}", "-o", output.format(tmp=tmp_path), cwd=tmp_path)
    assert_one_line(done, message)
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_is_not_a_regular_file_is_not_replaced(tmp_path: Path):
    """Written by a rename, a device such as /dev/null would be replaced: a FIFO stands in."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = render("minimal", "--var", f"url={URL}", "-o", str(fifo))
    assert_one_line(done, f"--output {fifo}: exists and is not a regular file")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert list(tmp_path.iterdir()) == [fifo]


# Python raising inside a template: the template's file and line, the real cause.
RUNTIME_ERRORS = {
    "concat": ('text\n{{ "a" + 1 }}\n', "te.ks.j2:2: TypeError: can only concatenate str"),
    "zerodiv": ("text\n\n{{ 1/0 }}\n", "te.ks.j2:3: ZeroDivisionError: division by zero"),
    "require-no-type": (
        '{% set u = require("url") %}\n',
        "te.ks.j2:1: TypeError: Params.require() missing 1 required positional argument: 'kind'",
    ),
    # fail() said only "mgmt-pkg: error: 1": no template, no line
    "fail": ("text\n\n{{ fail(1) }}\n", "te.ks.j2:3: 1"),
    "fail-in-a-macro": (
        '{% macro no() %}\n{{ fail("not here") }}\n{% endmacro %}\ntext\n{{ no() }}\n',
        "te.ks.j2:2: not here",
    ),
    "attribute-of-undefined": (
        '{% set u = require("url", "url") %}\n{{ u.nope.deeper }}\n',
        "te.ks.j2:2: 'str object' has no attribute 'nope'",
    ),
}


@pytest.mark.parametrize("case", list(RUNTIME_ERRORS))
def test_a_python_error_in_a_template_names_its_line(tmp_path: Path, case: str):
    text, message = RUNTIME_ERRORS[case]
    (tmp_path / "te.ks.j2").write_text(text)
    done = render("te.ks.j2", "--var", f"url={URL}", cwd=tmp_path)
    assert_one_line(done, message)


def test_a_python_error_in_an_included_template_names_that_file(tmp_path: Path):
    (tmp_path / "main.ks.j2").write_text('text\n{% include "sub/part.ks.j2" %}\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "part.ks.j2").write_text("# part\n{{ 1/0 }}\n")
    done = render(str(tmp_path / "main.ks.j2"))
    assert_one_line(done, "sub/part.ks.j2:2: ZeroDivisionError")


def test_fail_in_an_included_template_names_that_file(tmp_path: Path):
    (tmp_path / "main.ks.j2").write_text('text\n{% include "part.ks.j2" %}\n')
    (tmp_path / "part.ks.j2").write_text('# part\n{{ fail("no disk given") }}\n')
    done = render(str(tmp_path / "main.ks.j2"))
    assert done.stderr == "mgmt-pkg: error: part.ks.j2:2: no disk given\n"


def test_an_undeclared_variable_is_named_with_its_line(tmp_path: Path):
    (tmp_path / "te.ks.j2").write_text("text\nnetwork --hostname={{ hostname }}\n")
    done = render("te.ks.j2", cwd=tmp_path)
    assert_one_line(done, "te.ks.j2:2: uses 'hostname' without declaring it")


@pytest.mark.parametrize("top_given", ["by-path", "by-name"])
def test_a_syntax_error_in_an_included_template_names_that_file(tmp_path: Path, top_given: str):
    """It was put on the including template, with the included file's line number."""
    (tmp_path / "top.ks.j2").write_text('text\n{% include "parts/disk.ks.j2" %}\n')
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "disk.ks.j2").write_text("# disks\nzerombr\n{% endfor %}\n")
    top = str(tmp_path / "top.ks.j2") if top_given == "by-path" else "top.ks.j2"
    done = render(top, cwd=tmp_path)
    assert_one_line(done, "mgmt-pkg: error: parts/disk.ks.j2:3: Encountered unknown tag 'endfor'")


def test_a_syntax_error_in_the_template_itself_names_it_as_given(tmp_path: Path):
    (tmp_path / "top.ks.j2").write_text("text\n\n{{ foo( }}\n")
    done = render(str(tmp_path / "top.ks.j2"))
    assert_one_line(done, f"mgmt-pkg: error: {tmp_path / 'top.ks.j2'}:3: unexpected '}}'")


def test_a_missing_included_template_names_the_include(tmp_path: Path):
    """It said only 'template part.ks.j2: cannot read: ...', not which file wanted it."""
    (tmp_path / "top.ks.j2").write_text('text\n{% include "parts/disk.ks.j2" %}\n')
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "disk.ks.j2").write_text('# disks\n\n{% include "raid.ks.j2" %}\n')
    done = render("top.ks.j2", cwd=tmp_path)
    assert_one_line(done, "mgmt-pkg: error: parts/disk.ks.j2:3: template raid.ks.j2: not found in ")
