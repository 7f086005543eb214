"""A path in the served tree is opened as it was checked: a symlink swapped in
between the check and the open (by whoever may write in the tree) is not followed
out of it, and an index.html linking out of the tree is not served."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from provision_support import ServeProcess, request

from mgmt.net.content import NotServable, open_source, resolve_under


def test_a_folder_swapped_for_a_symlink_after_the_check_is_not_followed(tmp_path: Path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "dx").mkdir(parents=True)
    (root / "dx" / "f").write_text("inside\n")
    outside.mkdir()
    (outside / "f").write_text("outside\n")
    checked = resolve_under(root, "dx/f")
    assert checked == (root / "dx" / "f").resolve()
    # What a writer in the tree does between the server's check and its open.
    os.rename(root / "dx", root / "dy")
    os.symlink(outside, root / "dx")
    with pytest.raises(NotServable) as caught:
        open_source(checked, in_tree=True)
    assert caught.value.kind == NotServable.MISSING
    # The file itself swapped for a symlink: the same.
    os.unlink(root / "dx")
    os.rename(root / "dy", root / "dx")
    os.unlink(root / "dx" / "f")
    os.symlink(outside / "f", root / "dx" / "f")
    with pytest.raises(NotServable):
        open_source(checked, in_tree=True)


def test_an_index_html_linking_out_of_the_tree_is_not_served(tmp_path: Path):
    root = tmp_path / "www"
    (root / "site").mkdir(parents=True)
    (tmp_path / "secret.html").write_text("not for you\n")
    os.symlink(tmp_path / "secret.html", root / "site" / "index.html")
    with ServeProcess(str(root), "--bind", "127.0.0.1", "--port", "0") as server:
        host, port = server.http.removeprefix("http://").rsplit(":", 1)
        reply = request((host, int(port)), "/site/")
        server.stop()
    assert reply.status == 200
    assert b"not for you" not in reply.body and b"index.html" in reply.body  # the listing


def test_a_file_given_by_name_is_opened_through_its_symlinks(tmp_path: Path):
    """Only paths in a served tree are opened without following symlinks: a file
    given by name (serve --file, a file kind's source) may well be one."""
    (tmp_path / "v2.ks").write_text("version 2\n")
    (tmp_path / "current.ks").symlink_to("v2.ks")
    (tmp_path / "linked").symlink_to(tmp_path)
    for named in (tmp_path / "current.ks", tmp_path / "linked" / "v2.ks"):
        _content, body = open_source(named)
        with body:
            assert body.read() == b"version 2\n"
