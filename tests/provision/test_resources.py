"""The http:server / tftp:server kinds and their :file kinds, through the real agent.

The graph is run by `mgmt run` (ENGINE's agent, no etcd); the checks use real
clients over loopback. The last tests drive the classes directly for what a
running agent cannot show (noop, a taken port, a missing server).
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from provision_support import AgentRun, free_port, request, wait_for

from mgmt.log import get_logger
from mgmt.net.board import Board
from mgmt.resources.base import FieldError, Init, ResourceError, Services, fill_params
from mgmt.resources.http import HttpFileRes, HttpServerRes
from mgmt.resources.tftp import TftpServerRes
from support import require_tools

MAC = "52:54:00:12:34:56"


def graph_text(root: Path, http_port: int, tftp_port: int, kickstart: str, per_mac: bool) -> str:
    special = f"""
  - name: ks-for-node7
    path: /ks/node.ks
    server: web
    mac: "{MAC}"
    content: "# node7\\n"
""" if per_mac else ""  # fmt: skip
    return f"""graph: provision
resources:
  file:
  - name: {root}/
    path: {root}/
    state: exists
  - name: {root}/hello.txt
    content: "hello from the tree\\n"
  http:server:
  - name: web
    address: 127.0.0.1:{http_port}
    root: {root}
  http:server:file:
  - name: /ks/node.ks
    server: web
    content: {json.dumps(kickstart)}{special}
  tftp:server:
  - name: boot
    address: 127.0.0.1:{tftp_port}
  tftp:server:file:
  - name: pxelinux.cfg/default
    server: boot
    content: "default install\\n"
"""


def _get(port: int, path: str, headers=None):
    return request(("127.0.0.1", port), path, headers=headers)


def test_a_graph_serves_tree_kickstarts_and_tftp_and_follows_edits(tmp_path):
    require_tools("curl")
    root, graph = tmp_path / "www", tmp_path / "provision.yaml"
    http_port, tftp_port = free_port(), free_port(socket.SOCK_DGRAM)
    graph.write_text(graph_text(root, http_port, tftp_port, "# everyone v1\n", per_mac=True))
    with AgentRun(graph, tmp_path / "agent.log") as agent:
        assert wait_for(lambda: _get(http_port, "/hello.txt").status == 200), agent.log
        assert _get(http_port, "/hello.txt").body == b"hello from the tree\n"
        assert _get(http_port, "/ks/node.ks").body == b"# everyone v1\n"
        mine = {"X-RHN-Provisioning-MAC-0": f"eth0 {MAC.upper()}"}
        assert _get(http_port, "/ks/node.ks", mine).body == b"# node7\n"
        ranged = _get(http_port, "/hello.txt", {"Range": "bytes=-5"})
        assert (ranged.status, ranged.body) == (206, b"tree\n")
        tftp = subprocess.run(
            ["curl", "-sS", f"tftp://127.0.0.1:{tftp_port}/pxelinux.cfg/default"],
            capture_output=True, timeout=20,
        )  # fmt: skip
        assert tftp.stdout == b"default install\n"

        # Live edit: new kickstart for everyone, the per-host one removed.
        graph.write_text(graph_text(root, http_port, tftp_port, "# everyone v2\n", per_mac=False))
        assert wait_for(lambda: _get(http_port, "/ks/node.ks", mine).body == b"# everyone v2\n")
        assert _get(http_port, "/hello.txt").status == 200  # the server kept running
        assert agent.stop() == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", http_port), timeout=2).close()
    assert "Traceback" not in agent.log


# -- the classes on their own -----------------------------------------------


class _Watcher:
    def watch_path(self, path, callback):
        return lambda: None


def _init(tmp_path: Path, services: Services, event=None) -> Init:
    log = get_logger("test")
    return Init("test", log, tmp_path / "state", _Watcher(), event or (lambda: None),
                services=services)  # fmt: skip


def _res(cls, name, tmp_path, services, **params):
    res = cls(name, fill_params(cls, params))
    res.setup(_init(tmp_path, services))  # services shared as one agent's resources share them
    return res


def test_noop_starts_nothing_and_apply_starts_once(tmp_path):
    services, port = Services(), free_port()
    server = _res(HttpServerRes, "web", tmp_path, services, address=f"127.0.0.1:{port}")
    ks = _res(HttpFileRes, "/ks.cfg", tmp_path, services, server="web", content="text\n")
    try:
        assert server.check_apply(False) is False and ks.check_apply(False) is False
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert server.check_apply(True) is False
        assert server.check_apply(True) is True  # running: nothing to do
        assert ks.check_apply(True) is False and ks.check_apply(True) is True
        assert _get(port, "/ks.cfg").body == b"text\n"
        ks.close()
        assert _get(port, "/ks.cfg").status == 404
    finally:
        server.close()


def test_two_agents_in_one_process_share_no_files(tmp_path):
    """Each agent's board lives in its own Services: same server name, separate files."""
    one, other = Services(), Services()
    port_one, port_other = free_port(), free_port()
    server_one = _res(HttpServerRes, "web", tmp_path, one, address=f"127.0.0.1:{port_one}")
    server_other = _res(HttpServerRes, "web", tmp_path, other, address=f"127.0.0.1:{port_other}")
    ks = _res(HttpFileRes, "/ks.cfg", tmp_path, one, server="web", content="one\n")
    try:
        assert server_one.check_apply(True) is False and server_other.check_apply(True) is False
        assert ks.check_apply(True) is False
        assert _get(port_one, "/ks.cfg").body == b"one\n"
        assert _get(port_other, "/ks.cfg").status == 404
        assert one.get(Board) is not other.get(Board)
    finally:
        ks.close()
        server_one.close()
        server_other.close()


def test_taken_port_is_a_resource_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = _res(HttpServerRes, "web", tmp_path, Services(), address=f"127.0.0.1:{port}")
        server.init.stopping.set()  # no patience: fail at once
        with pytest.raises(ResourceError, match=f"cannot listen on 127.0.0.1 port {port}"):
            server.check_apply(True)


@pytest.mark.parametrize("kind", [HttpServerRes, TftpServerRes])
def test_a_root_that_is_no_directory_is_a_resource_error(tmp_path, kind):
    (tmp_path / "a-file").write_text("x")
    for root in (tmp_path / "missing", tmp_path / "a-file"):
        server = _res(kind, "srv", tmp_path, Services(), address="127.0.0.1:0", root=str(root))
        with pytest.raises(ResourceError, match=f"root {root} is no directory"):
            server.check_apply(True)
        assert server._server is None  # nothing started


def test_file_without_its_server_is_a_resource_error(tmp_path):
    ks = _res(HttpFileRes, "/ks.cfg", tmp_path, Services(), server="nowhere", content="x")
    with pytest.raises(ResourceError, match="no http:server named 'nowhere' is running"):
        ks.check_apply(True)


def test_server_restarts_after_its_loop_dies(tmp_path):
    port, woke = free_port(), threading.Event()
    server = HttpServerRes("web", fill_params(HttpServerRes, {"address": f"127.0.0.1:{port}"}))
    server.setup(_init(tmp_path, Services(), event=woke.set))
    try:
        server.check_apply(True)
        server._server._server.shutdown()  # the serving loop ends without stop()
        assert woke.wait(5), "the engine was not told"
        assert server.check_apply(True) is False  # started again
        assert wait_for(lambda: _get(port, "/").status == 404)
    finally:
        server.close()


@pytest.mark.parametrize(
    "params, field",
    [
        ({"server": "web"}, "content"),
        ({"server": "web", "content": "x", "source": "/etc/hostname"}, "content"),
        ({"server": "web", "source": "relative/path"}, "source"),
        ({"server": "web", "content": "x", "mac": "52:54:00"}, "mac"),
        ({"server": "web", "content": "x", "mac": 41135085296}, "mac"),
    ],
)
def test_file_fields_are_validated(params, field):
    with pytest.raises(FieldError) as error:
        fill_params(HttpFileRes, params)
    assert error.value.field == field


def test_server_address_is_validated():
    with pytest.raises(FieldError, match="address"):
        fill_params(HttpServerRes, {"address": "127.0.0.1:http"})


EXAMPLE = Path(__file__).parents[2] / "examples" / "provision.yaml"


def test_the_provisioning_example_runs(tmp_path):
    """examples/provision.yaml on loopback ports and under tmp_path, otherwise as shipped."""
    require_tools("curl")
    http_port, tftp_port = free_port(), free_port(socket.SOCK_DGRAM)
    text = (
        EXAMPLE.read_text()
        .replace("/srv/provision", str(tmp_path / "srv"))
        .replace('"10.254.0.1:80"', f'"127.0.0.1:{http_port}"')
        .replace('"10.254.0.1:69"', f'"127.0.0.1:{tftp_port}"')
    )
    graph = tmp_path / "provision.yaml"
    graph.write_text(text)
    with AgentRun(graph, tmp_path / "agent.log") as agent:
        assert wait_for(lambda: _get(http_port, "/ks/node.ks").status == 200), agent.log
        everyone = _get(http_port, "/ks/node.ks").body.decode()
        node7 = _get(
            http_port, "/ks/node.ks", {"X-RHN-Provisioning-MAC-0": "eth0 52:54:00:00:00:07"}
        )
        assert "autopart --type=lvm" in everyone
        assert "volgroup VolGroup00 --pesize=4096 pv.01" in node7.body.decode()
        (tmp_path / "srv" / "os" / "repo.rpm").write_bytes(bytes(range(256)) * 8)
        ranged = _get(http_port, "/repo.rpm", {"Range": "bytes=1384-"})
        assert ranged.status == 206 and ranged.body == (bytes(range(256)) * 8)[1384:]
        menu = subprocess.run(
            ["curl", "-sS", f"tftp://127.0.0.1:{tftp_port}/pxelinux.cfg/default"],
            capture_output=True, text=True, timeout=20,
        )  # fmt: skip
        assert "inst.ks=http://10.254.0.1/ks/node.ks inst.ks.sendmac" in menu.stdout
        assert agent.stop() == 0
