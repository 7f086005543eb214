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


def test_publish_then_collect_rewrites_paths_and_skips_a_second_file_on_one_path(mgmt_log):
    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    a, b = MemWorld("a", store), MemWorld("b", store)
    graph_a, graph_b = parse_graph(graph_for("a")), parse_graph(graph_for("b"))
    publish(a, graph_a)
    publish(b, graph_b)
    assert set(store["exported"]["a"]) == {("file", "shared"), ("file", "onlya")}
    got = collected(a, graph_a)
    # Both hosts' "shared" land on /srv/in/shared: the first (a, in host order)
    # wins, b's is skipped with a warning naming both, never renamed onto one path.
    assert set(got) == {("file", "shared"), ("file", "onlya"), ("file", "onlyb")}
    assert got[("file", "shared")].params["content"] == "from a\n"
    assert got[("file", "onlyb")].params["path"] == "/srv/in/onlyb"
    assert got[("file", "onlyb")].origin == "b"
    logged = mgmt_log.getvalue()
    assert "skipping file[shared] from b: file:/srv/in/shared is already taken by " in logged
    assert "file[shared] from a" in logged


def test_same_name_on_another_path_is_renamed_and_a_local_path_is_never_collected_over():
    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    a, b = MemWorld("a", store), MemWorld("b", store)
    graph_a = parse_graph(graph_for("a", pattern=""))
    publish(a, graph_a)
    store["exported"]["b"] = {
        ("file", "shared"): {"path": "/tmp/shared-b", "content": "b"},
        ("file", "intruder"): {"path": "/tmp/locala", "content": "b's"},
    }
    got = collected(a, graph_a)
    assert set(got) == {("file", "shared"), ("file", "shared@b"), ("file", "onlya")}
    assert got[("file", "shared@b")].params["path"] == "/tmp/shared-b"
    assert b.hostname == "b"


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


def test_a_collected_file_never_leaves_the_pattern_directory(mgmt_log):
    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    world = MemWorld("a", store)
    store["exported"]["evil"] = {
        ("file", "climber"): {"path": "/tmp/x", "basename": "../../etc/cron.d/x"},
        ("file", "dotdot"): {"path": "/tmp/x", "basename": ".."},
        ("file", "root"): {"path": "/", "state": "absent", "recurse": True},
        ("file", "dir"): {"path": "/var/x/", "state": "absent", "recurse": True},
        ("file", "renamed"): {"path": "/tmp/a", "dirname": "/etc/", "basename": "b"},
    }
    got = collected(world, parse_graph(graph_for("a")))
    paths = {key[1]: spec.params["path"] for key, spec in got.items() if key[1] != "onlya"}
    # A directory export stays a directory *under* the pattern, never the pattern itself.
    assert paths == {"dir": "/srv/in/x/", "renamed": "/srv/in/b"}
    for name in ("climber", "dotdot", "root"):
        assert f"skipping file[{name}] from evil: " in mgmt_log.getvalue()


def test_a_collected_resource_keeps_the_meta_it_was_exported_with(mgmt_log):
    """mgmt's exports carry their metaparameters; ours dropped them, so an export
    marked ``noop: true`` was applied for real by every collector."""
    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    world = MemWorld("a", store)
    text = graph_for("a").replace(
        '    content: "from a\\n"\n',
        '    content: "from a\\n"\n'
        "    meta: {noop: true, retry: -1, delay: 250, autoedge: false}\n",
    )
    graph = parse_graph(text)
    publish(world, graph)
    # Only what differs from the defaults travels; the other export reads as before.
    exported = store["exported"]["a"]
    assert exported[("file", "shared")]["meta"] == {
        "noop": True, "retry": -1, "delay": 250, "autoedge": False,
    }  # fmt: skip
    assert "meta" not in exported[("file", "onlya")]
    got = collected(world, graph)
    assert got[("file", "shared")].meta == graph.resources[("file", "shared")].meta
    assert got[("file", "shared")].params["path"] == "/srv/in/shared"
    assert got[("file", "onlya")].meta == graph.resources[("file", "onlya")].meta
    # Another host's meta is checked as a graph's: a bad one skips that export.
    store["exported"]["evil"] = {
        ("file", "forever"): {"path": "/tmp/f", "meta": {"retry": -5}},
        ("file", "typo"): {"path": "/tmp/t", "meta": {"sema": ["x"]}},
        ("file", "text"): {"path": "/tmp/n", "meta": {"noop": "yes"}},
        ("file", "list"): {"path": "/tmp/l", "meta": [1]},
    }
    got = collected(world, graph)
    assert not {"forever", "typo", "text", "list"} & {name for _, name in got}
    logged = mgmt_log.getvalue()
    assert "skipping file[forever] from evil: meta retry: -5 is out of range (-1 to " in logged
    assert "skipping file[typo] from evil: meta: unknown key 'sema'" in logged
    assert "skipping file[text] from evil: meta noop: expected bool, got str 'yes'" in logged
    assert "skipping file[list] from evil: meta: must be a mapping, got a list" in logged


class _Unreachable(MemWorld):
    """A world whose etcd stopped answering."""

    def collect(self, *args, **kwargs):
        from mgmt.errors import MgmtError

        raise MgmtError("etcd: connection refused")


def test_the_graph_wins_over_a_collected_name_and_etcd_down_keeps_the_last_collected(
    mgmt_log,
):
    from mgmt.engine.exchange import Collection

    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    # a has a "shared" export and a resource of its own named "shared@b": b's
    # "shared", renamed for its other path, would take that name.
    graph = parse_graph(graph_for("a", pattern="").replace("name: locala", "name: shared@b"))
    store["exported"]["b"] = {("file", "shared"): {"path": "/tmp/other-b", "content": "b's"}}
    world = MemWorld("a", store)
    publish(world, graph)
    collection = Collection(world)
    wanted = collection.wanted(graph)
    # a's own shared@b (path /tmp/locala) stays, not b's renamed "shared".
    assert wanted[("file", "shared@b")].params["path"] == "/tmp/locala"
    assert "collected file[shared@b] is not used: the graph has its own" in mgmt_log.getvalue()
    # etcd gone: the last collected set is kept, not dropped...
    before = dict(wanted)
    collection.world = _Unreachable("a", store)
    assert collection.wanted(graph) == before
    # ...and never over what the graph manages now (a resource of its own added
    # while etcd was away, on the path a kept one writes: they would fight).
    mine = parse_graph(graph_for("a", pattern="").replace("/tmp/locala", "/tmp/other-b"))
    wanted = collection.wanted(mine)
    assert ("file", "shared@b") not in wanted
    assert wanted[("file", "locala")].params["path"] == "/tmp/other-b"
    assert "is not used: the graph manages file:/tmp/other-b" in mgmt_log.getvalue()
    # ...but not for a graph that now collects with another pattern.
    moved = parse_graph(graph_for("a", pattern="/srv/other/"))
    assert collection.wanted(moved) == moved.local()


def _cycle_graph(tmp_path, other=None):
    """a's graph: a folder srv/ (X), a server whose root is srv/www, an edge from the
    server to X; it collects files into srv/. A collected "www" folder comes after X
    (its parent) and before the server (its root): a cycle only with it. ``other``:
    a file of a's own, outside all that."""
    srv = tmp_path / "srv"
    own = f"  - name: other\n    path: {other}\n    content: mine\n" if other else ""
    path = tmp_path / "a.yaml"
    path.write_text(f"""graph: a
resources:
  file:
  - name: X
    path: {srv}/
{own}  http:server:
  - name: s
    address: "127.0.0.1:0"
    root: {srv}/www
edges:
- from: {{kind: "http:server", name: s}}
  to: {{kind: file, name: X}}
collect:
- kind: file
  pattern: {srv}/
""")
    return path


def test_collected_resources_that_close_a_cycle_are_left_out_and_fail_the_run(
    tmp_path, capsys, mgmt_log
):
    """b's directory, collected into a's srv/, comes after a's srv/ (its parent) and
    before a's server (whose root it is), which the graph puts before srv/: a
    cycle only with it. a's own resources still run; the run says why it failed."""
    import json

    from mgmt.engine.agent import Agent
    from mgmt.settings import Settings

    path = _cycle_graph(tmp_path, other=tmp_path / "other")
    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    store["exported"]["b"] = {("file", "www"): {"path": "/export/www/"}}
    settings = Settings(file=path, no_server=True, converged_timeout=0, no_watch=True, json=True)
    world = MemWorld("a", store)
    agent = Agent(settings, world=world, state_dir=tmp_path / "state")
    assert agent.run() == 1
    # A detached cluster has no exit status to read: its converged report says so.
    graph_failures = [f for f in world.failures_log[-1] if f.kind == "graph"]
    assert [(f.name, f.error) for f in graph_failures] == [("a", agent.collection.error)]
    assert (tmp_path / "other").read_text() == "mine"  # outside the cycle: applied
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "failed"
    [error] = doc["errors"]
    assert error.startswith(f"{path}: dependency cycle: ") and "file[www]" in error
    assert "running without the collected resources" in mgmt_log.getvalue()


def test_a_cycle_that_a_new_export_closes_is_reported_while_idle(tmp_path):
    """A detached cluster's status comes from the converged reports: a cycle that
    an export made (or unmade) later must be reported, though nothing else ran."""
    import threading

    from mgmt.engine.agent import Agent
    from mgmt.settings import Settings
    from support.polling import wait_for

    path = _cycle_graph(tmp_path)
    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    world = MemWorld("a", store)
    settings = Settings(file=path, no_server=True, converged_timeout=-1, no_watch=True)
    agent = Agent(settings, world=world, state_dir=tmp_path / "state")
    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    try:
        assert wait_for(lambda: world.converged_log and world.converged_log[-1], 10)
        assert not [f for f in world.failures_log[-1] if f.kind == "graph"]
        store["exported"]["b"] = {("file", "www"): {"path": "/export/www/"}}
        for callback in list(store["watchers"]):
            callback()
        assert wait_for(
            lambda: [f.name for f in world.failures_log[-1] if f.kind == "graph"] == ["a"], 10
        ), world.failures_log[-3:]
    finally:
        agent.stop()
        runner.join(10)


def test_an_edit_applied_without_reading_uses_the_exports_as_last_read():
    # While etcd hangs each read waits for its timeouts: an edit alone (the watch
    # tells of every change since) is collected from the last read, as a read would.
    from mgmt.engine.exchange import Collection

    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    store["exported"]["b"] = {("file", "other"): {"path": "/tmp/other-b", "content": "b"}}
    collection = Collection(MemWorld("a", store))
    collection.wanted(parse_graph(graph_for("a", pattern="")))
    # The edit adds a resource of a's own named like b's export: renamed, as a read does.
    edited = parse_graph(graph_for("a", pattern="").replace("name: locala", "name: other"))
    fresh = Collection(MemWorld("a", store)).wanted(edited)
    collection.world = _Unreachable("a", store)  # it would fail: nothing read
    assert collection.wanted(edited, read=False) == fresh
    assert fresh[("file", "other@b")].params["path"] == "/tmp/other-b"
    # Other kinds collected: those were never read.
    other = parse_graph(graph_for("a", pattern="") + "- kind: noop\n  pattern: ''\n")
    assert collection.wanted(other, read=False) == other.local()
