"""Unit state changes from systemd as they happen, on the standard library alone.

Why this and not ``busctl monitor`` / ``gdbus monitor``: on the system bus,
systemd sends its PropertiesChanged signals only while some client has called
``Subscribe()`` and keeps its connection open, which neither monitor does (and
monitoring needs the bus daemon's eavesdropping rights). On its *private*
socket, ``/run/systemd/private`` (root only, the socket systemctl itself uses
as root), systemd sends every unit's signals to every connection
unconditionally, without a bus daemon in between. So the agent connects there,
authenticates (SASL EXTERNAL, its uid), and only reads: it never calls a
method, so all it needs of the D-Bus wire format is to split the stream into
messages and read two header fields, the object path and the member name.
That is about a hundred lines, against a D-Bus library (dbus-python, jeepney)
that the bundle would have to carry for one socket.

One :class:`SystemdSignals` per agent (``init.services``) holds the connection
and its reader thread; each svc resource registers the unit it cares about.

Whether a unit is enabled is no property systemd announces a change of: a
unit's PropertiesChanged never carries UnitFileState. What systemd does send
(to every private connection) is the manager's ``UnitFilesChanged`` after an
enable or disable made through it, and ``Reloading`` around a daemon-reload
(which follows links made or removed by hand); those two wake whoever watches
unit files.

systemd drops every private connection when it re-executes itself
(``systemctl daemon-reexec``, which an upgrade of systemd's package runs): the
reader then connects again as soon as systemd answers, and wakes every watcher
once it has, for what changed meanwhile.
"""

import contextlib
import os
import socket
import string
import struct
import threading
from typing import Callable, Dict, List, Optional, Tuple

PRIVATE_SOCKET = "/run/systemd/private"
UNIT_PATH = "/org/freedesktop/systemd1/unit/"
MANAGER_PATH = "/org/freedesktop/systemd1"
UNIT_FILE_SIGNALS = ("UnitFilesChanged", "Reloading")
# The key unit-file watchers are kept under, beside the units' object paths.
_UNIT_FILES = "unit files"
_PLAIN = frozenset(string.ascii_letters + string.digits)
_SIGNAL = 4
_FIELD_PATH, _FIELD_MEMBER = 1, 3
# How long the reader waits between two tries to reach systemd again after it
# dropped the connection (a re-exec takes a fraction of a second), at first and at most.
RECONNECT_FIRST, RECONNECT_MAX = 0.02, 1.0


def unit_object_path(unit: str) -> str:
    """systemd's object path for ``unit`` (bus_label_escape: ``a.service`` -> ``a_2eservice``)."""
    escaped = "".join(chr(b) if chr(b) in _PLAIN else f"_{b:02x}" for b in unit.encode("utf-8"))
    return UNIT_PATH + escaped


def _align(offset: int, size: int) -> int:
    return (offset + size - 1) // size * size


def parse_header(data: bytes) -> Tuple[int, int, Dict[int, str]]:
    """(message type, total length, {field code: value}) of the message at the start of ``data``.

    Raises ValueError when ``data`` is not yet a whole header.
    """
    if len(data) < 16:
        raise ValueError("short")
    order = "<" if data[0:1] == b"l" else ">"
    msg_type = data[1]
    body_len, _serial, fields_len = struct.unpack(order + "III", data[4:16])
    end = 16 + fields_len
    if len(data) < end:
        raise ValueError("short")
    fields: Dict[int, str] = {}
    at = 16
    while at < end:
        at = _align(at, 8)
        code = data[at]
        sig_len = data[at + 1]
        sig = data[at + 2 : at + 2 + sig_len].decode("ascii")
        at += 2 + sig_len + 1
        if sig in ("s", "o"):
            at = _align(at, 4)
            (length,) = struct.unpack(order + "I", data[at : at + 4])
            fields[code] = data[at + 4 : at + 4 + length].decode("utf-8", "replace")
            at += 4 + length + 1
        elif sig == "g":
            length = data[at]
            fields[code] = data[at + 1 : at + 1 + length].decode("ascii")
            at += 1 + length + 1
        elif sig == "u":
            at = _align(at, 4) + 4
        else:
            raise ValueError(f"unexpected header field signature {sig!r}")
    return msg_type, _align(end, 8) + body_len, fields


class SystemdSignals:
    """A reader of systemd's private socket calling back per unit object path."""

    def __init__(self, path: str = PRIVATE_SOCKET) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._callbacks: Dict[str, List[Callable[[], None]]] = {}
        self._sock: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self._closed = False
        self._closing = threading.Event()  # ends a wait between two reconnections

    def watch_unit(self, unit: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (on the reader thread: keep it quick) on every signal
        about ``unit``; returns the cancel. Raises OSError when systemd cannot be reached."""
        return self._watch(unit_object_path(unit), callback)

    def watch_unit_files(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Like :meth:`watch_unit`, for any unit being enabled or disabled (or a
        daemon-reload): systemd does not say which unit, so check yours."""
        return self._watch(_UNIT_FILES, callback)

    def _watch(self, path: str, callback: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._sock = self._connect()
                self._thread = threading.Thread(
                    target=self._read_loop, args=(self._sock,), name="systemd-signals", daemon=True
                )
                self._thread.start()
            self._callbacks.setdefault(path, []).append(callback)

        def cancel() -> None:
            with self._lock:
                listeners = self._callbacks.get(path, [])
                if callback in listeners:
                    listeners.remove(callback)

        return cancel

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
            uid = str(os.geteuid()).encode().hex().encode()
            sock.sendall(b"\0AUTH EXTERNAL " + uid + b"\r\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(256)
                if not chunk:
                    raise ConnectionError("systemd closed the connection during authentication")
                reply += chunk
            if not reply.startswith(b"OK"):
                raise ConnectionError(f"systemd refused authentication: {reply.strip()!r}")
            sock.sendall(b"BEGIN\r\n")
        except BaseException:
            sock.close()
            raise
        return sock

    def _read_loop(self, sock: socket.socket) -> None:
        while True:
            self._read(sock)
            with self._lock:
                if self._closed:
                    return
                self._sock = None
            # systemd re-executed itself (or restarted): reach it again, then wake
            # every watcher, as what changed meanwhile sent no signal to anyone.
            sock = self._reconnect()
            if sock is None:
                return
            with self._lock:
                everyone = [cb for listeners in self._callbacks.values() for cb in listeners]
            for callback in everyone:
                callback()

    def _read(self, sock: socket.socket) -> None:
        """Dispatch the signals read from ``sock`` until systemd closes it (or close())."""
        buffer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                sock.close()
                return
            buffer += chunk
            while True:
                try:
                    msg_type, length, fields = parse_header(buffer)
                except ValueError:
                    break
                if len(buffer) < length:
                    break
                buffer = buffer[length:]
                if msg_type == _SIGNAL:
                    path = fields.get(_FIELD_PATH, "")
                    if path == MANAGER_PATH and fields.get(_FIELD_MEMBER) in UNIT_FILE_SIGNALS:
                        path = _UNIT_FILES
                    self._dispatch(path)

    def _reconnect(self) -> Optional[socket.socket]:
        """A new connection once systemd answers again; None once close() was called."""
        pause = RECONNECT_FIRST
        while not self._closing.wait(pause):
            try:
                sock = self._connect()
            except OSError:
                pause = min(pause * 2, RECONNECT_MAX)
                continue
            with self._lock:
                if not self._closed:
                    self._sock = sock
                    return sock
            sock.close()
            break
        return None

    def _dispatch(self, path: str) -> None:
        with self._lock:
            listeners = list(self._callbacks.get(path, ()))
        for callback in listeners:
            callback()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sock, self._sock = self._sock, None
        self._closing.set()
        if sock is not None:
            with contextlib.suppress(OSError):  # systemd may have closed it first
                sock.shutdown(socket.SHUT_RDWR)
