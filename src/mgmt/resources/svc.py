"""The svc kind: a systemd unit running or stopped, enabled or disabled at boot.

Through ``systemctl``, as an administrator would; the watch reads systemd's own
signals about the unit (see mgmt.resources.systemd_signals for why its private
socket rather than busctl), so a service killed from outside is started again
at once, without polling; and, when ``startup`` is managed, its signals about
unit files, so a unit disabled or enabled from outside is put back at once.
A unit that ended ``failed`` is reset first, so the start-rate limit that
protects a crashing unit does not keep a killed one down.
"""

import string
from typing import Any, Callable, List, Mapping, Optional, Tuple

from mgmt.resources.base import Field, FieldError, Resource, ResourceError
from mgmt.resources.systemd_signals import SystemdSignals
from mgmt.resources.unitctl import UnitError, systemctl, unit_properties

RUNNING = ("active", "activating", "reloading")
# UnitFileState values that satisfy startup: enabled / disabled.
ENABLED = ("enabled", "alias", "static", "generated", "indirect")
DISABLED = ("disabled", "static", "masked", "indirect", "generated", "")
DONE = {"enable": "enabled", "disable": "disabled", "start": "started", "stop": "stopped"}
# What systemd accepts in a unit name (systemd.unit(5), unit_name_is_valid): anything
# else can never name a unit, so it is refused when the graph is read, not at run time.
UNIT_CHARS = frozenset(string.ascii_letters + string.digits + ":-_.\\@")
UNIT_NAME_MAX = 255


def unit_name(name: str) -> str:
    """``nginx`` -> ``nginx.service``; a name with a unit suffix stays as it is."""
    suffixes = (".service", ".socket", ".target", ".timer", ".path", ".mount", ".scope")
    return name if name.endswith(suffixes) else name + ".service"


def unit_name_problem(unit: str) -> Optional[str]:
    """Why systemd would refuse ``unit`` as a unit name, or None when it is one."""
    if len(unit) > UNIT_NAME_MAX:
        return f"{len(unit)} characters, systemd allows {UNIT_NAME_MAX}"
    bad = next((ch for ch in unit if ch not in UNIT_CHARS), None)
    if bad is not None:
        return f"{bad!r} is not allowed (only ASCII letters, digits and : - _ . \\ @)"
    if unit.rfind(".") == 0:  # only the suffix: ".service"
        return "it has nothing before its suffix"
    # systemd refuses a leading "@"; a leading "-" would read as an option to systemctl.
    if unit.startswith(("-", "@")):
        return f"it cannot start with {unit[0]!r}"
    return None


def _check_unit(name: str) -> None:
    problem = unit_name_problem(unit_name(name))
    if problem is not None:
        raise FieldError("name", f"{name!r} is not a unit name: {problem}")


class SvcRes(Resource):
    kind = "svc"
    fields = {
        "name": Field(str, doc="unit name (.service added if no suffix); defaults to the name"),
        "state": Field(str, choices=("running", "stopped"), doc="omitted = not managed"),
        "startup": Field(str, choices=("enabled", "disabled"), doc="omitted = not managed"),
    }

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        name = params.get("name")
        if name is not None:
            _check_unit(name)

    @classmethod
    def autoedges(cls, name: str, params: Mapping[str, Any]) -> Tuple[List[str], List[str]]:
        # The unit is its identity: two resources for one unit (running and
        # stopped) would undo each other; the graph refuses them.
        return ["svc:" + unit_name(params.get("name") or name)], []

    def __init__(self, name: str, params: Mapping[str, Any], meta: Any = None):
        super().__init__(name, params, meta)
        _check_unit(self.params.get("name") or name)
        self.unit = unit_name(self.params.get("name") or name)
        self._cancels: List[Callable[[], None]] = []

    def watch(self) -> None:
        try:
            signals = self.init.services.get(SystemdSignals)
            self._cancels.append(signals.watch_unit(self.unit, self.init.event))
            if self.params.get("startup") is not None:  # a `systemctl disable` is drift too
                self._cancels.append(signals.watch_unit_files(self.init.event))
        except OSError as err:
            self.init.log.warning(
                "cannot watch systemd (%s): changes made outside are seen at the next check",
                err.strerror or err,
            )

    def close(self) -> None:
        cancels, self._cancels = self._cancels, []
        for cancel in cancels:
            cancel()

    def check_apply(self, apply: bool) -> bool:
        try:
            return self._check_apply(apply)
        except UnitError as err:
            raise ResourceError(repr(self), f"{self.unit}: {err}") from None

    def _check_apply(self, apply: bool) -> bool:
        props = unit_properties(self.unit)
        if props.get("LoadState") == "not-found":
            raise UnitError("no such unit on this host")
        steps: List[List[str]] = []
        startup = self.params.get("startup")
        file_state = props.get("UnitFileState", "")
        if startup == "enabled" and file_state not in ENABLED:
            self.note("startup", "enabled", file_state or "unknown")
            steps.append(["enable", "--", self.unit])
        elif startup == "disabled" and file_state not in DISABLED:
            self.note("startup", "disabled", file_state)
            steps.append(["disable", "--", self.unit])
        state = self.params.get("state")
        active = props.get("ActiveState", "")
        if state == "running" and active not in RUNNING:
            self.note("state", "running", active)
            if active == "failed":  # the start-rate limit must not keep it down
                steps.append(["reset-failed", "--", self.unit])
            steps.append(["start", "--", self.unit])
        elif state == "stopped" and active not in ("inactive", "failed"):
            self.note("state", "stopped", active)
            steps.append(["stop", "--", self.unit])
        if not steps:
            return True
        for step in steps:
            if apply:
                systemctl(step)
            # After the step, not before: a failed start is logged as the failure alone.
            if step[0] in DONE:
                said = f"{DONE[step[0]]} {self.unit}"
                self.init.log.info(said if apply else f"would {step[0]} {self.unit} (noop)")
        return False
