"""The --json "converged" of an agent that is stopped: what it was when it ended.

A remote run's agent never ends by itself: it reports its idle state on stdout
(``@@mgmt-converged true``) and the initiator, once every host has been idle
for its --converged-timeout, stops each with SIGINT. Its report must then say
converged, as the host's row does; stopped while still at work, it must not.
These agents run as the launcher starts them (--converged-stdout), locally.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from helpers import AgentProcess, read, wait_for

from mgmt.remote.protocol import REPORT_MARK, converged_line


def agent(tmp_path: Path, graph: Path) -> AgentProcess:
    args = ["--file", str(graph), "--no-server", "--tmp-prefix", "--converged-stdout", "--json"]
    return AgentProcess(args, tmp_path / "log")


def unmakeable(tmp_path: Path) -> Path:
    """A file path whose directory cannot be made (a dangling link holds its name)."""
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere" / "deeper")
    return link / "x"


def report(log: str) -> dict:
    (line,) = [line for line in log.splitlines() if line.startswith(REPORT_MARK)]
    return json.loads(line[len(REPORT_MARK) :])


def test_an_agent_stopped_while_converged_reports_converged(tmp_path):
    out, graph = tmp_path / "out", tmp_path / "g.yaml"
    graph.write_text(f"graph: c\nresources:\n  file:\n  - {{name: f, path: {out}/f, content: x}}\n")
    proc = agent(tmp_path, graph)
    try:
        # What the initiator waits for before it stops the agent.
        assert proc.wait_log(converged_line(True), 15), proc.log
    finally:
        code = proc.stop(signal.SIGINT)
    assert code == 0, proc.log
    assert read(out / "f") == "x"
    doc = report(proc.log)
    assert (doc["converged"], doc["status"]) == (True, "ok"), doc
    assert doc["summary"]["changed"] == 1


def test_an_agent_stopped_while_at_work_reports_not_converged(tmp_path):
    # A file that cannot be made, retried for ever a minute apart: the engine
    # is never idle, so the agent never says converged and is stopped busy.
    bad, graph = unmakeable(tmp_path), tmp_path / "g.yaml"
    graph.write_text(
        "graph: c\nresources:\n  file:\n"
        f"  - {{name: bad, path: {bad}, content: x, meta: {{retry: -1, delay: 60000}}}}\n"
    )
    proc = agent(tmp_path, graph)
    try:
        assert proc.wait_log("bad: failed", 15), proc.log
    finally:
        proc.stop(signal.SIGINT)
    assert converged_line(True) not in proc.log
    doc = report(proc.log)
    assert (doc["converged"], doc["status"]) == (False, "failed"), doc


def test_a_failed_resource_no_longer_retried_still_lets_the_agent_converge(tmp_path):
    # As with --converged-timeout (converged, status failed): the failure is in
    # "status", and the initiator too stops a host that is idle with a failure.
    bad, graph = unmakeable(tmp_path), tmp_path / "g.yaml"
    graph.write_text(f"graph: c\nresources:\n  file:\n  - {{name: bad, path: {bad}, content: x}}\n")
    proc = agent(tmp_path, graph)
    try:
        assert wait_for(lambda: converged_line(True) in proc.log, 15), proc.log
    finally:
        code = proc.stop(signal.SIGINT)
    assert code == 1, proc.log
    assert "stopped with 1 failed resource(s)" in proc.log  # how it ended, in the log
    doc = report(proc.log)
    assert (doc["converged"], doc["status"]) == (True, "failed"), doc
