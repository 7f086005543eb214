"""The host Pythons the agent must run on, found in pyenv, and what the agent side is.

The agent side is all of :mod:`mgmt` but the initiator-only modules below (the
Makefile's vermin call excludes the same paths). pyenv keeps one interpreter per
minor version under ``$PYENV_ROOT/versions`` (default ``~/.pyenv``). A missing
one fails the test that needs it, naming the version and how to install it: a
check of 3.6 that quietly did not run would be worse than none.
"""

import glob
import os
import subprocess
from pathlib import Path
from typing import List

import pytest

# Hosts run these: RHEL 8's platform-python 3.6 up to Fedora's 3.13.
ALL_VERSIONS = ("3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13")
# The ones a real graph is run with: RHEL 8, RHEL 9, RHEL 10, Fedora.
HOST_VERSIONS = ("3.6", "3.9", "3.12", "3.13")

# Initiator-only: reaching hosts (Fabric, paramiko) and orchestrating the run.
# (What a secondary of a via: run imports of these is checked apart, in
# tests/compat/test_secondary_imports.py; mgmt.remote.hostspec is its too.)
INITIATOR_ONLY = (
    "mgmt.remote.transport",
    "mgmt.remote.orchestration",
    "mgmt.remote.hierarchy.initiator",
)


# This checkout's sources, as a host's unpacked bundle has them on its path.
SRC = Path(__file__).resolve().parents[2] / "src"


def pyenv_root() -> str:
    return os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def python(version: str) -> str:
    """pyenv's ``python3`` of ``version`` (e.g. "3.6"); fails the test if there is none."""
    pattern = os.path.join(pyenv_root(), "versions", f"{version}.*", "bin", "python3")
    # Newest patch release first (3.6.15 before 3.6.9).
    found = sorted(glob.glob(pattern), key=_patch_level, reverse=True)
    for candidate in found:
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        f"Python {version} is missing: no {pattern}; hosts run it, so this check "
        f"needs it: `pyenv install {version}`",
        pytrace=False,
    )
    raise AssertionError("unreachable")


def run_on(version: str, script: str) -> "subprocess.CompletedProcess[str]":
    """``script`` run by pyenv's Python ``version`` with this checkout's mgmt on its
    path; its output captured as text."""
    return subprocess.run(
        [python(version), "-c", script],
        env=dict(os.environ, PYTHONPATH=str(SRC)),
        capture_output=True,
        text=True,
        timeout=60,
    )


def version_of(interpreter: str) -> str:
    """``major.minor`` of an interpreter, asked from the interpreter itself."""
    done = subprocess.run(
        [interpreter, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        stdout=subprocess.PIPE, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.strip()


def _patch_level(path: str) -> List[int]:
    name = path.split(os.sep)[-3]  # versions/<name>/bin/python3
    return [int(p) if p.isdigit() else -1 for p in name.split(".")]
