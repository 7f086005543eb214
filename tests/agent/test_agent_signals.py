"""Signals to a running `mgmt run`: SIGHUP (a closed terminal) stops it as ^C does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from helpers import AgentProcess, _pythonpath, wait_for


def _graph(tmp_path) -> str:
    """A file, and an exec whose command runs on (its pid in a file)."""
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n"
        f'  file:\n  - {{name: f, path: {tmp_path / "f"}, content: "x\\n"}}\n'
        "  exec:\n  - name: long\n"
        f"    cmd: echo $$ > {tmp_path / 'pid'}; exec sleep 60\n"
        "    shell: /bin/sh\n"
    )
    return str(graph)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_sighup_stops_the_agent_cleanly_with_its_commands(tmp_path):
    agent = AgentProcess(
        ["--file", _graph(tmp_path), "--no-server", "--prefix", str(tmp_path / "state")],
        tmp_path / "log",
        confined=tmp_path,
    )
    pid_file = tmp_path / "pid"
    assert wait_for(lambda: pid_file.read_text().strip(), 10), agent.log
    pid = int(pid_file.read_text())
    assert agent.wait_log("created", 10), agent.log
    assert agent.stop(signal.SIGHUP) == 0, agent.log
    assert "interrupted by SIGHUP" in agent.log and "Goodbye!" in agent.log
    assert "Traceback" not in agent.log
    assert wait_for(lambda: _gone(pid), 5), "the exec's command outlived the agent"


def test_a_sighup_ignored_by_who_started_it_stays_ignored(tmp_path):
    """As under nohup or the detached cluster's supervisor: the agent runs on."""
    graph = tmp_path / "g.yaml"
    graph.write_text("graph: g\nresources:\n  noop:\n  - name: n\n")
    log = open(tmp_path / "log", "wb")  # noqa: SIM115 - closed below
    agent = subprocess.Popen(
        ["sh", "-c", 'trap "" HUP; exec "$@"', "sh", sys.executable, "-m", "mgmt", "run",
         "--file", str(graph), "--no-server", "--tmp-prefix"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=_pythonpath(), PYTHONUNBUFFERED="1"),
    )  # fmt: skip
    try:
        text = lambda: (tmp_path / "log").read_text()  # noqa: E731
        assert wait_for(lambda: "1 resources" in text(), 10), text()
        agent.send_signal(signal.SIGHUP)
        assert not wait_for(lambda: agent.poll() is not None, 1), text()
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(15) == 0, text()
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        log.close()
