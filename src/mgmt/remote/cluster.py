"""The initiator's etcd: embedded, locked to one per-run user, watched for convergence.

Every remote agent reaches this etcd through its tunnel with the run's
credentials (readwrite on /_mgmt/ only); the initiator itself reads the
converged keys as root. The server is run-scoped (WORLD wipes its member data
on start), so no converged or exported key of an earlier run is ever seen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit

from mgmt.log import get_logger
from mgmt.settings import EtcdCredentials

log = get_logger("remote")


class InitiatorEtcd:
    """``with InitiatorEtcd(state_dir) as etcd: etcd.target, etcd.credentials, ...``"""

    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self.credentials: Optional[EtcdCredentials] = None
        self.client_url = ""
        self._server = None
        self._world = None

    def __enter__(self) -> InitiatorEtcd:
        from mgmt.world.client import EtcdClient
        from mgmt.world.exchange import EtcdWorld
        from mgmt.world.server import EmbeddedEtcd

        self._server = EmbeddedEtcd(self.state_dir / "etcd")
        self._server.start()
        try:
            self.client_url = self._server.client_url
            self.credentials = self._server.enable_auth()
            client = EtcdClient([self.client_url], self._server.root_credentials)
            self._world = EtcdWorld(client, "initiator")
        except BaseException:
            self._server.stop()
            raise
        log.info("etcd for this run at %s (auth on, per-run user)", self.client_url)
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            if self._world is not None:
                self._world.close()
        finally:
            self._server.stop()

    @property
    def target(self) -> Tuple[str, int]:
        """Where tunnels lead: etcd's client address on this machine."""
        parts = urlsplit(self.client_url)
        return parts.hostname, parts.port

    def converged_hosts(self) -> Dict[str, bool]:
        return self._world.converged_hosts()

    def watch_converged(self, callback: Callable[[], None]):
        return self._world.watch_converged(callback)
