"""A failed resource and the events after it: one that may be someone's fix is not lost."""

from __future__ import annotations

from helpers import AgentProcess, wait_for


def test_a_fix_made_right_after_a_failed_recheck_is_applied(tmp_path):
    """A file in the way of the folder a file needs: removed by hand just as the
    agent's re-check (earned by an event) failed on it again."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder is wanted")
    graph = tmp_path / "g.yaml"
    graph.write_text(
        f"graph: g\nresources:\n  file:\n  - {{name: a, path: {blocker / 'a'}, content: x}}\n"
    )
    agent = AgentProcess(
        ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state")],
        tmp_path / "log",
        confined=tmp_path,
    )
    try:
        assert wait_for(lambda: agent.log.count("failed: Not a directory") == 1, 10), agent.log
        blocker.unlink()
        blocker.write_text("in the way again")  # an event: it earns a re-check
        assert wait_for(lambda: agent.log.count("failed: Not a directory") == 2, 5), agent.log
        blocker.unlink()  # the fix, within EVENT_RECHECK of that failure
        assert wait_for(lambda: (blocker / "a").is_file(), 5), agent.log
        assert agent.stop() == 0, agent.log
    finally:
        if agent.proc.poll() is None:
            agent.stop()
