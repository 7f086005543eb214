"""The svc kind: a systemd unit running or stopped, enabled or disabled at boot.

Through ``systemctl``, as an administrator would; the watch reads systemd's own
signals about the unit (see mgmt.resources.systemd_signals for why its private
socket rather than busctl), so a service killed from outside is started again
at once, without polling; and its signals about unit files, so a unit disabled
or enabled from outside is put back at once, and one that appears (a package
installed it, then daemon-reload) or is unmasked is acted on at once.
A unit that ended ``failed`` is reset first, so the start-rate limit that
protects a crashing unit does not keep a killed one down.

Resetting that limit makes the agent the one that must not restart a unit in a
loop: ``systemctl start`` returns as soon as a simple service is forked, so a
start counts only once the unit stays running for :data:`SETTLE` seconds. One
that ends sooner failed to start: the resource fails quoting systemd's state,
and that start's end (and the signals it sends) does not start it again; a new
start of the unit from outside does, a ``systemctl reset-failed`` of it (which
zeroes the activation's timestamp), a graph edit or ``meta: {retry}``. Nor is a
unit that keeps ending after it settled started in a loop: the agent keeps the
unit's own start limit (StartLimitBurst starts within StartLimitIntervalSec,
5 in 10 s by default; every activation counts, systemd's own restarts too, as
systemd counts them), which its resets take from systemd, and the resource
fails as a failed start does.

``systemctl start`` waits for the start job, as long as the unit is activating
(a slow ExecStartPre, a Type=notify unit not yet ready: TimeoutStartSec, 90 s
by default), and ``systemctl stop`` for the stop job (a slow ExecStop). An
agent told to stop, or a resource edited or removed, does not wait: the job is
left to systemd, neither done nor failed, and the unit is as systemd has it.

A ``Type=oneshot`` unit without ``RemainAfterExit`` is never active for long:
its start runs it to its end, and it is inactive again once it succeeded. Such
a unit counts as running once it has run and succeeded (since systemd started,
by the agent or anyone): it is started when it never ran or failed, and not
again after each run.

A name may be an alias of a unit (``sshd`` of Debian's ssh.service, ``dbus``
of dbus-broker.service): systemd sends its signals under the unit's own name
(its Id) only, and disabling the unit removes the alias. So the resource acts
on, and watches, the unit the name leads to, and keeps that unit once the
alias is gone.
"""

import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Tuple

from mgmt.resources.base import Field, FieldError, Resource, ResourceError
from mgmt.resources.fields import shown
from mgmt.resources.svcstarts import StartHistory
from mgmt.resources.systemd_signals import SystemdSignals
from mgmt.resources.unitctl import (
    Abandonable,
    UnitError,
    await_restart,
    describe_state,
    masked,
    properties,
    ran_once,
    systemctl,
    unit_properties,
)
from mgmt.resources.unitinstall import DISABLED, install_state
from mgmt.resources.unitname import unit_name, unit_name_problem

RUNNING = ("active", "activating", "reloading")
# Where an administrator or a package puts a unit's file (mgmt's svc autoedges).
UNIT_FOLDERS = ("/etc/systemd/system", "/usr/lib/systemd/system")
DONE = {"enable": "enabled", "disable": "disabled", "start": "started", "stop": "stopped"}
# How long a unit the agent started must stay running for the start to count, as
# supervisord's startsecs (default 1 s): a simple service is "started" once forked.
SETTLE = 1.0


def _check_unit(name: str, state: Optional[str]) -> None:
    unit = unit_name(name)
    problem = unit_name_problem(unit)
    if problem is not None:
        raise FieldError("name", f"{shown(name)} is not a unit name: {problem}")
    stem = unit.rpartition(".")[0]
    if state is not None and stem.endswith("@"):  # enabling one may be right (DefaultInstance)
        example = f"{stem}NAME.{unit.rpartition('.')[2]}"
        raise FieldError("name", f"{shown(name)} is a template: give it an instance ({example})")


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
            _check_unit(name, params.get("state"))

    @classmethod
    def autoedges(cls, name: str, params: Mapping[str, Any]) -> Tuple[List[str], List[str]]:
        # The unit is its identity: two resources for one unit (running and
        # stopped) would undo each other; the graph refuses them. A file resource
        # that writes its unit file runs first, as mgmt orders them.
        unit = unit_name(params.get("name") or name)
        return ["svc:" + unit], [f"file:{folder}/{unit}" for folder in UNIT_FOLDERS]

    def __init__(self, name: str, params: Mapping[str, Any], meta: Any = None):
        super().__init__(name, params, meta)
        _check_unit(self.params.get("name") or name, self.params.get("state"))
        self.unit = unit_name(self.params.get("name") or name)
        self._cancels: List[Callable[[], None]] = []
        self._changed = threading.Event()  # a signal about the unit: a start's wait ends early
        # While our own start settles, its signals are ours to read (see _start), not
        # events: a failed start would otherwise wake a check of its own failure.
        self._starting = False
        # The last failed start: the activation it made (systemd's InactiveExitTimestamp,
        # new at each start of the unit, whoever starts it), what it said, and how many
        # failed in a row on that activation (the first, then any meta retries).
        self._failed_activation: Optional[str] = None
        self._failure = ""
        self._failed_starts = 0
        # When the unit was started, against its start limit.
        self._history = StartHistory()
        # The unit the name leads to (its Id: another unit's for an alias), acted on
        # and watched; kept when an alias goes (see _properties).
        self.real = self.unit
        # An enable or disable that left the unit file state as it was: (that state,
        # startup wanted, what failed), not tried again while both stay so.
        self._file_failure: Optional[Tuple[str, str, str]] = None
        self._signals: Optional[SystemdSignals] = None
        self._watched: Set[str] = set()
        self._calls = Abandonable()  # a start or stop under way, which close() leaves to systemd

    def watch(self) -> None:
        try:
            signals = self.init.services.get(SystemdSignals)
            self._watched = {self.unit, self.real}  # a check may have found the unit first
            for unit in sorted(self._watched):
                self._cancels.append(signals.watch_unit(unit, self._unit_changed))
            self._signals = signals
            # A `systemctl disable` is drift; a unit a package just installed (then
            # daemon-reload, as rpm's systemd triggers run) or one unmasked says so
            # only with the unit-file signals, not with any of its own.
            self._cancels.append(signals.watch_unit_files(self.init.event))
        except OSError as err:
            self.init.log.warning(
                "cannot watch systemd (%s): changes made outside are seen at the next check",
                err.strerror or err,
            )

    def _unit_changed(self) -> None:
        self._changed.set()
        if not self._starting:
            self.init.event()

    def close(self) -> None:
        cancels, self._cancels = self._cancels, []
        for cancel in cancels:
            cancel()
        self._calls.abandon()  # a start job still running (activating) goes on without us
        self._changed.set()  # a start waiting to settle stops waiting

    def check_apply(self, apply: bool) -> bool:
        try:
            return self._check_apply(apply)
        except UnitError as err:
            raise ResourceError(repr(self), f"{self.unit}: {err}") from None

    def _properties(self) -> Dict[str, str]:
        """The properties of the unit the name leads to, which then is :attr:`real`
        and watched too: an alias's signals come under the unit's own name. A name
        that no longer leads anywhere, having led to a unit (an alias, removed when
        that unit was disabled), stands for that unit still."""
        props = properties(self.unit)
        if props.get("LoadState") == "not-found" and self.real != self.unit:
            props = unit_properties(self.real)
        real = props.get("Id") or self.unit
        if real != self.real:
            self.real = real
            if self._signals is not None and real not in self._watched:
                self._watched.add(real)
                try:
                    self._cancels.append(self._signals.watch_unit(real, self._unit_changed))
                except OSError as err:
                    self.init.log.warning("cannot watch %s: %s", real, err.strerror or err)
        return props

    def _check_apply(self, apply: bool, reloaded: bool = False, waited: bool = False) -> bool:
        props = self._properties()
        self._history.count(props)
        if props.get("LoadState") == "not-found":
            if self.params.get("state") == "running" or self.params.get("startup") == "enabled":
                if not apply and self.changed_before:  # --noop: they may install it
                    return self._would_come(props)
                raise UnitError("no such unit on this host")
            # Neither running nor enabled, as wanted (an alias is gone once its unit
            # was disabled: the next run finds no unit by that name).
            self.init.log.info("%s: no such unit on this host: stopped and disabled", self.unit)
            return True
        if props.get("LoadState") == "masked":  # systemd refuses a start and an enable
            running = props.get("ActiveState", "") in RUNNING or ran_once(props)
            wants = ["started"] if self.params.get("state") == "running" and not running else []
            wants += ["enabled"] if self.params.get("startup") == "enabled" else []
            if wants:
                raise UnitError(masked(props, wants))
        steps: List[List[str]] = []
        startup = self.params.get("startup")
        boot = install_state(props)
        file_state = boot.shown
        if self._file_failure is not None and (
            self._file_failure[0] != file_state or self._file_failure[1] != startup
        ):
            self._file_failure = None  # changed since: try again
        if apply and self._file_failure is not None:
            raise UnitError(f"{self._file_failure[2]} (not tried again while it stays so)")
        if startup == "enabled" and not boot.enabled:
            self.note("startup", "enabled", file_state or "unknown")
            steps.append(["enable", "--", self.real])
        elif startup == "disabled" and not boot.disabled:
            self.note("startup", "disabled", file_state)
            steps.append(["disable", "--", self.real])
        state = self.params.get("state")
        active = props.get("ActiveState", "")
        if state == "running" and active not in RUNNING and not ran_once(props):
            if apply and (self._start_failed_before(props) or self._start_limited(props)):
                raise UnitError(self._failure)
            self.note("state", "running", active)
            if active == "failed":  # the start-rate limit must not keep it down
                steps.append(["reset-failed", "--", self.real])
            steps.append(["start", "--", self.real])
        elif state == "stopped" and active not in ("inactive", "failed"):
            self.note("state", "stopped", active)
            steps.append(["stop", "--", self.real])
        if not steps and state == "running" and props.get("SubState") == "auto-restart":
            # Down, waiting for systemd to restart it (Restart=): not running, and
            # not to be started by the agent either (that would only hurry a loop).
            # A restart due soon (a killed service) is waited for and checked then.
            if not waited and self._await_restart(props):
                return self._check_apply(apply, reloaded, waited=True)
            raise UnitError(
                f"not running: it ended, and systemd is to start it again (Restart=):"
                f" {describe_state(props)}"
            )
        if not steps:
            return True
        starts = any(step[0] == "start" for step in steps)
        if starts and props.get("NeedDaemonReload") == "yes" and not reloaded:
            # Its file (or a drop-in) changed on disk since systemd read it: a start
            # now would run what systemd has, the old one (systemctl only warns).
            # systemd reads it again first, and the check is made anew.
            if not apply:
                self.init.log.info("would reload systemd: %s changed on disk (noop)", self.unit)
            else:
                systemctl(["daemon-reload"])
                self.init.log.info("reloaded systemd: %s changed on disk", self.unit)
                self.notes = []
                return self._check_apply(apply, reloaded=True)
        for step in steps:
            verb = step[0]
            if apply and verb in ("enable", "disable"):
                self._set_unit_file(verb)
            elif apply and verb == "reset-failed":
                systemctl(step)
            elif apply and not (self._start() if verb == "start" else self._calls.systemctl(step)):
                # Closed while systemd's job ran on (the last step: nothing is left undone).
                self.init.log.info("left the %s of %s to systemd, under way", verb, self.unit)
                return False
            # After the step, not before: a failed start is logged as the failure alone.
            if step[0] in DONE:
                said = f"{DONE[step[0]]} {self.unit}"
                self.init.log.info(said if apply else f"would {step[0]} {self.unit} (noop)")
        return False

    def _await_restart(self, props: Mapping[str, str]) -> bool:
        def give_up() -> bool:
            return self.init.stopping.is_set() or self._calls.abandoned

        self._starting = True  # its signals are this wait's, not events
        try:
            return await_restart(self.real, props, self._changed, give_up, SETTLE)
        finally:
            self._starting = False

    def _would_come(self, props: Mapping[str, str]) -> bool:
        """--noop, a unit the host lacks after resources that would change (a pkg
        that would install it, a file that would write it): what the real run would
        start or enable, not a failure; False, as would-change."""
        wanted = [("startup", "enabled", "enable"), ("state", "running", "start")]
        after = self.changed_before_said()
        for field, value, verb in wanted:
            if self.params.get(field) == value:
                self.note(field, value, "no such unit")
                self.init.log.info(
                    f"would {verb} {self.unit} (noop; no such unit yet: after {after},"
                    " which would change)"
                )
        return False

    def _set_unit_file(self, verb: str) -> None:
        """``systemctl enable`` or ``disable``, then the unit file state read back.
        A plain disable leaves what ``enable --runtime`` made (enabled-runtime):
        ``disable --runtime`` removes that. A state the step did not change fails
        the resource, and the step is not run again while the state stays so
        (each run's reload would wake the next check, for ever). The step is made
        twice before that: a change from outside between the step and the look
        (a `systemctl disable` right after our enable) is no failure of the step."""
        for _ in range(2):
            systemctl([verb, "--", self.real])
            props = properties(self.real)
            raw = props.get("UnitFileState", "")
            if verb == "disable" and raw.endswith("-runtime") and raw not in DISABLED:
                systemctl(["disable", "--runtime", "--", self.real])
                props = properties(self.real)
            boot = install_state(props)
            left = boot.shown
            if boot.enabled if verb == "enable" else boot.disabled:
                return
        wanted = "enabled" if verb == "enable" else "disabled"
        message = f"systemctl {verb} left UnitFileState={left}, wanted {wanted}"
        self._file_failure = (left, wanted, message)
        raise UnitError(message)

    def _start_failed_before(self, props: Mapping[str, str]) -> bool:
        """True when the unit is still down from this resource's own failed start (its
        activation has not changed) and no retry is left: starting it again would
        only restart it in a loop, each end of a start waking the next one."""
        if props.get("InactiveExitTimestampMonotonic") != self._failed_activation:
            self._failed_activation, self._failed_starts = None, 0
            return False
        retry = self.meta.retry
        return retry >= 0 and self._failed_starts > retry

    def _start_limited(self, props: Mapping[str, str]) -> bool:
        """True when the unit reached its start limit (see mgmt.resources.svcstarts):
        it fails as a failed start, and is not started again until its activation
        changes from outside (see _start_failed_before)."""
        failure = self._history.limited(props)
        if failure is None:
            return False
        self._failed_activation = props.get("InactiveExitTimestampMonotonic")
        self._failed_starts = self.meta.retry + 1
        self._failure = failure
        return True

    def _start(self) -> bool:
        """``systemctl start``, then wait until the unit has run for SETTLE seconds;
        UnitError quoting systemd's state when it ends (or starts to restart) sooner.
        False when close() came while systemctl still waited for the start job (the
        unit activating): the job is left to systemd, the start neither done nor failed."""
        self._starting = True
        try:
            started = self._start_and_settle()
        finally:
            self._starting = False
        # Settled: a signal after its last look (the unit ended right then) is news.
        if self._changed.is_set():
            self.init.event()
        return started

    def _start_and_settle(self) -> bool:
        self._changed.clear()
        said = ""
        before = unit_properties(self.real).get("InactiveExitTimestampMonotonic")
        try:
            if not self._calls.systemctl(["start", "--", self.real]):
                return False
        except UnitError as err:  # e.g. Type=exec or notify: the start job itself failed
            said = f" ({err})"
            props = unit_properties(self.real)
            if props.get("InactiveExitTimestampMonotonic") == before:
                # Refused before it ran (RefuseManualStart, a dependency missing):
                # systemctl's words are the reason, not a unit that ended.
                self._failed_activation, self._failed_starts = before, self._failed_starts + 1
                self._failure = f"not started: {err}; {describe_state(props)}"
                raise UnitError(self._failure) from None
        deadline = time.monotonic() + SETTLE
        while True:
            props = unit_properties(self.real)
            up = props.get("ActiveState") in RUNNING and props.get("SubState") != "auto-restart"
            if not said and ran_once(props):  # a oneshot: it ran to its end, and succeeded
                self._failed_activation, self._failed_starts = None, 0
                return True
            if said or not up:
                break
            left = deadline - time.monotonic()
            if left <= 0 or self.init.stopping.is_set() or self._calls.abandoned:
                self._failed_activation, self._failed_starts = None, 0
                self._history.count(props)
                return True
            self._changed.wait(left)
            self._changed.clear()
        self._failed_activation = props.get("InactiveExitTimestampMonotonic")
        self._failed_starts += 1
        self._failure = f"did not stay running after its start: {describe_state(props)}{said}"
        raise UnitError(self._failure)
