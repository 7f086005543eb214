"""The svc kind through quick graph edits, its unit's start or stop still under way."""

from __future__ import annotations

from test_svc import HELD, HELD_UNIT, graph, log, running_agent, starts

from support.polling import wait_until


def test_running_stopped_running_in_quick_edits_ends_running(tmp_path):
    from systemd_host import SystemdHost

    host = SystemdHost(tmp_path, {HELD: HELD_UNIT})
    try:
        with running_agent(host, tmp_path, graph(tmp_path, name=HELD, state="running")):
            wait_until(lambda: host.prop(HELD, "ActiveState") == "activating", what="the start")
            graph(tmp_path, name=HELD, state="stopped")
            wait_until(lambda: f"stopped {HELD}" in log(tmp_path), what="the edit's stop")
            graph(tmp_path, name=HELD, state="running")
            wait_until(lambda: starts(host) == 2, what="the second start")
            host.run(["touch", "/var/tmp/go"])
            wait_until(lambda: f"started {HELD}" in log(tmp_path), what="the start to count")
            assert host.prop(HELD, "ActiveState") == "active"
            graph(tmp_path, name=HELD, state="stopped")
            wait_until(lambda: host.prop(HELD, "ActiveState") == "inactive", what="the stop")
            graph(tmp_path, name=HELD, state="running")
            wait_until(lambda: host.prop(HELD, "SubState") == "running", what="running again")
            assert "did not stay running" not in log(tmp_path)
    finally:
        host.close()
