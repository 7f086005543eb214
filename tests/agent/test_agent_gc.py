"""A remote agent starts with the garbage collector off (mgmt.remote.protocol.launcher); once
it runs, the collector must be back on, or a long-lived agent would never free a
cycle, and what it made after its imports must be collectable."""

from __future__ import annotations

import gc

from mgmt.engine.agent import Agent
from mgmt.settings import Settings


def test_the_collector_is_back_on_once_the_agent_runs(tmp_path):
    graph = tmp_path / "g.yaml"
    graph.write_text(f"graph: g\nresources:\n  file:\n  - name: f\n    path: {tmp_path / 'f'}\n")
    settings = Settings(file=graph, no_server=True, converged_timeout=0, no_watch=True)
    gc.disable()
    try:
        agent = Agent(settings, world=None, state_dir=tmp_path / "state")
        assert agent.run() == 0 and (tmp_path / "f").exists()
        assert gc.isenabled()
        # The imports were frozen; the engine, made after them, was not (frozen
        # objects are not in get_objects(), and are never collected).
        assert gc.get_freeze_count() > 0
        assert any(o is agent.engine for o in gc.get_objects())
    finally:
        gc.enable()
        gc.unfreeze()
