"""A world that connects to etcd the first time the graph needs it.

An agent of a remote run reports its converged state on stdout (the initiator
relays it, see :data:`mgmt.remote.protocol.CONVERGED_MARK`), so etcd is only needed
for exported resources. Most graphs export and collect nothing, and connecting
costs nearly as much as the rest of the start: importing http.client (it
imports ssl and email.parser) and the first calls add about 20 ms of CPU to a
start of about 25 ms (bench/agent_start.py). :class:`LazyWorld` stands in for the world until an
export or a collect comes; a graph edited later to exchange resources connects
then. :func:`world_for` picks an agent's world: none, this one, or etcd at once.
"""

import contextlib
import threading
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ContextManager,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
)

from mgmt.errors import WorldError
from mgmt.world.api import Cancel, ExportedResource, Failure, ResourceKey, World

if TYPE_CHECKING:
    from mgmt.settings import Settings

# How long close() waits for the lock: a connect holds it for as long as etcd
# takes to answer, any other call for a moment.
CLOSE_WAIT = 0.5


def world_for(settings: "Settings", state: str) -> ContextManager[Optional[Any]]:
    """The world an agent runs with: none with --no-server and no seeds (it runs
    alone); a LazyWorld for one that reports converged on stdout (a remote run's:
    most graphs never exchange anything); else mgmt.world's open_world."""
    if settings.no_server and not settings.seeds:
        return _no_world()
    if settings.converged_stdout and settings.seeds:

        def connect() -> ContextManager[World]:
            from mgmt.world import open_world

            return open_world(settings, state)

        return contextlib.closing(LazyWorld(settings.hostname, connect))
    from mgmt.world import open_world

    return open_world(settings, state)


@contextlib.contextmanager
def _no_world() -> Iterator[None]:
    """``contextlib.nullcontext(None)``, which Python 3.6 lacks."""
    yield None


class LazyWorld:
    """The :class:`~mgmt.world.api.World` that ``connect()`` opens, opened on first use."""

    def __init__(self, hostname: str, connect: Callable[[], ContextManager[World]]):
        self.hostname = hostname
        self._connect = connect
        self._world: Optional[World] = None
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def connected(self) -> bool:
        return self._world is not None

    def _open(self) -> World:
        with self._lock:
            if self._closed:  # a late call from a thread still winding down
                raise WorldError("the agent is stopping")
            if self._world is None:
                self._world = self._stack.enter_context(self._connect())
            if self._closed:  # close() came while it connected, and left the closing to us
                self._world = None
                self._stack.close()
                raise WorldError("the agent is stopping")
            return self._world

    def export(self, resources: Mapping[ResourceKey, Dict[str, Any]]) -> None:
        # Nothing exported and never connected: none of our keys can be in etcd
        # (the run's etcd starts empty), so there is nothing to delete either.
        if resources or self.connected:
            self._open().export(resources)

    def collect(self, kinds: Iterable[str]) -> List[ExportedResource]:
        return self._open().collect(kinds)

    def watch_exported(self, callback: Callable[[], None]) -> Cancel:
        return self._open().watch_exported(callback)

    # The rest of the World protocol: an agent that reports converged on stdout
    # never calls these, and each would connect just for itself.

    def set_converged(self, converged: bool, failed: Sequence[Failure] = ()) -> None:
        self._open().set_converged(converged, failed)

    def converged_hosts(self) -> Dict[str, bool]:
        return self._open().converged_hosts()

    def watch_converged(self, callback: Callable[[], None]) -> Cancel:
        return self._open().watch_converged(callback)

    def close(self) -> None:
        """Close the world; a connect under way is not waited for (etcd may hang
        through a stalled tunnel: the stop must stay prompt), it closes itself."""
        self._closed = True  # before the lock: seen by a connect under way once it ends
        # Any other holder releases it at once (it checks _closed just before).
        if not self._lock.acquire(timeout=CLOSE_WAIT):
            return
        try:
            self._world = None
            self._stack.close()
        finally:
            self._lock.release()
