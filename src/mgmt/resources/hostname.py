"""The hostname kind: the static, transient and pretty host names.

Through systemd-hostnamed (``hostnamectl``) where it answers, so its view and
D-Bus clients stay in step; else the files it would write (/etc/hostname,
PRETTY_HOSTNAME in /etc/machine-info, atomically) and sethostname(2) for the
kernel's (transient) name. ``hostname`` is the default for the static,
transient and pretty names, as in mgmt 0.0.8 ("if only Hostname is specified,
it will set all 3 fields to this value"). hostnamed keeps the kernel's name equal
to a static name when there is one and ignores a transient name meanwhile, so
a transient name that differs is set with sethostname(2) in either case (and
after the static name, which resets it). Every name is read back after it is
set: one that did not take fails the resource instead of passing unnoticed.
The watch is inotify on both files, and poll(2) on /proc/sys/kernel/hostname
for the kernel's name, which makes no inotify event: the file reports a change
as POLLPRI (see :class:`KernelNameWatch`).
"""

import ctypes
import os
import re
import select
import socket
import string
import subprocess
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from mgmt.log import get_logger
from mgmt.resources.atomic import atomic_write
from mgmt.resources.base import Field, FieldError, Resource, ResourceError
from mgmt.resources.fields import shown
from mgmt.resources.hosttool import run_tool
from mgmt.wakeup import Wakeup

log = get_logger("hostname")

_LABEL_CHARS = frozenset(string.ascii_letters + string.digits + "-")
HOSTNAME_FILE = "/etc/hostname"
KERNEL_NAME = "/proc/sys/kernel/hostname"
MACHINE_INFO = "/etc/machine-info"
NAMES = ("static_hostname", "transient_hostname", "pretty_hostname")


def valid_hostname(name: str) -> bool:
    """RFC 1123 labels, at most 64 characters (the kernel's limit)."""
    if not name or len(name) > 64 or name.startswith(".") or name.endswith("."):
        return False
    for label in name.split("."):
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not all(c in _LABEL_CHARS for c in label):
            return False
    return True


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def read_static(text: str) -> str:
    """The name in /etc/hostname as systemd reads it: its first line that is not
    empty or a comment (hostname(5)), stripped."""
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    return ""


# What systemd's env files escape with a backslash inside double quotes
# (hostnamectl writes PRETTY_HOSTNAME="say \"hi\"" so).
_ESCAPED = re.compile(r'([\\"`$])')
_UNESCAPED = re.compile(r'\\([\\"`$])')


def read_pretty(text: str) -> str:
    """PRETTY_HOSTNAME of /etc/machine-info, unquoted as systemd reads it."""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "PRETTY_HOSTNAME":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == "'":
                return value[1:-1]
            if len(value) >= 2 and value[0] == value[-1] == '"':
                return _UNESCAPED.sub(r"\1", value[1:-1])
            return value
    return ""


def with_pretty(text: str, pretty: str) -> str:
    """/etc/machine-info with PRETTY_HOSTNAME set, other lines kept."""
    lines = [ln for ln in text.splitlines() if ln.partition("=")[0].strip() != "PRETTY_HOSTNAME"]
    quoted = '"' + _ESCAPED.sub(r"\\\1", pretty) + '"'
    return "\n".join([*lines, f"PRETTY_HOSTNAME={quoted}"]) + "\n"


def sethostname(name: str) -> None:
    """The kernel's (transient) host name, through libc (the process needs CAP_SYS_ADMIN)."""
    libc = ctypes.CDLL(None, use_errno=True)
    data = name.encode("ascii")
    if libc.sethostname(data, len(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class HostnameRes(Resource):
    kind = "hostname"
    fields = {
        "hostname": Field(str, doc="default for static, transient and pretty_hostname"),
        "static_hostname": Field(str, doc="the name in /etc/hostname, used at boot"),
        "transient_hostname": Field(str, doc="the kernel's current name"),
        "pretty_hostname": Field(str, doc="free-form name for people (/etc/machine-info)"),
    }

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        if not any(params.get(key) for key in ("hostname", *NAMES)):
            raise FieldError(
                "hostname",
                "no name to set: give hostname (for all three) or static_hostname,"
                " transient_hostname or pretty_hostname",
            )
        for key in ("hostname", "static_hostname", "transient_hostname"):
            value = params.get(key)
            if value is not None and not valid_hostname(value):
                raise FieldError(key, f"{shown(value)} is not a valid host name")
        pretty = params.get("pretty_hostname")
        if pretty is not None and ("\n" in pretty or "\0" in pretty):
            raise FieldError("pretty_hostname", "must be one line")
        control = next((c for c in pretty or "" if ord(c) < 32 or ord(c) == 127), None)
        if control is not None:  # a tab, an escape: hostnamed refuses them
            raise FieldError(
                "pretty_hostname",
                f"{shown(pretty)}: {shown(control)} is a control character (hostnamed refuses it)",
            )

    @classmethod
    def autoedges(cls, name: str, params: Mapping[str, Any]) -> Tuple[List[str], List[str]]:
        # One id per name it sets: two resources setting one name could only fight,
        # but a name a resource is not given it leaves alone (one may set the
        # static name, another the pretty one).
        default = params.get("hostname")
        names = {
            "static": params.get("static_hostname") or default,
            "transient": params.get("transient_hostname") or default,
            "pretty": params.get("pretty_hostname") or default,
        }
        return [f"hostname:{kind}" for kind, value in names.items() if value is not None], []

    def __init__(self, name: str, params: Mapping[str, Any], meta: Any = None):
        super().__init__(name, params, meta)
        default = self.params.get("hostname")
        self.wanted: Dict[str, Optional[str]] = {
            "static_hostname": self.params.get("static_hostname") or default,
            "transient_hostname": self.params.get("transient_hostname") or default,
            "pretty_hostname": self.params.get("pretty_hostname") or default,
        }
        self._cancels: List[Callable[[], None]] = []
        self._hostnamed: Optional[bool] = None

    def watch(self) -> None:
        for path in (HOSTNAME_FILE, MACHINE_INFO):
            self._cancels.append(self.init.watcher.watch_path(path, self.init.event))
        try:
            self._cancels.append(KernelNameWatch(self.init.event).close)
        except OSError as err:  # no /proc: the next check sees a change
            self.init.log.debug("cannot watch the kernel's host name: %s", err)

    def close(self) -> None:
        for cancel in self._cancels:
            cancel()
        self._cancels.clear()

    def current(self) -> Dict[str, str]:
        return {
            "static_hostname": read_static(_read(HOSTNAME_FILE)),
            "transient_hostname": socket.gethostname(),
            "pretty_hostname": read_pretty(_read(MACHINE_INFO)),
        }

    def _wrong(self) -> Dict[str, str]:
        """Each managed name that differs from what is wanted -> what it is now."""
        now = self.current()
        return {k: now[k] for k, v in self.wanted.items() if v is not None and now[k] != v}

    def check_apply(self, apply: bool) -> bool:
        wrong = self._wrong()
        if not wrong:
            return True
        for key, now in wrong.items():
            self.note(key, self.wanted[key], now)
            if not apply:
                self.init.log.info("would %s (noop)", self._said(key, now))
        if not apply:
            return False
        key, failure = "", ""
        try:
            for key in ("static_hostname", "pretty_hostname"):
                if key in wrong:
                    self._set(key, self.wanted[key] or "")
            # The transient name last, and whether or not it was wrong before:
            # hostnamed gives the kernel the static name whenever that changes.
            key = "transient_hostname"
            transient = self.wanted[key]
            if transient is not None and socket.gethostname() != transient:
                self._set_transient(transient)
        except OSError as err:
            failure = f"cannot set {key}: {err.strerror or err}"
        # Read back, then log only the names that did change: a "set" line never
        # comes before (or instead of) the failure that kept a name from changing.
        left = self._wrong()
        for key, now in wrong.items():
            if key not in left:
                self.init.log.info("%s", self._said(key, now))
        if failure:
            raise ResourceError(repr(self), failure)
        if left:
            said = ", ".join(
                f"{k} is {shown(v)}, wanted {shown(self.wanted[k])}" for k, v in left.items()
            )
            raise ResourceError(repr(self), f"set, but {said}")
        return False

    def _said(self, key: str, was: str) -> str:
        return f"set {key} to {shown(self.wanted[key])} (was {shown(was)})"

    def _set(self, key: str, value: str) -> None:
        """The static or pretty name: through hostnamed, else its file."""
        if self._use_hostnamed():
            flag = "--" + key.split("_")[0]  # --static, --pretty
            proc = _hostnamectl(["set-hostname", flag, "--", value])
            if proc.returncode != 0:
                raise OSError(0, proc.stderr.strip() or "hostnamectl failed")
        elif key == "static_hostname":
            atomic_write(HOSTNAME_FILE, (value + "\n").encode("ascii"), 0o644)
        else:
            text = with_pretty(_read(MACHINE_INFO), value)
            atomic_write(MACHINE_INFO, text.encode("utf-8"), 0o644)

    def _set_transient(self, value: str) -> None:
        """The kernel's name: through hostnamed, which ignores it while a static
        name is set (it keeps the kernel's name equal to the static one), so
        then, as without hostnamed, sethostname(2)."""
        if self._use_hostnamed():
            proc = _hostnamectl(["set-hostname", "--transient", "--", value])
            if proc.returncode != 0:
                raise OSError(0, proc.stderr.strip() or "hostnamectl failed")
            if socket.gethostname() == value:
                return
            self.init.log.debug("hostnamed kept the static name: calling sethostname")
        sethostname(value)

    def _use_hostnamed(self) -> bool:
        """Whether hostnamed answers here (asked once per resource)."""
        if self._hostnamed is None:
            try:
                self._hostnamed = _hostnamectl(["status"]).returncode == 0
            except OSError:
                self._hostnamed = False
            if not self._hostnamed:
                self.init.log.debug("no hostnamed: writing the files and calling sethostname")
        return self._hostnamed


def _hostnamectl(argv: List[str]) -> "subprocess.CompletedProcess[str]":
    return run_tool(["hostnamectl", *argv], timeout=30)


class KernelNameWatch:
    """Calls ``callback`` from a thread of its own when the kernel's host name
    changes: /proc/sys/kernel/hostname tells poll(2) so with POLLPRI (and
    POLLERR), once per change since it last told (the kernel re-arms it)."""

    def __init__(self, callback: Callable[[], None]):
        self._fd = os.open(KERNEL_NAME, os.O_RDONLY | os.O_CLOEXEC)
        self._callback = callback
        self._closing = Wakeup()
        self._thread = threading.Thread(target=self._loop, name="hostname-watch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLPRI)  # not POLLIN: always "readable"
        poller.register(self._closing.fileno(), select.POLLIN)
        while True:
            for fd, events in poller.poll():
                if fd != self._fd or events & select.POLLNVAL:  # closing, or closed
                    return
                try:
                    self._callback()
                except Exception as err:  # the engine stopping: the next change tries again
                    log.debug("hostname watch: %s", err)

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        if self._thread.is_alive():  # in a wake-up that hangs: its fds must not be reused
            return
        os.close(self._fd)
        self._closing.close()
