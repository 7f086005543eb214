"""^C and SIGTERM in the middle of a real build: rpmbuild stops, nothing stays.

The build is held inside rpmbuild's %install by a `mkdir` earlier in PATH
that records its pid and then waits: rpmbuild, its script and the temp tree
are all really there when the signal is sent to `mgmt-pkg` (the console
script, as a user runs it). Afterwards no process of the build may be alive,
the temp dir (TMPDIR) must be empty, the output dir must hold nothing, and
stderr must be one line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support import require_tools
from support.polling import wait_until

HOLD = """#!/bin/sh
echo $$ > "{marker}"
exec sleep 300
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie not yet reaped by init counts as gone
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("command", ["fake-rpm", "rpm"])
def test_a_signal_mid_build_stops_rpmbuild_and_leaves_nothing(tmp_path, signum, command):
    require_tools("rpmbuild")
    bin_dir, temp, out, marker = (tmp_path / n for n in ("bin", "tmp", "out", "held"))
    bin_dir.mkdir()
    temp.mkdir()
    (bin_dir / "mkdir").write_text(HOLD.format(marker=marker))
    (bin_dir / "mkdir").chmod(0o755)
    (tmp_path / "payload").write_text("data\n")
    args = ["-n", "held", "-v", "1", "-o", str(out)]
    if command == "rpm":
        args.append(f"{tmp_path / 'payload'}=/usr/share/held/payload")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(temp)}
    mgmt_pkg = Path(sys.executable).with_name("mgmt-pkg")
    process = subprocess.Popen(
        [str(mgmt_pkg), command, *args], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: marker.read_text().strip(), timeout=60, what="rpmbuild's %install")
        held = int(marker.read_text())
        assert any(temp.iterdir())  # the build's private tree is there now
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signum, stderr
    assert stdout == ""
    assert len(stderr.splitlines()) == 1 and "interrupted" in stderr, stderr
    assert "Traceback" not in stderr
    wait_until(lambda: not alive(held), timeout=10, what="the held build script to end")
    # BUILDROOT, rpm-tmp.* scripts, sources: gone. Jinja2's compiled-template
    # cache is kept on purpose (mgmt_pkg.templating), as after any run.
    left = [p.name for p in temp.iterdir() if not p.name.startswith("_jinja2-cache-")]
    assert left == []
    assert not out.exists() or list(out.iterdir()) == []


def test_a_signal_during_the_imports_exits_without_a_traceback(tmp_path):
    """SIGINT as soon as the process exists: before or during the imports."""
    mgmt_pkg = Path(sys.executable).with_name("mgmt-pkg")
    for _ in range(5):
        process = subprocess.Popen(
            [str(mgmt_pkg), "fake-rpm", "-n", "x", "-v", "1", "-o", str(tmp_path / "o")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=60)
        assert "Traceback" not in err, err
        assert process.returncode in (130, -signal.SIGINT, 0), err
