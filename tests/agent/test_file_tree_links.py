"""A tree copied into its own source through a symlink on the way: refused, never
copied without end (the names alone do not show it)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess

from helpers import AgentProcess, wait_for


def _graph(tmp_path, path) -> str:
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  file:\n"
        f"  - name: tree\n    path: {path}/\n    source: {tmp_path}/src/\n    recurse: true\n"
    )
    return str(graph)


def _agent(tmp_path, graph, *flags: str) -> AgentProcess:
    return AgentProcess(
        ["--file", graph, "--no-server", "--prefix", str(tmp_path / "state"), *flags],
        tmp_path / "log",
        confined=tmp_path,
    )


def _stop(agent: AgentProcess) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):  # killed by stop() then
        agent.stop(timeout=10)


def test_a_copy_into_its_source_through_a_link_is_refused_when_read(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_text("a\n")
    (tmp_path / "via").symlink_to("src")
    agent = _agent(
        tmp_path, _graph(tmp_path, tmp_path / "via" / "copy"), "--converged-timeout", "1"
    )
    try:
        assert agent.wait(20) == 2, agent.log
    finally:
        _stop(agent)
    assert f"{tmp_path}/g.yaml:6: file[tree]: source: " in agent.log
    assert "the copy would copy itself without end (through a symlink" in agent.log
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["a"]


def test_a_link_into_the_source_made_while_it_runs_is_refused(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_text("a\n")
    (tmp_path / "via").mkdir()
    agent = _agent(tmp_path, _graph(tmp_path, tmp_path / "via" / "copy"))
    try:
        assert wait_for(lambda: (tmp_path / "via" / "copy" / "a").exists(), 10), agent.log
        # Swapped while the agent is stopped: it would put the folder back between two steps.
        agent.proc.send_signal(signal.SIGSTOP)
        try:
            shutil.rmtree(tmp_path / "via")
            (tmp_path / "via").symlink_to("src")
        finally:
            agent.proc.send_signal(signal.SIGCONT)
        assert wait_for(lambda: "copy itself without end" in agent.log, 10), agent.log
        assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["a"]
    finally:
        _stop(agent)
