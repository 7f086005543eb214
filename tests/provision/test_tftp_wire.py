"""The TFTP server's packets as a strict client sees them on the wire (python sockets)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from provision_support import ServeProcess

from mgmt.net.content import Content
from mgmt.net.tftp import TftpServer
from mgmt.net.tftp_wire import ACK, DATA, ERROR, OACK, RRQ


@pytest.fixture(scope="module")
def boot_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tftpboot")
    (root / "pxelinux.0").write_bytes(b"boot loader\n")
    return root


def _rrq(name: bytes) -> bytes:
    return struct.pack("!H", RRQ) + name + b"\0octet\0"


@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
def test_a_server_on_every_address_answers_from_the_one_asked(boot_tree, bind):
    """PXE firmware takes replies only from the address it sent its request to. A server
    bound to every address (the default) that a request reaches on a second address of
    the host (a keepalived VIP; 127.0.0.2 here) must answer from that address, the
    transfer and its errors alike, not from the one the route to the client prefers."""
    with (
        ServeProcess(
            str(boot_tree), "--bind", bind, "--no-http", "--tftp", "--tftp-port", "0"
        ) as server,  # fmt: skip
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        client.settimeout(5)
        client.bind(("127.0.0.1", 0))
        asked = ("127.0.0.2", server.tftp_port)
        client.sendto(_rrq(b"pxelinux.0"), asked)
        packet, sender = client.recvfrom(65536)
        assert sender[0] == "127.0.0.2"
        assert packet == struct.pack("!HH", DATA, 1) + b"boot loader\n"
        client.sendto(struct.pack("!HH", ACK, 1), sender)

        client.sendto(_rrq(b"missing.0"), asked)
        packet, sender = client.recvfrom(65536)
        assert sender == asked
        assert packet[:4] == struct.pack("!HH", ERROR, 1)
        server.stop()


def test_a_file_that_fails_to_read_is_an_error_packet_not_silence(boot_tree):
    """A read that fails mid-transfer (EIO of a failing disk, ESTALE on NFS) is told
    to the client at once, and logged in one line: it left a traceback on stderr
    and the client waiting out its timeouts. /proc/self/mem is such a file: a
    regular file whose first read fails with EIO."""
    with (
        ServeProcess(
            str(boot_tree),
            "--bind",
            "127.0.0.1",
            "--no-http",
            "--tftp",
            "--tftp-port",
            "0",
            "--file",
            "/mem=/proc/self/mem",
        ) as server,  # fmt: skip
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        client.settimeout(5)
        client.sendto(_rrq(b"mem"), ("127.0.0.1", server.tftp_port))
        packet, _sender = client.recvfrom(65536)
        assert packet == struct.pack("!HH", ERROR, 0) + b"cannot read the file\0"
        client.sendto(_rrq(b"pxelinux.0"), ("127.0.0.1", server.tftp_port))  # still serving
        packet, sender = client.recvfrom(65536)
        assert packet == struct.pack("!HH", DATA, 1) + b"boot loader\n"
        client.sendto(struct.pack("!HH", ACK, 1), sender)
        log = server.stop()
    assert "cannot read 'mem': [Errno 5] Input/output error" in log
    assert "Traceback" not in log


def test_a_stop_ends_transfers_whose_clients_asked_for_long_timeouts():
    """A client may ask for a timeout of up to 255 s (RFC 2349) and then vanish: its
    transfer waited that long before it saw the server stop, so stop() took two
    seconds per such transfer (ten here) and left them running for minutes after."""
    before = set(threading.enumerate())
    server = TftpServer(None, "127.0.0.1", 0, {"/f": Content.from_bytes(b"x" * 2000)}).start()
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(5)]
    try:
        for client in clients:
            client.settimeout(5)
            client.sendto(_rrq(b"f") + b"timeout\x00255\x00", server.address)
            packet, _sender = client.recvfrom(65536)
            assert packet == struct.pack("!H", OACK) + b"timeout\x00255\x00"  # never ACKed
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 5
        assert set(threading.enumerate()) <= before  # the transfers ended too
    finally:
        for client in clients:
            client.close()
