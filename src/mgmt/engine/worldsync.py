"""This host in step with the world (etcd): its exports published, and everyone's
watched once the graph collects anything.

etcd (or the tunnel to it) may be away for a while: then it is said in one line
(again only when the reason changes, and "in step with etcd again" when it ends),
and both are tried again every WORLD_RETRY seconds while the rest of the graph
runs. A run that ends out of step says why (:attr:`WorldSync.error`): its exports
never reached the other hosts.
"""

import time
from typing import Any, Callable, List, Optional

from mgmt.errors import MgmtError
from mgmt.graph.model import Graph
from mgmt.log import get_logger

log = get_logger("agent")

WORLD_RETRY = 1.0


class WorldSync:
    """Publishes and watches for the agent's planner, which calls :meth:`sync` and
    asks :meth:`due` when to call it again."""

    def __init__(
        self,
        world: Any,
        on_exported: Callable[[], None],
        cancels: List[Callable],
        noop: bool = False,
    ):
        """``on_exported``: called when other hosts' exports change; the watch's
        cancel goes into ``cancels`` (the agent ends them all at its stop).
        ``noop`` (--noop): publish nothing, as mgmt: the other hosts would apply
        what a run that changes nothing published."""
        self.world = world
        self.noop = noop
        self._noop_said = False
        self.error: Optional[str] = None  # why it is out of step, None if it is not
        self._retry_at: Optional[float] = None  # set while out of step
        self._on_exported = on_exported
        self._cancels = cancels
        self._watching = False

    def sync(self, graph: Graph) -> None:
        """Publish ``graph``'s exports and, if it collects, watch everyone's."""
        if self.world is None:
            return
        from mgmt.engine.exchange import publish

        failures = []
        try:
            if not self.noop:
                publish(self.world, graph)
            elif graph.exported() and not self._noop_said:
                count = len(graph.exported())
                log.info("--noop: %d exported resource(s) not published", count)
                self._noop_said = True
        except MgmtError as err:
            failures.append(f"cannot publish exported resources: {err}")
        try:
            self._watch(graph)
        except MgmtError as err:
            failures.append(f"cannot watch exported resources: {err}")
        error = "; ".join(failures) or None
        if error is not None and error != self.error:  # said once, not at each retry
            log.error("%s (retrying)", error)
        elif error is None and self.error is not None:
            log.info("in step with etcd again")
        self.error = error
        self._retry_at = time.monotonic() + WORLD_RETRY if failures else None

    def due(self) -> Optional[float]:
        """Seconds until :meth:`sync` is due again (<= 0: now); None if in step."""
        if self._retry_at is None:
            return None
        return self._retry_at - time.monotonic()

    def _watch(self, graph: Graph) -> None:
        """Watch the world's exports once the graph collects anything (MgmtError if
        etcd is away).

        A watch reports what changed since the last collect; one that starts
        late (etcd was away) asks for a collect of its own, so nothing exported
        meanwhile is missed.
        """
        if self._watching or not graph.collect:
            return
        self._cancels.append(self.world.watch_exported(self._on_exported))
        self._watching = True
        if self._retry_at is not None:
            self._on_exported()
