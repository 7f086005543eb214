"""The systemd test host itself: what the svc, timer and hostname tests rely on."""

from __future__ import annotations

import os
from pathlib import Path

from support.polling import wait_until


def test_a_terminated_agent_is_gone_before_the_next_one_runs(systemd_host, tmp_path):
    """nsenter forks the agent into the host's PID namespace and forwards no
    signal: terminating it stopped nsenter alone, and the agent ran on beside
    the next one (a service it kept running came back after the next stopped it)."""
    graph = tmp_path / "noop.yaml"
    graph.write_text("graph: g\nresources:\n  noop:\n  - name: n\n")
    log = tmp_path / "agent.log"
    agent = systemd_host.agent(["--file", str(graph), "--no-server", "--tmp-prefix"], log)
    children = Path(f"/proc/{agent.pid}/task/{agent.pid}/children")
    wait_until(lambda: children.read_text().split(), what="nsenter to start the agent")
    inner = int(children.read_text().split()[0])
    wait_until(lambda: "1 resources" in log.read_text(), what="the agent to run its graph")
    agent.terminate()
    agent.wait(timeout=30)
    assert not os.path.exists(f"/proc/{inner}"), "the agent outlived its terminate()"
