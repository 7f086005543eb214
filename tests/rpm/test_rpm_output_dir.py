"""`mgmt-pkg rpm` with its output folder inside a tree it packages.

With `./=/usr/share/foo` and the default `-o .` (or `-o out` inside the tree),
the first build packaged the tree; the next one packaged the first one's spec,
SRPM and RPM too, so the same command gave another package each time. It is
refused now, on the first build already (exit 2, naming the folder and the SRC),
unless --exclude leaves the folder out.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from rpm_helpers import run_cli

from support import require_tools


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "file").write_text("data\n")
    return root


def _files(rpm: Path) -> list:
    done = subprocess.run(["rpm", "-qpl", str(rpm)], capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.mark.parametrize(
    "mapping, output",
    [
        ("tree/=/opt/t", "tree/out"),  # a folder in the tree
        ("tree/=/opt/t", "tree/sub/deeper/out"),  # deeper, not made yet
        ("tree/=/opt/t", "tree"),  # the tree itself
        ("tree=/opt/t", "tree/out"),  # SRC without the slash: the same tree
        ("tree", "tree/out"),  # a plain SRC
        ("link/=/opt/t", "tree/out"),  # the tree through a symlink
        ("tree/=/opt/t", "link/out"),  # the output folder through one
    ],
)
def test_an_output_folder_inside_a_packaged_tree_is_refused(tmp_path, monkeypatch, mapping, output):
    require_tools("rpmbuild")
    monkeypatch.chdir(tmp_path)
    _tree(tmp_path / "tree")
    (tmp_path / "link").symlink_to("tree")
    done = run_cli("rpm", "-n", "t", "-v", "1", mapping, "-o", output)
    assert done.code == 2, done.err
    assert "Traceback" not in done.err and len(done.err.splitlines()) == 1, done.err
    assert done.err.startswith(f"mgmt-pkg: error: --output-dir {output}: inside "), done.err
    hint = "" if output == "tree" else f" (or --exclude {output.split('/', 1)[1]})"
    assert done.err.endswith(f"give an --output-dir outside it{hint}\n"), done.err
    assert f"inside SRC {mapping}, which is packaged" in done.err, done.err
    assert sorted(os.listdir(tmp_path / "tree")) == ["sub"]  # nothing written, no folder made
    assert os.listdir(tmp_path / "tree" / "sub") == ["file"]


def test_the_default_output_folder_inside_the_tree_is_refused(tmp_path, monkeypatch):
    """`cd build && mgmt-pkg rpm ... ./=/usr/share/foo` (fpm's way to package the
    current folder): -o defaults to ".", the tree itself."""
    require_tools("rpmbuild")
    monkeypatch.chdir(_tree(tmp_path / "tree"))
    done = run_cli("rpm", "-n", "t", "-v", "1", "./=/opt/t")
    assert done.code == 2, done.err
    assert "--output-dir .: inside SRC ./=/opt/t, which is packaged" in done.err, done.err
    assert sorted(os.listdir(".")) == ["sub"]


def test_an_excluded_output_folder_is_built_and_stays_out_of_every_build(tmp_path, monkeypatch):
    require_tools("rpmbuild")
    monkeypatch.chdir(tmp_path)
    _tree(tmp_path / "tree")
    for release in ("1", "2"):
        done = run_cli(
            "rpm", "-n", "t", "-v", "1", "--iteration", release, "--exclude", "out",
            "tree/=/opt/t", "-o", "tree/out",
        )  # fmt: skip
        assert done.code == 0, done.err
        assert _files(tmp_path / f"tree/out/t-1-{release}.noarch.rpm") == ["/opt/t/sub/file"]


def test_an_output_folder_beside_the_tree_or_below_a_file_src_is_fine(tmp_path, monkeypatch):
    require_tools("rpmbuild")
    monkeypatch.chdir(tmp_path)
    _tree(tmp_path / "tree")
    (tmp_path / "tree-out").mkdir()  # a name that starts like the tree's is not in it
    done = run_cli("rpm", "-n", "t", "-v", "1", "tree/=/opt/t", "-o", "tree-out")
    assert done.code == 0, done.err
    done = run_cli("rpm", "-n", "f", "-v", "1", "tree/sub/file=/opt/f", "-o", "tree/sub/out")
    assert done.code == 0, done.err  # a file SRC walks no folder
    assert _files(tmp_path / "tree/sub/out/f-1-1.noarch.rpm") == ["/opt/f"]
