"""Graphs in mgmt's own style, run by the agent on a private host: what they make.

mgmt's example of a tree copied from a source that is not there left, here, an
empty folder made (or a file replaced by one) before it failed.
"""

from __future__ import annotations

import pytest
from private_host import PrivateHost


@pytest.fixture
def host(tmp_path):
    h = PrivateHost(tmp_path)
    yield h
    h.close()


@pytest.mark.parametrize("before", [None, "a file where the copy goes\n"], ids=["absent", "a file"])
def test_a_tree_copy_from_a_missing_source_changes_nothing(host, tmp_path, before):
    """As mgmt's file example of a folder copied with recurse and force: its source
    is not there, so it fails, and nothing is made or replaced at its path."""
    target = tmp_path / "hello"
    if before is not None:
        target.write_text(before)
    graph = tmp_path / "g.yaml"
    graph.write_text(
        f"""\
graph: mygraph
resources:
  file:
  - name: file1
    path: "{target}/"
    source: "{tmp_path}/no/such/dir/"
    recurse: true
    force: true
    state: exists
"""
    )
    log = tmp_path / "log"
    args = ["--file", str(graph), "--no-server", "--tmp-prefix", "--converged-timeout", "0"]
    agent = host.agent(args, log)
    agent.communicate(timeout=60)
    assert agent.returncode == 1, log.read_text()
    assert f"source {tmp_path}/no/such/dir/ is not a directory" in log.read_text()
    if before is None:
        assert not target.exists()
    else:
        assert target.read_text() == before
