"""An attached agent beside a detached cluster: protocol.detached_cluster_here."""

import subprocess
import sys

import pytest

from mgmt.remote import protocol


@pytest.mark.parametrize(
    "sup, runs", [(None, False), ("stale", False), ("other", False), ("supervisor", True)]
)
def test_an_attached_agent_sees_a_detached_cluster_only_while_its_agent_is_supervised(
    tmp_path, monkeypatch, sup, runs
):
    """protocol.detached_cluster_here: a cluster left by a reboot (a pid file whose
    process is gone, or is another program now) does not keep attached runs out."""
    monkeypatch.setenv("HOME", str(tmp_path))
    state = tmp_path / ".local/state/mgmt/detached"
    state.mkdir(parents=True)
    (state / "cluster.json").write_text("{}")
    argv = [sys.executable, "-c", "import sys; sys.stdin.read()"]
    if sup == "supervisor":
        argv.append(str(state / "supervise.py"))  # as the cluster runs it: supervise.py agent
    process = subprocess.Popen(argv, stdin=subprocess.PIPE)
    try:
        if sup is not None:
            pid = process.pid if sup != "stale" else 2**22 + 1  # above pid_max: no process
            (state / "agent.sup").write_text(f"{pid}\n")
        assert protocol.detached_cluster_here() is runs
    finally:
        process.communicate(b"")
