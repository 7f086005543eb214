"""The world: what an agent shares with other hosts, kept in etcd.

:mod:`mgmt.world.api` is the narrow interface the engine uses; the etcd
implementation (:mod:`.exchange`), the embedded server launcher (:mod:`.server`),
the client (:mod:`.client`: seeds, failover, auth) over etcd's JSON gateway
(:mod:`.gateway`: HTTP with the standard library's http.client), its watch
(:mod:`.watch`), the world that connects on first use (:mod:`.lazy`) and the
auth set-up for remote runs (:mod:`.auth`) live beside it. Everything heavy is imported on first
use, so ``import mgmt.world`` costs the agent's start-up nothing.
"""

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from mgmt.errors import InputError
from mgmt.log import get_logger

if TYPE_CHECKING:
    from mgmt.settings import Settings
    from mgmt.world.exchange import EtcdWorld

__all__ = ["open_world"]

log = get_logger("world")


@contextmanager
def open_world(settings: "Settings", state_dir: str) -> "Iterator[EtcdWorld]":
    """Connect this agent to its world for the duration of a ``with`` block.

    With ``settings.seeds`` the agent is a client of that cluster (using
    ``settings.credentials`` if set); otherwise it starts the embedded etcd with
    its data in ``state_dir/etcd`` and stops it on exit. ``--no-server`` without
    seeds is an input error: there would be no cluster at all.
    """
    from mgmt.world.client import EtcdClient, preload
    from mgmt.world.exchange import EtcdWorld
    from mgmt.world.server import EmbeddedEtcd

    if settings.hostname:
        hostname = settings.hostname
    else:
        import socket

        hostname = socket.gethostname()
    server = None
    if settings.seeds:
        urls = list(settings.seeds)
    elif settings.no_server:
        raise InputError("--no-server needs --seeds: there is no etcd cluster to join")
    else:
        server = EmbeddedEtcd(os.path.join(state_dir, "etcd"))
        preload()  # the client library loads while etcd starts
        server.start()
        urls = [server.client_url]
        log.info("embedded etcd serving at %s", server.client_url)
    try:
        client = EtcdClient(urls, settings.credentials)
        world = EtcdWorld(client, hostname)
        try:
            world.check()
            yield world
        finally:
            world.close()
    finally:
        if server is not None:
            server.stop()
