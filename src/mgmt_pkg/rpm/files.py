"""``mgmt-pkg rpm``: a package of real files, with an SRPM that rebuilds it.

The files travel in the SRPM as Source0, a reproducible tarball
(mgmt_pkg.rpm.tarball); the spec's %install unpacks it into the build root and
its %files lists every entry with an explicit %attr, so ``rpmbuild --rebuild``
of the SRPM, here or in COPR, gives the same file list, digests, modes and
owners as the first build, whoever extracts the tarball.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from mgmt_pkg.errors import InvalidInput, ToolFailed
from mgmt_pkg.rpm.build import BuildResult, build_package
from mgmt_pkg.rpm.filelist import files_lines
from mgmt_pkg.rpm.model import PhonyPackage
from mgmt_pkg.rpm.payload import Entry
from mgmt_pkg.rpm.spec import escape
from mgmt_pkg.rpm.tarball import out_of_space, write_tarball
from mgmt_pkg.templating import environment

__all__ = ["TEMPLATE", "FilesPackage", "build_files_package", "render_files_spec"]

TEMPLATE = "files.spec.j2"


@dataclass(frozen=True)
class FilesPackage:
    """The package's metadata (validated) and its entries (from payload.collect)."""

    meta: PhonyPackage
    entries: Tuple[Entry, ...]
    # rpm's dependency generators on the files (fpm's --rpm-autoreq, --rpm-autoprov,
    # --rpm-autoreqprov for both); off as in fpm
    autoreq: bool = False
    autoprov: bool = False

    @property
    def top(self) -> str:
        """The tarball's top directory, as rpm's %setup would expect it."""
        return f"{self.meta.name}-{self.meta.version}"

    @property
    def source0(self) -> str:
        return f"{self.top}.tar.gz"


def render_files_spec(package: FilesPackage) -> str:
    templates = environment()
    templates.filters["rpm"] = escape
    return templates.get_template(TEMPLATE).render(
        p=package.meta,
        source0=package.source0,
        files=files_lines(package.entries),
        autoreq=package.autoreq,
        autoprov=package.autoprov,
    )


def build_files_package(
    package: FilesPackage, output_dir: Path, stage: str = "rpm", rpmbuild: Optional[str] = None
) -> BuildResult:
    """Render the spec, write Source0 and build as far as ``stage``."""
    spec_text = render_files_spec(package)  # first: it refuses names rpm cannot tell apart

    def sources(folder: Path) -> None:
        write_tarball(
            folder / package.source0, package.top, package.entries, package.meta.source_date_epoch
        )

    try:
        return build_package(
            package.meta, spec_text, output_dir, stage, rpmbuild, sources=sources, fast=False
        )
    except ToolFailed as failure:
        # rpm's check: say what to do rather than show rpmbuild's tail.
        if "Arch dependent binaries in noarch package" in failure.output:
            raise InvalidInput(
                "the files include binaries for one architecture: build with -a native "
                "(or -a ARCH), not as noarch"
            ) from None
        # rpmbuild unpacks the files into its build root, then packs them twice
        # (SRPM and RPM), all in the temp dir: a tmpfs /tmp is soon full.
        full = os.strerror(errno.ENOSPC)
        if full in failure.output:
            raise out_of_space("the packages", f"rpmbuild: {full}") from None
        raise
