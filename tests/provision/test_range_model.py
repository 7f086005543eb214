"""Random Range headers against an independent model of RFC 9110 §14.

The model below is written from the RFC's grammar with string methods rather
than regular expressions, and thinks in *sets of byte positions*: it does not
know how the server merges or orders parts, only which bytes a correct answer
must contain. Every response (status, Content-Range, multipart framing, bytes)
is checked against it, both through plan_response and over real HTTP.
"""

from __future__ import annotations

import http.client
import string
from typing import Optional, Set, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from provision_support import content_range, parse_multipart, request

from mgmt.net.http_range import MAX_RANGES, plan_response
from mgmt.net.http_server import HttpFileServer

ASCII_DIGITS = set(string.digits)


def model(header: str, size: int) -> Tuple[int, Set[int]]:
    """(status, positions a 206 must cover) per RFC 9110 for a GET with this Range."""
    unit, equals, range_set = header.strip(" \t").partition("=")
    if not equals or unit.lower() != "bytes" or not unit:
        return 200, set()
    specs = []
    for element in range_set.split(","):
        element = element.strip(" \t")
        if element == "":
            continue
        head, dash, tail = element.partition("-")
        if not dash or (head and not set(head) <= ASCII_DIGITS):
            return 200, set()
        if tail and not set(tail) <= ASCII_DIGITS:
            return 200, set()
        if not head:
            if not tail:
                return 200, set()
            specs.append(("suffix", int(tail)))
        else:
            last: Optional[int] = int(tail) if tail else None
            if last is not None and last < int(head):
                return 200, set()
            specs.append((int(head), last))
    if not specs or len(specs) > MAX_RANGES:
        return 200, set()
    wanted: Set[int] = set()
    satisfiable_suffix = False
    for first, last in specs:
        if first == "suffix":
            if last > 0:
                satisfiable_suffix = True
                wanted |= set(range(max(0, size - last), size))
        elif first < size:
            wanted |= set(range(first, size if last is None else min(last + 1, size)))
    if wanted:
        return 206, wanted
    if size == 0 and satisfiable_suffix:
        return 200, set()
    return 416, set()


numbers = st.integers(min_value=0, max_value=400)
spec = st.one_of(
    st.builds(lambda a, b: f"{a}-{b}", numbers, numbers),
    st.builds(lambda a: f"{a}-", numbers),
    st.builds(lambda a: f"-{a}", numbers),
    st.sampled_from(["", " ", "-", "--1", "1-2-3", "x-1", "1-x", "\u00b2-3", "0 -1"]),
)
range_header = st.one_of(
    st.builds(
        lambda unit, specs, sep: unit + "=" + sep.join(specs),
        st.sampled_from(["bytes", "BYTES", "Bytes", "items", "", "bytes "]),
        st.lists(spec, min_size=0, max_size=8),
        st.sampled_from([",", ", ", " ,\t", ",,"]),
    ),
    st.text(alphabet=string.printable[:95], max_size=20),
)


def _never(name: str) -> Optional[str]:
    return None


@settings(max_examples=400, deadline=None)
@given(header=range_header, size=st.integers(min_value=0, max_value=300))
def test_plan_matches_model(header, size):
    plan = plan_response("GET", size, '"x"', 0.0, {"Range": header}.get, 10.0)
    status, wanted = model(header, size)
    assert plan.status == status
    covered = [p for r in plan.ranges for p in range(r.first, r.last + 1)]
    assert len(covered) == len(set(covered)), "parts overlap"
    assert set(covered) == wanted


@pytest.fixture(scope="module")
def model_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("model")
    for size in (0, 1, 7, 300):
        (root / f"f{size}").write_bytes(bytes((i * 7 + size) % 256 for i in range(size)))
    with HttpFileServer(root) as server:
        conn = http.client.HTTPConnection(*server.address, timeout=10)
        yield server, root, conn  # one keep-alive connection for every example
        conn.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(header=range_header, size=st.sampled_from([0, 1, 7, 300]))
def test_http_matches_model(model_server, header, size):
    server, root, conn = model_server
    data = (root / f"f{size}").read_bytes()
    reply = request(server.address, f"/f{size}", headers={"Range": header}, conn=conn)
    status, wanted = model(header, size)
    assert reply.status == status, (header, reply)
    assert int(reply.header("Content-Length")) == len(reply.body)
    if status == 200:
        assert reply.body == data and reply.header("Content-Range") is None
    elif status == 416:
        assert reply.header("Content-Range") == f"bytes */{size}" and reply.body == b""
    else:
        if reply.header("Content-Type").startswith("multipart/"):
            parts = [
                (r, d) for _t, r, d in parse_multipart(reply.header("Content-Type"), reply.body)
            ]
            assert len(parts) > 1, "a single part must not be sent as multipart"
        else:
            parts = [(reply.header("Content-Range"), reply.body)]
        covered = []
        for value, body in parts:
            first, last, total = content_range(value)
            assert total == size and body == data[first : last + 1]
            covered += range(first, last + 1)
        assert len(covered) == len(set(covered)) and set(covered) == wanted
