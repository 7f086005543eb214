"""EmbeddedEtcd: the system etcd started on loopback, healthy, and stopped again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from mgmt.errors import WorldError
from mgmt.world import server as server_module
from mgmt.world.client import EtcdClient
from mgmt.world.server import MISSING_BINARY, EmbeddedEtcd, find_etcd
from support import require_tools


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); a reaped process does not exist at all.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_starts_healthy_on_loopback_and_stops(tmp_path):
    require_tools("etcd")
    with EmbeddedEtcd(tmp_path / "etcd") as server:
        assert server.client_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.client_url + "/health", timeout=5) as response:
            assert b'"health":"true"' in response.read()
        pid = server.pid
        assert (tmp_path / "etcd" / "member").is_dir()
        assert oct((tmp_path / "etcd").stat().st_mode & 0o777) == "0o700"
    assert not alive(pid)
    assert "ready to serve client requests" in (tmp_path / "etcd.log").read_text()


def test_a_stopped_etcd_stops_at_once_with_its_agent(tmp_path, mgmt_log):
    # A SIGSTOPped etcd (the agent's ^C while it hangs) saw the SIGTERM only once
    # continued: the agent's stop waited 5 s for it, then killed it.
    import signal

    require_tools("etcd")
    server = EmbeddedEtcd(tmp_path / "etcd")
    server.start()
    pid = server.pid
    os.kill(pid, signal.SIGSTOP)
    began = time.monotonic()
    server.stop()
    assert time.monotonic() - began < server_module.STOP_TIMEOUT
    assert not alive(pid)
    assert "ignored SIGTERM" not in mgmt_log.getvalue()


def test_data_is_run_scoped(tmp_path):
    require_tools("etcd")
    with EmbeddedEtcd(tmp_path / "etcd") as server:
        EtcdClient([server.client_url]).put("/_mgmt/exported/old/resources/file/x", "{}")
    with EmbeddedEtcd(tmp_path / "etcd") as server:
        _, items = EtcdClient([server.client_url]).range("/_mgmt/", prefix=True)
    assert items == []


def test_second_server_on_the_same_dir_is_refused(tmp_path):
    require_tools("etcd")
    with EmbeddedEtcd(tmp_path / "etcd"), pytest.raises(WorldError, match="another mgmt agent"):
        EmbeddedEtcd(tmp_path / "etcd").start()


def test_missing_binary_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(server_module, "SEARCH_PATHS", (str(tmp_path / "etcd"),))
    with pytest.raises(WorldError) as error:
        find_etcd()
    assert str(error.value) == MISSING_BINARY
    assert "etcd-server" in str(error.value) and "Fedora" in str(error.value)
    with pytest.raises(WorldError, match="etcd-server"):
        EmbeddedEtcd(tmp_path / "etcd", binary=str(tmp_path / "nope")).start()


def test_failed_start_reports_the_log_tail(tmp_path):
    require_tools("etcd")
    server = EmbeddedEtcd(tmp_path / "etcd", extra_args=["--auto-compaction-mode=bogus"])
    with pytest.raises(WorldError) as error:
        server.start()
    assert "exited with status" in str(error.value)
    assert 'unknown auto-compaction-mode "bogus"' in str(error.value)
    assert server.pid is None


def test_start_deadline_is_a_clear_error(tmp_path):
    """A server that never becomes healthy is killed and reported, not waited on."""
    require_tools("etcd")
    # Joining a cluster whose other member never answers: etcd runs but has no leader.
    server = EmbeddedEtcd(tmp_path / "etcd", start_timeout=1.0)
    command = server._command

    def two_member_cluster(binary):
        args = command(binary)
        peer = "http://127.0.0.1:1"
        return [a if not a.startswith("--initial-cluster=") else f"{a},ghost={peer}" for a in args]

    server._command = two_member_cluster
    with pytest.raises(WorldError, match="not healthy after 1s"):
        server.start()
    assert server.pid is None


def test_etcd_dies_with_a_killed_agent(tmp_path):
    """SIGKILL gives the agent no chance to stop etcd; the kernel must do it."""
    require_tools("etcd")
    script = (
        "import sys; from pathlib import Path; from mgmt.world.server import EmbeddedEtcd\n"
        "server = EmbeddedEtcd(Path(sys.argv[1])); server.start()\n"
        "print(server.pid, flush=True); sys.stdin.read()\n"
    )
    agent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "etcd")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        etcd_pid = int(agent.stdout.readline())
        assert alive(etcd_pid)
    finally:
        agent.kill()
        agent.wait()
    deadline = time.monotonic() + 10
    while alive(etcd_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(etcd_pid)


def test_unusable_data_dir_is_a_world_error(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(WorldError, match="cannot run etcd with its data in"):
        EmbeddedEtcd(tmp_path / "file" / "etcd", binary="/bin/true").start()
