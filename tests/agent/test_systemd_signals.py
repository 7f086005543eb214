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
