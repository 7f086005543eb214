"""A detached cluster through ``--sudo``: a normal user logs in, the cluster is root's.

Real users (support.users) on a real throw-away host; sudo is the system's.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from remote_helpers import MGMT, assert_clean, graph_for, need_hosts

from support import require_tools
from support.hosts import ssh_hosts
from support.users import sudo_users

STATE = "/root/.local/state/mgmt/detached"


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    require_tools("sudo", "useradd", "visudo")
    with ssh_hosts(["a"]) as hosts:
        yield hosts


@pytest.fixture(scope="module")
def users(pool):
    with sudo_users({"nopasswd": "nopasswd"}, Path(str(pool.identity) + ".pub")) as made:
        yield made


def _mgmt(pool, bundle, command: str, graph: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MGMT, command, *flags, "--remote", str(graph)],
        env=pool.env(MGMT_BUNDLE=str(bundle)), capture_output=True, text=True, timeout=180,
        check=False, start_new_session=True,
    )  # fmt: skip


def test_a_cluster_detached_through_sudo_is_roots_and_stopped_through_sudo(
    pool, users, bundle, tmp_path
):
    a, user = pool["a"], users["nopasswd"]
    graph = graph_for("remote2a.yaml", f"ssh://{user.name}@{a.address}:22", tmp_path)
    home = a.run(["sh", "-c", f"getent passwd {user.name} | cut -d: -f6"]).stdout.strip()
    try:
        done = _mgmt(pool, bundle, "run", graph, "--sudo", "--detach")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"mgmt status --remote {graph} --sudo\n" in done.stdout, done.stdout
        assert a.run(["stat", "-c", "%U", "/tmp/file1a"]).stdout.strip() == "root"
        # The cluster's state is root's alone, nothing of it in the user's home.
        modes = a.run(f"stat -c '%U %a' {STATE} {STATE}/agent.in {STATE}/root.json").stdout
        assert modes.split("\n")[:3] == ["root 700", "root 600", "root 600"], modes
        assert not a.exists(f"{home}/.local/state/mgmt")
        agent = int(a.read_file(f"{STATE}/agent.pid"))
        assert a.run(["ps", "-o", "user=", "-p", str(agent)]).stdout.strip() == "root"

        status = _mgmt(pool, bundle, "status", graph, "--sudo")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "agent running" in status.stdout and "member healthy" in status.stdout
    finally:
        stop = _mgmt(pool, bundle, "stop", graph, "--sudo")
    assert stop.returncode == 0 and "stopped agent, etcd" in stop.stdout, stop.stdout
    assert_clean(a)
    assert not a.exists("/root/.local/state/mgmt")
