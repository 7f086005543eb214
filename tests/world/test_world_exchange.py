"""EtcdWorld: exports, collection, watches and converged keys against a real etcd."""

from __future__ import annotations

import base64
import json
import socket

import pytest
from recorder import WAIT, Recorder
from tcpproxy import TcpProxy

from mgmt.world.api import ExportedResource, Failure
from mgmt.world.client import EtcdClient
from mgmt.world.exchange import EtcdWorld
from mgmt.world.watch import PrefixWatch


@pytest.fixture
def world(etcd, client):
    worlds = []

    def make(hostname: str, url: str = "") -> EtcdWorld:
        made = EtcdWorld(EtcdClient([url or etcd.client_url]), hostname)
        worlds.append(made)
        return made

    yield make
    for made in worlds:
        made.close()


def revision(client) -> int:
    return client.range("/", count_only=True)[0]


def stored(client, prefix="/_mgmt/exported/"):
    return {key: json.loads(value) for key, value, _ in client.range(prefix, prefix=True)[1]}


def test_export_writes_json_under_the_host(world, client):
    a = world("a")
    a.export({("file", "/tmp/file2a"): {"path": "/tmp/file2a", "content": "i am file2a\n"}})
    assert stored(client) == {
        "/_mgmt/exported/a/resources/file//tmp/file2a": {
            "path": "/tmp/file2a",
            "content": "i am file2a\n",
        }
    }


def test_export_is_one_transaction_that_drops_stale_keys(world, client):
    a, b = world("a"), world("b")
    b.export({("noop", "keep"): {}})
    a.export({("file", "f1"): {"n": 1}, ("file", "f2"): {"n": 2}, ("noop", "n"): {}})
    before = revision(client)
    a.export({("file", "f1"): {"n": 10}, ("noop", "n"): {}})
    # One revision for the put of f1 and the delete of f2 together: one transaction.
    assert revision(client) == before + 1
    assert stored(client) == {
        "/_mgmt/exported/a/resources/file/f1": {"n": 10},
        "/_mgmt/exported/a/resources/noop/n": {},
        "/_mgmt/exported/b/resources/noop/keep": {},
    }
    a.export({})
    assert stored(client) == {"/_mgmt/exported/b/resources/noop/keep": {}}


def test_unchanged_export_writes_nothing_and_fires_no_watch(world, client):
    a, b = world("a"), world("b")
    resources = {("file", "f"): {"content": "x", "mode": "0644"}}
    a.export(resources)
    seen = Recorder()
    cancel = b.watch_exported(seen)
    before = revision(client)
    a.export({("file", "f"): {"mode": "0644", "content": "x"}})  # same value, other key order
    assert revision(client) == before
    # A later real change is the first event the watch reports.
    a.export({("file", "f"): {"content": "y", "mode": "0644"}})
    assert seen.wait_for(1)
    assert seen.calls == 1
    cancel()


def test_collect_across_hosts_filters_kinds(world):
    a, b = world("a"), world("b")
    a.export({("file", "file2a"): {"path": "/tmp/file2a"}, ("noop", "x"): {}})
    b.export({("file", "file2b"): {"path": "/tmp/file2b"}})
    expected = [
        ExportedResource("a", "file", "file2a", {"path": "/tmp/file2a"}),
        ExportedResource("b", "file", "file2b", {"path": "/tmp/file2b"}),
    ]
    assert a.collect(["file"]) == expected
    assert b.collect({"file"}) == expected
    assert [r.name for r in b.collect(["noop", "file"])] == ["file2a", "file2b", "x"]
    assert a.collect([]) == []


def test_collect_skips_values_that_are_not_json_objects(world, client):
    client.put("/_mgmt/exported/c/resources/file/bad", "{not json")
    client.put("/_mgmt/exported/c/resources/file/list", "[1]")
    client.put("/_mgmt/exported/c/junk", "{}")
    client.put("/_mgmt/exported/c/resources/file/ok", '{"a": 1}')
    assert world("a").collect(["file"]) == [ExportedResource("c", "file", "ok", {"a": 1})]


def test_watch_exported_fires_on_other_hosts_and_cancels(world, client):
    a, b = world("a"), world("b")
    seen = Recorder()
    cancel = a.watch_exported(seen)
    b.export({("file", "f"): {"v": 1}})
    assert seen.wait_for(1)
    b.export({})
    assert seen.wait_for(2)
    cancel()
    calls = seen.calls
    b.export({("file", "g"): {}})
    # A fresh watch sees this change, so the cancelled one had every chance to.
    later = Recorder()
    cancel_later = a.watch_exported(later)
    b.export({("file", "g"): {"v": 2}})
    assert later.wait_for(1)
    cancel_later()
    assert seen.calls == calls


def test_watch_resumes_after_the_link_drops_without_losing_changes(etcd, world, client):
    proxy = TcpProxy("127.0.0.1", int(etcd.client_url.rsplit(":", 1)[1]))
    try:
        watcher = world("a", proxy.url)
        seen = Recorder()
        watch = watcher.watch_exported(seen)
        assert watch.connected.wait(WAIT)
        proxy.refusing.set()
        proxy.drop()
        # Made while the watcher is cut off: it must still hear of it.
        b = world("b")
        b.export({("file", "during"): {}})
        proxy.refusing.clear()
        assert seen.wait_for(1)
        assert watch.connected.wait(WAIT)
        b.export({("file", "after"): {}})
        assert seen.wait_for(2)
        watch.cancel()
    finally:
        proxy.close()


def test_converged_written_only_on_change(world, client):
    a, b = world("a"), world("b")
    seen = Recorder()
    cancel = b.watch_converged(seen)
    a.set_converged(False)
    assert seen.wait_for(1)
    before = revision(client)
    a.set_converged(False)
    assert revision(client) == before
    b.set_converged(True)
    a.set_converged(True)
    assert seen.wait_for(3)
    assert a.converged_hosts() == {"a": True, "b": True}
    assert stored(client, "/_mgmt/converged/") == {
        "/_mgmt/converged/a": True,
        "/_mgmt/converged/b": True,
    }
    cancel()


def test_converged_state_already_stored_is_not_rewritten(world, client):
    """A restarted agent whose key already says the same thing fires no event."""
    world("a").set_converged(True)
    before = revision(client)
    world("a").set_converged(True)
    assert revision(client) == before


def test_failures_are_kept_only_while_converged_and_cleared_once_gone(world, client):
    a = world("a")
    broken = Failure("exec", "broken", "exit status 1")
    a.set_converged(False, [broken])  # busy: what failed before is not news yet
    assert stored(client, "/_mgmt/failed/") == {}
    a.set_converged(True, [broken])
    assert stored(client, "/_mgmt/failed/") == {
        "/_mgmt/failed/a": [{"kind": "exec", "name": "broken", "error": "exit status 1"}]
    }
    assert stored(client, "/_mgmt/converged/") == {"/_mgmt/converged/a": True}
    before = revision(client)
    a.set_converged(True, [broken])
    assert revision(client) == before
    a.set_converged(False)  # busy again: the failures go with the converged state
    assert stored(client, "/_mgmt/failed/") == {}
    a.set_converged(True, [broken])
    a.set_converged(True)  # an edit fixed it: converged clean
    assert stored(client, "/_mgmt/failed/") == {}
    assert stored(client, "/_mgmt/converged/") == {"/_mgmt/converged/a": True}


def test_close_stops_watches(world, client):
    a, b = world("a"), world("b")
    seen = Recorder()
    watch = a.watch_exported(seen)
    a.close()
    assert not watch.running
    b.export({("file", "x"): {}})
    assert seen.calls == 0


def test_watch_reports_a_change_when_history_was_compacted_while_away(etcd, world, client):
    proxy = TcpProxy("127.0.0.1", int(etcd.client_url.rsplit(":", 1)[1]))
    try:
        seen = Recorder()
        watch = world("a", proxy.url).watch_exported(seen)
        assert watch.connected.wait(WAIT)
        proxy.refusing.set()
        proxy.drop()
        b = world("b")
        b.export({("file", "gone"): {}})
        b.export({})
        client.call("kv/compaction", {"revision": revision(client), "physical": True})
        proxy.refusing.clear()
        assert seen.wait_for(1)
        assert watch.connected.wait(WAIT)
        b.export({("file", "next"): {}})
        assert seen.wait_for(2)
        watch.cancel()
    finally:
        proxy.close()


def test_a_change_between_collect_and_watch_is_not_lost(world):
    """The engine collects, then starts watching: a change in between still fires."""
    a, b = world("a"), world("b")
    assert a.collect(["file"]) == []
    b.export({("file", "early"): {}})
    seen = Recorder()
    cancel = a.watch_exported(seen)
    assert seen.wait_for(1)
    assert [r.name for r in a.collect(["file"])] == ["early"]
    cancel()


def test_a_converged_change_between_read_and_watch_is_not_lost(world):
    a, b = world("a"), world("b")
    assert a.converged_hosts() == {}
    b.set_converged(True)
    seen = Recorder()
    cancel = a.watch_converged(seen)
    assert seen.wait_for(1)
    assert a.converged_hosts() == {"b": True}
    cancel()


def test_watch_on_a_silent_seed_gives_up_and_uses_the_live_one(etcd):
    """A seed that accepts but never answers must not hold the watch for ever."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = EtcdClient([silent_url, etcd.client_url], read_timeout=0.5)
        # The watch's first stream goes to the first seed: the silent one.
        after, _ = EtcdClient([etcd.client_url]).range("/_mgmt/exported/", count_only=True)
        seen = Recorder()
        watch = PrefixWatch(client, "/_mgmt/exported/", seen, after)
        assert watch.connected.wait(WAIT)
        assert client.url == etcd.client_url
        EtcdClient([etcd.client_url]).put("/_mgmt/exported/b/resources/file/f", "{}")
        assert seen.wait_for(1)
        watch.cancel()


def test_collect_reads_values_within_the_graph_bounds(world, client, mgmt_log):
    # json.loads raised RecursionError on this, which no caller caught: every
    # collecting agent failed at start ("internal error").
    deep = '{"content": ' + "[" * 100_000 + "]" * 100_000 + "}"
    client.put("/_mgmt/exported/c/resources/file/deep", deep)
    client.put("/_mgmt/exported/c/resources/file/nul", '{"path": "/tmp/a\\u0000b"}')
    client.put("/_mgmt/exported/c/resources/file/n\n06:00:00 agent: converged", "{not json")
    client.put("/_mgmt/exported/c/resources/file/ok", '{"a": 1}')
    assert world("a").collect(["file"]) == [ExportedResource("c", "file", "ok", {"a": 1})]
    logged = mgmt_log.getvalue()
    assert "file/deep': values are nested more than 64 levels deep" in logged
    assert "file/nul': a string holds a NUL character" in logged
    assert "file/n\\n06:00:00 agent: converg...: not JSON: " in logged  # cut at 60
    assert not any(line.startswith("06:00:00 agent") for line in logged.splitlines())


def test_keys_and_values_that_are_not_utf8_are_skipped_and_own_ones_replaced(world, client):
    # etcd holds bytes: one value that was not UTF-8 anywhere under the prefix
    # failed every collecting agent at start ("internal error: UnicodeDecodeError").
    from mgmt.engine.exchange import collected
    from mgmt.graph import parse_graph
    from mgmt.world.client import encode

    def put_raw(key: bytes, value: bytes) -> None:
        raw = {"key": base64.b64encode(key).decode(), "value": base64.b64encode(value).decode()}
        client.call("kv/put", raw)

    put_raw(b"/_mgmt/exported/c/resources/file/bin", b"\xff\xfe")
    put_raw(b"/_mgmt/exported/c/resources/file/str", b'{"path": "/tmp/\xff"}')
    put_raw(b"/_mgmt/exported/c/resources/file/n\xff", b'{"path": "/tmp/n"}')
    put_raw(b"/_mgmt/exported/a/resources/file/old\xff", b"{}")
    client.put("/_mgmt/exported/c/resources/file/ok", '{"path": "/tmp/ok"}')
    a = world("a")
    graph = parse_graph("graph: g\ncollect:\n- kind: file\n  pattern: ''\n")
    assert set(collected(a, graph)) == {("file", "ok")}

    a.export({("file", "new"): {"path": "/tmp/new"}})  # the stray key of its own goes
    mine = client.call(
        "kv/range", {"key": encode("/_mgmt/exported/a/"), "range_end": encode("/_mgmt/exported/a0")}
    )
    assert [base64.b64decode(kv["key"]) for kv in mine["kvs"]] == [
        b"/_mgmt/exported/a/resources/file/new"
    ]


def test_a_watch_on_a_cluster_recreated_under_its_seed_resyncs_and_exports_again(
    etcd, world, client, tmp_path
):
    # The seed's cluster recreated empty (revision 1): the watch asked for revisions
    # after the old one and heard nothing till the new cluster got there, and this
    # host's exports were gone from it until the agent restarted.
    from mgmt.world.server import EmbeddedEtcd

    for i in range(30):  # the old cluster well ahead of a new one
        client.put(f"/_mgmt/pad/{i}", "x")
    proxy = TcpProxy("127.0.0.1", int(etcd.client_url.rsplit(":", 1)[1]))
    try:
        with EmbeddedEtcd(tmp_path / "new" / "etcd") as new:
            a = world("a", proxy.url)
            a.export({("file", "mine"): {"n": 1}})
            a.collect(["file"])
            seen = Recorder()
            watch = a.watch_exported(seen)
            assert watch.connected.wait(WAIT)
            proxy.refusing.set()
            proxy.target = ("127.0.0.1", int(new.client_url.rsplit(":", 1)[1]))
            proxy.drop()
            proxy.refusing.clear()
            assert seen.wait_for(1)  # told to read everything again
            fresh = EtcdClient([new.client_url])
            assert stored(fresh) == {"/_mgmt/exported/a/resources/file/mine": {"n": 1}}
            world("b", new.client_url).export({("file", "theirs"): {}})
            assert seen.wait_for(2)
            assert [r.name for r in a.collect(["file"])] == ["mine", "theirs"]
            fresh.close()
            watch.cancel()
    finally:
        proxy.close()


def test_thousands_of_failures_are_cut_and_the_host_still_recorded_converged(world, client):
    # 3,000 failures of 500 characters were one 1.6 MB value, more than etcd takes
    # in one request: neither key was written, and the host never showed converged.
    a = world("a")
    a.set_converged(True, [Failure("file", f"f{i:04}", "e" * 500) for i in range(3000)])
    assert stored(client, "/_mgmt/converged/") == {"/_mgmt/converged/a": True}
    failed = stored(client, "/_mgmt/failed/")["/_mgmt/failed/a"]
    assert 100 < len(failed) < 3000
    assert failed[0] == {"kind": "file", "name": "f0000", "error": "e" * 500}
    listed = len(failed) - 1
    assert failed[-2]["name"] == f"f{listed - 1:04}"
    assert failed[-1] == {
        "kind": "...",
        "name": f"{3000 - listed} more",
        "error": "see the host's log",
    }


def test_a_watch_on_a_seed_that_hangs_goes_on_through_another(etcd, client, monkeypatch):
    # A seed that stops answering (SIGSTOP, a stuck disk) keeps the stream open
    # and TCP keepalive sees no fault: the watch waited on it for ever while the
    # other seeds of the cluster were fine, and the agent heard of no change.
    from mgmt.world import watch as watch_module

    monkeypatch.setattr(watch_module, "HEARTBEAT", 0.2, raising=False)
    proxy = TcpProxy("127.0.0.1", int(etcd.client_url.rsplit(":", 1)[1]))
    seeds = [proxy.url, etcd.client_url]  # two ways to one cluster, as two members
    a = EtcdWorld(EtcdClient(seeds, connect_timeout=1, read_timeout=1), "a")
    try:
        a.collect(["file"])
        seen = Recorder()
        watch = a.watch_exported(seen)
        assert watch.connected.wait(WAIT)
        proxy.thawed.clear()  # the first seed hangs
        client.put("/_mgmt/exported/b/resources/file/f", "{}")
        assert seen.wait_for(1)
        assert a.client.url == etcd.client_url
    finally:
        proxy.thawed.set()
        a.close()
        proxy.close()


def test_a_watch_reconnecting_to_a_seed_that_hangs_is_cancelled_at_once(etcd, client):
    # Its stream lost, the watch asks the seed whether it answers: a seed that
    # hangs (SIGSTOPped, a stalled tunnel) held that call, and cancel() (an agent's
    # ^C) waited 5 s for it; the world's close as long again.
    import time

    from support.polling import wait_until

    proxy = TcpProxy("127.0.0.1", int(etcd.client_url.rsplit(":", 1)[1]))
    a = EtcdWorld(EtcdClient([proxy.url]), "a")
    try:
        watch = a.watch_exported(Recorder())
        assert watch.connected.wait(WAIT)
        proxy.thawed.clear()
        proxy.drop()
        wait_until(lambda: not watch.connected.is_set(), WAIT, "the stream to end")
        wait_until(lambda: proxy.link_count() >= 1, WAIT, "a call to the seed that hangs")
        began = time.monotonic()
        watch.cancel()
        a.close()
        assert time.monotonic() - began < 2.5
    finally:
        proxy.thawed.set()
        proxy.close()
