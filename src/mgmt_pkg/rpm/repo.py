"""Make a folder of RPMs into a yum/dnf repository with createrepo_c."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mgmt_pkg.errors import InvalidInput
from mgmt_pkg.rpm.tools import find_tool, run_tool

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
    executable = find_tool(
        "createrepo_c", debian_package="createrepo-c", fedora_package="createrepo_c"
    )
    run_tool("createrepo_c", [executable, "--quiet", str(folder)])
    return Repository(folder, packages)
