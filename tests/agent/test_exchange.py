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


def _collecting(world):
    """A Collection, and a wait for its reader's next answer (a read asked is read
    on the reader's thread; wanted() meanwhile collects from the exports as last read)."""
    import threading

    from mgmt.engine.exchange import Collection

    answers = threading.Semaphore(0)
    collection = Collection(world, on_read=answers.release)

    def answered() -> None:
        assert answers.acquire(timeout=10), "the read asked was never answered"

    return collection, answered


def test_the_graph_wins_over_a_collected_name_and_etcd_down_keeps_the_last_collected(
    mgmt_log,
):
    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    # a has a "shared" export and a resource of its own named "shared@b": b's
    # "shared", renamed for its other path, would take that name.
    graph = parse_graph(graph_for("a", pattern="").replace("name: locala", "name: shared@b"))
    store["exported"]["b"] = {("file", "shared"): {"path": "/tmp/other-b", "content": "b's"}}
    world = MemWorld("a", store)
    publish(world, graph)
    collection, answered = _collecting(world)
    assert collection.wanted(graph) == graph.local()  # nothing read yet: the read follows
    assert collection.pending
    answered()
    wanted = collection.wanted(graph, read=False)
    # a's own shared@b (path /tmp/locala) stays, not b's renamed "shared".
    assert wanted[("file", "shared@b")].params["path"] == "/tmp/locala"
    assert "collected file[shared@b] is not used: the graph has its own" in mgmt_log.getvalue()
    # etcd gone: the last collected set is kept, not dropped...
    before = dict(wanted)
    collection.reader.world = _Unreachable("a", store)
    assert collection.wanted(graph) == before
    answered()
    assert "cannot collect exported resources (keeping the last ones)" in mgmt_log.getvalue()
    assert collection.wanted(graph, read=False) == before
    # ...and never over what the graph manages now (a resource of its own added
    # while etcd was away, on the path a kept one writes: they would fight).
    mine = parse_graph(graph_for("a", pattern="").replace("/tmp/locala", "/tmp/other-b"))
    wanted = collection.wanted(mine, read=False)
    assert [spec.params["path"] for spec in wanted.values()].count("/tmp/other-b") == 1
    assert wanted[("file", "locala")].params["path"] == "/tmp/other-b"
    assert "file:/tmp/other-b is already taken by file[locala] of a" in mgmt_log.getvalue()
    # A graph that now collects with another pattern: the exports as last read, moved.
    moved = parse_graph(graph_for("a", pattern="/srv/other/"))
    wanted = collection.wanted(moved, read=False)
    collected = {key: spec for key, spec in wanted.items() if key not in moved.local()}
    assert {spec.params["path"] for spec in collected.values()} == {
        "/srv/other/shared",
        "/srv/other/onlya",
        "/srv/other/other-b",
    }


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
    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    store["exported"]["b"] = {("file", "other"): {"path": "/tmp/other-b", "content": "b"}}
    collection, answered = _collecting(MemWorld("a", store))
    collection.wanted(parse_graph(graph_for("a", pattern="")))
    answered()
    # The edit adds a resource of a's own named like b's export: renamed, as a read does.
    edited = parse_graph(graph_for("a", pattern="").replace("name: locala", "name: other"))
    fresh, fresh_answered = _collecting(MemWorld("a", store))
    fresh.wanted(edited)
    fresh_answered()
    fresh_wanted = fresh.wanted(edited, read=False)
    collection.reader.world = _Unreachable("a", store)  # it would fail: nothing read
    assert collection.wanted(edited, read=False) == fresh_wanted
    assert fresh_wanted[("file", "other@b")].params["path"] == "/tmp/other-b"
    # Other kinds collected: those were never read. A read is asked, and the
    # kinds read before are collected meanwhile.
    other = parse_graph(graph_for("a", pattern="") + "- kind: noop\n  pattern: ''\n")
    wanted = collection.wanted(other, read=False)
    assert [key for key in wanted if key not in other.local()] == [("file", "other")]
    answered()  # the read asked failed: the same again
    assert collection.wanted(other, read=False) == wanted
    collection.close()
    fresh.close()


class _Hanging(MemWorld):
    """A world whose reads of the exports hang while ``hang`` is set (etcd stopped)
    until ``released``, or fail while ``failing`` is set; counting them."""

    def __init__(self, hostname, store):
        import threading

        super().__init__(hostname, store)
        self.hang = threading.Event()
        self.released = threading.Event()
        self.failing = threading.Event()
        self.reads = 0

    def collect(self, *args, **kwargs):
        from mgmt.errors import MgmtError

        self.reads += 1
        if self.hang.is_set():
            self.released.wait(30)
        if self.failing.is_set():
            raise MgmtError("etcd: timed out")
        return super().collect(*args, **kwargs)


def _run(agent):
    import threading

    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    return runner


def test_an_edit_while_a_read_hangs_is_applied_at_once_and_converged_waits_for_the_read(
    tmp_path,
):
    """A watch event's read hung on the planner: an edit then waited for it. The
    read now hangs on its own thread; until its answer is applied the agent does
    not report converged (a remote run's initiator would stop the run)."""
    from mgmt.engine.agent import Agent
    from mgmt.settings import Settings
    from support.polling import wait_for, wait_until

    col = tmp_path / "col"
    graph = tmp_path / "g.yaml"

    def write(word):
        graph.write_text(
            f"graph: g\nresources:\n  file:\n  - {{name: f, path: '{tmp_path}/f', "
            f"content: \"{word}\"}}\ncollect:\n- {{kind: file, pattern: '{col}/'}}\n"
        )

    write("one")
    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    store["exported"]["b"] = {("file", "x"): {"path": "/x", "content": "b's x"}}
    world = _Hanging("a", store)
    settings = Settings(file=graph, no_server=True, converged_timeout=-1)
    agent = Agent(settings, world=world, state_dir=tmp_path / "state")
    runner = _run(agent)
    try:
        wait_until(lambda: (col / "x").read_text() == "b's x", what="b's x collected")
        assert wait_for(lambda: world.converged_log[-1:] == [True])
        world.hang.set()
        store["exported"]["b"][("file", "y")] = {"path": "/y", "content": "b's y"}
        reads = world.reads
        for callback in list(store["watchers"]):
            callback()  # b's export changed: read again, which hangs
        wait_until(lambda: world.reads > reads, what="the read")
        write("two")
        wait_until(lambda: (tmp_path / "f").read_text() == "two", 5, "the edit applied")
        assert wait_for(lambda: world.converged_log[-1] is False)  # the read is under way
        assert not (col / "y").exists()
        # Said converged only once what the read found is applied.
        seen = []
        world.released.set()
        assert wait_for(
            lambda: world.converged_log[-1] and not seen.append((col / "y").exists())
        ), world.converged_log
        assert seen == [True]
    finally:
        world.released.set()
        agent.stop()
        runner.join(10)
    assert not runner.is_alive()


def test_reads_that_fail_end_and_the_agent_converges_without_them(tmp_path, mgmt_log):
    """etcd refusing: a read that failed is not asked again at each of its own
    answers (it would be read for ever, and the agent never converge)."""
    from mgmt.engine.agent import Agent
    from mgmt.settings import Settings

    graph = tmp_path / "g.yaml"
    graph.write_text(
        f"graph: g\nresources:\n  file:\n  - {{name: f, path: '{tmp_path}/f'}}\n"
        f"collect:\n- {{kind: file, pattern: '{tmp_path}/col/'}}\n"
    )
    world = _Unreachable("a", {"exported": {}, "converged": {}, "watchers": []})
    settings = Settings(file=graph, no_server=True, converged_timeout=0, no_watch=True)
    agent = Agent(settings, world=world, state_dir=tmp_path / "state")
    runner = _run(agent)
    runner.join(10)
    alive = runner.is_alive()
    agent.stop()
    runner.join(10)
    assert not alive, mgmt_log.getvalue()
    assert agent.converged
    assert (tmp_path / "f").exists()
    logged = mgmt_log.getvalue()
    assert logged.count("cannot collect exported resources (keeping the last ones)") <= 2, logged


def test_a_read_that_failed_after_a_watch_event_is_tried_again_until_it_succeeds(
    tmp_path, mgmt_log
):
    """The watch told of a change, the read it asked failed (etcd hung past the
    client's timeouts): the watch does not tell again, so the read is retried."""
    from mgmt.engine.agent import Agent
    from mgmt.settings import Settings
    from support.polling import wait_for, wait_until

    col = tmp_path / "col"
    graph = tmp_path / "g.yaml"
    graph.write_text(f"graph: g\nresources: {{}}\ncollect:\n- {{kind: file, pattern: '{col}/'}}\n")
    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    store["exported"]["b"] = {("file", "x"): {"path": "/x", "content": "b's x"}}
    world = _Hanging("a", store)
    settings = Settings(file=graph, no_server=True, converged_timeout=-1, no_watch=True)
    agent = Agent(settings, world=world, state_dir=tmp_path / "state")
    runner = _run(agent)
    try:
        wait_until(lambda: (col / "x").read_text() == "b's x", what="b's x collected")
        world.failing.set()
        store["exported"]["b"][("file", "y")] = {"path": "/y", "content": "b's y"}
        for callback in list(store["watchers"]):
            callback()
        assert wait_for(lambda: "cannot collect exported resources" in mgmt_log.getvalue())
        reads = world.reads
        assert wait_for(lambda: world.reads >= reads + 2)  # tried again, said once
        assert mgmt_log.getvalue().count("cannot collect exported resources") == 1
        assert not (col / "y").exists()
        world.failing.clear()
        wait_until(lambda: (col / "y").read_text() == "b's y", what="b's y collected")
        assert "collected exported resources again" in mgmt_log.getvalue()
    finally:
        agent.stop()
        runner.join(10)
    assert not runner.is_alive()


class _SlowPublish(MemWorld):
    """A world whose publishing hangs until ``released`` (etcd stopped for it)."""

    def __init__(self, hostname, store):
        import threading

        super().__init__(hostname, store)
        self.released = threading.Event()

    def export(self, resources) -> None:
        self.released.wait(30)
        super().export(resources)


def test_a_graph_that_collects_its_own_export_is_not_converged_before_it_is_published(
    tmp_path,
):
    """The publish runs on a thread of its own: the first read, made meanwhile,
    found none of this host's exports, and the agent said converged until the
    publish's watch event brought them (an initiator may stop the run then)."""
    from mgmt.engine.agent import Agent
    from mgmt.settings import Settings
    from support.polling import wait_for, wait_until

    col = tmp_path / "col"
    graph = tmp_path / "g.yaml"
    graph.write_text(
        f"graph: g\nresources:\n  file:\n  - {{name: f, path: '{tmp_path}/f'}}\n"
        f"  - {{name: '@@s', path: '/s', content: mine}}\n"
        f"collect:\n- {{kind: file, pattern: '{col}/'}}\n"
    )
    world = _SlowPublish("a", {"exported": {}, "converged": {}, "watchers": []})
    settings = Settings(file=graph, no_server=True, converged_timeout=-1, no_watch=True)
    agent = Agent(settings, world=world, state_dir=tmp_path / "state")
    runner = _run(agent)
    seen = []
    try:
        wait_until(lambda: (tmp_path / "f").exists(), what="the graph applied")
        assert wait_for(lambda: world.converged_log)  # the first report: not converged
        assert not wait_for(lambda: True in world.converged_log, 1), world.converged_log
        world.released.set()
        said = lambda: True in world.converged_log  # noqa: E731
        assert wait_for(lambda: said() and not seen.append((col / "s").exists()))
    finally:
        world.released.set()
        agent.stop()
        runner.join(10)
    assert seen == [True]
    assert (col / "s").read_text() == "mine"


class _LaggingWatch(MemWorld):
    """A world whose watch tells of an export only once ``released`` (etcd's watch
    stream may lag the answer to the write), and whose converged reports note the
    collected file's content at that moment."""

    def __init__(self, hostname, store, collected):
        import threading

        super().__init__(hostname, store)
        self.released = threading.Event()
        self.collected = collected
        self.reports = []

    def export(self, resources) -> None:
        import threading

        watchers, self.store["watchers"] = self.store["watchers"], []
        try:
            super().export(resources)  # stored, and no watcher told
        finally:
            self.store["watchers"] = watchers
        for callback in list(watchers):
            threading.Thread(
                target=lambda c=callback: self.released.wait(30) and c(), daemon=True
            ).start()

    def set_converged(self, converged: bool, failures=()) -> None:
        super().set_converged(converged, failures)
        path = self.collected
        self.reports.append((converged, path.read_text() if path.exists() else None))


def test_an_edit_of_a_graph_that_collects_its_own_export_is_not_converged_before_it_is_collected(
    tmp_path,
):
    """Once the edit's publish was done nothing held "converged" until the watch
    told of it: the agent said converged with its own export collected as it was
    before the edit (an initiator with --converged-timeout 0 stops the run then)."""
    from mgmt.engine.agent import Agent
    from mgmt.settings import Settings
    from support.polling import wait_for, wait_until

    col = tmp_path / "col"
    graph = tmp_path / "g.yaml"
    text = (
        f"graph: g\nresources:\n  file:\n  - {{name: f, path: '{tmp_path}/f'}}\n"
        f"  - {{name: '@@s', path: '/s', content: mine}}\n"
        f"collect:\n- {{kind: file, pattern: '{col}/'}}\n"
    )
    graph.write_text(text)
    world = _LaggingWatch("a", {"exported": {}, "converged": {}, "watchers": []}, col / "s")
    world.released.set()  # the first publish's event comes at once
    settings = Settings(file=graph, no_server=True, converged_timeout=-1)
    agent = Agent(settings, world=world, state_dir=tmp_path / "state")
    runner = _run(agent)
    try:
        wait_until(lambda: (True, "mine") in world.reports, what="converged on the first graph")
        world.released.clear()  # from now on the watch lags
        edited_at = len(world.reports)
        graph.write_text(text.replace("content: mine", "content: mine2"))
        assert wait_for(lambda: (col / "s").exists() and (col / "s").read_text() == "mine2")
        wait_until(lambda: (True, "mine2") in world.reports, what="converged on the edit")
    finally:
        world.released.set()
        agent.stop()
        runner.join(10)
    after = world.reports[edited_at:]
    assert (True, "mine") not in after, after


def test_a_rename_onto_another_hosts_export_of_that_name_skips_it_and_says_so(mgmt_log):
    """a exports exec x and exec "x@b", b exports exec x: b's x, renamed x@b, used to
    take the place of a's x@b without a word, so a's never ran anywhere."""
    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    here = MemWorld("c", store)
    store["exported"]["a"] = {
        ("exec", "x"): {"cmd": "echo a-x"},
        ("exec", "x@b"): {"cmd": "echo a-x@b"},
    }
    store["exported"]["b"] = {("exec", "x"): {"cmd": "echo b-x"}}
    got = collected(here, parse_graph("graph: g\nresources: {}\ncollect:\n- kind: exec\n"))
    assert {key: (spec.params["cmd"], spec.origin) for key, spec in got.items()} == {
        ("exec", "x"): ("echo a-x", "a"),
        ("exec", "x@b"): ("echo a-x@b", "a"),
    }
    assert (
        "skipping exec[x] from b: exec[x@b], the name it would be collected under, "
        "is collected from a" in mgmt_log.getvalue()
    )


def test_a_clash_is_said_once_while_it_stays_and_again_when_it_comes_back(mgmt_log):
    """Every read of the exports (any host's change) and every edit collect again:
    each skipped export was said again each time, a warning per clash per change."""
    store: dict = {"exported": {}, "converged": {}, "watchers": []}
    clash = {("file", "x"): {"path": "/srv/in/x", "content": "b"}}
    store["exported"]["a"] = {("file", "x"): {"path": "/srv/in/x", "content": "a"}}
    store["exported"]["b"] = dict(clash)
    collection, answered = _collecting(MemWorld("c", store))
    graph = parse_graph("graph: g\nresources: {}\ncollect:\n- kind: file\n")
    said = "skipping file[x] from b: file:/srv/in/x is already taken by file[x] from a"

    def collect_again() -> dict:
        collection.wanted(graph)
        answered()
        return collection.wanted(graph, read=False)

    try:
        for _ in range(3):  # three reads, as three changes elsewhere would bring
            assert set(collect_again()) == {("file", "x")}
        assert mgmt_log.getvalue().count(said) == 1
        store["exported"]["b"] = {("file", "y"): {"path": "/srv/in/y", "content": "b"}}
        assert set(collect_again()) == {("file", "x"), ("file", "y")}
        store["exported"]["b"] = dict(clash)
        collect_again()
        collect_again()
        assert mgmt_log.getvalue().count(said) == 2
    finally:
        collection.close()
