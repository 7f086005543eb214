"""The svc kind's startup for units whose [Install] enables other units (Also=)."""

from __future__ import annotations

import subprocess

import pytest
from test_svc import TEMPLATE, TEMPLATE_UNIT, agent_args, graph, running_agent

from support.polling import wait_until

SERVICE = "mgmt-sock.service"
SOCKET = "mgmt-sock.socket"
UNITS = {
    # As pcscd.service or cups.service: enabling the service enables its socket.
    SERVICE: "[Unit]\nDefaultDependencies=no\n\n[Service]\nExecStart=/bin/sleep infinity\n\n"
    f"[Install]\nAlso={SOCKET}\n",
    SOCKET: "[Unit]\nDefaultDependencies=no\n\n[Socket]\nListenStream=/run/mgmt-sock\n\n"
    "[Install]\nWantedBy=mgmt-test.target\n",
}


@pytest.fixture
def also_host(tmp_path):
    from systemd_host import SystemdHost

    host = SystemdHost(tmp_path, UNITS)
    yield host
    host.close()


def run_once(host, tmp_path, path) -> subprocess.CompletedProcess:
    args = [*agent_args(tmp_path, path), "--converged-timeout", "0"]
    proc = host.agent(args, tmp_path / "agent.log")
    out, _ = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def log(tmp_path) -> str:
    return (tmp_path / "agent.log").read_text(errors="replace")


def test_enabling_a_unit_with_only_also_enables_what_it_names(also_host, tmp_path):
    """A unit whose [Install] has only Also= is "indirect" whether or not the units it
    names are enabled: that counted as enabled, so `startup: enabled` never ran
    `systemctl enable`, and the socket that starts the service stayed off at boot."""
    host = also_host
    assert host.prop(SERVICE, "UnitFileState") == "indirect"
    assert host.prop(SOCKET, "UnitFileState") == "disabled"
    path = graph(tmp_path, name="mgmt-sock", startup="enabled")
    assert run_once(host, tmp_path, path).returncode == 0, log(tmp_path)
    assert host.prop(SOCKET, "UnitFileState") == "enabled", log(tmp_path)
    assert "enabled mgmt-sock.service" in log(tmp_path)
    # Converged: nothing to do again.
    assert run_once(host, tmp_path, path).returncode == 0, log(tmp_path)
    assert "enabled mgmt-sock.service" not in log(tmp_path)


def test_what_a_unit_with_only_also_names_disabled_from_outside_is_enabled_again(
    also_host, tmp_path
):
    host = also_host
    with running_agent(host, tmp_path, graph(tmp_path, name="mgmt-sock", startup="enabled")):
        wait_until(lambda: "enabled mgmt-sock.service" in log(tmp_path), what="the enable")
        host.run(["systemctl", "disable", SOCKET])
        wait_until(lambda: log(tmp_path).count("enabled mgmt-sock.service") == 2,
                   what="the enable again")  # fmt: skip
        assert host.prop(SOCKET, "UnitFileState") == "enabled"


def test_disabling_a_unit_with_only_also_disables_what_it_names(also_host, tmp_path):
    host = also_host
    host.run(["systemctl", "enable", SERVICE])
    assert host.prop(SOCKET, "UnitFileState") == "enabled"
    path = graph(tmp_path, name="mgmt-sock", startup="disabled")
    assert run_once(host, tmp_path, path).returncode == 0, log(tmp_path)
    assert host.prop(SOCKET, "UnitFileState") == "disabled", log(tmp_path)


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("[Install]\nAlso=a.socket b.socket\nAlso=c.path\n", ["a.socket", "b.socket", "c.path"]),
        ("[Install]\n# Also=x.socket\nAlso=a.socket \\\n  b.socket\n", ["a.socket", "b.socket"]),
        ("[Install]\nAlso=a.socket\nAlso=\nAlso=b.socket\n", ["b.socket"]),
        ("[Service]\nAlso=a.socket\n[Install]\nWantedBy=x.target\n", []),
        ("[Install]\nAlso=a@%i.socket\n", []),  # a specifier: only systemd expands it
    ],
)
def test_which_units_an_install_section_names_in_also(tmp_path, text, units):
    from mgmt.resources.unitinstall import also_units

    (tmp_path / "u.service").write_text(text)
    assert also_units(str(tmp_path / "u.service")) == units


@pytest.mark.parametrize("startup", ["enabled", "disabled"])
def test_a_template_with_only_another_instance_enabled(tmp_path, startup):
    """A template with an instance enabled other than its DefaultInstance is
    "indirect", which counted as enabled and as disabled: `startup: disabled` left
    that instance enabled (the README: disabling a template disables every
    instance), `startup: enabled` left the DefaultInstance disabled."""
    from systemd_host import SystemdHost

    host = SystemdHost(tmp_path, {TEMPLATE: TEMPLATE_UNIT})
    try:
        host.run(["systemctl", "enable", "mgmt-tpl@other.service"])
        assert host.run(["systemctl", "is-enabled", TEMPLATE]).stdout.strip() == "indirect"
        path = graph(tmp_path, name="mgmt-tpl@", startup=startup)
        assert run_once(host, tmp_path, path).returncode == 0, log(tmp_path)
        units = [TEMPLATE, "mgmt-tpl@main.service", "mgmt-tpl@other.service"]
        out = host.run(["systemctl", "is-enabled", "--", *units], check=False).stdout.split()
        if startup == "enabled":
            assert out == ["enabled", "enabled", "enabled"], log(tmp_path)
        else:
            assert out == ["disabled", "disabled", "disabled"], log(tmp_path)
        assert run_once(host, tmp_path, path).returncode == 0, log(tmp_path)
        assert f"{startup} mgmt-tpl@" not in log(tmp_path)  # right as it is
    finally:
        host.close()


def test_a_unit_enabled_for_this_boot_only_is_enabled_for_good(systemd_host, tmp_path):
    host = systemd_host
    host.run(["systemctl", "enable", "--runtime", "mgmt-web.service"])
    assert host.prop("mgmt-web.service", "UnitFileState") == "enabled-runtime"
    path = graph(tmp_path, startup="enabled")
    assert run_once(host, tmp_path, path).returncode == 0, log(tmp_path)
    assert host.prop("mgmt-web.service", "UnitFileState") == "enabled", log(tmp_path)
