"""Signals to a running `mgmt run`: SIGHUP (a closed terminal) stops it as ^C does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from helpers import AgentProcess, _pythonpath, wait_for

from support.threadsignal import signal_another_thread


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


def test_a_stop_signal_taken_by_another_thread_still_stops_the_agent(tmp_path):
    """The kernel gives a process's signal to any of its threads that does not block
    it (to another one than the main thread when that has a signal pending already).
    Python runs its handler in the main thread only, at its next bytecode: the main
    thread, asleep in its wait for a stop, slept on, and the agent ran on for ever
    (seen twice in svc tests, whose threads wait in systemd's socket)."""
    graph = tmp_path / "g.yaml"
    graph.write_text("graph: g\nresources:\n  noop:\n  - name: n\n")
    agent = AgentProcess(
        ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state")],
        tmp_path / "log",
        confined=tmp_path,
    )
    try:
        assert agent.wait_log("1 resources", 10), agent.log
        signal_another_thread(agent.proc.pid, signal.SIGTERM)
        assert wait_for(lambda: agent.proc.poll() is not None, 10), agent.log
        assert agent.proc.returncode == 0, agent.log
        assert "interrupted by SIGTERM" in agent.log and "Goodbye!" in agent.log
    finally:
        if agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait()
