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


def test_the_detach_demo_restores_and_exchanges_after_the_hand_over(tmp_path):
    """demo-detach.sh edits the graph a cluster's agent runs, where the cluster keeps
    it: it printed whatever b had when the export never came, and exit 0."""
    from support import require_root

    require_root()
    require_tools("sshd", "ssh", "ip", "unshare", "nsenter", "etcd")
    env = dict(os.environ, PYTHONPATH=_pythonpath(), TMPDIR=str(tmp_path))
    result = subprocess.run(
        ["bash", str(EXAMPLES / "demo-detach.sh")],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "a: /tmp/file1a is: i am file1a" in out
    assert "b: /tmp/file2a is: i am file2a, changed on a" in out
    assert "a: stopped agent, etcd" in out and "b: stopped agent" in out
