"""What --noop shows for file content: case table of old/new content and the expected diff."""

from __future__ import annotations

import pytest
from helpers import make_init

from mgmt.resources.base import fill_params
from mgmt.resources.file import FileRes
from mgmt.resources.filediff import MAX_COMPARED, MAX_LINES, content_diff

CASES = [
    (b"a\nb\n", b"a\nc\n", "--- /f\n+++ /f (new)\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"),
    (b"", b"x\n", "--- /f\n+++ /f (new)\n@@ -0,0 +1 @@\n+x\n"),
    (b"a", b"b", "--- /f\n+++ /f (new)\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n"
                 "+b\n\\ No newline at end of file\n"),
    (b"\x00bin", b"text\n", "Binary files /f and /f (new) differ"),
    (b"\xff\xfe", b"text\n", "Binary files /f and /f (new) differ"),
    (b"x" * (MAX_COMPARED + 1), b"y",
     f"/f: {MAX_COMPARED + 1} bytes -> 1 bytes (too large to diff)"),
    # Shown escaped, never sent to the terminal as they are: an ESC sequence, a
    # carriage return that would overwrite the line, a line break that is not \n.
    (b"", b"\x1b[31mred\tx\n", "--- /f\n+++ /f (new)\n@@ -0,0 +1 @@\n+\\x1b[31mred\tx\n"),
    (b"", b"a\r\nb\rc\n", "--- /f\n+++ /f (new)\n@@ -0,0 +1,3 @@\n+a\\r\n+b\\r\n+c\n"),
    ("a\u2028b\u202ec".encode(), b"",
     "--- /f\n+++ /f (new)\n@@ -1,2 +0,0 @@\n-a\\u2028\n-b\\u202ec\n"
     "\\ No newline at end of file\n"),
]  # fmt: skip


@pytest.mark.parametrize("old, new, expected", CASES)
def test_content_diff(old, new, expected):
    assert content_diff("/f", old, new) == expected


def test_long_diffs_are_cut_and_counted():
    old = "".join(f"{n}\n" for n in range(1000)).encode()
    out = content_diff("/f", old, b"").splitlines()
    assert len(out) == MAX_LINES + 1
    assert out[-1].startswith("... ") and out[-1].endswith(" more lines")


def test_a_file_too_large_to_diff_is_named_with_its_real_size(watcher, tmp_path, mgmt_log):
    """Only the start of the file is read to compare: its size was given as that
    start's, MAX_COMPARED + 1, whatever the file held."""
    path = tmp_path / "big"
    path.write_bytes(b"x" * (3 * MAX_COMPARED + 5))
    res = FileRes("big", fill_params(FileRes, {"path": str(path), "content": "small\n"}))
    res.setup(make_init(watcher, tmp_path))
    assert res.check_apply(False) is False
    said = f"{path}: {3 * MAX_COMPARED + 5} bytes -> 6 bytes (too large to diff)"
    assert [note.get("diff") for note in res.notes] == [said]
    assert said in mgmt_log.getvalue()
    assert path.stat().st_size == 3 * MAX_COMPARED + 5  # noop: untouched


def test_noop_shows_what_a_file_not_there_yet_would_hold(watcher, tmp_path, mgmt_log):
    """Only "state: absent -> exists" was said: not what would be written."""
    path = tmp_path / "new"
    res = FileRes("new", fill_params(FileRes, {"path": str(path), "content": "one\ntwo\n"}))
    res.setup(make_init(watcher, tmp_path))
    assert res.check_apply(False) is False
    [state, content] = res.notes
    assert (state["field"], state["wanted"], state["actual"]) == ("state", "exists", "absent")
    assert (content["field"], content["wanted"], content["actual"]) == ("content", "8 bytes", None)
    assert content["diff"].splitlines()[-2:] == ["+one", "+two"]
    assert "+two" in mgmt_log.getvalue()
    assert not path.exists()  # noop: nothing made
