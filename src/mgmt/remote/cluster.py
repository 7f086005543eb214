"""The initiator's etcd: embedded, started on demand, locked to one per-run user.

Every remote agent reaches this etcd through its tunnel with the run's
credentials (readwrite on /_mgmt/ only). The server is run-scoped (WORLD wipes
its member data on start), so no exported key of an earlier run is ever seen.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from mgmt.errors import MgmtError, WorldError
from mgmt.log import get_logger
from mgmt.settings import EtcdCredentials

log = get_logger("remote")


class InitiatorEtcd:
    """The run's etcd, started by the first connection that comes through a tunnel.

    Most runs exchange nothing, and their agents never dial etcd (see
    mgmt.world.lazy): for them it is never started, which saves the server,
    its auth set-up and the client library on the initiator. The run's
    credentials exist from the start, since agents are handed them at launch.
    Convergence does not go through etcd either: each agent reports it on its
    stdout, and :meth:`report_converged` keeps the states here in memory. Once
    etcd runs they are mirrored there too, under /_mgmt/converged/<host> as
    mgmt kept them, for anyone watching the cluster.
    """

    def __init__(self, state_dir: Path):
        from mgmt.world.auth import new_run_credentials

        self.state_dir = Path(state_dir)
        self.credentials: EtcdCredentials = new_run_credentials()
        self.client_url = ""
        self.error: Optional[BaseException] = None
        self._ready = threading.Event()
        self._closing = threading.Event()
        self._server = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self._converged: Dict[str, bool] = {}
        self._converged_watchers: List[Callable[[], None]] = []
        self._mirror_client = None  # root's client of the running etcd
        self._mirrors: Dict[str, object] = {}  # host -> its EtcdWorld, for its key
        self._mirror_lock = threading.Lock()  # one write at a time, always the latest

    # -- etcd, on demand -----------------------------------------------------

    def target(self) -> Tuple[str, int]:
        """Where tunnels lead: etcd's client address, started first if need be.

        Blocks until etcd serves; WorldError if it could not start.
        """
        with self._lock:
            if self._thread is None:
                if self._closing.is_set():
                    raise WorldError("the run is ending")
                self._thread = threading.Thread(
                    target=self._start, name="initiator-etcd", daemon=True
                )
                self._thread.start()
        self._ready.wait()
        if self.error is not None:
            raise WorldError(f"the run's etcd did not start: {self.error}")
        parts = urlsplit(self.client_url)
        return parts.hostname, parts.port

    def _start(self) -> None:
        from mgmt.world.server import EmbeddedEtcd

        try:
            # etcd dies with this thread (PR_SET_PDEATHSIG fires when the thread
            # that forked it ends), so the thread lives until close(): a SIGKILLed
            # initiator then takes its etcd along, and a normal end stops it first.
            self._server = EmbeddedEtcd(self.state_dir / "etcd", owner_thread_lives=True)
            self._server.start()
            self.client_url = self._server.client_url
            self._server.enable_auth(self.credentials)
            self._start_mirror()  # before anyone is told etcd runs: no state goes unwritten
            log.info("etcd for this run at %s (auth on, per-run user)", self.client_url)
        except BaseException as err:  # reported by target() and close()
            self.error = err
        finally:
            self._ready.set()
        self._closing.wait()

    def _start_mirror(self) -> None:
        from mgmt.world.client import EtcdClient

        self._mirror_client = EtcdClient([self.client_url], self._server.root_credentials)
        for host in self.converged_hosts():  # what was reported before etcd ran
            self._mirror(host)

    def _mirror(self, host: str) -> None:
        """Write ``host``'s latest state to its key (best effort: nobody waits on it)."""
        from mgmt.world.exchange import EtcdWorld

        with self._mirror_lock:
            if self._mirror_client is None:
                return
            world = self._mirrors.get(host)
            if world is None:
                world = self._mirrors[host] = EtcdWorld(self._mirror_client, host)
            try:
                world.set_converged(self.converged_hosts()[host])
            except MgmtError as err:
                log.debug("%s: converged state not mirrored to etcd: %s", host, err)

    def close(self) -> None:
        """Stop the server if it ran; re-raise a start-up failure for the caller."""
        with self._lock:
            self._closing.set()
            thread = self._thread
        if thread is None:
            return
        self._ready.wait()
        try:
            with self._mirror_lock:
                client, self._mirror_client = self._mirror_client, None
            if client is not None:
                client.close()
            if self._server is not None:
                self._server.stop()
        finally:
            thread.join()
        if isinstance(self.error, MgmtError):
            raise self.error

    # -- convergence, reported by the agents ----------------------------------

    def report_converged(self, host: str, converged: bool) -> None:
        """What ``host``'s agent said on its stdout: it turned idle (True) or busy."""
        with self._lock:
            if self._converged.get(host) is converged:
                return
            self._converged[host] = converged
            watchers = list(self._converged_watchers)
        for callback in watchers:
            callback()
        self._mirror(host)

    def converged_hosts(self) -> Dict[str, bool]:
        with self._lock:
            return dict(self._converged)

    def watch_converged(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every change of a host's state."""
        with self._lock:
            self._converged_watchers.append(callback)
