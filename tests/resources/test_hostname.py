"""The hostname kind in a private UTS namespace, /etc behind an overlay, /run private."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from private_host import PRIVATE_NAME, PrivateHost

from mgmt.resources.base import FieldError, fill_params
from mgmt.resources.hostname import HostnameRes, read_pretty, with_pretty


@pytest.fixture
def uts_host(tmp_path):
    host = PrivateHost(tmp_path, private=["/run"], layered=["/etc"], uts=True)
    assert host.run(["hostname"]).stdout.strip() == PRIVATE_NAME  # really its own
    yield host
    host.close()


def run_once(host, tmp_path, graph: Path, *extra) -> subprocess.CompletedProcess:
    args = ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state")]
    proc = host.agent([*args, "--converged-timeout", "0", *extra], tmp_path / "agent.log")
    out, _ = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def test_static_transient_and_pretty_names_are_set(uts_host, tmp_path):
    machine_name = socket.gethostname()
    machine_file = Path("/etc/hostname").read_text() if Path("/etc/hostname").exists() else None
    graph = tmp_path / "h.yaml"
    graph.write_text(
        "graph: h\nresources:\n  hostname:\n  - name: h\n    hostname: web1.example.lan\n"
        '    pretty_hostname: "Web server #1"\n'
    )
    assert run_once(uts_host, tmp_path, graph, "--noop").returncode == 0
    assert uts_host.run(["hostname"]).stdout.strip() == PRIVATE_NAME
    assert run_once(uts_host, tmp_path, graph).returncode == 0, (tmp_path / "agent.log").read_text()
    assert uts_host.run(["hostname"]).stdout.strip() == "web1.example.lan"
    assert uts_host.run(["cat", "/etc/hostname"]).stdout == "web1.example.lan\n"
    info = uts_host.run(["cat", "/etc/machine-info"]).stdout
    assert read_pretty(info) == "Web server #1"
    # The machine itself is untouched.
    assert socket.gethostname() == machine_name
    if machine_file is not None:
        assert Path("/etc/hostname").read_text() == machine_file
    assert run_once(uts_host, tmp_path, graph).returncode == 0
    assert "set " not in (tmp_path / "agent.log").read_text()  # converged: nothing to set


@pytest.mark.parametrize(
    "params", [{"hostname": "-bad"}, {"hostname": "a" * 65}, {"static_hostname": "x y"},
               {"transient_hostname": "a..b"}, {"pretty_hostname": "two\nlines"}]
)  # fmt: skip
def test_bad_names_are_refused(params):
    with pytest.raises(FieldError):
        HostnameRes("h", fill_params(HostnameRes, params))


def test_machine_info_keeps_other_lines():
    text = 'ICON_NAME=computer\nPRETTY_HOSTNAME="old"\n'
    assert with_pretty(text, 'say "hi"') == 'ICON_NAME=computer\nPRETTY_HOSTNAME="say \\"hi\\""\n'
