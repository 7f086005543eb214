"""A stop asked while the agent starts (^C, SIGTERM, the initiator's stop)."""

from __future__ import annotations

import pytest

from mgmt.engine.agent import Agent
from mgmt.settings import Settings


@pytest.mark.parametrize("how", ["stop", "stop_from_signal"])
def test_a_stop_asked_before_the_agent_runs_applies_nothing(tmp_path, how):
    out = tmp_path / "f"
    graph = tmp_path / "g.yaml"
    graph.write_text(f"graph: g\nresources:\n  file:\n  - {{name: f, path: {out}, content: x}}\n")
    agent = Agent(Settings(file=graph, no_server=True), world=None, state_dir=tmp_path / "state")
    getattr(agent, how)()  # a signal's handler calls stop_from_signal, as the agent starts
    assert agent.run() == 0
    assert not out.exists()
