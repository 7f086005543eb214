"""The hostname kind in a private UTS namespace with /etc behind an overlay.

Both ways the kind sets names: the files and sethostname(2) on a host without
hostnamed (/run private, so no system bus), and systemd-hostnamed over D-Bus on
a host with systemd as PID 1, a dbus-daemon and hostnamed started on demand.
Either way the machine's own /etc/hostname and host name stay as they were.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
from private_host import PRIVATE_NAME, PrivateHost

from mgmt.resources.base import FieldError, fill_params
from mgmt.resources.hostname import HostnameRes, read_pretty, read_static, with_pretty
from support import require_tools, which
from support.polling import wait_until


@pytest.fixture
def uts_host(tmp_path):
    host = PrivateHost(tmp_path, private=["/run"], layered=["/etc"], uts=True)
    assert host.run(["hostname"]).stdout.strip() == PRIVATE_NAME  # really its own
    yield host
    host.close()


@pytest.fixture
def machine():
    """The machine's own names, and a check that they are unchanged at the end."""
    name = socket.gethostname()
    path = Path("/etc/hostname")
    text = path.read_text() if path.exists() else None
    yield
    assert socket.gethostname() == name
    assert (path.read_text() if path.exists() else None) == text


def names_graph(tmp_path, **names) -> Path:
    graph = tmp_path / "h.yaml"
    lines = ["graph: h", "resources:", "  hostname:", "  - name: h"]
    lines += [f"    {key}: {value!r}" for key, value in names.items()]
    graph.write_text("\n".join(lines) + "\n")
    return graph


def run_once(host, tmp_path, graph: Path, *extra) -> subprocess.CompletedProcess:
    args = ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state")]
    proc = host.agent([*args, "--converged-timeout", "0", *extra], tmp_path / "agent.log")
    out, _ = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def test_static_transient_and_pretty_names_are_set(uts_host, tmp_path, machine):
    graph = tmp_path / "h.yaml"
    graph.write_text(
        "graph: h\nresources:\n  hostname:\n  - name: h\n    hostname: web1.example.lan\n"
        '    pretty_hostname: "Web server #1"\n'
    )
    result = run_once(uts_host, tmp_path, graph, "--noop", "--json")
    assert result.returncode == 0
    assert uts_host.run(["hostname"]).stdout.strip() == PRIVATE_NAME
    (row,) = json.loads(result.stdout)["resources"]
    changes = {c["field"]: c for c in row["changes"]}
    assert changes["transient_hostname"] == {
        "field": "transient_hostname", "wanted": "web1.example.lan",
        "actual": PRIVATE_NAME, "applied": False,
    }  # fmt: skip
    assert changes["static_hostname"]["wanted"] == "web1.example.lan"
    assert changes["pretty_hostname"]["wanted"] == "Web server #1"
    assert run_once(uts_host, tmp_path, graph).returncode == 0, (tmp_path / "agent.log").read_text()
    assert uts_host.run(["hostname"]).stdout.strip() == "web1.example.lan"
    assert uts_host.run(["cat", "/etc/hostname"]).stdout == "web1.example.lan\n"
    info = uts_host.run(["cat", "/etc/machine-info"]).stdout
    assert read_pretty(info) == "Web server #1"
    assert run_once(uts_host, tmp_path, graph).returncode == 0
    assert "set " not in (tmp_path / "agent.log").read_text()  # converged: nothing to set


def test_hostname_alone_sets_all_three_names_as_mgmt_does(uts_host, tmp_path, machine):
    """mgmt 0.0.8: "if only Hostname is specified, it will set all 3 fields to this
    value"; the pretty name was left as it was."""
    graph = names_graph(tmp_path, hostname="web1.example.lan")
    assert run_once(uts_host, tmp_path, graph).returncode == 0, (tmp_path / "agent.log").read_text()
    assert uts_host.run(["hostname"]).stdout.strip() == "web1.example.lan"
    assert uts_host.run(["cat", "/etc/hostname"]).stdout == "web1.example.lan\n"
    info = uts_host.run(["cat", "/etc/machine-info"]).stdout
    assert read_pretty(info) == "web1.example.lan"
    assert run_once(uts_host, tmp_path, graph).returncode == 0
    assert "set " not in (tmp_path / "agent.log").read_text()


def test_a_transient_name_apart_from_the_static_one(uts_host, tmp_path, machine):
    graph = names_graph(tmp_path, static_hostname="web1.example.lan", transient_hostname="web1-a")
    assert run_once(uts_host, tmp_path, graph).returncode == 0, (tmp_path / "agent.log").read_text()
    assert uts_host.run(["hostname"]).stdout.strip() == "web1-a"
    assert uts_host.run(["cat", "/etc/hostname"]).stdout == "web1.example.lan\n"
    assert run_once(uts_host, tmp_path, graph).returncode == 0
    assert "set " not in (tmp_path / "agent.log").read_text()


def test_an_outside_edit_of_etc_hostname_is_undone(uts_host, tmp_path, machine):
    graph = names_graph(tmp_path, static_hostname="web1.example.lan")
    args = ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state")]
    agent = uts_host.agent(args, tmp_path / "agent.log")

    def static() -> str:
        return uts_host.run(["cat", "/etc/hostname"]).stdout

    try:
        wait_until(lambda: static() == "web1.example.lan\n", what="the static name")
        # Written aside and renamed in, so the agent never reads a half-written file.
        uts_host.run(
            ["sh", "-c", "echo intruder > /etc/hostname.new && mv /etc/hostname.new /etc/hostname"]
        )
        # inotify on /etc/hostname wakes the resource, which writes it back.
        wait_until(lambda: static() == "web1.example.lan\n", what="the name put back")
        assert agent.poll() is None
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    assert "(was 'intruder')" in (tmp_path / "agent.log").read_text()


def test_an_outside_change_of_the_kernels_name_is_undone(uts_host, tmp_path, machine):
    """The kernel's name makes no inotify event: it stayed changed until something
    else woke the resource. /proc/sys/kernel/hostname tells poll(2) of it."""
    graph = names_graph(tmp_path, hostname="web1.example.lan")
    args = ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state")]
    agent = uts_host.agent(args, tmp_path / "agent.log")

    def kernel() -> str:
        return uts_host.run(["hostname"]).stdout.strip()

    try:
        wait_until(lambda: kernel() == "web1.example.lan", what="the kernel's name")
        uts_host.run(["hostname", "intruder"])
        wait_until(lambda: kernel() == "web1.example.lan", what="the kernel's name put back")
        assert agent.poll() is None
    finally:
        agent.terminate()
        agent.wait(timeout=30)


# -- through systemd-hostnamed --------------------------------------------------

DBUS_SOCKET = """\
[Unit]
Description=D-Bus system bus socket (mgmt test)
DefaultDependencies=no

[Socket]
ListenStream=/run/dbus/system_bus_socket
"""

DBUS_SERVICE = """\
[Unit]
Description=D-Bus system bus (mgmt test)
DefaultDependencies=no
Requires=dbus.socket
After=dbus.socket

[Service]
ExecStart={daemon} --system --address=systemd: --nofork --nopidfile --systemd-activation
"""

# hostnamed's own unit, started by bus activation, without sysinit.target and
# the rest of a boot (which would start the machine's own units).
HOSTNAMED_DROPIN = "[Unit]\nDefaultDependencies=no\n"


@pytest.fixture
def hostnamed_host(tmp_path):
    """systemd as PID 1 with journald, a system bus and hostnamed, /etc behind an overlay."""
    from systemd_host import SystemdHost

    require_tools("dbus-daemon", "hostnamectl")
    units = {
        "dbus.socket": DBUS_SOCKET,
        "dbus.service": DBUS_SERVICE.format(daemon=which("dbus-daemon")),
        "systemd-hostnamed.service.d/mgmt-test.conf": HOSTNAMED_DROPIN,
    }
    wants = ["systemd-journald.socket", "systemd-journald.service", "dbus.socket"]
    host = SystemdHost(tmp_path, units, wants=wants, layered=["/etc"])
    yield host
    host.close()


def test_names_are_set_through_hostnamed(hostnamed_host, tmp_path, machine):
    host = hostnamed_host
    # Its own UTS namespace (systemd named it from /etc/hostname at boot).
    assert os.readlink(f"/proc/{host.pid}/ns/uts") != os.readlink("/proc/self/ns/uts")
    status = host.run(["hostnamectl", "status"], check=False)
    assert status.returncode == 0, status.stderr  # hostnamed answers on the bus
    graph = names_graph(
        tmp_path,
        static_hostname="web1.example.lan",
        transient_hostname="web1-dhcp",
        pretty_hostname="Web server #1",
    )
    log = tmp_path / "agent.log"
    assert run_once(host, tmp_path, graph, "-v").returncode == 0, log.read_text()
    assert "no hostnamed" not in log.read_text()
    assert host.run(["hostname"]).stdout.strip() == "web1-dhcp"
    # hostnamed's view, over D-Bus: the names it was asked to set.
    assert host.run(["hostnamectl", "--static"]).stdout.strip() == "web1.example.lan"
    assert host.run(["hostnamectl", "--pretty"]).stdout.strip() == "Web server #1"
    assert host.run(["hostnamectl", "--transient"]).stdout.strip() == "web1-dhcp"
    # It set them itself (its own log names them), into the private copy of /etc.
    said = host.run(["journalctl", "--no-pager", "-o", "cat", "-u", "systemd-hostnamed"]).stdout
    assert "web1.example.lan" in said and "Web server #1" in said, said
    upper = tmp_path / "layer_etc" / "upper"
    assert (upper / "hostname").read_text() == "web1.example.lan\n"
    assert read_pretty((upper / "machine-info").read_text()) == "Web server #1"
    assert run_once(host, tmp_path, graph).returncode == 0
    assert "set " not in (tmp_path / "agent.log").read_text()  # converged: nothing to set


@pytest.mark.parametrize(
    "params", [{"hostname": "-bad"}, {"hostname": "a" * 65}, {"static_hostname": "x y"},
               {"transient_hostname": "a..b"}, {"pretty_hostname": "two\nlines"},
               # hostnamed refuses control characters: a host without it took them
               {"pretty_hostname": "a\tb"}, {"pretty_hostname": "red \x1b[31m"},
               # no name at all: it would set nothing
               {}, {"pretty_hostname": ""}]
)  # fmt: skip
def test_bad_names_are_refused(params):
    with pytest.raises(FieldError):
        HostnameRes("h", fill_params(HostnameRes, params))


def test_machine_info_keeps_other_lines():
    text = 'ICON_NAME=computer\nPRETTY_HOSTNAME="old"\n'
    assert with_pretty(text, 'say "hi"') == 'ICON_NAME=computer\nPRETTY_HOSTNAME="say \\"hi\\""\n'


@pytest.mark.parametrize("pretty", ['say "hi"', "back\\slash", "cost $5 `now`", "it's", "plain"])
def test_a_pretty_name_reads_back_as_written(pretty):
    """Read back unescaped, or the check never finds it right and writes it for ever."""
    assert read_pretty(with_pretty("ICON_NAME=computer\n", pretty)) == pretty


def test_machine_info_as_hostnamectl_writes_it():
    assert read_pretty('PRETTY_HOSTNAME="say \\"hi\\" \\$5"\n') == 'say "hi" $5'
    assert read_pretty("PRETTY_HOSTNAME='as \\ is'\n") == "as \\ is"


@pytest.mark.parametrize(
    ("text", "name"),
    [("web9\n", "web9"), ("# admin note\nweb9\n", "web9"), ("\n  web9  \n# after\n", "web9"),
     ("# only a comment\n", ""), ("", "")],
)  # fmt: skip
def test_the_static_name_is_read_as_systemd_reads_etc_hostname(text, name):
    """A comment line was taken as part of the name: --noop said it differed, and a
    run rewrote the file without the comment."""
    assert read_static(text) == name


def test_an_edit_of_the_names_applies_at_once(uts_host, tmp_path, machine):
    """A graph edit of the names applies at once, the agent running on."""

    def edit(name: str, pretty: str) -> Path:
        return names_graph(
            tmp_path, static_hostname=name, transient_hostname=name, pretty_hostname=pretty
        )

    graph = edit("web1.example.lan", "Web one")
    args = ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state")]
    agent = uts_host.agent(args, tmp_path / "agent.log")

    def names() -> tuple:
        return (
            uts_host.run(["hostname"]).stdout.strip(),
            uts_host.run(["cat", "/etc/hostname"]).stdout,
            read_pretty(uts_host.run(["cat", "/etc/machine-info"], check=False).stdout),
        )

    try:
        first = ("web1.example.lan", "web1.example.lan\n", "Web one")
        wait_until(lambda: names() == first, what="the first names")
        edit("web2.example.lan", "Web two")
        second = ("web2.example.lan", "web2.example.lan\n", "Web two")
        wait_until(lambda: names() == second, what="the edited names")
        assert agent.poll() is None
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    log = (tmp_path / "agent.log").read_text()
    assert "changed 1 (hostname[h])" in log, log
