"""The edge-case table (cases/range_cases.json) against the real server over HTTP.

Each case names the request, the status, the headers that must (and must not)
be there and the exact body bytes; the first ten are the places where
rangehttpserver 1.4.0 is wrong (400 for suffix and multi-range requests, no
``Content-Range: bytes */LEN`` on 416, 206 to HEAD, ...), each with its "why".
"""

from __future__ import annotations

import email.utils
import os
import socket
from pathlib import Path

import pytest
from provision_support import OLD_MTIME, RANGE_CASES, parse_multipart, request

from mgmt.net.http_server import HttpFileServer

CASES = RANGE_CASES["cases"]


@pytest.fixture(scope="module")
def served_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("served")
    root = base / "root"
    (root / "sub").mkdir(parents=True)
    (root / "file.txt").write_text(RANGE_CASES["file"])
    (root / "sub" / "a b.txt").write_text("spaced\n")
    (base / "outside.txt").write_text("secret\n")
    (root / "escape").symlink_to(base / "outside.txt")
    (root / "inner").symlink_to("file.txt")
    os.utime(root / "file.txt", (OLD_MTIME, OLD_MTIME))
    return root


@pytest.fixture(scope="module")
def http_server(served_tree: Path):
    with HttpFileServer(served_tree) as server:
        yield server


@pytest.fixture(scope="module")
def validators(http_server) -> dict:
    reply = request(http_server.address, "/file.txt", "HEAD")
    assert reply.header("ETag"), "a 200 must carry an ETag"
    return {
        "etag": reply.header("ETag"),
        "last_modified": email.utils.formatdate(OLD_MTIME, usegmt=True),
    }


def _fill(value: str, validators: dict) -> str:
    return value.replace("{etag}", validators["etag"]).replace(
        "{last_modified}", validators["last_modified"]
    )


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_range_case(http_server, validators, case):
    headers = {k: _fill(v, validators) for k, v in case["headers"].items()}
    reply = request(http_server.address, case["path"], case["method"], headers)

    assert reply.status == case["status"], reply
    for name, value in case.get("expect_headers", {}).items():
        assert reply.header(name) == _fill(value, validators), name
    for name in case.get("absent_headers", []):
        assert reply.header(name) is None, name
    if reply.status != 304:  # which has no body, and no Content-Length
        assert int(reply.header("Content-Length")) == len(reply.body) or case["method"] == "HEAD"
    if "parts" in case:
        parts = parse_multipart(reply.header("Content-Type"), reply.body)
        assert [(r, d.decode()) for _t, r, d in parts] == [tuple(p) for p in case["parts"]]
        assert {t for t, _r, _d in parts} == {"text/plain"}
    else:
        assert reply.body == case["body"].encode("latin-1")


def test_every_documented_rangehttpserver_bug_has_a_case():
    # rangehttpserver 1.4.0 gets ten cases wrong; each must stay in the table with its reason.
    documented = [c for c in CASES if c.get("why", "").startswith("rangehttpserver 1.4.0")]
    assert len(documented) == 10


def test_directory_listing_escapes_names(tmp_path):
    (tmp_path / "<b>&bold.rpm").write_text("x")
    (tmp_path / "sub").mkdir()
    with HttpFileServer(tmp_path) as server:
        reply = request(server.address, "/")
    assert reply.status == 200 and reply.header("Content-Type") == "text/html"
    assert b'<a href="%3Cb%3E%26bold.rpm">&lt;b&gt;&amp;bold.rpm</a>' in reply.body
    assert b'<a href="sub/">sub/</a>' in reply.body


def test_a_symlink_loop_is_listed_as_a_file_and_the_listing_still_served(tmp_path):
    (tmp_path / "f20").write_text("0123456789abcdefghij")
    os.symlink("loop1", tmp_path / "loop2")
    os.symlink("loop2", tmp_path / "loop1")
    with HttpFileServer(tmp_path) as server:
        listing = request(server.address, "/")
        loop = request(server.address, "/loop1")
    assert listing.status == 200
    assert b'<a href="loop1">loop1</a>' in listing.body
    assert b'<a href="loop2">loop2</a>' in listing.body
    assert b'<a href="f20">f20</a>' in listing.body
    assert loop.status == 404  # the entry itself still names no file


# Dates whose digits overflow datetime's C ints (the year, the day, the time or
# the zone offset): email.utils raises OverflowError for them, not ValueError.
OVERFLOWING_DATES = [
    "Sun, 06 Nov 99999999999 08:49:37 GMT",
    "Nov -0000 99:99:99 2038 +9999999999999 Nov",
    "Nov 2038 999999999999999999999 08:49:37 -0000",
    "Feb +9999999999999 0 24:00:00",
    "Sun, 06 Nov 1994 99999999999:49:37 GMT",
]
FULL_BODY = RANGE_CASES["file"]


@pytest.mark.parametrize("date", OVERFLOWING_DATES)
@pytest.mark.parametrize(
    ("header", "status", "body"),
    [
        # RFC 9110 §13.1.3/§13.1.4: an invalid date is ignored, the Range applies.
        ("If-Modified-Since", 206, FULL_BODY[:10]),
        ("If-Unmodified-Since", 206, FULL_BODY[:10]),
        # §13.1.5: an If-Range that is no valid date does not match: all of it.
        ("If-Range", 200, FULL_BODY),
    ],
    ids=["If-Modified-Since", "If-Unmodified-Since", "If-Range"],
)
def test_an_overflowing_date_is_an_invalid_date_not_a_dropped_connection(
    http_server, header, status, body, date
):
    reply = request(http_server.address, "/file.txt", "GET", {header: date, "Range": "bytes=0-9"})
    assert reply.status == status
    assert reply.body == body.encode("latin-1")


def test_a_file_dated_in_the_future_is_never_last_modified_after_now(tmp_path):
    """RFC 9110 §8.8.2.1: a Last-Modified later than the answer's Date (a file written
    while the clock was off) MUST become that Date; and that date is no validator
    If-Range could trust, so a range asked with it gets the whole file."""
    future = tmp_path / "future.txt"
    future.write_text(FULL_BODY)
    os.utime(future, (4_000_000_000, 4_000_000_000))  # in 2096
    with HttpFileServer(tmp_path) as server:
        reply = request(server.address, "/future.txt")
        modified = email.utils.parsedate_to_datetime(reply.header("Last-Modified"))
        assert modified <= email.utils.parsedate_to_datetime(reply.header("Date"))
        stale = email.utils.formatdate(4_000_000_000, usegmt=True)
        ranged = request(
            server.address, "/future.txt", "GET", {"Range": "bytes=0-9", "If-Range": stale}
        )
    assert ranged.status == 200 and ranged.body == FULL_BODY.encode("latin-1")


def _raw_get(address, lines: list) -> bytes:
    """The status line and headers of the answer to a GET of /file.txt with ``lines``."""
    with socket.create_connection(address, timeout=10) as conn:
        head = "".join(f"{line}\r\n" for line in ["Host: x", "Connection: close", *lines])
        conn.sendall(f"GET /file.txt HTTP/1.1\r\n{head}\r\n".encode())
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    return reply.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize(
    ("lines", "status"),
    [
        (['If-None-Match: "other"', "If-None-Match: {etag}"], 304),
        (['If-Match: "other"', "If-Match: {etag}", "Range: bytes=0-9"], 206),
        # A one-value field twice is no valid value: ignored (RFC 9110, 13.1.3).
        (["If-Modified-Since: {last_modified}", "If-Modified-Since: {last_modified}"], 200),
        (["Range: bytes=0-1", "Range: bytes=5-6"], 200),
    ],
    ids=["If-None-Match", "If-Match", "If-Modified-Since twice", "Range twice"],
)
def test_a_list_header_on_two_lines_is_one_list(http_server, validators, lines, status):
    """RFC 9110, 5.3: field lines of one name are one comma-separated list. Only the
    first line was read, so an If-Match naming the file on its second line gave 412."""
    head = _raw_get(http_server.address, [_fill(line, validators) for line in lines])
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
