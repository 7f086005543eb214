"""``mgmt status --json``: a detached cluster's state as one JSON document on stdout
(its fields: mgmt.remote.orchestration.status), with the table's exit codes; a
host that cannot be reached is in it, with why."""

import hashlib
import json

import pytest
from remote_helpers import assert_clean, cluster_command, file_graph, mgmt_run, need_hosts

from support.hosts import ssh_hosts

STATE = "/root/.local/state/mgmt/detached"


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["sa", "sb"], bridge=True) as hosts:
        yield hosts


def _status(pool, bundle, graphs):
    """``mgmt status --json``: its exit code, and its stdout parsed (it must be one
    JSON document alone)."""
    done = cluster_command(pool, bundle, "status", graphs, "--json")
    try:
        document = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"not one JSON document: {done.stdout!r} {done.stderr}") from None
    return done.returncode, {h["host"]: h for h in document["hosts"]}, document


def test_status_json_describes_each_host_and_one_that_cannot_be_reached(pool, bundle, tmp_path):
    sa, sb = pool["sa"], pool["sb"]
    graphs = [file_graph("sa", "sa", tmp_path), file_graph("sb", "sb", tmp_path)]
    sha256 = hashlib.sha256(bundle.read_bytes()).hexdigest()
    try:
        done = mgmt_run(pool, bundle, graphs, "--detach")
        assert done.returncode == 0, done.stdout + done.stderr

        code, hosts, document = _status(pool, bundle, graphs)
        assert code == 0 and document["healthy"] is True, document
        assert list(hosts) == ["sa", "sb"]
        for name, host in ((sa.name, sa), (sb.name, sb)):
            shown = hosts[name]
            assert shown["reachable"] is True and shown["error"] is None, shown
            assert shown["cluster"] is True and shown["healthy"] is True, shown
            assert shown["same_login_as"] is None, shown
            agent = shown["agent"]
            assert agent["running"] is True and agent["last_exit"] is None, agent
            assert agent["pid"] == int(host.read_file(f"{STATE}/agent.pid")), agent
            started = float(host.run(f"stat -c %Y {STATE}/agent.pid").stdout)
            assert abs(agent["since"] - started) < 1.5, (agent, started)
            assert shown["converged"] is True and shown["failed"] == [], shown
            assert shown["bundle_sha256"] == sha256, shown
            assert shown["graph"] == f"only-{name}.yaml", shown
            assert shown["mgmt_version"] and isinstance(shown["started"], float), shown
            assert shown["log"] and all(isinstance(x, str) for x in shown["log"]), shown
        # Two hosts: one member, on the first.
        member = hosts["sa"]["etcd"]
        assert member["member"] is True and member["healthy"] is True, member
        assert member["url"] == f"http://{sa.address}:2379" and member["running"], member
        assert member["pid"] == int(sa.read_file(f"{STATE}/etcd.pid")), member
        assert hosts["sb"]["etcd"] == {
            "running": False, "pid": None, "since": None, "last_exit": None,
            "member": False, "url": None, "healthy": None,
        }  # fmt: skip

        # sb's agent gone with its supervisor (a reboot without systemd): it is said
        # not running, and what it last said of its convergence is not taken for now.
        pids = sb.run(f"cat {STATE}/agent.sup {STATE}/agent.pid").stdout.split()
        sb.run(["kill", "-KILL", *pids])
        code, hosts, document = _status(pool, bundle, graphs)
        assert code == 1 and document["healthy"] is False, document
        gone = hosts["sb"]
        assert gone["agent"]["running"] is False and gone["agent"]["since"] is None, gone
        assert gone["agent"]["pid"] == int(pids[1]), gone
        assert gone["converged"] is None and gone["healthy"] is False, gone
        assert hosts["sa"]["healthy"] is True, hosts["sa"]

        sb.stop_sshd()  # sb refuses SSH
        code, hosts, document = _status(pool, bundle, graphs)
        assert code == 1 and document["healthy"] is False, document
        down = hosts["sb"]
        assert down["reachable"] is False and "cannot connect to" in down["error"], down
        assert down["healthy"] is False and down["agent"] is None and down["etcd"] is None, down
        assert hosts["sa"]["healthy"] is True and hosts["sa"]["agent"]["running"], hosts["sa"]
    finally:
        stop = cluster_command(pool, bundle, "stop", graphs)
    assert "sa: stopped agent, etcd" in stop.stdout, stop.stdout + stop.stderr
    assert_clean(sa)
    code, hosts, document = _status(pool, bundle, graphs[:1])
    assert code == 1 and hosts["sa"]["cluster"] is False and hosts["sa"]["agent"] is None, hosts
