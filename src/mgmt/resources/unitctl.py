"""``systemctl`` as the svc and timer kinds call it: read a unit's properties, act on it."""

import subprocess
from typing import Dict, List, Mapping

from mgmt.resources.hosttool import last_lines, run_tool

PROPERTIES = (
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "Result",
    "ExecMainCode",
    "ExecMainStatus",
    "InactiveExitTimestampMonotonic",
)
# ExecMainCode: how the main process ended (siginfo's CLD_* codes), in systemctl status's words.
_EXIT_CODES = {"1": "exited", "2": "killed", "3": "dumped"}


class UnitError(Exception):
    """systemctl failed; the message is its own last lines."""


def _run(argv: List[str]) -> "subprocess.CompletedProcess[str]":
    try:
        return run_tool(["systemctl", *argv])
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
        raise UnitError(f"systemctl {argv[0]} failed: {last_lines(proc.stderr or proc.stdout, 4)}")


def describe_state(props: Mapping[str, str]) -> str:
    """The unit's state as systemd words it, e.g. ``ActiveState=failed SubState=failed
    Result=exit-code (code=exited, status=1)``: why a unit is down."""
    text = " ".join(f"{key}={props.get(key, '')}" for key in ("ActiveState", "SubState", "Result"))
    code = _EXIT_CODES.get(props.get("ExecMainCode", ""))
    if code is not None:
        text += f" (main process: code={code}, status={props.get('ExecMainStatus', '')})"
    return text
