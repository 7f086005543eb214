"""--rpm-attr on a symlink: rpm keeps its owner and group but never a mode (a symlink is
0777 on install), and rpmbuild drops an explicit one with a warning the build hid. A
mode given for one was packaged without a word; it is refused now (exit 2), naming it."""

from __future__ import annotations

import os
import subprocess

from rpm_helpers import run_cli

from support import require_tools


def _tree(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "target").write_text("t\n")
    (tree / "link").symlink_to("target")
    return tree


def test_a_mode_for_a_symlink_is_refused(tmp_path):
    require_tools("rpmbuild")
    tree, out = _tree(tmp_path), tmp_path / "out"
    done = run_cli(
        "rpm", "-n", "l", "-v", "1", f"{tree}/=/opt/l", "--rpm-attr", "0600,root,root:/opt/l/link",
        "-o", str(out),
    )  # fmt: skip
    assert done.code == 2, done.err
    assert "Traceback" not in done.err and len(done.err.splitlines()) == 1, done.err
    assert done.err.startswith("mgmt-pkg: error: --rpm-attr: /opt/l/link is a symlink"), done.err
    assert "-,root,root:/opt/l/link" in done.err, done.err  # what to give instead
    assert not out.exists()


def test_an_owner_for_a_symlink_is_packaged(tmp_path):
    require_tools("rpmbuild")
    tree, out = _tree(tmp_path), tmp_path / "out"
    done = run_cli(
        "rpm", "-n", "l", "-v", "1", f"{tree}/=/opt/l", "--rpm-attr", "-,nobody,daemon:/opt/l/link",
        "-o", str(out), "--source-date-epoch", "1700000000",
    )  # fmt: skip
    assert done.code == 0, done.err
    query = "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]"
    listed = subprocess.run(
        ["rpm", "-qp", "--qf", query, str(out / "l-1-1.noarch.rpm")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert "lrwxrwxrwx nobody:daemon /opt/l/link" in listed, listed
    assert sorted(os.listdir(out)) == ["l-1-1.noarch.rpm", "l-1-1.src.rpm", "l.spec"]
