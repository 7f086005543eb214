"""A real etcd stopped and started again under a running client and watch.

EmbeddedEtcd wipes its data at every start (a run-scoped cluster); a restart
that keeps the data (a cluster given with --seeds, a host rebooting) is made
here with the system etcd on fixed ports and a kept data dir.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest
from recorder import Recorder
from tcpproxy import TcpProxy

from mgmt.world.auth import enable_auth
from mgmt.world.client import EtcdClient
from mgmt.world.server import find_etcd, free_port
from mgmt.world.watch import PrefixWatch
from support import require_tools
from support.polling import wait_until

WAIT = 15.0
PREFIX = "/_mgmt/exported/"


class RestartableEtcd:
    """The system etcd on fixed loopback ports, its data kept across stop() and start()."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.client_url = f"http://127.0.0.1:{free_port()}"
        self.peer_url = f"http://127.0.0.1:{free_port()}"
        self._proc = None
        self._log = data_dir.parent / "etcd.log"

    def start(self) -> None:
        command = [
            find_etcd(), "--name=restart", f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.client_url}", f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster=restart={self.peer_url}",
            "--heartbeat-interval=10", "--election-timeout=100", "--bcrypt-cost=4",
        ]  # fmt: skip
        with open(self._log, "ab") as log:
            self._proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._healthy, WAIT, f"etcd at {self.client_url} to be healthy")

    def _healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.client_url}/health", timeout=2) as answer:
            return b'"true"' in answer.read()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            proc.wait(WAIT)


@pytest.fixture
def etcd(tmp_path):
    require_tools("etcd")
    server = RestartableEtcd(tmp_path / "data")
    server.start()
    yield server
    server.stop()


def test_client_and_watch_go_on_after_a_restart_mid_watch(etcd):
    client = EtcdClient([etcd.client_url])
    client.put(f"{PREFIX}a/resources/file/before", "{}")
    seen = Recorder()
    watch = PrefixWatch(client, PREFIX, seen)
    try:
        assert watch.connected.wait(WAIT)
        etcd.stop()
        wait_until(lambda: not watch.connected.is_set(), WAIT, "the watch to see the stream end")
        etcd.start()
        # The same client: its kept-alive connection died with the server.
        client.put(f"{PREFIX}b/resources/file/after", "{}")
        assert seen.wait_for(1)
        assert watch.connected.wait(WAIT)
        assert [key for key, _, _ in client.range(PREFIX, prefix=True)[1]] == [
            f"{PREFIX}a/resources/file/before",
            f"{PREFIX}b/resources/file/after",
        ]
        assert client.delete(PREFIX, prefix=True) == 2
        assert seen.wait_for(2)
    finally:
        watch.cancel()
    assert not watch.running


def test_with_auth_tokens_are_renewed_after_a_restart(etcd):
    """A restarted etcd forgets its simple tokens: client and watch authenticate again."""
    setup = enable_auth(etcd.client_url)
    client = EtcdClient([etcd.client_url], setup.run)
    seen = Recorder()
    watch = PrefixWatch(client, PREFIX, seen)
    try:
        assert watch.connected.wait(WAIT)
        etcd.stop()
        etcd.start()
        EtcdClient([etcd.client_url], setup.root).put(f"{PREFIX}b/resources/file/f", "{}")
        assert seen.wait_for(1)
        # (No check that the token changed: etcd 3.4 draws simple tokens from an
        # unseeded generator, so a restarted server may hand out the same string.)
        client.put(f"{PREFIX}a/resources/file/g", "{}")
        assert seen.wait_for(2)
        assert client.range(f"{PREFIX}a/", prefix=True)[1][0][0] == f"{PREFIX}a/resources/file/g"
    finally:
        watch.cancel()


def test_a_watch_resuming_from_a_compacted_revision_reports_once_and_goes_on(etcd):
    """Down while its history was compacted: one change (re-read), then watching as before."""
    proxy = TcpProxy("127.0.0.1", int(etcd.client_url.rsplit(":", 1)[1]))
    client = EtcdClient([etcd.client_url])
    seen = Recorder()
    watch = PrefixWatch(EtcdClient([proxy.url]), PREFIX, seen)
    try:
        assert watch.connected.wait(WAIT)
        proxy.refusing.set()
        proxy.drop()
        for name in ("one", "two", "three"):
            client.put(f"{PREFIX}b/resources/file/{name}", "{}")
        revision = client.range("/", count_only=True)[0]
        client.call("kv/compaction", {"revision": revision, "physical": True})
        proxy.refusing.clear()
        assert seen.wait_for(1)
        assert watch.connected.wait(WAIT)
        assert watch.revision >= revision  # resumed after the compaction, not before it
        client.put(f"{PREFIX}b/resources/file/four", "{}")
        assert seen.wait_for(2)
        # One call for the lost history, one for the change: no replay loop.
        assert seen.calls == 2
        assert watch.running
    finally:
        watch.cancel()
        proxy.close()


def test_calls_share_one_kept_alive_connection(etcd):
    proxy = TcpProxy("127.0.0.1", int(etcd.client_url.rsplit(":", 1)[1]))
    try:
        client = EtcdClient([proxy.url])
        for index in range(20):
            client.put(f"/_mgmt/k{index}", str(index))
        assert len(client.range("/_mgmt/k", prefix=True)[1]) == 20
        assert proxy.link_count() == 1
        proxy.drop()  # the server side closes it: the next call reconnects at once
        assert client.delete("/_mgmt/k", prefix=True) == 20
        assert proxy.link_count() == 1
    finally:
        proxy.close()
