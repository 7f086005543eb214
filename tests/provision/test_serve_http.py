"""`mgmt-pkg serve` over HTTP with real clients: curl's ranges, resume, big files, hang-ups."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from provision_support import ServeProcess, parse_multipart, request, script_process

from support import require_tools

SPARSE_SIZE = 3 * 1024**3  # past 2 GiB and 4 GiB boundaries are where offsets break


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    (root / "random.bin").write_bytes(os.urandom(5 * 1024 * 1024))
    with open(root / "sparse.img", "wb") as sparse:
        sparse.truncate(SPARSE_SIZE)
        sparse.seek(SPARSE_SIZE - 16)
        sparse.write(b"end-of-the-disk!")
    return root


@pytest.fixture(scope="module")
def served(tree):
    with ServeProcess(str(tree), "--bind", "127.0.0.1", "--port", "0", "-v") as server:
        yield server
        server.stop()


def curl(*args: str) -> subprocess.CompletedProcess:
    require_tools("curl")
    return subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=60, check=True)


def test_curl_single_range(served, tree):
    result = curl("-r", "1000-1999", "-w", "%{http_code}", "-o", "-", f"{served.http}/random.bin")
    assert result.stdout[-3:] == b"206"
    assert result.stdout[:-3] == (tree / "random.bin").read_bytes()[1000:2000]


def test_curl_multiple_ranges(served, tree, tmp_path):
    headers = tmp_path / "headers"
    result = curl("-r", "0-9,4096-8191,-100", "-D", str(headers), f"{served.http}/random.bin")
    content_type = next(
        line.split(": ", 1)[1].strip()
        for line in headers.read_text().splitlines()
        if line.lower().startswith("content-type:")
    )
    data = (tree / "random.bin").read_bytes()
    parts = parse_multipart(content_type, result.stdout)
    size = len(data)
    assert [(r, d) for _t, r, d in parts] == [
        (f"bytes 0-9/{size}", data[:10]),
        (f"bytes 4096-8191/{size}", data[4096:8192]),
        (f"bytes {size - 100}-{size - 1}/{size}", data[-100:]),
    ]


def test_curl_resumes_a_partial_download(served, tree, tmp_path):
    original = (tree / "random.bin").read_bytes()
    partial = tmp_path / "random.bin"
    partial.write_bytes(original[:1234567])
    result = curl("-C", "-", "-w", "%{http_code}", "-o", str(partial), f"{served.http}/random.bin")
    assert result.stdout == b"206"
    assert hashlib.sha256(partial.read_bytes()).digest() == hashlib.sha256(original).digest()


def test_offsets_past_4_gib_boundaries(served):
    result = curl("-r", f"{SPARSE_SIZE - 20}-", f"{served.http}/sparse.img")
    assert result.stdout == b"\0" * 4 + b"end-of-the-disk!"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_large_file_is_streamed_not_loaded(served):
    before = _rss_kib(served.process.pid)
    result = curl("-r", "0-1073741823", "-o", "/dev/null", "-w", "%{size_download}",
                  f"{served.http}/sparse.img")  # fmt: skip
    assert result.stdout == b"1073741824"
    # 1 GiB went through; the server grew by far less than that.
    assert _rss_kib(served.process.pid) - before < 64 * 1024


def test_client_hanging_up_mid_body_is_tolerated(served):
    host, port = served.http.removeprefix("http://").rsplit(":", 1)
    for _ in range(3):
        with socket.create_connection((host, int(port)), timeout=5) as client:
            client.sendall(b"GET /sparse.img HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(4096).startswith(b"HTTP/1.1 200 OK")
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        # closed with a reset while the server was in the middle of sendfile
    reply = request((host, int(port)), "/random.bin", headers={"Range": "bytes=0-3"})
    assert reply.status == 206 and len(reply.body) == 4


def test_a_file_cut_short_while_sent_ends_the_connection_short(tmp_path):
    """The Content-Length already went out: a file truncated under the server must
    end the body short and the connection, never hang nor pad it."""
    (tmp_path / "image.iso").write_bytes(os.urandom(1 << 20) * 64)
    with ServeProcess(str(tmp_path), "--bind", "127.0.0.1", "--port", "0", "-vv") as server:
        host, port = server.http.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as client:
            client.sendall(b"GET /image.iso HTTP/1.1\r\nHost: x\r\n\r\n")
            got = client.recv(65536)
            os.truncate(tmp_path / "image.iso", 1 << 20)  # a mirror sync rewriting it
            while chunk := client.recv(1 << 20):  # a socket.timeout here is a hang
                got += chunk
        log = server.stop()
    head, body = got.split(b"\r\n\r\n", 1)
    assert b"Content-Length: 67108864" in head
    assert 0 < len(body) < 64 << 20
    assert "short file" in log and "Traceback" not in log


def test_pipelined_requests_are_answered_in_order(served, tree):
    """iPXE and dnf keep one connection; a client may send requests before answers."""
    host, port = served.http.removeprefix("http://").rsplit(":", 1)
    requests = (
        b"GET /random.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1,10-11\r\n\r\n"
        b"HEAD /random.bin HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /random.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=-3\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(requests)
        replies = b""
        while chunk := client.recv(65536):  # the last request asked to close
            replies += chunk
    data = (tree / "random.bin").read_bytes()
    statuses = [
        line.split(b" ")[1] for line in replies.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")
    ]
    assert statuses == [b"206", b"200", b"404", b"206"]
    assert data[0:2] in replies and data[10:12] in replies and replies.endswith(data[-3:])
    assert replies.count(b"Content-Length: 5242880") == 1  # the HEAD's, with no body after it


def test_hangups_leave_no_traceback(tree):
    with ServeProcess(str(tree), "--bind", "127.0.0.1", "--port", "0") as server:
        host, port = server.http.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as client:
            client.sendall(b"GET /sparse.img HTTP/1.1\r\nHost: x\r\n\r\n")
            client.recv(65536)
        assert request((host, int(port)), "/random.bin", "HEAD").status == 200
        errors = server.stop()
    assert "Traceback" not in errors and "Error" not in errors


def test_per_host_kickstart_by_mac(tree, tmp_path):
    default, special = tmp_path / "default.ks", tmp_path / "special.ks"
    default.write_text("# everyone\n")
    special.write_text("# the host with aa:bb\n")
    files = ["--file", f"/ks.cfg={default}", "--file", f"/ks.cfg@AA-BB-CC-DD-EE-FF={special}"]
    with ServeProcess(str(tree), "--bind", "127.0.0.1", "--port", "0", *files) as server:
        address = tuple(server.http.removeprefix("http://").rsplit(":", 1))
        address = (address[0], int(address[1]))
        mine = {"X-RHN-Provisioning-MAC-0": "eth0 52:54:00:00:00:01",
                "X-RHN-Provisioning-MAC-1": "eth1 aa:bb:cc:dd:ee:ff"}  # fmt: skip
        other = {"X-RHN-Provisioning-MAC-0": "eth0 52:54:00:00:00:02"}
        replies = [request(address, "/ks.cfg", headers=h) for h in (mine, other, {})]
        assert [r.body for r in replies] == [b"# the host with aa:bb\n", *[b"# everyone\n"] * 2]
        # Which body depends on the MACs sent: a cache in between must keep none for
        # the URL alone (RFC 9110, 12.5.5), or hand one host's kickstart to another.
        assert [r.header("Vary") for r in replies] == ["*"] * 3
        assert request(address, "/sparse.img", "HEAD").header("Vary") is None
        server.stop()


def test_port_in_use_is_a_one_line_error(tree):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "mgmt_pkg", "serve", str(tree), "--bind", "127.0.0.1"]
        result = subprocess.run(
            [*command, "--port", str(port)], capture_output=True, text=True, timeout=20
        )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"mgmt-pkg: error: cannot serve HTTP on 127.0.0.1 port {port}: Address already in use"
    )


@pytest.mark.parametrize(
    "bind, message",
    [
        ("not an addr", "--bind 'not an addr': not an address ("),
        ("192.0.2.1", "--bind '192.0.2.1': not an address of this machine"),
        ("", "--bind: empty"),
        ("fe80::1", "--bind 'fe80::1': cannot listen there"),
    ],
)
def test_a_bind_address_that_cannot_be_used_is_bad_input(tree, bind, message):
    command = [sys.executable, "-m", "mgmt_pkg", "serve", str(tree), "--bind", bind, "--port", "0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=20)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("mgmt-pkg: error: " + message)
    assert len(result.stderr.splitlines()) == 1


def test_a_bracketed_ipv6_bind_is_the_address_inside(tree):
    with ServeProcess(str(tree), "--bind", "[::1]", "--port", "0") as served:
        port = int(served.http.rsplit(":", 1)[1])
        assert request(("::1", port), "/").status == 200
        served.stop()


def test_a_file_dated_before_1970_is_judged_by_the_last_modified_it_was_sent(tmp_path):
    """-315619199.5 is shown as 00:00:00 (the second it falls in): the conditions
    compared the cut-off -315619199 with it, and the file's own date failed them."""
    old = tmp_path / "old.txt"
    old.write_text("from a tarball of 1960\n")
    os.utime(old, ns=(0, -315_619_199_500_000_000))  # 1960-01-01 00:00:00.5 UTC
    with ServeProcess(str(tmp_path), "--bind", "127.0.0.1", "--port", "0") as server:
        address = ("127.0.0.1", int(server.http.rsplit(":", 1)[1]))
        date = request(address, "/old.txt").header("Last-Modified")
        assert date == "Fri, 01 Jan 1960 00:00:00 GMT"
        unmodified = request(address, "/old.txt", headers={"If-Unmodified-Since": date})
        modified = request(address, "/old.txt", headers={"If-Modified-Since": date})
        resumed = request(address, "/old.txt", headers={"If-Range": date, "Range": "bytes=5-"})
        server.stop()
    assert unmodified.status == 200
    assert modified.status == 304
    assert (resumed.status, resumed.body) == (206, b"a tarball of 1960\n")


def test_max_ranges_0_turns_ranges_off_as_for_the_http_server_resource(tree):
    with ServeProcess(str(tree), "--bind", "127.0.0.1", "--port", "0", "--max-ranges", "0") as s:
        port = int(s.http.rsplit(":", 1)[1])
        reply = request(("127.0.0.1", port), "/", headers={"Range": "bytes=0-0"})
        head = request(("127.0.0.1", port), "/random.bin", method="HEAD")
        s.stop()
    assert reply.status == 200
    # Not "bytes": a client that looks before it splits a download must not count on ranges.
    assert reply.header("Accept-Ranges") == head.header("Accept-Ranges") == "none"


def test_ranges_on_are_announced(served):
    head = request(("127.0.0.1", int(served.http.rsplit(":", 1)[1])), "/random.bin", "HEAD")
    assert head.header("Accept-Ranges") == "bytes"


def test_a_client_that_stops_reading_is_dropped(tree):
    from mgmt.net.http_server import HttpFileServer

    with HttpFileServer(tree, timeout=0.5) as server:
        with socket.create_connection(server.address, timeout=10) as stalled:
            stalled.sendall(b"GET /sparse.img HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(1.5)  # reads nothing: the server's sendfile must give up
            received = 0
            while chunk := stalled.recv(1 << 20):
                received += len(chunk)
            assert received < SPARSE_SIZE  # the server hung up long before the end
        # and it still serves everyone else
        assert request(server.address, "/random.bin", "HEAD").status == 200


def test_a_get_with_a_body_does_not_poison_the_connection(served):
    host, port = served.http.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as client:
        smuggled = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
        client.sendall(
            b"GET /random.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(smuggled)
            + smuggled
        )
        received = b""
        while chunk := client.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 206 ")
    # The body was not taken for a second request: one response, its two bytes last.
    # (Not `b"404" not in received`: an ETag or date may hold those digits.)
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"Content-Length: 2\r\n" in head + b"\r\n" and len(body) == 2
    assert received.count(b"HTTP/1.1 ") == 1


# The server alone (standard library and src/mgmt only), so that RHEL 9's Python
# can run it too: there socket.timeout is not yet a TimeoutError (3.10 made it one),
# and a stall must still take our hang-up path (close the connection, say why).
_STALL_SERVER = """
import sys
from mgmt.log import setup
from mgmt.net.http_server import HttpFileServer
setup(1)
server = HttpFileServer(sys.argv[1], timeout=0.5).start()
print(server.url, flush=True)
sys.stdin.read()
server.stop()
"""


def _interpreters() -> list:
    """This Python, and a 3.9 when the machine has one (pyenv's, or on PATH)."""
    found = [sys.executable]
    candidates = sorted(Path.home().glob(".pyenv/versions/3.9.*/bin/python3.9"))
    on_path = shutil.which("python3.9")
    for candidate in [*candidates, *([Path(on_path)] if on_path else [])][:1]:
        found.append(str(candidate))
    return found


@pytest.mark.parametrize("python", _interpreters())
def test_a_client_that_stops_reading_is_dropped_quietly(tree, tmp_path, python):
    log_path = tmp_path / "server.log"
    with script_process(_STALL_SERVER, str(tree), log=log_path, python=python) as server:
        url = server.stdout.readline().decode().strip()
        host, port = url.removeprefix("http://").rsplit(":", 1)
        with socket.socket() as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.connect((host, int(port)))
            client.sendall(b"GET /sparse.img HTTP/1.1\r\nHost: x\r\n\r\n")
            deadline = time.monotonic() + 10  # the server gives up after 0.5 s of no progress
            while time.monotonic() < deadline:
                if any(mark in log_path.read_text() for mark in ("hung up", "request failed")):
                    break
                time.sleep(0.05)
    log = log_path.read_text()
    assert "hung up during /sparse.img" in log
    assert "Traceback" not in log and "request failed" not in log
