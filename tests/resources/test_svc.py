"""The svc kind against a real systemd running as PID 1 in a namespace host."""

from __future__ import annotations

import json
import subprocess

from support.polling import wait_until

UNIT = "mgmt-web.service"


def graph(tmp_path, **params) -> str:
    lines = ["graph: svc", "resources:", "  svc:", "  - name: mgmt-web"]
    lines += [f"    {key}: {value}" for key, value in params.items()]
    path = tmp_path / "svc.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def agent_args(tmp_path, path) -> list:
    return ["--file", path, "--no-server", "--prefix", str(tmp_path / "state")]


def run_once(host, tmp_path, path, *extra) -> subprocess.CompletedProcess:
    args = [*agent_args(tmp_path, path), "--converged-timeout", "0", *extra]
    proc = host.agent(args, tmp_path / "agent.log")
    out, _ = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def log(tmp_path) -> str:
    return (tmp_path / "agent.log").read_text(errors="replace")


def test_started_enabled_and_started_again_at_once_when_killed(systemd_host, tmp_path):
    host = systemd_host
    assert host.prop(UNIT, "ActiveState") == "inactive"
    agent = host.agent(agent_args(tmp_path, graph(tmp_path, state="running", startup="enabled")),
                       tmp_path / "agent.log")  # fmt: skip
    try:
        wait_until(lambda: host.prop(UNIT, "ActiveState") == "active", what="the unit to start")
        assert host.prop(UNIT, "UnitFileState") == "enabled"
        first = host.prop(UNIT, "MainPID")
        for _ in range(3):  # killed from outside, again and again: never left down
            before = host.prop(UNIT, "MainPID")
            host.run(["systemctl", "kill", "-s", "KILL", UNIT])
            wait_until(
                lambda b=before: (
                    host.prop(UNIT, "ActiveState") == "active"
                    and host.prop(UNIT, "MainPID") not in ("0", b)
                ),
                what="the killed unit to run again",
            )
        assert host.prop(UNIT, "MainPID") != first
        assert agent.poll() is None
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    assert log(tmp_path).count(f"started {UNIT}") >= 4


def test_stopped_and_disabled(systemd_host, tmp_path):
    host = systemd_host
    host.run(["systemctl", "enable", "--now", UNIT])
    result = run_once(host, tmp_path, graph(tmp_path, state="stopped", startup="disabled"))
    assert result.returncode == 0, log(tmp_path)
    assert host.prop(UNIT, "ActiveState") == "inactive"
    assert host.prop(UNIT, "UnitFileState") == "disabled"
    # Converged: nothing left to do.
    assert run_once(host, tmp_path, graph(tmp_path, state="stopped")).returncode == 0
    assert f"stopped {UNIT}" not in log(tmp_path)  # this run's log: nothing done


def test_noop_changes_nothing_and_json_names_each_field(systemd_host, tmp_path):
    host = systemd_host
    path = graph(tmp_path, state="running", startup="enabled")
    result = run_once(host, tmp_path, path, "--noop", "--json")
    assert result.returncode == 0, log(tmp_path)
    assert host.prop(UNIT, "ActiveState") == "inactive"
    assert host.prop(UNIT, "UnitFileState") == "disabled"
    assert f"would start {UNIT}" in log(tmp_path)
    (row,) = json.loads(result.stdout)["resources"]
    assert (row["kind"], row["name"], row["result"]) == ("svc", "mgmt-web", "would-change")
    changes = {c["field"]: c for c in row["changes"]}
    assert changes["state"] == {
        "field": "state", "wanted": "running", "actual": "inactive", "applied": False
    }  # fmt: skip
    assert changes["startup"] == {
        "field": "startup", "wanted": "enabled", "actual": "disabled", "applied": False
    }  # fmt: skip


def test_a_missing_unit_fails_naming_it(systemd_host, tmp_path):
    path = tmp_path / "missing.yaml"
    path.write_text("graph: g\nresources:\n  svc:\n  - name: mgmt-nonesuch\n    state: running\n")
    result = run_once(systemd_host, tmp_path, str(path))
    assert result.returncode == 1
    assert "mgmt-nonesuch.service: no such unit" in log(tmp_path)


def test_disabled_from_outside_is_enabled_again_at_once(systemd_host, tmp_path):
    host = systemd_host
    link = "/etc/systemd/system/mgmt-test.target.wants/" + UNIT
    agent = host.agent(agent_args(tmp_path, graph(tmp_path, state="running", startup="enabled")),
                       tmp_path / "agent.log")  # fmt: skip
    try:
        wait_until(lambda: host.prop(UNIT, "ActiveState") == "active", what="the unit to start")
        assert host.prop(UNIT, "UnitFileState") == "enabled"
        # Through systemd (its UnitFilesChanged signal), the unit left running.
        host.run(["systemctl", "disable", UNIT])
        wait_until(lambda: host.prop(UNIT, "UnitFileState") == "enabled", what="re-enabled")
        # By hand, then a daemon-reload (its Reloading signal).
        host.run(["rm", link])
        host.run(["systemctl", "daemon-reload"])
        wait_until(lambda: host.prop(UNIT, "UnitFileState") == "enabled", what="re-enabled")
        assert host.prop(UNIT, "ActiveState") == "active"
        assert agent.poll() is None
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    assert log(tmp_path).count(f"enabled {UNIT}") == 3
