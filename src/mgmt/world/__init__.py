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
import signal
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, List

from mgmt.errors import InputError
from mgmt.log import get_logger

if TYPE_CHECKING:
    from mgmt.settings import Settings
    from mgmt.world.exchange import EtcdWorld
    from mgmt.world.server import EmbeddedEtcd

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
    from mgmt.world.hosthold import owner_of
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
    closing = threading.Event()
    if server is not None:
        threading.Thread(
            target=_keep_running, args=(server, closing), name="etcd keeper", daemon=True
        ).start()
    try:
        client = EtcdClient(urls, settings.credentials)
        world = EtcdWorld(client, hostname, owner_of(state_dir))
        try:
            world.check()
            yield world
        finally:
            world.close()
    finally:
        closing.set()
        if server is not None:
            server.stop()


# The embedded etcd is started again at most this many times in RESTART_WINDOW seconds.
RESTARTS = 3
RESTART_WINDOW = 60.0


def _keep_running(server: "EmbeddedEtcd", closing: threading.Event) -> None:
    """Start the embedded etcd again when it ends by itself (killed, out of memory):
    else this agent would exchange nothing for the rest of its run. Its data is
    kept, so watches resume and nothing exported is lost. This thread lives as
    long as etcd runs, so a restarted etcd still dies with a killed agent."""
    from mgmt.errors import WorldError
    from mgmt.world.server import log_tail

    starts: List[float] = []
    while True:
        status = server.wait()
        if closing.is_set() or status is None:
            return
        now = time.monotonic()
        starts = [t for t in starts if now - t < RESTART_WINDOW] + [now]
        if status < 0:  # killed: its log does not say why
            how = f"was killed by {signal.Signals(-status).name}"
        else:
            how = f"exited with status {status}:\n{log_tail(server.log_path, 5)}"
        if len(starts) > RESTARTS:
            log.error("embedded etcd %s; it keeps ending, so it is not started again", how)
            return
        log.error("embedded etcd %s; starting it again", how)
        try:
            server.restart()
        except (OSError, WorldError) as err:
            log.error("embedded etcd could not start again: %s", err)
            return
        log.info("embedded etcd serving again at %s", server.client_url)
