"""The msg kind: a message to the journal and/or syslog, sent once per graph (and per edit).

The journal gets it through journald's native socket (a datagram of
``KEY=value`` fields, the protocol of sd_journal_send), so custom ``fields``
arrive as fields, not as text, and no libsystemd binding is needed; syslog
through /dev/log, in the line glibc's syslog(3) writes (facility daemon, tag
mgmt). Not the standard library's syslog module: it drops a message nothing
receives without a word. Either way the line also goes to the agent's own log.
A host without journald (or nothing at /dev/log) makes ``journal: true`` (or
``syslog: true``) fail with the socket's path in the error.
"""

import errno
import os
import socket
import struct
import time
from typing import Any, Dict, Mapping, Set

from mgmt.resources.base import Field, FieldError, Resource, ResourceError
from mgmt.resources.fields import shown

JOURNAL_SOCKET = "/run/systemd/journal/socket"
SYSLOG_SOCKET = "/dev/log"
# A listener that reads nothing fills its queue, and a send then waits for ever.
SEND_TIMEOUT = 5.0
LOG_DAEMON = 3 << 3  # syslog(3)'s facility for system daemons
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
# mgmt's names (and syslog's) -> syslog priority numbers.
PRIORITIES = {
    "emerg": 0,
    "alert": 1,
    "crit": 2,
    "err": 3,
    "warning": 4,
    "notice": 5,
    "info": 6,
    "debug": 7,
}


# Fields the message itself sets, from body and priority, and which say who sent it.
OWN_FIELDS = ("MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "MGMT_RESOURCE")


def journal_datagram(fields: Mapping[str, str]) -> bytes:
    """journald's native format: ``KEY=value\\n``, or for a value with a newline
    ``KEY\\n`` + its 64-bit little-endian length + the value + ``\\n``."""
    out = []
    for key, value in fields.items():
        data = value.encode("utf-8")
        if b"\n" in data:
            out.append(key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n")
        else:
            out.append(key.encode() + b"=" + data + b"\n")
    return b"".join(out)


def _valid_field(name: str) -> bool:
    # journald: at most 64 ASCII upper case letters, digits and "_", not starting with
    # "_" or a digit (a longer name is dropped without a word: systemd's journal-file.c).
    return 0 < len(name) <= 64 and name[0] not in "0123456789_" and all(
        "0" <= c <= "9" or c == "_" or "A" <= c <= "Z" for c in name
    )  # fmt: skip


class MsgRes(Resource):
    kind = "msg"
    fields = {
        "body": Field(str, default="", doc="the message; defaults to the resource's name"),
        "priority": Field(
            str,
            default="info",
            choices=tuple(PRIORITIES) + tuple(p.capitalize() for p in PRIORITIES),
        ),
        "fields": Field(dict, doc="extra journal fields, NAME: value (upper case names)"),
        "journal": Field(bool, default=False, doc="send to the systemd journal"),
        "syslog": Field(bool, default=False, doc="send to syslog"),
    }

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        for name, value in (params.get("fields") or {}).items():
            if not isinstance(name, str) or not _valid_field(name):
                # The name is cut in the message: say its length, which may be the fault.
                size = f" of {len(name)} characters" if isinstance(name, str) else ""
                problem = (
                    "is not a journal field name (A-Z, 0-9, _, not starting with _ or a "
                    "digit; 64 at most)"
                )
                raise FieldError("fields", f"{shown(name)}{size} {problem}")
            if name in OWN_FIELDS:
                raise FieldError(
                    "fields",
                    f"{name} is set by the message itself (MESSAGE from body, PRIORITY "
                    "from priority; SYSLOG_IDENTIFIER and MGMT_RESOURCE say who sent it)",
                )
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise FieldError("fields", f"{name}: {shown(value)} is not text or a number")

    def __init__(self, name: str, params: Mapping[str, Any], meta: Any = None):
        super().__init__(name, params, meta)
        self.body = self.params["body"] or name
        self.priority = PRIORITIES[self.params["priority"].lower()]
        self.sent = False
        self.sent_to: Set[str] = set()  # "journal", "syslog": where it went already

    def check_apply(self, apply: bool) -> bool:
        if self.sent:
            return True
        self.note("body", self.body, None)
        # A body of several lines stays one line of the agent's log.
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in self.body)
        if not apply:
            self.init.log.info("would send: %s (noop)", shown)
            return False
        # Each place once: a retry after syslog failed must not send to the journal again.
        for place, send in (("journal", self._journal), ("syslog", self._syslog)):
            if self.params[place] and place not in self.sent_to:
                send()
                self.sent_to.add(place)
        self.init.log.info("message: %s", shown)
        self.sent = True
        return False

    def _journal(self) -> None:
        fields: Dict[str, str] = {
            "MESSAGE": self.body,
            "PRIORITY": str(self.priority),
            "SYSLOG_IDENTIFIER": "mgmt",
            "MGMT_RESOURCE": f"msg[{self.name}]",
        }
        for key, value in (self.params.get("fields") or {}).items():
            fields[key] = str(value)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.settimeout(SEND_TIMEOUT)
        try:
            sock.sendto(journal_datagram(fields), JOURNAL_SOCKET)
        except OSError as err:
            message = f"cannot send to the journal at {JOURNAL_SOCKET}: {err.strerror or err}"
            raise ResourceError(repr(self), message) from None
        finally:
            sock.close()

    def _syslog(self) -> None:
        sent = syslog_line(LOG_DAEMON | self.priority, "mgmt", self.body)
        # A datagram, as syslog(3) sends first; a daemon that listens on a stream
        # (EPROTOTYPE) gets it NUL-terminated, as syslog(3) then sends it.
        for kind, data in ((socket.SOCK_DGRAM, sent), (socket.SOCK_STREAM, sent + b"\0")):
            sock = socket.socket(socket.AF_UNIX, kind)
            sock.settimeout(SEND_TIMEOUT)
            try:
                sock.connect(SYSLOG_SOCKET)
                sock.sendall(data)
                return
            except OSError as err:
                if kind == socket.SOCK_DGRAM and err.errno == errno.EPROTOTYPE:
                    continue
                message = f"cannot send to syslog at {SYSLOG_SOCKET}: {err.strerror or err}"
                raise ResourceError(repr(self), message) from None
            finally:
                sock.close()


def syslog_line(priority: int, tag: str, body: str) -> bytes:
    """The line syslog(3) sends: ``<PRI>Mmm dd hh:mm:ss TAG[PID]: BODY`` (local time,
    the month in English whatever the locale)."""
    now = time.localtime()
    stamp = f"{MONTHS[now.tm_mon - 1]} {now.tm_mday:2d} {time.strftime('%H:%M:%S', now)}"
    return f"<{priority}>{stamp} {tag}[{os.getpid()}]: {body}".encode("utf-8", "replace")
