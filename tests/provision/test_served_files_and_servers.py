"""Served files and their servers in a graph: one URL has one file, and a file
whose server goes away fails instead of going unserved without a word."""

from __future__ import annotations

import http.client
import os
import threading

import pytest
from provision_support import AgentRun, free_port, request, wait_for

from mgmt.errors import GraphError
from mgmt.graph import parse_graph
from mgmt.log import get_logger
from mgmt.resources.base import Init, ResourceError, Services, fill_params
from mgmt.resources.http import HttpFileRes, HttpServerRes

TWO_FILES = """graph: g
resources:
  {kind}:
  - name: w
    address: "127.0.0.1:1"
  {kind}:file:
  - name: f1
    server: w
    path: {first}
    content: "one"
  - name: f2
    server: w
    path: {second}
    content: "two"{mac}
"""


@pytest.mark.parametrize(
    ("kind", "first", "second", "mac", "clash"),
    [
        ("http:server", "/x", "/x", "", "http:server[w]/x"),
        ("http:server", "/x", "x//", "", "http:server[w]/x"),
        ("tftp:server", "pxelinux.cfg/default", "/pxelinux.cfg/default", "",
         "tftp:server[w]/pxelinux.cfg/default"),
    ],
    ids=["http", "http-same-path-written-twice", "tftp"],
)  # fmt: skip
def test_two_files_for_one_url_on_one_server_are_refused(kind, first, second, mac, clash):
    text = TWO_FILES.format(kind=kind, first=first, second=second, mac=mac)
    with pytest.raises(GraphError) as caught:
        parse_graph(text, "g.yaml")
    message = str(caught.value)
    assert message.startswith("g.yaml:11: "), message
    assert f"{kind}:file[f2] and {kind}:file[f1] (line 7) both manage {clash}" in message


def test_one_mac_written_two_ways_is_one_url(tmp_path):
    text = TWO_FILES.format(kind="http:server", first="/x", second="/x", mac="")
    text = text.replace('content: "one"', 'content: "one"\n    mac: "52:54:00:AA:BB:CC"')
    text += '    mac: "52-54-00-aa-bb-cc"\n'
    with pytest.raises(GraphError, match="both manage http:server\\[w\\]/x for MAC 52:54:00:aa"):
        parse_graph(text, "g.yaml")


def test_files_for_one_url_that_do_not_clash():
    # A per-MAC body beside the default for everyone; one path on two servers.
    text = TWO_FILES.format(kind="http:server", first="/x", second="/x", mac="")
    per_mac = text + '    mac: "52:54:00:aa:bb:cc"\n'
    assert len(parse_graph(per_mac, "g.yaml").resources) == 3
    other = text.replace("  - name: f2\n    server: w", "  - name: f2\n    server: v")
    assert len(parse_graph(other, "g.yaml").resources) == 3


def _res(cls, name, tmp_path, services, event=lambda: None, **params):
    res = cls(name, fill_params(cls, params))
    init = Init("test", get_logger("test"), tmp_path / "state", None, event, services=services)
    res.setup(init)
    return res


def test_a_file_whose_server_stops_is_told_and_then_fails(tmp_path):
    services, port, woke = Services(), free_port(), threading.Event()
    server = _res(HttpServerRes, "web", tmp_path, services, address=f"127.0.0.1:{port}")
    ks = _res(HttpFileRes, "/ks", tmp_path, services, woke.set, server="web", content="x")
    ks.watch()
    try:
        server.check_apply(True)
        assert ks.check_apply(True) is False and ks.check_apply(True) is True
        assert not woke.is_set()
        server.close()  # what a graph edit that removes or renames it does
        assert woke.is_set(), "the file resource was not told"
        with pytest.raises(ResourceError, match="no http:server named 'web' is running"):
            ks.check_apply(True)
    finally:
        ks.close()
        server.close()
    woke.clear()
    server.check_apply(True)  # a closed file resource is told nothing any more
    server.close()
    assert not woke.is_set()


def test_a_stopped_server_answers_nothing_more_on_kept_alive_connections(tmp_path):
    """shutdown() stopped only new connections: a kept-alive one was served from the
    old tree for as long as its client kept asking. Now an answer being sent is
    finished, and then (or at once, when idle) the connection ends."""
    root = tmp_path / "tree"
    root.mkdir()
    (root / "a.txt").write_text("a\n")
    big = os.urandom(1 << 20) * 64
    (root / "big.img").write_bytes(big)
    services, port = Services(), free_port()
    server = _res(HttpServerRes, "web", tmp_path, services, address=f"127.0.0.1:{port}",
                  root=str(root))  # fmt: skip
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    busy = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        server.check_apply(True)
        idle.request("GET", "/a.txt")
        assert idle.getresponse().read() == b"a\n"
        busy.request("GET", "/big.img")
        answer = busy.getresponse()
        first = answer.read(1 << 16)
        server.close()  # what a graph edit that removes or replaces the server does
        assert first + answer.read() == big  # the answer under way is sent whole
        for conn in (idle, busy):
            conn.sock.settimeout(5)  # the server's idle timeout is 60 s
            assert conn.sock.recv(1) == b"", "a stopped server kept the connection open"
    finally:
        idle.close()
        busy.close()
        server.close()


SERVER = """  http:server:
  - name: {server}
    address: "127.0.0.1:{port}"
"""
FILES = """  http:server:file:
  - name: /ks/node.ks
    server: web
    content: "text\\n"
"""


@pytest.mark.parametrize("edit", ["renamed", "removed"])
def test_a_graph_edit_that_takes_the_server_away_fails_its_files(tmp_path, edit):
    graph, port = tmp_path / "g.yaml", free_port()
    graph.write_text("graph: g\nresources:\n" + SERVER.format(server="web", port=port) + FILES)
    with AgentRun(graph, tmp_path / "agent.log") as agent:
        assert wait_for(lambda: request(("127.0.0.1", port), "/ks/node.ks").status == 200)
        server = SERVER.format(server="web2", port=port) if edit == "renamed" else ""
        graph.write_text("graph: g\nresources:\n" + server + FILES)
        said = "http:server:file: /ks/node.ks: failed: no http:server named 'web' is running"
        assert wait_for(lambda: said in agent.log, timeout=15), agent.log
        agent.stop()
    assert "Traceback" not in agent.log


def test_a_server_edited_in_place_keeps_its_files_without_a_failure(tmp_path):
    graph, port, moved = tmp_path / "g.yaml", free_port(), free_port()
    graph.write_text("graph: g\nresources:\n" + SERVER.format(server="web", port=port) + FILES)
    with AgentRun(graph, tmp_path / "agent.log") as agent:
        assert wait_for(lambda: request(("127.0.0.1", port), "/ks/node.ks").status == 200)
        graph.write_text("graph: g\nresources:\n" + SERVER.format(server="web", port=moved) + FILES)
        assert wait_for(lambda: request(("127.0.0.1", moved), "/ks/node.ks").body == b"text\n")
        assert agent.stop() == 0
    assert "failed" not in agent.log and "Traceback" not in agent.log
