"""Make a folder of RPMs into a yum/dnf repository with createrepo_c."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mgmt_pkg.errors import InvalidInput, ToolFailed, ToolMissing

__all__ = ["Repository", "make_repo"]


@dataclass(frozen=True)
class Repository:
    path: Path
    packages: int

    @property
    def repomd(self) -> Path:
        return self.path / "repodata" / "repomd.xml"


def make_repo(folder: Path) -> Repository:
    """Run createrepo_c over ``folder`` (binary and source RPMs alike).

    createrepo_c writes the new metadata beside the old and swaps the
    directories at the end, so readers never see half-written repodata.
    """
    if not folder.is_dir():
        raise InvalidInput(f"{folder}: not a directory")
    packages = sum(1 for _ in folder.rglob("*.rpm"))
    if packages == 0:
        raise InvalidInput(f"{folder}: contains no .rpm files")
    executable = shutil.which("createrepo_c")
    if executable is None:
        raise ToolMissing(
            "createrepo_c", "createrepo-c" if shutil.which("apt-get") else "createrepo_c"
        )
    result = subprocess.run(
        [executable, "--quiet", str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        check=False,
    )
    if result.returncode != 0:
        raise ToolFailed("createrepo_c", result.returncode, result.stdout)
    return Repository(folder, packages)
