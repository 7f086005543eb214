"""filesafe.holds: whether an open file holds exactly some content, compared a
block at a time, reading no more than the content and a byte to see the end."""

from __future__ import annotations

import os

import pytest

from mgmt.resources import filesafe

CASES = [
    (b"", b""),
    (b"", b"a"),
    (b"a", b""),
    (b"abc", b"abc"),
    (b"abc", b"ab"),
    (b"ab", b"abc"),
    (b"abcdef", b"abcdeX"),
    (b"x" * 10, b"x" * 10),
    (b"x" * 11, b"x" * 10),
    (b"x" * 10, b"x" * 11),
]


@pytest.mark.parametrize("block", [1, 3, 1 << 20])
@pytest.mark.parametrize(("on_disk", "content"), CASES)
def test_holds_is_true_only_for_the_same_bytes(tmp_path, monkeypatch, on_disk, content, block):
    path = tmp_path / "f"
    path.write_bytes(on_disk)
    reads = []
    real_pread = os.pread

    def pread(fd, size, offset):
        reads.append(size)
        return real_pread(fd, size, offset)

    monkeypatch.setattr(filesafe.os, "pread", pread)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert filesafe.holds(fd, content, block) is (on_disk == content)
    finally:
        os.close(fd)
    # Never a block's buffer for a short file: at most the content and one byte more.
    assert max(reads) <= min(block, len(content) + 1)
