"""`mgmt-pkg rpm` keeps hard links, as fpm's dir source does.

Names of one inode among the packaged files (in one tree, across SRC trees,
or one file given twice) become one inode in the RPM: rpm's headers say so
(FILENLINKS, FILEINODES), the payload holds the content once, rpm installs
them as one file, and the SRPM rebuilds the same. Names that are not packaged
(excluded) do not count; names given different attributes are refused.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from rpm_helpers import rpmlint, run_cli

from support import require_tools

TAGS = ["FILENAMES", "FILENLINKS", "FILEINODES", "FILEDIGESTS", "FILEMODES:octal",
        "FILEUSERNAME", "FILEGROUPNAME", "FILEFLAGS:fflags"]  # fmt: skip
QF = "[" + "\\t".join(f"%{{{tag}}}" for tag in TAGS) + "\\n]"
# The groups the tree below makes, by path in the package.
SHARED = ["/opt/hl/sub/one", "/opt/hl/sub/two", "/opt/hl/zz/three", "/opt/other/four"]
CONFIGS = ["/opt/hl/etc/a.conf", "/opt/hl/etc/b.conf"]
TOOLS = ["/opt/hl/bin/x", "/opt/hl/bin/y"]
TWICE = ["/opt/twice/a", "/opt/twice/b"]
GROUPS = [SHARED, CONFIGS, TOOLS, TWICE]


def make_trees(root: Path) -> Tuple[Path, Path, Path]:
    """Two SRC trees and a plain file; hard links inside and across them."""
    tree, other, plain = root / "tree", root / "other", root / "plain"
    for folder in ("sub", "zz", "etc", "bin"):
        (tree / folder).mkdir(parents=True)
    other.mkdir()
    (tree / "sub" / "one").write_text("shared content\n" * 100)
    for name in ("sub/two", "zz/three", "sub/gone.tmp"):  # the last one is excluded
        os.link(tree / "sub" / "one", tree / name)
    os.link(tree / "sub" / "one", other / "four")  # the same inode in another SRC
    (tree / "solo").write_text("alone in the package\n")
    os.link(tree / "solo", tree / "solo.tmp")  # its only other name is excluded
    (tree / "etc" / "a.conf").write_text("setting = 1\n")
    os.link(tree / "etc" / "a.conf", tree / "etc" / "b.conf")
    (tree / "bin" / "x").write_text("#!/bin/sh\necho x\n")
    (tree / "bin" / "x").chmod(0o755)
    os.link(tree / "bin" / "x", tree / "bin" / "y")
    plain.write_text("one file, two destinations\n")
    for folder in (tree, *(tree / f for f in ("sub", "zz", "etc", "bin")), other):
        folder.chmod(0o755)  # whatever the umask: other modes would be owned
    return tree, other, plain


def build(root: Path, out: Path, *extra: str):
    tree, other, plain = root / "tree", root / "other", root / "plain"
    result = run_cli(
        "rpm", "-n", "hl", "-v", "1.0", "-o", str(out), "--source-date-epoch", "1700000000",
        "--exclude", "*.tmp", "--config-files", "/opt/hl/etc",
        "--rpm-attr", "0750,root,nobody:/opt/hl/bin/x",
        "--rpm-attr", "0750,root,nobody:/opt/hl/bin/y",
        f"{tree}/=/opt/hl", f"{other}/=/opt/other", f"{plain}=/opt/twice/a",
        f"{plain}=/opt/twice/b", *extra,
    )  # fmt: skip
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    require_tools("rpmbuild", "rpm2cpio", "cpio")
    root = tmp_path_factory.mktemp("hardlinks")
    make_trees(root)
    result = build(root, root / "out")
    assert result.code == 0, result.err
    return root, result


def headers(rpm: Path) -> Dict[str, List[str]]:
    done = subprocess.run(["rpm", "-qp", "--qf", QF, str(rpm)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    return {row[0]: row[1:] for row in rows}


def test_the_rpm_records_each_group_as_one_inode(built):
    _root, result = built
    listed = headers(result.paths[2])
    for group in GROUPS:
        rows = [listed[path] for path in group]
        assert {row[0] for row in rows} == {str(len(group))}, group  # FILENLINKS
        assert len({row[1] for row in rows}) == 1, group  # one FILEINODES
        assert len({row[2] for row in rows}) == 1, group  # the same digest
    inodes = [listed[group[0]][1] for group in GROUPS] + [listed["/opt/hl/solo"][1]]
    assert len(set(inodes)) == len(inodes)  # the groups are distinct inodes
    assert listed["/opt/hl/solo"][0] == "1"  # its other name was excluded
    assert {listed[p][6] for p in CONFIGS} == {"cn"}  # %config(noreplace) on both names
    assert {tuple(listed[p][3:6]) for p in TOOLS} == {("100750", "root", "nobody")}
    assert not any(path.endswith(".tmp") for path in listed)


def test_the_payload_holds_each_group_once_and_extracts_as_links(built, tmp_path):
    root, result = built
    rpm = result.paths[2]
    listing = subprocess.run(f"rpm2cpio '{rpm}' | cpio -itv --quiet", shell=True,
                             capture_output=True, text=True, check=True)  # fmt: skip
    sizes = {}
    for line in listing.stdout.splitlines():
        fields = line.split()
        sizes["/" + fields[-1].lstrip("./")] = int(fields[4])
    for group in GROUPS:
        assert sorted(sizes[path] > 0 for path in group) == [False] * (len(group) - 1) + [True]
    into = tmp_path / "x"
    into.mkdir()
    subprocess.run(f"rpm2cpio '{rpm}' | cpio -idm --quiet", shell=True, cwd=into, check=True)
    shared = [(into / path.lstrip("/")).stat() for path in SHARED]
    assert {(s.st_ino, s.st_nlink) for s in shared} == {(shared[0].st_ino, len(SHARED))}
    assert (into / "opt/other/four").read_bytes() == (root / "tree/sub/one").read_bytes()


def test_rpm_installs_each_group_as_one_file(built, tmp_path):
    require_tools("rpm")
    _root, result = built
    target = tmp_path / "root"
    target.mkdir()
    # rpm wants root to install, even into a --root; a user namespace is enough.
    as_root = [] if os.geteuid() == 0 else ["unshare", "--map-root-user"]
    done = subprocess.run([*as_root, "rpm", "--root", str(target), "--nodeps", "-i",
                           str(result.paths[2])], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for group in GROUPS:
        stats = [(target / path.lstrip("/")).stat() for path in group]
        assert {(s.st_ino, s.st_nlink) for s in stats} == {(stats[0].st_ino, len(group))}
    verify = subprocess.run(["rpm", "--root", str(target), "--nodeps", "-V", "hl"],
                            capture_output=True, text=True)  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_source0_links_later_names_to_the_first_in_sorted_order(built):
    _root, result = built
    tarball = subprocess.run(
        f"rpm2cpio '{result.paths[1]}' | cpio -i --quiet --to-stdout hl-1.0.tar.gz",
        shell=True, capture_output=True, check=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        members = {member.name: member for member in tar.getmembers()}
    for group in GROUPS:
        first, *later = sorted(group)
        assert members[f"hl-1.0{first}"].isreg()
        for path in later:
            member = members[f"hl-1.0{path}"]
            assert member.islnk() and member.linkname == f"hl-1.0{first}", path


def test_the_srpm_rebuilds_the_same_links(built, tmp_path):
    _root, result = built
    done = subprocess.run(
        ["rpmbuild", "--rebuild", "--quiet", "--define", f"_topdir {tmp_path}",
         str(result.paths[1])], capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (rebuilt,) = (tmp_path / "RPMS" / "noarch").glob("*.rpm")
    assert headers(rebuilt) == headers(result.paths[2])


def test_rpmlint_sees_no_duplicate_files(built):
    require_tools("rpmlint")
    _root, result = built
    _errors, warnings = rpmlint(result.paths[2])
    assert "hl.noarch: files-duplicate" not in warnings


def test_copies_with_other_inode_numbers_build_byte_identical(built, tmp_path):
    """The link targets come from the paths, never from inode numbers."""
    root, result = built
    copy = tmp_path / "copy"
    copy.mkdir()
    # One cp -a keeps the links among everything it copies; in another order,
    # so that the inodes are numbered otherwise.
    sources = [str(root / name) for name in ("plain", "other", "tree")]
    subprocess.run(["cp", "-a", *sources, str(copy)], check=True)
    assert (copy / "other/four").stat().st_ino == (copy / "tree/sub/one").stat().st_ino
    assert (copy / "other/four").stat().st_ino != (root / "other/four").stat().st_ino
    again = build(copy, tmp_path / "out")
    assert again.code == 0, again.err
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert [digest(p) for p in again.paths] == [digest(p) for p in result.paths]


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        (["--rpm-attr", "0600,-,-:/opt/hl/sub/two"], "mode 0644 and 0600"),
        (["--rpm-attr", "-,-,wheel:/opt/other/four"], "owner root:root and root:wheel"),
        (["--config-files", "/opt/hl/zz/three"], "%config on one name only"),
    ],
)
def test_names_of_one_file_given_different_attributes_are_refused(tmp_path, extra, why):
    make_trees(tmp_path)
    out = tmp_path / "out"
    result = build(tmp_path, out, *extra)
    assert result.code == 2, result.err
    assert len(result.err.splitlines()) == 1
    named = next(p for p in SHARED if p in " ".join(extra))
    assert f"/opt/hl/sub/one and {named} are one file (hard links)" in result.err
    assert why in result.err
    assert not out.exists()


def test_an_upgrade_keeps_edited_linked_configs_and_the_link(tmp_path):
    """%config(noreplace) on both names: the edit (made through one name) is kept,
    the new content lands as .rpmnew beside each, and the names stay one file."""
    require_tools("rpmbuild", "rpm")
    for version in ("1.0", "2.0"):
        tree = tmp_path / f"tree-{version}"
        (tree / "etc" / "demo").mkdir(parents=True)
        (tree / "etc" / "demo" / "a.conf").write_text(f"setting = {version}\n")
        os.link(tree / "etc" / "demo" / "a.conf", tree / "etc" / "demo" / "b.conf")
        result = run_cli("rpm", "-n", "demo", "-v", version, "-o", str(tmp_path / "out"),
                         "--config-files", "/etc/demo", f"{tree}/=/")  # fmt: skip
        assert result.code == 0, result.err
    target = tmp_path / "root"
    target.mkdir()
    as_root = [] if os.geteuid() == 0 else ["unshare", "--map-root-user"]
    for step, version in (("-i", "1.0"), ("-U", "2.0")):
        rpm = tmp_path / "out" / f"demo-{version}-1.noarch.rpm"
        done = subprocess.run([*as_root, "rpm", "--root", str(target), "--nodeps", step,
                               str(rpm)], capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr
        if step == "-i":
            (target / "etc/demo/a.conf").write_text("setting = mine\n")
    folder = target / "etc" / "demo"
    assert (folder / "b.conf").read_text() == "setting = mine\n"
    assert (folder / "b.conf.rpmnew").read_text() == "setting = 2.0\n"
    assert (folder / "a.conf").stat().st_ino == (folder / "b.conf").stat().st_ino
    assert (folder / "a.conf.rpmnew").stat().st_ino == (folder / "b.conf.rpmnew").stat().st_ino
