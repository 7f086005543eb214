"""An agent of a remote run (--converged-stdout) connects to etcd only when its graph exchanges.

Such an agent reports its converged state on stdout for the initiator to
relay; these tests run the real agent process against a real etcd, and against
a port where nothing listens, to show when it connects and when it does not.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tcpproxy import TcpProxy

from mgmt.remote.protocol import converged_line
from mgmt.world.client import EtcdClient
from mgmt.world.exchange import EtcdWorld

REPO = Path(__file__).resolve().parents[2]


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens once closed


def _agent_argv(graph: Path, seeds: str, converged_timeout: str = "0") -> list:
    argv = [sys.executable, "-m", "mgmt", "run", "--file", str(graph), "--hostname", "h"]
    argv += ["--no-server", "--seeds", seeds, "--converged-stdout"]
    return [*argv, "--tmp-prefix", "--converged-timeout", converged_timeout]


def _run_agent(graph: Path, seeds: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run(
        _agent_argv(graph, seeds), capture_output=True, text=True, timeout=60, env=env
    )


def _start_agent(graph: Path, seeds: str) -> subprocess.Popen:
    """The agent on ``graph`` with no timeout of its own, its log on stderr (a pipe)."""
    return subprocess.Popen(
        _agent_argv(graph, seeds, "-1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO / "src")),
    )


def _keys(client, prefix: str) -> dict:
    encoded = base64.b64encode(prefix.encode()).decode()
    end = base64.b64encode(prefix[:-1].encode() + bytes([ord(prefix[-1]) + 1])).decode()
    found = client.call("kv/range", {"key": encoded, "range_end": end}).get("kvs", [])
    return {
        base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode() for kv in found
    }


def test_a_graph_that_exchanges_nothing_runs_without_ever_reaching_etcd(tmp_path):
    out = tmp_path / "out"
    graph = tmp_path / "g.yaml"
    graph.write_text(
        f"graph: g\nresources:\n  file:\n  - name: f\n    path: {out}\n    content: hi\n"
    )
    done = _run_agent(graph, _closed_port_url())
    assert done.returncode == 0, done.stderr
    assert out.read_text() == "hi"
    assert converged_line(True) in done.stdout.splitlines()
    assert "etcd" not in done.stderr


def test_a_graph_that_exports_connects_and_leaves_converged_to_the_initiator(
    etcd, client, tmp_path
):
    graph = tmp_path / "g.yaml"
    graph.write_text("graph: g\nresources:\n  noop:\n  - name: '@@shared'\n")
    done = _run_agent(graph, etcd.client_url)
    assert done.returncode == 0, done.stderr
    exported = _keys(client, "/_mgmt/exported/h/")
    assert list(exported) == ["/_mgmt/exported/h/resources/noop/shared"]
    # Reported on stdout, not written: relaying it is the initiator's job.
    assert converged_line(True) in done.stdout.splitlines()
    assert _keys(client, "/_mgmt/converged/") == {}


def test_a_graph_that_collects_waits_for_etcd_and_collects_once_it_is_there(etcd, client, tmp_path):
    # Another host's export, already in etcd.
    other = EtcdWorld(EtcdClient([etcd.client_url]), "other")
    wanted = tmp_path / "from-other"
    other.export({("file", "shared"): {"path": str(wanted), "content": "shared\n"}})
    proxy = TcpProxy("127.0.0.1", int(etcd.client_url.rsplit(":", 1)[1]))
    proxy.refusing.set()  # etcd (through its tunnel) is not there yet
    graph = tmp_path / "g.yaml"
    local = tmp_path / "local"
    graph.write_text(
        f"graph: g\nresources:\n  file:\n  - name: local\n    path: {local}\n"
        "    content: here\ncollect:\n- kind: file\n"
    )
    agent = _start_agent(graph, proxy.url)
    try:
        deadline = time.monotonic() + 30
        while not (local.exists() and proxy.refused >= 2):  # applied, and retried
            assert time.monotonic() < deadline and agent.poll() is None
            time.sleep(0.05)
        assert not wanted.exists()
        proxy.refusing.clear()
        while not wanted.exists():
            assert time.monotonic() < deadline and agent.poll() is None
            time.sleep(0.05)
        assert wanted.read_text() == "shared\n"
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
        proxy.close()
        other.close()
    assert agent.returncode == 0, err
    assert "cannot reach etcd" in err and "(retrying)" in err
    assert "Traceback" not in err


def test_a_stop_while_the_first_connect_hangs_is_prompt(etcd, tmp_path):
    # A remote agent connects on its first export; through a tunnel that stalls,
    # that connect waits for its timeouts, and the stop (the initiator's SIGINT)
    # waited for it too, about 10 s, to close the world.
    proxy = TcpProxy("127.0.0.1", int(etcd.client_url.rsplit(":", 1)[1]))
    proxy.thawed.clear()  # connections are taken, nothing is answered
    graph = tmp_path / "g.yaml"
    graph.write_text("graph: g\nresources:\n  noop:\n  - name: '@@shared'\n")
    agent = _start_agent(graph, proxy.url)
    try:
        deadline = time.monotonic() + 30
        while proxy.link_count() < 1:  # the connect is under way
            assert time.monotonic() < deadline and agent.poll() is None
            time.sleep(0.05)
        began = time.monotonic()
        agent.send_signal(signal.SIGINT)
        _, err = agent.communicate(timeout=30)
        took = time.monotonic() - began
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        proxy.thawed.set()
        proxy.close()
    assert took < 5, (took, err)
    assert agent.returncode == 1, err
    assert "stopped, but cannot publish exported resources" in err
    assert "Traceback" not in err
