"""``systemctl`` as the svc and timer kinds call it: read a unit's properties, act on it."""

import contextlib
import re
import subprocess
import threading
import time
from typing import Callable, Dict, List, Mapping, Optional

from mgmt.resources.hosttool import last_lines, run_tool, start_tool

# A restart by systemd (Restart=) due within this many seconds is waited for.
RESTART_WAIT = 10.0
PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "FragmentPath",  # its file, whose [Install] Also= says what enabling it enables
    "NeedDaemonReload",
    "RestartUSec",
    "Type",
    "RemainAfterExit",
    "Result",
    "ExecMainCode",
    "ExecMainStatus",
    "InactiveExitTimestampMonotonic",
    "StartLimitBurst",
    "StartLimitIntervalUSec",
    "StartLimitInterval",  # its name before systemd 230 (RHEL 7)
)
# The units of a systemd time span as `systemctl show` words it ("1min 30s"), in seconds.
_SPAN_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600, "d": 86400, "w": 604800}
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


def unit_text(unit: str) -> str:
    """``systemctl cat``: the unit's file and drop-ins (a template's too), "" when
    systemctl cannot show them."""
    proc = _run(["cat", "--", unit])
    return proc.stdout if proc.returncode == 0 else ""


def is_template(unit: str) -> bool:
    """``getty@.service``: a template, which systemd loads no unit for (only its instances)."""
    return unit.rpartition(".")[0].endswith("@")


def properties(unit: str) -> Dict[str, str]:
    """:func:`unit_properties`, also of a template: `systemctl show` refuses its
    name ("neither a valid invocation ID nor unit name"), so its unit file state
    is `systemctl is-enabled`'s (enabled once its DefaultInstance is)."""
    if not is_template(unit):
        return unit_properties(unit)
    proc = _run(["is-enabled", "--", unit])
    words = proc.stdout.split()
    if words:
        return {"Id": unit, "LoadState": "loaded", "UnitFileState": words[0]}
    if "No such file" in proc.stderr:
        return {"Id": unit, "LoadState": "not-found"}
    raise UnitError(
        last_lines(proc.stderr) if proc.stderr.strip() else "systemctl is-enabled failed"
    )


def ran_once(props: Mapping[str, str]) -> bool:
    """True for a ``Type=oneshot`` unit without RemainAfterExit that ran (it has left
    the inactive state since systemd started or its last reset-failed) and
    succeeded: inactive again, as systemd leaves such a unit once its command is done."""
    return (
        props.get("Type") == "oneshot"
        and props.get("RemainAfterExit") == "no"
        and props.get("ActiveState") == "inactive"
        and props.get("Result") == "success"
        and props.get("InactiveExitTimestampMonotonic", "0") not in ("", "0")
    )


def await_restart(
    unit: str,
    props: Mapping[str, str],
    changed: threading.Event,
    give_up: Callable[[], bool],
    grace: float,
) -> bool:
    """Wait for systemd's own restart (Restart=) of ``unit``, in auto-restart with
    ``props``, when due within RESTART_WAIT seconds (and ``grace`` more); ``changed``
    is set at each signal about the unit. True once it is out of auto-restart."""
    delay = timespan(props.get("RestartUSec", ""))
    if delay is None or delay > RESTART_WAIT:
        return False
    deadline = time.monotonic() + delay + grace
    while not give_up():
        changed.clear()
        if unit_properties(unit).get("SubState") != "auto-restart":
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        changed.wait(left)
    return False


def masked(props: Mapping[str, str], wants: List[str]) -> str:
    """Why a masked unit cannot be as wanted (``wants``: "started", "enabled"): the
    real run's start failed as one that did not stay running, and --noop said it
    would start it, though systemd refuses both."""
    how = props.get("UnitFileState") or "masked"
    unmask = "unmask --runtime" if how.endswith("-runtime") else "unmask"
    return (
        f"masked (UnitFileState={how}): systemd will not have it {' or '.join(wants)}"
        f" until it is unmasked (systemctl {unmask})"
    )


def systemctl(argv: List[str]) -> None:
    """Run ``systemctl ARGV``; UnitError with its message when it fails."""
    proc = _run(argv)
    _check(argv, proc.returncode, proc.stdout, proc.stderr)


def _check(argv: List[str], returncode: int, out: str, err: str) -> None:
    if returncode != 0:
        raise UnitError(f"systemctl {argv[0]} failed: {last_lines(err or out, 4)}")


class Abandonable:
    """systemctl calls that :meth:`abandon` ends at once, from any thread (and none
    starts after it). ``systemctl start`` waits for the unit's start job, as long
    as the unit is activating (a slow ExecStartPre, a Type=notify unit not yet
    ready: up to its TimeoutStartSec, 90 s by default); an agent told to stop, or
    a resource taken out of the graph, must not wait that long. Killing systemctl
    leaves the job to systemd, which goes on with it as without systemctl."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: Optional[subprocess.Popen] = None
        self.abandoned = False

    def systemctl(self, argv: List[str]) -> bool:
        """:func:`systemctl`; False (and no error) when abandoned, before it or while it ran."""
        with self._lock:
            if self.abandoned:
                return False
            try:
                # Its own session: a ^C at the terminal is the agent's to act on, not its.
                proc = self._proc = start_tool(["systemctl", *argv], start_new_session=True)
            except OSError as err:
                raise UnitError(f"cannot run systemctl: {err.strerror or err}") from None
        out, err = proc.communicate()
        with self._lock:
            self._proc = None
            if self.abandoned:
                return False
        _check(argv, proc.returncode, out, err)
        return True

    def abandon(self) -> None:
        with self._lock:
            self.abandoned = True
            if self._proc is not None:
                with contextlib.suppress(ProcessLookupError):  # it ended just now
                    self._proc.kill()


def describe_state(props: Mapping[str, str]) -> str:
    """The unit's state as systemd words it, e.g. ``ActiveState=failed SubState=failed
    Result=exit-code (code=exited, status=1)``: why a unit is down."""
    text = " ".join(f"{key}={props.get(key, '')}" for key in ("ActiveState", "SubState", "Result"))
    code = _EXIT_CODES.get(props.get("ExecMainCode", ""))
    if code is not None:
        text += f" (main process: code={code}, status={props.get('ExecMainStatus', '')})"
    return text


def timespan(text: str) -> Optional[float]:
    """A time span as `systemctl show` prints it ("10s", "1min 30s", "500ms", "0")
    in seconds; None for "infinity" or what it cannot read."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        return None
    total = 0.0
    for number, unit in parts:
        if (unit or "s") not in _SPAN_UNITS:
            return None
        total += float(number) * _SPAN_UNITS[unit or "s"]
    return total
