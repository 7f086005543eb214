"""Malformed and hostile requests to the real `mgmt-pkg serve`: each gets its status, the
log gets one line per request and never a traceback.

A table of raw requests (bytes on a socket: http.client would refuse to send
most of them) with the status expected. The server runs with -vv, so every
request and every error would be in its stderr.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket

import pytest
from provision_support import ServeProcess

DIGITS = "9" * 5000


def get(path: str, range_: str = "") -> bytes:
    """A well-formed GET, with a Range header when given."""
    header = f"Range: bytes={range_}\r\n" if range_ else ""
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{header}\r\n".encode()


# (id, raw request, expected status, bytes the reply must contain)
REQUESTS = [
    ("no method or version", b"HELLO\r\n\r\n", 400, b""),
    ("two words", b"GET /\r\n\r\n", 400, b""),  # HTTP/0.9: refused
    ("HTTP/9.9", b"GET / HTTP/9.9\r\n\r\n", 505, b""),
    ("bad version text", b"GET / HTTP/one\r\n\r\n", 400, b""),
    ("70 KB request line", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, b""),
    ("control characters", b"GET /\x1b[2J\x00 HTTP/1.1\r\nHost: x\r\n\r\n", 404, b""),
    ("last position of 5,000 digits", get("/file.bin", f"0-{DIGITS}"), 206, b"0123456789"),
    ("first position of 5,000 digits", get("/file.bin", f"{DIGITS}-"), 416, b""),
    ("suffix of 5,000 digits", get("/file.bin", f"-{DIGITS}"), 206, b"0123456789"),
    ("huge last < huge first: ignored", get("/file.bin", f"{DIGITS}9-{DIGITS}"), 200, b"0123"),
    ("a header line over 64 KiB", b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431, b""),
    ("listing a non-UTF-8 name", get("/odd/"), 200, b'<a href="caf%E9.txt">caf\xef\xbf\xbd.txt'),
    ("the non-UTF-8 name itself", get("/odd/caf%E9.txt"), 200, b"latin-1 name"),
    # RFC 9112: what a server must answer with 400 (3.2, 5.1, 5.2, 6.3).
    ("HTTP/1.1 without Host", b"GET /file.bin HTTP/1.1\r\n\r\n", 400, b"without a Host"),
    ("HTTP/1.0 without Host is fine", b"GET /file.bin HTTP/1.0\r\n\r\n", 200, b"0123"),
    ("two Host lines", b"GET /file.bin HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, b""),
    ("a Host with a space", b"GET /file.bin HTTP/1.1\r\nHost: a b\r\n\r\n", 400, b"no host"),
    ("a Host with a path", b"GET /file.bin HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, b"no host"),
    ("a Host with a user", b"GET /file.bin HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, b"no host"),
    ("Host [::1]:80", b"GET /file.bin HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 200, b"0123"),
    ("Host 10.0.0.1:", b"GET /file.bin HTTP/1.1\r\nHost: 10.0.0.1:\r\n\r\n", 200, b"0123"),
    ("an empty Host", b"GET /file.bin HTTP/1.1\r\nHost:\r\n\r\n", 200, b"0123"),
    (
        "a body of no known length",
        b"GET /file.bin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        400,
        b"Transfer-Encoding",
    ),
    (
        "a chunked body",
        b"GET /file.bin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked ,\r\n\r\n0\r\n\r\n",
        200,
        b"0123",
    ),
    ("space before a colon", b"GET /file.bin HTTP/1.1\r\nHost : x\r\n\r\n", 400, b""),
    ("folded Range", get("/file.bin", "0-1,\r\n 5-6"), 400, b"line folding"),
    (
        "Content-Length: abc",
        b"GET /file.bin HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        400,
        b"Content-Length",
    ),
    (
        "two Content-Lengths that differ",
        b"GET /file.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n",
        400,
        b"Content-Length",
    ),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    (root / "file.bin").write_bytes(b"0123456789" * 20)
    odd = root / "odd"
    odd.mkdir()
    with open(os.path.join(os.fsencode(odd), b"caf\xe9.txt"), "wb") as named:
        named.write(b"latin-1 name")
    with ServeProcess(str(root), "--bind", "127.0.0.1", "--port", "0", "-vv") as server:
        yield server


def exchange(url: str, raw: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        # Answered and closed before all was read (414, 431): fine.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            reply += chunk
    return reply


@pytest.mark.parametrize(("raw", "status", "body"), [r[1:] for r in REQUESTS],
                         ids=[r[0] for r in REQUESTS])  # fmt: skip
def test_each_request_gets_its_status(served, raw, status, body):
    reply = exchange(served.http, raw)
    status_line = reply.split(b"\r\n", 1)[0]
    assert status_line.startswith(f"HTTP/1.1 {status} ".encode()), reply[:300]
    assert body in reply


def test_no_traceback_in_the_log(tmp_path):
    root = tmp_path
    (root / "f").write_text("x")
    with ServeProcess(str(root), "--bind", "127.0.0.1", "--port", "0", "-vv") as server:
        for _name, raw, _status, _body in REQUESTS:
            exchange(server.http, raw)
        log = server.stop()
    assert "Traceback" not in log
    assert "request failed" not in log
    assert "\x1b" not in log and "\x00" not in log  # request text is escaped in the log
    assert max(len(line) for line in log.splitlines()) < 1000


def test_parts_keep_the_order_of_the_request(served):
    raw = b"GET /file.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=140-149,0-9,5-12\r\n\r\n"
    reply = exchange(served.http, raw)
    assert reply.startswith(b"HTTP/1.1 206 ")
    late, merged = reply.index(b"bytes 140-149/200"), reply.index(b"bytes 0-12/200")
    assert late < merged  # 0-9 and 5-12 coalesced, at the place of 0-9


def test_a_bad_header_line_closes_the_connection(served):
    """Its Connection: close was lost with the lines after it: the 400 closes anyway."""
    host, port = served.http.removeprefix("http://").split(":")
    raw = b"GET /file.bin HTTP/1.1\r\nHost : x\r\nConnection: close\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(raw)  # no shutdown: only the server may end this connection
        reply = b""
        while chunk := conn.recv(65536):  # a socket.timeout here is the bug
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in reply


# (id, raw request, the Connection header its answer must carry; None: none)
CONNECTION_CASES = [
    ("HTTP/1.1 goes on unsaid", b"GET /file.bin HTTP/1.1\r\nHost: x\r\n\r\n", None),
    ("HTTP/1.1 close", b"GET /file.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "close"),
    ("HTTP/1.0 ends", b"GET /file.bin HTTP/1.0\r\n\r\n", "close"),
    ("HTTP/1.0 keep-alive", b"GET /file.bin HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
     "keep-alive"),
    ("a body not read", b"GET /file.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
     "close"),
    ("a refused upload", b"PUT /file.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
     "close"),
    ("a 404 goes on", b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", None),
    # The options are a list (RFC 9112, 9.3): Perl's LWP sends "TE, close".
    ("close among options", b"GET /file.bin HTTP/1.1\r\nHost: x\r\nConnection: TE, close\r\n"
     b"TE: trailers\r\n\r\n", "close"),
    ("close on a second line", b"GET /file.bin HTTP/1.1\r\nHost: x\r\nConnection: keep-alive"
     b"\r\nConnection: Close\r\n\r\n", "close"),
    ("HTTP/1.0 keep-alive among options", b"GET /file.bin HTTP/1.0\r\n"
     b"Connection: Keep-Alive, TE\r\nTE: trailers\r\n\r\n", "keep-alive"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "connection"), [c[1:] for c in CONNECTION_CASES],
                         ids=[c[0] for c in CONNECTION_CASES])  # fmt: skip
def test_each_answer_says_whether_the_connection_goes_on(served, raw, connection):
    """RFC 9112, 9.6: an answer after which the server closes says "close" (a
    client that pipelined more requests behind it learns they are lost); 9.3: an
    HTTP/1.0 client's keep-alive holds only when the answer says so."""
    head = exchange(served.http, raw).split(b"\r\n\r\n", 1)[0].decode("latin-1")
    values = [line.split(":", 1)[1].strip() for line in head.split("\r\n")[1:]
              if line.lower().startswith("connection:")]  # fmt: skip
    assert values == ([connection] if connection else []), head


@pytest.mark.parametrize("connection", ["TE, close", "keep-alive\r\nConnection: close"])
def test_a_close_among_connection_options_ends_the_connection(served, connection):
    """The server, not the client, must end it: the client here never shuts its side."""
    host, port = served.http.removeprefix("http://").split(":")
    raw = f"GET /file.bin HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(raw.encode())
        reply = b""
        while chunk := conn.recv(65536):  # a socket.timeout here is the bug
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"0123456789" * 20)


def test_an_http_1_0_keep_alive_connection_is_kept(served):
    host, port = served.http.removeprefix("http://").split(":")
    request = b"GET /file.bin HTTP/1.0\r\nConnection: keep-alive\r\nRange: bytes=0-3\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        replies = b""
        for answered in (1, 2):  # the second one on the same connection
            conn.sendall(request)
            while replies.count(b"0123") < answered:
                chunk = conn.recv(65536)
                assert chunk, "the server closed a kept-alive connection"
                replies += chunk
    assert replies.count(b"HTTP/1.1 206 ") == 2


@pytest.mark.parametrize(("method", "status"), [("PUT", 405), ("POST", 405), ("GET", 200)])
def test_a_client_still_sending_a_large_body_gets_the_answer(served, method, status):
    """The server reads no body: it answered and closed with the body's bytes unread,
    which made its kernel reset the connection, and a client still writing its body
    (http.client, requests) got "broken pipe" instead of the 405. It now lingers:
    ends its side, then drops what still comes."""
    host, port = served.http.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, "/file.bin", body=b"x" * (8 << 20))
        reply = conn.getresponse()
        assert reply.status == status
        assert reply.getheader("Connection") == "close"
        assert reply.read() == (b"0123456789" * 20 if status == 200 else b"")
    finally:
        conn.close()
