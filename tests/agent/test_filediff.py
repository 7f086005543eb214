"""What --noop shows for file content: case table of old/new content and the expected diff."""

from __future__ import annotations

import pytest

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
]  # fmt: skip


@pytest.mark.parametrize("old, new, expected", CASES)
def test_content_diff(old, new, expected):
    assert content_diff("/f", old, new) == expected


def test_long_diffs_are_cut_and_counted():
    old = "".join(f"{n}\n" for n in range(1000)).encode()
    out = content_diff("/f", old, b"").splitlines()
    assert len(out) == MAX_LINES + 1
    assert out[-1].startswith("... ") and out[-1].endswith(" more lines")
