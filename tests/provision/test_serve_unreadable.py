"""`mgmt-pkg serve` and files it may not read: refused with a status of their own.

The server runs without root's file-permission override (see
provision_support.bound_by_file_modes), so a mode-000 file or a directory it
may not search is really unreadable to it, as it is to a service user; no
system call is faked.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Tuple

import pytest
from provision_support import ServeProcess, bound_by_file_modes, request

from mgmt.net.tftp_wire import ACK, DATA, ERROR, RRQ

Address = Tuple[str, int]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("www")
    (root / "ok.txt").write_text("readable\n")
    (root / "unread").write_text("s\n")
    (root / "closed").mkdir()
    (root / "closed" / "x").write_text("behind a closed door\n")
    (root / "passable" / "inner").mkdir(parents=True)
    (root / "passable" / "inner" / "f").write_text("through a folder we may not list\n")
    (root / "unread").chmod(0)
    (root / "closed").chmod(0)
    (root / "passable").chmod(0o111)
    yield root
    (root / "closed").chmod(0o755)  # so that the temporary tree can be removed
    (root / "unread").chmod(0o644)
    (root / "passable").chmod(0o755)


def _http_address(server: ServeProcess) -> Address:
    host, port = server.http.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


@pytest.fixture(scope="module")
def served(tree) -> Iterator[ServeProcess]:
    args = ["--bind", "127.0.0.1", "--port", "0", "--tftp", "--tftp-port", "0"]
    with ServeProcess(str(tree), *args, prefix=bound_by_file_modes()) as server:
        yield server
        server.stop()


RANGES = {
    "GET": ("GET", {}),
    "HEAD": ("HEAD", {}),
    "range": ("GET", {"Range": "bytes=0-0"}),
    "multirange": ("GET", {"Range": "bytes=0-0,1-1"}),
}


@pytest.mark.parametrize("kind", list(RANGES))
@pytest.mark.parametrize("path", ["/unread", "/closed/x"])
def test_an_unreadable_file_is_forbidden_before_any_header(served, path, kind):
    method, headers = RANGES[kind]
    address = _http_address(served)
    reply = request(address, path, method, headers)
    assert (reply.status, reply.body) == (403, b"")
    # and the server goes on serving
    assert request(address, "/ok.txt").body == b"readable\n"


def test_an_unreadable_file_logs_one_line_and_no_traceback(tree):
    args = ["--bind", "127.0.0.1", "--port", "0"]
    with ServeProcess(str(tree), *args, prefix=bound_by_file_modes()) as server:
        address = _http_address(server)
        assert request(address, "/unread").status == 403
        assert request(address, "/ok.txt").status == 200
        log = server.stop()
    lines = log.splitlines()
    assert len(lines) == 1, log
    assert f"GET /unread: cannot read {tree / 'unread'}: Permission denied" in lines[0]


def test_a_file_source_that_turns_unreadable_or_vanishes(tree, tmp_path):
    kickstart = tmp_path / "host.ks"
    kickstart.write_text("# kickstart\n")
    args = ["--bind", "127.0.0.1", "--port", "0", "--file", f"/ks.cfg={kickstart}"]
    with ServeProcess(str(tree), *args, prefix=bound_by_file_modes()) as server:
        address = _http_address(server)
        assert request(address, "/ks.cfg").body == b"# kickstart\n"
        kickstart.chmod(0)
        for method in ("GET", "HEAD"):
            assert request(address, "/ks.cfg", method).status == 403
        kickstart.unlink()
        assert request(address, "/ks.cfg").status == 404
        log = server.stop()
    assert "Traceback" not in log


@pytest.mark.parametrize("spec_source", ["unread", "closed/x"])
def test_an_unreadable_file_source_is_refused_at_startup(tree, spec_source):
    source = tree / spec_source
    command = [*bound_by_file_modes(), sys.executable, "-m", "mgmt_pkg", "serve", str(tree),
               "--bind", "127.0.0.1", "--port", "0", "--file", f"/ks.cfg={source}"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert result.stdout == ""  # never said it was serving
    assert result.stderr == (
        f"mgmt-pkg: error: --file '/ks.cfg={source}': cannot read {source}: Permission denied\n"
    )


def _tftp_error(port: int, name: str) -> Tuple[int, bytes]:
    """(error code, message) of the answer to a read request, which must be an ERROR."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)  # the server answers at once; silence is the bug
        client.sendto(struct.pack("!H", RRQ) + name.encode() + b"\0octet\0", ("127.0.0.1", port))
        packet = client.recv(65536)
    opcode, code = struct.unpack("!HH", packet[:4])
    assert opcode == ERROR, packet[:40]
    return code, packet[4:]


@pytest.mark.parametrize("name", ["unread", "closed/x"])
def test_an_unreadable_file_over_tftp_is_an_access_violation(served, name):
    assert _tftp_error(served.tftp_port, name) == (2, b"permission denied\0")


def test_a_folder_that_may_be_passed_but_not_listed_lets_its_files_through(served):
    """Mode 0111 (a home of 0711, for others): passing through needs x, not r, as for
    any program's open(). The server opened every folder on the way for reading, so
    each file below such a folder was a 403 over HTTP and refused over TFTP."""
    reply = request(_http_address(served), "/passable/inner/f")
    assert (reply.status, reply.body) == (200, b"through a folder we may not list\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        request_ = struct.pack("!H", RRQ) + b"passable/inner/f\0octet\0"
        client.sendto(request_, ("127.0.0.1", served.tftp_port))
        packet, sender = client.recvfrom(65536)
        assert packet == struct.pack("!HH", DATA, 1) + b"through a folder we may not list\n"
        client.sendto(struct.pack("!HH", ACK, 1), sender)
    # and its listing stays closed
    assert request(_http_address(served), "/passable/").status == 403


def _unreadable_regular_file() -> Path:
    """A regular file of 4096 bytes whose every read fails (EINVAL): the loopback's
    link speed in sysfs. Not a fake: the kernel answers so, as a failing disk would."""
    path = Path("/sys/class/net/lo/speed")
    try:
        path.read_bytes()
    except OSError:
        return path
    pytest.skip("no sysfs attribute here that fails to read")


def test_a_file_that_cannot_be_read_at_all_is_refused_before_any_header():
    """It was announced with 200 and a Content-Length, then cut short (the client saw
    an IncompleteRead) with a traceback in the log, and over TFTP its OACK went out."""
    from mgmt.net.http_server import HttpFileServer
    from mgmt.net.tftp import TftpServer

    overlay = {"/speed": _unreadable_regular_file()}
    with (
        HttpFileServer(None, overlay=overlay) as http,
        TftpServer(None, "127.0.0.1", 0, overlay) as tftp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        reply = request(http.address, "/speed", "GET", {"Range": "bytes=0-9"})
        assert (reply.status, reply.body) == (500, b"")
        client.settimeout(5)
        client.sendto(struct.pack("!H", RRQ) + b"speed\0octet\0tsize\x000\x00", tftp.address)
        assert client.recv(65536) == struct.pack("!HH", ERROR, 0) + b"invalid argument\0"
