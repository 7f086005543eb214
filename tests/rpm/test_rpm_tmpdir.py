"""A build that runs out of room in its temp dir says so, and where.

The tarball, rpmbuild's build root and both packages are made under TMPDIR
(/tmp, a tmpfs of half the memory on Fedora) before anything reaches -o. A
full one ended as "mgmt-pkg: error: No space left on device", naming neither
the folder nor what to do. Run in a private mount namespace whose TMPDIR is a
small tmpfs, so nothing outside the test sees it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mgmt_pkg
from support import require_tools

SOURCES = str(Path(mgmt_pkg.__file__).resolve().parents[1])


@pytest.mark.parametrize(
    ("size", "what"),
    [("1m", "Source0 (big-1.tar.gz)"),  # the tarball itself does not fit
     ("4m", "the packages")],  # it does; rpmbuild's build root and packages do not
)  # fmt: skip
def test_a_full_temp_dir_is_named_with_what_to_do(tmp_path, size, what):
    require_tools("rpmbuild", "unshare")
    small = tmp_path / "small"
    small.mkdir()
    (tmp_path / "big.bin").write_bytes(os.urandom(1_500_000))  # incompressible
    out = tmp_path / "out"
    as_root = [] if os.geteuid() == 0 else ["--map-root-user"]
    script = (f"mount -t tmpfs -o size={size} tmpfs {small} && exec {sys.executable} -m mgmt_pkg "
              f"rpm -n big -v 1 -o {out} {tmp_path / 'big.bin'}=/opt/big/big.bin")  # fmt: skip
    done = subprocess.run(
        ["unshare", "--mount", *as_root, "sh", "-c", script],
        env={**os.environ, "TMPDIR": str(small), "PYTHONPATH": SOURCES},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        f"mgmt-pkg: error: cannot write {what} in {small}: "
        f"{'rpmbuild: ' if what == 'the packages' else ''}No space left on device; set TMPDIR "
        "to a folder with more room (a build takes up to four times the files' size there)\n"
    )
    assert not out.exists()


# rpmbuild runs each section as "/bin/sh -e SCRIPT", SCRIPT's path split into words,
# and writes `cd "DIR"` into it: a temp dir with one of these in its path failed the
# build, "/bin/sh: 0: cannot open /tmp/my" or "rpmbuild wrote 0 files matching ...".
@pytest.mark.parametrize("name", ["my tmp", "it's", 'say"so', "back\\slash", "dollar$x"])
@pytest.mark.parametrize("command", ["fake-rpm", "rpm"])
def test_a_temp_dir_rpmbuild_cannot_run_in_is_named_before_anything_is_made(
    tmp_path, name, command
):
    require_tools("rpmbuild")
    temp = tmp_path / name
    temp.mkdir()
    (tmp_path / "file").write_text("x\n")
    extra = [f"{tmp_path / 'file'}=/opt/t/file"] if command == "rpm" else []
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", command, "-n", "t", "-v", "1", "-o", str(out), *extra],
        env={**os.environ, "TMPDIR": str(temp), "PYTHONPATH": SOURCES},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"mgmt-pkg: error: the temp dir {str(temp)!r}: rpmbuild cannot")
    assert done.stderr.endswith("; set TMPDIR to a folder without\n"), done.stderr
    assert not out.exists()
    assert [p.name for p in temp.iterdir() if not p.name.startswith("_jinja2-cache")] == []


def test_a_temp_dir_with_other_odd_characters_builds(tmp_path):
    require_tools("rpmbuild")
    temp = tmp_path / "tmp%é;{x}*"
    temp.mkdir()
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", "fake-rpm", "-n", "t", "-v", "1", "-o", str(out)],
        env={**os.environ, "TMPDIR": str(temp), "PYTHONPATH": SOURCES},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "t-1-1.noarch.rpm").is_file()
