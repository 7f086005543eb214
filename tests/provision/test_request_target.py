"""Request targets over the wire, on this Python and on the oldest the agent runs on.

The agent's http:server runs on the hosts' own Python, down to 3.6 (RHEL 8),
whose http.server hands a target over as it came; later ones rewrite some.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from provision_support import script_process

_SERVER = """
import sys
from mgmt.net.http_server import HttpFileServer
server = HttpFileServer(sys.argv[1]).start()
print(server.url, flush=True)
sys.stdin.read()
server.stop()
"""


def _interpreters() -> list:
    """This Python, and pyenv's 3.6 when the machine has one."""
    return [
        sys.executable,
        *[str(p) for p in Path.home().glob(".pyenv/versions/3.6.*/bin/python3.6")][:1],
    ]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    (root / "images").mkdir()
    (root / "images" / "install.img").write_text("the installer\n")
    (root / "install.img").write_text("another file\n")
    return root


# (request target, body of the answer): "//" where a repo URL ending in "/" meets a
# path starting with one, as dracut and anaconda join them.
TARGETS = [
    ("//images/install.img", "the installer\n"),
    ("///images//install.img", "the installer\n"),
    ("/images/install.img?from=//install.img", "the installer\n"),
    ("http://srv//images/install.img", "the installer\n"),
    ("//install.img", "another file\n"),
]


@pytest.mark.parametrize("python", _interpreters())
def test_a_path_that_starts_with_two_slashes_is_a_path(tree, tmp_path, python):
    """urlsplit read //images/install.img as host "images" and path /install.img:
    on Python 3.6 the server answered it with another file."""
    with script_process(_SERVER, str(tree), log=tmp_path / "log", python=python) as server:
        host, port = server.stdout.readline().decode().strip()[7:].rsplit(":", 1)
        for target, body in TARGETS:
            reply = _get(host, int(port), target)
            assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(body.encode()), target
        # A folder without its slash is sent on to the path, never to "//images/",
        # which a client reads as the host "images" (CPython gh-87389).
        for target in ("//images", "/images", "http://srv//images"):
            reply = _get(host, int(port), target)
            assert reply.startswith(b"HTTP/1.1 301 ") and b"\r\nLocation: /images/\r\n" in reply


def _get(host: str, port: int, target: str) -> bytes:
    """The whole answer to a GET of ``target``, sent as it is."""
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: srv\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    return reply
