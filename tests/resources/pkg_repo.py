"""The test repository of phony packages: built by `mgmt-pkg fake-rpm`, indexed by createrepo_c."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_PORT = 8765

# name -> versions built into the test repository (phony packages, no software).
PACKAGES = {
    "mgmt-test-a": ["1.0", "2.0"], "mgmt-test-b": ["1.0"], "mgmt-test-c": ["1.0"],
    "mgmt-test-h": ["1.0"], "mgmt-test-r": ["1.0"],
}  # fmt: skip
# What a package requires: mgmt-test-h needs what no repository has (dnf cannot install it);
# mgmt-test-r needs mgmt-test-c (dnf installs c with r, and removes r with c).
DEPENDS = {"mgmt-test-h": ["mgmt-nothere"], "mgmt-test-r": ["mgmt-test-c"]}


def build_repo(repo: Path, packages=PACKAGES) -> None:
    """Phony RPMs by `mgmt-pkg fake-rpm`, indexed by createrepo_c."""
    repo.mkdir(parents=True, exist_ok=True)

    def build(name_version) -> None:
        name, version = name_version
        subprocess.run(
            [sys.executable, "-m", "mgmt_pkg", "fake-rpm", "-n", name, "-v", version,
             "-o", str(repo), "--source-date-epoch", "1700000000",
             *[f"--depends={need}" for need in DEPENDS.get(name, [])]],
            check=True, capture_output=True,
        )  # fmt: skip

    wanted = [(name, version) for name, versions in packages.items() for version in versions]
    with ThreadPoolExecutor(max_workers=4) as pool:  # rpmbuild waits on I/O as much as CPU
        list(pool.map(build, wanted))
    for srpm in repo.glob("*.src.rpm"):
        srpm.unlink()  # binary packages only: check-update must not see sources
    subprocess.run(["createrepo_c", "-q", str(repo)], check=True)
