"""A graph edit of the hostname kind applies at once, in a private UTS namespace.

As tests/resources/test_hostname.py: the agent runs in a host of its own (UTS
namespace, /etc behind an overlay, /run private), so the machine's own name
and /etc/hostname stay as they were; the ``machine`` check says so at the end.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from private_host import PrivateHost

from mgmt.resources.hostname import read_pretty
from support.polling import wait_until


@pytest.fixture
def uts_host(tmp_path):
    host = PrivateHost(tmp_path, private=["/run"], layered=["/etc"], uts=True)
    yield host
    host.close()


@pytest.fixture
def machine():
    name = socket.gethostname()
    path = Path("/etc/hostname")
    text = path.read_text() if path.exists() else None
    yield
    assert socket.gethostname() == name
    assert (path.read_text() if path.exists() else None) == text


def _graph(path: Path, static: str, pretty: str) -> None:
    text = (
        "graph: h\nresources:\n  hostname:\n  - name: h\n"
        f"    static_hostname: {static}\n    transient_hostname: {static}\n"
        f"    pretty_hostname: {pretty!r}\n"
    )
    # Written aside and renamed in: the agent reads the whole new graph at once.
    path.with_suffix(".new").write_text(text)
    path.with_suffix(".new").rename(path)


def test_an_edit_of_the_names_applies_at_once(uts_host, tmp_path, machine):
    graph = tmp_path / "h.yaml"
    _graph(graph, "web1.example.lan", "Web one")
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
        _graph(graph, "web2.example.lan", "Web two")
        second = ("web2.example.lan", "web2.example.lan\n", "Web two")
        wait_until(lambda: names() == second, what="the edited names")
        assert agent.poll() is None
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    log = (tmp_path / "agent.log").read_text()
    assert "changed 1 (hostname[h])" in log, log
