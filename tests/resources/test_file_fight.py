"""Two file resources a symlink changed while the agent runs leads to one file: the
agent converges with one failed instead of writing it for ever (the resource-level
cases are tests/agent/test_file_claims.py). On a private host: / is read-only but
its temp dir, so a wrong path in the graph reaches nothing of the machine's."""

from __future__ import annotations

import json
import subprocess

from private_host import PrivateHost

from support.polling import wait_for

GRAPH = {
    "graph": "fight",
    "resources": {
        "file": [
            {"name": "one", "path": "OUT/A/f", "content": "one"},
            {"name": "two", "path": "OUT/L/f", "content": "two"},
        ]
    },
}


def test_the_agent_converges_with_one_failed_instead_of_writing_for_ever(tmp_path):
    """10,000 writes in 5 s, and the run never converged."""
    host = PrivateHost(tmp_path)
    out = tmp_path / "out"
    (out / "A").mkdir(parents=True)
    (out / "B").mkdir()
    (out / "L").symlink_to("B")  # two's file is B/f at first
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps(GRAPH).replace("OUT", str(out)))
    log = tmp_path / "agent.log"
    args = ["--file", str(graph), "--no-server", "--tmp-prefix", "--converged-timeout", "3"]
    agent = host.agent(args, log)
    try:
        assert wait_for(lambda: "two: created" in log.read_text(), 20), log.read_text()
        (out / "L.new").symlink_to("A")
        (out / "L.new").replace(out / "L")  # at once: both name A/f now
        code = agent.wait(timeout=30)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()
        raise
    finally:
        host.close()
    said = log.read_text()
    assert code == 1, said
    assert "manages" in said and "too" in said
    assert said.count("wrote content") < 5, said
