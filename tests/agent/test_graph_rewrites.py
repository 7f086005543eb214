"""A graph file rewritten in place again and again while the agent runs: the agent
applies only whole versions of it, and says nothing of the halves it read."""

from __future__ import annotations

import os
import time

from helpers import AgentProcess, read, wait_for


def test_a_graph_rewritten_in_place_many_times_is_never_applied_half_written(tmp_path):
    out = tmp_path / "x"
    # Cut after its first line, the graph still parses: the content a line short.
    head = (
        "graph: g\nresources:\n  file:\n"
        f"  - name: x\n    path: {out}\n    content: |\n      line1\n"
    )
    graph = tmp_path / "g.yaml"
    graph.write_text(head + "      line2\n")
    agent = AgentProcess(
        ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state")],
        tmp_path / "log",
        confined=tmp_path,
    )
    try:
        assert wait_for(lambda: read(out) == "line1\nline2\n", 10), agent.log
        # A writer that writes in two steps (a template engine, a shell's
        # `cat > g.yaml`), 2 ms apart: the agent reads after each close, while the
        # next rewrite is already under way.
        for _ in range(200):
            fd = os.open(graph, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, head.encode())
                time.sleep(0.002)  # the writer's own pace, not a wait for the agent
                os.write(fd, b"      line2\n")
            finally:
                os.close(fd)
        graph.write_text(head + "      line3\n")  # a real change still applies
        assert wait_for(lambda: read(out) == "line1\nline3\n", 10), agent.log
        assert agent.stop() == 0, agent.log
    finally:
        if agent.proc.poll() is None:
            agent.stop()
    log = agent.log
    assert log.count("changed 1 (file[x])") == 1, log  # line3 only: no half applied
    assert "keeping the last good graph" not in log, log  # nor reported as bad
    assert "Traceback" not in log
