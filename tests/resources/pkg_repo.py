"""The test repository of phony packages: built by `mgmt-pkg fake-rpm`, indexed by createrepo_c."""

from __future__ import annotations

import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_PORT = 8765

# name -> versions built into the test repository (phony packages, no software).
PACKAGES = {
    "mgmt-test-a": ["1.0", "2.0"], "mgmt-test-b": ["1.0"], "mgmt-test-c": ["1.0"],
    "mgmt-test-h": ["1.0"], "mgmt-test-r": ["1.0"], "mgmt-test-p": ["1.0", "2.0"],
    "mgmt-test-n": ["1.0"], "mgmt-test-o": ["1.0"], "mgmt-test-q": ["1.0"],
    "mgmt-test-x": ["1.0", "2.0"], "mgmt-test-k": ["1.0"], "mgmt-test-f": ["1.0"],
    "mgmt-test-sh": ["1.0"],
}  # fmt: skip
# What fake-rpm gives a package beside its name and version: mgmt-test-h needs what no
# repository has (dnf cannot install it); mgmt-test-r needs mgmt-test-c (dnf installs c
# with r, and removes r with c); mgmt-test-p provides a name no package has;
# mgmt-test-n obsoletes mgmt-test-o and provides its name (a package renamed: dnf
# installs n for o); mgmt-test-p also provides mgmt-test-b, a package of its own (dnf
# installs b for b); mgmt-test-x 2.0 needs what no repository has, 1.0 does not;
# mgmt-test-k needs mgmt-test-h. By NAME, or NAME-VERSION for one version.
FLAGS = {
    "mgmt-test-h": ["--depends=mgmt-nothere"], "mgmt-test-r": ["--depends=mgmt-test-c"],
    "mgmt-test-p": ["--provides=mgmt-test-virtual", "--provides=mgmt-test-b"],
    "mgmt-test-n": ["--replaces=mgmt-test-o"], "mgmt-test-x-2.0": ["--depends=mgmt-nothere"],
    "mgmt-test-k": ["--depends=mgmt-test-h"], "mgmt-test-sh": ["--provides=/bin/sh"],
}  # fmt: skip
# Scriptlets, as fake-rpm's option -> the script: mgmt-test-f's %pre fails, so rpm
# installs it never (a scriptlet needs /bin/sh, which mgmt-test-sh provides here).
SCRIPTS = {"mgmt-test-f": ("--before-install", "echo mgmt-test-f refuses >&2; exit 1\n")}


def build_repo(repo: Path, packages=PACKAGES) -> None:
    """Phony RPMs by `mgmt-pkg fake-rpm`, indexed by createrepo_c."""
    repo.mkdir(parents=True, exist_ok=True)
    scripts = {}  # name -> [option, path of its script]
    for name, (option, text) in SCRIPTS.items():
        (repo / f".{name}.sh").write_text(text)
        scripts[name] = [option, str(repo / f".{name}.sh")]

    def build(name_version) -> None:
        name, version = name_version
        subprocess.run(
            [sys.executable, "-m", "mgmt_pkg", "fake-rpm", "-n", name, "-v", version,
             "-o", str(repo), "--source-date-epoch", "1700000000",
             *FLAGS.get(f"{name}-{version}", FLAGS.get(name, [])), *scripts.get(name, [])],
            check=True, capture_output=True,
        )  # fmt: skip

    wanted = [(name, version) for name, versions in packages.items() for version in versions]
    with ThreadPoolExecutor(max_workers=4) as pool:  # rpmbuild waits on I/O as much as CPU
        list(pool.map(build, wanted))
    _build_obsoleting(repo)
    for srpm in [*repo.glob("*.src.rpm"), *repo.glob(".*.sh")]:
        srpm.unlink()  # binary packages only: check-update must not see sources
    subprocess.run(["createrepo_c", "-q", str(repo)], check=True)


# A package that obsoletes another without providing its name (fake-rpm's --replaces
# provides it too): dnf installs mgmt-test-m for mgmt-test-q all the same.
OBSOLETING_SPEC = """\
Name: mgmt-test-m
Version: 1.0
Release: 1
Summary: obsoletes mgmt-test-q without providing it
License: MIT
BuildArch: noarch
Obsoletes: mgmt-test-q < 2
%description
A test package.
%files
"""


def _build_obsoleting(repo: Path) -> None:
    top = repo / ".obsoleting"
    top.mkdir()
    (top / "m.spec").write_text(OBSOLETING_SPEC)
    subprocess.run(
        ["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", f"_rpmdir {repo}",
         "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
         str(top / "m.spec")],
        check=True, capture_output=True,
    )  # fmt: skip
    shutil.rmtree(top)
