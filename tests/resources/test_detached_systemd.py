"""The hosts' side of a detached cluster on a host that systemd runs: its supervised
processes are enabled units, restarted by systemd when the supervisor itself dies and
started again when the host reboots.

Here (not in tests/remote) because it needs the systemd host of these tests; the
program (mgmt.remote.protocol.detached) is run inside it as the initiator runs it
over SSH: ``python3 -S -c PROGRAM COMMAND`` with a JSON request on stdin.
"""

import json

from systemd_host import SystemdHost

from mgmt.remote.orchestration.detach import DETACHED, SUPERVISOR
from mgmt.remote.orchestration.hosts import detached_args
from support import require_tools
from support.polling import wait_until

UNIT = "mgmt-detached-etcd.service"


def _detached(host: SystemdHost, home, command: str, request: dict) -> dict:
    """The hosts' program's ``command`` run in ``host`` as the initiator runs it
    (HOME in the test's folder: / is read-only in the host); its answer."""
    argv = ["env", f"HOME={home}", "/usr/bin/python3", "-S", "-c", DETACHED]
    done = host.run([*argv, *detached_args(command)], input=json.dumps(request) + "\n")
    return json.loads(done.stdout.splitlines()[-1])


def _start_member(host: SystemdHost, home) -> None:
    """``prepare``, then the host's etcd member (m1 on 127.0.0.1), supervised."""
    prepared = _detached(host, home, "prepare", {"sha256": "0" * 64})
    assert prepared["etcd"], prepared
    started = _detached(host, home, "etcd", {
        "binary": prepared["etcd"], "name": "m1", "address": "127.0.0.1",
        "supervisor": SUPERVISOR,
        "client_port": 2379, "peer_port": 2380, "token": "t",
        "peers": {"m1": "http://127.0.0.1:2380"},
    })  # fmt: skip
    assert "error" not in started, started


def test_a_member_under_systemd_is_a_unit_restarted_kept_over_a_reboot_and_stopped(tmp_path):
    require_tools("etcd", "curl", "systemctl")
    host = SystemdHost(tmp_path, {}, lasting=True)
    home = tmp_path / "home"  # / is read-only in the host: HOME in its temp dir
    home.mkdir()
    state = home / ".local/state/mgmt/detached"

    def healthy() -> bool:
        answer = host.run(["curl", "-s", "-m", "1", "http://127.0.0.1:2379/health"], check=False)
        return '"true"' in answer.stdout

    def supervisor() -> int:
        return int((state / "etcd.sup").read_text())

    try:
        _start_member(host, home)
        assert (state / "etcd.mode").read_text() == f"systemd {UNIT}\n"
        assert host.prop(UNIT, "ActiveState") == "active"
        assert host.prop(UNIT, "MainPID") == str(supervisor())
        wait_until(healthy, 20, "the member healthy")

        # The supervisor killed: systemd starts the unit again (its etcd with it).
        first = supervisor()
        host.run(["kill", "-KILL", str(first)])
        wait_until(lambda: supervisor() != first and healthy(), 30, "the unit restarted")
        assert host.prop(UNIT, "NRestarts") == "1"

        # The host reboots: nothing is asked of it, and the member runs again.
        host.close()
        host = SystemdHost(tmp_path, {}, lasting=True)
        wait_until(healthy, 30, "the member healthy after a reboot")
        assert host.prop(UNIT, "ActiveState") == "active"
        assert host.prop(UNIT, "MainPID") == str(supervisor())
        found = _detached(host, home, "status", {})
        assert found["etcd"]["running"] and found["etcd"]["mode"] == f"systemd {UNIT}", found

        stopped = _detached(host, home, "stop", {"what": ["etcd"], "clean": True})
        assert stopped["stopped"] == ["etcd"], stopped
        assert host.prop(UNIT, "LoadState") == "not-found"  # nothing left of it
        units = tmp_path / "units"  # the host's /etc/systemd/system
        assert not (units / UNIT).exists() and not (units / "default.target.wants" / UNIT).exists()
        assert host.run(["pgrep", "-x", "etcd"], check=False).returncode == 1
        assert not (home / ".local/state/mgmt").exists()
    finally:
        host.close()


def test_stop_removes_the_units_of_a_cluster_whose_directory_was_removed_by_hand(tmp_path):
    """Stopped by hand (systemctl stop, rm -rf the state dir), then `mgmt stop`: the
    unit, enabled still, would start a supervisor that is gone at each boot."""
    require_tools("etcd", "curl", "systemctl")
    host = SystemdHost(tmp_path, {}, lasting=True)
    home = tmp_path / "home"
    home.mkdir()
    state = home / ".local/state/mgmt/detached"

    units = tmp_path / "units"  # the host's /etc/systemd/system
    try:
        _start_member(host, home)
        assert host.prop(UNIT, "UnitFileState") == "enabled"
        host.run(["systemctl", "stop", UNIT])
        host.run(["rm", "-rf", str(home / ".local")])

        stopped = _detached(host, home, "stop", {"what": ["agent"]})
        assert stopped == {"stopped": []}  # no unit of it
        stopped = _detached(host, home, "stop", {"what": ["etcd"], "clean": True})
        assert stopped == {"stopped": ["etcd"]}
        assert host.prop(UNIT, "LoadState") == "not-found"
        assert not (units / UNIT).exists() and not (units / "default.target.wants" / UNIT).exists()
        assert not state.exists()
    finally:
        host.close()


def test_a_units_supervisor_that_keeps_dying_is_never_given_up_on(tmp_path):
    """systemd's default start limit (5 starts in 10 s) would leave the unit failed
    for good after a few quick deaths of its supervisor."""
    require_tools("etcd", "curl", "systemctl")
    host = SystemdHost(tmp_path, {}, lasting=True)
    home = tmp_path / "home"
    home.mkdir()

    try:
        _start_member(host, home)

        def restarted(before: str) -> bool:  # or failed for good
            state = host.prop(UNIT, "ActiveState")
            pid = host.prop(UNIT, "MainPID")
            return state == "failed" or (state == "active" and pid not in ("0", before))

        for kill in range(7):
            before = host.prop(UNIT, "MainPID")
            host.run(["kill", "-KILL", before])
            wait_until(lambda before=before: restarted(before), 20, f"a restart after {kill + 1}")
            assert host.prop(UNIT, "ActiveState") == "active", kill + 1
        assert host.prop(UNIT, "NRestarts") == "7"
        stopped = _detached(host, home, "stop", {"what": ["etcd"], "clean": True})
        assert stopped["stopped"] == ["etcd"], stopped
    finally:
        host.close()
