"""The demo scripts in examples/ run as README shows them, not only through make."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from helpers import _pythonpath

from support import require_tools

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_rpm_demo_runs_alone_without_the_venv_on_path(tmp_path):
    """demo-rpm.sh counted on the Makefile to put .venv/bin on PATH: run alone,
    as demo-remote.sh and demo-detach.sh run, it stopped at "mgmt-pkg: command
    not found" (exit 127)."""
    require_tools("rpmbuild", "createrepo_c", "dnf", "rpm")
    env = dict(
        os.environ,
        PATH="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        PYTHONPATH=_pythonpath(),
        TMPDIR=str(tmp_path),
    )
    result = subprocess.run(
        ["bash", str(EXAMPLES / "demo-rpm.sh")],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.rstrip().endswith("demo-rpm: ok"), result.stdout[-2000:]
    assert "vagrant-libvirt-0.0.24-noop.noarch" in result.stdout
    assert not list(tmp_path.glob("mgmt-pkg-demo.*"))  # its work folder removed
