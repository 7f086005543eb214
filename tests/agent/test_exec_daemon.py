"""An exec whose command starts a daemon that keeps its output open (`server &`)."""

from __future__ import annotations

import os
import signal
import time

from helpers import AgentProcess, wait_for


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_command_that_leaves_a_daemon_running_is_done_when_it_ends(tmp_path):
    pid_file, after = tmp_path / "pid", tmp_path / "after"
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  exec:\n"
        # The daemon inherits the command's stdout and stderr, and never closes them.
        f"  - name: start\n    cmd: sleep 60 & echo $! > {pid_file}; echo started\n"
        "    shell: /bin/sh\n"
        f"  - name: after\n    cmd: touch {after}\n"
        "edges:\n- name: e\n  from: {kind: exec, name: start}\n  to: {kind: exec, name: after}\n"
    )
    agent = AgentProcess(
        ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state")],
        tmp_path / "log",
        confined=tmp_path,
    )
    pid = None
    try:
        assert wait_for(lambda: pid_file.read_text().strip(), 10), agent.log
        pid = int(pid_file.read_text())
        # Done once its command ended: what depends on it runs.
        assert wait_for(after.exists, 5), agent.log
        assert "start: ran" in agent.log
        began = time.monotonic()
        assert agent.stop() == 0, agent.log
        assert time.monotonic() - began < 5, "the stop waited for the daemon"
        assert "Traceback" not in agent.log
        assert _alive(pid), "the daemon the command started was stopped"
    finally:
        if agent.proc.poll() is None:
            agent.stop()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)
