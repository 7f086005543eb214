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
