"""The reverse tunnel to the initiator's etcd: locked to the run, robust, refusable.

Real sshd hosts in namespaces (a module of their own, as in test_remote_run);
each test leaves them clean.
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import threading
from pathlib import Path

import pytest
from remote_helpers import (
    AGENT_MARK,
    Initiator,
    assert_clean,
    file_graph,
    graph_for,
    mgmt_run,
    need_hosts,
    summary,
    wait_until,
)

from support.hosts import ssh_hosts


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["a", "f"]) as hosts:
        yield hosts


def _etcd_call(host, port: int, path: str, body: dict) -> dict:
    done = host.run(
        [
            "curl",
            "-s",
            "-m",
            "5",
            "-X",
            "POST",
            f"http://127.0.0.1:{port}/v3/{path}",
            "-d",
            json.dumps(body),
        ]
    )
    return json.loads(done.stdout)


def test_the_tunnel_refuses_anyone_without_the_runs_credentials(pool, bundle, tmp_path):
    a = pool["a"]
    with Initiator(pool, bundle, [graph_for("remote2a.yaml", "a", tmp_path)]):
        wait_until(lambda: a.exists("/tmp/file2a"), 30, "a's export applied")
        loopback = [x for x in a.listeners() if x.startswith("127.0.0.1:")]
        assert len(loopback) == 1, a.listeners()
        port = int(loopback[0].rsplit(":", 1)[1])
        everything = {
            "key": base64.b64encode(b"/_mgmt/").decode(),
            "range_end": base64.b64encode(b"/_mgmt0").decode(),
        }
        anonymous = _etcd_call(a, port, "kv/range", everything)
        assert "kvs" not in anonymous and "user name is empty" in json.dumps(anonymous)
        guessed = _etcd_call(a, port, "auth/authenticate", {"name": "root", "password": "root"})
        assert "token" not in guessed and "authentication failed" in json.dumps(guessed)
        # The credentials are on no command line in the host (where the agent runs).
        commands = " ".join(a.processes().values())
        assert "mgmt-run-" not in commands and AGENT_MARK in commands
    assert_clean(a)
    a.run("rm -f /tmp/file*")


def test_a_failed_local_dial_does_not_kill_the_tunnel(pool, monkeypatch):
    from mgmt.remote.hostspec import HostSpec
    from mgmt.remote.transport.connect import ConnectOptions, connect
    from mgmt.remote.transport.tunnel import ReverseTunnel

    monkeypatch.setenv("HOME", str(pool.home))
    a = pool["a"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here yet
    conn = connect(HostSpec("a", Path("g.yaml")), ConnectOptions())
    tunnel = ReverseTunnel(conn.transport, lambda: ("127.0.0.1", port), "a")
    try:
        remote_port = tunnel.open()
        client = (
            f"import socket;s=socket.create_connection(('127.0.0.1',{remote_port}),5);"
            "s.sendall(b'ping');print(s.recv(10).decode() or 'EOF')"
        )
        assert a.run(["python3", "-c", client]).stdout.strip() == "EOF"
        assert tunnel.failed_dials == 1

        server = socket.create_server(("127.0.0.1", port))

        def answer() -> None:
            peer, _ = server.accept()
            with peer:
                peer.sendall(b"pong " + peer.recv(4))

        threading.Thread(target=answer, daemon=True).start()
        assert a.run(["python3", "-c", client]).stdout.strip() == "pong ping"
        server.close()
    finally:
        tunnel.close()
        conn.close()
    wait_until(lambda: not [x for x in a.listeners() if x.startswith("127.")], 5, "no listener")


def test_a_host_that_refuses_port_forwarding_fails_clearly_and_keeps_nothing(
    pool, bundle, tmp_path
):
    """The tunnel is asked for while the host runs the start script (a fresh host: it
    finds no bundle); the refusal must still leave no run dir behind."""
    host = pool["f"]
    config = host.state_dir / "sshd_config"
    config.write_text(config.read_text().replace("AllowTcpForwarding yes", "AllowTcpForwarding no"))
    host.sshd.send_signal(signal.SIGHUP)  # sshd re-executes itself with the new config
    wait_until(lambda: f"{host.address}:{host.port}" in host.listeners(), 10, "sshd back")
    done = mgmt_run(pool, bundle, [file_graph("f", "f", tmp_path)], "--converged-timeout=1")
    assert done.returncode == 1, done.stdout + done.stderr
    result, _, message = summary(done.stdout)["f"]
    assert result == "failed" and "port forwarding" in message, done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert not host.exists("/tmp/only-f")
    assert_clean(host)
