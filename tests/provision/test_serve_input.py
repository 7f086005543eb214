"""Small input gaps: a bracket left open in an address, one URL given twice to
``mgmt-pkg serve --file``, ``.`` segments in a path to an overlay file, and a
stop as soon as serve is ready."""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from provision_support import ServeProcess, request

from mgmt.errors import GraphError
from mgmt.graph import parse_graph
from mgmt.net.content import Content, parse_address
from mgmt.net.http_server import HttpFileServer
from mgmt.net.tftp import TftpServer
from mgmt.net.tftp_wire import ACK, DATA, RRQ
from mgmt.resources.base import FieldError, fill_params
from mgmt.resources.http import HttpServerRes
from support.threadsignal import signal_another_thread


@pytest.mark.parametrize("address", ["[::1:20184", "[::1", "[::1]20184", "[::1]x:80"])
def test_an_ipv6_address_without_its_bracket_is_refused(address):
    with pytest.raises(ValueError, match=r"written \[ADDRESS\] or \[ADDRESS\]:PORT"):
        parse_address(address, 80)
    with pytest.raises(FieldError) as caught:
        fill_params(HttpServerRes, {"address": address})
    assert caught.value.field == "address"


@pytest.mark.parametrize(
    ("address", "parsed"),
    [("[::1]:20184", ("::1", 20184)), ("[::1]", ("::1", 80)), ("[::]:0", ("::", 0))],
)
def test_bracketed_ipv6_addresses_still_parse(address, parsed):
    assert parse_address(address, 80) == parsed


def test_a_graph_with_an_open_bracket_is_refused_with_its_line():
    text = 'graph: g\nresources:\n  http:server:\n  - name: w\n    address: "[::1:20184"\n'
    with pytest.raises(GraphError) as caught:
        parse_graph(text, "g.yaml")
    assert str(caught.value).startswith("g.yaml:5: "), str(caught.value)
    assert "address" in str(caught.value)


def test_a_graph_serving_a_file_at_a_path_with_a_query_is_refused_with_its_line():
    text = (
        "graph: g\nresources:\n  http:server:file:\n  - name: ks\n    server: web\n"
        '    path: "/ks.cfg?host=node7"\n    content: "text\\n"\n'
    )
    with pytest.raises(GraphError) as caught:
        parse_graph(text, "g.yaml")
    assert str(caught.value).startswith("g.yaml:6: http:server:file[ks]: path: holds '?'")


@pytest.mark.parametrize("mac", ['""', '" "'], ids=["empty", "blank"])
def test_a_graph_serving_a_file_for_an_empty_mac_is_refused(mac):
    """`mac: "$MAC"` with $MAC empty served that host's kickstart to every host."""
    text = (
        "graph: g\nresources:\n  http:server:file:\n  - name: ks\n    server: web\n"
        f'    mac: {mac}\n    content: "text\\n"\n'
    )
    with pytest.raises(GraphError) as caught:
        parse_graph(text, "g.yaml")
    assert str(caught.value) == (
        "g.yaml:6: http:server:file[ks]: mac: empty: give a MAC, or leave the field out "
        "to serve every host"
    )


def _serve(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mgmt_pkg", "serve", ".", "--bind", "127.0.0.1"]
    return subprocess.run(
        [*command, "--port", "0", *args], capture_output=True, text=True, timeout=20, cwd=cwd
    )


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ("/a=b.ks", "--file '/a=b.ks': /a given twice"),
        ("//a/.=b.ks", "--file '//a/.=b.ks': /a given twice"),
        ("/m@52-54-00-AA-BB-CC=b.ks", "/m for MAC 52:54:00:aa:bb:cc given twice"),
    ],
    ids=["same", "same-written-otherwise", "same-mac-written-otherwise"],
)
def test_one_url_given_twice_to_serve_file_is_refused(tmp_path, second, message):
    (tmp_path / "a.ks").write_text("a\n")
    (tmp_path / "b.ks").write_text("b\n")
    first = "/m@52:54:00:aa:bb:cc=a.ks" if "@" in second else "/a=a.ks"
    done = _serve("--file", first, "--file", second, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("mgmt-pkg: error: "), done.stderr
    assert message in done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        # `--file "/ks.cfg@$MAC=node7.ks"` with $MAC unset served node7's kickstart
        # (its hostname, its disks, its root password) to every host that asked.
        ("/ks.cfg@=a.ks", "--file '/ks.cfg@=a.ks': no MAC address after @"),
        ("/ks.cfg@ =a.ks", "no MAC address after @"),
        (
            "/ks.cfg@01-52-54-00-aa-bb-cc=a.ks",
            "'01-52-54-00-aa-bb-cc' is not a MAC address (PXELINUX's 01- is the hardware type: "
            "give 52-54-00-aa-bb-cc)",
        ),
        # 404 to every request: the server looks requests up by their path alone.
        ("/ks.cfg?host=node7=a.ks", "--file '/ks.cfg?host=node7=a.ks': holds '?': a request"),
    ],
    ids=["empty-mac", "blank-mac", "pxelinux-prefix", "query"],
)
def test_a_serve_file_no_request_would_get_is_refused(tmp_path, spec, message):
    (tmp_path / "a.ks").write_text("a\n")
    done = _serve("--file", spec, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("mgmt-pkg: error: "), done.stderr
    assert message in done.stderr
    assert len(done.stderr.splitlines()) == 1 and "serving" not in done.stdout


def test_a_serve_file_for_a_mac_without_http_is_refused(tmp_path):
    """TFTP clients never say their MAC: the file went to no one, and the one
    without @MAC to that host too, with nothing said."""
    (tmp_path / "n7.cfg").write_text("n7\n")
    command = [sys.executable, "-m", "mgmt_pkg", "serve", ".", "--bind", "127.0.0.1", "--no-http"]
    spec = "/pxelinux.cfg/default@52:54:00:AA:BB:CC=n7.cfg"
    done = subprocess.run(
        [*command, "--tftp", "--tftp-port", "0", "--file", spec],
        capture_output=True, text=True, timeout=20, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"mgmt-pkg: error: --file '{spec}': with --no-http no client says its MAC (only HTTP "
        "clients, with dracut's inst.ks.sendmac, do); PXELINUX asks for "
        "pxelinux.cfg/01-52-54-00-aa-bb-cc\n"
    )


OVERLAY = {"/ks/node.ks": Content.from_bytes(b"node\n")}


@pytest.mark.parametrize("path", ["/ks/./node.ks", "/./ks/node.ks", "/ks/node.ks/."])
def test_dot_segments_find_an_overlay_file_over_http(tmp_path, path):
    with HttpFileServer(tmp_path, overlay=OVERLAY) as server:
        reply = request(server.address, path)
    assert (reply.status, reply.body) == (200, b"node\n")


def test_dot_segments_find_an_overlay_file_over_tftp():
    with (
        TftpServer(None, "127.0.0.1", 0, OVERLAY) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        client.settimeout(5)
        client.sendto(struct.pack("!H", RRQ) + b"ks/./node.ks\0octet\0", server.address)
        packet, sender = client.recvfrom(600)
        client.sendto(struct.pack("!HH", ACK, 1), sender)
    assert packet == struct.pack("!HH", DATA, 1) + b"node\n"


def test_a_file_path_with_dot_segments_clashes_with_the_plain_one():
    text = (
        "graph: g\nresources:\n  http:server:file:\n"
        "  - {name: a, server: w, path: /ks/node.ks, content: one}\n"
        "  - {name: b, server: w, path: /ks/./node.ks, content: two}\n"
    )
    with pytest.raises(GraphError, match=r"both manage http:server\[w\]/ks/node.ks"):
        parse_graph(text, "g.yaml")


def test_a_relative_serve_file_source_is_served(tmp_path):
    (tmp_path / "ks").mkdir()
    (tmp_path / "ks" / "a.ks").write_text("relative\n")
    command = [sys.executable, "-m", "mgmt_pkg", "serve", ".", "--bind", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", "0", "--file", "/a.ks=ks/a.ks"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        assert line.startswith("serving "), process.stderr.read() if process.poll() else line
        port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
        reply = request(("127.0.0.1", port), "/a.ks")
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert (reply.status, reply.body) == (200, b"relative\n")


def test_a_stop_right_after_the_ready_line_is_a_clean_stop(tmp_path):
    """Whoever waits for the ready line (a test, a supervisor) may stop the server the
    moment it comes: the handlers were set after it, and such a SIGTERM ended the
    run with 143 and "interrupted by SIGTERM; removed what the run had made" in about
    two of three tries. Ten tries: each a clean stop, exit 0, nothing said."""
    for _ in range(10):
        with ServeProcess(str(tmp_path), "--bind", "127.0.0.1", "--port", "0") as server:
            assert server.stop() == ""


def test_a_stop_signal_a_servers_thread_takes_still_stops_it(tmp_path):
    """The kernel gives a process's signal to any thread that does not block it; the
    main thread, asleep until a stop, never ran the handler of one a server's thread
    took, and the server ran on."""
    with ServeProcess(str(tmp_path), "--bind", "127.0.0.1", "--port", "0", "--tftp") as server:
        signal_another_thread(server.process.pid, signal.SIGTERM)
        _out, err = server.process.communicate(timeout=10)
        assert server.process.returncode == 0 and err == ""
