"""Names found in a copied tree are the world's, not the graph's: whatever they hold,
each log line about one stays one line."""

from __future__ import annotations

import json
import os

import pytest
from helpers import AgentProcess

FAKE = "\n06:00:00 agent: all fine"


@pytest.mark.parametrize("noop", [False, True])
def test_a_newline_in_a_copied_name_stays_on_its_log_line(tmp_path, noop):
    src, odd = tmp_path / "src", tmp_path / "odd"
    src.mkdir()
    odd.mkdir()
    (src / f"a{FAKE}").write_text("a\n")
    os.mkfifo(odd / f"f{FAKE}")  # refused: its failure names it
    if noop:  # there with other content: --noop shows the diff, its header naming it
        (tmp_path / "dst").mkdir()
        (tmp_path / "dst" / f"a{FAKE}").write_text("old\n")
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  file:\n"
        f"  - {{name: tree, path: {tmp_path}/dst/, source: {src}/, recurse: true}}\n"
        f"  - {{name: odd, path: {tmp_path}/odd-dst/, source: {odd}/, recurse: true}}\n"
    )
    agent = AgentProcess(
        ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state"),
         "--converged-timeout", "1", *(["--noop"] if noop else [])],
        tmp_path / "log",
        confined=tmp_path,
    )  # fmt: skip
    assert agent.wait(30) == 1, agent.log
    lines = agent.log.splitlines()
    assert not any(line.startswith("06:00:00") for line in lines), agent.log
    copied = "would copy " if noop else "copied "
    assert any(copied + repr(f"{tmp_path}/dst/a{FAKE}")[1:-1] in line for line in lines)
    if noop:
        assert "+++ " + repr(f"{tmp_path}/dst/a{FAKE}")[1:-1] + " (new)" in lines
    else:
        assert (tmp_path / "dst" / f"a{FAKE}").read_text() == "a\n"
    assert any("failed: " in line and repr(f"f{FAKE}")[1:-1] in line for line in lines), agent.log


def _report(log: str) -> dict:
    line = next(line for line in log.splitlines() if line.startswith('{"version"'))
    return json.loads(line)


def test_a_tree_copy_reports_each_entry_that_differs(tmp_path):
    """--noop (and --json) say what a tree copy would change, entry by entry, as
    they do for one file: a content diff, a folder to make, a link, an extra to remove."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    (src / "a").write_text("new\n")
    (src / "b").write_text("b\n")
    (src / "sub" / "c").write_text("c\n")
    (src / "l").symlink_to("a")
    dst.mkdir()
    (dst / "a").write_text("old\n")
    (dst / "extra").write_text("x\n")
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  file:\n"
        f"  - {{name: tree, path: {dst}/, source: {src}/, recurse: true, force: true}}\n"
    )

    def run(*flags: str) -> dict:
        agent = AgentProcess(
            ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state"),
             "--converged-timeout", "0", "--json", *flags],
            tmp_path / "log",
            confined=tmp_path,
        )  # fmt: skip
        assert agent.wait(30) == 0, agent.log
        (resource,) = _report(agent.log)["resources"]
        return resource

    would = run("--noop")
    assert would["result"] == "would-change"
    by_path = {change.get("path"): change for change in would["changes"]}
    assert set(by_path) == {f"{dst}/{name}" for name in ("a", "b", "sub", "sub/c", "l", "extra")}
    assert "-old\n+new\n" in by_path[f"{dst}/a"]["diff"]
    assert by_path[f"{dst}/sub"]["field"] == "state"
    assert (by_path[f"{dst}/l"]["field"], by_path[f"{dst}/l"]["wanted"]) == ("link", "a")
    assert (by_path[f"{dst}/extra"]["field"], by_path[f"{dst}/extra"]["wanted"]) == (
        "state",
        "absent",
    )
    assert (dst / "a").read_text() == "old\n" and not (dst / "b").exists()  # noop changed nothing
    done = run()
    assert done["result"] == "changed"
    assert {change.get("path") for change in done["changes"]} == set(by_path)
    assert (dst / "a").read_text() == "new\n" and not (dst / "extra").exists()
