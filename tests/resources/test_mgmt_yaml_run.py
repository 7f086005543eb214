"""Graphs in mgmt's own style, run by the agent on a private host: what they make.

mgmt reads merge keys (``<<: *defaults``), a plain ``mode: 0600``, an edge's
kind in another case (``kind: File``), a noop's ``comment`` and an edge's
``notify:``; this agent refused each. mgmt's example of a tree copied from a
source that is not there left, here, an empty folder made (or a file replaced by
one) before it failed.
"""

from __future__ import annotations

import signal

import pytest
from private_host import PrivateHost

from support.polling import wait_until


@pytest.fixture
def host(tmp_path):
    h = PrivateHost(tmp_path)
    yield h
    h.close()


def graph_of(tmp_path) -> str:
    w = tmp_path / "w"
    w.mkdir()
    graph = tmp_path / "g.yaml"
    graph.write_text(
        f"""\
---
graph: mygraph
comment: written as mgmt's examples are
resources:
  noop:
  - name: noop1
    comment: where the branches meet
  file:
  - &conf
    name: conf
    path: "{w}/app.conf"
    content: |
      setting = 1
    mode: '0640'
    state: exists
  - <<: *conf
    name: copy
    path: "{w}/copy.conf"
    mode: 0600
  exec:
  - name: reload
    cmd: "echo reloaded >> {w}/reloads"
    shell: /bin/sh
    timeout: 0
    watchcmd: ''
    watchshell: ''
    ifcmd: ''
    ifshell: ''
    pollint: 0
    state: present
edges:
- name: e1
  from:
    kind: File
    name: conf
  to:
    kind: Exec
    name: reload
  notify: true
- name: e2
  from:
    kind: exec
    name: reload
  to:
    kind: Noop
    name: noop1
"""
    )
    return str(graph)


def test_an_mgmt_graph_with_merges_kinds_in_any_case_and_notify_runs(host, tmp_path):
    graph = graph_of(tmp_path)
    w = tmp_path / "w"
    log = tmp_path / "log"
    agent = host.agent(["--file", graph, "--no-server", "--tmp-prefix"], log)
    try:
        reloads = w / "reloads"
        wait_until(lambda: reloads.read_text() == "reloaded\n", what="the first reload")
        # The merged copy has conf's content, and its own mode: a plain 0600 is the
        # mode '0600' (YAML alone reads the number 384).
        for name, mode in (("app.conf", 0o640), ("copy.conf", 0o600)):
            assert (w / name).read_text() == "setting = 1\n"
            assert (w / name).stat().st_mode & 0o7777 == mode
        # The refresh reaches the exec after the file: a change of the file (undone
        # by the agent) runs it again, as mgmt's notify does.
        (w / "app.conf").write_text("tampered\n")
        wait_until(
            lambda: reloads.read_text() == "reloaded\nreloaded\n",
            what="a reload after the file was put back",
        )
        assert (w / "app.conf").read_text() == "setting = 1\n"
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=30)
    assert agent.returncode == 0, log.read_text()


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


def test_a_file_of_fragments_holds_them_joined_once_converged(host, tmp_path):
    """mgmt's ``fragments``, some of them made by the same graph."""
    w = tmp_path / "w"
    (w / "parts").mkdir(parents=True)
    (w / "parts" / "20-b").write_text("b\n")
    graph = tmp_path / "g.yaml"
    graph.write_text(
        f"""\
graph: mygraph
resources:
  file:
  - name: joined
    path: "{w}/joined"
    fragments:
    - "{w}/head"
    - "{w}/parts/"
    state: exists
  - name: head
    path: "{w}/head"
    content: "# made by mgmt\\n"
  - name: part
    path: "{w}/parts/10-a"
    content: "a\\n"
"""
    )
    log = tmp_path / "log"
    args = ["--file", str(graph), "--no-server", "--tmp-prefix", "--converged-timeout", "1"]
    agent = host.agent(args, log)
    agent.communicate(timeout=60)
    assert agent.returncode == 0, log.read_text()
    assert (w / "joined").read_text() == "# made by mgmt\na\nb\n"
