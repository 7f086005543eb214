"""The initiator's etcd: embedded, locked to one per-run user, watched for convergence.

Every remote agent reaches this etcd through its tunnel with the run's
credentials (readwrite on /_mgmt/ only); the initiator itself reads the
converged keys as root. The server is run-scoped (WORLD wipes its member data
on start), so no converged or exported key of an earlier run is ever seen.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit

from mgmt.errors import MgmtError, WorldError
from mgmt.log import get_logger
from mgmt.settings import EtcdCredentials

log = get_logger("remote")


class InitiatorEtcd:
    """The run's etcd, started in the background while the first SSH connections open.

    ``start()`` returns at once; sessions call :meth:`wait_ready` just before
    they need the tunnel target and the credentials (after connecting and
    copying, which take as long as etcd's start-up, so the two overlap).
    """

    def __init__(self, state_dir: Path, on_ready: Optional[Callable[[], None]] = None):
        self.state_dir = Path(state_dir)
        self.on_ready = on_ready
        self.credentials: Optional[EtcdCredentials] = None
        self.client_url = ""
        self.error: Optional[BaseException] = None
        self._ready = threading.Event()
        self._closing = threading.Event()
        self._server = None
        self._world = None
        self._relays: Dict[str, object] = {}  # host -> its EtcdWorld, for report_converged
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._start, name="initiator-etcd", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        from mgmt.world.client import EtcdClient
        from mgmt.world.exchange import EtcdWorld
        from mgmt.world.server import EmbeddedEtcd

        try:
            # etcd dies with this thread (PR_SET_PDEATHSIG fires when the thread
            # that forked it ends), so the thread lives until close(): a SIGKILLed
            # initiator then takes its etcd along, and a normal end stops it first.
            self._server = EmbeddedEtcd(self.state_dir / "etcd", owner_thread_lives=True)
            self._server.start()
            self.client_url = self._server.client_url
            self.credentials = self._server.enable_auth()
            client = EtcdClient([self.client_url], self._server.root_credentials)
            self._world = EtcdWorld(client, "initiator")
            log.info("etcd for this run at %s (auth on, per-run user)", self.client_url)
            if self.on_ready is not None:
                self.on_ready()
        except BaseException as err:  # reported by wait_ready() and close()
            self.error = err
        finally:
            self._ready.set()
        self._closing.wait()

    def wait_ready(self, stopping: Callable[[], bool]) -> None:
        """Block until etcd serves (or the run stops); WorldError if it could not start."""
        while not self._ready.wait(0.05):
            if stopping():
                raise WorldError("stopped while etcd was starting")
        if self.error is not None:
            raise WorldError(f"the run's etcd did not start: {self.error}")

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.error is None

    def close(self) -> None:
        """Stop the watch and the server; re-raise a start-up failure for the caller."""
        if self._thread is not None:
            self._ready.wait()
        try:
            if self._world is not None:
                self._world.close()
        finally:
            if self._server is not None:
                self._server.stop()
            self._closing.set()  # etcd is down: its thread may end
            if self._thread is not None:
                self._thread.join()
        if isinstance(self.error, MgmtError):
            raise self.error

    @property
    def target(self) -> Tuple[str, int]:
        """Where tunnels lead: etcd's client address on this machine."""
        parts = urlsplit(self.client_url)
        return parts.hostname, parts.port

    def converged_hosts(self) -> Dict[str, bool]:
        return self._world.converged_hosts() if self.ready else {}

    def report_converged(self, host: str, converged: bool) -> None:
        """Write what ``host``'s agent reported on its stdout to its converged key.

        The agents of a remote run do not write it themselves: most of them
        never need etcd otherwise (see mgmt.world.lazy). A host's view of the
        world shares the root client, and like the host's own it writes only
        a change.
        """
        from mgmt.world.exchange import EtcdWorld

        with self._lock:
            world = self._relays.get(host)
            if world is None:
                world = self._relays[host] = EtcdWorld(self._world.client, host)
        world.set_converged(converged)

    def watch_converged(self, callback: Callable[[], None]):
        return self._world.watch_converged(callback)
