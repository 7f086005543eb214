"""Shared by the remote tests: one bundle per session, throw-away hosts per module."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def bundle(tmp_path_factory) -> Path:
    """The real agent bundle, built once (PACKAGING's builder)."""
    from mgmt_pkg.bundle import build_bundle

    return build_bundle(tmp_path_factory.mktemp("bundle") / "mgmt.pyz").path
