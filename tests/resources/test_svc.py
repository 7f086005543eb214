"""The svc kind against a real systemd running as PID 1 in a namespace host."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
from typing import Iterator

import pytest

from support.polling import wait_until

UNIT = "mgmt-web.service"
FAIL = "mgmt-fail.service"
# Fails at once, each start counted in a file, until /var/tmp/ok exists.
FAIL_UNIT = """\
[Unit]
DefaultDependencies=no

[Service]
ExecStart=/bin/sh -c 'echo start >>/var/tmp/starts; test -e /var/tmp/ok || exit 3; exec sleep 1d'

[Install]
WantedBy=mgmt-test.target
"""


# Ends 3 s after each start: well after the start has settled (SETTLE, 1 s).
LATE = "mgmt-late.service"
LATE_UNIT = """\
[Unit]
DefaultDependencies=no
StartLimitBurst=3
StartLimitIntervalSec=60

[Service]
ExecStart=/bin/sh -c 'echo start >>/var/tmp/starts; sleep 3; exit 1'
"""


@pytest.fixture
def fail_host(tmp_path):
    from systemd_host import SystemdHost

    host = SystemdHost(tmp_path, {FAIL: FAIL_UNIT})
    yield host
    host.close()


def starts(host) -> int:
    return host.run(["cat", "/var/tmp/starts"], check=False).stdout.count("start")


def graph(tmp_path, name="mgmt-web", **params) -> str:
    lines = ["graph: svc", "resources:", "  svc:", f"  - name: {name}"]
    lines += [f"    {key}: {value}" for key, value in params.items()]
    path = tmp_path / "svc.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def agent_args(tmp_path, path) -> list:
    return ["--file", path, "--no-server", "--prefix", str(tmp_path / "state")]


@contextlib.contextmanager
def running_agent(host, tmp_path, path) -> Iterator[subprocess.Popen]:
    """The agent on the graph at ``path`` for the block's time: still running at its
    end (it never stopped by itself), then stopped."""
    agent = host.agent(agent_args(tmp_path, path), tmp_path / "agent.log")
    try:
        yield agent
        assert agent.poll() is None
    finally:
        agent.terminate()
        try:
            agent.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # Where each of its threads is (faulthandler, see SystemdHost.agent).
            agent.send_signal(signal.SIGABRT)
            agent.wait(timeout=10)
            raise AssertionError(f"the agent ignored SIGTERM:\n{log(tmp_path)}") from None


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
    with running_agent(host, tmp_path, graph(tmp_path, state="running", startup="enabled")):
        wait_until(lambda: host.prop(UNIT, "ActiveState") == "active", what="the unit to start")
        assert host.prop(UNIT, "UnitFileState") == "enabled"
        first = host.prop(UNIT, "MainPID")
        for kills in range(3):  # killed from outside, again and again: never left down
            # Once the agent's start counts (the unit ran for svc.SETTLE): a unit that
            # ends sooner after the agent started it failed to start, and stays down.
            wait_until(lambda k=kills: log(tmp_path).count(f"started {UNIT}") == k + 1,
                       what="the agent's start to count")  # fmt: skip
            _kill_and_see_it_restarted(host, UNIT)
        assert host.prop(UNIT, "MainPID") != first
        wait_until(lambda: log(tmp_path).count(f"started {UNIT}") == 4, what="the last start")


def test_a_killed_service_is_started_again_at_once_after_systemd_reexecuted(systemd_host, tmp_path):
    """systemd drops its private connections when it re-executes itself (an
    upgrade of its package runs daemon-reexec): the agent heard no signal after
    that, and a service killed from then on stayed down."""
    host = systemd_host
    with running_agent(host, tmp_path, graph(tmp_path, state="running")):
        wait_until(lambda: log(tmp_path).count(f"started {UNIT}") == 1, what="the first start")
        host.run(["systemctl", "daemon-reexec"])
        for kills in range(2):  # the first kill may come before the old connection ends
            wait_until(
                lambda k=kills: log(tmp_path).count(f"started {UNIT}") == k + 1,
                what="the agent's start to count",
            )
            _kill_and_see_it_restarted(host, UNIT)


# A unit and the alias its enabling makes (as Debian's ssh.service and sshd.service).
ALIASED = "mgmt-real.service"
ALIASED_UNIT = """\
[Unit]
DefaultDependencies=no

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=mgmt-test.target
Alias=mgmt-alias.service
"""


def test_a_unit_named_by_its_alias_is_watched_stopped_and_disabled(tmp_path):
    """systemd sends a unit's signals under its own name only: a service named by
    an alias and killed stayed down. Disabling it through the alias removed the
    alias first, so the stop that followed failed and left it running."""
    from systemd_host import SystemdHost

    host = SystemdHost(tmp_path, {ALIASED: ALIASED_UNIT})
    try:
        host.run(["systemctl", "enable", ALIASED])
        path = graph(tmp_path, name="mgmt-alias", state="running", startup="enabled")
        with running_agent(host, tmp_path, path):
            wait_until(lambda: "started mgmt-alias.service" in log(tmp_path), what="the start")
            assert host.prop(ALIASED, "ActiveState") == "active"
            # The start counts once the unit ran for a second (svc.SETTLE).
            wait_until(lambda: _ran_for(host, ALIASED, 1.2), what="the start to count")
            _kill_and_see_it_restarted(host, ALIASED)
        path = graph(tmp_path, name="mgmt-alias", state="stopped", startup="disabled")
        result = run_once(host, tmp_path, path)
        assert result.returncode == 0, log(tmp_path)
        assert host.prop(ALIASED, "ActiveState") == "inactive"
        assert host.prop(ALIASED, "UnitFileState") == "disabled"
        # The alias is gone with the unit's enabling: stopped and disabled all the same.
        assert host.prop("mgmt-alias.service", "LoadState") == "not-found"
        assert run_once(host, tmp_path, path).returncode == 0, log(tmp_path)
        assert "mgmt-alias.service: no such unit on this host: stopped and disabled" in log(
            tmp_path
        )
    finally:
        host.close()


def _kill_and_see_it_restarted(host, unit: str) -> None:
    """SIGKILL ``unit``'s processes from outside the agent, then wait until it runs
    again under another main process."""
    before = host.prop(unit, "MainPID")
    host.run(["systemctl", "kill", "-s", "KILL", unit])
    wait_until(
        lambda: (
            host.prop(unit, "ActiveState") == "active"
            and host.prop(unit, "MainPID") not in ("0", before)
        ),
        what="the killed unit to run again",
    )


def _ran_for(host, unit: str, seconds: float) -> bool:
    """Whether ``unit``'s main process has run for ``seconds`` (CLOCK_MONOTONIC)."""
    import time

    started = int(host.prop(unit, "ExecMainStartTimestampMonotonic") or 0)
    return bool(started) and time.monotonic() - started / 1e6 >= seconds


# A template whose enabling enables its DefaultInstance.
TEMPLATE = "mgmt-tpl@.service"
TEMPLATE_UNIT = """\
[Unit]
DefaultDependencies=no

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=mgmt-test.target
DefaultInstance=main
"""


def test_a_template_is_enabled_and_disabled(tmp_path):
    """`systemctl show` refuses a template's name: startup on a template (which the
    graph accepts, as it needs no instance) always failed, "Unit name
    mgmt-tpl@.service is neither a valid invocation ID nor unit name"."""
    from systemd_host import SystemdHost

    host = SystemdHost(tmp_path, {TEMPLATE: TEMPLATE_UNIT})

    def enabled(*units: str) -> list:
        out = host.run(["systemctl", "is-enabled", "--", *units], check=False).stdout
        return out.split()

    try:
        path = graph(tmp_path, name="mgmt-tpl@", startup="enabled")
        assert run_once(host, tmp_path, path).returncode == 0, log(tmp_path)
        assert enabled(TEMPLATE, "mgmt-tpl@main.service") == ["enabled", "enabled"]
        assert run_once(host, tmp_path, path).returncode == 0, log(tmp_path)
        assert "enabled mgmt-tpl@" not in log(tmp_path)  # right as it is
        host.run(["systemctl", "enable", "mgmt-tpl@other.service"])
        path = graph(tmp_path, name="mgmt-tpl@", startup="disabled")
        assert run_once(host, tmp_path, path).returncode == 0, log(tmp_path)
        assert enabled(TEMPLATE, "mgmt-tpl@main.service", "mgmt-tpl@other.service") == [
            "disabled",
            "disabled",
            "disabled",
        ]
        missing = graph(tmp_path, name="mgmt-none@", startup="enabled")
        assert run_once(host, tmp_path, missing).returncode == 1
        assert "mgmt-none@.service: no such unit on this host" in log(tmp_path)
    finally:
        host.close()


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


def test_a_unit_enabled_for_this_boot_only_is_disabled(systemd_host, tmp_path):
    """`systemctl disable` leaves the links of `enable --runtime`: the agent said
    "disabled" and disabled it again for ever (each reload woke the next check),
    the unit still enabled-runtime, and the run never converged."""
    host = systemd_host
    host.run(["systemctl", "enable", "--runtime", UNIT])
    assert host.prop(UNIT, "UnitFileState") == "enabled-runtime"
    result = run_once(host, tmp_path, graph(tmp_path, startup="disabled"))
    assert result.returncode == 0, log(tmp_path)
    assert host.run(["systemctl", "is-enabled", UNIT], check=False).stdout.strip() == "disabled"
    assert log(tmp_path).count(f"disabled {UNIT}") == 1


def test_a_unit_masked_for_this_boot_is_disabled_as_it_is(systemd_host, tmp_path):
    """masked-runtime did not count as disabled: `systemctl disable` changed nothing,
    and its reload woke the next check, for ever."""
    host = systemd_host
    # A runtime mask (in /run) hides only a unit of lower rank: one of the machine's,
    # util-linux's timer (/run, like all of this host's, is its own).
    unit = "fstrim.timer"
    host.run(["systemctl", "mask", "--runtime", unit])
    assert host.prop(unit, "UnitFileState") == "masked-runtime"
    result = run_once(host, tmp_path, graph(tmp_path, name=unit, startup="disabled"))
    assert result.returncode == 0, log(tmp_path)
    assert host.prop(unit, "UnitFileState") == "masked-runtime"
    assert f"disabled {unit}" not in log(tmp_path)


@pytest.mark.parametrize("params", [{"state": "running"}, {"startup": "enabled"}])
def test_a_masked_unit_wanted_running_or_enabled_fails_saying_so_under_noop_too(
    systemd_host, tmp_path, params
):
    """A masked unit wanted running failed as one that "did not stay running after its
    start", and --noop said "would start" it and exited 0, though systemd refuses
    every start of it: the real run and --noop now both fail, naming the mask."""
    host = systemd_host
    unit = "fstrim.timer"  # see the test above: a runtime mask hides a unit of lower rank
    host.run(["systemctl", "mask", "--runtime", unit])
    path = graph(tmp_path, name=unit, **params)
    for extra in (["--noop"], []):
        result = run_once(host, tmp_path, path, *extra)
        assert result.returncode == 1, log(tmp_path)
        said = f"{unit}: masked (UnitFileState=masked-runtime): systemd will not have it"
        assert said in log(tmp_path)
        assert "systemctl unmask --runtime" in log(tmp_path)
        assert "would start" not in log(tmp_path)
    assert host.prop(unit, "ActiveState") == "inactive"
    assert host.prop(unit, "UnitFileState") == "masked-runtime"


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


@pytest.mark.parametrize("how", ["added", "unmasked"])
def test_a_unit_that_appears_while_the_agent_runs_is_started_at_once(systemd_host, tmp_path, how):
    """`state: running` alone, for a unit the host did not have yet (its package
    installed by a pkg resource beside it, then systemd reloaded, as rpm's systemd
    triggers do) or had masked: the resource failed and stayed failed, for only a
    resource that managed startup heard systemd reload or unmask."""
    host = systemd_host
    unit = "mgmt-late-comer.service" if how == "added" else UNIT
    if how == "unmasked":  # a mask in /etc needs the unit elsewhere: /run, this host's own
        host.run(["mkdir", "-p", "/run/systemd/system"])
        host.run(["mv", f"/etc/systemd/system/{UNIT}", "/run/systemd/system/"])
        host.run(["systemctl", "daemon-reload"])
        host.run(["systemctl", "mask", UNIT])
    with running_agent(host, tmp_path, graph(tmp_path, name=unit, state="running")):
        wait_until(lambda: f"{unit}: " in log(tmp_path), what="the resource to fail")
        assert "failed" in log(tmp_path)
        if how == "added":
            text = "[Unit]\nDefaultDependencies=no\n[Service]\nExecStart=/bin/sleep infinity\n"
            host.run(["sh", "-c", f"printf '{text}' > /etc/systemd/system/{unit}"])
            host.run(["systemctl", "daemon-reload"])
        else:
            host.run(["systemctl", "unmask", UNIT])
        wait_until(lambda: host.prop(unit, "ActiveState") == "active", what=f"{unit} started")


def test_a_unit_whose_file_changed_on_disk_starts_as_the_file_says_now(systemd_host, tmp_path):
    """A unit file edited on disk (as a file resource, an admin or a package does)
    while systemd had the unit loaded: the agent's start ran the old one (systemctl
    only warns: "changed on disk"), and the edit was never used. systemd reads it
    again (daemon-reload) before the start now."""
    host = systemd_host
    host.run(["systemctl", "enable", UNIT])  # wanted by the host's target: kept loaded
    text = host.run(["cat", f"/etc/systemd/system/{UNIT}"]).stdout
    edited = text.replace("/bin/sleep infinity", "/bin/sleep 3333")
    host.run(["sh", "-c", f"cat > /etc/systemd/system/{UNIT}"], input=edited)
    assert host.prop(UNIT, "NeedDaemonReload") == "yes"
    result = run_once(host, tmp_path, graph(tmp_path, state="running"))
    assert result.returncode == 0, log(tmp_path)
    assert host.prop(UNIT, "ActiveState") == "active"
    assert host.prop(UNIT, "NeedDaemonReload") == "no"
    assert "argv[]=/bin/sleep 3333 " in host.prop(UNIT, "ExecStart")
    assert f"reloaded systemd: {UNIT} changed on disk" in log(tmp_path)


def test_a_file_resource_writing_a_units_file_runs_before_its_svc():
    """mgmt orders a file resource for /etc/systemd/system/UNIT (or /usr/lib/...)
    before the svc of UNIT; here the two ran in parallel, and the svc could find no
    unit, or start the old one. An edge the other way is a cycle now, naming it."""
    from mgmt.errors import GraphError
    from mgmt.graph import parse_graph

    for folder in ("/etc/systemd/system", "/usr/lib/systemd/system"):
        path = f"{folder}/{UNIT}"
        text = (
            f"graph: g\nresources:\n  file:\n  - {{name: {path}, content: x}}\n"
            f"  svc:\n  - {{name: mgmt-web, state: running}}\nedges:\n"
            "- {name: e, from: {kind: svc, name: mgmt-web},"
            f" to: {{kind: file, name: {path}}}}}\n"
        )
        with pytest.raises(GraphError) as caught:
            parse_graph(text, "g.yaml")
        assert f"file[{path}] -> svc[mgmt-web] is an automatic edge" in caught.value.message


def test_noop_of_a_unit_a_resource_before_it_would_make_would_start_it(systemd_host, tmp_path):
    """--noop of a graph that makes a unit and starts it (the README's webserver
    example on a fresh host: pkg nginx, then svc nginx) failed the svc with "no such
    unit on this host" and exited 1, though the real run makes the unit first. It
    says what the real run would do now; a unit nothing would make still fails."""
    host = systemd_host
    unit = "mgmt-new.service"
    path = tmp_path / "new.yaml"
    path.write_text(
        f"graph: g\nresources:\n  file:\n  - name: /etc/systemd/system/{unit}\n"
        '    content: "[Service]\\nExecStart=/bin/sleep infinity\\n"\n'
        f"  svc:\n  - name: {unit}\n    state: running\n"
    )
    result = run_once(host, tmp_path, str(path), "--noop", "--json")
    assert result.returncode == 0, log(tmp_path)
    rows = {row["kind"]: row for row in json.loads(result.stdout)["resources"]}
    assert rows["svc"]["result"] == "would-change"
    assert rows["svc"]["changes"] == [
        {"field": "state", "wanted": "running", "actual": "no such unit", "applied": False}
    ]
    said = f"would start {unit} (noop; no such unit yet: after file[/etc/systemd/system/{unit}]"
    assert said in log(tmp_path)
    assert host.prop(unit, "LoadState") == "not-found"
    # Alone, nothing would make it: --noop fails it as the real run would.
    result = run_once(host, tmp_path, graph(tmp_path, name=unit, state="running"), "--noop")
    assert result.returncode == 1
    assert f"{unit}: no such unit on this host" in log(tmp_path)


def test_a_unit_down_between_two_of_systemds_restarts_is_not_running(tmp_path):
    """A unit that keeps ending, which systemd restarts itself (Restart=always, no
    start limit), counted as running while systemd waited to restart it
    (ActiveState=activating SubState=auto-restart): the run said unchanged and ok.
    It fails now, quoting systemd's state, and the agent does not start it itself."""
    from systemd_host import SystemdHost

    unit = "mgmt-loop.service"
    text = (
        "[Unit]\nDefaultDependencies=no\nStartLimitIntervalSec=0\n[Service]\n"
        "ExecStart=/bin/sh -c 'echo start >>/var/tmp/starts; exit 1'\n"
        "Restart=always\nRestartSec=1h\n"
    )
    host = SystemdHost(tmp_path, {unit: text})
    try:
        host.run(["systemctl", "start", "--no-block", unit])
        wait_until(lambda: host.prop(unit, "SubState") == "auto-restart", what="the restart wait")
        result = run_once(host, tmp_path, graph(tmp_path, name=unit, state="running"))
        assert result.returncode == 1, log(tmp_path)
        said = f"{unit}: not running: it ended, and systemd is to start it again (Restart=):"
        assert said in log(tmp_path)
        assert "SubState=auto-restart Result=exit-code" in log(tmp_path)
        assert starts(host) == 1  # the agent started it not
        assert host.prop(unit, "SubState") == "auto-restart"
    finally:
        host.close()


def test_a_killed_unit_that_systemd_restarts_soon_is_waited_for_not_failed(tmp_path):
    """The other side of the test above: a unit killed from outside, which systemd
    restarts in a second (Restart=always), is not failed meanwhile: the agent waits
    for that restart, and finds the unit running."""
    from systemd_host import SystemdHost

    unit = "mgmt-back.service"
    text = (
        "[Unit]\nDefaultDependencies=no\n[Service]\nExecStart=/bin/sleep infinity\n"
        "Restart=always\nRestartSec=1\n"
    )
    host = SystemdHost(tmp_path, {unit: text})
    try:
        path = graph(tmp_path, name=unit, state="running")
        args = [*agent_args(tmp_path, path), "--converged-timeout", "3"]
        agent = host.agent(args, tmp_path / "agent.log")
        wait_until(lambda: f"started {unit}" in log(tmp_path), what="the agent's start")
        host.run(["systemctl", "kill", "-s", "KILL", unit])
        assert agent.wait(timeout=60) == 0, log(tmp_path)
        assert "failed" not in log(tmp_path)
        assert host.prop(unit, "ActiveState") == "active"
        assert host.prop(unit, "NRestarts") == "1"  # systemd's restart, not the agent's start
    finally:
        host.close()


def test_a_start_systemd_refuses_fails_with_its_words_first(tmp_path):
    """A start systemd refused before the unit ran (RefuseManualStart, a Requires=
    unit missing) failed as a unit that "did not stay running after its start",
    systemctl's reason in brackets at the end; the reason leads now."""
    from systemd_host import SystemdHost

    unit = "mgmt-needs.service"
    text = (
        "[Unit]\nDefaultDependencies=no\nRequires=mgmt-nothere.service\n"
        "[Service]\nExecStart=/bin/sleep infinity\n"
    )
    host = SystemdHost(tmp_path, {unit: text})
    try:
        result = run_once(host, tmp_path, graph(tmp_path, name=unit, state="running"))
        assert result.returncode == 1, log(tmp_path)
        said = f"{unit}: not started: systemctl start failed: Failed to start {unit}: Unit"
        assert said in log(tmp_path)
        assert "mgmt-nothere.service not found" in log(tmp_path)
        assert "did not stay running" not in log(tmp_path)
    finally:
        host.close()


def test_disabled_from_outside_is_enabled_again_at_once(systemd_host, tmp_path):
    host = systemd_host
    link = "/etc/systemd/system/mgmt-test.target.wants/" + UNIT
    with running_agent(host, tmp_path, graph(tmp_path, state="running", startup="enabled")):
        wait_until(lambda: host.prop(UNIT, "ActiveState") == "active", what="the unit to start")
        assert host.prop(UNIT, "UnitFileState") == "enabled"
        # Through systemd (its UnitFilesChanged signal), the unit left running.
        host.run(["systemctl", "disable", UNIT])
        # The agent's own word, not the link alone: its enable ends in a look at the
        # state, and a link removed before that look would be put back by that same
        # enable (made twice), not by a second one.
        wait_until(lambda: enables(tmp_path) == 2, what="re-enabled")
        assert host.prop(UNIT, "UnitFileState") == "enabled"
        # By hand, then a daemon-reload (its Reloading signal).
        host.run(["rm", link])
        host.run(["systemctl", "daemon-reload"])
        wait_until(lambda: enables(tmp_path) == 3, what="re-enabled")
        assert host.prop(UNIT, "UnitFileState") == "enabled"
        assert host.prop(UNIT, "ActiveState") == "active"
    assert enables(tmp_path) == 3


def enables(tmp_path) -> int:
    return log(tmp_path).count(f"enabled {UNIT}")


@pytest.mark.parametrize("timeout", ["0", "2"])
def test_a_unit_that_fails_at_once_fails_the_run_and_is_not_restarted(fail_host, tmp_path, timeout):
    host = fail_host
    path = graph(tmp_path, name="mgmt-fail", state="running", startup="enabled")
    args = [*agent_args(tmp_path, path), "--converged-timeout", timeout, "--json"]
    agent = host.agent(args, tmp_path / "agent.log")
    try:  # converged (with 2: two seconds idle with the unit down, so not restarted in a loop)
        out, _ = agent.communicate(timeout=30)
    finally:
        agent.kill()
        agent.wait()
    assert agent.returncode == 1, log(tmp_path)
    assert starts(host) == 1
    assert (host.prop(FAIL, "ActiveState"), host.prop(FAIL, "Result")) == ("failed", "exit-code")
    assert host.prop(FAIL, "UnitFileState") == "enabled"
    (row,) = json.loads(out)["resources"]
    assert row["result"] == "failed"
    said = (
        f"{FAIL}: did not stay running after its start: ActiveState=failed SubState=failed"
        " Result=exit-code (main process: code=exited, status=3)"
    )
    assert said in row["errors"][-1]
    assert said in log(tmp_path)
    assert f"started {FAIL}" not in log(tmp_path)


def test_meta_retry_starts_a_failing_unit_that_many_times_more(fail_host, tmp_path):
    host = fail_host
    path = graph(tmp_path, name="mgmt-fail", state="running", meta="{retry: 2, delay: 0}")
    done = run_once(host, tmp_path, path)
    assert done.returncode == 1, log(tmp_path)
    assert starts(host) == 3  # the first start and two retries, then no more
    assert log(tmp_path).count(f"{FAIL}: did not stay running") >= 1


def test_a_failed_start_is_tried_again_after_a_reset_failed_from_outside(fail_host, tmp_path):
    host = fail_host
    path = graph(tmp_path, name="mgmt-fail", state="running")
    with running_agent(host, tmp_path, path):
        wait_until(
            lambda: f"failed: {FAIL}: did not stay running" in log(tmp_path),
            what="the start to fail",
        )
        host.run(["touch", "/var/tmp/ok"])  # fixed; then the admin clears the failed state
        host.run(["systemctl", "reset-failed", FAIL])
        wait_until(lambda: f"started {FAIL}" in log(tmp_path), what="the start after the reset")
        assert host.prop(FAIL, "ActiveState") == "active"
        assert starts(host) == 2


def test_a_failed_start_is_tried_again_after_a_start_from_outside_or_an_edit(fail_host, tmp_path):
    host = fail_host
    failed = f"failed: {FAIL}: did not stay running"
    path = graph(tmp_path, name="mgmt-fail", state="running")
    with running_agent(host, tmp_path, path):
        wait_until(lambda: log(tmp_path).count(failed) == 1, what="the start to fail")
        assert starts(host) == 1
        # An admin's start (it fails again) is a new event: the agent tries once more.
        host.run(["systemctl", "start", FAIL])
        wait_until(lambda: log(tmp_path).count(failed) == 2, what="the second failure")
        assert starts(host) == 3
        # Fixed, then the graph edited: the changed resource starts it again.
        host.run(["touch", "/var/tmp/ok"])
        graph(tmp_path, name="mgmt-fail", state="running", startup="enabled")
        wait_until(lambda: f"started {FAIL}" in log(tmp_path), what="the edit's start")
        assert host.prop(FAIL, "ActiveState") == "active"
        assert starts(host) == 4


# Runs to its end and is inactive again: each run counted in a file; fails until
# /var/tmp/ok exists.
ONESHOT = "mgmt-once.service"
ONESHOT_UNIT = """\
[Unit]
DefaultDependencies=no

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo start >>/var/tmp/starts; test -e /var/tmp/ok'

[Install]
WantedBy=mgmt-test.target
"""


def test_a_oneshot_unit_runs_once_and_counts_as_running_once_it_succeeded(tmp_path):
    """A Type=oneshot unit is inactive again once its command succeeded: every such
    start failed the resource ("did not stay running ... Result=success")."""
    from systemd_host import SystemdHost

    host = SystemdHost(tmp_path, {ONESHOT: ONESHOT_UNIT})
    try:
        path = graph(tmp_path, name="mgmt-once", state="running", startup="enabled")
        host.run(["touch", "/var/tmp/ok"])
        # Converged after two idle seconds: its run's end wakes no second run.
        args = [*agent_args(tmp_path, path), "--converged-timeout", "2", "--json"]
        agent = host.agent(args, tmp_path / "agent.log")
        out, _ = agent.communicate(timeout=30)
        assert agent.returncode == 0, log(tmp_path)
        assert starts(host) == 1
        assert (host.prop(ONESHOT, "ActiveState"), host.prop(ONESHOT, "Result")) == (
            "inactive",
            "success",
        )
        assert host.prop(ONESHOT, "UnitFileState") == "enabled"
        (row,) = json.loads(out)["resources"]
        assert row["result"] == "changed", row
        # It ran and succeeded: right as it is, not run again.
        assert run_once(host, tmp_path, path).returncode == 0, log(tmp_path)
        assert starts(host) == 1
        # One that failed is run again, and fails the resource while it fails.
        host.run(["rm", "/var/tmp/ok"])
        host.run(["systemctl", "start", ONESHOT], check=False)
        assert host.prop(ONESHOT, "ActiveState") == "failed"
        result = run_once(host, tmp_path, path)
        assert result.returncode == 1, log(tmp_path)
        assert starts(host) == 3
        assert f"{ONESHOT}: did not stay running" in log(tmp_path)
        host.run(["touch", "/var/tmp/ok"])
        assert run_once(host, tmp_path, path).returncode == 0, log(tmp_path)
        assert starts(host) == 4
        assert host.prop(ONESHOT, "Result") == "success"
    finally:
        host.close()


@pytest.mark.parametrize(
    ("interval", "restart", "shown"),
    [
        ("60", "", "1min"),
        ("infinity", "", "infinity"),
        # systemd restarts it itself: its starts count as the agent's do.
        ("60", "Restart=on-failure\nRestartSec=100ms", "1min"),
    ],
    ids=["the agent's starts", "an endless interval", "systemd's own restarts"],
)
def test_a_unit_that_keeps_ending_after_it_settled_is_started_only_as_its_limit_allows(
    tmp_path, interval, restart, shown
):
    """Each reset-failed took systemd's start limit away: such a unit was started
    every 2 s for ever (every 7 s with Restart=), with nothing said, and the run
    never converged."""
    from systemd_host import SystemdHost

    unit = LATE_UNIT.replace("StartLimitIntervalSec=60", f"StartLimitIntervalSec={interval}")
    host = SystemdHost(tmp_path, {LATE: unit.replace("[Service]", f"[Service]\n{restart}")})
    try:
        path = graph(tmp_path, name="mgmt-late", state="running")
        args = [*agent_args(tmp_path, path), "--converged-timeout", "4", "--json"]
        agent = host.agent(args, tmp_path / "agent.log")
        try:  # converged: four seconds idle with the unit down (it never is while it runs)
            out, _ = agent.communicate(timeout=60)
        finally:
            agent.kill()
            agent.wait()
        assert agent.returncode == 1, log(tmp_path)
        assert starts(host) == 3  # its StartLimitBurst within its StartLimitIntervalSec
        (row,) = json.loads(out)["resources"]
        assert row["result"] == "failed"
        said = f"{LATE}: started 3 times within {shown}, now ActiveState=failed"
        assert said in row["errors"][-1], row
    finally:
        host.close()


# Activating (in its ExecStartPre) until /var/tmp/go exists, as a slow one would be.
HELD = "mgmt-held.service"
HELD_UNIT = """\
[Unit]
DefaultDependencies=no

[Service]
ExecStartPre=/bin/sh -c 'echo start >>/var/tmp/starts; until test -e /var/tmp/go; do sleep .1; done'
ExecStart=/bin/sleep infinity
TimeoutStartSec=60
"""
INSTALL = "[Install]\nWantedBy=mgmt-test.target\n\n"
# Type=notify that never says it is ready: activating until its start times out;
# fails at once when /var/tmp/fail exists.
NOTIFY = "mgmt-notify.service"
NOTIFY_UNIT = """\
[Unit]
DefaultDependencies=no

[Service]
Type=notify
ExecStart=/bin/sh -c 'echo start >>/var/tmp/starts; test -e /var/tmp/fail && exit 3; exec sleep 1d'
TimeoutStartSec=60
"""


@pytest.mark.parametrize(("unit", "text"), [(HELD, HELD_UNIT), (NOTIFY, NOTIFY_UNIT)],
                         ids=["a slow ExecStartPre", "Type=notify never ready"])  # fmt: skip
def test_an_agent_stopped_while_its_unit_starts_ends_at_once_leaving_the_start_to_systemd(
    tmp_path, unit, text
):
    """`systemctl start` waits for the start job: an agent told to stop while a
    unit was activating waited as long (TimeoutStartSec, 90 s by default)."""
    from systemd_host import SystemdHost

    host = SystemdHost(tmp_path, {unit: text})
    try:
        path = graph(tmp_path, name=unit, state="running")
        agent = host.agent([*agent_args(tmp_path, path), "--json"], tmp_path / "agent.log")
        try:
            wait_until(lambda: host.prop(unit, "ActiveState") == "activating", what="the start")
            agent.terminate()
            agent.wait(timeout=5)
        finally:
            agent.kill()
            agent.wait()
        assert agent.returncode == 0, log(tmp_path)
        (row,) = json.loads(agent.stdout.read())["resources"]
        assert (row["result"], row["errors"]) == ("changed", []), row  # a start was made
        assert f"started {unit}" not in log(tmp_path)
        # systemd's start job goes on: the unit is as systemd has it, still starting.
        assert host.prop(unit, "ActiveState") == "activating"
        assert host.prop(unit, "Job") != ""
        assert starts(host) == 1
        if unit == HELD:  # and it does start, with no agent around
            host.run(["touch", "/var/tmp/go"])
            wait_until(lambda: host.prop(unit, "ActiveState") == "active", what="the start")
            assert starts(host) == 1
    finally:
        host.close()


# Deactivating for a minute once stopped (its ExecStop), as a slow one would be.
SLOW_STOP = "mgmt-slowstop.service"
SLOW_STOP_UNIT = """\
[Unit]
DefaultDependencies=no

[Service]
ExecStart=/bin/sleep infinity
ExecStop=/bin/sleep 60
"""


def test_an_agent_stopped_while_its_unit_stops_ends_at_once_leaving_the_stop_to_systemd(
    tmp_path,
):
    """`systemctl stop` waits for the stop job as `start` does for its own (a slow
    ExecStop, a service that ignores SIGTERM: TimeoutStopSec, 90 s by default)."""
    from systemd_host import SystemdHost

    host = SystemdHost(tmp_path, {SLOW_STOP: SLOW_STOP_UNIT})
    try:
        host.run(["systemctl", "start", SLOW_STOP])
        path = graph(tmp_path, name=SLOW_STOP, state="stopped")
        agent = host.agent(agent_args(tmp_path, path), tmp_path / "agent.log")
        try:
            wait_until(lambda: host.prop(SLOW_STOP, "ActiveState") == "deactivating",
                       what="the stop")  # fmt: skip
            agent.terminate()
            agent.wait(timeout=5)
        finally:
            agent.kill()
            agent.wait()
        assert agent.returncode == 0, log(tmp_path)
        assert f"stopped {SLOW_STOP}" not in log(tmp_path)
        assert host.prop(SLOW_STOP, "ActiveState") == "deactivating"
        assert host.prop(SLOW_STOP, "Job") != ""
    finally:
        host.close()


def test_a_start_that_takes_long_counts_once_the_unit_runs(tmp_path):
    from systemd_host import SystemdHost

    host = SystemdHost(tmp_path, {HELD: HELD_UNIT})
    try:
        path = graph(tmp_path, name=HELD, state="running")
        with running_agent(host, tmp_path, path):
            wait_until(lambda: host.prop(HELD, "ActiveState") == "activating", what="the start")
            assert f"started {HELD}" not in log(tmp_path)
            host.run(["touch", "/var/tmp/go"])
            wait_until(lambda: f"started {HELD}" in log(tmp_path), what="the start to count")
            assert host.prop(HELD, "ActiveState") == "active"
            assert starts(host) == 1
    finally:
        host.close()


def test_a_resource_edited_while_its_start_is_under_way_leaves_that_start_to_systemd(tmp_path):
    """The edited resource's old check went on waiting for its start job: the agent,
    told to stop, then waited as long (its new resource had nothing to wait for)."""
    from systemd_host import SystemdHost

    host = SystemdHost(tmp_path, {HELD: HELD_UNIT.replace("[Service]", INSTALL + "[Service]")})
    try:
        agent = host.agent(
            agent_args(tmp_path, graph(tmp_path, name=HELD, state="running")),
            tmp_path / "agent.log",
        )
        try:
            wait_until(lambda: host.prop(HELD, "ActiveState") == "activating", what="the start")
            graph(tmp_path, name=HELD, state="running", startup="enabled")
            wait_until(lambda: f"enabled {HELD}" in log(tmp_path), what="the edit's enable")
            agent.terminate()
            agent.wait(timeout=5)
        finally:
            agent.kill()
            agent.wait()
        assert agent.returncode == 0, log(tmp_path)
        assert host.prop(HELD, "UnitFileState") == "enabled"
        assert host.prop(HELD, "ActiveState") == "activating"
        assert starts(host) == 1
    finally:
        host.close()


def test_a_graph_edit_stops_a_unit_while_the_agent_starts_it(tmp_path):
    """The edit's resource stops the unit at once, its start still under way."""
    from systemd_host import SystemdHost

    host = SystemdHost(tmp_path, {HELD: HELD_UNIT})
    try:
        with running_agent(host, tmp_path, graph(tmp_path, name=HELD, state="running")):
            wait_until(lambda: host.prop(HELD, "ActiveState") == "activating", what="the start")
            graph(tmp_path, name=HELD, state="stopped")
            wait_until(lambda: f"stopped {HELD}" in log(tmp_path), what="the edit's stop")
            # Its ExecStartPre killed: systemd has it failed.
            assert host.prop(HELD, "ActiveState") == "failed"
            assert host.prop(HELD, "Job") == ""
            assert f"started {HELD}" not in log(tmp_path)
            assert "did not stay running" not in log(tmp_path)
    finally:
        host.close()


@pytest.mark.parametrize(
    ("unit", "text", "setup", "said"),
    [
        (NOTIFY, NOTIFY_UNIT, "touch /var/tmp/fail",
         "ActiveState=failed SubState=failed Result=exit-code"
         " (main process: code=exited, status=3)"),
        (NOTIFY, NOTIFY_UNIT.replace("TimeoutStartSec=60", "TimeoutStartSec=2"), "true",
         "ActiveState=failed SubState=failed Result=timeout"),
        (HELD, HELD_UNIT.replace("until test -e /var/tmp/go; do sleep .1; done", "exit 4"),
         "true", "ActiveState=failed SubState=failed Result=exit-code"),
        (HELD, HELD_UNIT.replace("[Service]", "[Service]\nType=exec").replace(
            "ExecStart=/bin/sleep infinity", "ExecStart=/nonexistent/mgmt-none").replace(
            "until test -e /var/tmp/go; do sleep .1; done", "true"),
         "true", "ActiveState=failed SubState=failed Result=exit-code"
         " (main process: code=exited, status=203)"),
    ],
    ids=["Type=notify exits", "Type=notify times out", "ExecStartPre fails",
         "Type=exec cannot exec"],
)  # fmt: skip
def test_a_start_job_that_fails_fails_the_resource_quoting_systemd(
    tmp_path, unit, text, setup, said
):
    from systemd_host import SystemdHost

    host = SystemdHost(tmp_path, {unit: text})
    try:
        host.run(["sh", "-c", setup])
        path = graph(tmp_path, name=unit, state="running")
        result = run_once(host, tmp_path, path, "--json")
        assert result.returncode == 1, log(tmp_path)
        (row,) = json.loads(result.stdout)["resources"]
        assert row["result"] == "failed"
        assert f"{unit}: did not stay running after its start: {said}" in row["errors"][-1], row
        assert starts(host) == 1
        assert f"started {unit}" not in log(tmp_path)
    finally:
        host.close()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("1min 30s", 90), ("1min 30", 90), ("500ms", 0.5), ("0", 0), ("2h", 7200),
     ("1d 1us", 86400.000001), ("infinity", None), ("", None), ("10 parsecs", None)],
)  # fmt: skip
def test_systemd_time_spans_are_read_as_systemctl_show_prints_them(text, seconds):
    from mgmt.resources.unitctl import timespan

    assert timespan(text) == seconds


@pytest.mark.parametrize(
    ("name", "unit"),
    [("nginx", "nginx.service"), ("user.slice", "user.slice"), ("dev-sda2.swap", "dev-sda2.swap"),
     ("proc-sys.automount", "proc-sys.automount"), ("dev-sda.device", "dev-sda.device"),
     ("getty@tty1", "getty@tty1.service")],
)  # fmt: skip
def test_every_unit_type_keeps_its_suffix(name, unit):
    """.slice, .swap, .automount and .device were taken for services: user.slice.service."""
    from mgmt.resources.unitname import unit_name

    assert unit_name(name) == unit
