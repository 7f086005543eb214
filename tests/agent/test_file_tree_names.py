"""Names found in a copied tree are the world's, not the graph's: whatever they hold,
each log line about one stays one line."""

from __future__ import annotations

import os

from helpers import AgentProcess

FAKE = "\n06:00:00 agent: all fine"


def test_a_newline_in_a_copied_name_stays_on_its_log_line(tmp_path):
    src, odd = tmp_path / "src", tmp_path / "odd"
    src.mkdir()
    odd.mkdir()
    (src / f"a{FAKE}").write_text("a\n")
    os.mkfifo(odd / f"f{FAKE}")  # refused: its failure names it
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  file:\n"
        f"  - {{name: tree, path: {tmp_path}/dst/, source: {src}/, recurse: true}}\n"
        f"  - {{name: odd, path: {tmp_path}/odd-dst/, source: {odd}/, recurse: true}}\n"
    )
    agent = AgentProcess(
        ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state"),
         "--converged-timeout", "1"],
        tmp_path / "log",
        confined=tmp_path,
    )  # fmt: skip
    assert agent.wait(30) == 1, agent.log
    assert (tmp_path / "dst" / f"a{FAKE}").read_text() == "a\n"
    lines = agent.log.splitlines()
    assert not any(line.startswith("06:00:00") for line in lines), agent.log
    assert any(line.endswith("copied " + repr(f"{tmp_path}/dst/a{FAKE}")[1:-1]) for line in lines)
    assert any("failed: " in line and repr(f"f{FAKE}")[1:-1] in line for line in lines), agent.log
