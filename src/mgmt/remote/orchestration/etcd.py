"""The run's etcd endpoint: the initiator's own, started on the first dial.

The etcd is embedded, started on demand and locked to one per-run user: every
remote agent reaches it through its tunnel with the run's credentials
(readwrite on /_mgmt/ only). The server is run-scoped (WORLD wipes its member
data on start), so no exported key of an earlier run is ever seen.
"""

import threading
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit

from mgmt.errors import MgmtError, WorldError
from mgmt.log import get_logger
from mgmt.settings import EtcdCredentials

log = get_logger("remote")


class RunEtcd:
    """The run's etcd, started by the first connection through a tunnel.

    Most runs exchange nothing, and their agents never dial etcd (see
    mgmt.world.lazy): for them it is never started, which saves the server,
    its auth set-up and the client library on the initiator. The run's
    credentials exist from the start, since agents are handed them at launch.
    Convergence does not go through etcd either: each agent reports it on its
    stdout and the fan-out keeps it (mgmt.remote.orchestration.fanout); once
    etcd runs the states are mirrored there too (:meth:`publish_converged`),
    under /_mgmt/converged/<host> as mgmt kept them, for anyone watching.

    This is one kind of endpoint the fan-out takes: :class:`SeedsEtcd` is an
    existing cluster (--seeds); the third, the cluster's own etcd on the hosts
    (a detached run), is mgmt.remote.orchestration.cluster.HostsEtcd.
    """

    def __init__(self, state_dir: Path, on_failure: Optional[Callable[[str], None]] = None):
        """``on_failure(why)`` is called once if etcd, when first needed, cannot start,
        or if it ends before the run does."""
        from mgmt.world.auth import new_run_credentials

        self.state_dir = Path(state_dir)
        self.on_failure = on_failure
        self.credentials: EtcdCredentials = new_run_credentials()
        self.client_url = ""
        self.error: Optional[BaseException] = None
        self._ready = threading.Event()
        self._closing = threading.Event()
        self._stopped = threading.Event()  # etcd is down: its owner thread may end
        self._server = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        # Mirroring to etcd happens on a thread of its own: the agents' output
        # readers that report never wait on etcd.
        self._mirror_due: Dict[str, bool] = {}  # states not written yet, by host
        self._mirror_wake = threading.Condition(self._lock)
        self._mirror_thread: Optional[threading.Thread] = None

    # -- etcd, on demand -----------------------------------------------------

    def target(self) -> Tuple[str, int]:
        """Where tunnels lead: etcd's client address, started first if need be.

        Blocks until etcd serves; WorldError if it could not start or the run is ending.
        """
        with self._lock:
            if self._closing.is_set():
                raise WorldError("the run is ending")
            if self._thread is None:
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
            # that forked it ends), so the thread lives until close() has stopped
            # it: a SIGKILLed initiator takes its etcd along.
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
        if self.error is not None and self.on_failure is not None:
            self.on_failure(f"the run's etcd did not start: {self.error}")
        if self.error is None and self._server is not None:
            # Its owner waits on it too: etcd ending before the run does (killed, out
            # of memory) leaves the hosts nothing to exchange through; the run ends.
            code = self._server.wait()
            if not self._closing.is_set():
                self.error = WorldError(
                    f"the run's etcd ended (exit status {code}) while the run needed it"
                )
                if self.on_failure is not None:
                    self.on_failure(str(self.error))
        self._stopped.wait()

    def close(self) -> None:
        """Stop the server if it ran; re-raise a start-up failure for the caller."""
        with self._lock:
            self._closing.set()
            self._mirror_wake.notify_all()
            thread = self._thread
        if thread is None:
            return
        self._ready.wait()
        try:
            if self._mirror_thread is not None:
                self._mirror_thread.join()  # at most one write in flight
            if self._server is not None:
                self._server.stop()
        finally:
            self._stopped.set()
            thread.join()
        if isinstance(self.error, MgmtError):
            raise self.error
        if self.error is not None:
            raise WorldError(f"the run's etcd did not start: {self.error}")

    # -- converged states, mirrored for anyone watching the cluster ----------

    def publish_converged(self, host: str, converged: bool) -> None:
        """Write ``host``'s state to /_mgmt/converged/<host> once etcd runs (never
        blocks: a thread of its own writes; the latest state per host wins)."""
        with self._lock:
            self._mirror_due[host] = converged
            self._mirror_wake.notify_all()

    def _start_mirror(self) -> None:
        self._mirror_thread = threading.Thread(
            target=self._mirror_loop, name="converged-mirror", daemon=True
        )
        self._mirror_thread.start()

    def _mirror_loop(self) -> None:
        """Write each host's latest state to /_mgmt/converged/<host> as it changes
        (best effort: the fan-out decides from memory, nobody waits on this)."""
        from mgmt.world.client import EtcdClient
        from mgmt.world.exchange import EtcdWorld

        client = EtcdClient([self.client_url], self._server.root_credentials)
        worlds: Dict[str, EtcdWorld] = {}
        try:
            while True:
                with self._lock:
                    while not self._mirror_due and not self._closing.is_set():
                        self._mirror_wake.wait()
                    if self._closing.is_set():
                        return
                    due, self._mirror_due = self._mirror_due, {}
                for host, converged in due.items():
                    try:
                        if host not in worlds:
                            worlds[host] = EtcdWorld(client, host)
                        worlds[host].set_converged(converged)
                    except MgmtError as err:
                        log.debug("%s: converged state not mirrored to etcd: %s", host, err)
        finally:
            client.close()


class SeedsEtcd:
    """An existing etcd cluster (--seeds) as the run's endpoint: tunnels lead to
    its first client URL, with the credentials given on the initiator's stdin.
    Nothing is started or stopped; converged states are not mirrored (the
    cluster is not ours to write /_mgmt/converged/ in)."""

    def __init__(self, seeds, credentials: Optional[EtcdCredentials]):
        parts = urlsplit(seeds[0])
        if parts.scheme != "http" or not parts.hostname:
            raise MgmtError(f"--seeds with --remote: {seeds[0]!r} is not an http:// URL")
        self.address = (parts.hostname, parts.port or 2379)
        self.url = seeds[0]
        self.credentials = credentials  # None: the cluster has no auth
        self.error: Optional[BaseException] = None

    def check(self) -> None:
        """That the cluster answers and takes the credentials (WorldError if not),
        before any host starts: each agent would otherwise retry for ever, and the
        run converge with nothing exchanged."""
        from mgmt.world.client import EtcdClient

        client = EtcdClient([self.url], self.credentials)
        try:
            client.check()
        finally:
            client.close()

    def target(self) -> Tuple[str, int]:
        return self.address

    def publish_converged(self, host: str, converged: bool) -> None:
        pass

    def close(self) -> None:
        pass
