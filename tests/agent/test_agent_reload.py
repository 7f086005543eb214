"""Reading an edited graph: a half-written file is not reported as a bad graph
when a newer change is already pending (the guard of a remote run rewrites the
graph in place, see mgmt/remote/protocol/start.sh)."""

from __future__ import annotations

from mgmt.engine.agent import Agent
from mgmt.settings import Settings


def _agent(tmp_path) -> Agent:
    graph = tmp_path / "g.yaml"
    graph.write_text('{"graph": "g", "resources": {}')  # cut short, as if caught mid-write
    return Agent(Settings(file=graph, no_server=True), world=None, state_dir=tmp_path / "state")


def test_a_bad_graph_with_no_newer_change_pending_is_reported(tmp_path, mgmt_log):
    agent = _agent(tmp_path)
    assert agent._reload() is False
    assert "keeping the last good graph" in mgmt_log.getvalue()


def test_a_bad_read_with_a_newer_change_pending_waits_for_it_quietly(tmp_path, mgmt_log):
    agent = _agent(tmp_path)
    agent._graph_changed(0.0)  # the rewrite's own event, not yet handled
    assert agent._reload() is False
    assert "keeping the last good graph" not in mgmt_log.getvalue()
    assert agent._graph_dirty  # the planner reads the file again
