"""`mgmt-pkg rpm` adds no Requires or Provides of its own finding, as fpm
(AutoReqProv: no unless --rpm-autoreqprov, --rpm-autoreq or --rpm-autoprov).

rpm's generators made a package that bundles a shared library provide it to
the whole system (a private libc.so.6 under /opt satisfied other packages'
libc.so.6()(64bit)), and made each script require its interpreter's modules
(perl(Foo::Bar)) whether or not the package bundles them; a package that fpm
builds installs where this one was refused for "nothing provides ...".
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import List

import pytest
from rpm_helpers import run_cli

from support import require_tools


def shared_library() -> Path:
    """This process's libc: an ELF shared object with a SONAME, on any Linux."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "/libc.so" in line or "/libc-" in line}
    return Path(sorted(paths)[0])


def tree(tmp: Path) -> Path:
    root = tmp / "vendored"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "libc.so.6").write_bytes(shared_library().read_bytes())
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_text("#!/usr/bin/perl\nuse Foo::Bar;\n")
    (root / "bin" / "tool").chmod(0o755)
    return root


def query(rpm: Path, what: str) -> List[str]:
    done = subprocess.run(["rpm", "-qp", f"--{what}", str(rpm)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    return [line for line in done.stdout.splitlines() if not line.startswith("rpmlib(")]


def test_no_requires_or_provides_found_in_the_files_unless_asked(tmp_path):
    require_tools("rpmbuild", "rpm")
    arch = os.uname().machine
    source = tree(tmp_path)
    out = tmp_path / "out"
    result = run_cli("rpm", "-n", "vendored", "-v", "1", "-a", "native", "-d", "perl",
                     "-o", str(out), f"{source}/=/opt/vendored")  # fmt: skip
    assert result.code == 0, result.err
    rpm = out / f"vendored-1-1.{arch}.rpm"
    provides = query(rpm, "provides")  # its own name, and with its ISA: vendored(x86-64)
    assert provides[0] == "vendored = 1-1" and len(provides) == 2
    assert provides[1].startswith("vendored(") and provides[1].endswith(") = 1-1")
    assert query(rpm, "requires") == ["perl"]  # what -d asked, no more
    # The SRPM says so too: a rebuild (here, in COPR) finds nothing either.
    top = tmp_path / "rebuild"
    done = subprocess.run(["rpmbuild", "--rebuild", "--quiet", "--define", f"_topdir {top}",
                           str(out / "vendored-1-1.src.rpm")], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (rebuilt,) = (top / "RPMS").rglob("*.rpm")
    assert query(rebuilt, "provides") == provides
    assert query(rebuilt, "requires") == ["perl"]


@pytest.mark.parametrize(
    ("options", "requires", "provides"),
    [(["--rpm-autoreqprov"], True, True), (["--no-rpm-autoreqprov"], False, False),
     (["--rpm-autoreq"], True, False), (["--rpm-autoprov"], False, True),
     (["--rpm-autoreq", "--rpm-autoprov"], True, True)],
)  # fmt: skip
def test_fpm_options_turn_rpms_generators_on(tmp_path, options, requires, provides):
    require_tools("rpmbuild", "rpm")
    out = tmp_path / "out"
    asked = run_cli("rpm", "-n", "vendored", "-v", "1", "-a", "native", *options,
                    "-o", str(out), f"{tree(tmp_path)}/=/opt/vendored")  # fmt: skip
    assert asked.code == 0, asked.err
    found = out / f"vendored-1-1.{os.uname().machine}.rpm"
    assert any(p.startswith("libc.so.6") for p in query(found, "provides")) == provides
    assert ("perl(Foo::Bar)" in query(found, "requires")) == requires
