"""The real bundle, built once per session, for the host-Python tests."""

import sys
import zipfile
from pathlib import Path
from typing import NamedTuple

import pytest

from mgmt_pkg.bundle import build_bundle

# The throw-away host of the resource tests: a mount namespace in which / is read-only.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "resources"))


class Bundle(NamedTuple):
    path: Path  # the shiv zipapp, as pushed to hosts
    site_packages: Path  # its contents, unpacked here once


@pytest.fixture(scope="session")
def bundle(tmp_path_factory) -> Bundle:
    built = build_bundle(tmp_path_factory.mktemp("bundle") / "mgmt")
    unpacked = tmp_path_factory.mktemp("unpacked")
    with zipfile.ZipFile(built.path) as archive:
        archive.extractall(unpacked)
    return Bundle(built.path, unpacked / "site-packages")
