"""fab deploy rebuilds dist/mgmt when it is older than what the bundle is made of.

The bundle holds the agent's shell programs too (mgmt/remote/protocol/start.sh and
findpython.sh, which a `via:` secondary running from the bundle sends on): only
*.py files were compared, so an edit of start.sh left the old dist/mgmt in use.
"""

from __future__ import annotations

import importlib.util
import os
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fabfile():
    spec = importlib.util.spec_from_file_location("fabfile", REPO / "fabfile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _built_after(tmp_path: Path, *names: str):
    sources = tmp_path / "src"
    (sources / "remote" / "__pycache__").mkdir(parents=True)
    for name in names:
        (sources / name).write_text("x\n")
    bundle = tmp_path / "mgmt"
    bundle.write_text("built")
    later = time.time() + 10
    os.utime(bundle, (later, later))
    return sources, bundle, later


def test_a_newer_shell_program_of_the_agent_makes_the_bundle_stale(tmp_path, fabfile):
    sources, bundle, later = _built_after(tmp_path, "a.py", "remote/start.sh")
    assert not fabfile.bundle_is_stale(bundle, sources, ())
    os.utime(sources / "remote" / "start.sh", (later + 10, later + 10))
    assert fabfile.bundle_is_stale(bundle, sources, ())


def test_bytecode_does_not_make_the_bundle_stale(tmp_path, fabfile):
    """Python writes __pycache__ whenever the sources are imported: not an edit."""
    sources, bundle, later = _built_after(tmp_path, "a.py", "remote/__pycache__/a.cpython-311.pyc")
    os.utime(sources / "remote" / "__pycache__" / "a.cpython-311.pyc", (later + 10, later + 10))
    assert not fabfile.bundle_is_stale(bundle, sources, ())


def test_the_agents_shell_programs_are_in_the_bundle(fabfile):
    """Why they count: the bundle ships them (checked on a bundle if one is built)."""
    shipped = sorted(p.name for p in fabfile.SOURCES.rglob("*.sh"))
    assert "start.sh" in shipped and "findpython.sh" in shipped, shipped
    if fabfile.BUNDLE.is_file():
        names = zipfile.ZipFile(fabfile.BUNDLE).namelist()
        assert "site-packages/mgmt/remote/protocol/start.sh" in names
