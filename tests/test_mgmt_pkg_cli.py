"""`mgmt-pkg` maps every failure to one line and an exit code, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


def mgmt_pkg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("serve", "/tmp", "--port", "99999"), 2, "'--port': 99999 is not in the range"),
        (("serve", "/tmp", "--tftp-port", "-1"), 2, "'--tftp-port': -1 is not in the range"),
        (("serve", "/tmp", "--max-ranges", "0"), 2, "'--max-ranges': 0 is not in the range"),
        (("bundle", "-o", "/proc/no-such-dir/mgmt"), 1, "mgmt-pkg: error: "),
        (("no-such-command",), 2, "No such command 'no-such-command'"),
    ],
)
def test_bad_input_and_failed_operations_are_one_line(args, code, fragment):
    done = mgmt_pkg(*args)
    assert done.returncode == code, done.stderr
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr


def test_version_and_help_exit_zero():
    done = mgmt_pkg("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("mgmt-pkg, version ")
    assert mgmt_pkg("--help").returncode == 0
