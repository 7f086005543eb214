"""Exports and collection against the World protocol (in memory; etcd is in test_two_agents)."""

from __future__ import annotations

from helpers import MemWorld

from mgmt.engine.exchange import collected, publish
from mgmt.graph import parse_graph


def graph_for(host: str, pattern: str = "/srv/in/") -> str:
    return f"""graph: g
resources:
  file:
  - name: local{host}
    path: /tmp/local{host}
  - name: "@@shared"
    path: /tmp/shared
    content: "from {host}\\n"
  - name: "@@only{host}"
    path: /tmp/only{host}
collect:
- kind: file
  pattern: "{pattern}"
"""


def test_publish_then_collect_rewrites_paths_and_renames_clashes():
    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    a, b = MemWorld("a", store), MemWorld("b", store)
    graph_a, graph_b = parse_graph(graph_for("a")), parse_graph(graph_for("b"))
    publish(a, graph_a)
    publish(b, graph_b)
    assert set(store["exported"]["a"]) == {("file", "shared"), ("file", "onlya")}
    got = collected(a, graph_a)
    assert set(got) == {
        ("file", "shared"),
        ("file", "shared@b"),
        ("file", "onlya"),
        ("file", "onlyb"),
    }
    assert got[("file", "shared@b")].params["content"] == "from b\n"
    assert got[("file", "onlyb")].params["dirname"] == "/srv/in/"
    assert got[("file", "onlyb")].origin == "b"


def test_no_pattern_keeps_paths_and_bad_exports_are_skipped():
    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    world = MemWorld("a", store)
    store["exported"]["evil"] = {
        ("file", "bad"): {"path": "/tmp/x", "colour": "red"},
        ("file", "relative"): {"path": "not/absolute"},
        ("file", "good"): {"path": "/tmp/good", "content": "ok"},
    }
    graph = parse_graph(graph_for("a", pattern=""))
    got = collected(world, graph)
    assert set(got) == {("file", "good")}
    assert got[("file", "good")].params["path"] == "/tmp/good"
    assert got[("file", "good")].params["dirname"] is None


def test_republishing_without_an_export_removes_it():
    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    world = MemWorld("a", store)
    publish(world, parse_graph(graph_for("a")))
    publish(world, parse_graph("graph: g\nresources:\n  noop: [{name: n}]\n"))
    assert store["exported"]["a"] == {}
