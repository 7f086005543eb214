"""Writes that fail while etcd (or the tunnel to it) is briefly away are retried.

A remote agent reaches etcd through an SSH tunnel: a blip just as it turns idle
must not leave the cluster waiting forever for a "true" that was never written,
nor a host's exports unpublished.
"""

from __future__ import annotations

import io
import json
import threading

from tcpproxy import TcpProxy

from mgmt import log
from mgmt.engine.agent import Agent
from mgmt.engine.converger import Converger
from mgmt.settings import Settings
from mgmt.world.client import EtcdClient
from mgmt.world.exchange import EtcdWorld
from support.polling import wait_for

WAIT = 10.0


class CountingWorld(EtcdWorld):
    """The real EtcdWorld, counting the writes that failed (so a test knows one did)."""

    failures = 0

    def set_converged(self, converged: bool) -> None:
        try:
            super().set_converged(converged)
        except Exception:
            self.failures += 1
            raise

    def export(self, resources) -> None:
        try:
            super().export(resources)
        except Exception:
            self.failures += 1
            raise


def value(client, key: str):
    found = client.range(key)[1]
    return json.loads(found[0][1]) if found else None


def cut_proxy(etcd) -> TcpProxy:
    proxy = TcpProxy("127.0.0.1", int(etcd.client_url.rsplit(":", 1)[1]))
    proxy.refusing.set()
    proxy.drop()
    return proxy


def test_a_converged_state_that_failed_to_write_is_written_once_etcd_is_back(etcd, client):
    proxy = cut_proxy(etcd)
    world = CountingWorld(EtcdClient([proxy.url]), "h")
    converger = Converger(-1, world.set_converged)
    try:
        converger.engine_idle(True)
        assert wait_for(lambda: world.failures >= 1)
        proxy.refusing.clear()
        assert wait_for(lambda: value(client, "/_mgmt/converged/h") is True)
    finally:
        converger.close()
        world.close()
        proxy.close()


def test_a_converged_state_that_fails_alike_is_said_once_and_its_recovery_once(etcd, client):
    # Retried every second while etcd is away: said at each retry before, a line
    # a second for as long as the outage lasted.
    proxy = cut_proxy(etcd)
    world = CountingWorld(EtcdClient([proxy.url]), "h")
    lines = io.StringIO()
    log.setup(0, stream=lines)
    converger = Converger(-1, world.set_converged)
    try:
        converger.engine_idle(True)
        assert wait_for(lambda: world.failures >= 3)
        proxy.refusing.clear()
        assert wait_for(lambda: value(client, "/_mgmt/converged/h") is True)
        assert wait_for(lambda: "recorded converged=True again" in lines.getvalue())
    finally:
        converger.close()
        world.close()
        proxy.close()
        log.setup(0)
    said = [line for line in lines.getvalue().splitlines() if "converged=" in line]
    assert len(said) == 2, said
    assert "cannot record converged=" in said[0] and "(retrying): " in said[0]
    assert said[1].endswith("recorded converged=True again")


def test_an_export_that_failed_to_publish_is_published_once_etcd_is_back(etcd, client, tmp_path):
    graph = tmp_path / "g.yaml"
    graph.write_text("graph: g\nresources:\n  noop:\n  - name: '@@shared'\n")
    proxy = cut_proxy(etcd)
    world = CountingWorld(EtcdClient([proxy.url]), "h")
    settings = Settings(file=graph, hostname="h", no_watch=True, prefix=tmp_path / "state")
    agent = Agent(settings, world=world, state_dir=tmp_path / "state")
    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    try:
        # Fails at start, then on each retry (about once a second, not in a busy loop).
        assert wait_for(lambda: world.failures >= 2)
        assert world.failures < 10
        proxy.refusing.clear()
        key = "/_mgmt/exported/h/resources/noop/shared"
        assert wait_for(lambda: value(client, key) is not None)
    finally:
        agent.stop()
        runner.join(WAIT)
        world.close()
        proxy.close()
    assert not runner.is_alive()


def test_a_publish_cut_short_by_a_stop_is_not_tried_again_after_it(etcd, client, tmp_path):
    # A stop gives the publish under way a moment, then says the run ended out of
    # step; the publish, failing later, must not go on retrying behind it.
    graph = tmp_path / "g.yaml"
    graph.write_text("graph: g\nresources:\n  noop:\n  - name: '@@shared'\n")
    proxy = TcpProxy("127.0.0.1", int(etcd.client_url.rsplit(":", 1)[1]))
    proxy.thawed.clear()  # etcd hangs: connections are taken, nothing is answered
    world = CountingWorld(EtcdClient([proxy.url], read_timeout=3), "h")  # past the stop's grace
    settings = Settings(file=graph, hostname="h", no_watch=True, prefix=tmp_path / "state")
    agent = Agent(settings, world=world, state_dir=tmp_path / "state")
    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    try:
        assert wait_for(lambda: proxy.link_count() >= 1)  # the publish is under way
        agent.stop()
        runner.join(WAIT)
        assert not runner.is_alive()
        assert "etcd did not answer before the stop" in (agent.world_sync.error or "")
        publishing = [t for t in threading.enumerate() if t.name == "worldsync"]
        assert wait_for(lambda: not any(t.is_alive() for t in publishing))  # no retry loop
    finally:
        proxy.thawed.set()
        world.close()
        proxy.close()
