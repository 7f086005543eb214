"""``systemctl`` as the svc and timer kinds call it: read a unit's properties, act on it."""

import os
import subprocess
from typing import Dict, List

PROPERTIES = ("LoadState", "ActiveState", "SubState", "UnitFileState")


class UnitError(Exception):
    """systemctl failed; the message is its own last lines."""


def _run(argv: List[str]) -> "subprocess.CompletedProcess[str]":
    try:
        # Python 3.6 (RHEL 8 hosts): no capture_output= or text= yet.
        return subprocess.run(  # noqa: UP022
            ["systemctl", *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,  # noqa: UP021
            env=dict(os.environ, LC_ALL="C", SYSTEMD_PAGER="", SYSTEMD_COLORS="0"),
        )
    except OSError as err:
        raise UnitError(f"cannot run systemctl: {err.strerror or err}") from None


def unit_properties(unit: str) -> Dict[str, str]:
    """The unit's load, active and unit-file states as systemd reports them."""
    argv = ["show", "--no-pager"]
    for name in PROPERTIES:
        argv += ["-p", name]
    proc = _run([*argv, "--", unit])
    if proc.returncode != 0:
        raise UnitError(
            (proc.stderr or proc.stdout).strip() or f"systemctl show exited {proc.returncode}"
        )
    props = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        props[key] = value
    return props


def systemctl(argv: List[str]) -> None:
    """Run ``systemctl ARGV``; UnitError with its message when it fails."""
    proc = _run(argv)
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        raise UnitError(f"systemctl {argv[0]} failed: " + "; ".join(lines[-4:]))
