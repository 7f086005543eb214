"""An agent whose seed answers as a new cluster (recreated empty, or restored) writes
its state there again: its exports, and its converged state and failures too.

The converged key is written only when the state changes; a cluster that lost it
used to go without it until this host's next change, so `mgmt status` and
anyone watching /_mgmt/converged/ saw the host as never reported.
"""

from __future__ import annotations

import json

import pytest
from recorder import WAIT, Recorder
from tcpproxy import TcpProxy

from mgmt.world.api import Failure
from mgmt.world.client import EtcdClient
from mgmt.world.exchange import EtcdWorld
from mgmt.world.hosthold import LEASE_TTL
from mgmt.world.server import EmbeddedEtcd
from support.polling import wait_until


@pytest.fixture
def new_cluster(tmp_path):
    """A second, empty cluster, and a proxy that leads to the module's etcd until moved."""
    with EmbeddedEtcd(tmp_path / "new" / "etcd") as server:
        fresh = EtcdClient([server.client_url])
        yield server, fresh
        fresh.close()


def state(client: EtcdClient, hostname: str) -> dict:
    """What etcd holds of ``hostname``: its exports, converged state and failures."""
    mine = (
        f"/_mgmt/exported/{hostname}/",
        f"/_mgmt/converged/{hostname}",
        f"/_mgmt/failed/{hostname}",
    )
    return {
        key: json.loads(value)
        for key, value, _ in client.range("/_mgmt/", prefix=True)[1]
        if key.startswith(mine)
    }


def move(proxy: TcpProxy, url: str) -> None:
    proxy.refusing.set()
    proxy.target = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
    proxy.drop()
    proxy.refusing.clear()


def reported(world: EtcdWorld) -> None:
    world.export({("file", "mine"): {"n": 1}})
    world.set_converged(True, [Failure("exec", "e", "exit status 1")])


WANTED = {
    "/_mgmt/exported/a/resources/file/mine": {"n": 1},
    "/_mgmt/failed/a": [{"kind": "exec", "name": "e", "error": "exit status 1"}],
    "/_mgmt/converged/a": True,
}


def test_a_collector_writes_its_converged_state_again_to_a_recreated_cluster(
    etcd, client, new_cluster
):
    """The exports' watch sees the new cluster (see PrefixWatch._check_cluster)."""
    server, fresh = new_cluster
    for i in range(30):  # the old cluster well ahead of the new one
        client.put(f"/_mgmt/pad/{i}", "x")
    proxy = TcpProxy("127.0.0.1", int(etcd.client_url.rsplit(":", 1)[1]))
    a = EtcdWorld(EtcdClient([proxy.url]), "a")
    try:
        reported(a)
        assert state(client, "a") == WANTED
        a.collect(["file"])
        seen = Recorder()
        watch = a.watch_exported(seen)
        assert watch.connected.wait(WAIT)
        move(proxy, server.client_url)
        assert seen.wait_for(1)
        wait_until(lambda: state(fresh, "a") == WANTED, WAIT, "a's state in the new cluster")
    finally:
        a.close()
        proxy.close()


def test_an_agent_that_only_exports_writes_its_converged_state_again_to_a_recreated_cluster(
    etcd, client, new_cluster
):
    """No watch: the hold's lease, gone with the old cluster, is what tells it."""
    server, fresh = new_cluster
    proxy = TcpProxy("127.0.0.1", int(etcd.client_url.rsplit(":", 1)[1]))
    a = EtcdWorld(EtcdClient([proxy.url]), "a")
    try:
        reported(a)
        assert state(client, "a") == WANTED
        move(proxy, server.client_url)
        wait_until(
            lambda: state(fresh, "a") == WANTED, 2 * LEASE_TTL, "a's state in the new cluster"
        )
    finally:
        a.close()
        proxy.close()
