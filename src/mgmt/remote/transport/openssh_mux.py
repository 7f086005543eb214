"""Asking an OpenSSH ControlMaster for a remote port forward, without an ssh process.

``ssh -O forward -R 127.0.0.1:0:host:port`` does this for the OpenSSH runner,
at the cost of a whole ssh client per host (its OpenSSL set-up included): on a
secondary starting 20 hosts on a busy machine that was 0.1 to 0.3 s per host
before its agent could start, and an ssh's CPU. The request is one message on
the master's control socket (OpenSSH's PROTOCOL.mux, version 4: the same
messages ``ssh -O forward`` sends), and the master answers with the port the
host's sshd picked once sshd has answered it.

Runs on hosts: Python 3.6+, standard library only.
"""

import socket
import struct
from typing import Tuple

MUX_VERSION = 4
MUX_MSG_HELLO = 0x00000001
MUX_C_OPEN_FWD = 0x10000006
MUX_S_OK = 0x80000001
MUX_S_PERMISSION_DENIED = 0x80000002
MUX_S_FAILURE = 0x80000003
MUX_S_REMOTE_PORT = 0x80000007
MUX_FWD_REMOTE = 2
REQUEST_ID = 1


class MuxError(Exception):
    """The master refused, or did not speak the protocol."""


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack(">I", len(data)) + data


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise MuxError("the master closed the control connection")
        data += chunk
    return data


def _message(sock: socket.socket) -> Tuple[int, bytes]:
    (size,) = struct.unpack(">I", _exactly(sock, 4))
    body = _exactly(sock, size)
    if size < 4:
        raise MuxError("a short message from the master")
    return struct.unpack(">I", body[:4])[0], body[4:]


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">I", len(payload)) + payload)


def remote_forward(control: str, target: Tuple[str, int], timeout: float) -> int:
    """A forward from 127.0.0.1:<port sshd picks> on the host to ``target`` here,
    on the master listening at ``control``; that port. MuxError saying why not,
    OSError if the master cannot be reached."""
    host, port = target
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(control)
        _send(sock, struct.pack(">II", MUX_MSG_HELLO, MUX_VERSION))
        kind, body = _message(sock)
        if kind != MUX_MSG_HELLO or struct.unpack(">I", body[:4])[0] != MUX_VERSION:
            raise MuxError("the master speaks another multiplexing protocol")
        request = struct.pack(">III", MUX_C_OPEN_FWD, REQUEST_ID, MUX_FWD_REMOTE)
        request += _string("127.0.0.1") + struct.pack(">I", 0)
        request += _string(host) + struct.pack(">I", port)
        _send(sock, request)
        kind, body = _message(sock)
        if kind == MUX_S_REMOTE_PORT:
            return int(struct.unpack(">II", body[:8])[1])
        if kind in (MUX_S_FAILURE, MUX_S_PERMISSION_DENIED) and len(body) >= 8:
            (size,) = struct.unpack(">I", body[4:8])
            raise MuxError(body[8 : 8 + size].decode("utf-8", "replace") or "refused")
        if kind == MUX_S_OK:
            raise MuxError("no port in the master's answer")
        raise MuxError(f"an unexpected answer from the master ({kind:#x})")
    finally:
        sock.close()
