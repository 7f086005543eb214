"""Fixtures: a served tree with the edge-case file, its symlinks, and a running server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from provision_support import OLD_MTIME, RANGE_CASES

from mgmt.net.http_server import HttpFileServer


@pytest.fixture(scope="module")
def served_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("served")
    root = base / "root"
    (root / "sub").mkdir(parents=True)
    (root / "file.txt").write_text(RANGE_CASES["file"])
    (root / "sub" / "a b.txt").write_text("spaced\n")
    (base / "outside.txt").write_text("secret\n")
    (root / "escape").symlink_to(base / "outside.txt")
    (root / "inner").symlink_to("file.txt")
    os.utime(root / "file.txt", (OLD_MTIME, OLD_MTIME))
    return root


@pytest.fixture(scope="module")
def http_server(served_tree: Path):
    with HttpFileServer(served_tree) as server:
        yield server
