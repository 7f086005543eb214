"""The little of D-Bus the svc watch reads: object paths of units, and message headers."""

from __future__ import annotations

import struct

import pytest

from mgmt.resources.systemd_signals import parse_header, unit_object_path

PATHS = [
    ("nginx.service", "/org/freedesktop/systemd1/unit/nginx_2eservice"),
    ("mgmt-web.service", "/org/freedesktop/systemd1/unit/mgmt_2dweb_2eservice"),
    ("getty@tty1.service", "/org/freedesktop/systemd1/unit/getty_40tty1_2eservice"),
    ("a_b.timer", "/org/freedesktop/systemd1/unit/a_5fb_2etimer"),
]


@pytest.mark.parametrize("unit, path", PATHS)
def test_unit_object_paths_follow_systemds_escaping(unit, path):
    assert unit_object_path(unit) == path


def _pad(data: bytes, size: int) -> bytes:
    return data + b"\0" * (-len(data) % size)


def signal_message(path: str, member: str, body: bytes = b"") -> bytes:
    """A little-endian D-Bus signal as systemd sends it (PATH, INTERFACE, MEMBER, SIGNATURE)."""
    fields = b""
    for code, sig, value in ((1, b"o", path), (2, b"s", "org.freedesktop.DBus.Properties"),
                             (3, b"s", member)):  # fmt: skip
        fields = _pad(fields, 8)
        raw = value.encode()
        fields += bytes([code, 1]) + sig + b"\0"
        fields = _pad(fields, 4) if len(fields) % 4 else fields
        fields += struct.pack("<I", len(raw)) + raw + b"\0"
    fields = _pad(fields, 8) + bytes([8, 1]) + b"g\0" + bytes([3]) + b"sa{" + b"\0"
    header = b"l" + bytes([4, 1, 1]) + struct.pack("<III", len(body), 7, len(fields))
    return _pad(header + fields, 8) + body


def test_a_signal_header_gives_its_path_member_and_length():
    path = unit_object_path("nginx.service")
    message = signal_message(path, "PropertiesChanged", body=b"x" * 13)
    msg_type, length, fields = parse_header(message + b"next message")
    assert (msg_type, length) == (4, len(message))
    assert fields[1] == path and fields[3] == "PropertiesChanged"


def test_a_partial_message_is_not_parsed_yet():
    message = signal_message("/org/freedesktop/systemd1/unit/x", "PropertiesChanged")
    for cut in (0, 10, 20, len(message) // 2):
        with pytest.raises(ValueError):
            parse_header(message[:cut])


class FakeSystemd:
    """A private socket as systemd's: accepts EXTERNAL authentication, then sends
    what the test gives it; ``drop`` closes the connection as a re-exec does."""

    def __init__(self, path: str):
        import socket

        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(4)
        self.listener.settimeout(10)  # a client that never comes fails the test
        self.conn = None

    def accept(self) -> None:
        self.conn, _ = self.listener.accept()
        self._read_until(b"\r\n")  # "\0AUTH EXTERNAL <uid in hex>"
        self.conn.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
        self._read_until(b"BEGIN\r\n")

    def _read_until(self, end: bytes) -> None:
        data = b""
        while not data.endswith(end):
            chunk = self.conn.recv(1)
            assert chunk, "the client closed the connection"
            data += chunk

    def send(self, message: bytes) -> None:
        self.conn.sendall(message)

    def drop(self) -> None:
        self.conn.close()

    def close(self) -> None:
        self.listener.close()


def test_the_reader_connects_again_after_systemd_dropped_it_and_wakes_every_watcher(tmp_path):
    """systemd drops its private connections when it re-executes itself: the reader
    ended with the first connection, and no signal was ever heard again."""
    import threading

    from mgmt.resources.systemd_signals import SystemdSignals
    from support.polling import wait_until

    path = str(tmp_path / "private")
    systemd = FakeSystemd(path)
    signals = SystemdSignals(path)
    heard = []
    woken = threading.Event()

    def heard_it() -> None:
        heard.append("web")
        woken.set()

    accepting = threading.Thread(target=systemd.accept)
    accepting.start()
    signals.watch_unit("web.service", heard_it)
    accepting.join(timeout=10)
    web = unit_object_path("web.service")
    systemd.send(signal_message(web, "PropertiesChanged"))
    wait_until(lambda: heard == ["web"], what="the first signal")
    systemd.drop()  # a re-exec: the next connection gets the next signal
    systemd.accept()
    wait_until(lambda: len(heard) == 2, what="the wake-up for what changed meanwhile")
    systemd.send(signal_message(web, "PropertiesChanged"))
    wait_until(lambda: len(heard) == 3, what="a signal on the new connection")
    # Gone for good: the reader tries again until it is closed, which ends it at once.
    systemd.drop()
    systemd.close()
    reader = signals._thread
    signals.close()
    reader.join(timeout=5)
    assert not reader.is_alive()
    assert len(heard) == 3
