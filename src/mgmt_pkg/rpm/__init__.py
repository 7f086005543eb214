"""Phony RPMs: the package model, its spec, rpmbuild, inspection and repos.

Data flows one way: options -> :class:`PhonyPackage` (validated) -> spec text
(:func:`render_spec`) -> :func:`build_package` (rpmbuild) -> SRPM + RPM, which
:func:`read_package` reads back and :func:`make_repo` serves to dnf.
Submodules are imported by name so that each command pays only for what it uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from mgmt_pkg.rpm.build import BuildResult, build_package
from mgmt_pkg.rpm.model import PhonyPackage
from mgmt_pkg.rpm.spec import render_spec

__all__ = ["BuildResult", "PhonyPackage", "build_package", "fake_rpm", "render_spec"]


def fake_rpm(
    package: PhonyPackage, output_dir: Path, stage: str = "rpm", rpmbuild: Optional[str] = None
) -> BuildResult:
    """Render the spec of ``package`` and build it as far as ``stage``."""
    return build_package(package, render_spec(package), output_dir, stage, rpmbuild)
