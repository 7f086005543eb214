"""The etcd mgmt starts compacts its history by itself, and watches that fell behind carry on.

Without compaction every revision (converged keys, exports, hostname holds) is
kept for the life of the cluster, until etcd's backend quota raises NOSPACE
and every write fails. The default retention is an hour; these tests set it
to one second (EmbeddedEtcd's compaction_retention) so that etcd's own
periodic compactor runs while they watch, and poll for its outcome.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from recorder import WAIT, Recorder
from tcpproxy import TcpProxy

from mgmt.errors import WorldError
from mgmt.remote.orchestration.etcd import RunEtcd
from mgmt.settings import Settings
from mgmt.world import open_world
from mgmt.world.client import EtcdClient
from mgmt.world.exchange import EtcdWorld
from mgmt.world.server import COMPACTION_RETENTION, EmbeddedEtcd
from mgmt.world.watch import PrefixWatch
from support import require_tools
from support.polling import wait_until

SHORT = "1s"
# etcd's periodic compactor first runs one retention after its start, then every
# retention, to the revision it had one retention before: a few seconds at most.
COMPACTED_WITHIN = 20.0
PREFIX = "/_mgmt/exported/"


@pytest.fixture
def etcd(tmp_path):
    require_tools("etcd")
    with EmbeddedEtcd(tmp_path / "etcd", compaction_retention=SHORT) as server:
        yield server


def revision(client: EtcdClient) -> int:
    return client.range("/", count_only=True)[0]


def compacted(client: EtcdClient, at: int) -> bool:
    """Whether a range read at revision ``at`` is refused as compacted."""
    try:
        client.call("kv/range", {"key": "Lw==", "revision": at})  # "/"
    except WorldError as error:
        if "compacted" in str(error):
            return True
        raise
    return False


COMPACTING = [b"--auto-compaction-mode=periodic", b"--auto-compaction-retention=1h"]


def etcd_child(data_dir: Path) -> tuple:
    """(pid, command line) of this process's etcd child serving ``data_dir``."""
    for entry in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError):
            continue
        if ppid == os.getpid() and f"--data-dir={data_dir}".encode() in argv:
            return int(entry), argv
    raise AssertionError(f"no etcd child serving {data_dir}")


def compacts(argv: list) -> bool:
    return all(flag in argv for flag in COMPACTING)


def test_the_embedded_etcd_compacts_by_default(tmp_path):
    """EmbeddedEtcd with no argument: compaction on, an hour kept."""
    require_tools("etcd")
    assert COMPACTION_RETENTION == "1h"
    with EmbeddedEtcd(tmp_path / "etcd"):
        assert compacts(etcd_child(tmp_path / "etcd")[1])


def test_the_agents_etcd_compacts_and_so_does_it_started_again(tmp_path, mgmt_log):
    """The etcd `mgmt run` starts without --seeds, and again after it was killed."""
    require_tools("etcd")
    with open_world(Settings(hostname="a"), tmp_path):
        pid, argv = etcd_child(tmp_path / "etcd")
        assert compacts(argv)
        os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: "embedded etcd serving again" in mgmt_log.getvalue(),
            20,
            "the agent to start its etcd again",
        )
        assert compacts(etcd_child(tmp_path / "etcd")[1])


def test_the_initiators_etcd_compacts(tmp_path):
    """The run's etcd of `mgmt run --remote`, started on the first tunnel's dial."""
    require_tools("etcd")
    run = RunEtcd(tmp_path)
    try:
        run.target()
        assert compacts(etcd_child(tmp_path / "etcd")[1])
    finally:
        run.close()


def test_history_older_than_the_retention_is_compacted(etcd):
    client = EtcdClient([etcd.client_url])
    try:
        client.put(f"{PREFIX}a/resources/file/f", json.dumps({"content": "1"}))
        old = revision(client)
        client.put(f"{PREFIX}a/resources/file/f", json.dumps({"content": "2"}))
        assert not compacted(client, old)  # the old value is there at first
        # etcd compacts to the revision it had a retention ago: once that is past
        # `old`, a read at `old` is refused. Writes go on meanwhile, as agents' do.
        wait_until(
            lambda: client.put(f"{PREFIX}a/resources/noop/tick", "{}") or compacted(client, old),
            COMPACTED_WITHIN,
            f"etcd to compact its history past revision {old}",
        )
        with pytest.raises(WorldError, match="required revision has been compacted"):
            client.call("kv/range", {"key": "Lw==", "revision": old})
        # The current state is whole.
        assert json.loads(client.range(f"{PREFIX}a/resources/file/f")[1][0][1]) == {"content": "2"}
    finally:
        client.close()


def test_a_collector_that_was_cut_off_past_the_retention_sees_the_current_exports(etcd):
    """A collector's watch resumes from its last revision, which etcd compacted away
    meanwhile: it is told of a change, and its collect reads the exports as they are."""
    proxy = TcpProxy("127.0.0.1", int(etcd.client_url.rsplit(":", 1)[1]))
    exporter = EtcdWorld(EtcdClient([etcd.client_url]), "a")
    collector = EtcdWorld(EtcdClient([proxy.url]), "b")
    direct = EtcdClient([etcd.client_url])
    try:
        exporter.export({("file", "first"): {"content": "1"}})
        assert [r.name for r in collector.collect(["file"])] == ["first"]
        seen = Recorder()
        watch = collector.watch_exported(seen)
        assert isinstance(watch, PrefixWatch) and watch.connected.wait(WAIT)
        behind = watch.revision
        proxy.refusing.set()
        proxy.drop()
        wait_until(lambda: not watch.connected.is_set(), WAIT, "the collector to be cut off")
        exporter.export({("file", "second"): {"content": "2"}})
        exporter.export({("file", "second"): {"content": "3"}, ("file", "third"): {}})
        wait_until(
            lambda: direct.put("/_mgmt/converged/a", "true") or compacted(direct, behind + 1),
            COMPACTED_WITHIN,
            f"etcd to compact the history after revision {behind}",
        )
        calls = seen.calls
        proxy.refusing.clear()
        assert seen.wait_for(calls + 1)
        assert watch.connected.wait(WAIT)
        collected = {r.name: r.params for r in collector.collect(["file"])}
        assert collected == {"second": {"content": "3"}, "third": {}}
        # And it watches on from the present.
        calls = seen.calls
        exporter.export({})
        assert seen.wait_for(calls + 1)
        assert collector.collect(["file"]) == []
    finally:
        collector.close()
        exporter.close()
        direct.close()
        proxy.close()


def test_the_detached_members_are_given_the_same_compaction():
    """detached_etcd (shipped to the hosts without mgmt) keeps its own copy of the flags."""
    from mgmt.remote.protocol import detached_etcd

    members = detached_etcd.AUTO_COMPACTION
    assert members == ("--auto-compaction-mode=periodic", "--auto-compaction-retention=1h")
    assert members[1] == f"--auto-compaction-retention={COMPACTION_RETENTION}"
